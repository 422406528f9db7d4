"""Reading the small files a repository controls: `logist.yml` and `.logist/roles/*.yml`.

A repository may be hostile: it can commit such a file as a symlink to `/dev/zero` (memory
runs out), to `/dev/stdin` or a FIFO (the read never ends), or to a file outside the
repository (its content would become configuration). So every directory on the way is
opened with `O_NOFOLLOW | O_DIRECTORY` relative to the one before it, starting at the
repository's top, the file itself with `O_NOFOLLOW | O_NONBLOCK`, and it must be a regular
file of at most `MAX_BYTES`. A symlink anywhere in the path is refused, never followed
(also one that stays inside the repository: keep the file itself where Logist looks).
Every refusal is a `ConfigError` naming the file: one line, exit status 2.

The user's own configuration file (outside any repository) may be a symlink (dotfile
managers make them), but it must still end at a regular file of at most `MAX_BYTES`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from logist_server.domain.errors import ConfigError

MAX_BYTES = 1 << 20  # 1 MiB: far more than any configuration needs
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def read_repo_text(repo: Path, relative: str, max_bytes: int = MAX_BYTES) -> str | None:
    """The UTF-8 text of `relative` in `repo`, None when it (or a directory on the way)
    does not exist. ConfigError for a symlink on the way, anything but a regular file, a
    file over `max_bytes`, or one that cannot be read."""
    shown = repo / relative
    parts = PurePosixPath(relative).parts
    with _directory(repo, parts[:-1], shown) as fd:
        if fd is None:
            return None
        return _read_at(fd, parts[-1], shown, max_bytes, follow=False)


def list_repo_dir(repo: Path, relative: str) -> list[str]:
    """The names in the directory `relative` of `repo` (reached without symlinks), sorted;
    [] when it does not exist."""
    shown = repo / relative
    with _directory(repo, PurePosixPath(relative).parts, shown) as fd:
        if fd is None:
            return []
        try:
            return sorted(os.listdir(fd))
        except OSError as exc:
            raise ConfigError(f"{shown}: cannot read: {exc.strerror}") from None


def read_user_text(path: Path, max_bytes: int = MAX_BYTES) -> str | None:
    """The UTF-8 text of the user's own file `path` (a symlink is followed), None when it
    does not exist. ConfigError unless it is a regular file of at most `max_bytes`."""
    try:
        parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return _read_at(parent, path.name, path, max_bytes, follow=True)
    finally:
        os.close(parent)


@contextlib.contextmanager
def _directory(repo: Path, parts: tuple[str, ...], shown: Path) -> Iterator[int | None]:
    """An open handle on `repo/parts...`, each step taken without following a symlink;
    None when a step does not exist."""
    try:
        fd = os.open(repo, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield None
        return
    try:
        for index, part in enumerate(parts):
            if part in ("", ".", ".."):
                raise ConfigError(f"{shown}: not a plain path inside the repository")
            try:
                next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except (FileNotFoundError, NotADirectoryError) as exc:
                if isinstance(exc, NotADirectoryError) and not _plain_file(fd, part):
                    where = repo.joinpath(*parts[: index + 1])
                    raise ConfigError(f"{shown}: {_refusal(exc, where, directory=True)}") from None
                # Absent, or a plain file where a directory would be (nothing lives below
                # it; the store reports a `.logist` file with its own advice).
                os.close(fd)
                fd = -1
                yield None
                return
            except OSError as exc:
                where = repo.joinpath(*parts[: index + 1])
                raise ConfigError(f"{shown}: {_refusal(exc, where, directory=True)}") from None
            os.close(fd)
            fd = next_fd
        yield fd
    finally:
        if fd >= 0:
            os.close(fd)


def _plain_file(fd: int, name: str) -> bool:
    """True when `name` in directory `fd` is a regular file (not a symlink)."""
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _read_at(fd: int, name: str, shown: Path, max_bytes: int, follow: bool) -> str | None:
    flags = _FILE_FLAGS if not follow else _FILE_FLAGS & ~os.O_NOFOLLOW
    try:
        before = os.stat(name, dir_fd=fd, follow_symlinks=follow)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror}") from None
    # Refused before opening: opening a device or a FIFO can itself block or have effects.
    _check_kind(before, shown, max_bytes)
    try:
        handle = os.open(name, flags, dir_fd=fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{shown}: {_refusal(exc, shown, directory=False)}") from None
    with os.fdopen(handle, "rb") as file:
        now = os.fstat(handle)
        _check_kind(now, shown, max_bytes)  # what was opened, whatever changed meanwhile
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ConfigError(f"{shown}: larger than {_size(max_bytes)}: not a configuration file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}: cannot read: not UTF-8 text (byte {exc.start})") from None


def _check_kind(status: os.stat_result, shown: Path, max_bytes: int) -> None:
    if stat.S_ISLNK(status.st_mode):
        raise ConfigError(f"{shown}: {_SYMLINK}")
    if not stat.S_ISREG(status.st_mode):
        raise ConfigError(f"{shown}: not a regular file ({_kind(status.st_mode)}): refused")
    if status.st_size > max_bytes:
        raise ConfigError(f"{shown}: larger than {_size(max_bytes)}: not a configuration file")


_SYMLINK = (
    "is a symbolic link: Logist reads repository configuration only from a regular file in"
    " the repository, never through a link"
)


def _refusal(exc: OSError, where: Path, directory: bool) -> str:
    if exc.errno == errno.ELOOP or (
        directory and exc.errno == errno.ENOTDIR and where.is_symlink()
    ):
        return f"{where} {_SYMLINK}" if directory else _SYMLINK
    if directory and exc.errno == errno.ENOTDIR:
        return f"{where} is not a directory"
    return f"cannot read: {exc.strerror}"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"


def _size(count: int) -> str:
    return f"{count // (1 << 20)} MiB" if count % (1 << 20) == 0 else f"{count} bytes"

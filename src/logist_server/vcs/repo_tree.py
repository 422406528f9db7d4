"""Reaching files inside the user's repository without following a symlink on the way.

Every directory of a path is opened with `O_NOFOLLOW | O_DIRECTORY` relative to the one
before it (openat semantics), starting from the repository's top directory. A symlinked
directory anywhere in a path, the user's own or one a job planted, is refused and never
followed, so nothing read or written through a `RepoTree` lies outside the repository. A
directory with a `.git` of its own (a submodule, a nested clone) is another repository: it
is refused too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from logist_server.domain.repo_paths import unsafe_reason
from logist_server.support.closing import Closing

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PathRefused(Exception):
    """`path` cannot be reached safely; `reason` says why in a few words."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def split(path: str) -> tuple[str, str]:
    """(parent directory, name) of a repository-relative path; the top is ''."""
    parent, _, name = path.rpartition("/")
    return parent, name


class RepoTree(Closing):
    """Open directory handles below one repository root, each reached without symlinks.

    Handles stay open until `close`, so a plan checked through them is carried out in the
    very directories that were checked, whatever is renamed in the meantime.
    """

    def __init__(self, root: os.PathLike[str] | str) -> None:
        top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._fds: dict[str, int] = {"": top}
        try:
            self.name_max = os.fpathconf(top, "PC_NAME_MAX")
        except OSError:
            self.name_max = 255
        self.created: list[str] = []  # directories made by `directory(create=True)`, in order

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def directory(self, rel: str, create: bool = False) -> int | None:
        """A handle on directory `rel` ('' is the top), or None when it does not exist.

        With `create`, missing directories are made (and remembered in `created`).
        PathRefused when a part is a symlink, a file or anything but a directory.
        """
        if rel in self._fds:
            return self._fds[rel]
        reason = unsafe_reason(rel)
        if reason is not None:
            raise PathRefused(rel, reason)
        parent_rel, name = split(rel)
        parent = self.directory(parent_rel, create)
        if parent is None:
            return None
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(name, 0o777, dir_fd=parent)
            self.created.append(rel)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            raise PathRefused(rel, self._why_not_a_directory(parent, name, exc)) from exc
        if _holds_git(fd):
            os.close(fd)
            raise PathRefused(rel, "is another git repository (a submodule or a nested clone)")
        self._fds[rel] = fd
        return fd

    def _why_not_a_directory(self, parent: int, name: str, exc: OSError) -> str:
        try:
            st = os.lstat(name, dir_fd=parent)
        except OSError:
            return _describe(exc)
        if stat.S_ISLNK(st.st_mode):
            return "is a symbolic link (accept never writes through one)"
        if stat.S_ISREG(st.st_mode):
            return "is a file here, where the job has a directory"
        if exc.errno in (errno.ENOTDIR, errno.ELOOP):
            return "is not a directory"
        return _describe(exc)

    def parent(self, path: str, create: bool = False) -> tuple[int | None, str]:
        """(handle on the directory holding `path`, or None if it is missing; its name).

        A refused directory is reported against `path`, naming the directory.
        """
        parent_rel, name = split(path)
        if any(len(os.fsencode(part)) > self.name_max for part in path.split("/")):
            raise PathRefused(path, "the name is too long for this file system")
        try:
            return self.directory(parent_rel, create), name
        except PathRefused as refused:
            raise PathRefused(path, f"{refused.path} {refused.reason}") from None

    def lstat(self, path: str) -> os.stat_result | None:
        """`path`'s own status (a symlink is not followed), or None when it does not exist."""
        fd, name = self.parent(path)
        if fd is None:
            return None
        try:
            return os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise PathRefused(path, _describe(exc)) from exc

    def read(self, path: str) -> bytes:
        """The content of the regular file `path` (never through a symlink)."""
        fd, name = self.parent(path)
        if fd is None:
            raise PathRefused(path, "does not exist")
        try:
            handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError as exc:
            raise PathRefused(path, _describe(exc)) from exc
        with os.fdopen(handle, "rb") as file:
            return file.read()

    def readlink(self, path: str) -> bytes:
        """The target of the symlink `path`."""
        fd, name = self.parent(path)
        if fd is None:
            raise PathRefused(path, "does not exist")
        return os.fsencode(os.readlink(name, dir_fd=fd))


def _holds_git(fd: int) -> bool:
    """True when the directory has a `.git` of its own: another repository's working tree."""
    try:
        os.lstat(".git", dir_fd=fd)
    except OSError:
        return False
    return True


def _describe(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "the name is too long for this file system"
    return (exc.strerror or str(exc)).lower()

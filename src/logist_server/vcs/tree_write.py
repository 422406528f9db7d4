"""Writing a set of files into the user's working tree, all or nothing.

1. Prepare: every new content goes to a short-named temporary (`.logist-<random>.tmp`, never
   near the file system's name limit) beside its target; every file about to be replaced or
   deleted gets a hard-linked backup. Missing directories are created. Nothing the user sees
   has changed yet, except new empty directories.
2. Commit: rename each temporary over its target and unlink each deleted file.
3. Any failure in 1 or 2 undoes what was done (backups renamed back, new files, temporaries
   and created directories removed) and raises `AcceptWriteError` naming the file.

Every directory is reached through `RepoTree`, never through a symlink, and every path is
checked against `repo_paths.unsafe_reason` again here, whatever the planner decided.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from logist_server.domain.errors import LogistError
from logist_server.domain.repo_paths import unsafe_reason
from logist_server.vcs.repo_tree import PathRefused, RepoTree

MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120000


#: `PlannedWrite.seen` of a path where nothing was.
NOTHING = (0, -1, 0)


class PlannedWrite(msgspec.Struct, frozen=True):
    path: str
    content: bytes | None  # None: delete
    mode: int
    # What was at `path` when the write was planned (`identity`); when given, the write is
    # refused if the file changed since (the user saved meanwhile): nothing is lost.
    seen: tuple[int, int, int] | None = None


def identity(st: os.stat_result | None) -> tuple[int, int, int]:
    """(inode, size, modification time in ns) of a file, or NOTHING."""
    if st is None:
        return NOTHING
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class AcceptWriteError(LogistError):
    """Writing the accepted files failed; the working tree was left as it was."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


class _Staged(msgspec.Struct):
    write: PlannedWrite
    fd: int
    name: str
    temp: str | None = None
    backup: str | None = None
    existed: bool = False
    done: bool = False


def temp_name(kind: str) -> str:
    """`.logist-<16 hex>.<kind>`: 29 bytes, whatever the target's name."""
    return f".logist-{secrets.token_hex(8)}.{kind}"


def write_files(root: Path, writes: Sequence[PlannedWrite]) -> list[str]:
    """Carry out `writes` under `root` atomically as a set; the paths written, in order."""
    seen: set[str] = set()
    for write in writes:
        reason = unsafe_reason(write.path)
        if reason is not None:
            raise AcceptWriteError(f"cannot accept: {write.path}: {reason} (refused)", write.path)
        if write.path in seen:
            raise AcceptWriteError(f"cannot accept: {write.path} is planned twice", write.path)
        seen.add(write.path)
    staged: list[_Staged] = []
    with RepoTree(root) as tree:
        current = ""
        try:
            for write in writes:
                current = write.path
                _prepare(tree, write, staged)
            for item in staged:
                current = item.write.path
                _commit(item)
        except BaseException as exc:
            leftovers = _undo(tree, staged)
            if not isinstance(exc, OSError | PathRefused):
                raise
            raise AcceptWriteError(_failure(current, exc, leftovers), current) from None
        _finish(tree, staged)
    return [w.path for w in writes]


def _failure(path: str, exc: OSError | PathRefused, leftovers: list[str]) -> str:
    if isinstance(exc, PathRefused):
        detail = f"{exc.path}: {exc.reason}"
    else:
        detail = f"{path}: {(exc.strerror or str(exc)).lower()}"
    if leftovers:
        return f"cannot accept: {detail}; could not undo {', '.join(leftovers)}"
    return f"cannot accept: {detail} (nothing was written)"


def _prepare(tree: RepoTree, write: PlannedWrite, staged: list[_Staged]) -> None:
    """Stage `write` (appended to `staged` before anything is made, so undo finds it)."""
    fd, name = tree.parent(write.path, create=write.content is not None)
    if fd is None:  # deleting in a directory that is gone: nothing to do
        staged.append(_Staged(write, -1, name))
        return
    try:
        st: os.stat_result | None = os.lstat(name, dir_fd=fd)
    except FileNotFoundError:
        st = None
    if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise PathRefused(write.path, "something other than a file is in the way")
    if write.seen is not None and identity(st) != write.seen:
        raise PathRefused(write.path, "changed while accepting (run accept again)")
    item = _Staged(write, fd, name, existed=st is not None)
    staged.append(item)
    if st is not None:
        backup = temp_name("bak")
        try:
            os.link(name, backup, src_dir_fd=fd, dst_dir_fd=fd, follow_symlinks=False)
            item.backup = backup
        except OSError:
            pass  # no hard links here: this one file cannot be restored if a later step fails
    if write.content is None:
        return
    temp = temp_name("tmp")
    item.temp = temp  # set first: a half-made temporary is removed too
    if write.mode == MODE_LINK:
        if not write.content or b"\0" in write.content:
            raise PathRefused(write.path, "not a valid symbolic link target")
        os.symlink(os.fsdecode(write.content), temp, dir_fd=fd)
        return
    mode = (0o777 if write.mode == MODE_EXEC else 0o666) & ~_umask()
    handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=fd)
    try:
        view = memoryview(write.content)
        while view:
            view = view[os.write(handle, view) :]
        os.fchmod(handle, mode)
        os.fsync(handle)
    finally:
        os.close(handle)


def _commit(item: _Staged) -> None:
    if item.temp is not None:
        os.replace(item.temp, item.name, src_dir_fd=item.fd, dst_dir_fd=item.fd)
        item.temp = None
    elif item.existed:
        os.unlink(item.name, dir_fd=item.fd)
    item.done = True


def _undo(tree: RepoTree, staged: list[_Staged]) -> list[str]:
    """Put every touched path back as it was; the paths that could not be restored."""
    leftovers: list[str] = []
    for item in reversed(staged):
        try:
            if not item.done or (not item.existed and item.write.content is None):
                pass  # untouched, or a deletion of what was not there
            elif item.backup is not None:
                os.replace(item.backup, item.name, src_dir_fd=item.fd, dst_dir_fd=item.fd)
                item.backup = None
            elif not item.existed:
                os.unlink(item.name, dir_fd=item.fd)
            else:
                leftovers.append(item.write.path)  # changed with no backup to restore from
        except OSError:
            leftovers.append(item.write.path)
        for leftover in (item.temp, item.backup):
            if leftover is not None:
                with contextlib.suppress(OSError):
                    os.unlink(leftover, dir_fd=item.fd)
    _remove_dirs(tree, reversed(tree.created))
    return leftovers


def _finish(tree: RepoTree, staged: list[_Staged]) -> None:
    """After the commit: drop backups, remove directories a deletion emptied, sync."""
    emptied: set[str] = set()
    for item in staged:
        if item.backup is not None:
            with contextlib.suppress(OSError):
                os.unlink(item.backup, dir_fd=item.fd)
        if item.write.content is None:
            parent = item.write.path.rpartition("/")[0]
            while parent:
                emptied.add(parent)
                parent = parent.rpartition("/")[0]
    for item in staged:
        if item.fd >= 0:
            with contextlib.suppress(OSError):
                os.fsync(item.fd)
    _remove_dirs(tree, sorted(emptied, key=lambda d: d.count("/"), reverse=True))


def _remove_dirs(tree: RepoTree, directories: Iterable[str]) -> None:
    """rmdir each directory (deepest first, as given) if it is empty; quietly otherwise."""
    for rel in directories:
        parent_rel, _, name = rel.rpartition("/")
        with contextlib.suppress(OSError, PathRefused):
            fd = tree.directory(parent_rel)
            if fd is not None:
                os.rmdir(name, dir_fd=fd)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask

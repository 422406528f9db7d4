"""The engine's copy-back for a `copy` runtime: the agent's result, delivered by the
runtime into an empty staging directory, is made the content of the job's workspace.

Nothing is trusted from the staging tree: it is walked without following any symlink
(`O_NOFOLLOW` at every level), a path that `domain.repo_paths.unsafe_reason` refuses
(`.git` or `.logist` at any depth, `..`, ...) or an entry that is not a file, directory
or symlink fails the step naming the path, and the workspace is written through
`vcs.tree_write` (every directory reached by `openat` without symlinks), so nothing is
ever written outside the workspace, whatever the repository or the agent planted there.
Deletions are applied first, then the writes (a symlink the agent replaced by a real
directory is removed before the directory is made)."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from logist_server.domain.errors import RuntimeProviderError
from logist_server.domain.repo_paths import unsafe_reason
from logist_server.vcs.repo_tree import PathRefused, RepoTree
from logist_server.vcs.tree_write import (
    MODE_EXEC,
    MODE_FILE,
    MODE_LINK,
    AcceptWriteError,
    PlannedWrite,
    write_files,
)

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class CopyBackRefused(RuntimeProviderError):
    """The runtime's result holds a path the engine will not write; names the path."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"the runtime's result was refused: {path}: {reason}")
        self.path = path


def _mode(st: os.stat_result) -> int:
    if stat.S_ISLNK(st.st_mode):
        return MODE_LINK
    return MODE_EXEC if st.st_mode & 0o111 else MODE_FILE


def _entries(fd: int, prefix: str, strict: bool) -> Iterator[tuple[str, int, os.stat_result]]:
    """(path, directory fd, status) of every file or symlink below `fd`, never following a
    symlink. `strict`: an unsafe path or an odd entry raises; else it is skipped (the
    workspace's own `.git`, a nested repository)."""
    for name in sorted(os.listdir(fd)):
        rel = f"{prefix}{name}"
        reason = unsafe_reason(rel)
        st = os.lstat(name, dir_fd=fd)
        if reason is not None:
            if strict:
                raise CopyBackRefused(rel, reason)
            continue
        if stat.S_ISDIR(st.st_mode):
            child = os.open(name, _DIR, dir_fd=fd)
            try:
                if not strict and ".git" in os.listdir(child):
                    continue  # another repository in the workspace: never touched here
                yield from _entries(child, f"{rel}/", strict)
            finally:
                os.close(child)
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            yield rel, fd, st
        elif strict:
            raise CopyBackRefused(rel, "neither a file, a directory nor a symbolic link")


def _content(fd: int, name: str, st: os.stat_result) -> bytes:
    if stat.S_ISLNK(st.st_mode):
        return os.fsencode(os.readlink(name, dir_fd=fd))
    handle = os.open(name, _FILE, dir_fd=fd)
    with os.fdopen(handle, "rb") as file:
        return file.read()


def _staged(staging: Path) -> dict[str, tuple[int, bytes]]:
    top = os.open(staging, _DIR)
    try:
        return {
            rel: (_mode(st), _content(fd, rel.rpartition("/")[2], st))
            for rel, fd, st in _entries(top, "", strict=True)
        }
    finally:
        os.close(top)


def _current(workspace: Path) -> dict[str, int]:
    top = os.open(workspace, _DIR)
    try:
        return {rel: _mode(st) for rel, _, st in _entries(top, "", strict=False)}
    finally:
        os.close(top)


def _same(tree: RepoTree, path: str, mode: int, content: bytes) -> bool:
    with contextlib.suppress(PathRefused, OSError):
        if mode == MODE_LINK:
            return tree.readlink(path) == content
        return tree.read(path) == content
    return False


def copy_back(staging: Path, workspace: Path) -> list[str]:
    """Make `workspace`'s files (its `.git` and nested repositories aside) those of
    `staging`; the paths written or deleted. CopyBackRefused names a refused path."""
    wanted = _staged(staging)
    present = _current(workspace)
    deletions = [
        PlannedWrite(path, None, mode)
        for path, mode in present.items()
        if path not in wanted or wanted[path][0] != mode
    ]
    with RepoTree(workspace) as tree:
        writes = [
            PlannedWrite(path, content, mode)
            for path, (mode, content) in wanted.items()
            if present.get(path) != mode or not _same(tree, path, mode, content)
        ]
    try:
        write_files(workspace, deletions)
        write_files(workspace, writes)
    except AcceptWriteError as exc:
        detail = str(exc).removeprefix("cannot accept: ")
        raise CopyBackRefused(exc.path, detail.removeprefix(f"{exc.path}: ")) from None
    return [w.path for w in (*deletions, *writes)]

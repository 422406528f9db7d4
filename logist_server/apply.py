"""Accepting a job: bring its changes into the user's working tree, all or nothing.

For each changed file the user's current content is merged three-way (base -> result)
with `git merge-file`, so the user's own uncommitted edits stay. If any file conflicts,
nothing is written and the conflicting files are named. The index is never touched.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import tempfile
from pathlib import Path

import msgspec

from .errors import ConflictError, GitError
from .fsutil import atomic_symlink, atomic_write
from .git import git

MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120000


class FileChange(msgspec.Struct, frozen=True):
    """One path changed between base and result (renames appear as delete + add)."""

    path: str
    old_mode: int
    new_mode: int
    old_blob: str | None
    new_blob: str | None


class PlannedWrite(msgspec.Struct, frozen=True):
    path: str
    content: bytes | None  # None: delete
    mode: int


def changed_files(repo: Path, base: str, result: str) -> list[FileChange]:
    """Every file that differs between two commits, from `git diff --raw`."""
    out = git(["diff", "--raw", "-z", "--no-renames", "--abbrev=40", base, result], repo).stdout
    fields = out.split(b"\0")
    changes: list[FileChange] = []
    for i in range(0, len(fields) - 1, 2):
        meta, path = fields[i].decode(), fields[i + 1].decode(errors="surrogateescape")
        old_mode, new_mode, old_blob, new_blob, _status = meta.lstrip(":").split(" ")
        zero = "0" * 40
        changes.append(
            FileChange(
                path=path,
                old_mode=int(old_mode, 8),
                new_mode=int(new_mode, 8),
                old_blob=None if old_blob == zero else old_blob,
                new_blob=None if new_blob == zero else new_blob,
            )
        )
    return changes


def read_blobs(repo: Path, blobs: list[str]) -> dict[str, bytes]:
    """Contents of several blobs through one `git cat-file --batch`."""
    if not blobs:
        return {}
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=repo,
        input="".join(f"{b}\n" for b in blobs).encode(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(f"git cat-file failed: {proc.stderr.decode(errors='replace').strip()}")
    out, pos, contents = proc.stdout, 0, {}
    for blob in blobs:
        header_end = out.index(b"\n", pos)
        sha, _kind, size = out[pos:header_end].decode().split(" ")
        start = header_end + 1
        contents[sha] = out[start : start + int(size)]
        pos = start + int(size) + 1
        if sha != blob:
            raise GitError(f"git cat-file returned {sha} for {blob}")
    return contents


def _current(root: Path, path: str) -> tuple[bytes | None, int | None]:
    """The user's current content and git-style mode of `path`, or (None, None)."""
    full = root / path
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        return None, None
    if stat.S_ISLNK(st.st_mode):
        return os.readlink(full).encode(errors="surrogateescape"), MODE_LINK
    if not stat.S_ISREG(st.st_mode):
        return None, None
    mode = MODE_EXEC if st.st_mode & 0o111 else MODE_FILE
    return full.read_bytes(), mode


def _blocked(root: Path, path: str) -> bool:
    """True when something other than a file or symlink is at `path` or in its parents."""
    full = root / path
    try:
        st = os.lstat(full)
    except FileNotFoundError:
        parent = full.parent
        while parent != root and not parent.exists():
            parent = parent.parent
        return parent != root and not parent.is_dir()
    except NotADirectoryError:
        return True
    return not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode))


def _merge(current: bytes, base: bytes, result: bytes) -> bytes | None:
    """Three-way merge of text; None when the same lines changed on both sides."""
    if b"\0" in current or b"\0" in base or b"\0" in result:
        return None
    with tempfile.TemporaryDirectory(prefix="logist-merge-") as tmp:
        names = []
        for name, content in (("current", current), ("base", base), ("result", result)):
            p = Path(tmp) / name
            p.write_bytes(content)
            names.append(str(p))
        proc = subprocess.run(
            ["git", "merge-file", "-p", "--quiet", *names], capture_output=True, check=False
        )
    if proc.returncode != 0:
        return None
    return proc.stdout


def plan_accept(
    repo: Path, base: str, result: str, only: set[str] | None = None
) -> list[PlannedWrite]:
    """What accepting would write; ConflictError (naming the files) if anything conflicts.

    `only` limits the plan to these repository-relative paths.
    """
    changes = changed_files(repo, base, result)
    if only is not None:
        changes = [c for c in changes if c.path in only]
    blobs = read_blobs(repo, sorted({b for c in changes for b in (c.old_blob, c.new_blob) if b}))
    plan: list[PlannedWrite] = []
    conflicts: list[str] = []
    for change in changes:
        if change.new_mode == 0o160000 or change.old_mode == 0o160000:
            continue  # submodule pointers are not files to write
        base_content = blobs[change.old_blob] if change.old_blob else None
        new_content = blobs[change.new_blob] if change.new_blob else None
        if _blocked(repo, change.path):
            conflicts.append(change.path)  # a directory (or device...) is where a file goes
            continue
        current, current_mode = _current(repo, change.path)
        if current == new_content and (new_content is None or current_mode == change.new_mode):
            continue  # already there
        if current == base_content:
            mode = change.new_mode if change.new_blob else change.old_mode
            if current_mode not in (None, change.old_mode) and change.new_mode == change.old_mode:
                mode = current_mode  # keep a mode the user set
            plan.append(PlannedWrite(change.path, new_content, mode))
            continue
        if current is None or base_content is None or new_content is None:
            conflicts.append(change.path)
            continue
        merged = _merge(current, base_content, new_content)
        if merged is None:
            conflicts.append(change.path)
            continue
        mode = (
            change.new_mode if change.new_mode != change.old_mode else (current_mode or MODE_FILE)
        )
        plan.append(PlannedWrite(change.path, merged, mode))
    if conflicts:
        raise ConflictError(
            "cannot accept: you changed the same lines since the job started in "
            + ", ".join(conflicts)
            + " (nothing was written)",
            conflicts,
        )
    return plan


def execute_plan(repo: Path, plan: list[PlannedWrite]) -> list[str]:
    """Write the planned files, each atomically; returns the paths written."""
    for write in plan:
        full = repo / write.path
        if write.content is None:
            with contextlib.suppress(FileNotFoundError):
                full.unlink()
            _remove_empty_dirs(repo, full.parent)
        elif write.mode == MODE_LINK:
            full.parent.mkdir(parents=True, exist_ok=True)
            atomic_symlink(full, write.content.decode(errors="surrogateescape"))
        else:
            if full.is_symlink() or full.is_dir():
                if full.is_dir() and not full.is_symlink():
                    raise ConflictError(
                        f"cannot accept: {write.path} is a directory here", [write.path]
                    )
                full.unlink()
            atomic_write(full, write.content, 0o755 if write.mode == MODE_EXEC else _file_mode())
    return [w.path for w in plan]


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove_empty_dirs(repo: Path, directory: Path) -> None:
    while directory != repo and repo in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent

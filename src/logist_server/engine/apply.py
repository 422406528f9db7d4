"""Accepting a job: bring its changes into the user's working tree, all or nothing.

For each changed file the user's current content is merged three-way (base -> result)
with `git merge-file`, so the user's own uncommitted edits stay. If any file conflicts,
nothing is written and each conflicting file is named with the reason. The index is never
touched.

What is accepted is exactly what was reviewed: git reads job content with replace objects
disabled, the result commit's tree is checked against the one recorded at harvest, and
every path is checked against `repo_paths.unsafe_reason` (nothing into `.git`, `.logist`
or outside the repository). Files are read and written through `RepoTree` (never through a
symlinked directory) and `tree_write` (all or nothing); contents are compared and merged in
git's normalised form and written in the checkout's form (`checkout_form`).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

import msgspec

from logist_server.domain.errors import ConflictError, GitError, LogistError
from logist_server.domain.repo_paths import unsafe_reason
from logist_server.vcs.checkout_form import READ_ENV, CheckoutForm
from logist_server.vcs.git import git
from logist_server.vcs.repo_tree import PathRefused, RepoTree
from logist_server.vcs.tree_write import (
    MODE_EXEC,
    MODE_FILE,
    MODE_LINK,
    PlannedWrite,
    identity,
    write_files,
)

__all__ = [
    "MODE_EXEC",
    "MODE_FILE",
    "MODE_LINK",
    "FileChange",
    "PlannedWrite",
    "ResultMismatchError",
    "UnsafeResultError",
    "changed_files",
    "content_writes",
    "execute_plan",
    "plan_accept",
    "read_blobs",
    "read_current",
    "verify_result",
]

MODE_GITLINK = 0o160000
_OBJECT_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?\Z")


class FileChange(msgspec.Struct, frozen=True):
    """One path changed between base and result (a rename is a delete plus an add)."""

    path: str
    old_mode: int
    new_mode: int
    old_blob: str | None
    new_blob: str | None
    moved: str | None = None  # the other path of a rename: where it went, or came from


class UnsafeResultError(ConflictError):
    """The job's result holds a path accept must never write: the whole accept is refused."""


class ResultMismatchError(LogistError):
    """The job's result is not what was recorded (and reviewed): nothing is written."""


class _Conflict(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def changed_files(repo: Path, base: str, result: str) -> list[FileChange]:
    """Every file that differs between two commits, in path order (`git diff-tree`)."""
    out = git(
        ["diff-tree", "-r", "-z", "-M", "--no-abbrev", "--no-ext-diff", base, result, "--"],
        repo,
        env=READ_ENV,
    ).stdout
    fields = out.split(b"\0")
    changes: list[FileChange] = []
    i = 0
    while i < len(fields) - 1:
        meta = fields[i].decode()
        old_mode, new_mode, old_blob, new_blob, status = meta.lstrip(":").split(" ")
        old_id = None if set(old_blob) == {"0"} else old_blob
        new_id = None if set(new_blob) == {"0"} else new_blob
        path = fields[i + 1].decode(errors="surrogateescape")
        if status.startswith("R"):
            to = fields[i + 2].decode(errors="surrogateescape")
            changes.append(FileChange(path, int(old_mode, 8), 0, old_id, None, to))
            changes.append(FileChange(to, 0, int(new_mode, 8), None, new_id, path))
            i += 3
            continue
        changes.append(FileChange(path, int(old_mode, 8), int(new_mode, 8), old_id, new_id))
        i += 2
    return sorted(changes, key=lambda c: c.path)


def read_blobs(repo: Path, blobs: list[str]) -> dict[str, bytes]:
    """Contents of several blobs through one `git cat-file --batch` (no replace objects)."""
    if not blobs:
        return {}
    proc = git(
        ["cat-file", "--batch"], repo, env=READ_ENV, input="".join(f"{b}\n" for b in blobs).encode()
    )
    out, pos, contents = proc.stdout, 0, {}
    for blob in blobs:
        header_end = out.index(b"\n", pos)
        header = out[pos:header_end].decode(errors="replace").split(" ")
        if len(header) != 3 or header[0] != blob or header[1] != "blob":
            raise GitError(f"git cat-file: {blob} is not a blob here ({' '.join(header[1:])})")
        start = header_end + 1
        contents[blob] = out[start : start + int(header[2])]
        pos = start + int(header[2]) + 1
    return contents


def verify_result(repo: Path, base: str, result: str, expected_tree: str | None) -> None:
    """ResultMismatchError unless `result` (and `base`) are the commits that were reviewed.

    With replace objects disabled a full commit id names exactly one content; when harvest
    recorded the result's tree, the commit must still have that tree.
    """
    for name, commit in (("base", base), ("result", result)):
        if not _OBJECT_ID.match(commit):
            raise ResultMismatchError(
                f"cannot accept: the job's {name} {commit!r} is not a full id"
            )
    out = git(
        ["rev-parse", f"{base}^{{commit}}", f"{result}^{{commit}}", f"{result}^{{tree}}"],
        repo,
        env=READ_ENV,
        check=False,
    )
    lines = out.stdout.decode().split()
    if out.returncode != 0 or lines[:2] != [base, result] or len(lines) != 3:
        raise ResultMismatchError(
            f"cannot accept: the job's commits {base[:12]}..{result[:12]} are missing from the "
            "repository (nothing was written)"
        )
    if expected_tree is not None and lines[2] != expected_tree:
        raise ResultMismatchError(
            f"cannot accept: the job's result has tree {lines[2][:12]}, not the reviewed "
            f"{expected_tree[:12]} (nothing was written)"
        )


def plan_accept(
    repo: Path,
    base: str,
    result: str,
    only: set[str] | None = None,
    expected_tree: str | None = None,
) -> list[PlannedWrite]:
    """What accepting would write; ConflictError (naming each file and why) if anything
    conflicts, UnsafeResultError if the result holds a path accept must never write.

    `only` limits the plan to these repository-relative paths. `expected_tree` is the
    result tree recorded at harvest (checked when given).
    """
    verify_result(repo, base, result, expected_tree)
    changes = changed_files(repo, base, result)
    _refuse_unsafe(changes)  # all of them: a forged result is refused even in part
    if only is not None:
        changes = [c for c in changes if c.path in only]
    changes = [c for c in changes if MODE_GITLINK not in (c.old_mode, c.new_mode)]
    blobs = read_blobs(repo, sorted({b for c in changes for b in (c.old_blob, c.new_blob) if b}))
    plan: list[PlannedWrite] = []
    conflicts: dict[str, str] = {}
    files = [c.path for c in changes if MODE_LINK not in (c.old_mode, c.new_mode)]
    with RepoTree(repo) as tree, CheckoutForm(repo, files) as form:
        renames = _UserRenames(repo, tree, form)
        for change in changes:
            try:
                write = _plan_file(change, blobs, tree, form, renames)
            except _Conflict as conflict:
                conflicts[change.path] = conflict.reason
                continue
            except PathRefused as refused:
                conflicts[change.path] = (
                    refused.reason if refused.path == change.path else str(refused)
                )
                continue
            if write is not None:
                plan.append(write)
    if conflicts:
        detail = "; ".join(f"{path}: {reason}" for path, reason in conflicts.items())
        raise ConflictError(
            f"cannot accept: {detail} (nothing was written)", list(conflicts), conflicts
        )
    return plan


def execute_plan(repo: Path, plan: list[PlannedWrite]) -> list[str]:
    """Write the planned files, all or nothing (`tree_write`); returns the paths written."""
    return write_files(repo, plan)


def read_current(repo: Path, path: str) -> bytes | None:
    """The user's regular file `path` as it is now, read without following a symlinked
    directory; None when it is missing, unsafe, or not a regular file."""
    if unsafe_reason(path) is not None:
        return None
    try:
        with RepoTree(repo) as tree:
            st = tree.lstat(path)
            if st is None or not stat.S_ISREG(st.st_mode):
                return None
            return tree.read(path)
    except (PathRefused, OSError):
        return None


def content_writes(repo: Path, contents: dict[str, bytes]) -> list[PlannedWrite]:
    """Writes replacing whole files with `contents`, each keeping its current mode (for
    hunk-by-hunk accepts: pass them to `execute_plan` with the rest, as one set)."""
    writes = []
    with RepoTree(repo) as tree:
        for path, content in contents.items():
            try:
                st = tree.lstat(path)
            except PathRefused:
                st = None  # execute_plan refuses it, naming the reason
            mode = MODE_EXEC if st is not None and st.st_mode & 0o111 else MODE_FILE
            writes.append(PlannedWrite(path, content, mode))
    return writes


# -- planning one file -----------------------------------------------------------------------
def _refuse_unsafe(changes: list[FileChange]) -> None:
    seen: set[str] = set()
    for change in changes:
        reason = unsafe_reason(change.path)
        if reason is None and change.path in seen:
            reason = "it appears twice"
        if reason is not None:
            raise UnsafeResultError(
                f"cannot accept: the job's result holds {change.path!r} ({reason}): refused, "
                "nothing was written",
                [change.path],
            )
        seen.add(change.path)


def _plan_file(
    change: FileChange,
    blobs: dict[str, bytes],
    tree: RepoTree,
    form: CheckoutForm,
    renames: _UserRenames,
) -> PlannedWrite | None:
    """The write that brings `change` into the user's tree (None: already there)."""
    base = blobs[change.old_blob] if change.old_blob else None
    new = blobs[change.new_blob] if change.new_blob else None
    st = tree.lstat(change.path)
    seen = identity(st)
    current, current_mode = _current(tree, form, change.path, st)
    if current == new and (new is None or current_mode == change.new_mode):
        return None  # already there
    if current == base and (base is None or _kind(current_mode) == _kind(change.old_mode)):
        mode = change.new_mode if change.new_blob else change.old_mode
        if current_mode not in (None, change.old_mode) and change.new_mode == change.old_mode:
            mode = current_mode  # keep a mode the user set
        if new is None or mode == MODE_LINK:
            return PlannedWrite(change.path, new, mode, seen)
        content = form.smudge(change.path, new, change.new_blob)
        return PlannedWrite(change.path, content, mode, seen)
    if current is None:
        assert base is not None
        raise _Conflict(renames.describe(change.path, change.old_blob, len(base)))
    if base is None:
        raise _Conflict("you created a different file there")
    if new is None:
        if change.moved:
            raise _Conflict(f"you changed it, and the job moves it to {change.moved}")
        raise _Conflict("you changed it, and the job deletes it")
    if MODE_LINK in (current_mode, change.old_mode, change.new_mode):
        raise _Conflict("a symbolic link, changed on both sides")
    if b"\0" in current or b"\0" in base or b"\0" in new:
        raise _Conflict("binary, changed on both sides")
    merged = _merge(current, base, new)
    if merged is None:
        raise _Conflict("you changed the same lines")
    mode = change.new_mode if change.new_mode != change.old_mode else (current_mode or MODE_FILE)
    return PlannedWrite(change.path, form.smudge(change.path, merged), mode, seen)


def _kind(mode: int | None) -> str:
    return "link" if mode == MODE_LINK else "file"


def _current(
    tree: RepoTree, form: CheckoutForm, path: str, st: os.stat_result | None
) -> tuple[bytes | None, int | None]:
    """The user's current content (normalised) and git-style mode of `path` (whose status
    is `st`), or (None, None)."""
    if st is None:
        return None, None
    if stat.S_ISLNK(st.st_mode):
        return tree.readlink(path), MODE_LINK
    if stat.S_ISDIR(st.st_mode):
        raise _Conflict("a directory is in the way")
    if not stat.S_ISREG(st.st_mode):
        raise _Conflict("something other than a file is in the way")
    mode = MODE_EXEC if st.st_mode & 0o111 else MODE_FILE
    return form.clean(path, tree.read(path)), mode


def _merge(current: bytes, base: bytes, result: bytes) -> bytes | None:
    """Three-way merge of text; None when the same lines changed on both sides."""
    with tempfile.TemporaryDirectory(prefix="logist-merge-") as tmp:
        names = []
        for name, content in (("current", current), ("base", base), ("result", result)):
            p = Path(tmp) / name
            p.write_bytes(content)
            names.append(name)
        proc = git(["merge-file", "-p", "--quiet", *names], Path(tmp), env=READ_ENV, check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout


class _UserRenames:
    """Why a file the job changed is missing: renamed (a rename staged in the index, or an
    untracked file with exactly its content), or deleted."""

    MAX_CANDIDATES = 2000

    def __init__(self, repo: Path, tree: RepoTree, form: CheckoutForm) -> None:
        self.repo, self.tree, self.form = repo, tree, form
        self._index: dict[str, list[str]] | None = None
        self._paths: set[str] = set()
        self._untracked: list[str] | None = None

    def describe(self, path: str, blob: str | None, size: int) -> str:
        """`you renamed it to NEW` or `you deleted it`, for `path` that held `blob`."""
        if self._index is None:
            self._index = {}
            out = git(["ls-files", "-s", "-z"], self.repo, env=READ_ENV, check=False).stdout
            for entry in filter(None, out.split(b"\0")):
                meta, _, name = entry.partition(b"\t")
                decoded = name.decode(errors="surrogateescape")
                self._paths.add(decoded)
                self._index.setdefault(meta.split(b" ")[1].decode(), []).append(decoded)
        others = [p for p in self._index.get(blob or "", []) if p != path]
        if others and path not in self._paths:
            return f"you renamed it to {others[0]}"
        moved = self._untracked_copy(path, blob, size) if blob else None
        if moved is not None:
            return f"you renamed it to {moved}"
        return "you deleted it"

    def _untracked_copy(self, path: str, blob: str, size: int) -> str | None:
        """An untracked file whose content (as git would store it) is `blob`."""
        if self._untracked is None:
            out = git(
                ["ls-files", "-o", "--exclude-standard", "-z"], self.repo, env=READ_ENV, check=False
            ).stdout
            names = [n.decode(errors="surrogateescape") for n in out.split(b"\0") if n]
            self._untracked = [n for n in names if "\n" not in n][: self.MAX_CANDIDATES]
        converted = path in self.form.paths
        candidates = []
        for name in self._untracked:
            try:
                st = self.tree.lstat(name)
            except PathRefused:
                continue
            if st is None or not stat.S_ISREG(st.st_mode):
                continue
            if st.st_size == size or (converted and st.st_size <= 2 * size + 64):
                candidates.append(name)
        if not candidates:
            return None
        hashed = git(
            ["hash-object", "--stdin-paths"],
            self.repo,
            env=READ_ENV,
            input="".join(f"{n}\n" for n in candidates).encode(errors="surrogateescape"),
            check=False,
        )
        if hashed.returncode != 0:
            return None
        for name, oid in zip(candidates, hashed.stdout.decode().split(), strict=False):
            if oid == blob:
                return name
        return None

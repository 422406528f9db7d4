"""The user's files as the editor's hunk-by-hunk accept sees and writes them.

Hunks are lines of git's normalised form (the job's blobs). The user's file is read without
following a symlink anywhere in its path (`RepoTree`) and cleaned by git itself
(`CheckoutForm.clean`: CRLF to LF for `* text eol=crlf` or `core.autocrlf=true`, a
`working-tree-encoding`...), so the hunks are located in the same form they were made in.
The new content is turned back into the checkout's form (`CheckoutForm.smudge`) and becomes
a `PlannedWrite` that remembers what was read, for `apply.execute_plan` to write with the
rest of the accept, all or nothing, and to refuse if the file changed meanwhile.

An open buffer is already text: its line endings are normalised the way git's clean would
(`* text eol=crlf`: CRLF to LF), and new lines go into it with the buffer's own ending.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import msgspec

from logist_server.domain.errors import GitError
from logist_server.domain.repo_paths import unsafe_reason
from logist_server.support.closing import Closing
from logist_server.vcs.checkout_form import CheckoutForm
from logist_server.vcs.repo_tree import PathRefused, RepoTree
from logist_server.vcs.tree_write import MODE_EXEC, MODE_FILE, PlannedWrite, identity


class FileRefused(Exception):
    """The path cannot take a hunk: `reason` says why (a symlinked directory...)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class WorkingFile(msgspec.Struct, frozen=True):
    """A regular file of the user's tree, read for a hunk-by-hunk accept."""

    path: str
    text: str  # normalised (git's clean form), bytes that are not UTF-8 kept as surrogates
    mode: int
    seen: tuple[int, int, int]  # `tree_write.identity` when it was read


class HunkFiles(Closing):
    """Reads and planned writes of one accept's modified text files, in one repository."""

    def __init__(self, repo: Path, paths: list[str]) -> None:
        self.form = CheckoutForm(repo, paths)
        self.tree = RepoTree(repo)
        self._crlf: dict[str, bool] = {}

    def close(self) -> None:
        self.tree.close()
        self.form.close()

    def check(self, path: str) -> os.stat_result | None:
        """`path`'s status when a hunk may go there (None: nothing there now); FileRefused
        for a path accept never writes, one behind a symlinked directory or another
        repository, or one that is not a regular file."""
        reason = unsafe_reason(path)
        if reason is not None:
            raise FileRefused(path, f"{reason} (refused)")
        try:
            st = self.tree.lstat(path)
        except PathRefused as refused:
            raise FileRefused(path, refused.reason) from None
        if st is None or stat.S_ISREG(st.st_mode):
            return st
        if stat.S_ISLNK(st.st_mode):
            raise FileRefused(path, "is a symbolic link now (accept never writes through one)")
        if stat.S_ISDIR(st.st_mode):
            raise FileRefused(path, "a directory is in the way")
        raise FileRefused(path, "something other than a file is in the way")

    def read(self, path: str) -> WorkingFile | None:
        """The file as it is on disk, normalised; None when it is gone. FileRefused as
        `check`."""
        st = self.check(path)
        if st is None:
            return None
        try:
            raw = self.tree.read(path)
        except PathRefused as refused:
            raise FileRefused(path, refused.reason) from None
        text = self.form.clean(path, raw).decode(errors="surrogateescape")
        mode = MODE_EXEC if st.st_mode & 0o111 else MODE_FILE
        return WorkingFile(path, text, mode, identity(st))

    def write(self, file: WorkingFile, text: str) -> PlannedWrite:
        """The write putting normalised `text` into `file`, in the checkout's form; refused
        at write time if the file is no longer the one that was read."""
        content = self.form.smudge(file.path, text.encode(errors="surrogateescape"))
        return PlannedWrite(file.path, content, file.mode, file.seen)

    def crlf_normalised(self, path: str) -> bool:
        """True when git's clean turns CRLF into LF for `path` (so a buffer is compared
        with its CRLFs as LFs, and gets CRLF line endings for new lines)."""
        known = self._crlf.get(path)
        if known is None:
            known = crlf_normalised(self.form, path)
            self._crlf[path] = known
        return known


def crlf_normalised(form: CheckoutForm, path: str) -> bool:
    """Whether `form`'s clean conversion of `path` turns CRLF into LF (asked of git)."""
    if path not in form.paths:
        return False
    try:
        return form.clean(path, b"x\r\n") == b"x\n"
    except GitError:
        return False  # a conversion that refuses the probe (an encoding): compare as is


def normalise_buffer(text: str, crlf: bool) -> str:
    """An open buffer's text in the form hunks are made in (same lines, same numbering)."""
    return text.replace("\r\n", "\n") if crlf else text


def buffer_lines(new_lines: list[str], buffer_text: str, crlf: bool) -> str:
    """A hunk's new lines as text for a buffer: with CRLF endings when the buffer uses them
    and git normalised them (the hunk's lines end in LF then)."""
    if not crlf or "\r\n" not in buffer_text:
        return "".join(new_lines)
    return "".join(
        line[:-1] + "\r\n" if line.endswith("\n") and not line.endswith("\r\n") else line
        for line in new_lines
    )

"""A job's change as hunks with stable ids, mapped onto the text the user has now.

Hunks come from the immutable base -> result diff of a job, so their ids never change:
`<job id>/<n>`. To accept one into a buffer that may have been edited since the job's base,
its base lines are located in the current text through a line diff of base -> current;
if the user changed any line inside the hunk (or right at an insertion point), the hunk is
a conflict and nothing of it is applied.
"""

from __future__ import annotations

import difflib
import itertools
import re
from pathlib import Path

import msgspec

from logist_server.domain.model import Job
from logist_server.engine.apply import MODE_LINK, changed_files, read_blobs


class Hunk(msgspec.Struct, frozen=True):
    """Lines `old_start..old_end` (0-based, end exclusive) of the base become `new_lines`."""

    id: str
    path: str
    old_start: int
    old_end: int
    old_lines: list[str]
    new_lines: list[str]
    new_start: int = 0  # where `new_lines` start in the result (0-based)


class FileHunks(msgspec.Struct, frozen=True):
    """The hunks of one file; `kind` says how the file itself changes."""

    path: str
    kind: str  # modify | create | delete | binary
    hunks: list[Hunk]


class MappedHunk(msgspec.Struct, frozen=True):
    """A hunk located in the current text: lines `start..end` there (0-based, exclusive)."""

    hunk: Hunk
    start: int
    end: int
    conflict: bool


# str.splitlines also breaks at these; LSP breaks lines at \n, \r\n and \r only.
_NOT_LSP_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str) -> list[str]:
    """Lines with their endings, as difflib wants them, numbered as an LSP client does."""
    if _NOT_LSP_BREAKS.search(text) is None:
        return text.splitlines(keepends=True)
    return _LSP_LINE.findall(text)


def job_hunks(repo: Path, job: Job) -> list[FileHunks]:
    """All hunks of a job in review, in path order, numbered from 1."""
    base, result = job.base_commit, job.result.result_commit
    if base is None or result is None or base == result:
        return []
    changes = changed_files(repo, base, result)
    blobs = read_blobs(repo, sorted({b for c in changes for b in (c.old_blob, c.new_blob) if b}))
    files: list[FileHunks] = []
    number = 0
    for change in sorted(changes, key=lambda c: c.path):
        old = blobs[change.old_blob] if change.old_blob else b""
        new = blobs[change.new_blob] if change.new_blob else b""
        binary = b"\0" in old or b"\0" in new or MODE_LINK in (change.old_mode, change.new_mode)
        kind = (
            "binary"
            if binary
            else "create"
            if change.old_blob is None
            else "delete"
            if change.new_blob is None
            else "modify"
        )
        old_lines = split_lines(old.decode(errors="replace"))
        new_lines = split_lines(new.decode(errors="replace"))
        hunks: list[Hunk] = []
        if binary or (old_lines == new_lines):  # binary, or a mode-only change
            number += 1
            hunks.append(Hunk(f"{job.id}/{number}", change.path, 0, len(old_lines), [], []))
        else:
            matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes():
                if tag == "equal":
                    continue
                number += 1
                hunks.append(
                    Hunk(
                        id=f"{job.id}/{number}",
                        path=change.path,
                        old_start=i1,
                        old_end=i2,
                        old_lines=old_lines[i1:i2],
                        new_lines=new_lines[j1:j2],
                        new_start=j1,
                    )
                )
        files.append(FileHunks(change.path, kind, hunks))
    return files


def map_hunks(base_text: str, current_text: str, hunks: list[Hunk]) -> list[MappedHunk]:
    """Locate each hunk of one file in `current_text` (the buffer or file as it is now)."""
    base_lines = split_lines(base_text)
    current_lines = split_lines(current_text)
    if base_lines == current_lines:
        return [MappedHunk(h, h.old_start, h.old_end, False) for h in hunks]
    same = _same_lines(base_lines, current_lines)  # the lines the user left alone
    n_base, n_current = len(base_lines), len(current_lines)
    mapped: list[MappedHunk] = []
    for hunk in hunks:
        mapped.append(_locate(hunk, same, n_base, n_current))
    return mapped


def _same_lines(a: list[str], b: list[str]) -> dict[int, int]:
    """Index in `a` -> index in `b` of the lines both have in common, in order.

    One exact difflib diff of two whole files is quadratic in their repeated lines (blank
    lines, closing braces): seconds for a few thousand lines. So the common head and tail
    are taken as they are; in the rest, difflib with its popularity heuristic finds the
    distinctive lines that anchor the alignment, and only the gaps between two anchors,
    where the repeated lines are, get an exact diff each."""
    n_a, n_b = len(a), len(b)
    head, tail, shortest = 0, 0, min(n_a, n_b)
    while head < shortest and a[head] == b[head]:
        head += 1
    while tail < shortest - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    same = {i: i for i in range(head)}
    same.update({n_a - 1 - k: n_b - 1 - k for k in range(tail)})
    mid_a, mid_b = a[head : n_a - tail], b[head : n_b - tail]
    done_a = done_b = 0
    for anchor in difflib.SequenceMatcher(None, mid_a, mid_b).get_matching_blocks():
        if anchor.a > done_a and anchor.b > done_b:
            gap_a, gap_b = mid_a[done_a : anchor.a], mid_b[done_b : anchor.b]
            gap = difflib.SequenceMatcher(None, gap_a, gap_b, autojunk=False)
            for block in gap.get_matching_blocks():
                for k in range(block.size):
                    same[head + done_a + block.a + k] = head + done_b + block.b + k
        for k in range(anchor.size):
            same[head + anchor.a + k] = head + anchor.b + k
        done_a, done_b = anchor.a + anchor.size, anchor.b + anchor.size
    return same


def _locate(hunk: Hunk, same: dict[int, int], n_base: int, n_current: int) -> MappedHunk:
    start, end = hunk.old_start, hunk.old_end
    if end > start:
        inside = [same.get(i) for i in range(start, end)]
        located = [v for v in inside if v is not None]
        contiguous = len(located) == len(inside) and all(
            b == a + 1 for a, b in itertools.pairwise(located)
        )
        if contiguous:
            return MappedHunk(hunk, located[0], located[0] + (end - start), False)
        return MappedHunk(hunk, start, end, True)
    # An insertion before base line `start`: its neighbours must be where they were.
    before = same.get(start - 1) if start > 0 else -1
    after = same.get(start) if start < n_base else n_current
    if before is not None and after is not None and after == before + 1:
        return MappedHunk(hunk, after, after, False)
    return MappedHunk(hunk, start, start, True)


def exact_lines(hunks: list[Hunk], result_text: str) -> list[Hunk]:
    """`hunks` with their new lines taken from `result_text` (the result decoded another
    way, say keeping bytes that are not UTF-8 as surrogates: same lines, same numbers)."""
    lines = split_lines(result_text)
    return [
        msgspec.structs.replace(h, new_lines=lines[h.new_start : h.new_start + len(h.new_lines)])
        for h in hunks
    ]


def apply_to_text(current_text: str, mapped: list[MappedHunk]) -> str:
    """The current text with the given (non-conflicting) hunks applied."""
    lines = split_lines(current_text)
    for item in sorted(mapped, key=lambda m: m.start, reverse=True):
        new_lines = list(item.hunk.new_lines)
        if item.start == len(lines) and lines and not lines[-1].endswith("\n") and new_lines:
            lines[-1] += "\n"
        lines[item.start : item.end] = new_lines
    return "".join(lines)

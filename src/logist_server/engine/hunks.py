"""A job's change as hunks with stable ids, mapped onto the text the user has now.

One algorithm makes the hunks every surface shows: the editor's diagnostics and code
actions, `logist job hunks` / `job accept --hunk`, and the `@@` sections of `logist job diff`.
It is git's diff of the job's recorded base and result commits with pinned options
(`DIFF_OPTIONS`: the user's `diff.algorithm` or `diff.context` cannot move a boundary), made
once per job, each `@@` section one hunk, its outer context lines left out; a file your
attributes mark `-diff` is binary here as in `job diff`. Files git cannot show as lines
(created, deleted, binary, symbolic links, mode-only changes, the two halves of a rename)
are one whole-file hunk each; submodule (gitlink) changes are never accepted, so they have
no hunk.

Blobs are git's normalised form; line numbers are LSP's (a lone CR breaks a line there, not
in git): git's ranges are converted. A hunk's id is `<job id>/<12 hex>`, a hash of its path,
kind, ranges and text: it does not depend on the order of hunks, so the CLI and the editor
name the same hunk the same way, and an id from another result (a re-run step) is unknown
rather than another hunk.

To accept one into a buffer that may have been edited since the job's base, its base lines
are located in the current text through a line diff of base -> current; if the user changed
any line inside the hunk (or right at an insertion point), the hunk is a conflict and nothing
of it is applied, unless exactly its new lines are already there (`in_place`: an accept that
was written but not yet recorded).
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import re
from pathlib import Path

import msgspec

from logist_server.domain.model import Job
from logist_server.engine.apply import MODE_LINK, FileChange, changed_files, read_blobs
from logist_server.vcs.checkout_form import READ_ENV
from logist_server.vcs.git import git

MODE_GITLINK = 0o160000
#: Git diff options every hunk and `job diff` are made with (configuration cannot change them).
DIFF_OPTIONS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--diff-algorithm=myers",
    "--indent-heuristic",
    "-U3",
    "--inter-hunk-context=0",
)
KINDS = ("modify", "create", "delete", "binary", "mode")
_HEADER = re.compile(rb"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


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
    """The hunks of one file; `kind` says how the file itself changes (`KINDS`): only a
    `modify` file has line hunks, any other is one whole-file hunk."""

    path: str
    kind: str
    hunks: list[Hunk]
    moved: str | None = None  # a rename's other path: its two halves are accepted together


class MappedHunk(msgspec.Struct, frozen=True):
    """A hunk located in the current text: lines `start..end` there (0-based, exclusive).
    `in_place`: a conflict whose new lines are exactly there already (accepted before)."""

    hunk: Hunk
    start: int
    end: int
    conflict: bool
    in_place: bool = False


# str.splitlines also breaks at these; LSP breaks lines at \n, \r\n and \r only.
_NOT_LSP_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str) -> list[str]:
    """Lines with their endings, as difflib wants them, numbered as an LSP client does."""
    if _NOT_LSP_BREAKS.search(text) is None:
        return text.splitlines(keepends=True)
    return _LSP_LINE.findall(text)


def hunk_id(
    job_id: str, path: str, kind: str, hunk: tuple[int, int, int, list[str], list[str]]
) -> str:
    """The stable id of a hunk: `<job id>/` and a hash of what it is."""
    start, end, new_start, old, new = hunk
    digest = hashlib.sha256()
    for part in (path, kind, f"{start},{end},{new_start}", "".join(old), "".join(new)):
        digest.update(part.encode(errors="surrogateescape"))
        digest.update(b"\0")
    return f"{job_id}/{digest.hexdigest()[:12]}"


def job_hunks(repo: Path, job: Job) -> list[FileHunks]:
    """All hunks of a job in review, in path order (empty before it has a result)."""
    base, result = job.base_commit, job.result.result_commit
    if base is None or result is None or base == result:
        return []
    changes = [
        c for c in changed_files(repo, base, result) if MODE_GITLINK not in (c.old_mode, c.new_mode)
    ]
    blobs = read_blobs(repo, sorted({b for c in changes for b in (c.old_blob, c.new_blob) if b}))
    files: list[FileHunks] = []
    sections: dict[str, _Sections] | None = None  # git's diff, made once
    for change in sorted(changes, key=lambda c: c.path):
        old = blobs[change.old_blob] if change.old_blob else b""
        new = blobs[change.new_blob] if change.new_blob else b""
        kind = _kind(change, old, new)
        old_lines = split_lines(old.decode(errors="replace"))
        new_lines = split_lines(new.decode(errors="replace"))
        parts: list[tuple[int, int, int, list[str], list[str]]] = []
        if kind == "modify":
            if sections is None:
                sections = _sections(repo, base, result, changes)
            ranges = _git_ranges(repo, change, old, new, sections)
            if ranges is None:
                kind = "binary"  # git would not show it as lines
            else:
                parts = [(a, b, c, old_lines[a:b], new_lines[c:d]) for a, b, c, d in ranges]
        if kind != "modify":
            # one whole-file hunk: accepted through the whole-file three-way merge
            text_kind = kind in ("create", "delete")
            parts = [
                (0, len(old_lines) if text_kind else 0, 0,
                 old_lines if text_kind else [], new_lines if text_kind else [])
            ]  # fmt: skip
        hunks = [
            Hunk(hunk_id(job.id, change.path, kind, p), change.path, p[0], p[1], p[3], p[4], p[2])
            for p in parts
        ]
        files.append(FileHunks(change.path, kind, hunks, change.moved))
    return files


def _kind(change: FileChange, old: bytes, new: bytes) -> str:
    if MODE_LINK in (change.old_mode, change.new_mode) or b"\0" in old or b"\0" in new:
        return "binary"
    if change.old_blob is None:
        return "create"
    if change.new_blob is None:
        return "delete"
    if old == new:
        return "mode"
    return "modify"


# `@@` sections of one file as git line ranges (old start, old end, new start, new end),
# or None when git shows the file as binary (attributes included).
_Sections = list[tuple[int, int, int, int]] | None


def _sections(
    repo: Path, base: str, result: str, changes: list[FileChange]
) -> dict[str, _Sections]:
    """Git's diff of the two commits (the options of `job diff`, renames off), made once:
    each modified file's `@@` sections, by path. No file name is parsed: a section is known
    by the (old blob, new blob) pair of its `index` line, and files with the same pair (the
    same change in two files, which attributes may show differently) come in git's order,
    the byte order of their paths. The content of each section is skipped by its line
    counts: a line the agent wrote is never read as a header."""
    out = git(
        ["diff", *DIFF_OPTIONS, "--full-index", "--no-renames", base, result, "--"],
        repo,
        env=READ_ENV,
    ).stdout
    found: dict[tuple[str, str], list[_Sections]] = {}
    pair: tuple[str, str] | None = None
    lines = out.split(b"\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.startswith(b"diff --git "):
            pair = None
        elif line.startswith(b"index ") and pair is None:
            ids = line[6:].split(b" ")[0].split(b"..")
            if len(ids) == 2:
                pair = (ids[0].decode(errors="replace"), ids[1].decode(errors="replace"))
                found.setdefault(pair, []).append([])
        elif line.startswith(b"Binary files ") and pair is not None:
            found[pair][-1] = None
        elif (match := _HEADER.match(line)) is not None and pair is not None:
            a, b = _span(int(match[1]), match[2])
            c, d = _span(int(match[3]), match[4])
            ranges = found[pair][-1]
            if ranges is not None:
                ranges.append((a, b, c, d))
            old_left, new_left = b - a, d - c
            while (old_left > 0 or new_left > 0) and i < len(lines):
                mark = lines[i][:1]
                i += 1
                old_left -= mark in (b" ", b"-")
                new_left -= mark in (b" ", b"+")
    by_path: dict[str, _Sections] = {}
    for change in sorted(changes, key=lambda c: c.path.encode(errors="surrogateescape")):
        pending = found.get((change.old_blob or "", change.new_blob or ""))
        if pending:
            by_path[change.path] = pending.pop(0)
    return by_path


def _git_ranges(
    repo: Path,
    change: FileChange,
    old: bytes,
    new: bytes,
    sections: dict[str, _Sections],
) -> list[tuple[int, int, int, int]] | None:
    """Each `@@` section of git's diff of the file, without its outer context, as LSP line
    ranges (old start, old end, new start, new end); None when git calls it binary."""
    assert change.old_blob is not None and change.new_blob is not None
    if change.path in sections:
        raw = sections[change.path]
    else:
        raw = _blob_sections(repo, change.old_blob, change.new_blob)
    if raw is None:
        return None
    old_map, new_map = _lsp_numbers(old), _lsp_numbers(new)
    old_git, new_git = _git_lines(old), _git_lines(new)
    ranges = []
    for a, b, c, d in raw:
        a, b, c, d = _trim(old_git, new_git, a, b, c, d)
        ranges.append((old_map[a], old_map[b], new_map[c], new_map[d]))
    return ranges


def _blob_sections(repo: Path, old_blob: str, new_blob: str) -> _Sections:
    """The `@@` sections of git's diff of two blobs (a file the commits' diff did not show:
    not expected, kept as a fallback)."""
    out = git(["diff", *DIFF_OPTIONS, old_blob, new_blob], repo, env=READ_ENV).stdout
    ranges: list[tuple[int, int, int, int]] = []
    for line in out.split(b"\n"):
        if line.startswith(b"Binary files ") and not ranges:
            return None
        match = _HEADER.match(line)
        if match is not None:
            ranges.append((*_span(int(match[1]), match[2]), *_span(int(match[3]), match[4])))
    return ranges


def _span(start: int, count: bytes | None) -> tuple[int, int]:
    """A `@@` range (1-based start, count; an empty range names the line before) as 0-based
    start and exclusive end of git lines."""
    n = 1 if count is None else int(count)
    first = start - 1 if n else start
    return first, first + n


def _trim(
    old: list[bytes], new: list[bytes], a: int, b: int, c: int, d: int
) -> tuple[int, int, int, int]:
    """The section without its leading and trailing context (lines equal on both sides)."""
    while a < b and c < d and old[a] == new[c]:
        a, c = a + 1, c + 1
    while b > a and d > c and old[b - 1] == new[d - 1]:
        b, d = b - 1, d - 1
    return a, b, c, d


def _git_lines(content: bytes) -> list[bytes]:
    """Lines as git counts them (broken at LF only), each with its LF (not the last one
    of a file without a final newline)."""
    pieces = content.split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]]
    return [*lines, pieces[-1]] if pieces[-1] else lines


def _lsp_numbers(content: bytes) -> list[int]:
    """For each git line index (and one past the last), the LSP line it starts at."""
    numbers = [0]
    for line in _git_lines(content):
        text = line.decode(errors="replace")
        numbers.append(numbers[-1] + len(split_lines(text if text.endswith("\n") else text + "\n")))
    return numbers


def map_hunks(base_text: str, current_text: str, hunks: list[Hunk]) -> list[MappedHunk]:
    """Locate each hunk of one file in `current_text` (the buffer or file as it is now)."""
    base_lines = split_lines(base_text)
    current_lines = split_lines(current_text)
    if base_lines == current_lines:
        return [MappedHunk(h, h.old_start, h.old_end, False) for h in hunks]
    same = _same_lines(base_lines, current_lines)  # the lines the user left alone
    return [_locate(hunk, same, len(base_lines), current_lines) for hunk in hunks]


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


def _locate(hunk: Hunk, same: dict[int, int], n_base: int, current: list[str]) -> MappedHunk:
    start, end = hunk.old_start, hunk.old_end
    n_current = len(current)
    if end > start:
        inside = [same.get(i) for i in range(start, end)]
        located = [v for v in inside if v is not None]
        contiguous = len(located) == len(inside) and all(
            b == a + 1 for a, b in itertools.pairwise(located)
        )
        if contiguous:
            return MappedHunk(hunk, located[0], located[0] + (end - start), False)
    else:
        # An insertion before base line `start`: its neighbours must be where they were.
        before = same.get(start - 1) if start > 0 else -1
        after = same.get(start) if start < n_base else n_current
        if before is not None and after is not None and after == before + 1:
            return MappedHunk(hunk, after, after, False)
    # A conflict, unless exactly the hunk's new lines sit between its unchanged neighbours.
    before = same.get(start - 1) if start > 0 else -1
    after = same.get(end) if end < n_base else n_current
    if before is None or after is None or before >= after:
        return MappedHunk(hunk, start, end, True)
    in_place = current[before + 1 : after] == hunk.new_lines
    return MappedHunk(hunk, before + 1 if in_place else start, after if in_place else end,
                      True, in_place)  # fmt: skip


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

"""The user's request for changes to a job in review: comments, each on the whole job or on
one of its hunks, checked and located (file and lines in the job's result), then rendered
as the brief of the worker step that addresses them (`Engine.request_changes`).

Comments are the user's text, but they reach an agent's prompt and the job's log: each is
bounded (`MAX_COMMENT_CHARS`, `MAX_COMMENTS`, `MAX_BRIEF_CHARS` in all), must say
something, and its control characters (but newline and tab) are shown escaped (`\\x1b`),
never passed on; a lone surrogate becomes U+FFFD. A hunk id must be one of the job's hunks
now (`hunk_select.find_hunk`): an unknown or stale one is a UsageError naming it.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.engine.hunk_select import find_hunk, full_id
from logist_server.engine.hunks import FileHunks, Hunk

MAX_COMMENTS = 100
MAX_COMMENT_CHARS = 64 * 1024
MAX_BRIEF_CHARS = 256 * 1024
QUOTED_LINES = 20  # of a hunk's new lines, quoted under its comment
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class ChangeComment(msgspec.Struct, frozen=True):
    """One comment as given: its text, and the hunk it is about (None: the whole job)."""

    text: str
    hunk_id: str | None = None


class LocatedComment(msgspec.Struct, frozen=True, omit_defaults=True):
    """A checked comment with where it applies: `lines` are 1-based, inclusive, in the
    job's result (the files the next step starts from); None for a whole file or job."""

    text: str
    hunk: str | None = None
    path: str | None = None
    lines: tuple[int, int] | None = None
    kind: str | None = None  # the file's change when not `modify` (create, delete, ...)
    quoted: list[str] | None = None  # the hunk's new lines (at most QUOTED_LINES)
    removed: tuple[int, int] | None = None  # base lines a pure deletion removed


def clean_text(text: str) -> str:
    """`text` with CR LF as LF and control characters escaped (newline and tab kept)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SURROGATE.sub("\ufffd", text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", text)


def locate(job: Job, files: list[FileHunks], comments: list[ChangeComment]) -> list[LocatedComment]:
    """The comments checked (bounds, blank, hunk ids) and located; UsageError otherwise."""
    if not comments:
        raise UsageError("no comment given: say what should change")
    if len(comments) > MAX_COMMENTS:
        raise UsageError(f"{len(comments)} comments, over the limit of {MAX_COMMENTS}")
    out: list[LocatedComment] = []
    for number, comment in enumerate(comments, 1):
        if len(comment.text) > MAX_COMMENT_CHARS:
            raise UsageError(
                f"comment {number} is {len(comment.text)} characters long, over the limit of "
                f"{MAX_COMMENT_CHARS}"
            )
        text = clean_text(comment.text).strip()
        if not text:
            raise UsageError(f"comment {number} is empty")
        if comment.hunk_id is None:
            out.append(LocatedComment(text))
            continue
        given = clean_text(comment.hunk_id)
        if not full_id(job, given).startswith(job.id + "/"):
            raise UsageError(f"hunk {given!r} does not belong to job {job.id}")
        file, hunk = find_hunk(job, files, given)
        out.append(_located(text, file, hunk))
    return out


def _located(text: str, file: FileHunks, hunk: Hunk) -> LocatedComment:
    if file.kind != "modify":
        return LocatedComment(text, hunk.id, file.path, kind=file.kind)
    quoted = [line.rstrip("\r\n") for line in hunk.new_lines[:QUOTED_LINES]]
    if hunk.new_lines:
        lines = (hunk.new_start + 1, hunk.new_start + len(hunk.new_lines))
        quoted = [clean_text(q) for q in quoted]
        return LocatedComment(text, hunk.id, file.path, lines, quoted=quoted)
    removed = (hunk.old_start + 1, hunk.old_end)
    before = (hunk.new_start + 1, hunk.new_start + 1)  # the line that now follows the gap
    return LocatedComment(text, hunk.id, file.path, before, removed=removed)


def render_brief(comments: list[LocatedComment]) -> str:
    """The worker step's brief: what the user asks, each comment with its file and lines."""
    parts = ["The user reviewed your change and asks for these changes:"]
    for number, comment in enumerate(comments, 1):
        parts += ["", f"{number}. {_where(comment)}"]
        if comment.quoted:
            more = " (first lines)" if len(comment.quoted) >= QUOTED_LINES else ""
            parts.append(f"   The change there{more}:")
            parts += [f"   | {line}" for line in comment.quoted]
        parts += [f"   {line}" if line else "" for line in comment.text.split("\n")]
    brief = "\n".join(parts) + "\n"
    if len(brief) > MAX_BRIEF_CHARS:
        raise UsageError(
            f"the comments make a brief of {len(brief)} characters, over the limit of "
            f"{MAX_BRIEF_CHARS}: say it in fewer words"
        )
    return brief


def _where(comment: LocatedComment) -> str:
    if comment.path is None:
        return "On the whole change:"
    if comment.kind is not None:
        return f"On {comment.path} (the whole file: {comment.kind}):"
    if comment.removed is not None:
        start, end = comment.removed
        return (
            f"On {comment.path}, where lines {start}-{end} of the original were removed "
            f"(just before line {comment.lines[0] if comment.lines else 1} now):"
        )
    assert comment.lines is not None
    start, end = comment.lines
    span = f"line {start}" if start == end else f"lines {start}-{end}"
    return f"On {comment.path}, {span}:"


def event_data(step: int, comments: list[LocatedComment]) -> dict[str, Any]:
    """The `changes_requested` event's data (keys one word each: the wire camelCases only
    the top level)."""
    rows = []
    for c in comments:
        row: dict[str, Any] = {"text": c.text}
        if c.hunk is not None:
            row["hunk"] = c.hunk
        if c.path is not None:
            row["path"] = c.path
        if c.lines is not None:
            row["lines"] = list(c.lines)
        rows.append(row)
    return {"step": step, "comments": rows}

"""The one-line-per-job listing: the columns the store keeps for it and how a line reads.

The store writes `summary_columns(job)` next to each record and indexes them with the
creation time, so that `logist job list` prints 10,000 lines from the index alone, without
reading a record. SQLite composes each line (`LINE_SELECT`), which is about twice as fast as
formatting the rows in Python. This module imports nothing: the lean `job list` path
(`cli/fast_list.py`) uses it too, and both print the same bytes.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself costs an import; mypy reads the block below
if TYPE_CHECKING:
    from collections.abc import Iterable

    from logist_server.domain.model import Job

HEADLINE_MAX = 200  # characters of the prompt's first line kept in the column
PROMPT_WIDTH = 48  # characters of the headline a line shows, "…" included

# id, status, creation time (local, to the minute), agent, target file or "-", headline.
# `%!-10s` pads to a width in characters, as Python's `f"{s:<10}"` does, not in bytes.
LINE_SELECT = (
    "SELECT printf('%s  %-12s %s  %!-10s %!-24s %s' || char(10), id, status,"
    " strftime('%Y-%m-%d %H:%M', created_at, 'unixepoch', 'localtime'), agent,"
    " coalesce(target, '-'),"
    f" CASE WHEN length(headline) > {PROMPT_WIDTH}"
    f" THEN substr(headline, 1, {PROMPT_WIDTH - 1}) || '…' ELSE headline END)"
    " FROM jobs"
)


# Control characters (C0, DEL, C1, and the Unicode line and paragraph separators) and the
# backslash, as C-style escapes: `\n`, `\t`, `\x1b`, `\\`.
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}
_ESCAPES = {
    code: _NAMED.get(chr(code), f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    for code in [*range(0x20), 0x5C, *range(0x7F, 0xA0), 0x2028, 0x2029]
}


def printable(text: str) -> str:
    """`text` on one line with nothing a terminal acts on: control characters escaped.

    A file name or prompt holding a newline stays one listing line (and cannot pass for a
    second job); an escape sequence cannot drive the terminal."""
    return text.translate(_ESCAPES)


def headline(prompt: str) -> str:
    """The prompt's first line once stripped (what `job list` shows of it, untruncated)."""
    stripped = prompt.strip()
    return stripped.splitlines()[0][:HEADLINE_MAX] if stripped else ""


def summary_columns(job: Job) -> tuple[str, str | None, str]:
    """(agent, target file, headline), printable: what the store keeps beside the record."""
    target = printable(job.target.file) if job.target else None
    return printable(job.agent.name), target, printable(headline(job.prompt))


def ordered_query(select: str, statuses: Iterable[str] | None) -> tuple[str, tuple[str, ...]]:
    """`select` over the jobs whose status is in `statuses` (all when None), oldest first."""
    if statuses is None:
        return select + " ORDER BY created_at, id", ()
    wanted = tuple(statuses)
    marks = ",".join("?" * len(wanted))
    return f"{select} WHERE status IN ({marks}) ORDER BY created_at, id", wanted

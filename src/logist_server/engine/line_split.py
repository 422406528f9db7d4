"""Splitting the agent's raw output into complete lines, with a bound on a line.

One output line without a newline would otherwise be held (and re-copied per chunk) in
memory without limit. A line longer than `MAX_LINE` (4 MiB) is cut: what was held of it is
dropped, and so is the rest up to its newline, while the bytes still count as consumed
(the committed cursor moves past them: a re-attach never reads them again). Each cut is
reported once, when it starts (`Split.cuts`).
"""

from __future__ import annotations

import msgspec

MAX_LINE = 4 << 20  # bytes of one output line kept at most (the rest is dropped)


class Split(msgspec.Struct, frozen=True):
    """Complete lines (newline-terminated) and the number of lines cut in this chunk."""

    complete: bytes
    cuts: int = 0


class LineSplitter:
    """Holds the unterminated tail of the output (`partial`, at most `max_line` bytes)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self.partial = b""
        self.dropping = False  # inside a cut line: everything up to its newline goes

    def feed(self, chunk: bytes) -> Split:
        """The complete lines `chunk` ends (with what was held before it)."""
        start = 0
        if self.dropping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return Split(b"")
            self.dropping = False
            start = newline + 1
        data = self.partial + chunk[start:]  # at most max_line + len(chunk) bytes
        cut = data.rfind(b"\n") + 1
        complete, rest = data[:cut], data[cut:]
        cuts = 0
        if len(rest) > self.max_line:
            cuts, rest, self.dropping = 1, b"", True
        self.partial = rest
        return Split(complete, cuts)

"""The answer file a live bridge waits on (`$LOGIST_ANSWER_FILE`), read safely.

The job dir is writable by any process of the user, so whatever sits at the path may be
planted: only a regular file counts, never followed through a symlink, never a FIFO that
would block the reader (Logist's atomic write replaces whatever was planted there).
"""

from __future__ import annotations

import contextlib
import os
import stat

MAX_ANSWER = 64 * 1024


def read_answer(path: str) -> str | None:
    """The answer in `path`, or None while there is none (see the module doc)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return handle.read(MAX_ANSWER).decode("utf-8", "replace")


def clear(path: str) -> None:
    """Remove whatever sits at `path`: an answer left from an earlier question is never
    taken for the next one."""
    with contextlib.suppress(OSError):
        os.unlink(path)

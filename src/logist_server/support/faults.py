"""Fault injection for the recovery tests: `LOGIST_FAULT=<point>` kills this process there.

The kill is a real SIGKILL of the driving process at a named moment, so tests can check that
the next process recovers from exactly that state. Points: `provision` (worktree made, not
recorded), `start` (agent started, handle not recorded), `stream` (first output events
committed), `harvest` (result commit made, job not yet in review).
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "LOGIST_FAULT"
POINTS = ("provision", "start", "stream", "harvest")


def point(name: str) -> None:
    """Die here, at once and without cleanup, when LOGIST_FAULT names this point."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)

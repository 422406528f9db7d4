"""`logist` that SIGKILLs itself at a named moment: test-only fault injection.

    python tests/fault_runner.py POINT [logist arguments...]

Nothing of this ships on the product's path: the runner wraps engine functions from the
outside, then runs the real `logist` entry point in this process. Points (each a real
SIGKILL of the driving process, so the recovery tests can check that the next process
recovers from exactly that state):

- `provision`: the workspace is made, the `workspace` event not yet committed;
- `start`: the agent is started, its `started` event (the handle) not yet recorded;
- `stream`: the first agent events read from its output are committed;
- `harvest`: the result commit is made (and `result.patch` written), not yet recorded;
- `scrubbed`: the step's end is recorded and its `output.log` masked (secrets), not judged.

A point that is never reached leaves the run to finish normally; the tests assert the kill.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logist_server.engine import agent_events
from logist_server.store import job_store
from logist_server.support import redaction

POINTS = ("provision", "start", "stream", "harvest", "scrubbed")
# The event whose recording the kill comes just before, per point.
BEFORE_EVENT = {"provision": "workspace", "start": "started", "harvest": "harvest"}


def die() -> None:
    """At once and without cleanup, as a crash or `kill -9` would."""
    os.kill(os.getpid(), signal.SIGKILL)


def before_event(kind: str) -> None:
    """Kill the process just before the store commits an event of `kind` (whichever thread
    commits it: the event loop's or a writer's)."""
    original = job_store.JobStore.update

    @functools.wraps(original)
    def update(self: job_store.JobStore, job_id: str, mutate: Any, events: Any) -> Any:
        if any(spec[0] == kind and not spec[1].get("recovered") for spec in events):
            die()
        return original(self, job_id, mutate, events)

    job_store.JobStore.update = update  # type: ignore[method-assign]


def after(owner: Any, name: str, when: Callable[[Any, tuple[Any, ...]], bool]) -> None:
    """Kill the process once `owner.name(...)` has returned, if `when(result, args)`."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if when(result, args):
            die()
        return result

    setattr(owner, name, wrapped)


def install(point: str) -> None:
    if point in BEFORE_EVENT:
        before_event(BEFORE_EVENT[point])
    elif point == "stream":  # the first commit that holds agent events

        def committed_events(result: Any, args: tuple[Any, ...]) -> bool:
            return bool(args[1])  # (self, events, ...)

        after(agent_events.AgentEventRecorder, "commit", committed_events)
    elif point == "scrubbed":
        after(redaction, "scrub_file", lambda _result, _args: True)
    else:
        raise SystemExit(f"fault_runner: unknown point {point!r} (known: {', '.join(POINTS)})")


def popen_faulty(point: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    """`logist ARGS` in the background, killing itself at `point` (stdout, stderr captured)."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), point, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def main() -> None:
    point, args = sys.argv[1], sys.argv[2:]
    install(point)
    from logist_server.cli.entry import main as logist

    sys.argv = ["logist", *args]
    sys.exit(logist())


if __name__ == "__main__":
    main()

"""Following a running step: its output read and ingested as events, its limits enforced.

Reads and commits run in worker threads (`off_loop`), so a flood of output never holds the
server's event loop; the position in the output is committed with the events parsed from
it, so a new driver resumes the stream with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from logist_server.domain.event_kinds import EventKind
from logist_server.domain.events import AgentError, AgentEvent
from logist_server.domain.model import Job, JobEvent, JobStatus, RuntimeHandle, Step
from logist_server.engine.agent_events import AgentEventRecorder
from logist_server.engine.job_log import JobLog
from logist_server.engine.line_split import MAX_LINE, LineSplitter
from logist_server.engine.reaping import reap
from logist_server.providers.agents.base import OutputParser
from logist_server.providers.runtimes.base import JobPaths, Runtime
from logist_server.vcs.workspace import latest_change

S = JobStatus
T = TypeVar("T")
READ_CHUNK = 1 << 18  # output read and recorded at once; the loop is free between two
INGEST_THREADS = 2  # worker threads parsing and committing output (`ingest`)
CONTROL_INTERVAL_S = 0.2
MIN_POLL_S = 0.001  # the output poll right after the agent printed (see `follow`)
MIN_EXIT, MAX_EXIT = -255, 255  # exit statuses (and 128 + signal) the OS can report
UNKNOWN_EXIT = -1  # the agent ended without a valid exit status


def exit_status_warning(code: int) -> tuple[str, dict[str, object]]:
    """The event saying the runtime's exit status was out of range (treated as unknown)."""
    shown = str(code) if len(str(code)) <= 24 else str(code)[:24] + "..."
    return EventKind.OBSERVER_WARNING.value, {
        "warning": "exit_status_invalid",
        "reason": f"exit status {shown} is out of range: the agent's exit is unknown "
        f"(recorded as {UNKNOWN_EXIT})",
    }


LINE_CUT = {
    "warning": "line_cut",
    "reason": f"an output line longer than {MAX_LINE} bytes was cut (the rest of it dropped)",
}

# The threads that parse and commit agent output, shared by the drivers of this process:
# apart from the default executor, so a flood never delays a request's worker-thread calls
# (createJob, cancelJob), and few, so they leave the event loop its turn.
_INGEST_POOL = ThreadPoolExecutor(INGEST_THREADS, thread_name_prefix="logist-ingest")


async def off_loop(work: Callable[[], T]) -> T:
    """`work()` in an ingest thread. Cancelled meanwhile (the process is stopping), it
    lets `work` finish first, so no later driver reads that output again while this one
    still records it."""
    future = asyncio.get_running_loop().run_in_executor(_INGEST_POOL, work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait({future})
        raise


class OutputFollower:
    """Streams one step's output into the job's log until the agent exits or is stopped."""

    def __init__(self, log: JobLog, recorder: AgentEventRecorder, poll_s: float) -> None:
        self.log = log
        self.recorder = recorder
        self.poll_s = poll_s
        self._last_activity = time.monotonic()  # of the agent: output, or workspace changes

    async def follow(
        self,
        job: Job,
        step: Step,
        handle: RuntimeHandle,
        paths: JobPaths,
        parser: OutputParser,
        runtime: Runtime,
    ) -> int | None:
        """Stream the agent's output into events until it exits or is stopped; its exit
        status (None when a limit or hang stopped it)."""
        if step.exit_code is not None:  # a previous driver saw it end and recorded everything
            return step.exit_code
        offset = step.output_offset  # bytes consumed (committed), then read
        # The runtime's cursors: just past what is committed (the start of `partial`), and
        # just past what was read. A step recorded before cursors were kept has an offset.
        committed = step.output_cursor
        if committed is None:
            committed = runtime.advance("", offset)
        cursor = committed
        lines = LineSplitter()  # the unterminated tail, bounded (a cut line is dropped)
        done = offset  # bytes consumed: complete lines and dropped bytes
        started = step.started_at or time.time()
        self._last_activity = time.monotonic()
        next_control = 0.0
        while True:
            # At most READ_CHUNK at a time (one commit holds the store that long), read in
            # a worker thread: a megabyte a time on the loop would hold requests back.
            read = functools.partial(runtime.read_output, handle, paths, cursor, READ_CHUNK)
            got = await off_loop(read)
            chunk = got.data
            if chunk:
                self._last_activity = time.monotonic()
                cursor = got.cursor
                split = await off_loop(functools.partial(lines.feed, chunk))  # not on the loop
                offset += len(chunk)
                consumed = offset - len(lines.partial) - done
                if consumed:
                    done += consumed
                    committed = runtime.advance(committed, consumed)
                    job = await self.ingest(
                        parser, split.complete, done, committed, job.status, split.cuts
                    )
                await asyncio.sleep(0)  # between chunks, let the pump and requests run
                if len(chunk) >= READ_CHUNK:
                    continue
                stop = await off_loop(functools.partial(self.check_limits, job, started))
                if stop is not None:
                    return await self.stop(stop, handle, paths, runtime)
                continue
            code = await off_loop(functools.partial(runtime.exit_status, handle, paths))
            if code is not None and not MIN_EXIT <= code <= MAX_EXIT:
                # A status the OS cannot produce (an agent-writable file, a buggy runtime):
                # unknown, said once, never stored or sent as given.
                await self.log.update_off_loop(None, [exit_status_warning(code)])
                code = UNKNOWN_EXIT
            if code is not None:
                more = functools.partial(runtime.read_output, handle, paths, cursor, 1)
                if (await off_loop(more)).data:
                    continue  # output written just before the exit: drain it first
                partial = lines.partial
                tail = parser.feed(partial.decode("utf-8", "replace")) if partial else []
                stopped = (await off_loop(self.log.get)).cancel_requested
                final = parser.finish(None if stopped else code)
                if self.recorder.step_error or any(type(e) is AgentError for e in tail):
                    final = [e for e in final if type(e) is not AgentError]  # said already
                await self.record_end([*tail, *final], offset, cursor, partial, code)
                return code
            now = time.monotonic()
            if now >= next_control:
                next_control = now + CONTROL_INTERVAL_S
                job = await off_loop(self.log.get)
                if job.cancel_requested:
                    await reap(self.log, runtime, handle, paths, job.workspace)
                    continue  # the exit status follows
                stop = await off_loop(functools.partial(self.check_limits, job, started))
                if stop is not None:
                    return await self.stop(stop, handle, paths, runtime)
            # Soon after output, poll often: the agent's next lines or its exit are likely
            # near. Back off to `poll_s` as it stays quiet.
            quiet = time.monotonic() - self._last_activity
            await asyncio.sleep(min(self.poll_s, max(MIN_POLL_S, quiet / 4)))

    async def ingest(
        self,
        parser: OutputParser,
        complete: bytes,
        offset: int,
        cursor: str,
        status: JobStatus,
        cuts: int = 0,
    ) -> Job:
        """Parse, observe and commit complete output lines in a worker thread (on the
        event loop, a flood's chunks would hold every request back), then hand the
        committed rows on from the loop. `cuts`: lines over `MAX_LINE` cut meanwhile,
        each reported by an `observer_warning` event."""

        def commit() -> tuple[Job, list[JobEvent]]:
            events = parser.feed_lines(complete) if complete else []
            plain = b"" if parser.only_events else complete
            notes = [(EventKind.OBSERVER_WARNING.value, LINE_CUT)] * cuts
            return self.recorder.commit(events, offset, plain, status, cursor=cursor, notes=notes)

        job, stored = await off_loop(commit)
        self.log.emit(stored)
        return job

    async def record_end(
        self, events: list[AgentEvent], offset: int, cursor: str, raw: bytes, code: int
    ) -> None:
        """The last events, the exit status and the final cursor, committed in a worker
        thread."""
        commit = self.recorder.commit
        _job, stored = await off_loop(
            functools.partial(commit, events, offset, raw, None, code, cursor=cursor)
        )
        self.log.emit(stored)

    def check_limits(self, job: Job, started: float) -> tuple[JobStatus, str] | None:
        """The stop a limit or a hang calls for (may walk the workspace: off the loop)."""
        limits, usage = job.limits, job.result.usage
        if limits.max_cost_usd is not None and usage.cost_usd > limits.max_cost_usd:
            return (
                S.HALTED,
                f"cost limit: ${usage.cost_usd:.4f} spent, limit ${limits.max_cost_usd:g}",
            )
        if limits.max_cost_usd is not None and usage.unpriced:  # a budget it cannot hold
            return (
                S.HALTED,
                f"cost limit: the cost of {usage.unpriced}'s tokens is unknown (the agent "
                "reports none and Logist has no price for it); add it under `pricing:` in "
                "your configuration",
            )
        if limits.max_turns is not None and usage.turns > limits.max_turns:
            return S.HALTED, f"turn limit: {usage.turns} turns, limit {limits.max_turns}"
        if limits.max_time_s is not None and time.time() - started > limits.max_time_s:
            return S.HALTED, f"time limit: ran longer than {limits.max_time_s:g} s"
        hang = limits.hang_timeout_s
        if hang is not None and job.status == S.RUNNING and self._idle_for(job) > hang:
            return S.STUCK, f"hang: no output and no change in the workspace for {hang:g} s"
        return None

    def _idle_for(self, job: Job) -> float:
        """Seconds without output, unless the workspace changed since (one walk per look)."""
        idle = time.monotonic() - self._last_activity
        timeout = job.limits.hang_timeout_s
        if timeout is None or idle <= timeout or job.workspace is None:
            return idle
        changed_ago = time.time() - latest_change(Path(job.workspace.path))
        if changed_ago < idle:  # the agent works silently: count the change as activity
            self._last_activity = time.monotonic() - changed_ago
            return changed_ago
        return idle

    async def stop(
        self, stop: tuple[JobStatus, str], handle: RuntimeHandle, paths: JobPaths, runtime: Runtime
    ) -> int | None:
        """Settle the job for a limit or a hang, then kill the agent; no exit status."""
        status, reason = stop

        def record(j: Job) -> None:
            j.result.error = reason

        job = await self.log.transition_off_loop(status, reason, mutate=record)
        await reap(self.log, runtime, handle, paths, job.workspace)
        return None

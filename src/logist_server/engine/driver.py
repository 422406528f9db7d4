"""Driving one job: exactly one process at a time (the driver lock), until it settles.

The parts: `phase_loop` (which phase comes next: provision, start, follow, judge),
`output_follower` (a running step's output and limits), `agent_events` (agent events to
job events and state), `step_judge` (what an ended step amounts to), `job_log` (commit,
then tell the listener). The driver needs only `services.DriverServices` of the engine.
"""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

from logist_server.domain.errors import JobBusyError, LogistError, StoreError, StoreFullError
from logist_server.domain.model import Job, JobStatus
from logist_server.domain.states import can_transition
from logist_server.engine.job_log import EventListener, JobLog
from logist_server.engine.phase_loop import PhaseLoop
from logist_server.engine.services import DriverServices
from logist_server.engine.step_runtime import step_paths
from logist_server.providers.runtimes.base import Runtime
from logist_server.support.locks import DriverLock

__all__ = ["EventListener", "JobDriver", "failure_reason", "step_paths"]
S = JobStatus


class JobDriver:
    """Owns one job until it settles (or this process stops)."""

    def __init__(
        self,
        services: DriverServices,
        job_id: str,
        listener: EventListener | None = None,
        poll_s: float = 0.02,
        single_phase: bool = False,
        resume: bool = False,
        replay: Runtime | None = None,
        patch: Path | None = None,
    ) -> None:
        self.job_id = job_id
        self.log = JobLog(services.store, job_id, listener)
        self.loop = PhaseLoop(services, self.log, poll_s, single_phase, resume, replay, patch)
        self._lock = DriverLock(services.store.lock_path(job_id))

    async def run(self) -> Job:
        if not self._lock.try_acquire():
            raise JobBusyError(f"job {self.job_id} is being driven by another process")
        try:
            job = await self.log.get_off_loop()
            try:
                return await self.loop.run()
            except asyncio.CancelledError:
                raise  # this process is stopping: the agent lives on, a later driver re-attaches
            except Exception as exc:
                return await self._fail(job, exc)
        finally:
            self._lock.release()

    async def _fail(self, job: Job, exc: Exception) -> Job:
        """Stop the agent, then settle the job `failed` with the reason.

        When the store cannot record it because its disk is full, the store has given up
        its reserve by then (the agent filling the disk is stopped), so a second try
        records it. When nothing can be recorded, a StoreError says so: the job stays
        active with no agent, and the next driver (`logist job attach`) settles it."""
        reason = failure_reason(exc)
        try:
            current = await self.log.get_off_loop()
        except StoreError:
            current = job  # the last record this driver read
        await asyncio.to_thread(self.loop.kill_agent, current)  # may wait seconds

        def record(j: Job) -> None:
            j.result.error = reason

        for attempt in (1, 2):
            try:
                current = await self.log.get_off_loop()
                if not can_transition(current.status, S.FAILED):
                    return current
                return await self.log.transition_off_loop(S.FAILED, reason, mutate=record)
            except StoreError as error:
                if attempt == 2 or not isinstance(error, StoreFullError):
                    why = "" if reason == str(error) else f" ({reason})"
                    raise StoreError(
                        f"job {self.job_id} failed{why} but the store cannot record it: "
                        f"{error}; once it can, `logist job attach {self.job_id}` settles it"
                    ) from None
        raise AssertionError("unreachable")


def failure_reason(exc: Exception) -> str:
    """The reason a job failed on `exc`, as a person reads it (a full disk says so)."""
    if isinstance(exc, LogistError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" for {exc.filename}" if exc.filename else ""
        return f"no space left on the disk{where} ({exc.strerror})"
    return f"{type(exc).__name__}: {exc}"

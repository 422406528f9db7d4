"""Waiting for the user's answer once an agent asked and ended (`answer_via = "resume"`).

A real CLI run headless exits when it asks; the job stays in `needs_input` with no agent
alive until `logist job answer` (any process) records the answer and moves it back to
`running`, and the phase loop then resumes the agent's session with the answer. While it
waits, a cancel settles the job and the job's limits still hold (the step's time runs on,
as it did when the agent waited alive).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from logist_server.domain.model import Job, JobStatus
from logist_server.engine.job_log import JobLog

S = JobStatus
POLL_S = 0.2  # a store read off the event loop: cheap, and an answer comes at a human's pace

#: The stop a limit calls for (status, reason), or None: `OutputFollower.check_limits`.
LimitCheck = Callable[[Job], "tuple[JobStatus, str] | None"]


async def await_answer(log: JobLog, limits: LimitCheck) -> Job:
    """The job once it no longer waits for an answer: answered (`running`), cancelled, or
    settled by a limit."""
    while True:
        job = await log.get_off_loop()
        if job.status != S.NEEDS_INPUT:
            return job
        if job.cancel_requested:
            return await log.transition_off_loop(S.CANCELLED, "cancelled by user")
        stop = limits(job)
        if stop is not None:
            status, reason = stop

            def record(j: Job, reason: str = reason) -> None:
                j.result.error = reason

            return await log.transition_off_loop(status, reason, mutate=record)
        await asyncio.sleep(POLL_S)

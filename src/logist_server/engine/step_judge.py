"""Judging a finished step: harvested (done), a supervisor's verdict, retry, failover or
failed; and the user's repository checked for changes made during the step."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from logist_server.domain import questions
from logist_server.domain.model import Job, JobStatus, RuntimeHandle, Step
from logist_server.domain.plans import consecutive_retries
from logist_server.domain.roles import SUPERVISOR, parse_verdict
from logist_server.domain.states import SETTLED
from logist_server.engine import repo_guard
from logist_server.engine.agent_events import last_error
from logist_server.engine.job_log import JobLog, in_writer
from logist_server.engine.reaping import reap
from logist_server.engine.services import DriverServices
from logist_server.engine.step_runtime import harvest_step
from logist_server.providers.agents.base import answer_via
from logist_server.providers.runtimes.base import JobPaths, Runtime
from logist_server.store.job_store import EventSpec
from logist_server.support.fsutil import atomic_write
from logist_server.support.redaction import redact_bytes
from logist_server.vcs.workspace import reset_workspace

S = JobStatus
CONTROL_INTERVAL_S = 0.2


class StepJudge:
    """Decides what an ended step amounts to and records it."""

    def __init__(self, services: DriverServices, log: JobLog) -> None:
        self.services = services
        self.log = log

    async def judge(
        self, code: int | None, handle: RuntimeHandle, paths: JobPaths, runtime: Runtime
    ) -> Job:
        """Decide what the ended step amounts to: done (harvested), retry, failover, failed."""
        job = await self.log.get_off_loop()
        await reap(self.log, runtime, handle, paths, job.workspace)  # nothing outlives its step
        number = job.current_step.number if job.current_step is not None else 0
        changed = await asyncio.to_thread(  # git and hashing: off the event loop
            repo_guard.changes_since, self.services.repo_info, self.log.store, self.log.job_id,
            number,
        )  # fmt: skip
        if changed:  # before any git runs on the repository again
            return await self.repo_changed(changed)
        if job.status in SETTLED:
            return job  # a limit or hang already settled it
        if job.cancel_requested:
            return await self.log.transition_off_loop(S.CANCELLED, "cancelled by user")
        step, workspace = job.current_step, job.workspace
        assert step is not None and workspace is not None
        if code != 0 or (step.failure is not None and not step.transient):
            # A failure the observer saw (auth, context overflow...) fails the step even
            # when the agent exits 0 after it.
            if job.status == S.NEEDS_INPUT:  # it asked, then failed: nobody waits for it
                job = await self.log.transition_off_loop(S.RUNNING, "the agent failed after asking")
            return await self.after_failure(job, step, code)
        provider = self.services.agents.get(step.agent or job.agent.name)
        if questions.asked_in(job, step.number) and answer_via(provider) == "resume":
            return await self.asked(job, step)  # the answer resumes its session in a new step
        if job.status == S.NEEDS_INPUT:  # it ended while waiting for an answer
            job = await self.log.transition_off_loop(
                S.RUNNING, "the agent finished without waiting for an answer"
            )
        role = self.services.role(job, step.role)
        if role.kind == SUPERVISOR:
            return await self.record_verdict(job, step)
        harvested = await asyncio.to_thread(harvest_step, runtime, job, handle, workspace, paths)
        job_dir = self.log.store.job_dir(job.id)
        patch = redact_bytes(harvested.patch)  # a copy for people; accept reads git
        await asyncio.to_thread(atomic_write, job_dir / "result.patch", patch)

        def record_result(j: Job) -> None:
            j.result.diff = harvested.stats
            j.result.result_commit = harvested.result_commit
            j.result.result_tree = harvested.result_tree
            j.result.exit_code = code
            j.steps[-1].result_commit = harvested.result_commit
            j.steps[-1].outcome = "done"

        stats = harvested.stats
        return await self.log.update_off_loop(
            record_result,
            [("harvest", {"step": step.number, "files": stats.paths,
                          "insertions": stats.insertions, "deletions": stats.deletions})],
        )  # fmt: skip

    async def asked(self, job: Job, step: Step) -> Job:
        """The step asked a question and ended: nothing is harvested (the next step goes on
        in the same workspace); the job waits in `needs_input` unless answered already."""
        question = job.question
        assert question is not None
        return await self.end_step("asked", ("asked", {
            "step": step.number, "question": question.id,
            "answered": question.answer is not None}))  # fmt: skip

    async def repo_changed(self, changed: list[str]) -> Job:
        """The user's git metadata changed during the step: report what, fail the step."""
        reason = repo_guard.describe(changed)
        job = await self.log.update_off_loop(None, [("repo_changed", {"changed": changed})])
        if job.status in SETTLED:
            return job  # a limit, a hang or a cancel settled it: the event reports it

        def record(j: Job) -> None:
            j.result.error = reason
            j.steps[-1].outcome = "failed"

        return await self.log.transition_off_loop(S.FAILED, reason, mutate=record)

    async def record_verdict(self, job: Job, step: Step) -> Job:
        """A supervisor's reply: approve, or changes with comments (its edits are undone)."""
        text = await in_writer(functools.partial(self.messages_of, step.number))
        verdict = parse_verdict(text)
        assert job.workspace is not None
        checkpoint = step.checkpoint or job.workspace.base_commit
        await asyncio.to_thread(reset_workspace, job.workspace, checkpoint)  # git: off the loop

        def record(j: Job) -> None:
            s = j.steps[-1]
            s.outcome = "done"
            s.verdict = verdict[0] if verdict else None
            s.comments = verdict[1] if verdict else None

        data: dict[str, Any] = {"step": step.number}
        if verdict is None:
            data["verdict"] = None
            data["comments"] = "the supervisor's reply has no VERDICT line"
        else:
            data["verdict"], data["comments"] = verdict
        return await self.log.update_off_loop(record, [("verdict", data)])

    async def after_failure(self, job: Job, step: Step, code: int | None) -> Job:
        """Retry a transient failure with backoff, then fail over, then fail."""
        reason = step.failure or await in_writer(self.last_error)
        reason = reason or f"agent exited with status {code}"
        if code not in (None, 0) and str(code) not in reason:
            reason = f"{reason} (exit status {code})"
        policy = job.policy
        retries = consecutive_retries(job)
        workspace = job.workspace
        assert workspace is not None
        checkpoint = step.checkpoint or workspace.base_commit
        if step.transient and retries < policy.max_retries:
            delay = min(policy.max_backoff_s, policy.backoff_s * 2**retries)
            job = await self.end_step("retry", ("retry", {
                "step": step.number, "attempt": retries + 1, "of": policy.max_retries,
                "delay_s": delay, "reason": reason, "agent": step.agent}))  # fmt: skip
            await asyncio.to_thread(reset_workspace, workspace, checkpoint)
            return await self.backoff(job, delay)
        fallback = policy.fallback_agent
        if fallback and fallback != step.agent and not any(s.agent == fallback for s in job.steps):
            job = await self.end_step("failover", ("failover", {
                "step": step.number, "from": step.agent, "to": fallback,
                "reason": reason}))  # fmt: skip
            await asyncio.to_thread(reset_workspace, workspace, checkpoint)
            return job

        def record_failure(j: Job) -> None:
            j.result.error = reason
            j.result.exit_code = code
            j.steps[-1].outcome = "failed"

        return await self.log.transition_off_loop(S.FAILED, reason, mutate=record_failure)

    async def end_step(self, outcome: str, event: EventSpec) -> Job:
        def record(j: Job) -> None:
            j.steps[-1].outcome = outcome

        return await self.log.update_off_loop(record, [event])

    def messages_of(self, number: int) -> str:
        """The text step `number` said (reads the store: call it in a worker thread)."""
        start = self.log.step_start_seq(number)
        return "\n".join(
            str(e.data.get("text", ""))
            for e in self.log.store.events(self.log.job_id, after=start)
            if e.kind == "message"
        )

    def last_error(self) -> str | None:
        """The last agent error among the job's latest events (call it in a worker thread)."""
        after = max(0, self.log.last_seq() - 50)
        return last_error(self.log.store.events(self.log.job_id, after=after))

    async def backoff(self, job: Job, delay: float) -> Job:
        """Wait before a retry; a cancel cuts the wait short."""
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            await asyncio.sleep(min(CONTROL_INTERVAL_S, max(0.0, deadline - time.monotonic())))
            job = await self.log.get_off_loop()
            if job.cancel_requested:
                break
        return job

"""The job's phase loop: provision, start a step, follow it, judge it, until the job settles.

Every status change is committed to the store before the driver acts on it. The work of
a phase is done by `OutputFollower` (a running step's output and limits) and `StepJudge`
(what an ended step amounts to); this module decides which phase comes next.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from pathlib import Path

import msgspec

from logist_server.domain.model import DiffStats, Job, JobStatus, RuntimeHandle, Step
from logist_server.domain.plans import Settle, StartStep, current_checkpoint, plan_next
from logist_server.domain.prompts import render_prompt
from logist_server.domain.roles import SUPERVISOR, render_instructions
from logist_server.domain.sessions import resume_event
from logist_server.domain.states import SETTLED
from logist_server.engine import repo_guard
from logist_server.engine.agent_events import AgentEventRecorder
from logist_server.engine.answers import await_answer
from logist_server.engine.job_log import JobLog, in_writer
from logist_server.engine.output_follower import OutputFollower, off_loop
from logist_server.engine.services import DriverServices
from logist_server.engine.step_judge import StepJudge
from logist_server.engine.step_runtime import (
    apply_patch,
    kill_step_agent,
    locate_step,
    make_workspace,
    start_agent,
    started_data,
    step_paths,
    write_prompts,
)
from logist_server.providers.agents.base import (
    AgentContext,
    build_spec,
    continuation_for,
    with_continuation,
)
from logist_server.providers.registry import declare_job_secrets
from logist_server.providers.runtimes.base import Runtime
from logist_server.support import redaction
from logist_server.vcs.workspace import start_keeping_base

S = JobStatus


class PhaseLoop:
    """Moves one job through its phases until it settles, pauses or this process stops."""

    def __init__(
        self,
        services: DriverServices,
        log: JobLog,
        poll_s: float,
        single_phase: bool,
        resume: bool,
        replay: Runtime | None,
        patch: Path | None = None,
    ) -> None:
        self.services = services
        self.log = log
        self.store = log.store
        self.job_id = log.job_id
        self.single_phase = single_phase  # `job step`: one phase, then pause
        self.resume = resume  # `job step` / `job run` continue a paused job
        self.replay = replay  # `job poststep`: the next step runs on this runtime instead
        self.patch = patch  # ... with this patch applied to the workspace first
        self._started: set[int] = set()  # steps whose agent this process started
        self.recorder = AgentEventRecorder(log, services.observer.for_job())  # own budgets
        self.follower = OutputFollower(log, self.recorder, poll_s)
        self.judge = StepJudge(services, log)

    async def run(self) -> Job:
        job = await self.log.get_off_loop()
        declare_job_secrets(job)  # masked here too, not only where its step was built
        if job.status == S.DRAFT and not self.resume:
            return job  # a draft runs only when asked: `job step` or `job run`
        if job.paused:
            if not self.resume:
                return job  # `job step` paused it: only `job step` or `job run` continue it
            job = await self.log.update_off_loop(_unpause, [("resumed", {})])
        while job.status not in SETTLED:
            if job.status in (S.DRAFT, S.PENDING) or job.workspace is None:
                job = await self.provision(job)
                phase_done = self.replay is None  # poststep goes on to its step
            else:
                job, phase_done = await self.step(job)
            if job.status in SETTLED:
                break
            if self.single_phase and phase_done:
                job = await self.log.update_off_loop(_pause, [("paused", {})])
                break
        return job

    async def provision(self, job: Job) -> Job:
        """pending -> provisioning with a workspace (kept when a restep reuses it)."""
        if job.status == S.DRAFT:
            job = await self.log.transition_off_loop(S.PENDING)
        if job.status == S.PENDING:
            job = await self.log.transition_off_loop(S.PROVISIONING)
        if job.cancel_requested:
            return await self.log.transition_off_loop(S.CANCELLED, "cancelled by user")
        if job.workspace is not None and Path(job.workspace.path).is_dir():
            return job
        assert job.base_commit is not None
        services = self.services
        # The base stays reachable for reruns after the job's branch is gone.
        keeper = await asyncio.to_thread(  # spawning git costs the loop milliseconds
            start_keeping_base, services.repo, job.id, job.base_commit
        )
        try:
            # The engine makes the workspace (git, here); the runtime gets it at start.
            workspace = await asyncio.to_thread(make_workspace, services, job)
            await asyncio.to_thread(keeper.output)
        finally:
            keeper.close()

        def record(j: Job) -> None:
            j.workspace = workspace

        job = await self.log.update_off_loop(
            record,
            [("workspace", {"path": workspace.path, "branch": workspace.branch,
                            "base": workspace.base_commit})],
        )  # fmt: skip
        if job.cancel_requested:
            return await self.log.transition_off_loop(S.CANCELLED, "cancelled by user")
        return job

    async def step(self, job: Job) -> tuple[Job, bool]:
        """Run the current agent step to its end (starting the next one if needed).

        Returns the job and whether a whole step ran (False: only a decision was made)."""
        step = job.current_step
        if step is None or step.outcome is not None:
            if job.cancel_requested:
                return await self.log.transition_off_loop(S.CANCELLED, "cancelled by user"), False
            if step is not None and step.outcome == "asked" and job.status == S.NEEDS_INPUT:
                started = step.started_at or time.time()
                limits = functools.partial(self.follower.check_limits, started=started)
                return await await_answer(self.log, limits), False
            plan = plan_next(job, self.services.roles())
            if isinstance(plan, Settle):
                return await self.settle_plan(job, plan), False
            job = await self.start_step(job, plan)
        job = await self.run_current(job)
        if job.status not in SETTLED and job.current_step is not None:
            # Settle right away when nothing else is to run (no pause before a no-op).
            plan = plan_next(job, self.services.roles())
            if isinstance(plan, Settle) and not job.cancel_requested:
                job = await self.settle_plan(job, plan)
        return job, True

    async def settle_plan(self, job: Job, plan: Settle) -> Job:
        if plan.status == S.REVIEW:
            stats = job.result.diff or DiffStats()
            summary = f"{stats.files} file(s) changed, +{stats.insertions} -{stats.deletions}"
            return await self.log.transition_off_loop(
                S.REVIEW,
                f"{summary}; {plan.reason}" if plan.reason else summary,
                data={
                    "files": stats.paths,
                    "insertions": stats.insertions,
                    "deletions": stats.deletions,
                },
            )

        def record(j: Job) -> None:
            j.result.error = plan.reason

        return await self.log.transition_off_loop(plan.status, plan.reason, mutate=record)

    async def start_step(self, job: Job, plan: StartStep) -> Job:
        assert job.workspace is not None
        services = self.services
        number = len(job.steps) + 1
        job_dir = self.store.job_dir(job.id)
        paths = step_paths(job_dir, number)
        Path(paths.dir).mkdir(parents=True, exist_ok=True)
        role = services.role(job, plan.role)
        step_job = services.job_for_step(job, role, plan.agent)
        diff = ""
        if role.kind == SUPERVISOR:
            patch = await asyncio.to_thread(services.reviewed_diff, job)  # git, not a file
            diff = patch.decode("utf-8", "replace")
        rendered = render_instructions(role, render_prompt(job), diff, plan.brief or "")
        prompt_file = Path(paths.dir) / "prompt.txt"
        await asyncio.to_thread(write_prompts, job_dir, prompt_file, job.prompt, rendered)
        ctx = AgentContext(
            workspace=job.workspace.path,
            job_dir=str(job_dir),
            prompt_file=str(prompt_file),
            rendered_prompt=rendered,
            answer_file=str(Path(paths.dir) / "answer"),
            role=role.name,
            step=number,
            role_kind=role.kind,
        )
        provider = services.agents.get(step_job.agent.name)
        # Why it runs, the job's history, and the agent session it continues (if any).
        going_on = continuation_for(provider, job, role.name, step_job.agent.name)
        ctx = with_continuation(ctx, going_on)
        # The launch nonce: recorded on the step (below, durably) BEFORE the runtime starts
        # anything, handed to the runtime with the spec, so `locate` can always prove
        # which process (or container, pod) is this step's agent.
        launch = secrets.token_hex(16)
        spec = msgspec.structs.replace(build_spec(provider, step_job, ctx), launch=launch)
        checkpoint = current_checkpoint(job)

        def add_step(j: Job) -> None:
            j.steps.append(
                Step(
                    number=number,
                    role=role.name,
                    started_at=time.time(),
                    agent=step_job.agent.name,
                    model=step_job.agent.model,
                    checkpoint=checkpoint,
                    brief=plan.brief,
                    why=going_on.why,
                    resumed_session=going_on.session,
                    launch=launch,
                )
            )

        data = {"step": number, "role": role.name, "agent": step_job.agent.name,
                "argv": spec.argv}  # fmt: skip
        payload = resume_event(number, going_on)  # resumed, or why not: never silence
        if job.status == S.PROVISIONING:
            job = await self.log.transition_off_loop(S.RUNNING, mutate=add_step, data=data)
        else:
            job = await self.log.update_off_loop(add_step, [("step", data)])
        if payload is not None:
            job = await self.log.update_off_loop(None, [("resume", payload)])
        workspace = job.workspace
        assert workspace is not None
        runtime = self.replay or services.runtime_for(job)
        edits, self.replay, self.patch = self.patch, None, None  # one step only
        if edits is not None:
            await asyncio.to_thread(apply_patch, workspace, edits)
        # Compared when it ends; kept in memory and the database, out of the agent's reach.
        # Both run git or spawn processes: in a worker thread, off the event loop.
        info = services.repo_info
        await asyncio.to_thread(repo_guard.record, info, self.store, self.job_id, number)
        handle = await asyncio.to_thread(start_agent, runtime, step_job, workspace, spec, paths)
        self._started.add(number)

        def set_handle(j: Job) -> None:
            j.steps[-1].handle = handle

        event = ("started", started_data(number, handle))
        return await self.log.update_off_loop(set_handle, [event])

    async def run_current(self, job: Job) -> Job:
        """Follow the current step's agent until it ends, then judge how it went."""
        step = job.current_step
        assert step is not None and job.workspace is not None
        runtime = self.services.runtime_for(job)
        paths = step_paths(self.store.job_dir(job.id), step.number)
        found = await asyncio.to_thread(locate_step, runtime, job, step, paths)
        if found.state == "never_started":  # the previous driver died before starting it
            return await self.restart_step(job)
        if found.state != "found" or found.handle is None:
            return await self.agent_unknown(job, step, runtime, found.detail)
        handle = found.handle
        if step.handle is None:  # it died right after starting it: record what we found
            job, step = await self.record_found_handle(step, handle)
        runtime = self.services.runtime_for_handle(job, handle)
        if step.number not in self._started and not runtime.supports_reattach:
            return await self.cannot_reattach(job, step, runtime)
        self.recorder.step_error = await in_writer(functools.partial(self.recorder.had_error, step))
        parser = self.services.agents.get(step.agent or job.agent.name).new_parser()
        code = await self.follower.follow(job, step, handle, paths, parser, runtime)
        # Read to the end: mask declared secrets in the agent's raw output file.
        await off_loop(functools.partial(redaction.scrub_file, paths.output))
        return await self.judge.judge(code, handle, paths, runtime)

    async def record_found_handle(self, step: Step, handle: RuntimeHandle) -> tuple[Job, Step]:
        def set_handle(j: Job) -> None:
            j.steps[-1].handle = handle

        event = ("started", started_data(step.number, handle, recovered=True))
        job = await self.log.update_off_loop(set_handle, [event])
        current = job.current_step
        assert current is not None
        return job, current

    async def restart_step(self, job: Job) -> Job:
        step = job.current_step
        assert step is not None

        def discard(j: Job) -> None:
            j.steps[-1].outcome = "discarded"

        return await self.log.update_off_loop(
            discard, [("restart", {"step": step.number, "reason": "the agent had not started"})]
        )

    async def agent_unknown(self, job: Job, step: Step, runtime: Runtime, detail: str) -> Job:
        """The step's driver died after asking the runtime to start the agent and the
        runtime cannot tell whether it runs: fail the step rather than start a second agent
        beside one that may still run (and edit, and bill)."""
        reason = (
            f"runtime '{runtime.name}' cannot tell whether step {step.number}'s agent started "
            f"({detail or 'not found'}); it may still run: not starting a second one"
        )

        def record(j: Job) -> None:
            j.result.error = reason
            j.steps[-1].outcome = "failed"

        return await self.log.transition_off_loop(S.FAILED, reason, mutate=record)

    async def cannot_reattach(self, job: Job, step: Step, runtime: Runtime) -> Job:
        """The step's agent was started by a process that stopped, and its runtime cannot
        follow an agent it did not start (`supports_reattach`): stop it, run the step again."""
        await asyncio.to_thread(kill_step_agent, self.services, job)

        def discard(j: Job) -> None:
            j.steps[-1].outcome = "discarded"

        reason = f"runtime '{runtime.name}' cannot re-attach to an agent another process started"
        return await self.log.update_off_loop(
            discard, [("restart", {"step": step.number, "reason": reason})]
        )

    def kill_agent(self, job: Job) -> None:
        """Kill the current step's agent, if one may run (found by `locate` if need be).
        Blocks while the agent dies: call it in a worker thread."""
        try:
            kill_step_agent(self.services, job)
        except Exception:  # a best effort on the way to `failed`
            return


def _pause(job: Job) -> None:
    job.paused = True


def _unpause(job: Job) -> None:
    job.paused = False

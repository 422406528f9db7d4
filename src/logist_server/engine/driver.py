"""Driving one job: provision -> start -> stream and parse -> harvest -> review.

Exactly one process drives a job (the driver lock). Every status change and parsed agent
event is committed to the store before the driver acts on it, and the position in the
agent's output is committed with the events parsed from it, so a new driver resumes the
stream with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from logist_server.domain.errors import JobBusyError, LogistError, StoreError, StoreFullError
from logist_server.domain.events import (
    AgentError,
    AgentEvent,
    AgentMessage,
    AgentQuestion,
    AgentUsage,
    event_data,
    event_kind,
)
from logist_server.domain.model import (
    DiffStats,
    Job,
    JobEvent,
    JobStatus,
    RuntimeHandle,
    Step,
    Usage,
    Workspace,
)
from logist_server.domain.observer import Observer, ObserverHit
from logist_server.domain.plans import (
    Settle,
    StartStep,
    consecutive_retries,
    current_checkpoint,
    plan_next,
)
from logist_server.domain.prompts import render_prompt
from logist_server.domain.roles import SUPERVISOR, parse_verdict, render_instructions
from logist_server.domain.states import SETTLED, can_transition, check_transition
from logist_server.engine import repo_guard
from logist_server.providers.agents.base import AgentContext, OutputParser, build_spec
from logist_server.providers.runtimes.base import JobPaths, Runtime
from logist_server.store.job_store import EventSpec
from logist_server.support import faults, redaction
from logist_server.support.fsutil import atomic_write
from logist_server.support.locks import DriverLock
from logist_server.vcs.workspace import latest_change, reset_workspace, start_keeping_base

if TYPE_CHECKING:
    from logist_server.engine.facade import Engine

S = JobStatus
T = TypeVar("T")
EventListener = Callable[[list[JobEvent]], None]
READ_CHUNK = 1 << 18  # output read and recorded at once; the loop is free between two
INGEST_THREADS = 2  # worker threads parsing and committing output (`_ingest`)
# Output lines that are not JSON objects: plain text (stderr, a text-mode agent) to observe.
PLAIN_LINE = re.compile(rb"(?m)^[^{\n].*$")
CONTROL_INTERVAL_S = 0.2
MIN_POLL_S = 0.001  # the output poll right after the agent printed (see `_follow`)


def step_paths(job_dir: Path, number: int) -> JobPaths:
    return JobPaths(dir=str(job_dir / f"step-{number}"))


class JobDriver:
    """Owns one job until it settles (or this process stops)."""

    def __init__(
        self,
        engine: Engine,
        job_id: str,
        listener: EventListener | None = None,
        poll_s: float = 0.02,
        single_phase: bool = False,
        resume: bool = False,
        replay: Runtime | None = None,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.job_id = job_id
        self.listener = listener
        self.poll_s = poll_s
        self.single_phase = single_phase  # `job step`: one phase, then pause
        self.resume = resume  # `job step` / `job run` continue a paused job
        self.replay = replay  # `job poststep`: the next step replays a recorded response
        self.observer: Observer = engine.observer.for_job()  # its own time budgets
        self._last_activity = time.monotonic()  # of the agent: output, or workspace changes
        self._step_error = False  # the current step logged an agent error
        self._lock = DriverLock(engine.store.lock_path(job_id))

    async def run(self) -> Job:
        if not self._lock.try_acquire():
            raise JobBusyError(f"job {self.job_id} is being driven by another process")
        try:
            return await self._drive()
        finally:
            self._lock.release()

    # -- phases ----------------------------------------------------------------------------
    async def _drive(self) -> Job:
        job = self.store.get(self.job_id)
        if job.status == S.DRAFT and not self.resume:
            return job  # a draft runs only when asked: `job step` or `job run`
        if job.paused:
            if not self.resume:
                return job  # `job step` paused it: only `job step` or `job run` continue it
            job, events = self.store.update(self.job_id, _unpause, [("resumed", {})])
            self._emit(events)
        try:
            while job.status not in SETTLED:
                if job.status in (S.DRAFT, S.PENDING) or job.workspace is None:
                    job = await self._provision(job)
                    phase_done = self.replay is None  # poststep goes on to its step
                else:
                    job, phase_done = await self._step(job)
                if job.status in SETTLED:
                    break
                if self.single_phase and phase_done:
                    job, events = self.store.update(self.job_id, _pause, [("paused", {})])
                    self._emit(events)
                    break
            return job
        except asyncio.CancelledError:
            raise  # this process is stopping: the agent lives on, a later driver re-attaches
        except Exception as exc:
            return self._fail(job, exc)

    async def _provision(self, job: Job) -> Job:
        """pending -> provisioning with a workspace (kept when a restep reuses it)."""
        if job.status == S.DRAFT:
            job = self._transition(S.PENDING)
        if job.status == S.PENDING:
            job = self._transition(S.PROVISIONING)
        if job.cancel_requested:
            return self._transition(S.CANCELLED, "cancelled by user")
        if job.workspace is not None and Path(job.workspace.path).is_dir():
            return job
        runtime = self.engine.runtime_for(job)
        assert job.base_commit is not None
        # The base stays reachable for reruns after the job's branch is gone.
        keeper = start_keeping_base(self.engine.repo, job.id, job.base_commit)
        try:
            workspace = await asyncio.to_thread(
                runtime.provision, self.engine.repo_info, job, self.engine.workspace_root
            )
            keeper.output()
        finally:
            keeper.close()
        faults.point("provision")

        def record(j: Job) -> None:
            j.workspace = workspace

        job, events = self.store.update(
            self.job_id,
            record,
            [("workspace", {"path": workspace.path, "branch": workspace.branch,
                            "base": workspace.base_commit})],
        )  # fmt: skip
        self._emit(events)
        if job.cancel_requested:
            return self._transition(S.CANCELLED, "cancelled by user")
        return job

    async def _step(self, job: Job) -> tuple[Job, bool]:
        """Run the current agent step to its end (starting the next one if needed).

        Returns the job and whether a whole step ran (False: only a decision was made)."""
        step = job.current_step
        if step is None or step.outcome is not None:
            if job.cancel_requested:
                return self._transition(S.CANCELLED, "cancelled by user"), False
            plan = plan_next(job, self.engine.roles())
            if isinstance(plan, Settle):
                return self._settle_plan(job, plan), False
            job = await self._start_step(job, plan)
        job = await self._run_current(job)
        if job.status not in SETTLED and job.current_step is not None:
            # Settle right away when nothing else is to run (no pause before a no-op).
            plan = plan_next(job, self.engine.roles())
            if isinstance(plan, Settle) and not job.cancel_requested:
                job = self._settle_plan(job, plan)
        return job, True

    def _settle_plan(self, job: Job, plan: Settle) -> Job:
        if plan.status == S.REVIEW:
            stats = job.result.diff or DiffStats()
            summary = f"{stats.files} file(s) changed, +{stats.insertions} -{stats.deletions}"
            return self._transition(
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

        return self._transition(plan.status, plan.reason, mutate=record)

    async def _start_step(self, job: Job, plan: StartStep) -> Job:
        assert job.workspace is not None
        number = len(job.steps) + 1
        job_dir = self.store.job_dir(job.id)
        paths = step_paths(job_dir, number)
        Path(paths.dir).mkdir(parents=True, exist_ok=True)
        role = self.engine.role(job, plan.role)
        step_job = self.engine.job_for_step(job, role, plan.agent)
        diff = ""
        if role.kind == SUPERVISOR:
            patch = await asyncio.to_thread(self.engine.reviewed_diff, job)  # git, not a file
            diff = patch.decode("utf-8", "replace")
        rendered = render_instructions(role, render_prompt(job), diff, plan.brief or "")
        atomic_write(job_dir / "user-prompt.txt", job.prompt.encode())
        prompt_file = Path(paths.dir) / "prompt.txt"
        atomic_write(prompt_file, rendered.encode())
        atomic_write(job_dir / "prompt.txt", rendered.encode())
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
        spec = build_spec(self.engine.agents.get(step_job.agent.name), step_job, ctx)
        checkpoint = current_checkpoint(job)

        def add_step(j: Job) -> None:
            j.steps.append(
                Step(
                    number=number,
                    role=role.name,
                    started_at=time.time(),
                    agent=step_job.agent.name,
                    checkpoint=checkpoint,
                    brief=plan.brief,
                )
            )

        data = {"step": number, "role": role.name, "agent": step_job.agent.name,
                "argv": spec.argv}  # fmt: skip
        if job.status == S.PROVISIONING:
            job = self._transition(S.RUNNING, mutate=add_step, data=data)
        else:
            job, events = self.store.update(self.job_id, add_step, [("step", data)])
            self._emit(events)
        workspace = job.workspace
        assert workspace is not None
        runtime = self.replay or self.engine.runtime_for(job)
        self.replay = None  # one step only
        # Compared when it ends; kept in memory and the database, out of the agent's reach.
        # Both run git or spawn processes: in a worker thread, off the event loop.
        info = self.engine.repo_info
        await asyncio.to_thread(repo_guard.record, info, self.store, self.job_id, number)
        handle = await asyncio.to_thread(runtime.start, step_job, workspace, spec, paths)
        faults.point("start")

        def set_handle(j: Job) -> None:
            j.steps[-1].handle = handle

        job, events = self.store.update(
            self.job_id, set_handle, [("started", {"step": number, "pid": handle.pid})]
        )
        self._emit(events)
        return job

    async def _run_current(self, job: Job) -> Job:
        """Follow the current step's agent until it ends, then judge how it went."""
        step = job.current_step
        assert step is not None and job.workspace is not None
        runtime = self.engine.runtime_for(job)
        paths = step_paths(self.store.job_dir(job.id), step.number)
        handle = step.handle or handle_from_pid_file(runtime, paths)
        if handle is None:  # the previous driver died before starting the agent
            return await self._restart_step(job)
        if step.handle is None:  # it died right after starting it: record what we found
            job, step = self._record_found_handle(step, handle)
        runtime = self.engine.runtime_for_handle(job, handle)
        self._step_error = self._step_has_error(step)
        parser = self.engine.agents.get(step.agent or job.agent.name).new_parser()
        code = await self._follow(job, step, handle, paths, parser, runtime)
        # Read to the end: mask declared secrets in the agent's raw output file.
        await _off_loop(functools.partial(redaction.scrub_file, paths.output))
        return await self._judge(code, handle, paths, runtime)

    def _record_found_handle(self, step: Step, handle: RuntimeHandle) -> tuple[Job, Step]:
        def set_handle(j: Job) -> None:
            j.steps[-1].handle = handle

        event = ("started", {"step": step.number, "pid": handle.pid, "recovered": True})
        job, events = self.store.update(self.job_id, set_handle, [event])
        self._emit(events)
        current = job.current_step
        assert current is not None
        return job, current

    def _step_has_error(self, step: Step) -> bool:
        """Whether the step already logged an agent error (a re-attached parser cannot know)."""
        if step.output_offset == 0:
            return False
        start = self._step_start_seq(step.number)
        return any(e.kind == "error" for e in self.store.event_rows(self.job_id, after=start))

    async def _restart_step(self, job: Job) -> Job:
        step = job.current_step
        assert step is not None

        def discard(j: Job) -> None:
            j.steps[-1].outcome = "discarded"

        job, events = self.store.update(
            self.job_id, discard, [("restart", {"step": step.number,
                                                "reason": "the agent had not started"})]
        )  # fmt: skip
        self._emit(events)
        return job

    async def _follow(
        self,
        job: Job,
        step: Step,
        handle: RuntimeHandle,
        paths: JobPaths,
        parser: OutputParser,
        runtime: Runtime,
    ) -> int | None:
        """Stream the agent's output into events until it exits or is stopped."""
        if step.exit_code is not None:  # a previous driver saw it end and recorded everything
            return step.exit_code
        offset = step.output_offset
        partial = b""
        started = step.started_at or time.time()
        self._last_activity = time.monotonic()
        next_control = 0.0
        while True:
            # At most READ_CHUNK at a time (one commit holds the store that long), read in
            # a worker thread: a megabyte a time on the loop would hold requests back.
            chunk = await _off_loop(functools.partial(runtime.read_output, handle, paths, offset))
            chunk = chunk[:READ_CHUNK]
            if chunk:
                self._last_activity = time.monotonic()
                data = partial + chunk
                cut = data.rfind(b"\n") + 1
                complete, partial = data[:cut], data[cut:]
                offset += len(chunk)
                if complete:
                    job = await self._ingest(parser, complete, offset - len(partial), job.status)
                    faults.point("stream")
                await asyncio.sleep(0)  # between chunks, let the pump and requests run
                if len(chunk) == READ_CHUNK:
                    continue
                stop = self._check_limits(job, started)
                if stop is not None:
                    return await self._stop(stop, handle, paths, runtime)
                continue
            code = runtime.exit_status(handle, paths)
            if code is not None:
                if runtime.read_output(handle, paths, offset):
                    continue  # output written just before the exit: drain it first
                tail = parser.feed(partial.decode("utf-8", "replace")) if partial else []
                stopped = self.store.get(self.job_id).cancel_requested
                final = parser.finish(None if stopped else code)
                if self._step_error or any(type(e) is AgentError for e in tail):
                    final = [e for e in final if type(e) is not AgentError]  # said already
                self._record([*tail, *final], offset, partial, None, exit_code=code)
                return code
            now = time.monotonic()
            if now >= next_control:
                next_control = now + CONTROL_INTERVAL_S
                job = self.store.get(self.job_id)
                if job.cancel_requested:
                    await self._reap(handle, paths, runtime, job.workspace)
                    continue  # the exit status follows
                stop = self._check_limits(job, started)
                if stop is not None:
                    return await self._stop(stop, handle, paths, runtime)
            # Soon after output, poll often: the agent's next lines or its exit are likely
            # near. Back off to `poll_s` as it stays quiet.
            quiet = time.monotonic() - self._last_activity
            await asyncio.sleep(min(self.poll_s, max(MIN_POLL_S, quiet / 4)))

    def _check_limits(self, job: Job, started: float) -> tuple[JobStatus, str] | None:
        limits, usage = job.limits, job.result.usage
        if limits.max_cost_usd is not None and usage.cost_usd > limits.max_cost_usd:
            return (
                S.HALTED,
                f"cost limit: ${usage.cost_usd:.4f} spent, limit ${limits.max_cost_usd:g}",
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

    async def _stop(
        self, stop: tuple[JobStatus, str], handle: RuntimeHandle, paths: JobPaths, runtime: Runtime
    ) -> int | None:
        """Settle the job for a limit or a hang, then kill the agent; no exit status."""
        status, reason = stop
        job = self._transition(status, reason, mutate=lambda j: setattr(j.result, "error", reason))
        await self._reap(handle, paths, runtime, job.workspace)
        return None

    async def _reap(
        self, handle: RuntimeHandle, paths: JobPaths, runtime: Runtime, workspace: Workspace | None
    ) -> None:
        """Kill every process the step's agent left (or still runs): a `reaped` event names
        them. Runs whenever a step ends: exit, crash, cancel, limit."""
        killed = await asyncio.to_thread(runtime.kill, handle, paths, workspace)
        if killed:
            _job, events = self.store.update(self.job_id, None, [("reaped", {"processes": killed})])
            self._emit(events)

    async def _judge(
        self, code: int | None, handle: RuntimeHandle, paths: JobPaths, runtime: Runtime
    ) -> Job:
        """Decide what the ended step amounts to: done (harvested), retry, failover, failed."""
        job = self.store.get(self.job_id)
        await self._reap(handle, paths, runtime, job.workspace)  # nothing outlives its step
        number = job.current_step.number if job.current_step is not None else 0
        changed = await asyncio.to_thread(  # git and hashing: off the event loop
            repo_guard.changes_since, self.engine.repo_info, self.store, self.job_id, number
        )
        if changed:  # before any git runs on the repository again
            return self._repo_changed(changed)
        if job.status in SETTLED:
            return job  # a limit or hang already settled it
        if job.cancel_requested:
            return self._transition(S.CANCELLED, "cancelled by user")
        step, workspace = job.current_step, job.workspace
        assert step is not None and workspace is not None
        if code != 0 or (step.failure is not None and not step.transient):
            # A failure the observer saw (auth, context overflow...) fails the step even
            # when the agent exits 0 after it.
            return await self._after_failure(job, step, code)
        if job.status == S.NEEDS_INPUT:  # it ended while waiting for an answer
            job = self._transition(S.RUNNING, "the agent finished without waiting for an answer")
        role = self.engine.role(job, step.role)
        if role.kind == SUPERVISOR:
            return self._record_verdict(job, step)
        harvested = await asyncio.to_thread(runtime.harvest, job, workspace)
        job_dir = self.store.job_dir(job.id)
        atomic_write(job_dir / "result.patch", harvested.patch)
        faults.point("harvest")

        def record_result(j: Job) -> None:
            j.result.diff = harvested.stats
            j.result.result_commit = harvested.result_commit
            j.result.result_tree = harvested.result_tree
            j.result.exit_code = code
            j.steps[-1].result_commit = harvested.result_commit
            j.steps[-1].outcome = "done"

        stats = harvested.stats
        job, events = self.store.update(
            self.job_id,
            record_result,
            [("harvest", {"step": step.number, "files": stats.paths,
                          "insertions": stats.insertions, "deletions": stats.deletions})],
        )  # fmt: skip
        self._emit(events)
        return job

    def _repo_changed(self, changed: list[str]) -> Job:
        """The user's git metadata changed during the step: report what, fail the step."""
        reason = repo_guard.describe(changed)
        job, events = self.store.update(self.job_id, None, [("repo_changed", {"changed": changed})])
        self._emit(events)
        if job.status in SETTLED:
            return job  # a limit, a hang or a cancel settled it: the event reports it

        def record(j: Job) -> None:
            j.result.error = reason
            j.steps[-1].outcome = "failed"

        return self._transition(S.FAILED, reason, mutate=record)

    def _record_verdict(self, job: Job, step: Step) -> Job:
        """A supervisor's reply: approve, or changes with comments (its edits are undone)."""
        start = self._step_start_seq(step.number)
        text = "\n".join(
            str(e.data.get("text", ""))
            for e in self.store.events(self.job_id, after=start)
            if e.kind == "message"
        )
        verdict = parse_verdict(text)
        assert job.workspace is not None
        reset_workspace(job.workspace, step.checkpoint or job.workspace.base_commit)

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
        job, events = self.store.update(self.job_id, record, [("verdict", data)])
        self._emit(events)
        return job

    def _step_start_seq(self, number: int) -> int:
        for event in reversed(self.store.event_rows(self.job_id)):
            if event.kind in ("step", "status") and event.data.get("step") == number:
                return event.seq
        return 0

    async def _after_failure(self, job: Job, step: Step, code: int | None) -> Job:
        """Retry a transient failure with backoff, then fail over, then fail."""
        reason = step.failure or _last_error(
            self.store.events(self.job_id, after=max(0, self._seq() - 50))
        )
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
            job = self._end_step(job, "retry", ("retry", {
                "step": step.number, "attempt": retries + 1, "of": policy.max_retries,
                "delay_s": delay, "reason": reason, "agent": step.agent}))  # fmt: skip
            reset_workspace(workspace, checkpoint)
            return await self._backoff(job, delay)
        fallback = policy.fallback_agent
        if fallback and fallback != step.agent and not any(s.agent == fallback for s in job.steps):
            job = self._end_step(job, "failover", ("failover", {
                "step": step.number, "from": step.agent, "to": fallback,
                "reason": reason}))  # fmt: skip
            reset_workspace(workspace, checkpoint)
            return job

        def record_failure(j: Job) -> None:
            j.result.error = reason
            j.result.exit_code = code
            j.steps[-1].outcome = "failed"

        return self._transition(S.FAILED, reason, mutate=record_failure)

    def _end_step(self, job: Job, outcome: str, event: EventSpec) -> Job:
        def record(j: Job) -> None:
            j.steps[-1].outcome = outcome

        job, events = self.store.update(self.job_id, record, [event])
        self._emit(events)
        return job

    async def _backoff(self, job: Job, delay: float) -> Job:
        """Wait before a retry; a cancel cuts the wait short."""
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline:
            await asyncio.sleep(min(CONTROL_INTERVAL_S, max(0.0, deadline - time.monotonic())))
            job = self.store.get(self.job_id)
            if job.cancel_requested:
                break
        return job

    # -- recording -------------------------------------------------------------------------
    async def _ingest(
        self, parser: OutputParser, complete: bytes, offset: int, status: JobStatus
    ) -> Job:
        """Parse, observe and commit complete output lines in a worker thread (on the
        event loop, a flood's chunks would hold every request back), then hand the
        committed rows on from the loop."""

        def commit() -> tuple[Job, list[JobEvent]]:
            events = parser.feed_lines(complete)
            plain = b"" if parser.only_events else complete
            return self._commit(events, offset, plain, status)

        job, stored = await _off_loop(commit)
        self._emit(stored)
        return job

    def _record(
        self,
        events: list[AgentEvent],
        offset: int,
        raw: bytes,
        status: JobStatus | None,
        exit_code: int | None = None,
    ) -> Job:
        """Commit (`_commit`) and hand the committed rows to the listener."""
        job, stored = self._commit(events, offset, raw, status, exit_code)
        self._emit(stored)
        return job

    def _commit(
        self,
        events: list[AgentEvent],
        offset: int,
        raw: bytes,
        status: JobStatus | None,
        exit_code: int | None = None,
    ) -> tuple[Job, list[JobEvent]]:
        """Commit parsed events, what the observer saw and the output position, at once.

        A question from a running agent moves the job to `needs_input` in the same
        transaction, so no driver can die between the question and its status."""
        specs, others = _event_specs(events)
        hits = self._observe(raw, others)
        specs += [(hit.kind, _hit_data(hit)) for hit in hits]
        failures = [hit for hit in hits if hit.status == "failed" or hit.transient]
        if any(type(e) is AgentError for e in others):
            self._step_error = True
        questions = [e.text for e in others if type(e) is AgentQuestion]
        questions += [h.reason for h in hits if h.status == "needs_input"]
        ask = status == S.RUNNING and bool(questions)
        if ask:
            check_transition(S.RUNNING, S.NEEDS_INPUT)
            specs.append(("status", {"from": S.RUNNING.value, "to": S.NEEDS_INPUT.value,
                                     "reason": questions[0]}))  # fmt: skip

        def apply(j: Job) -> None:
            step = j.steps[-1]
            step.output_offset = offset
            if exit_code is not None:
                step.exit_code = exit_code
                step.finished_at = time.time()
            if failures:
                step.failure = failures[-1].reason
                step.transient = failures[-1].transient
            usages = [e for e in others if type(e) is AgentUsage]
            if usages:
                if step.usage is None:
                    step.usage = Usage()
                for event in usages:
                    _apply_usage(step.usage, event)
                j.result.usage = _total_usage(j.steps)
            if ask:
                j.status = S.NEEDS_INPUT
                j.status_reason = questions[0]

        return self.store.update(self.job_id, apply, specs)

    def _observe(self, raw: bytes, others: list[AgentEvent]) -> list[ObserverHit]:
        """Observer hits in plain-text lines and agent errors, one per pattern per batch."""
        texts = [] if _all_json_lines(raw) else [
            m.group().decode("utf-8", "replace") for m in PLAIN_LINE.finditer(raw)
        ]  # fmt: skip
        texts += [e.message for e in others if type(e) is AgentError]
        hits: dict[str, ObserverHit] = {}
        for text in texts:
            hit = self.observer.scan(text)
            if hit is not None:
                hits.setdefault(hit.pattern.name, hit)
        return list(hits.values()) + self.observer.take_warnings()

    def _transition(
        self,
        to: JobStatus,
        reason: str | None = None,
        mutate: Callable[[Job], None] | None = None,
        data: dict[str, Any] | None = None,
    ) -> Job:
        job, event = self.store.transition(self.job_id, to, reason, mutate, data)
        self._emit([event])
        return job

    def _fail(self, job: Job, exc: Exception) -> Job:
        """Stop the agent, then settle the job `failed` with the reason.

        When the store cannot record it because its disk is full, the store has given up
        its reserve by then (the agent filling the disk is stopped), so a second try
        records it. When nothing can be recorded, a StoreError says so: the job stays
        active with no agent, and the next driver (`logist job attach`) settles it."""
        reason = failure_reason(exc)
        try:
            current = self.store.get(self.job_id)
        except StoreError:
            current = job  # the last record this driver read
        self._kill_agent(current)

        def record(j: Job) -> None:
            j.result.error = reason

        for attempt in (1, 2):
            try:
                current = self.store.get(self.job_id)
                if not can_transition(current.status, S.FAILED):
                    return current
                return self._transition(S.FAILED, reason, mutate=record)
            except StoreError as error:
                if attempt == 2 or not isinstance(error, StoreFullError):
                    why = "" if reason == str(error) else f" ({reason})"
                    raise StoreError(
                        f"job {self.job_id} failed{why} but the store cannot record it: "
                        f"{error}; once it can, `logist job attach {self.job_id}` settles it"
                    ) from None
        raise AssertionError("unreachable")

    def _kill_agent(self, job: Job) -> None:
        """Kill the current step's agent, if one may run (found by its pid file if need be)."""
        step = job.current_step
        if step is None or job.status not in (S.RUNNING, S.NEEDS_INPUT):
            return
        with contextlib.suppress(Exception):
            runtime = self.engine.runtime_for(job)
            paths = step_paths(self.store.job_dir(job.id), step.number)
            handle = step.handle or handle_from_pid_file(runtime, paths)
            if handle is not None:
                runtime.kill(handle, paths, job.workspace)

    def _seq(self) -> int:
        return self.store.last_seq(self.job_id)

    def _emit(self, events: list[JobEvent]) -> None:
        if self.listener is not None and events:
            self.listener(events)


# The threads that parse and commit agent output, shared by the drivers of this process:
# apart from the default executor, so a flood never delays a request's worker-thread calls
# (createJob, cancelJob), and few, so they leave the event loop its turn.
_INGEST_POOL = ThreadPoolExecutor(INGEST_THREADS, thread_name_prefix="logist-ingest")


async def _off_loop(work: Callable[[], T]) -> T:
    """`work()` in an ingest thread. Cancelled meanwhile (the process is stopping), it
    lets `work` finish first, so no later driver reads that output again while this one
    still records it."""
    future = asyncio.get_running_loop().run_in_executor(_INGEST_POOL, work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait({future})
        raise


def failure_reason(exc: Exception) -> str:
    """The reason a job failed on `exc`, as a person reads it (a full disk says so)."""
    if isinstance(exc, LogistError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" for {exc.filename}" if exc.filename else ""
        return f"no space left on the disk{where} ({exc.strerror})"
    return f"{type(exc).__name__}: {exc}"


def _event_specs(events: list[AgentEvent]) -> tuple[list[EventSpec], list[AgentEvent]]:
    """Job events for agent events, and the events that are not messages, in one pass.

    A run of messages becomes one stored row with a span (a flood stays cheap)."""
    specs: list[EventSpec] = []
    others: list[AgentEvent] = []
    texts: list[str] = []

    def flush() -> None:
        if len(texts) == 1:
            specs.append(("message", {"text": texts[0]}))
        elif texts:
            specs.append(("message", {"texts": list(texts)}, len(texts)))
        texts.clear()

    for event in events:
        if type(event) is AgentMessage:
            texts.append(event.text)
            continue
        flush()
        others.append(event)
        specs.append((event_kind(event), event_data(event)))
    flush()
    return specs, others


def _hit_data(hit: ObserverHit) -> dict[str, Any]:
    """An observer hit's event data; a question carries its text, as an agent's would."""
    data = hit.event_data()
    if hit.status == "needs_input":
        data["text"] = hit.excerpt
    return data


def _pause(job: Job) -> None:
    job.paused = True


def _unpause(job: Job) -> None:
    job.paused = False


def _all_json_lines(raw: bytes) -> bool:
    """Every line starts with `{` (two byte counts: much cheaper than a regex scan)."""
    return not raw or (raw.startswith(b"{") and raw.count(b"\n{") >= raw.count(b"\n") - 1)


def _total_usage(steps: list[Step]) -> Usage:
    """The job's usage: every step's, added up (a retried step cost money too)."""
    total = Usage()
    for step in steps:
        if step.usage is not None:
            total.input_tokens += step.usage.input_tokens
            total.output_tokens += step.usage.output_tokens
            total.cache_read_tokens += step.usage.cache_read_tokens
            total.cost_usd += step.usage.cost_usd
            total.turns += step.usage.turns
    return total


def _apply_usage(usage: Any, event: AgentUsage) -> None:
    if event.cumulative:
        usage.input_tokens = event.input_tokens
        usage.output_tokens = event.output_tokens
        usage.cache_read_tokens = event.cache_read_tokens
        if event.cost_usd is not None:
            usage.cost_usd = event.cost_usd
    else:
        usage.input_tokens += event.input_tokens
        usage.output_tokens += event.output_tokens
        usage.cache_read_tokens += event.cache_read_tokens
        if event.cost_usd is not None:
            usage.cost_usd += event.cost_usd
    usage.turns = event.turns if event.turns is not None else usage.turns + 1


def _last_error(events: list[JobEvent]) -> str | None:
    for event in reversed(events):
        if event.kind == AgentError.__struct_config__.tag:
            return str(event.data.get("message", "")) or None
    return None


def handle_from_pid_file(runtime: Runtime, paths: JobPaths) -> RuntimeHandle | None:
    """Find an agent whose start was not recorded (the driver died right after starting it)."""
    try:
        pid = int(paths.pid.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    started = None
    with contextlib.suppress(Exception):
        import psutil

        started = psutil.Process(pid).create_time()  # lets a reused pid be told apart
    return RuntimeHandle(runtime=runtime.name, pid=pid, started_at=started)

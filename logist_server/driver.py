"""Driving one job: provision -> start -> stream and parse -> harvest -> review.

Exactly one process drives a job (the driver lock). Every status change and parsed agent
event is committed to the store before the driver acts on it, and the position in the
agent's output is committed with the events parsed from it, so a new driver resumes the
stream with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import faults
from .agents.base import AgentContext, OutputParser
from .agents.events import (
    AgentError,
    AgentEvent,
    AgentMessage,
    AgentQuestion,
    AgentUsage,
    event_data,
    event_kind,
)
from .errors import JobBusyError, LogistError
from .fsutil import atomic_write
from .locks import DriverLock
from .model import Job, JobEvent, JobStatus, RuntimeHandle, Step
from .prompts import render_prompt
from .runtimes.base import JobPaths, Runtime
from .states import SETTLED, can_transition
from .store import EventSpec

if TYPE_CHECKING:
    from .engine import Engine

S = JobStatus
EventListener = Callable[[list[JobEvent]], None]
READ_CHUNK = 1 << 20
CONTROL_INTERVAL_S = 0.2


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
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.job_id = job_id
        self.listener = listener
        self.poll_s = poll_s
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
        try:
            if job.status == S.DRAFT:
                job = self._transition(S.PENDING)
            if job.status == S.PENDING:
                job = self._transition(S.PROVISIONING)
            if job.status == S.PROVISIONING:
                job = await self._provision(job)
            if job.status in (S.RUNNING, S.NEEDS_INPUT):
                job = await self._run_agent(job)
            return job
        except asyncio.CancelledError:
            raise  # this process is stopping: the agent lives on, a later driver re-attaches
        except Exception as exc:
            return self._fail(job, exc)

    async def _provision(self, job: Job) -> Job:
        runtime = self.engine.runtime_for(job)
        workspace = await asyncio.to_thread(
            runtime.provision, self.engine.repo_info, job, self.engine.workspace_root
        )
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
        return await self._start_step(job)

    async def _start_step(self, job: Job) -> Job:
        assert job.workspace is not None
        number = len(job.steps) + 1
        job_dir = self.store.job_dir(job.id)
        paths = step_paths(job_dir, number)
        atomic_write(job_dir / "user-prompt.txt", job.prompt.encode())
        rendered = render_prompt(job)
        atomic_write(job_dir / "prompt.txt", rendered.encode())
        ctx = AgentContext(
            workspace=job.workspace.path,
            job_dir=str(job_dir),
            prompt_file=str(job_dir / "prompt.txt"),
            rendered_prompt=rendered,
            answer_file=str(Path(paths.dir) / "answer"),
        )
        spec = self.engine.agent_for(job).build(job, ctx)
        Path(paths.dir).mkdir(parents=True, exist_ok=True)

        def add_step(j: Job) -> None:
            j.steps.append(Step(number=number, role=j.role, started_at=time.time()))

        job = self._transition(S.RUNNING, mutate=add_step, data={"step": number, "argv": spec.argv})
        workspace = job.workspace
        assert workspace is not None
        handle = self.engine.runtime_for(job).start(job, workspace, spec, paths)
        faults.point("start")

        def set_handle(j: Job) -> None:
            j.steps[-1].handle = handle

        job, events = self.store.update(
            self.job_id, set_handle, [("started", {"step": number, "pid": handle.pid})]
        )
        self._emit(events)
        return job

    async def _run_agent(self, job: Job) -> Job:
        step = job.current_step
        assert step is not None and job.workspace is not None
        runtime = self.engine.runtime_for(job)
        paths = step_paths(self.store.job_dir(job.id), step.number)
        handle = step.handle or handle_from_pid_file(runtime, paths)
        if handle is None:  # the previous driver died before starting the agent
            return await self._restart_step(job)
        parser = self.engine.agent_for(job).new_parser()
        code = await self._follow(job, step, handle, paths, parser, runtime)
        return await self._settle(code, handle, paths, runtime)

    async def _restart_step(self, job: Job) -> Job:
        def drop_step(j: Job) -> None:
            j.steps.pop()

        self.store.update(self.job_id, drop_step, [("restart", {"reason": "agent never started"})])
        job = self._transition(S.PENDING, "restarting: the agent had not started")
        job = self._transition(S.PROVISIONING)
        return await self._start_step(job)

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
        last_activity = time.monotonic()
        next_control = 0.0
        while True:
            chunk = runtime.read_output(handle, paths, offset)
            if chunk:
                last_activity = time.monotonic()
                data = partial + chunk
                cut = data.rfind(b"\n") + 1
                complete, partial = data[:cut], data[cut:]
                offset += len(chunk)
                if complete:
                    events = parser.feed_lines(complete)
                    job, others = self._record(events, offset - len(partial))
                    faults.point("stream")
                    questions = [e for e in others if type(e) is AgentQuestion]
                    if job.status == S.RUNNING and questions:
                        job = self._transition(S.NEEDS_INPUT, questions[0].text)
                if len(chunk) == READ_CHUNK:
                    continue
                stop = self._check_limits(job, started, last_activity)
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
                self._record([*tail, *final], offset, exit_code=code)
                return code
            now = time.monotonic()
            if now >= next_control:
                next_control = now + CONTROL_INTERVAL_S
                job = self.store.get(self.job_id)
                if job.cancel_requested:
                    runtime.kill(handle, paths, job.workspace)
                    continue  # the exit status follows
                stop = self._check_limits(job, started, last_activity)
                if stop is not None:
                    return await self._stop(stop, handle, paths, runtime)
            await asyncio.sleep(self.poll_s)

    def _check_limits(
        self, job: Job, started: float, last_activity: float
    ) -> tuple[JobStatus, str] | None:
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
        if (
            limits.hang_timeout_s is not None
            and job.status == S.RUNNING
            and time.monotonic() - last_activity > limits.hang_timeout_s
        ):
            return S.STUCK, f"hang: no output for {limits.hang_timeout_s:g} s"
        return None

    async def _stop(
        self, stop: tuple[JobStatus, str], handle: RuntimeHandle, paths: JobPaths, runtime: Runtime
    ) -> int | None:
        """Settle the job for a limit or a hang, then kill the agent; no exit status."""
        status, reason = stop
        job = self._transition(status, reason, mutate=lambda j: setattr(j.result, "error", reason))
        await asyncio.to_thread(runtime.kill, handle, paths, job.workspace)
        return None

    async def _settle(
        self, code: int | None, handle: RuntimeHandle, paths: JobPaths, runtime: Runtime
    ) -> Job:
        job = self.store.get(self.job_id)
        if job.status in SETTLED:
            return job  # a limit or hang already settled it
        if job.cancel_requested:
            await asyncio.to_thread(runtime.kill, handle, paths, job.workspace)
            return self._transition(S.CANCELLED, "cancelled by user")
        if code != 0:
            message = _last_error(self.store.events(self.job_id, after=max(0, self._seq() - 50)))
            reason = message or f"agent exited with status {code}"
            if code is not None and message and str(code) not in message:
                reason = f"{message} (exit status {code})"

            def record_failure(j: Job) -> None:
                j.result.error = reason
                j.result.exit_code = code

            return self._transition(S.FAILED, reason, mutate=record_failure)
        if job.status == S.NEEDS_INPUT:  # it ended while waiting for an answer
            job = self._transition(S.RUNNING, "the agent finished without waiting for an answer")
        assert job.workspace is not None
        harvested = await asyncio.to_thread(runtime.harvest, job, job.workspace)
        job_dir = self.store.job_dir(job.id)
        atomic_write(job_dir / "result.patch", harvested.patch)
        faults.point("harvest")

        def record_result(j: Job) -> None:
            j.result.diff = harvested.stats
            j.result.result_commit = harvested.result_commit
            j.result.exit_code = code

        stats = harvested.stats
        return self._transition(
            S.REVIEW,
            f"{stats.files} file(s) changed, +{stats.insertions} -{stats.deletions}",
            mutate=record_result,
            data={
                "files": stats.paths,
                "insertions": stats.insertions,
                "deletions": stats.deletions,
            },
        )

    # -- recording -------------------------------------------------------------------------
    def _record(
        self, events: list[AgentEvent], offset: int, exit_code: int | None = None
    ) -> tuple[Job, list[AgentEvent]]:
        """Commit parsed events together with the output position they came from.

        Returns the job and the events that are not plain messages (usage, questions...).
        """
        specs, others = _event_specs(events)

        def apply(j: Job) -> None:
            step = j.steps[-1]
            step.output_offset = offset
            if exit_code is not None:
                step.exit_code = exit_code
                step.finished_at = time.time()
            for event in others:
                if type(event) is AgentUsage:
                    _apply_usage(j.result.usage, event)

        job, stored = self.store.update(self.job_id, apply, specs)
        self._emit(stored)
        return job, others

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
        reason = str(exc) if isinstance(exc, LogistError) else f"{type(exc).__name__}: {exc}"
        current = self.store.get(self.job_id)
        step = current.current_step
        if (
            step is not None
            and step.handle is not None
            and current.status in (S.RUNNING, S.NEEDS_INPUT)
        ):
            with contextlib.suppress(Exception):
                runtime = self.engine.runtime_for(current)
                runtime.kill(
                    step.handle,
                    step_paths(self.store.job_dir(job.id), step.number),
                    current.workspace,
                )
        if not can_transition(current.status, S.FAILED):
            return current

        def record(j: Job) -> None:
            j.result.error = reason

        return self._transition(S.FAILED, reason, mutate=record)

    def _seq(self) -> int:
        return self.store.last_seq(self.job_id)

    def _emit(self, events: list[JobEvent]) -> None:
        if self.listener is not None and events:
            self.listener(events)


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
    return RuntimeHandle(runtime=runtime.name, pid=pid)

"""The job engine of one repository: create, drive, cancel, accept, reject, delete, gc."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import msgspec

from logist_server.config.freshness import Fingerprint, fingerprint
from logist_server.config.loader import Effective
from logist_server.config.loader import load as load_config
from logist_server.config.roles import load_roles
from logist_server.domain import questions
from logist_server.domain.errors import (
    ConfigError,
    ConflictError,
    JobBusyError,
    JobNotFoundError,
    LogistError,
    UsageError,
)
from logist_server.domain.model import (
    AgentSpec,
    Job,
    JobResult,
    JobStatus,
    RuntimeHandle,
    RuntimeSpec,
    Workspace,
)
from logist_server.domain.observer import Observer
from logist_server.domain.plans import Settle, live_steps, plan_next
from logist_server.domain.prompts import render_prompt
from logist_server.domain.requests import JobRequest, resolve_target, validate_limits
from logist_server.domain.roles import SUPERVISOR, Role, find_role, render_instructions
from logist_server.domain.runtime import parse_runtime_options
from logist_server.domain.states import ACTIVE, SETTLED
from logist_server.engine import change_requests
from logist_server.engine.accept import AcceptRun, plan_hunks
from logist_server.engine.apply import ResultMismatchError, execute_plan, plan_accept, verify_result
from logist_server.engine.change_requests import ChangeComment
from logist_server.engine.driver import EventListener, JobDriver, step_paths
from logist_server.engine.gc import GcReport, release_branch
from logist_server.engine.gc import collect as collect_garbage
from logist_server.engine.hunk_select import select_hunks
from logist_server.engine.hunks import DIFF_OPTIONS, FileHunks, job_hunks
from logist_server.engine.step_runtime import locate_step
from logist_server.providers.agents.base import (
    AgentContext,
    AgentProvider,
    answer_via,
    continuation_for,
    declare_secrets,
    with_continuation,
)
from logist_server.providers.agents.options import check_path_options
from logist_server.providers.registry import BUILTIN_AGENTS, BUILTIN_RUNTIMES, Registry
from logist_server.providers.runtimes.base import Runtime
from logist_server.store.job_store import JobStore, new_job_id, store_present
from logist_server.store.listing import printable
from logist_server.support.fsutil import atomic_write
from logist_server.support.locks import DriverLock, repo_lock
from logist_server.vcs.git import RepoInfo, find_repo, git
from logist_server.vcs.workspace import (
    BRANCH_PREFIX,
    REPLACED_BY_DIRECTORY,
    commit_exists,
    default_workspace_root,
    drop_base,
    keep_base,
    recorded_identity,
    remove_workspace_dir,
    replaced_reason,
    reset_workspace,
    snapshot_base,
    workspace_path,
)

S = JobStatus
CANCEL_WAIT_S = 10.0
log = logging.getLogger("logist")


def default_agents() -> Registry[AgentProvider]:
    return Registry("agent", BUILTIN_AGENTS, "logist.agents")


def default_runtimes() -> Registry[Runtime]:
    return Registry("runtime", BUILTIN_RUNTIMES, "logist.runtimes")


class Preview(msgspec.Struct, frozen=True):
    """What the next agent step would run: prompt, command, environment, where."""

    job_id: str | None
    step: int
    role: str
    agent: str
    model: str | None
    runtime: str
    provision: bool
    cwd: str
    argv: list[str]
    env: dict[str, str]
    prompt: str


class Engine:
    """Everything Logist does to the jobs of one repository."""

    def __init__(
        self,
        repo_info: RepoInfo,
        store: JobStore | None = None,
        workspace_root: Path | None = None,
        agents: Registry[AgentProvider] | None = None,
        runtimes: Registry[Runtime] | None = None,
    ) -> None:
        self.repo_info = repo_info
        self.repo = repo_info.root
        self._store = store
        self._workspace_root = workspace_root
        self._config: Effective | None = None
        self._observer: Observer | None = None
        self._roles: dict[str, Role] | None = None
        self._read_at: Fingerprint | None = None  # the files' state when config was read
        self.agents = agents or default_agents()
        self.runtimes = runtimes or default_runtimes()

    @property
    def store(self) -> JobStore:
        """The repository's store, created on first use (so bad input creates nothing)."""
        if self._store is None:
            self._store = JobStore(self.repo, self.repo_info.common_dir)
        return self._store

    @property
    def config(self) -> Effective:
        """The repository's effective configuration, read on first use."""
        config = self._config  # a local: `refresh` in a worker thread may clear the field
        if config is None:
            self._read_at = fingerprint(self.repo)
            config = self._config = load_config(self.repo)
        return config

    def invalidate(self) -> None:
        """Forget the configuration, roles and observer table: read them again on next use."""
        self._config = None
        self._observer = None
        self._roles = None
        self._read_at = None

    def refresh(self) -> None:
        """Invalidate when `logist.yml`, a role file or the user's configuration changed
        since it was read (a stat of each, no read): a long-lived server calls this through
        `configure`, before every job it creates or previews. What was forgotten is read
        again here (in the caller's thread, a worker's in the server), not later by the
        driver on the event loop."""
        if self._read_at is None or fingerprint(self.repo) != self._read_at:
            self.invalidate()
            self.warm_up()

    def configure(self, overrides: dict[str, Any], source: str = "command line") -> Effective:
        """The configuration with `overrides` (flags, request params) on top.

        The job's role is a layer of its own just below them: a role that names an agent,
        model or options makes them the job's defaults (flags still win). The cached
        configuration, roles and observer table are refreshed first if their files changed."""
        self.refresh()
        effective = load_config(self.repo, overrides, source)
        name = effective.settings.role
        roles = load_roles(self.repo, effective.settings.roles)
        role = roles.get(name)
        if role is None or role.kind == SUPERVISOR:
            return effective
        layer = {"agent": role.agent, "model": role.model, "agent_options": role.agent_options}
        if any(layer.values()):
            effective = load_config(self.repo, overrides, source, role=(f"role {name}", layer))
        return self._checked_paths(effective)

    def _checked_paths(self, effective: Effective) -> Effective:
        """UsageError naming file and key when an agent option names a file outside the
        repository (`logist.yml` and roles are the repository's: not to be trusted)."""
        settings = effective.settings
        if settings.agent_options:
            try:
                provider = self.agents.get(settings.agent)
            except UsageError:
                return effective  # the job's own validation names the unknown agent
            check_path_options(
                provider.path_options,
                settings.agent_options,
                self.repo,
                lambda key: effective.source_of(f"agent_options.{key}"),
            )
        return effective

    @property
    def workspace_root(self) -> Path:
        """Where worktrees go: given, configured (`workspace_root`), or the user cache."""
        if self._workspace_root is None:
            configured = self.config.settings.workspace_root
            if configured:
                self._workspace_root = (self.repo / Path(configured).expanduser()).resolve()
            else:
                self._workspace_root = default_workspace_root()
        return self._workspace_root

    def warm_up(self) -> None:
        """Read now what the first job would: the configuration, the observer table, roles,
        the default agent and runtime providers. A long-lived server calls this at start, so
        that its first job starts as fast as the next ones, and `refresh` calls it again
        when the files changed. Errors are left for a job to report in its own words."""
        with contextlib.suppress(LogistError, ValueError, OSError):
            settings = self.config.settings
            _ = self.observer
            self.roles()
            self.agents.get(settings.agent)
            self.runtimes.get(settings.runtime)
            _ = self.workspace_root

    def has_store(self) -> bool:
        return self._store is not None or store_present(self.repo)

    @classmethod
    def for_path(cls, path: Path) -> Engine:
        """The engine of the repository containing `path`."""
        return cls(find_repo(path))

    def agent_for(self, job: Job) -> AgentProvider:
        return self.agents.get(job.agent.name)

    def runtime_for(self, job: Job) -> Runtime:
        return self.runtimes.get(job.runtime.name)

    def runtime_for_handle(self, job: Job, handle: RuntimeHandle) -> Runtime:
        """The runtime that started a step, by the name in its handle (a replayed step's
        is not the job's)."""
        return self.runtimes.get(handle.runtime)

    # -- create ----------------------------------------------------------------------------
    def create_job(self, request: JobRequest) -> Job:
        """Validate `request` completely, then store a new job (pending, or draft)."""
        job = self._job_from_request(request)
        job.base_commit = snapshot_base(self.repo_info, request.overlays)
        self.store.insert(job, [("created", {"status": job.status.value})])  # may change the id
        if job.status == JobStatus.DRAFT:  # else the driver keeps it while it provisions
            keep_base(self.repo, job.id, job.base_commit)
        return job

    def _job_from_request(self, request: JobRequest) -> Job:
        """The job `request` describes, validated, not stored and without a base yet."""
        if not request.prompt.strip():
            raise UsageError("no prompt given: use --prompt TEXT or --prompt-file FILE")
        self.agents.check(request.agent)
        self.runtimes.check(request.runtime)
        options = parse_runtime_options(request.runtime_options)  # one line per bad option
        self.runtimes.get(request.runtime).check_options(options)  # one it cannot honour
        validate_limits(request.limits)
        self.agents.get(request.agent).validate_options(request.agent_options)
        if request.policy.fallback_agent is not None:
            self.agents.check(request.policy.fallback_agent)
            self.agents.get(request.policy.fallback_agent).validate_options(
                request.fallback_options
            )
        elif request.fallback_options or request.policy.fallback_model:
            raise UsageError("fallback agent options or model given, but no fallback agent")
        if find_role(self.roles(), request.role).kind == SUPERVISOR:
            raise UsageError(
                f"role '{request.role}' reviews changes and cannot start a job: "
                "give a worker role, and --supervisor to have it reviewed"
            )
        provider = self.agents.get(request.agent)
        check_path_options(provider.path_options, request.agent_options, self.repo)
        if request.policy.supervise:
            supervisor = find_role(self.roles(), request.policy.supervisor_role)
            if supervisor.agent:
                self.agents.check(supervisor.agent)
            reviewer = self.agents.get(supervisor.agent or request.agent)
            check_path_options(
                reviewer.path_options,
                supervisor.agent_options,
                self.repo,
                lambda _key: f"role {supervisor.name} ({supervisor.source})",
            )
        target = resolve_target(request, self.repo)
        for path in request.overlays:
            if path.startswith(("/", "../")) or "/../" in path:
                raise UsageError(f"overlay path must be relative to the repository: {path}")
        return Job(
            id=new_job_id(),
            prompt=request.prompt,
            repo=str(self.repo),
            agent=AgentSpec(request.agent, request.model, dict(request.agent_options)),
            runtime=RuntimeSpec(request.runtime, dict(request.runtime_options)),
            target=target,
            limits=request.limits,
            policy=request.policy,
            role=request.role,
            status=S.DRAFT if request.draft else S.PENDING,
            permissions=request.permissions,
            fallback_options=dict(request.fallback_options),
            pricing=request.pricing,
        )

    # -- step control ----------------------------------------------------------------------
    def preview(self, ref: str) -> Preview:
        """The exact prompt and command of the job's next agent step (nothing runs)."""
        return self._preview(self.get(ref))

    def preview_request(self, request: JobRequest) -> Preview:
        """What `logist run` would run for `request` (`--dry-run`): nothing is created."""
        return self._preview(self._job_from_request(request), stored=False)

    def _preview(self, job: Job, stored: bool = True) -> Preview:
        if job.status in SETTLED:
            raise UsageError(f"job {job.id} is {job.status.phrase}: nothing would run")
        step = job.current_step
        if step is not None and step.outcome is None:
            raise UsageError(
                f"job {job.id} is running step {step.number}: `logist job log {job.id}` shows it"
            )
        plan = plan_next(job, self.roles())
        if isinstance(plan, Settle):
            raise UsageError(f"job {job.id} would go to {plan.status} without running an agent")
        role = self.role(job, plan.role)
        step_job = self.job_for_step(job, role, plan.agent)
        workspace = job.workspace.path if job.workspace else None
        where = workspace or str(workspace_path(self.workspace_root, self.repo, job.id))
        job_dir = self.store.job_dir(job.id) if stored else Path(where) / ".." / "job"
        number = len(job.steps) + 1
        diff = ""
        if role.kind == SUPERVISOR:
            diff = self.reviewed_diff(job).decode("utf-8", "replace")
        prompt = render_instructions(role, render_prompt(job), diff, plan.brief or "")
        paths = step_paths(job_dir, number)
        ctx = AgentContext(
            workspace=where,
            job_dir=str(job_dir),
            prompt_file=str(Path(paths.dir) / "prompt.txt"),
            rendered_prompt=prompt,
            answer_file=str(Path(paths.dir) / "answer"),
            role=role.name,
            step=number,
            role_kind=role.kind,
        )
        provider = self.agents.get(plan.agent)
        declare_secrets(provider)  # the preview is printed: its secrets are masked
        ctx = with_continuation(ctx, continuation_for(provider, job, role.name, plan.agent))
        spec = provider.build(step_job, ctx)
        return Preview(
            job_id=job.id if stored else None,
            step=number,
            role=role.name,
            agent=plan.agent,
            model=step_job.agent.model,
            runtime=job.runtime.name,
            provision=workspace is None,
            cwd=spec.cwd,
            argv=spec.argv,
            env=spec.env,
            prompt=prompt,
        )

    def rerun(self, ref: str) -> Job:
        """A new job with the same request, from the same base (the old one is kept)."""
        old = self.get(ref)
        if old.status not in SETTLED:
            raise UsageError(f"job {old.id} is {old.status.phrase}: cancel it before a rerun")
        job = msgspec.structs.replace(
            old,
            id=new_job_id(),
            status=S.PENDING,
            created_at=time.time(),
            updated_at=time.time(),
            workspace=None,
            steps=[],
            result=JobResult(),
            status_reason=None,
            cancel_requested=False,
            paused=False,
            rerun_of=old.id,
        )
        if old.base_commit is None or not commit_exists(self.repo, old.base_commit):
            raise UsageError(f"job {old.id}: its base commit {old.base_commit} is gone")
        keep_base(self.repo, job.id, old.base_commit)
        self.store.insert(job, [("created", {"status": job.status.value, "rerun_of": old.id})])
        self.store.update(old.id, None, [("rerun", {"job": job.id})])
        return job

    def restep(self, ref: str) -> Job:
        """Back to the checkpoint before the last step, to run that step again."""
        job = self.get(ref)
        if job.status in (S.ACCEPTED, S.REJECTED):
            raise UsageError(
                f"job {job.id} is {job.status.phrase}: its workspace is gone; use rerun"
            )
        live = live_steps(job)
        if not live:
            raise UsageError(f"job {job.id} has no step to go back over")
        with self._exclusive(job):
            job = self.get(job.id)
            if job.status in ACTIVE and not job.paused:
                raise UsageError(f"job {job.id} is {job.status.phrase}: cancel it before a restep")
            workspace = job.workspace
            if workspace is None or not Path(workspace.path).is_dir():
                raise UsageError(f"job {job.id} has no workspace any more; use rerun")
            step = live[-1]
            if step.outcome is None and step.handle is not None and self._agent_alive(job):
                raise UsageError(f"job {job.id}: step {step.number} is still running")
            checkpoint = step.checkpoint or workspace.base_commit
            reset_workspace(workspace, checkpoint)

            def discard(j: Job) -> None:
                for s in j.steps:
                    if s.number == step.number:
                        s.outcome = "discarded"
                j.cancel_requested = False
                j.paused = False
                j.result.error = None
                j.result.exit_code = None

            event = ("restep", {"step": step.number, "checkpoint": checkpoint})
            job, _ = self.store.update(job.id, discard, [event])
            if job.status != S.PENDING:
                job, _ = self.store.transition(
                    job.id, S.PENDING, f"restep: step {step.number} runs again"
                )
        return job

    async def drive(
        self,
        job_id: str,
        listener: EventListener | None = None,
        single_phase: bool = False,
        resume: bool = False,
        replay: Runtime | None = None,
        patch: Path | None = None,
    ) -> Job:
        """Drive the job until it settles; JobBusyError if another process drives it.

        `single_phase` stops (paused) after one phase: provisioning, or one agent step.
        A paused job is left alone unless `resume` is given (`job step`, `job run`).
        `replay` runs the next step on that runtime, with `patch` applied first."""
        driver = JobDriver(
            self, job_id, listener, single_phase=single_phase, resume=resume, replay=replay,
            patch=patch,
        )  # fmt: skip
        return await driver.run()

    # -- roles, observer, steps ------------------------------------------------------------
    @property
    def observer(self) -> Observer:
        """The observer table: the user's patterns first, then the built-ins."""
        observer = self._observer
        if observer is None:
            effective = self.config
            try:
                observer = Observer.from_config(msgspec.to_builtins(effective.settings.observer))
            except ValueError as exc:
                files = ", ".join(effective.files) or "configuration"
                raise ConfigError(f"{files}: {exc}") from None
            self._observer = observer
        return observer

    def roles(self) -> dict[str, Role]:
        """Built-in roles, the configuration's, and `.logist/roles/*.yml`."""
        roles = self._roles
        if roles is None:
            roles = self._roles = load_roles(self.repo, self.config.settings.roles)
        return roles

    def role(self, job: Job, name: str) -> Role:
        return find_role(self.roles(), name)

    def job_for_step(self, job: Job, role: Role, agent: str) -> Job:
        """The job as the agent of one step sees it.

        A worker runs the job's agent as configured (its role was folded in at creation);
        a supervisor runs with its role's model and options, not the worker's."""
        if role.kind == SUPERVISOR:
            model = role.model or (job.agent.model if agent == job.agent.name else None)
            spec = AgentSpec(agent, model, dict(role.agent_options))
        elif agent != job.agent.name:  # the fallback agent, with its own model and options
            fallback = agent == job.policy.fallback_agent
            model = job.policy.fallback_model if fallback else None
            spec = AgentSpec(agent, model, dict(job.fallback_options) if fallback else {})
        else:
            spec = job.agent
        return msgspec.structs.replace(job, agent=spec, role=role.name)

    # -- control ---------------------------------------------------------------------------
    def get(self, ref: str) -> Job:
        if not self.has_store():
            raise JobNotFoundError(f"no job '{ref}': there are no jobs in {self.repo}")
        return self.store.get(self.store.resolve(ref))

    def cancel(self, ref: str, wait_s: float = CANCEL_WAIT_S) -> Job:
        """Stop the job and every process of its agent; settles it as `cancelled`."""
        job = self.request_cancel(ref)
        deadline = time.monotonic() + wait_s
        while job.status not in SETTLED:
            if time.monotonic() > deadline:
                raise self.cancel_timeout(job.id, wait_s)
            time.sleep(0.05)
            job = self.store.get(job.id)
        return job

    def request_cancel(self, ref: str) -> Job:
        """Record the cancel and kill the agent; settle the job unless a driver will.

        Returns at once; the job is settled, or its driver settles it within moments.
        """
        job = self.get(ref)
        if job.status in SETTLED:
            raise UsageError(f"job {job.id} is already {job.status}: nothing to cancel")
        self.store.update(job.id, _request_cancel, [("cancel_requested", {})])
        lock = DriverLock(self.store.lock_path(job.id))
        if lock.try_acquire():
            with lock:
                job = self.store.get(job.id)
                self._kill_agent(job)
                if job.status in SETTLED:
                    return job
                job, _ = self.store.transition(job.id, S.CANCELLED, "cancelled by user")
                return job
        # A live driver settles it; killing the agent here makes that immediate.
        self._kill_agent(job)
        return self.store.get(job.id)

    @staticmethod
    def cancel_timeout(job_id: str, wait_s: float) -> LogistError:
        return LogistError(
            f"job {job_id}: the process driving it did not settle it in {wait_s:g} s"
        )

    def answer(self, ref: str, text: str) -> Job:
        """Answer the agent's question: the job in `needs_input` continues the way its
        agent's provider takes answers (`questions.route`): `resume` records the answer
        and the driver resumes the agent's session with it in a new step; `file` writes
        it where the live agent waits for it; `stdin` cannot be served by any runtime yet."""
        job = self.get(ref)
        if job.status != S.NEEDS_INPUT:
            raise UsageError(f"job {job.id} is {job.status.phrase}, not waiting for an answer")
        text = questions.check_answer(text)
        step = job.current_step
        assert step is not None
        agent = step.agent or job.agent.name
        via = questions.route(job, answer_via(self.agents.get(agent)))
        if via == "stdin":
            raise UsageError(
                f"job {job.id}: agent '{agent}' takes answers on its input, which the "
                f"'{job.runtime.name}' runtime cannot write to; cancel or rerun the job"
            )
        data: dict[str, Any] = {"answer": text, "via": via}
        if job.question is not None and job.question.id is not None:
            data["question"] = job.question.id
        job, _ = self.store.transition(
            job.id, S.RUNNING, "answered", mutate=lambda j: questions.answered(j, text), data=data
        )
        if via == "file":  # after the record: the live agent reads it
            answer_file = Path(step_paths(self.store.job_dir(job.id), step.number).dir) / "answer"
            atomic_write(answer_file, text.encode())
        return job

    def request_changes(self, ref: str, comments: list[ChangeComment]) -> Job:
        """Send the job in review back to a worker step that addresses `comments` (each on
        the whole job or on one of its hunks: `change_requests.locate`). The comments, with
        their files and lines, are recorded (a `changes_requested` event, and the brief on
        the last step) before the job goes back to `pending`; the caller then drives it: the
        step resumes the worker's session where its agent can, and the job returns to review."""
        job = self._require_review(ref, "sent back for changes")
        with self._exclusive(job):
            job = self._require_review(job.id, "sent back for changes")
            workspace = job.workspace
            if workspace is None or not Path(workspace.path).is_dir():
                raise UsageError(f"job {job.id} has no workspace any more; use rerun")
            live = live_steps(job)
            if not live:
                raise UsageError(f"job {job.id} has no step to follow up on")
            files = self.hunks(job) if any(c.hunk_id is not None for c in comments) else []
            located = change_requests.locate(job, files, comments)
            brief = change_requests.render_brief(located)
            number = live[-1].number

            def record(j: Job) -> None:
                for step in j.steps:
                    if step.number == number:
                        step.changes_requested = brief

            event = ("changes_requested", change_requests.event_data(number, located))
            self.store.update(job.id, record, [event])
            job, _ = self.store.transition(job.id, S.PENDING, "changes requested by the user")
        return job

    def accept(self, ref: str, hunk_ids: list[str] | None = None) -> tuple[Job, list[str]]:
        """Apply the job's changes to the working tree, keeping the user's own changes.

        With `hunk_ids`, only those hunks (ids as `hunks` gives them), all or nothing: an
        unknown, stale or already accepted id is a UsageError, a hunk whose lines the user
        changed a ConflictError, and nothing is written. The job stays in review until its
        last hunk is accepted. Returns the job and the paths written."""
        job = self._require_review(ref, "accepted")
        with self._exclusive(job):
            job = self._require_review(job.id, "accepted")  # another may have settled it
            if hunk_ids is not None:
                with repo_lock(self.repo, "working-tree"):  # two accepts must not interleave
                    run = self.start_hunk_accept(job.id, hunk_ids, {}, strict=True)
                    job = self.finish_hunk_accept(run, settle=False)
                return self._settle_if_complete(job, run), run.written
            written = self._apply(job)
            job, _ = self.store.transition(job.id, S.ACCEPTED, data={"files": written})
            self._remove_workspace(job)
        return job, written

    def hunks(self, job: Job) -> list[FileHunks]:
        """The job's hunks (`hunks.job_hunks`: what the editor, `job hunks` and accept use),
        once its commits are checked as accept checks them (ResultMismatchError)."""
        base, result = job.base_commit, job.result.result_commit
        if base is not None and result is not None and base != result:
            try:
                verify_result(self.repo, base, result, job.result.result_tree)
            except ResultMismatchError as exc:
                message = str(exc).replace(" (nothing was written)", "")
                raise ResultMismatchError(
                    message.replace("cannot accept:", "no hunks:", 1)
                ) from None
        return job_hunks(self.repo, job)

    def start_hunk_accept(
        self, ref: str, hunk_ids: list[str] | None, buffers: dict[str, str], strict: bool = False
    ) -> AcceptRun:
        """Select and plan hunks (None: every pending one), record `accepting` with their
        ids, then write the files on disk (all or nothing). `buffers` (path -> text of an
        open editor buffer) are not written: their edits are in `run.plan.edits` for the
        editor to apply. With `strict`, any conflict is a ConflictError and nothing is
        recorded or written. The caller holds the working-tree lock and then calls
        `finish_hunk_accept`."""
        job = self._require_review(ref, "accepted")
        base, result = job.base_commit, job.result.result_commit
        if base is not None and result is not None and base != result:
            verify_result(self.repo, base, result, job.result.result_tree)  # as accept says it
        files = self.hunks(job)
        chosen = select_hunks(job, files, hunk_ids, strict)
        plan = plan_hunks(self.repo, job, files, chosen, buffers)
        if strict and plan.conflicts:
            detail = "; ".join(
                f"{printable(c.path)}: hunk {c.hunk_id}: {printable(c.reason)}"
                for c in plan.conflicts
            )
            paths = sorted({c.path for c in plan.conflicts})
            raise ConflictError(f"cannot accept: {detail} (nothing was written)", paths)
        if plan.applied:
            event = {"hunks": plan.applied, "files": [w.path for w in plan.writes]}
            self.store.update(job.id, None, [("accepting", event)])
        written = execute_plan(self.repo, plan.writes)
        return AcceptRun(job, files, plan, written)

    def finish_hunk_accept(
        self, run: AcceptRun, refused: dict[str, str] | None = None, settle: bool = True
    ) -> Job:
        """Record the hunks `run` brought in (less those of `refused` buffers: path -> why);
        with `settle`, the job is accepted once every hunk is (else `_settle_if_complete`)."""
        run.refuse_buffers(refused or {})
        job = run.job
        if run.plan.applied:
            try:
                job = self._record_hunks(job.id, run.plan.applied, require_review=True)
            except _SettledMeanwhile as settled:  # another process settled it in between
                log.warning("logist: job %s was %s meanwhile", job.id, settled.job.status)
                return settled.job
        if settle:
            try:
                with self._exclusive(job):
                    return self._settle_if_complete(self.store.get(job.id), run)
            except JobBusyError:  # the hunks are recorded; the next accept settles the job
                log.warning("logist: job %s is busy in another process: not settled yet", job.id)
        return job

    def _settle_if_complete(self, job: Job, run: AcceptRun) -> Job:
        every = {h.id for f in run.files for h in f.hunks}
        if job.status == S.REVIEW and every.issubset(job.result.accepted_hunks):
            job, _ = self.store.transition(job.id, S.ACCEPTED, "every hunk accepted")
            self._remove_workspace(job)
        return job

    def _record_hunks(self, job_id: str, hunk_ids: list[str], require_review: bool = False) -> Job:
        """Add `hunk_ids` to the job's accepted hunks; with `require_review`, only while it is
        still in review (else `_SettledMeanwhile`, nothing recorded)."""

        def add(job: Job) -> None:
            if require_review and job.status != S.REVIEW:
                raise _SettledMeanwhile(job)  # rolls the transaction back
            for hunk_id in hunk_ids:
                if hunk_id not in job.result.accepted_hunks:
                    job.result.accepted_hunks.append(hunk_id)

        job, _ = self.store.update(job_id, add, [("hunks_accepted", {"hunks": hunk_ids})])
        return job

    def record_hunks_accepted(self, job_id: str, hunk_ids: list[str], all_ids: set[str]) -> Job:
        """Remember hunks accepted one by one; the job is accepted once all of them are."""
        job = self._record_hunks(job_id, hunk_ids)
        if all_ids.issubset(job.result.accepted_hunks) and job.status == S.REVIEW:
            with self._exclusive(job):
                job, _ = self.store.transition(job.id, S.ACCEPTED, "every hunk accepted")
                self._remove_workspace(job)
        return job

    def reject(self, ref: str) -> Job:
        job = self._require_review(ref, "rejected")
        with self._exclusive(job):
            self._require_review(job.id, "rejected")  # another may have settled it
            job, _ = self.store.transition(job.id, S.REJECTED, "rejected by user")
            self._remove_workspace(job)
        return job

    def delete(self, ref: str) -> str:
        """Remove the job, its workspace, branch and files."""
        job = self.get(ref)
        with self._exclusive(job):
            if job.status in ACTIVE and self._agent_alive(job):
                raise UsageError(f"job {job.id} is {job.status.phrase}: cancel it first")
            self._remove_workspace(job, record=False)  # the record goes next
            drop_base(self.repo, job.id)
            self.store.delete(job.id)
            shutil.rmtree(self.store.job_dir(job.id), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.store.lock_path(job.id).unlink()
        return job.id

    def diff(self, ref: str) -> bytes:
        """The job's proposed change as a git patch: made by git from the recorded commits
        (base..result, once their ids and the result's tree are checked as accept checks
        them), never read from a file an agent could rewrite. It is what accept applies."""
        job = self.get(ref)
        if job.base_commit is None or job.result.result_commit is None:
            raise UsageError(f"job {job.id} has no diff yet (it is {job.status.phrase})")
        return self.reviewed_diff(job)

    def reviewed_diff(self, job: Job) -> bytes:
        """`diff` of a job in hand: empty when it has no result yet (a supervisor's view)."""
        base, result = job.base_commit, job.result.result_commit
        if base is None or result is None or base == result:
            return b""
        try:
            verify_result(self.repo, base, result, job.result.result_tree)
        except ResultMismatchError as exc:
            message = str(exc).replace("cannot accept:", "cannot show the diff:", 1)
            raise ResultMismatchError(message.replace(" (nothing was written)", "")) from None
        args = ["diff", "--binary", "-M", *DIFF_OPTIONS]  # the hunks' boundaries (hunks.py)
        return git([*args, base, result, "--"], self.repo).stdout

    def gc(self, dry_run: bool = False, force: bool = False) -> GcReport:
        """Remove the workspaces and branches of this store's settled jobs (see `gc.py`)."""
        return collect_garbage(self, dry_run=dry_run, force=force)

    # -- internals -------------------------------------------------------------------------
    def _require_review(self, ref: str, verb: str) -> Job:
        job = self.get(ref)
        if job.status != S.REVIEW:
            raise UsageError(
                f"job {job.id} is {job.status.phrase}, not in review: "
                f"only a job in review can be {verb}"
            )
        return job

    @contextlib.contextmanager
    def _exclusive(self, job: Job):  # type: ignore[no-untyped-def]
        lock = DriverLock(self.store.lock_path(job.id))
        if not lock.try_acquire():
            raise JobBusyError(f"job {job.id} is being driven by another process")
        with lock:
            yield

    def _apply(self, job: Job) -> list[str]:
        base, result = job.base_commit, job.result.result_commit
        if base is None or result is None or base == result:
            return []
        with repo_lock(self.repo, "working-tree"):  # two accepts must not interleave
            # The tree recorded at harvest (absent on jobs harvested before it was kept).
            recorded = getattr(job.result, "result_tree", None)
            plan = plan_accept(self.repo, base, result, expected_tree=recorded)
            self.store.update(job.id, None, [("accepting", {"files": [w.path for w in plan]})])
            return execute_plan(self.repo, plan)

    def _remove_workspace(self, job: Job, record: bool = True) -> list[str]:
        """Remove the job's workspace (also one made but not recorded, by a driver that died
        while provisioning: it is at the job's default path) and its branch, by gc's rule
        (`gc.release_branch`): a branch with commits Logist did not make, or checked out, is
        kept; so is a directory at the workspace path other than the one Logist made (a
        symlink there is removed itself, never followed). Each thing kept is said on stderr
        (the `logist` logger) and, with `record`, in a `kept` event; returns those lines."""
        workspace = job.workspace
        if workspace is None:
            path = workspace_path(self.workspace_root, self.repo, job.id)
            if os.path.lexists(path):
                workspace = Workspace(str(path), BRANCH_PREFIX + job.id, job.base_commit or "")
        kept: list[str] = []
        if workspace is not None:
            path = Path(workspace.path)
            if replaced_reason(path, recorded_identity(workspace)) == REPLACED_BY_DIRECTORY:
                kept.append(
                    f"{path}: it is not the directory logist made for job {job.id} (it was "
                    "replaced; look at it, then remove it yourself or run `logist gc --force`)"
                )
            self.runtime_for(job).cleanup(job, workspace)  # what still runs in it
            remove_workspace_dir(self.repo, path, recorded_identity(workspace))
        _deleted, why = release_branch(self.repo, job)
        if why is not None:
            kept.append(why)
        for line in kept:
            log.warning("logist: kept %s", line)
        if kept and record:
            self.store.update(job.id, None, [("kept", {"kept": kept})])
        return kept

    def _agent_alive(self, job: Job) -> bool:
        """Whether the current step's agent may still run (a runtime that cannot tell
        counts as yes: its workspace is not removed under it)."""
        step = job.current_step
        if step is None:
            return False
        paths = step_paths(self.store.job_dir(job.id), step.number)
        found = locate_step(self.runtime_for(job), job, step, paths)
        if found.state == "unknown":
            return True
        handle = found.handle
        return handle is not None and self.runtime_for_handle(job, handle).is_alive(handle, paths)

    def _kill_agent(self, job: Job) -> None:
        """Kill the current step's agent; when its runtime cannot tell whether one runs,
        say so in the job's log (a `reaped` event with `unknown`) and in the log."""
        step = job.current_step
        if step is None:
            return
        paths = step_paths(self.store.job_dir(job.id), step.number)
        found = locate_step(self.runtime_for(job), job, step, paths)
        if found.state == "unknown":
            why = (
                f"the '{job.runtime.name}' runtime cannot tell whether step {step.number}'s "
                f"agent still runs ({found.detail}): stop it yourself if it does"
            )
            log.warning("logist: job %s: %s", job.id, why)
            self.store.update(job.id, None, [("reaped", {"processes": [], "unknown": why})])
            return
        handle = found.handle
        if handle is not None:
            killed = self.runtime_for_handle(job, handle).kill(handle, paths, job.workspace)
            if killed:
                self.store.update(job.id, None, [("reaped", {"processes": killed})])


def _request_cancel(job: Job) -> None:
    job.cancel_requested = True


class _SettledMeanwhile(Exception):
    """The job left review between an accept's two steps (another process settled it)."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} is {job.status.phrase}")
        self.job = job

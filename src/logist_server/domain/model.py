"""The domain model: jobs, their parts and their events, as msgspec structs."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from logist_server.domain.knobs import knob
from logist_server.domain.permissions import Permissions


class JobStatus(StrEnum):
    """Where a job is in its life. See `states.py` for the allowed moves."""

    DRAFT = "draft"
    PENDING = "pending"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    REVIEW = "review"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NEEDS_INPUT = "needs_input"
    STUCK = "stuck"
    HALTED = "halted"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def phrase(self) -> str:
        """The status in a sentence: "job X is {phrase}"."""
        return _PHRASES.get(self, self.value)


_PHRASES = {JobStatus.REVIEW: "in review", JobStatus.NEEDS_INPUT: "waiting for input"}


class LineRange(msgspec.Struct, frozen=True):
    """Lines `start`..`end`, 1-based and inclusive."""

    start: int
    end: int


class Target(msgspec.Struct, frozen=True):
    """What the job is about: a repository-relative file, optionally a range and its text."""

    file: str
    range: LineRange | None = None
    text: str | None = None


class AgentSpec(msgspec.Struct, frozen=True):
    """Which agent program runs, with which model and provider options."""

    name: str
    model: str | None = None
    options: dict[str, str] = msgspec.field(default_factory=dict)


class RuntimeSpec(msgspec.Struct, frozen=True):
    """Where the agent runs, with runtime options (image, namespace...)."""

    name: str = "host"
    options: dict[str, str] = msgspec.field(default_factory=dict)


class Limits(msgspec.Struct, frozen=True):
    """Budgets enforced while the agent runs; None means unlimited.

    The one declaration of each limit (see knobs.py): the settings, the job's copy, the
    configuration schema, the createJob params and the CLI flags all come from here."""

    max_cost_usd: Annotated[float, knob(
        gt=0, flag="--max-cost", metavar="USD",
        help="halt when the reported cost goes above this")] | None = None  # fmt: skip
    max_time_s: Annotated[float, knob(
        gt=0, flag="--max-time", metavar="SECONDS",
        help="halt when a step has run longer than this")] | None = None  # fmt: skip
    max_turns: Annotated[int, knob(
        gt=0, flag="--max-turns", metavar="N",
        help="halt when the agent's turns go above this")] | None = None  # fmt: skip
    hang_timeout_s: Annotated[float, knob(
        gt=0, flag="--hang-timeout", metavar="SECONDS",
        help="stuck after this long with no output and no change")] | None = None  # fmt: skip


class JobPolicy(msgspec.Struct, frozen=True):
    """How a job handles failure and review: fixed when it is created."""

    max_retries: int = 0
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    fallback_agent: str | None = None
    fallback_model: str | None = None
    supervise: bool = False
    max_rounds: int = 3
    supervisor_role: str = "supervisor"


class Usage(msgspec.Struct):
    """Tokens and cost reported by the agent."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float = 0.0
    turns: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    # Where `cost_usd` comes from: `reported` by the agent, `computed` by Logist from the
    # tokens and its pricing table, `mixed` over steps of both kinds, "" when there is none.
    cost_source: str = ""
    # The model whose tokens have no cost: the agent reported none and Logist has no price
    # for it ("" when every token is priced); `--max-cost` then halts the job.
    unpriced: str = ""


class DiffStats(msgspec.Struct, frozen=True):
    """Size of the change a job proposes."""

    files: int = 0
    insertions: int = 0
    deletions: int = 0
    paths: list[str] = msgspec.field(default_factory=list)


class RuntimeHandle(msgspec.Struct, frozen=True):
    """Enough to find a started agent again from another process: the name of the runtime
    that started it and that runtime's own identity of it, as plain data (a `HostIdentity`:
    pid, start time, cgroup; a `ContainerIdentity`: id, labels; a `PodIdentity`: namespace,
    name; or an external runtime's type). `domain.runtime.identity_as` reads it back."""

    runtime: str
    identity: dict[str, Any] = msgspec.field(default_factory=dict)


class Workspace(msgspec.Struct, frozen=True):
    """The isolated copy of the repository a job works in.

    `git_dir` is the user's git directory the checkout was made from and `index` Logist's
    private index of the workspace (kept outside it). Both are None for workspaces made by
    earlier versions, which were `git worktree`s sharing the user's `.git`. `device` and
    `inode` identify the directory Logist made (`os.lstat` at provision): anything else found
    at `path` later (a symlink, another directory) is refused, never used or followed."""

    path: str
    branch: str
    base_commit: str
    git_dir: str | None = None
    index: str | None = None
    device: int | None = None
    inode: int | None = None


class Step(msgspec.Struct):
    """One run of an agent within a job."""

    number: int
    role: str = "worker"
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    handle: RuntimeHandle | None = None
    # Bytes of the agent's output consumed so far, and the runtime's own cursor just past
    # them (opaque, committed with the events read up to it: a re-attach resumes there).
    output_offset: int = 0
    output_cursor: str | None = None
    agent: str | None = None
    # The model the step's agent was given (None: the agent's own default).
    model: str | None = None
    # Reviewer comments the step was given to address (a worker's rework).
    brief: str | None = None
    # The workspace commit the step started from (restep and retries go back to it).
    checkpoint: str | None = None
    # What became of it: done, retry, failover, discarded (restep), failed.
    outcome: str | None = None
    result_commit: str | None = None
    verdict: str | None = None
    comments: str | None = None
    # The observer's verdict on a failure: the pattern's reason, and whether it is transient.
    failure: str | None = None
    transient: bool = False
    # Tokens and cost of this step alone; the job's result holds the sum over its steps.
    usage: Usage | None = None
    # The agent's session id (a `session` event), and the one this step resumed, if any.
    session_id: str | None = None
    resumed_session: str | None = None
    # Why the step runs: start, retry, failover, review, rework, answer or changes
    # (`sessions.py`).
    why: str | None = None
    # The launch nonce, recorded before the runtime starts the agent (`ProcessSpec.launch`):
    # `locate` accepts only a process that carries it.
    launch: str | None = None
    # The user's request for changes after this step, made in review (`logist job
    # request-changes`, `logist/requestChanges`): the next worker step's brief (`plans.py`).
    changes_requested: str | None = None


class PendingQuestion(msgspec.Struct):
    """What the agent asked (a question, or leave to use a tool) while the job waits in
    `needs_input`; `answer` is set by `logist job answer` (never by the agent)."""

    text: str
    step: int
    asked_at: float
    id: str | None = None
    kind: str = "question"  # question | permission
    options: list[str] = msgspec.field(default_factory=list)
    # `agent`: a typed event; `observer`: a prompt seen on the agent's terminal.
    source: str = "agent"
    answer: str | None = None
    answered_at: float | None = None


class JobResult(msgspec.Struct):
    """What the job produced so far."""

    diff: DiffStats | None = None
    result_commit: str | None = None
    # The tree of `result_commit` as harvested (read with replace objects off): accept checks
    # that the commit still names exactly this tree.
    result_tree: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    error: str | None = None
    exit_code: int | None = None
    accepted_hunks: list[str] = msgspec.field(default_factory=list)


class Job(msgspec.Struct):
    """A piece of work handed to an agent. The store keeps one record per job."""

    id: str
    prompt: str
    repo: str
    agent: AgentSpec
    runtime: RuntimeSpec = msgspec.field(default_factory=RuntimeSpec)
    target: Target | None = None
    limits: Limits = msgspec.field(default_factory=Limits)
    policy: JobPolicy = msgspec.field(default_factory=JobPolicy)
    role: str = "worker"
    status: JobStatus = JobStatus.PENDING
    created_at: float = msgspec.field(default_factory=time.time)
    updated_at: float = msgspec.field(default_factory=time.time)
    base_commit: str | None = None
    workspace: Workspace | None = None
    steps: list[Step] = msgspec.field(default_factory=list)
    result: JobResult = msgspec.field(default_factory=JobResult)
    status_reason: str | None = None
    cancel_requested: bool = False
    # Set by `job step`: no process continues the job until `job step` or `job run`.
    paused: bool = False
    rerun_of: str | None = None
    # The agent's last question (answered or still open; see `PendingQuestion`).
    question: PendingQuestion | None = None
    # What the agent may do without asking (see permissions.py); fixed at creation.
    permissions: Permissions = msgspec.field(default_factory=Permissions)
    # The fallback agent's provider options (`policy.fallback_agent`), validated at creation.
    fallback_options: dict[str, str] = msgspec.field(default_factory=dict)
    # The user's `pricing:` overrides (pricing.py), kept so the cost is reckoned the same
    # way by any later driver.
    pricing: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)

    @property
    def current_step(self) -> Step | None:
        return self.steps[-1] if self.steps else None


class JobEvent(msgspec.Struct, frozen=True, omit_defaults=True):
    """One entry of a job's append-only log; `seq` is gapless per job, starting at 1.

    A stored run of messages covers `span` sequence numbers, `seq`..`seq + span - 1`, with
    their texts in `data["texts"]`; `JobStore.events` hands them out one by one.
    """

    job_id: str
    seq: int
    time: float
    # An `EventKind` (event_kinds.py: the payload of each is documented there), or the kind
    # an observer pattern names; text, so a log written by another version still reads.
    kind: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    span: int = 1

    @property
    def last_seq(self) -> int:
        return self.seq + self.span - 1


def to_builtins(value: Any) -> Any:
    """Convert a struct (or anything msgspec knows) to JSON-ready builtins."""
    return msgspec.to_builtins(value)

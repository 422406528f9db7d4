"""The agent interface: WHAT program runs and how its output becomes typed events.

A provider builds the command and environment for one non-interactive run and creates a
parser that turns the output stream, line by line, into `AgentEvent`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

import msgspec

from logist_server.domain.events import AgentEvent
from logist_server.domain.model import Job
from logist_server.domain.process import ProcessSpec
from logist_server.domain.questions import AnswerVia
from logist_server.domain.sessions import Continuation, PriorStep, Why, continuation
from logist_server.providers.agents.options import PathSyntax, check_path_options
from logist_server.support import redaction


class AgentContext(msgspec.Struct, frozen=True):
    """What a provider may use to build a run: paths inside the job's workspace and store."""

    workspace: str
    job_dir: str
    prompt_file: str
    rendered_prompt: str
    answer_file: str
    role: str = "worker"
    step: int = 1
    # `worker` or `supervisor`: what the role asks for, whatever its name.
    role_kind: str = "worker"
    # Why this step runs (start, retry, failover, review, rework, answer) and the job's
    # earlier live steps, oldest first (their roles, agents, outcomes and session ids).
    why: Why = "start"
    history: tuple[PriorStep, ...] = ()
    # The agent session to continue (`supports_resume` only; None: start a new one).
    resume_session: str | None = None
    # The user's answer to the question the previous step asked (`why == "answer"`).
    answer: str | None = None


@runtime_checkable
class OutputParser(Protocol):
    """Stateful reader of one run's output."""

    # True when the last `feed_lines` block held typed events only, no plain-text line: the
    # driver then does not look for plain text for the observer.
    only_events: bool

    def feed(self, line: str) -> list[AgentEvent]:
        """Events for one complete output line (without its newline)."""
        ...

    def feed_lines(self, data: bytes) -> list[AgentEvent]:
        """Events for a block of complete lines (each ending in a newline)."""
        ...

    def finish(self, exit_code: int | None) -> list[AgentEvent]:
        """Events once the output has ended (a final usage or error, say)."""
        ...


def feed_each_line(parser: OutputParser, data: bytes) -> list[AgentEvent]:
    """`feed_lines` for parsers that read one line at a time."""
    return [
        event
        for line in data[:-1].split(b"\n")
        for event in parser.feed(line.decode("utf-8", "replace"))
    ]


@runtime_checkable
class AgentProvider(Protocol):
    """One kind of coding agent."""

    name: str
    description: str
    program: str
    #: Options whose values name files, and how (see `options.PathSyntax`): each must stay
    #: inside the workspace, checked for every provider by `options.check_path_options`.
    path_options: Mapping[str, PathSyntax]
    #: The user's environment variables the agent needs (API keys, base URLs): the agent
    #: process gets these and a minimal base (`runtimes.environment.BASE`), nothing else.
    env_vars: tuple[str, ...] = ()  # a default: optional (providers written before it)
    #: Which of those variables hold secrets: their values are masked (`***`) wherever
    #: Logist writes or prints text (`redaction`). Declared secrets are passed on as well.
    secret_env: tuple[str, ...] = ()  # a default: optional (providers written before it)
    #: Whether `build` can continue an earlier session (`AgentContext.resume_session`).
    supports_resume: bool = False  # a default: optional
    #: How an answer to the agent's question reaches it: `resume` (the agent exits after
    #: asking; the answer resumes its session in a new step), `stdin` (written to the live
    #: agent's input) or `file` (the live agent waits for `AgentContext.answer_file`).
    answer_via: AnswerVia = "file"  # a default: optional
    #: How to install the program and how to log in to it (`logist doctor`, `agent list`).
    install_hint: str = ""  # a default: optional
    login_hint: str = ""  # a default: optional

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        """The command line and environment for one non-interactive run: `argv[0]` is the
        installed program's absolute path (see `ProcessSpec`)."""
        ...

    def validate_options(self, options: dict[str, str]) -> None:
        """UsageError when `--agent-opt` values cannot work, before a job is created."""
        ...

    def new_parser(self) -> OutputParser:
        """A fresh parser for one run's output."""
        ...

    def version(self) -> str | None:
        """The installed program's version, or None when it is not installed."""
        ...


def credentials(provider: AgentProvider) -> str | None:
    """Where the agent's credentials come from (`"ANTHROPIC_API_KEY"`, `"~/.codex/auth.json"`),
    or None when none is configured; a provider without `credentials()` says `"unknown"`.

    Providers may define `credentials(self) -> str | None`; it must only look (never print
    a value, never run the agent)."""
    probe = getattr(provider, "credentials", None)
    if not callable(probe):
        return "unknown"
    found = probe()
    return found if isinstance(found, str) or found is None else "unknown"


def declare_secrets(provider: AgentProvider) -> tuple[str, ...]:
    """Register the provider's `secret_env` for redaction (call before anything it builds
    is written or printed); the names."""
    secrets = tuple(getattr(provider, "secret_env", ()))  # providers written before it: none
    redaction.declare(secrets)
    return secrets


def supports_resume(provider: AgentProvider) -> bool:
    return bool(getattr(provider, "supports_resume", False))


def answer_via(provider: AgentProvider) -> str:
    """The provider's `answer_via` (`file` for providers written before it)."""
    return str(getattr(provider, "answer_via", "file"))


def continuation_for(provider: AgentProvider, job: Job, role: str, agent: str) -> Continuation:
    """What a step of `role` run by `provider` (named `agent`) continues (`sessions`)."""
    return continuation(job, role, agent, supports_resume(provider))


def with_continuation(ctx: AgentContext, plan: Continuation) -> AgentContext:
    """`ctx` with the step's reason, the job's history, the session and the answer."""
    return msgspec.structs.replace(
        ctx, why=plan.why, history=plan.history, resume_session=plan.session, answer=plan.answer
    )


def build_spec(provider: AgentProvider, job: Job, ctx: AgentContext) -> ProcessSpec:
    """`provider.build`, once every option that names a file is checked against the
    workspace the agent will run in (roles and configuration may have changed since the
    job was created)."""
    check_path_options(provider.path_options, job.agent.options, Path(ctx.workspace))
    spec = provider.build(job, ctx)
    secrets = declare_secrets(provider)  # masked whatever the agent gets
    if not getattr(provider, "secrets_inherited", True):
        secrets = ()  # the spec's `inherit` names the ones this step's agent gets
    declared = tuple(getattr(provider, "env_vars", ())) + secrets
    return msgspec.structs.replace(spec, inherit=tuple(dict.fromkeys(spec.inherit + declared)))

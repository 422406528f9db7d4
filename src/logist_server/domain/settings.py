"""Effective settings: what configuration resolves to, with every default in one place.

User-written files are validated by `config.schema` (pydantic) and merged by
`config.loader`; the result is held in these msgspec structs, which are cheap to build
and to store inside a job.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

import msgspec

from logist_server.domain.knobs import Knob, knob, section_knobs
from logist_server.domain.model import JobPolicy, Limits
from logist_server.domain.permissions import Permissions

#: The longest wait before a retry a configuration may ask for (one hour): a bound, so that
#: `1e308` in a repository's logist.yml cannot park a job forever.
MAX_BACKOFF_S = 3600.0


class RetrySettings(msgspec.Struct, frozen=True):
    """Transient failures (rate limit, network) are retried with exponential backoff.

    Every field is a knob (knobs.py): declared here once, kept on the job in `JobPolicy.<job>`."""

    max_retries: Annotated[int, knob(
        ge=0, le=20, flag="--retries", metavar="N", wire="retries", job="max_retries",
        help="retries of a transient failure (rate limit, network)")] = 2  # fmt: skip
    backoff_s: Annotated[float, knob(
        ge=0, le=MAX_BACKOFF_S, job="backoff_s",
        help="the first wait before a retry; it doubles each time")] = 2.0  # fmt: skip
    max_backoff_s: Annotated[float, knob(
        ge=0, le=MAX_BACKOFF_S, job="max_backoff_s",
        help="the longest wait before a retry")] = 60.0  # fmt: skip
    fallback_agent: Annotated[str, knob(
        flag="--fallback-agent", metavar="NAME", wire="fallbackAgent", job="fallback_agent",
        help="agent that takes over when the first keeps failing")] | None = None  # fmt: skip
    fallback_model: Annotated[str, knob(
        flag="--fallback-model", metavar="MODEL", wire="fallbackModel", job="fallback_model",
        help="the fallback agent's model (its own default when unset)")] | None = None  # fmt: skip


class ReviewSettings(msgspec.Struct, frozen=True):
    """Whether a supervisor reviews the worker's change, and for how many rounds."""

    supervisor: Annotated[bool, knob(
        flag="--supervisor", wire="supervisor", job="supervise",
        help="have a supervisor review the change")] = False  # fmt: skip
    max_rounds: Annotated[int, knob(
        gt=0, le=10, flag="--max-rounds", metavar="N", wire="maxRounds", job="max_rounds",
        help="supervisor review rounds at most")] = 3  # fmt: skip
    role: Annotated[str, knob(
        job="supervisor_role", help="the role that reviews")] = "supervisor"  # fmt: skip


class ObserverSettings(msgspec.Struct, frozen=True):
    """User patterns over raw agent output (before the built-ins) and built-ins turned off."""

    patterns: list[dict[str, Any]] = msgspec.field(default_factory=list)
    disable: list[str] = msgspec.field(default_factory=list)


class RoleSettings(msgspec.Struct, frozen=True):
    """A role defined inline in a configuration file (see `roles.py`)."""

    name: str | None = None
    kind: str | None = None
    description: str | None = None
    instructions: str | None = None
    agent: str | None = None
    model: str | None = None
    agent_options: dict[str, str] = msgspec.field(default_factory=dict)


class Settings(msgspec.Struct, frozen=True):
    """Everything configuration decides, after layering."""

    agent: str = "mock"
    model: str | None = None
    agent_options: dict[str, str] = msgspec.field(default_factory=dict)
    runtime: str = "host"
    runtime_options: dict[str, str] = msgspec.field(default_factory=dict)
    role: str = "worker"
    limits: Limits = msgspec.field(default_factory=Limits)
    workspace_root: str | None = None
    concurrency: int = 4
    retries: RetrySettings = msgspec.field(default_factory=RetrySettings)
    review: ReviewSettings = msgspec.field(default_factory=ReviewSettings)
    observer: ObserverSettings = msgspec.field(default_factory=ObserverSettings)
    roles: dict[str, RoleSettings] = msgspec.field(default_factory=dict)
    # The fallback agent's provider options (`retries.fallback_agent`); the user's only.
    fallback_agent_options: dict[str, str] = msgspec.field(default_factory=dict)
    # What the agent may do without asking (permissions.py); a repository only tightens it.
    permissions: Permissions = msgspec.field(default_factory=Permissions)
    # Per-model prices overriding the built-in table (pricing.py); the user's only.
    pricing: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)

    def policy(self) -> JobPolicy:
        """What a job keeps of these settings, so any later driver follows the same rules."""
        return JobPolicy(
            **{
                k.job: getattr(getattr(self, k.section), k.key)
                for k in knobs()
                if k.section != LIMITS
            }
        )


LIMITS = "limits"
#: The configuration sections made of knobs, and their structs.
KNOB_SECTIONS: dict[str, type[msgspec.Struct]] = {
    LIMITS: Limits,
    "retries": RetrySettings,
    "review": ReviewSettings,
}


@functools.cache
def knobs() -> tuple[Knob, ...]:
    """Every limit and policy field, in configuration order."""
    return tuple(
        k
        for section, struct in KNOB_SECTIONS.items()
        for k in section_knobs(section, struct, limits=section == LIMITS)
    )

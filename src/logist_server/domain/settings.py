"""Effective settings: what configuration resolves to, with every default in one place.

User-written files are validated by `config.schema` (pydantic) and merged by
`config.loader`; the result is held in these msgspec structs, which are cheap to build
and to store inside a job.
"""

from __future__ import annotations

from typing import Any

import msgspec

from logist_server.domain.model import JobPolicy, Limits


class RetrySettings(msgspec.Struct, frozen=True):
    """Transient failures (rate limit, network) are retried with exponential backoff."""

    max_retries: int = 2
    backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    fallback_agent: str | None = None


class ReviewSettings(msgspec.Struct, frozen=True):
    """Whether a supervisor reviews the worker's change, and for how many rounds."""

    supervisor: bool = False
    max_rounds: int = 3
    role: str = "supervisor"


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

    def policy(self) -> JobPolicy:
        """What a job keeps of these settings, so any later driver follows the same rules."""
        return JobPolicy(
            max_retries=self.retries.max_retries,
            backoff_s=self.retries.backoff_s,
            max_backoff_s=self.retries.max_backoff_s,
            fallback_agent=self.retries.fallback_agent,
            supervise=self.review.supervisor,
            max_rounds=self.review.max_rounds,
            supervisor_role=self.review.role,
        )

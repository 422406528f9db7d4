"""Provider registries: built-ins by import path plus entry points, import errors tolerated.

Adding an agent or runtime is one module and one line here, or an external package that
declares a `logist.agents` / `logist.runtimes` entry point.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.domain.runtime import RuntimeOptionsError, parse_runtime_options
from logist_server.support import redaction

log = logging.getLogger(__name__)
T = TypeVar("T")

BUILTIN_AGENTS: dict[str, str] = {
    "mock": "logist_server.providers.agents.mock:MockAgent",
    "aider": "logist_server.providers.agents.aider:AiderAgent",
    "cline": "logist_server.providers.agents.cline:ClineAgent",
    "opencode": "logist_server.providers.agents.opencode:OpencodeAgent",
    "claude-code": "logist_server.providers.agents.claude_code:ClaudeCodeAgent",
    "acp": "logist_server.providers.agents.acp:AcpAgent",
    "codex": "logist_server.providers.agents.codex:CodexAgent",
    "gemini": "logist_server.providers.agents.gemini:GeminiAgent",
}
BUILTIN_RUNTIMES: dict[str, str] = {
    "host": "logist_server.providers.runtimes.host:HostRuntime",
    "replay": "logist_server.providers.runtimes.replay:ReplayRuntime",
}
AGENTS_GROUP = "logist.agents"
#: The protocol the providers of each entry-point group implement, checked on creation.
PROTOCOLS: dict[str, str] = {
    "logist.agents": "logist_server.providers.agents.base:AgentProvider",
    "logist.runtimes": "logist_server.providers.runtimes.base:Runtime",
}


class Registry(Generic[T]):
    """Named providers of one kind, created on first use and then reused."""

    def __init__(self, kind: str, builtins: dict[str, str], group: str) -> None:
        self.kind = kind
        self._targets: dict[str, str | Callable[[], T]] = dict(builtins)
        self._instances: dict[str, T] = {}
        self._group = group
        self._loaded_entry_points = False
        if group == AGENTS_GROUP:  # any process that may write a job's text masks them all
            redaction.add_source(self.secret_names)

    def register(self, name: str, factory: Callable[[], T]) -> None:
        self._targets[name] = factory
        self._instances.pop(name, None)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._targets)

    def get(self, name: str) -> T:
        if name in self._instances:
            return self._instances[name]
        if name not in self._targets:
            self._load_entry_points()
        target = self._targets.get(name)
        if target is None:
            raise UsageError(f"unknown {self.kind} '{name}' (known: {', '.join(self.names())})")
        factory = _resolve(target) if isinstance(target, str) else target
        instance = factory()
        missing = _missing_members(self._group, instance)
        if missing:  # written against another version of the protocol
            raise UsageError(
                f"{self.kind} provider '{name}' cannot be used: it lacks {', '.join(missing)}"
            )
        if self._group == AGENTS_GROUP:
            redaction.declare(n for n in getattr(instance, "secret_env", ()) if isinstance(n, str))
        self._instances[name] = instance
        return instance

    def secret_names(self) -> list[str]:
        """The `secret_env` of every registered provider (its class attribute, or the
        instance's when the factory is a function); one that cannot load names none."""
        names: list[str] = []
        for name in self.names():
            target = self._targets[name]
            try:
                factory = _resolve(target) if isinstance(target, str) else target
                declared = getattr(factory, "secret_env", None)
                if declared is None and name in self._instances:
                    declared = getattr(self._instances[name], "secret_env", ())
                names += [n for n in declared or () if isinstance(n, str)]
            except Exception as exc:  # a broken plugin must not stop masking the others
                log.info("secrets of %s %s unknown: %s", self.kind, name, exc)
        return names

    def check(self, name: str) -> None:
        """UsageError unless `name` is a known provider (without creating it)."""
        if name not in self._targets:
            self._load_entry_points()
        if name not in self._targets:
            raise UsageError(f"unknown {self.kind} '{name}' (known: {', '.join(self.names())})")

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=self._group):
            self._targets.setdefault(ep.name, ep.value)


def declare_job_secrets(job: Job) -> None:
    """Declare the secret names a job carries: every variable its runtime options let
    through to the agent (`env`). Called by any process that loads a job to drive it, so a
    re-attaching driver masks what the one that started the step masked."""
    try:
        names = parse_runtime_options(job.runtime.options).env_allow
    except RuntimeOptionsError:
        return  # a job cannot hold options that do not parse: its creation checked them
    redaction.declare(names)


def _resolve(path: str) -> Callable[[], T]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        factory: Callable[[], T] = getattr(module, attr)
    except Exception as exc:  # any import-time failure: one provider must not break the rest
        detail = str(exc) if isinstance(exc, ImportError) else f"{type(exc).__name__}: {exc}"
        log.info("cannot load provider %s: %s", path, detail)
        raise UsageError(f"provider {path} cannot be loaded: {detail}") from exc
    return factory


def _missing_members(group: str, instance: object) -> list[str]:
    """The members of the group's protocol that `instance` does not have (a member the
    protocol gives a default value is optional)."""
    path = PROTOCOLS.get(group)
    if path is None:
        return []
    module_name, _, attr = path.partition(":")
    protocol = getattr(importlib.import_module(module_name), attr)
    defaults = {key for key in vars(protocol) if key in getattr(protocol, "__annotations__", {})}
    members = (set(getattr(protocol, "__annotations__", {})) - defaults) | {
        key
        for key, value in vars(protocol).items()
        if not key.startswith("_") and (callable(value) or isinstance(value, property))
    }
    return sorted(m for m in members if not hasattr(instance, m))

"""Descriptions of the available agents and runtimes, for `list` commands and requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logist_server.domain.errors import LogistError
from logist_server.providers.agents.base import credentials
from logist_server.providers.registry import Registry


def _describe(
    registry: Registry[Any],
    loaded: Callable[[Any], dict[str, Any]],
    unloadable: Callable[[LogistError], dict[str, Any]],
) -> list[dict[str, Any]]:
    """One row per registered name: `loaded(provider)`, or `unloadable(why)` when the
    provider cannot be loaded (the row then still names it)."""
    rows: list[dict[str, Any]] = []
    for name in registry.names():
        try:
            provider = registry.get(name)
        except LogistError as exc:
            rows.append({"name": name, **unloadable(exc)})
            continue
        rows.append({"name": name, **loaded(provider)})
    return rows


def describe_agents(registry: Registry[Any]) -> list[dict[str, Any]]:
    """Each agent: installed or not, its version, where its credentials come from (None:
    none configured; "unknown": the provider cannot tell), and how to install and log in."""

    def loaded(agent: Any) -> dict[str, Any]:
        version = agent.version()
        return {
            "description": agent.description,
            "program": agent.program,
            "version": version,
            "installed": version is not None,
            "credentials": credentials(agent),
            "installHint": str(getattr(agent, "install_hint", "") or ""),
            "loginHint": str(getattr(agent, "login_hint", "") or ""),
        }

    def unloadable(exc: LogistError) -> dict[str, Any]:
        return {"description": str(exc), "program": None, "version": None, "installed": False,
                "credentials": None, "installHint": "", "loginHint": ""}  # fmt: skip

    return _describe(registry, loaded, unloadable)


def describe_runtimes(registry: Registry[Any]) -> list[dict[str, Any]]:
    def loaded(runtime: Any) -> dict[str, Any]:
        ok, why = runtime.available()
        return {
            "description": runtime.description,
            "available": ok,
            "detail": why,
            "supportsReattach": runtime.supports_reattach,
        }

    def unloadable(exc: LogistError) -> dict[str, Any]:
        return {
            "description": str(exc),
            "available": False,
            "detail": str(exc),
            "supportsReattach": False,
        }

    return _describe(registry, loaded, unloadable)

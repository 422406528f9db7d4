"""Descriptions of the available agents and runtimes, for `list` commands and requests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    provider cannot be loaded (the row then still names it). The providers are asked at
    the same time: each may start its program (`--version`), a second or more apiece."""

    def row(name: str) -> dict[str, Any]:
        try:
            provider = registry.get(name)
        except LogistError as exc:
            return {"name": name, **unloadable(exc)}
        return {"name": name, **loaded(provider)}

    names = registry.names()
    for name in names:  # created here, one at a time: the registry is not thread-safe
        with contextlib.suppress(LogistError):
            registry.get(name)
    with ThreadPoolExecutor(max(1, min(8, len(names)))) as pool:
        return list(pool.map(row, names))


def describe_agents(registry: Registry[Any]) -> list[dict[str, Any]]:
    """Each agent: installed or not, its version, where its credentials come from (None:
    none configured; "unknown": the provider cannot tell), and how to install and log in."""

    def loaded(agent: Any) -> dict[str, Any]:
        version = agent.version()
        row = {
            "description": agent.description,
            "program": agent.program,
            "version": version,
            "installed": version is not None,
            "credentials": credentials(agent),
            "installHint": str(getattr(agent, "install_hint", "") or ""),
            "loginHint": str(getattr(agent, "login_hint", "") or ""),
        }
        presets = getattr(agent, "presets", None)
        if callable(presets):  # an agent of several programs (acp): each one's availability
            row["presets"] = presets()
        return row

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

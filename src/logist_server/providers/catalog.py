"""Descriptions of the available agents and runtimes, for `list` commands and requests."""

from __future__ import annotations

from typing import Any

from logist_server.domain.errors import LogistError
from logist_server.providers.registry import Registry


def describe_agents(registry: Registry[Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in registry.names():
        try:
            agent = registry.get(name)
        except LogistError as exc:
            rows.append(
                {
                    "name": name,
                    "description": str(exc),
                    "program": None,
                    "version": None,
                    "installed": False,
                }
            )
            continue
        version = agent.version()
        rows.append(
            {
                "name": name,
                "description": agent.description,
                "program": agent.program,
                "version": version,
                "installed": version is not None,
            }
        )
    return rows


def describe_runtimes(registry: Registry[Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in registry.names():
        try:
            runtime = registry.get(name)
        except LogistError as exc:
            rows.append(
                {
                    "name": name,
                    "description": str(exc),
                    "available": False,
                    "detail": str(exc),
                    "supportsReattach": False,
                }
            )
            continue
        ok, why = runtime.available()
        rows.append(
            {
                "name": name,
                "description": runtime.description,
                "available": ok,
                "detail": why,
                "supportsReattach": runtime.supports_reattach,
            }
        )
    return rows

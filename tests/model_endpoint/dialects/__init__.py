"""The model APIs the scripted endpoint speaks: one module per API (interface in ../README.md).

`Dialect` wraps a dialect module: the required functions (`matches`, `reply`, `error_body`)
and the optional side-call hooks, so the core calls every dialect the same way.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

# The dialects the endpoint serves by default, tried in this order.
NAMES = ("anthropic", "openai_responses", "openai_chat", "gemini")

Served = dict[str, int]
Reply = tuple[bytes, str, Served]


def request_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object ({} when it is not one)."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class Dialect:
    """One dialect module, called the same way whatever optional parts it defines."""

    def __init__(self, module: ModuleType | Any) -> None:
        """`module`: a dialect module, or any object with the same functions (a class of
        static methods in a unit test); `NAME` overrides the name taken from `__name__`."""
        self.module = module
        self.name = str(getattr(module, "NAME", module.__name__.rsplit(".", 1)[-1]))

    def matches(self, method: str, path: str) -> bool:
        """A scripted model call (one turn) or a side call of this dialect."""
        if self.module.matches(method, path):
            return True
        probe = getattr(self.module, "is_count_tokens", None)
        return bool(probe and probe(method, path))

    def reply(self, turn: Mapping[str, Any], body: bytes, path: str) -> Reply:
        if _arity(self.module.reply) >= 3:
            return self.module.reply(turn, body, path)  # type: ignore[no-any-return]
        return self.module.reply(turn, body)  # type: ignore[no-any-return]

    def side_reply(self, method: str, path: str, body: bytes) -> Reply | None:
        """The answer to a call that consumes no scripted turn, or None for a scripted one.

        Hooks, first found wins: `side_reply(method, path, body) -> (body, type, served) |
        None`; `is_count_tokens(method, path)` + `count_tokens_reply(body) -> bytes` (no
        tokens served); `is_routing(path, request)` (answered by `reply({}, body, path)`)."""
        hook: Callable[..., Reply | None] | None = getattr(self.module, "side_reply", None)
        if hook is not None:
            return hook(method, path, body)
        probe = getattr(self.module, "is_count_tokens", None)
        if probe is not None and probe(method, path):
            answer: bytes = self.module.count_tokens_reply(body)
            return answer, "application/json", {}
        routing = getattr(self.module, "is_routing", None)
        if routing is not None and routing(path, request_json(body)):
            return self.reply({}, body, path)
        return None

    def error_body(self, status: int, message: str) -> bytes:
        return self.module.error_body(status, message)  # type: ignore[no-any-return]


def _arity(func: Callable[..., Any]) -> int:
    try:
        return len(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return 2


def load(name: str | Any) -> Dialect:
    """The dialect `name` (a module of this package, a dotted module path, or an object)."""
    if not isinstance(name, str):
        return Dialect(name)
    module = importlib.import_module(name if "." in name else f"{__name__}.{name}")
    return Dialect(module)

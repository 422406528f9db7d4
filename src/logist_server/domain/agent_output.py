"""An agent's events made safe to keep: bounded sizes, no control characters, usable ids.

The agent controls its output. Whatever it prints ends up in the store, on a terminal
(`job show`, `job log`), in the editor and, for a session id, on the next step's command
line (`--resume ID`). `screen` is applied to every parsed event before it is recorded, for
every provider: a message or an error is cut to a bound (its control characters stay, and
are escaped wherever it is shown); a question, its options and a tool's name and output are
also stripped of control characters (a newline and a tab stay in free text); an id is one
short line; and a session id that is not a plain token (letters, digits, `._:@+=-`, not
starting with `-`, no `/`) is refused, never passed on. Declared
secrets are masked later, by the store, like any text it writes.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from logist_server.domain.events import (
    AgentError,
    AgentEvent,
    AgentMessage,
    AgentQuestion,
    AgentSession,
    AgentToolCall,
    AgentToolResult,
)

E = TypeVar("E", bound=msgspec.Struct)
MAX_TEXT = 64 * 1024  # a message or an error
MAX_QUESTION = 4000
MAX_OPTIONS = 20
MAX_OPTION = 200
MAX_ID = 128
MAX_TOOL_OUTPUT = 4000
MAX_SESSION_ID = 200
# No `/` (nor `..`): a CLI that maps a session id to a file would take it as a path.
SESSION_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:@+=-]*\Z")
# C0 and C1 controls and DEL, but newline and tab; also lone surrogates (from bad UTF-8).
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_LINE_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with a note of how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def clean_text(text: str, limit: int, one_line: bool = False) -> str:
    """`text` without control characters (a newline and a tab stay unless `one_line`),
    cut to `limit` characters with a note of how much was cut."""
    text = cut(text, limit)
    pattern = _LINE_CONTROLS if one_line else _CONTROLS
    return pattern.sub(" " if one_line else "", text)


def clean_id(value: str | None) -> str | None:
    """An agent's id of a tool call or request: one line of at most MAX_ID characters."""
    if value is None:
        return None
    return clean_text(value, MAX_ID, one_line=True)[:MAX_ID]


def session_problem(value: str) -> str | None:
    """Why `value` cannot be used as a session id (it goes on a command line), or None."""
    if not value:
        return "it is empty"
    if len(value) > MAX_SESSION_ID:
        return f"it is {len(value)} characters long (at most {MAX_SESSION_ID})"
    if SESSION_ID.match(value) is None:
        return "it holds characters other than letters, digits and ._:@+=- or starts with -"
    if ".." in value:
        return "it holds '..' (a session id is never a path)"
    return None


def screen(events: list[AgentEvent]) -> list[AgentEvent]:
    """`events` made safe to record (see the module's docstring); the same objects when
    nothing needed a change, so a flood of plain messages costs one scan each."""
    return [_screen_one(event) for event in events]


def _screen_one(event: AgentEvent) -> AgentEvent:
    kind = type(event)
    if kind is AgentMessage:  # free text: kept as said (escaped when shown), only bounded
        assert isinstance(event, AgentMessage)
        return event if len(event.text) <= MAX_TEXT else AgentMessage(cut(event.text, MAX_TEXT))
    if kind is AgentError:
        assert isinstance(event, AgentError)
        detail = None if event.detail is None else cut(event.detail, MAX_TEXT)
        return _replaced(event, message=cut(event.message, MAX_TEXT), detail=detail)
    if isinstance(event, AgentSession):
        problem = session_problem(event.id)
        if problem is None:
            return event if event.refused is None else _replaced(event, refused=None)
        shown = clean_text(event.id, 80, one_line=True)
        return AgentSession(id=shown, resumed=event.resumed, refused=problem)
    if isinstance(event, AgentQuestion):
        options = [clean_text(o, MAX_OPTION, one_line=True) for o in event.options]
        return _replaced(
            event,
            text=clean_text(event.text, MAX_QUESTION),
            id=clean_id(event.id),
            options=options[:MAX_OPTIONS],
        )
    if isinstance(event, AgentToolCall):
        return _replaced(event, id=clean_id(event.id), tool=clean_text(event.tool, MAX_ID, True))
    if isinstance(event, AgentToolResult):
        tool = None if event.tool is None else clean_text(event.tool, MAX_ID, True)
        output = clean_text(event.output, MAX_TOOL_OUTPUT)
        return _replaced(event, id=clean_id(event.id), tool=tool, output=output)
    return event


def _replaced(event: E, **changes: Any) -> E:
    """`event` with `changes`, or `event` itself when they change nothing."""
    if all(getattr(event, key) == value for key, value in changes.items()):
        return event
    return msgspec.structs.replace(event, **changes)


def observed_texts(event: AgentEvent) -> list[str]:
    """What the observer reads of an agent event: an error's message and, when it came as
    a JSON object, that object's text (its `"type": "rate_limit_error"`, say)."""
    if isinstance(event, AgentError):
        return [event.message] if event.detail is None else [event.message, event.detail]
    return []

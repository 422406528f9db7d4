"""A parser for agents that print one typed JSON object per line (the mock's format).

A JSON line that is not one of Logist's events but has the shape of an error (`{"type":
"error", ...}`, `{"error": {...}}`, codex's `turn.failed`, claude's `result` with
`is_error`) becomes an `AgentError` (`json_error`), so the observer classifies it as it
would the same error printed as plain text; any other line is kept as a message.
"""

from __future__ import annotations

from typing import Any

import msgspec

from logist_server.domain.events import AgentError, AgentEvent, AgentMessage

_decode = msgspec.json.Decoder(AgentEvent).decode
_decode_many = msgspec.json.Decoder(list[AgentEvent]).decode
_decode_any = msgspec.json.Decoder().decode
_ERROR_TYPES = frozenset({"error", "turn.failed", "api_error", "fatal"})


def json_error(obj: Any) -> str | None:
    """The message of an error an agent printed as a JSON object, or None when `obj` is not
    shaped like one. Real-agent parsers use it for the error shapes they do not type."""
    if not isinstance(obj, dict):
        return None
    error = obj.get("error")
    is_error = (
        obj.get("type") in _ERROR_TYPES
        or obj.get("is_error") is True
        or obj.get("level") == "error"
        or error not in (None, False, "", {})
    )
    if not is_error:
        return None
    for holder in (error, obj):
        if isinstance(holder, str) and holder:
            return holder
        if isinstance(holder, dict):
            for key in ("message", "msg", "result", "detail"):
                value = holder.get(key)
                if isinstance(value, str) and value:
                    return value
            nested = holder.get("error")
            if isinstance(nested, dict) and isinstance(nested.get("message"), str):
                return str(nested["message"])
    kind = obj.get("type")
    return f"the agent reported an error ({kind})" if isinstance(kind, str) else "error"


class JsonLinesParser:
    """Lines in Logist's own event format; an error in another JSON shape is an error;
    anything else is kept as a message."""

    def __init__(self) -> None:
        self.saw_error = False
        self.only_events = False  # see OutputParser

    def feed(self, line: str) -> list[AgentEvent]:
        if not line.strip():
            return []
        if line.startswith("{"):
            try:
                event = _decode(line)
            except msgspec.DecodeError:
                event = _foreign(line)
            if isinstance(event, AgentError):
                self.saw_error = True
            return [event]
        return [AgentMessage(text=line)]

    def feed_lines(self, data: bytes) -> list[AgentEvent]:
        """Decode a whole block in one call when every line is an event (a flood).

        The block's newlines become commas (one pass in C); a blank or non-event line makes
        that array invalid, and the block is then read line by line."""
        try:
            events = _decode_many(b"[" + data[:-1].replace(b"\n", b",") + b"]")
        except msgspec.DecodeError:
            self.only_events = False
            lines = data[:-1].split(b"\n")
            return [e for line in lines for e in self.feed(line.decode("utf-8", "replace"))]
        self.only_events = True
        if not self.saw_error and b"error" in data:  # the byte search spares a pass per event
            self.saw_error = any(type(e) is AgentError for e in events)
        return events

    def finish(self, exit_code: int | None) -> list[AgentEvent]:
        if exit_code not in (0, None) and not self.saw_error:
            return [AgentError(message=f"agent exited with status {exit_code}")]
        return []


def _foreign(line: str) -> AgentEvent:
    """A JSON line that is not one of Logist's events: an error if shaped like one."""
    try:
        obj = _decode_any(line)
    except msgspec.DecodeError:
        return AgentMessage(text=line)
    message = json_error(obj)
    if message is None:
        return AgentMessage(text=line)
    return AgentError(message=message, detail=line)

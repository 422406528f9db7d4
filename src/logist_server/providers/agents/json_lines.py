"""Pieces the real agents' JSON-lines parsers share (codex, gemini, cline, opencode, acp).

Each agent prints one JSON object per line, with plain text (stderr: warnings, stack lines)
between; these read a line as an object, a value as a count or an object, and an error's
JSON body; `JsonOrTextLines` is the line reader of the parsers that keep a plain-text error
line for the error a failed exit reports.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from logist_server.domain.events import AgentError, AgentEvent, AgentMessage
from logist_server.providers.agents.base import feed_each_line

_decode = msgspec.json.Decoder().decode
#: A plain-text error line (stderr): kept for the error a failed exit reports.
PLAIN_ERROR = re.compile(r"(?:Error|error|ERROR|Fatal)\b[^\n]{0,400}$")


def count(value: object) -> int:
    """`value` as a token count: a positive integer (not a bool), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def as_dict(value: object) -> dict[str, Any]:
    """`value` if it is an object, else an empty one."""
    return value if isinstance(value, dict) else {}


def decode_object(text: str) -> dict[str, Any] | None:
    """The JSON object `text` is, or None (not JSON, or JSON but not an object)."""
    try:
        obj = _decode(text)
    except msgspec.DecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def error_object(text: str) -> dict[str, Any] | None:
    """The `error` object of a JSON error body inside `text` (from its first `{`), if any."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        body = json.loads(text[start:])
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


class JsonOrTextLines:
    """Reads one line at a time: a JSON object goes to `event`; any other line is kept as a
    message, and the last plain-text error line (`Error resuming session: ...` on stderr)
    is kept for the error `finish` reports when the agent (`agent`) exits with a failure."""

    agent = "agent"

    def __init__(self) -> None:
        self.only_events = False  # see OutputParser
        self.saw_error = False
        self._plain_error: str | None = None

    def feed_lines(self, data: bytes) -> list[AgentEvent]:
        return feed_each_line(self, data)

    def feed(self, line: str) -> list[AgentEvent]:
        text = line.strip()
        if not text:
            return []
        if not text.startswith("{"):
            if PLAIN_ERROR.match(text):
                self._plain_error = text
            return [AgentMessage(text=line)]
        try:
            obj = json.loads(text)
        except ValueError:
            return [AgentMessage(text=line)]
        if not isinstance(obj, dict):
            return [AgentMessage(text=line)]
        return self._event(obj, text)

    def finish(self, exit_code: int | None) -> list[AgentEvent]:
        if exit_code not in (0, None) and not self.saw_error:
            return [self._exit_error(exit_code)]
        return []

    def _exit_error(self, exit_code: int | None) -> AgentError:
        said = f": {self._plain_error}" if self._plain_error else ""
        return AgentError(message=f"{self.agent} exited with status {exit_code}{said}")

    def _event(self, obj: dict[str, Any], line: str) -> list[AgentEvent]:
        """The events of one JSON object line (`line`, stripped)."""
        raise NotImplementedError

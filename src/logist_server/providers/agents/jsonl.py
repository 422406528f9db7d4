"""A parser for agents that print one typed JSON object per line (the mock's format)."""

from __future__ import annotations

import msgspec

from logist_server.domain.events import AgentError, AgentEvent, AgentMessage

_decode = msgspec.json.Decoder(AgentEvent).decode
_decode_many = msgspec.json.Decoder(list[AgentEvent]).decode


class JsonLinesParser:
    """Lines in Logist's own event format; anything else is kept as a message."""

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
                return [AgentMessage(text=line)]
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

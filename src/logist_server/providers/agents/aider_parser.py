"""aider's plain-text output (aider 0.86, `--no-pretty`) as Logist's typed events.

- `Tokens: 2.4k sent, 27 received. Cost: $0.0076 message, $0.0076 session.` after each model
  call: usage, added up. aider rounds (`2.4k`): the figures are estimates, not exact counts.
  `Cost:` appears only when aider knows the model's price; without it the cost is left to
  Logist (`cost_usd` None). Cache figures (`1.2k cache write`, `3.1k cache hit`) when shown.
- `Applied edit to PATH`: a file change.
- An error line (`litellm.AuthenticationError: ...`): an error; the observer names it.
- `Logist: ...` lines come from `aider_bridge`: its verdict on an exit-0 failure (an error),
  or a note (a message).
Anything else is the model's reply or aider's chatter: a message.
"""

from __future__ import annotations

import re

from logist_server.domain.events import (
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentMessage,
    AgentUsage,
)
from logist_server.providers.agents.aider_bridge import APPLIED, ERROR, PREFIX
from logist_server.providers.agents.base import feed_each_line

TOKENS = re.compile(
    r"^Tokens: (?P<parts>[^.]*(?:\.\d[^.]*)*)\.(?: Cost: \$(?P<cost>[\d.]+) message)?"
)
_PART = re.compile(r"(?P<n>[\d.]+)(?P<unit>[km]?) (?P<what>sent|received|cache write|cache hit)")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000}
VERDICT = "aider made no edit"


def count(number: str, unit: str) -> int:
    try:
        return round(float(number) * _UNITS[unit])
    except ValueError:
        return 0


def usage_of(line: str) -> AgentUsage | None:
    """The usage in a `Tokens: ...` line, or None."""
    match = TOKENS.match(line)
    if match is None:
        return None
    figures = {"sent": 0, "received": 0, "cache write": 0, "cache hit": 0}
    for part in _PART.finditer(match.group("parts")):
        figures[part.group("what")] = count(part.group("n"), part.group("unit"))
    cost = match.group("cost")
    return AgentUsage(
        input_tokens=figures["sent"],
        output_tokens=figures["received"],
        cache_write_tokens=figures["cache write"],
        cache_read_tokens=figures["cache hit"],
        cost_usd=float(cost) if cost else None,
        cumulative=False,
    )


class AiderParser:
    """Stateful reader of one aider run's text."""

    def __init__(self) -> None:
        self.only_events = False  # see OutputParser
        self.saw_error = False

    def feed(self, line: str) -> list[AgentEvent]:
        text = line.rstrip()
        if not text.strip():
            return []
        usage = usage_of(text)
        if usage is not None:
            return [usage]
        if APPLIED.match(text):
            return [AgentFileChange(path=text[len("Applied edit to ") :].strip())]
        if text.startswith(PREFIX):
            said = text[len(PREFIX) :]
            if VERDICT in said or said.startswith("refusing"):
                self.saw_error = True
                return [AgentError(message=said)]
            return [AgentMessage(text=said)]
        if ERROR.match(text):
            self.saw_error = True
            return [AgentError(message=text.strip())]
        return [AgentMessage(text=line)]

    def feed_lines(self, data: bytes) -> list[AgentEvent]:
        return feed_each_line(self, data)

    def finish(self, exit_code: int | None) -> list[AgentEvent]:
        if exit_code not in (0, None) and not self.saw_error:
            return [AgentError(message=f"aider exited with status {exit_code}")]
        return []

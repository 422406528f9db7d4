"""Typed events parsed from an agent's output stream; each becomes a job event."""

from __future__ import annotations

from typing import Any

import msgspec


class AgentMessage(msgspec.Struct, frozen=True, tag="message"):
    """Text the agent said (or a line of plain output)."""

    text: str


class AgentToolCall(msgspec.Struct, frozen=True, tag="tool_call"):
    """The agent used a tool (read a file, ran a command, edited...)."""

    tool: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)


class AgentFileChange(msgspec.Struct, frozen=True, tag="file_change"):
    """The agent changed a file in its workspace."""

    path: str
    action: str = "modify"  # create | modify | delete | rename


class AgentUsage(msgspec.Struct, frozen=True, tag="usage"):
    """Tokens and cost; `cumulative` totals replace earlier figures, deltas add to them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = None
    cumulative: bool = True
    turns: int | None = None


class AgentQuestion(msgspec.Struct, frozen=True, tag="question"):
    """The agent asks the user something and waits."""

    text: str


class AgentError(msgspec.Struct, frozen=True, tag="error"):
    """The agent reported an error."""

    message: str


class AgentDone(msgspec.Struct, frozen=True, tag="done"):
    """The agent says it finished."""

    success: bool = True
    summary: str | None = None


AgentEvent = (
    AgentMessage
    | AgentToolCall
    | AgentFileChange
    | AgentUsage
    | AgentQuestion
    | AgentError
    | AgentDone
)


def event_kind(event: AgentEvent) -> str:
    """The job-event kind of an agent event (its tag)."""
    return str(type(event).__struct_config__.tag)


def event_data(event: AgentEvent) -> dict[str, Any]:
    """The job-event data of an agent event: its fields, without the tag."""
    data: dict[str, Any] = msgspec.to_builtins(event)
    data.pop("type", None)
    return data

"""Typed events parsed from an agent's output stream; each becomes a job event.

An agent controls its output: before an event is kept, `agent_output.screen` bounds its
sizes, strips control characters and refuses a session id that could not be handed back
to the agent's command line (see doc/architecture.md, "Agent contract").
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

#: What an agent asks: a question for the user, or leave to use a tool.
QuestionKind = Literal["question", "permission"]


class AgentMessage(msgspec.Struct, frozen=True, tag="message"):
    """Text the agent said (or a line of plain output)."""

    text: str


class AgentToolCall(msgspec.Struct, frozen=True, tag="tool_call"):
    """The agent used a tool (read a file, ran a command, edited...).

    `id` is the agent's own id of the call: the `tool_result` with the same id ends it."""

    tool: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    id: str | None = None


class AgentToolResult(msgspec.Struct, frozen=True, tag="tool_result"):
    """A tool call ended: `id` pairs it with its `tool_call`."""

    id: str | None = None
    tool: str | None = None
    ok: bool = True
    output: str = ""


class AgentFileChange(msgspec.Struct, frozen=True, tag="file_change"):
    """The agent changed a file in its workspace."""

    path: str
    action: str = "modify"  # create | modify | delete | rename


class AgentUsage(msgspec.Struct, frozen=True, tag="usage"):
    """Tokens and cost; `cumulative` totals replace earlier figures, deltas add to them.

    `input_tokens` counts uncached input only; cached reads and cache writes are counted
    apart, as the agents report them. `cost_usd` is the agent's own figure (None when it
    reports none: Logist then prices the tokens by `model`)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = None
    cumulative: bool = True
    turns: int | None = None
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    model: str | None = None


class AgentSession(msgspec.Struct, frozen=True, tag="session", omit_defaults=True):
    """The agent's session (claude's `session_id`, codex's `thread_id`): stored on the step,
    so a later step can resume it. `resumed` when the agent says it continued one.
    `refused` is set by Logist (never taken from the agent) when the id is unusable."""

    id: str
    resumed: bool = False
    refused: str | None = None


class AgentQuestion(msgspec.Struct, frozen=True, tag="question"):
    """The agent asks the user something (or asks leave to use a tool) and waits.

    `id` is the agent's id of the request (claude's `request_id`), `options` the answers it
    offers (may be empty: any text)."""

    text: str
    id: str | None = None
    kind: QuestionKind = "question"
    options: list[str] = msgspec.field(default_factory=list)


class AgentError(msgspec.Struct, frozen=True, tag="error"):
    """The agent reported an error. `detail` is the JSON object it came in when a parser
    read it from one (`jsonl.json_error`): the observer reads both, so an error printed as
    JSON is classified as the same error printed as text."""

    message: str
    detail: str | None = None


class AgentDone(msgspec.Struct, frozen=True, tag="done"):
    """The agent says it finished."""

    success: bool = True
    summary: str | None = None


AgentEvent = (
    AgentMessage
    | AgentToolCall
    | AgentToolResult
    | AgentFileChange
    | AgentUsage
    | AgentSession
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

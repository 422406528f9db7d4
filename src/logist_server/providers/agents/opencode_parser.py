"""`opencode run --format json` output (opencode 1.18) as Logist's typed events.

One JSON object per line, each with `type`, `sessionID` and a `part`:
- `step_start`: one model call begins (the first line's `sessionID` is the session);
- `text`: the model's text (`part.text`);
- `tool_use`: a finished tool call (`part.tool`, `part.callID`, `part.state.status`
  `completed`/`error`, `input`, `output`/`error`; an edit's unified diff in
  `part.state.metadata.diff`, its file in `metadata.filediff.file`);
- `step_finish`: the call's usage (`part.tokens`: input, output, reasoning, cache.read,
  cache.write; `part.cost`, 0 when the model has no price in opencode's configuration);
- `error`: the run failed (`error.name` `APIError` with `data.statusCode` and `data.message`).

A tool call opencode refused because a permission rule says `ask` (headless it rejects at
once: "The user rejected permission ...") becomes a permission question: the run has
stopped, and the answer resumes its session (`answer_via = "resume"`).
"""

from __future__ import annotations

from typing import Any

from logist_server.domain.events import (
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentMessage,
    AgentQuestion,
    AgentSession,
    AgentToolCall,
    AgentToolResult,
    AgentUsage,
)
from logist_server.providers.agents.base import feed_each_line
from logist_server.providers.agents.json_lines import as_dict, count, decode_object
from logist_server.providers.agents.jsonl import json_error

REJECTED = "rejected permission"
#: opencode's tools that change files, and the file's key in their input.
_WRITING_TOOLS = {"edit": "modify", "write": "modify", "patch": "modify", "multiedit": "modify"}
ALLOW, DENY = "allow", "deny"


class OpencodeParser:
    """Stateful reader of one `opencode run --format json` run."""

    def __init__(self) -> None:
        self.only_events = False  # see OutputParser
        self.session: str | None = None
        self.saw_error = False
        self.asked = False

    def feed(self, line: str) -> list[AgentEvent]:
        text = line.strip()
        if not text:
            return []
        obj = decode_object(text)
        if obj is None:
            return [AgentMessage(text=line)]  # stderr and anything else: plain text
        events: list[AgentEvent] = []
        session = obj.get("sessionID")
        if isinstance(session, str) and session and self.session is None:
            self.session = session
            events.append(AgentSession(id=session))
        part = as_dict(obj.get("part"))
        kind = obj.get("type")
        if kind == "text":
            said = part.get("text")
            if isinstance(said, str) and said:
                events.append(AgentMessage(text=said))
        elif kind == "tool_use":
            events += self.tool(part)
        elif kind == "step_finish":
            events.append(usage(part))
        elif kind == "error":
            self.saw_error = True
            events.append(AgentError(message=error_message(obj), detail=text))
        elif kind != "step_start":
            message = json_error(obj)
            if message is not None:
                self.saw_error = True
                events.append(AgentError(message=message, detail=text))
        return events

    def tool(self, part: dict[str, Any]) -> list[AgentEvent]:
        name = str(part.get("tool") or "tool")
        call = part.get("callID") if isinstance(part.get("callID"), str) else None
        state = as_dict(part.get("state"))
        given = state.get("input")
        arguments = given if isinstance(given, dict) else {}
        ok = state.get("status") == "completed"
        output = state.get("output") if ok else state.get("error")
        events: list[AgentEvent] = [
            AgentToolCall(tool=name, input=arguments, id=call),
            AgentToolResult(id=call, tool=name, ok=ok, output=str(output or "")),
        ]
        if ok and name in _WRITING_TOOLS:
            path = changed_path(state, arguments)
            if path:
                events.append(AgentFileChange(path=path, action=_WRITING_TOOLS[name]))
        if not ok and REJECTED in str(output or "") and not self.asked:
            self.asked = True
            events.append(permission_question(name, arguments, call))
        return events

    def feed_lines(self, data: bytes) -> list[AgentEvent]:
        return feed_each_line(self, data)

    def finish(self, exit_code: int | None) -> list[AgentEvent]:
        if exit_code not in (0, None) and not self.saw_error:
            return [AgentError(message=f"opencode exited with status {exit_code}")]
        return []


def usage(part: dict[str, Any]) -> AgentUsage:
    """One model call's tokens (added to the step's); cost only when opencode priced it."""
    tokens = as_dict(part.get("tokens"))
    cache = as_dict(tokens.get("cache"))
    cost = part.get("cost")
    price: float | None = None  # 0: the model has no price in opencode: not reported
    if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost > 0:
        price = float(cost)
    return AgentUsage(
        input_tokens=count(tokens.get("input")),
        output_tokens=count(tokens.get("output")),
        cache_read_tokens=count(cache.get("read")),
        cache_write_tokens=count(cache.get("write")),
        reasoning_tokens=count(tokens.get("reasoning")),
        cost_usd=price,
        cumulative=False,
    )


def changed_path(state: dict[str, Any], arguments: dict[str, Any]) -> str | None:
    metadata = as_dict(state.get("metadata"))
    filediff = as_dict(metadata.get("filediff"))
    for value in (filediff.get("file"), arguments.get("filePath"), arguments.get("path")):
        if isinstance(value, str) and value:
            return value
    return None


def error_message(obj: dict[str, Any]) -> str:
    """`API Error: 401 <message>` for an `APIError` (the observer reads the status the way
    it reads claude-code's), else the error's message or name."""
    error = as_dict(obj.get("error"))
    data = as_dict(error.get("data"))
    message = data.get("message") or error.get("message")
    text = str(message) if message else str(error.get("name") or "opencode reported an error")
    status = data.get("statusCode")
    if isinstance(status, int) and not isinstance(status, bool):
        return f"API Error: {status} {text}"
    return text


def permission_question(tool: str, arguments: dict[str, Any], call: str | None) -> AgentQuestion:
    what = arguments.get("command") or arguments.get("filePath") or arguments.get("url") or ""
    text = f"opencode asks leave to use {tool}" + (f": {what}" if what else "")
    return AgentQuestion(text=text, id=call, kind="permission", options=[ALLOW, DENY])

"""Reading `codex exec --json` output (codex 0.171): one JSON object per line.

`thread.started` names the session; `item.started` / `item.completed` carry what the agent
did (`agent_message`, `reasoning`, `command_execution`, `file_change` with paths and kinds
but no diff, `mcp_tool_call`, `web_search`, `todo_list`, and `error` items, which codex uses
for warnings such as an unknown model's metadata); `turn.completed.usage` has the tokens
(no USD: Logist prices them); a failed call is a top-level `error` (also `Reconnecting...
n/5` notices while codex retries) and then `turn.failed`.
"""

from __future__ import annotations

import re
from typing import Any

from logist_server.domain.events import (
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentMessage,
    AgentSession,
    AgentToolCall,
    AgentToolResult,
    AgentUsage,
)
from logist_server.providers.agents.json_lines import JsonOrTextLines, count, error_object

#: codex's retry notices: `Reconnecting... 2/5 (unexpected status 429 ...)`.
_RETRYING = re.compile(r"^\s*(?:Reconnecting|Retrying)\b", re.IGNORECASE)
_ACTIONS = {"add": "create", "update": "modify", "delete": "delete", "rename": "rename"}
_STATUS = re.compile(r"\b(?:unexpected status|last status:?)\s*(\d{3})\b")
#: "Error code: N" is the generic shape the observer's table knows (401 auth, 429 rate limit).
_HTTP_WORDS = {
    400: "the model API refused the request (Error code: 400)",
    401: "authentication failed (Error code: 401): check the API key or `codex login`",
    402: "the model API refused the request: payment required (Error code: 402)",
    403: "the model API refused access (Error code: 403): check the key's permissions",
    404: "the model API does not know this model or endpoint (Error code: 404)",
    429: "the model API is rate limiting requests (Error code: 429)",
}


def error_reason(text: str) -> str:
    """A sentence a person understands for codex's error text, which is often the model
    API's JSON error body as a string, or `unexpected status 401 Unauthorized: ...`. The
    original text follows, so the observer still reads its words."""
    inner = _inner_error(text)
    match = _STATUS.search(text)
    status = int(match.group(1)) if match else None
    lead = _HTTP_WORDS.get(status, "") if status is not None else ""
    if inner is not None:
        message, code = inner
        said = f"{message} ({code})" if code and code not in message else message
        lead = f"{lead}: {said}" if lead else f"the model API refused the request: {said}"
        return f"{lead} [{text}]" if lead.find(text) < 0 else lead
    return f"{lead}: {text}" if lead else text


def _inner_error(text: str) -> tuple[str, str] | None:
    """(message, type or code) of a JSON error body inside `text`, if there is one."""
    error = error_object(text)
    if error is None or not isinstance(error.get("message"), str):
        return None
    code = error.get("code") or error.get("type") or ""
    return error["message"], str(code)


class CodexParser(JsonOrTextLines):
    """Typed events from `codex exec --json`."""

    agent = "codex"

    def __init__(self) -> None:
        super().__init__()
        self._last_error: str | None = None

    def _event(self, obj: dict[str, Any], line: str) -> list[AgentEvent]:
        kind = obj.get("type")
        if kind == "thread.started" and isinstance(obj.get("thread_id"), str):
            return [AgentSession(id=obj["thread_id"])]
        if kind in ("item.started", "item.updated", "item.completed"):
            item = obj.get("item")
            return _item(kind, item) if isinstance(item, dict) else []
        if kind == "turn.completed":
            usage = obj.get("usage")
            return [_usage(usage)] if isinstance(usage, dict) else []
        if kind == "error":
            message = str(obj.get("message") or "codex reported an error")
            if _RETRYING.match(message):  # codex retries by itself: a notice, not the end
                return [AgentMessage(text=f"codex: {message}")]
            return self._error(message, line)
        if kind == "turn.failed":
            error = obj.get("error")
            said = error.get("message") if isinstance(error, dict) else None
            text = str(said or "the turn failed")
            if text == self._last_error:  # the `error` line just said it
                return []
            return self._error(text, line)
        return []  # turn.started and anything newer

    def _error(self, message: str, line: str) -> list[AgentEvent]:
        self.saw_error = True
        self._last_error = message
        return [AgentError(message=error_reason(message), detail=line)]


def _item(kind: str, item: dict[str, Any]) -> list[AgentEvent]:
    """Events for one `item.*` line."""
    item_type = item.get("type")
    item_id = item.get("id") if isinstance(item.get("id"), str) else None
    done = kind == "item.completed"
    if item_type == "agent_message" and done:
        return [AgentMessage(text=str(item.get("text", "")))]
    if item_type == "reasoning" and done:
        return [AgentMessage(text=f"(thinking) {item.get('text', '')}")]
    if item_type == "error":  # codex's warnings (an unknown model's metadata): not fatal
        return [AgentMessage(text=f"codex warning: {item.get('message', '')}")] if done else []
    if item_type == "command_execution":
        command = str(item.get("command", ""))
        if kind == "item.started":
            return [AgentToolCall(tool="shell", input={"command": command}, id=item_id)]
        if done:
            code = item.get("exit_code")
            ok = code == 0 and item.get("status") != "failed"
            output = str(item.get("aggregated_output", ""))
            return [AgentToolResult(id=item_id, tool="shell", ok=ok, output=output)]
        return []
    if item_type == "file_change" and done:
        changes = item.get("changes")
        if item.get("status") == "failed" or not isinstance(changes, list):
            return []
        return [
            AgentFileChange(path=str(c["path"]), action=_ACTIONS.get(str(c.get("kind")), "modify"))
            for c in changes
            if isinstance(c, dict) and isinstance(c.get("path"), str)
        ]
    if item_type in ("mcp_tool_call", "web_search"):
        tool = (
            f"{item.get('server', 'mcp')}.{item.get('tool', '?')}"
            if item_type == "mcp_tool_call"
            else "web_search"
        )
        if kind == "item.started":
            args = item.get("arguments") if item_type == "mcp_tool_call" else item.get("query")
            data = args if isinstance(args, dict) else {"query": args}
            return [AgentToolCall(tool=tool, input=data, id=item_id)]
        if done:
            ok = item.get("status") != "failed" and not item.get("error")
            return [AgentToolResult(id=item_id, tool=tool, ok=ok)]
    return []


def _usage(usage: dict[str, Any]) -> AgentUsage:
    """`turn.completed.usage`: codex's `input_tokens` include the cached ones, its
    `output_tokens` include the reasoning ones (OpenAI's convention); Logist counts input
    without the cached part and reasoning apart from the output."""
    total_in = count(usage.get("input_tokens"))
    cached = min(count(usage.get("cached_input_tokens")), total_in)
    total_out = count(usage.get("output_tokens"))
    reasoning = min(count(usage.get("reasoning_output_tokens")), total_out)
    return AgentUsage(
        input_tokens=total_in - cached,
        cache_read_tokens=cached,
        cache_write_tokens=count(usage.get("cache_write_input_tokens")),
        output_tokens=total_out - reasoning,
        reasoning_tokens=reasoning,
        cost_usd=None,
        cumulative=False,
    )

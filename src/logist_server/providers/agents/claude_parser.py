"""claude-code's `stream-json` output (`--verbose`) as Logist's typed events.

- `system/init` -> session; `system/api_retry` and `system/permission_denied` -> messages;
- `assistant`: text -> message, `tool_use` -> tool_call (with claude's id); the first line
  of each API response -> a usage delta (input and cache tokens exact, output so far) so
  that limits hold while claude works (priced by Logist when the model has a list price);
- `user`: `tool_result` -> tool_result; an edit's `structuredPatch`/`filePath` -> file_change;
- `result` -> the run's cumulative usage (tokens summed over `modelUsage`, claude's own
  `total_cost_usd`), then an error (`is_error`, `api_error_status`, an `error_*` subtype:
  a reason a person understands, the JSON as `detail`) or done. A `success` whose
  `permission_denials` name tools Logist did not refuse itself is an error naming them:
  claude was stopped by a rule of its own configuration, and its work may be incomplete.
- `logist_bridge` lines are the bridge's own (`claude_bridge`): a typed event (a question)
  or a decision it made on a tool use; the bridge drops such lines coming from claude.
"""

from __future__ import annotations

import os
import re
from typing import Any

import msgspec

from logist_server.domain import pricing
from logist_server.domain.events import (
    AgentDone,
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentMessage,
    AgentSession,
    AgentToolCall,
    AgentToolResult,
    AgentUsage,
)
from logist_server.providers.agents.base import feed_each_line

BRIDGE_TYPE = "logist_bridge"
_decode_any = msgspec.json.Decoder().decode
_decode_event = msgspec.json.Decoder(AgentEvent).decode
_encode = msgspec.json.encode
_LOGIN = re.compile(r"\bNot logged in\b|\bPlease run /login\b|\bInvalid API key\b", re.I)
_SUBTYPE_REASONS = {
    "error_max_turns": "claude-code stopped at its turn limit (--max-turns)",
    "error_max_budget_usd": "claude-code stopped at its cost limit (--max-budget-usd)",
    "error_during_execution": "claude-code failed while it worked",
}


def error_reason(result: dict[str, Any]) -> str | None:
    """Why a `result` is a failure, in words a person understands (None: it is not one).

    The text keeps claude's own `API Error: STATUS ...` form, which the observer
    classifies (authentication, rate limit, overload...)."""
    subtype = str(result.get("subtype") or "")
    if result.get("is_error") is not True and not subtype.startswith("error"):
        return None
    text = result.get("result")
    said = text.strip() if isinstance(text, str) else ""
    status = result.get("api_error_status")
    kind = str(result.get("api_error_type") or "")
    if isinstance(status, int):
        if status in (401, 403) or kind == "authentication_error":
            lead = (
                "authentication failed: the model provider refused claude-code's "
                f"credentials (API Error: {status})"
            )
        elif status == 429:
            lead = (
                f"rate limited by the model provider (API Error: 429 {kind or 'rate_limit_error'})"
            )
        elif status in (400, 402) and "billing" in kind:
            lead = (
                "the model provider refused the request: budget or billing "
                f"(API Error: {status} {kind})"
            )
        elif status in (500, 502, 503, 529):
            lead = f"the model provider failed (API Error: {status} {kind})".rstrip()
        else:
            lead = f"the model provider refused the request (API Error: {status} {kind})".replace(
                " )", ")"
            )
        return f"{lead}: {said}" if said else lead
    if _LOGIN.search(said):
        lead = (
            "authentication failed: claude-code is not logged in or its key is refused "
            "(run `claude` and /login, or set ANTHROPIC_API_KEY)"
        )
    else:
        lead = _SUBTYPE_REASONS.get(subtype, "claude-code reported an error")
    return f"{lead}: {said}" if said else lead


def denied_tools(result: dict[str, Any], decided: set[str]) -> list[str]:
    """The tool uses claude was refused that Logist did not refuse itself, described."""
    found = []
    denials = result.get("permission_denials")
    for denial in denials if isinstance(denials, list) else []:
        if not isinstance(denial, dict) or denial.get("tool_use_id") in decided:
            continue
        tool = str(denial.get("tool_name") or "a tool")
        data = denial.get("tool_input")
        what = ""
        if isinstance(data, dict):
            for key in ("command", "file_path", "path", "url"):
                if isinstance(data.get(key), str):
                    what = f" ({data[key][:200]})"
                    break
        found.append(f"{tool}{what}")
    return found


def denial_error(tools: list[str]) -> str:
    return (
        f"claude-code was refused {len(tools)} tool use(s) by its own permission rules: "
        f"{', '.join(tools)}; its work may be incomplete"
    )


def usage_of(result: dict[str, Any]) -> AgentUsage:
    """The run's tokens (summed over `modelUsage`, which counts side calls to other models
    too) and claude's own cost."""
    models = result.get("modelUsage")
    cost = result.get("total_cost_usd")
    turns = result.get("num_turns")
    if isinstance(models, dict) and models:
        per = [m for m in models.values() if isinstance(m, dict)]
        main = max(
            models, key=lambda n: _num(models[n], "costUSD") + _num(models[n], "inputTokens")
        )
        return AgentUsage(
            input_tokens=sum(_int(m, "inputTokens") for m in per),
            output_tokens=sum(_int(m, "outputTokens") for m in per),
            cache_read_tokens=sum(_int(m, "cacheReadInputTokens") for m in per),
            cache_write_tokens=sum(_int(m, "cacheCreationInputTokens") for m in per),
            reasoning_tokens=sum(_int(m, "thinkingTokens") for m in per),
            cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
            turns=turns if isinstance(turns, int) else None,
            model=str(main),
        )
    usage = result.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("output_tokens_details")
    return AgentUsage(
        input_tokens=_int(usage, "input_tokens"),
        output_tokens=_int(usage, "output_tokens"),
        cache_read_tokens=_int(usage, "cache_read_input_tokens"),
        cache_write_tokens=_int(usage, "cache_creation_input_tokens"),
        reasoning_tokens=_int(details, "thinking_tokens") if isinstance(details, dict) else 0,
        cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
        turns=turns if isinstance(turns, int) else None,
    )


def _interim_cost(model: str) -> float | None:
    """The cost of a response while claude works: None (Logist prices its tokens) for a
    model with a list price; else 0.0, not "unknown": claude reports the run's cost in its
    result (and holds `--max-budget-usd` itself), so an unpriced name must not halt a job."""
    return None if pricing.price_of(model, {}) is not None else 0.0


def _num(obj: Any, key: str) -> float:
    value = obj.get(key) if isinstance(obj, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _int(obj: Any, key: str) -> int:
    value = obj.get(key) if isinstance(obj, dict) else None
    return max(0, value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(content: Any) -> str:
    """A tool result's content: a string, or text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


class ClaudeStreamParser:
    """One run's `stream-json` lines (relayed by the bridge) as typed events."""

    def __init__(self) -> None:
        self.only_events = False  # see OutputParser
        self.cwd: str | None = None
        self.tools: dict[str, str] = {}  # tool_use id -> tool name
        self.decided: set[str] = set()  # tool uses Logist refused itself
        self.responses: set[str] = set()  # API responses already counted
        self.saw_error = False
        self.saw_result = False

    def feed(self, line: str) -> list[AgentEvent]:
        if not line.strip():
            return []
        try:
            obj = _decode_any(line) if line.lstrip().startswith("{") else None
        except msgspec.DecodeError:
            obj = None
        if not isinstance(obj, dict):
            return [AgentMessage(text=line)]  # stderr, or claude's plain-text output
        kind = obj.get("type")
        if kind == BRIDGE_TYPE:
            return self._bridge(obj)
        if kind == "system":
            return self._system(obj)
        if kind == "assistant":
            return self._assistant(obj)
        if kind == "user":
            return self._user(obj)
        if kind == "result":
            return self._result(obj, line)
        return []  # stream events, control messages, kinds of later versions

    def feed_lines(self, data: bytes) -> list[AgentEvent]:
        return feed_each_line(self, data)

    def finish(self, exit_code: int | None) -> list[AgentEvent]:
        if exit_code in (0, None) or self.saw_error:
            return []
        if not self.saw_result:
            return [
                AgentError(message=f"claude-code ended with status {exit_code} before its result")
            ]
        return [AgentError(message=f"claude-code exited with status {exit_code}")]

    def _bridge(self, obj: dict[str, Any]) -> list[AgentEvent]:
        decided = obj.get("denied")
        if isinstance(decided, str):
            self.decided.add(decided)
        event = obj.get("event")
        if not isinstance(event, dict):
            return []
        try:
            parsed = _decode_event(_encode(event))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return []
        if isinstance(parsed, AgentError):
            self.saw_error = True
        return [parsed]

    def _system(self, obj: dict[str, Any]) -> list[AgentEvent]:
        subtype = obj.get("subtype")
        if subtype == "init":
            cwd = obj.get("cwd")
            self.cwd = cwd if isinstance(cwd, str) else None
            session = obj.get("session_id")
            return [AgentSession(id=session)] if isinstance(session, str) and session else []
        if subtype == "api_retry":
            return [AgentMessage(text=(
                f"claude-code retries the API call (attempt {obj.get('attempt')} of "
                f"{obj.get('max_retries')}) after {obj.get('error_status')} {obj.get('error')}"
            ))]  # fmt: skip
        if subtype == "permission_denied":
            return [
                AgentMessage(
                    text=f"permission denied ({obj.get('tool_name')}): {obj.get('message')}"
                )
            ]
        return []

    def _assistant(self, obj: dict[str, Any]) -> list[AgentEvent]:
        message = obj.get("message")
        if not isinstance(message, dict):
            return []
        events: list[AgentEvent] = []
        usage, msg_id, model = message.get("usage"), message.get("id"), message.get("model")
        real = isinstance(model, str) and model != "<synthetic>"
        counted = isinstance(msg_id, str) and msg_id in self.responses
        if real and isinstance(usage, dict) and isinstance(msg_id, str) and not counted:
            self.responses.add(msg_id)
            events.append(AgentUsage(
                input_tokens=_int(usage, "input_tokens"),
                output_tokens=_int(usage, "output_tokens"),
                cache_read_tokens=_int(usage, "cache_read_input_tokens"),
                cache_write_tokens=_int(usage, "cache_creation_input_tokens"),
                cumulative=False, model=str(model), cost_usd=_interim_cost(str(model)),
            ))  # fmt: skip
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                events.append(AgentMessage(text=block["text"]))
            elif block.get("type") == "tool_use":
                name, call_id = str(block.get("name") or "?"), block.get("id")
                data = block.get("input")
                if isinstance(call_id, str):
                    self.tools[call_id] = name
                events.append(AgentToolCall(
                    tool=name, input=data if isinstance(data, dict) else {},
                    id=call_id if isinstance(call_id, str) else None))  # fmt: skip
        return events

    def _user(self, obj: dict[str, Any]) -> list[AgentEvent]:
        message = obj.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        events: list[AgentEvent] = []
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            call_id = block.get("tool_use_id")
            call_id = call_id if isinstance(call_id, str) else None
            events.append(AgentToolResult(
                id=call_id, tool=self.tools.get(call_id or ""),
                ok=block.get("is_error") is not True,
                output=_text(block.get("content"))))  # fmt: skip
        change = self._file_change(obj.get("tool_use_result"))
        if change is not None:
            events.append(change)
        return events

    def _file_change(self, result: Any) -> AgentFileChange | None:
        if not isinstance(result, dict) or not isinstance(result.get("filePath"), str):
            return None
        if "structuredPatch" not in result and result.get("type") != "create":
            return None  # a read names its file too
        path = result["filePath"]
        if self.cwd and os.path.isabs(path):
            path = os.path.relpath(path, self.cwd)
        action = "create" if result.get("type") == "create" else "modify"
        return AgentFileChange(path=path, action=action)

    def _result(self, obj: dict[str, Any], line: str) -> list[AgentEvent]:
        self.saw_result = True
        events: list[AgentEvent] = [usage_of(obj)]
        reason = error_reason(obj)
        if reason is not None:
            self.saw_error = True
            return [*events, AgentError(message=reason, detail=line)]
        denied = denied_tools(obj, self.decided)
        if denied:
            self.saw_error = True
            return [*events, AgentError(message=denial_error(denied), detail=line)]
        summary = obj.get("result")
        return [
            *events,
            AgentDone(success=True, summary=summary if isinstance(summary, str) else None),
        ]

"""ACP's `session/update` notifications and prompt responses as Logist's typed events.

Works on the JSON form of the messages (camelCase keys, as on the wire), so the recorded
sessions in `tests/fixtures/agent-samples/acp-*.jsonl` are its unit tests. One mapper per
run: it coalesces message chunks, pairs tool calls with their results (a call may first
appear as an update, as gemini and cline send it), keeps the diffs a call carried until it
completes, and reads usage from `usage_update` (claude's cost), the prompt response's
`usage` and gemini's `_meta.quota`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from logist_server.domain.events import (
    AgentDone,
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentMessage,
    AgentToolCall,
    AgentToolResult,
    AgentUsage,
)
from logist_server.providers.agents.json_lines import count

#: The longest tool output kept in a `tool_result` event.
MAX_TOOL_OUTPUT = 4000
#: How a prompt's stop reason reads when it is not a normal end.
STOP_REASONS = {
    "max_tokens": "the model reached its output token limit",
    "max_turn_requests": "the agent reached its limit of model requests for one prompt",
    "refusal": "the model refused to continue",
    "cancelled": "the prompt was cancelled",
}


def _text(value: Any) -> str:
    """Readable text of a tool's output (`rawOutput` or content blocks)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, dict) and item.get("type") == "content":
                inner = item.get("content")
                if isinstance(inner, dict) and isinstance(inner.get("text"), str):
                    parts.append(inner["text"])
        return "\n".join(parts)
    if isinstance(value, dict):
        for key in ("output", "formatted_output", "result", "stdout", "text"):
            if isinstance(value.get(key), str):
                return str(value[key])
    return "" if value is None else json.dumps(value)[:MAX_TOOL_OUTPUT]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _Call:
    __slots__ = ("announced", "diffs", "done", "input", "kind", "title")

    def __init__(self) -> None:
        self.title = ""
        self.kind = "other"
        self.input: dict[str, Any] = {}
        self.announced = False
        self.done = False
        self.diffs: dict[str, bool] = {}  # path -> created (no old text)


class UpdateMapper:
    """The events of one ACP prompt turn. `relative(path)` gives a path's place in the
    workspace (None: outside it, never reported as a change)."""

    def __init__(self, relative: Callable[[str], str | None]) -> None:
        self._relative = relative
        self._calls: dict[str, _Call] = {}
        self._chunks: list[str] = []
        self._changed: set[str] = set()
        self.cost_usd: float | None = None

    # -- session/update -----------------------------------------------------------------
    def update(self, update: dict[str, Any]) -> list[AgentEvent]:
        """Events for one `session/update` notification's `update` object."""
        kind = update.get("sessionUpdate")
        if kind == "agent_message_chunk":
            content = update.get("content")
            if isinstance(content, dict) and isinstance(content.get("text"), str):
                self._chunks.append(content["text"])
            return []
        events = self.flush()
        if kind in ("tool_call", "tool_call_update"):
            events += self._tool(update)
        elif kind == "usage_update":
            cost = update.get("cost")
            if isinstance(cost, dict) and cost.get("currency") == "USD":
                amount = cost.get("amount")
                if isinstance(amount, int | float) and amount >= 0:
                    self.cost_usd = float(amount)
                    events.append(AgentUsage(cost_usd=self.cost_usd, cumulative=True))
        return events

    def flush(self) -> list[AgentEvent]:
        """The message the chunks so far make (none if they are blank)."""
        text = "".join(self._chunks)
        self._chunks.clear()
        return [AgentMessage(text=text)] if text.strip() else []

    def tool_kind(self, call_id: str | None) -> str | None:
        call = self._calls.get(call_id or "")
        return call.kind if call is not None else None

    def known_call(self, call_id: str | None) -> dict[str, Any]:
        """What the turn's updates said of a tool call so far, as a tool call object (its
        declared kind, last input, diffs' paths): the permission decision judges it too."""
        call = self._calls.get(call_id or "")
        if call is None:
            return {}
        known: dict[str, Any] = {"rawInput": call.input}
        known["content"] = [{"type": "diff", "path": path} for path in call.diffs]
        if call.kind != "other":  # "other" is also the default of a kind never declared
            known["kind"] = call.kind
        return known

    def note_tool(self, tool_call: dict[str, Any]) -> list[AgentEvent]:
        """A permission request's `toolCall`: the call is announced if it was not yet."""
        return self._tool(tool_call, announce=True)

    def written(self, path: str, created: bool) -> list[AgentEvent]:
        """The client wrote `path` for the agent (`fs/write_text_file`)."""
        if path in self._changed:
            return []
        self._changed.add(path)
        return [AgentFileChange(path=path, action="create" if created else "modify")]

    def _tool(self, update: dict[str, Any], announce: bool = False) -> list[AgentEvent]:
        call_id = update.get("toolCallId")
        if not isinstance(call_id, str) or not call_id:
            return []
        call = self._calls.setdefault(call_id, _Call())
        if isinstance(update.get("title"), str) and update["title"]:
            call.title = update["title"]
        if isinstance(update.get("kind"), str):
            call.kind = update["kind"]
        raw = update.get("rawInput")
        if isinstance(raw, dict) and raw:
            call.input = raw
        for item in _list(update.get("content")):
            if isinstance(item, dict) and item.get("type") == "diff":
                path = item.get("path")
                if isinstance(path, str):
                    call.diffs.setdefault(path, item.get("oldText") in (None, ""))
        status = update.get("status")
        events: list[AgentEvent] = []
        ready = announce or call.input or status in ("in_progress", "completed", "failed")
        if ready and not call.announced:
            call.announced = True
            events.append(AgentToolCall(tool=call.title or call.kind, input=call.input, id=call_id))
        if status in ("completed", "failed") and not call.done:
            call.done = True
            output = _text(update.get("rawOutput")) or _text(update.get("content"))
            ok = status == "completed"
            events.append(
                AgentToolResult(
                    id=call_id, tool=call.title or call.kind, ok=ok, output=output[:MAX_TOOL_OUTPUT]
                )
            )
            if ok:
                events += self._changes(call)
        return events

    def _changes(self, call: _Call) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        for path, created in call.diffs.items():
            relative = self._relative(path)
            if relative is not None:
                events += self.written(relative, created)
        return events

    # -- the prompt's end ---------------------------------------------------------------
    def finish(self, response: dict[str, Any]) -> list[AgentEvent]:
        """Events for the `session/prompt` response: the last message, calls never ended,
        usage, and done (or an error for a stop reason that is not a normal end)."""
        events = self.flush()
        for call_id, call in self._calls.items():
            if not call.announced:
                call.announced = True
                events.append(
                    AgentToolCall(tool=call.title or call.kind, input=call.input, id=call_id)
                )
        events += self.usage(response)
        stop = response.get("stopReason")
        if stop == "end_turn":
            events.append(AgentDone(success=True))
        else:
            reason = STOP_REASONS.get(str(stop), f"the agent stopped ({stop})")
            events.append(AgentError(message=reason, detail=json.dumps({"stopReason": stop})))
            events.append(AgentDone(success=False, summary=reason))
        return events

    def usage(self, response: dict[str, Any]) -> list[AgentEvent]:
        """Tokens from the prompt response (`usage`, or gemini's `_meta.quota`)."""
        usage = response.get("usage")
        if isinstance(usage, dict):
            return [
                AgentUsage(
                    input_tokens=count(usage.get("inputTokens")),
                    output_tokens=count(usage.get("outputTokens")),
                    cache_read_tokens=count(usage.get("cachedReadTokens")),
                    cache_write_tokens=count(usage.get("cachedWriteTokens")),
                    reasoning_tokens=count(usage.get("thoughtTokens")),
                    cost_usd=self.cost_usd,
                    cumulative=True,
                )
            ]
        meta = response.get("_meta")
        quota = meta.get("quota") if isinstance(meta, dict) else None
        if not isinstance(quota, dict):
            return [AgentUsage(cost_usd=self.cost_usd)] if self.cost_usd is not None else []
        per_model = [
            entry
            for entry in _list(quota.get("model_usage"))
            if isinstance(entry, dict) and isinstance(entry.get("token_count"), dict)
        ]
        if not per_model:
            total = quota.get("token_count")
            per_model = [{"token_count": total}] if isinstance(total, dict) else []
        return [
            AgentUsage(
                input_tokens=count(entry["token_count"].get("input_tokens")),
                output_tokens=count(entry["token_count"].get("output_tokens")),
                cache_read_tokens=count(entry["token_count"].get("cached_tokens")),
                reasoning_tokens=count(entry["token_count"].get("thoughts_tokens")),
                model=entry.get("model") if isinstance(entry.get("model"), str) else None,
                cumulative=False,
            )
            for entry in per_model
        ]

"""`cline --json` output (cline 3.0) as Logist's typed events.

One JSON object per line:
- `hook_event` (`agent_start` carries the `taskId`: the session);
- `agent_event` with `event.type`: `usage` (one model call: `inputTokens`, `outputTokens`,
  optional `cacheReadTokens`/`cacheWriteTokens`, and the running `totalCost`, 0 for the
  `openai-compatible` provider, which prices nothing), `content_start`/`content_end`
  (`contentType` `tool` with `toolName`, `toolCallId`, `input` / `output`, or `text`),
  `error` (`recoverable` false: the run failed), `done`;
- `run_result` (`finishReason` `completed` or `error`, `text`, aggregate usage);
- `{"type": "error", "message": ...}` for a refused command line.

Headless without auto-approval cline refuses every tool call ("requires approval in a TTY
session") and goes on: the first refusal becomes a permission question; its answer reruns
the task with the tools approved (or not).
"""

from __future__ import annotations

import re
from typing import Any

from logist_server.domain.events import (
    AgentDone,
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

NEEDS_APPROVAL = "requires approval in a TTY session"
ALLOW, DENY = "allow", "deny"
#: cline's tools that write a file, and the input key naming it.
_WRITING_TOOLS = {"editor": "path", "write_to_file": "path", "replace_in_file": "path"}
#: `apply_patch` (offered for OpenAI models): its patch names the files it changes.
_PATCH_FILE = re.compile(r"^\*\*\* (Update|Add|Delete) File: (.+?)\s*$", re.MULTILINE)
_PATCH_ACTIONS = {"Update": "modify", "Add": "create", "Delete": "delete"}


class ClineParser:
    """Stateful reader of one `cline --json` run."""

    def __init__(self) -> None:
        self.only_events = False  # see OutputParser
        self.session: str | None = None
        self.saw_error = False
        self.asked = False
        self.usage_seen = False
        self.cost_total = 0.0
        self.inputs: dict[str, dict[str, Any]] = {}  # tool call id -> its input

    def feed(self, line: str) -> list[AgentEvent]:
        text = line.strip()
        if not text:
            return []
        obj = decode_object(text)
        if obj is None:
            return [AgentMessage(text=line)]  # stderr (warnings, stack lines): plain text
        kind = obj.get("type")
        if kind == "hook_event":
            return self.session_of(obj)
        if kind == "agent_event":
            return self.agent_event(as_dict(obj.get("event")), text)
        if kind == "run_result":
            return self.run_result(obj, text)
        message = json_error(obj)
        if message is not None:
            self.saw_error = True
            return [AgentError(message=message, detail=text)]
        return []

    def session_of(self, obj: dict[str, Any]) -> list[AgentEvent]:
        task = obj.get("taskId")
        if isinstance(task, str) and task and self.session is None:
            self.session = task
            return [AgentSession(id=task)]
        return []

    def agent_event(self, event: dict[str, Any], line: str) -> list[AgentEvent]:
        kind = event.get("type")
        if kind == "usage":
            return [self.usage(event)]
        if kind == "content_start" and event.get("contentType") == "tool":
            call = _id(event.get("toolCallId"))
            given = as_dict(event.get("input"))
            if call is not None:
                self.inputs[call] = given
            return [AgentToolCall(tool=str(event.get("toolName") or "tool"), input=given, id=call)]
        if kind == "content_end" and event.get("contentType") == "tool":
            return self.tool_end(event)
        if kind == "content_end" and event.get("contentType") == "text":
            said = event.get("text")
            return [AgentMessage(text=said)] if isinstance(said, str) and said else []
        if kind == "error" and event.get("recoverable") is not True:
            self.saw_error = True
            error = as_dict(event.get("error"))
            message = error.get("message") or "cline reported an error"
            return [AgentError(message=str(message), detail=line)]
        return []

    def usage(self, event: dict[str, Any]) -> AgentUsage:
        """One model call's tokens (added up); cost only when cline priced the call."""
        self.usage_seen = True
        total = event.get("totalCost")
        cost: float | None = None
        if isinstance(total, (int, float)) and not isinstance(total, bool) and total > 0:
            cost = max(0.0, float(total) - self.cost_total)
            self.cost_total = float(total)
        return AgentUsage(
            input_tokens=count(event.get("inputTokens")),
            output_tokens=count(event.get("outputTokens")),
            cache_read_tokens=count(event.get("cacheReadTokens")),
            cache_write_tokens=count(event.get("cacheWriteTokens")),
            cost_usd=cost,  # 0 from openai-compatible: not reported (Logist prices it)
            cumulative=False,
        )

    def tool_end(self, event: dict[str, Any]) -> list[AgentEvent]:
        name = str(event.get("toolName") or "tool")
        call = _id(event.get("toolCallId"))
        output = event.get("output")
        failed = event.get("error") or (as_dict(output).get("error") if output else None)
        ok = not failed
        shown = as_dict(output).get("result") if ok else failed
        text = shown if isinstance(shown, str) else ("" if shown is None else str(shown))
        events: list[AgentEvent] = [AgentToolResult(id=call, tool=name, ok=ok, output=text)]
        given = self.inputs.get(call or "", {})
        if ok and name in _WRITING_TOOLS:
            path = given.get(_WRITING_TOOLS[name])
            if isinstance(path, str) and path:
                events.append(AgentFileChange(path=path, action="modify"))
        if ok and name == "apply_patch" and isinstance(given.get("input"), str):
            events += [
                AgentFileChange(path=m.group(2), action=_PATCH_ACTIONS[m.group(1)])
                for m in _PATCH_FILE.finditer(given["input"])
            ]
        if not ok and NEEDS_APPROVAL in text and not self.asked:
            self.asked = True
            patched = _PATCH_FILE.findall(str(given.get("input") or ""))
            what = given.get("path") or given.get("commands") or [f for _, f in patched] or ""
            question = f"cline asks leave to use {name}" + (f": {what}" if what else "")
            events.append(
                AgentQuestion(text=question, id=call, kind="permission", options=[ALLOW, DENY])
            )
        return events

    def run_result(self, obj: dict[str, Any], line: str) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        summary = obj.get("text") if isinstance(obj.get("text"), str) else None
        if not self.usage_seen:  # no per-call figures: the run's totals
            usage = as_dict(obj.get("usage"))
            if any(count(usage.get(k)) for k in ("inputTokens", "outputTokens")):
                events.append(
                    AgentUsage(
                        input_tokens=count(usage.get("inputTokens")),
                        output_tokens=count(usage.get("outputTokens")),
                        cache_read_tokens=count(usage.get("cacheReadTokens")),
                        cache_write_tokens=count(usage.get("cacheWriteTokens")),
                    )
                )
        if obj.get("finishReason") == "error":
            if not self.saw_error:
                self.saw_error = True
                events.append(AgentError(message=summary or "cline run failed", detail=line))
            return events
        events.append(AgentDone(success=True, summary=summary))
        return events

    def feed_lines(self, data: bytes) -> list[AgentEvent]:
        return feed_each_line(self, data)

    def finish(self, exit_code: int | None) -> list[AgentEvent]:
        if exit_code not in (0, None) and not self.saw_error:
            return [AgentError(message=f"cline exited with status {exit_code}")]
        return []


def _id(value: object) -> str | None:
    return value if isinstance(value, str) and value else None

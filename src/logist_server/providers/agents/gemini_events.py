"""Reading `gemini -p ... --output-format stream-json` output (gemini-cli 0.61).

`init` names the session (reported once the model has answered: a run that failed before
leaves no saved session to resume); `message` (role user or assistant, `delta` pieces of the
assistant's text); `tool_use` / `tool_result` paired by `tool_id`; `result` ends the run with
`status` (`success` or `error` with `error.message`, often `[API Error: {json}]`) and `stats`:
tokens in all and per model (`models`), no USD, so Logist prices them.

gemini's exit status on an API error looks like the HTTP status mod 256 (429 exits 173, 256
would exit 0): the parser says so from `result.status`, never from the exit status alone.
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
    AgentSession,
    AgentToolCall,
    AgentToolResult,
    AgentUsage,
)
from logist_server.providers.agents.json_lines import JsonOrTextLines, count, error_object

#: gemini's tools that write a file, and the parameter naming it.
_WRITERS = {"replace": "modify", "write_file": "modify", "edit": "modify"}
_API_ERROR = re.compile(r"\[API Error:\s*(.*)\]", re.DOTALL)
_STATUS_WORD = re.compile(r"\s*\(Status: ([A-Z_]+)\)\s*$")
#: What gemini-cli appends to an API error of HTTP 429 (`errorParsing.js`).
_RATE_SUFFIX = re.compile(
    r"Please wait and try again later\. To increase your limits|Possible quota limitations"
)
#: Google's status words and their HTTP statuses.
_GOOGLE = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429, "INTERNAL": 500, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
}  # fmt: skip
#: "Error code: N" is the generic shape the observer's table knows (401 auth, 429 rate limit).
_HTTP_WORDS = {
    400: "the model API refused the request (Error code: 400)",
    401: "authentication failed (Error code: 401): check GEMINI_API_KEY or the login",
    402: "the model API refused the request: payment required (Error code: 402)",
    403: "the model API refused access (Error code: 403): check the key's permissions",
    404: "the model API does not know this model (Error code: 404)",
    429: "the model API is rate limiting requests (Error code: 429)",
}


def error_reason(text: str) -> str:
    """A sentence a person understands for gemini's error text, with the original kept after
    it. gemini-cli writes `[API Error: MESSAGE]` (+ a rate-limit sentence for 429),
    `[API Error: MESSAGE (Status: WORD)]` or `[API Error: {json}]` (`errorParsing.js`)."""
    match = _API_ERROR.search(text)
    if match is None:
        return text
    inner = match.group(1).strip()
    code: int | None = None
    status: str | None = None
    message = inner
    body = error_object(inner)
    if body is not None:
        raw_code, said, raw_status = body.get("code"), body.get("message"), body.get("status")
        code = raw_code if isinstance(raw_code, int) else None
        message = said if isinstance(said, str) else inner
        status = raw_status if isinstance(raw_status, str) else None
    else:
        word = _STATUS_WORD.search(inner)
        if word is not None:
            status, message = word.group(1), inner[: word.start()]
    if code is None and status is not None:
        code = _GOOGLE.get(status)
    if code is None and _RATE_SUFFIX.search(text):
        code = 429
    if code is None:
        lead = "the model API failed"
    else:
        lead = _HTTP_WORDS.get(code, f"the model API failed (Error code: {code})")
    kind = f" ({status})" if status else ""
    return f"{lead}: {message}{kind} [{text}]"


class GeminiParser(JsonOrTextLines):
    """Typed events from gemini's stream-json output."""

    agent = "gemini"

    def __init__(self) -> None:
        super().__init__()
        self.saw_result = False
        self._tools: dict[str, str] = {}
        #: `init`'s session id, reported once the model has answered: gemini saves a
        #: session only then, and `--resume` of one it has not saved fails.
        self._session: str | None = None
        self._paths: dict[str, str] = {}

    def finish(self, exit_code: int | None) -> list[AgentEvent]:
        if self.saw_error:
            return []
        if exit_code not in (0, None):
            return [self._exit_error(exit_code)]
        if not self.saw_result and exit_code == 0:
            return [AgentError(message="gemini ended without a result")]
        return []

    def _event(self, obj: dict[str, Any], line: str) -> list[AgentEvent]:
        kind = obj.get("type")
        if kind == "init" and isinstance(obj.get("session_id"), str):
            self._session = obj["session_id"]
            return []
        if kind == "message":
            content = obj.get("content")
            if obj.get("role") == "assistant" and isinstance(content, str) and content:
                return self._answered([AgentMessage(text=content)])
            return []
        if kind == "tool_use":
            return self._answered(self._tool_use(obj))
        if kind == "tool_result":
            return self._tool_result(obj)
        if kind == "result":
            events = self._result(obj, line)
            return self._answered(events) if obj.get("status") == "success" else events
        if kind == "error":
            message = str(obj.get("message") or "gemini reported an error")
            if obj.get("severity") == "warning":  # `Loop detected, stopping execution`
                return [AgentMessage(text=f"gemini warning: {message}")]
            self.saw_error = True
            return [AgentError(message=error_reason(message), detail=line)]
        return []

    def _answered(self, events: list[AgentEvent]) -> list[AgentEvent]:
        """`events`, after the session's id the first time the model has answered."""
        if self._session is None:
            return events
        session, self._session = self._session, None
        return [AgentSession(id=session), *events]

    def _tool_use(self, obj: dict[str, Any]) -> list[AgentEvent]:
        tool = str(obj.get("tool_name") or "tool")
        tool_id = obj.get("tool_id") if isinstance(obj.get("tool_id"), str) else None
        params = obj.get("parameters")
        data = params if isinstance(params, dict) else {}
        if tool_id is not None:
            self._tools[tool_id] = tool
            path = data.get("file_path")
            if tool in _WRITERS and isinstance(path, str):
                self._paths[tool_id] = path
        return [AgentToolCall(tool=tool, input=data, id=tool_id)]

    def _tool_result(self, obj: dict[str, Any]) -> list[AgentEvent]:
        tool_id = obj.get("tool_id") if isinstance(obj.get("tool_id"), str) else None
        ok = obj.get("status") == "success"
        output = obj.get("output")
        error = obj.get("error")
        if not isinstance(output, str):
            output = error.get("message", "") if isinstance(error, dict) else ""
        tool = self._tools.get(tool_id) if tool_id is not None else None
        events: list[AgentEvent] = [
            AgentToolResult(id=tool_id, tool=tool, ok=ok, output=str(output))
        ]
        path = self._paths.get(tool_id) if tool_id is not None else None
        if ok and tool is not None and path is not None:
            events.append(AgentFileChange(path=path, action=_WRITERS[tool]))
        return events

    def _result(self, obj: dict[str, Any], line: str) -> list[AgentEvent]:
        self.saw_result = True
        events: list[AgentEvent] = list(_usage(obj.get("stats")))
        if obj.get("status") == "error" or obj.get("error"):
            self.saw_error = True
            error = obj.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            text = str(message or "gemini reported an error")
            events.append(AgentError(message=error_reason(text), detail=line))
            events.append(AgentDone(success=False))
        else:
            events.append(AgentDone(success=True))
        return events


def _usage(stats: Any) -> list[AgentUsage]:
    """One usage per model that used tokens (`stats.models`, each priced by its own
    model), added to the step's figures: a run reports its stats once, at its end."""
    if not isinstance(stats, dict):
        return []
    models = stats.get("models")
    rows: list[tuple[str | None, dict[str, Any]]] = []
    if isinstance(models, dict) and models:
        rows = [(str(name), row) for name, row in models.items() if isinstance(row, dict)]
    else:
        rows = [(None, stats)]
    usages = []
    for name, row in rows:
        total_in = count(row.get("input_tokens")) or count(row.get("prompt"))
        cached = min(count(row.get("cached")), total_in)
        output = count(row.get("output_tokens")) or count(row.get("candidates"))
        thoughts = count(row.get("thoughts"))
        if total_in == 0 and output == 0 and thoughts == 0:
            continue
        usages.append(
            AgentUsage(
                input_tokens=total_in - cached,
                cache_read_tokens=cached,
                output_tokens=output,
                reasoning_tokens=thoughts,
                cost_usd=None,
                cumulative=False,
                model=name,
            )
        )
    return usages

"""OpenAI responses API (`POST /v1/responses`, streaming SSE or one JSON body), as codex and
codex-acp call it.

A scripted turn is a plain dict, one per model call:
- `{"text": "..."}`: an assistant message;
- `{"edit": {"path": "a.txt", "old": "x", "new": "y"}}`: an edit through the tool the
  request offers (`apply_patch` as a custom or function tool, else codex's `exec_command` /
  `shell` / `shell_command` running `apply_patch`);
- `{"tool": NAME, "arguments": {...}}`: any function call, as is;
- `{"reasoning": "...", ...}` adds a reasoning item (and reasoning tokens) before the rest.

Usage in each response is what the endpoint counts: input = request body bytes / 4, of
which `cached_tokens` = the turn's `"cache_read": N` (inside input, as OpenAI counts it);
output = the response's output items' compact JSON bytes / 4, of which reasoning = the
reasoning summary text bytes / 4 (inside output, likewise).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

PATHS = ("/v1/responses", "/responses")
_ids = itertools.count(1)


def matches(method: str, path: str) -> bool:
    return method == "POST" and path.split("?", 1)[0].rstrip("/").endswith("/responses")


def tokens(data: bytes | str) -> int:
    """The endpoint's token count for `data`: its size / 4, at least 1 when not empty."""
    size = len(data.encode() if isinstance(data, str) else data)
    return (size + 3) // 4


def tool_names(request: Mapping[str, Any]) -> dict[str, str]:
    """The tools a request offers: name -> type (`function`, `custom`, ...)."""
    offered: dict[str, str] = {}
    for tool in request.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("name"), str):
            offered[tool["name"]] = str(tool.get("type"))
    return offered


def patch_text(path: str, old: str, new: str) -> str:
    """An `apply_patch` patch replacing the line(s) `old` with `new` in `path`."""
    minus = "".join(f"-{line}\n" for line in old.splitlines())
    plus = "".join(f"+{line}\n" for line in new.splitlines())
    return f"*** Begin Patch\n*** Update File: {path}\n@@\n{minus}{plus}*** End Patch\n"


def edit_item(request: Mapping[str, Any], path: str, old: str, new: str) -> dict[str, Any]:
    """The output item that makes the edit with a tool the request offers."""
    patch = patch_text(path, old, new)
    offered = tool_names(request)
    call_id = f"call_{next(_ids)}"
    if offered.get("apply_patch") == "custom":
        return {"type": "custom_tool_call", "id": f"ctc_{call_id}", "call_id": call_id,
                "name": "apply_patch", "input": patch, "status": "completed"}  # fmt: skip
    if "apply_patch" in offered:
        return _function(call_id, "apply_patch", {"input": patch})
    heredoc = f"apply_patch <<'PATCH'\n{patch}PATCH\n"
    for name, key in (("exec_command", "cmd"), ("shell_command", "command")):
        if name in offered:
            return _function(call_id, name, {key: heredoc})
    return _function(call_id, "shell", {"command": ["apply_patch", patch]})


def _function(call_id: str, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "name": name,
            "arguments": json.dumps(arguments), "status": "completed"}  # fmt: skip


def output_items(turn: Mapping[str, Any], request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The response's output items for a scripted turn."""
    items: list[dict[str, Any]] = []
    if "reasoning" in turn:
        items.append({"type": "reasoning", "id": f"rs_{next(_ids)}", "summary": [
            {"type": "summary_text", "text": str(turn["reasoning"])}]})  # fmt: skip
    if "edit" in turn:
        edit = turn["edit"]
        items.append(edit_item(request, edit["path"], edit["old"], edit["new"]))
    if "tool" in turn:
        items.append(_function(f"call_{next(_ids)}", turn["tool"], turn.get("arguments", {})))
    if "text" in turn:
        text = {"type": "output_text", "text": str(turn["text"]), "annotations": []}
        items.append({"type": "message", "id": f"msg_{next(_ids)}", "role": "assistant",
                      "status": "completed", "content": [text]})  # fmt: skip
    return items


def usage(request_body: bytes, items: list[dict[str, Any]], cached: int = 0) -> dict[str, Any]:
    """The usage block the endpoint reports, by its own counts."""
    output = tokens(json.dumps(items, separators=(",", ":")))
    reasoning = sum(
        tokens(part["text"]) for item in items if item["type"] == "reasoning"
        for part in item["summary"]
    )  # fmt: skip
    total_in = tokens(request_body)
    return {
        "input_tokens": total_in,
        "input_tokens_details": {"cached_tokens": min(cached, total_in)},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": min(reasoning, output)},
        "total_tokens": total_in + output,
    }


def response(
    request: Mapping[str, Any], items: list[dict[str, Any]], used: Mapping[str, Any]
) -> dict[str, Any]:
    model = request.get("model", "fake-model")
    return {"id": f"resp_{next(_ids)}", "object": "response", "status": "completed",
            "model": model, "output": items, "usage": dict(used)}  # fmt: skip


def sse_events(resp: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The streaming events of a response, in order (`response.created` ... `completed`)."""
    start = dict(resp, status="in_progress", output=[])
    start.pop("usage", None)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    for index, item in enumerate(resp["output"]):
        events.append({"type": "response.output_item.added", "output_index": index,
                       "item": _opening(item)})  # fmt: skip
        if item["type"] == "message":
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": []}
            events += [
                {"type": "response.content_part.added", "item_id": item["id"],
                 "output_index": index, "content_index": 0, "part": part},
                {"type": "response.output_text.delta", "item_id": item["id"],
                 "output_index": index, "content_index": 0, "delta": text},
                {"type": "response.output_text.done", "item_id": item["id"],
                 "output_index": index, "content_index": 0, "text": text},
                {"type": "response.content_part.done", "item_id": item["id"],
                 "output_index": index, "content_index": 0, "part": dict(part, text=text)},
            ]  # fmt: skip
        elif item["type"] == "function_call":
            events += [
                {"type": "response.function_call_arguments.delta", "item_id": item["id"],
                 "output_index": index, "delta": item["arguments"]},
                {"type": "response.function_call_arguments.done", "item_id": item["id"],
                 "output_index": index, "arguments": item["arguments"]},
            ]  # fmt: skip
        elif item["type"] == "custom_tool_call":
            events += [
                {"type": "response.custom_tool_call_input.delta", "item_id": item["id"],
                 "output_index": index, "delta": item["input"]},
                {"type": "response.custom_tool_call_input.done", "item_id": item["id"],
                 "output_index": index, "input": item["input"]},
            ]  # fmt: skip
        events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": dict(resp)})
    return events


def _opening(item: Mapping[str, Any]) -> dict[str, Any]:
    opened = dict(item, status="in_progress")
    if item["type"] == "message":
        opened["content"] = []
    elif item["type"] == "function_call":
        opened["arguments"] = ""
    elif item["type"] == "custom_tool_call":
        opened["input"] = ""
    return opened


def encode_sse(events: list[dict[str, Any]]) -> bytes:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()


def reply(turn: Mapping[str, Any], request_body: bytes) -> tuple[bytes, str, dict[str, int]]:
    """(body, content type, served tokens) for a scripted turn: SSE when the request asks
    to stream, else one JSON response. Served tokens: input, cached, output, reasoning."""
    request = json.loads(request_body or b"{}")
    items = output_items(turn, request)
    used = usage(request_body, items, cached=int(turn.get("cache_read", 0)))
    resp = response(request, items, used)
    served = {
        "input": used["input_tokens"],
        "cached": used["input_tokens_details"]["cached_tokens"],
        "output": used["output_tokens"],
        "reasoning": used["output_tokens_details"]["reasoning_tokens"],
    }
    if request.get("stream"):
        return encode_sse(sse_events(resp)), "text/event-stream", served
    return json.dumps(resp).encode(), "application/json", served


def error_body(status: int, message: str) -> bytes:
    """OpenAI's error object for an HTTP failure (codex prints it in its error line)."""
    kinds = {400: "invalid_request_error", 401: "invalid_request_error",
             402: "insufficient_quota", 403: "permission_denied", 404: "not_found_error",
             429: "rate_limit_exceeded", 500: "server_error"}  # fmt: skip
    codes = {401: "invalid_api_key", 402: "insufficient_quota", 429: "rate_limit_exceeded"}
    return json.dumps({"error": {"message": message, "type": kinds.get(status, "api_error"),
                                 "code": codes.get(status), "param": None}}).encode()  # fmt: skip


def has_tool_output(request_body: bytes) -> bool:
    """Whether the request carries a tool call's output (the model's next step)."""
    request = json.loads(request_body or b"{}")
    return any(
        isinstance(i, dict) and str(i.get("type", "")).endswith("_output")
        for i in request.get("input") or []
    )

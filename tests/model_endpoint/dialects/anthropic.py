"""The Anthropic messages API (`POST /v1/messages`, streaming SSE or one JSON body), as
claude-code (`ANTHROPIC_BASE_URL=http://127.0.0.1:P`, no `/v1`) and claude-agent-acp call it;
`/v1/messages/count_tokens` is answered too (it is no scripted turn).

A scripted turn is a plain dict, one per model call:
- `{"text": "..."}`: an assistant text block;
- `{"read": "a.txt"}`: a `Read` tool use (claude's Edit refuses a file it has not read);
- `{"edit": {"path": "a.txt", "old": "x", "new": "y"}}`: an `Edit` tool use;
- `{"tool": NAME, "arguments": {...}}`: any tool use, as is (`Bash`, `AskUserQuestion`...);
- `"cache_read": N` / `"cache_write": N` in a turn: that many of the request's input tokens
  are reported as cache reads / cache writes instead of plain input.
A relative path is made absolute against the working directory claude names in the
request ("Primary working directory: ..."), as claude's tools require.

Usage in each response is what the endpoint counts: input = request body bytes / 4 (less
the cache figures), output = the content blocks' JSON bytes / 4.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Mapping
from typing import Any

_ids = itertools.count(1)
_CWD = re.compile(r"Primary working directory: ([^\n\\\"]+)")
ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
}  # fmt: skip


def matches(method: str, path: str) -> bool:
    return method == "POST" and path.split("?", 1)[0].rstrip("/").endswith("/v1/messages")


def is_count_tokens(method: str, path: str) -> bool:
    return method == "POST" and path.split("?", 1)[0].rstrip("/").endswith("/count_tokens")


def tokens(data: bytes | str) -> int:
    """The endpoint's token count for `data`: its size / 4, rounded up."""
    size = len(data.encode() if isinstance(data, str) else data)
    return (size + 3) // 4


def working_directory(request_body: bytes) -> str | None:
    match = _CWD.search(request_body.decode("utf-8", "replace"))
    return match.group(1).strip() if match else None


def _absolute(path: str, cwd: str | None) -> str:
    return path if os.path.isabs(path) or cwd is None else os.path.join(cwd, path)


def _tool_use(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": f"toolu_{next(_ids):08d}", "name": name, "input": dict(data)}


def content(turn: Mapping[str, Any], request_body: bytes) -> list[dict[str, Any]]:
    """The response's content blocks for a scripted turn."""
    cwd = working_directory(request_body)
    blocks: list[dict[str, Any]] = []
    if "text" in turn:
        blocks.append({"type": "text", "text": str(turn["text"])})
    if "read" in turn:
        blocks.append(_tool_use("Read", {"file_path": _absolute(str(turn["read"]), cwd)}))
    if "edit" in turn:
        edit = turn["edit"]
        blocks.append(_tool_use("Edit", {
            "file_path": _absolute(str(edit["path"]), cwd), "old_string": edit["old"],
            "new_string": edit["new"], "replace_all": False}))  # fmt: skip
    if "tool" in turn:
        blocks.append(_tool_use(str(turn["tool"]), turn.get("arguments") or {}))
    return blocks


def usage(
    request_body: bytes, blocks: list[dict[str, Any]], turn: Mapping[str, Any]
) -> dict[str, int]:
    total_in = tokens(request_body)
    read = min(int(turn.get("cache_read", 0)), total_in)
    write = min(int(turn.get("cache_write", 0)), total_in - read)
    return {
        "input_tokens": total_in - read - write,
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
        "output_tokens": tokens(json.dumps(blocks)),
    }


def message(
    request: Mapping[str, Any], blocks: list[dict[str, Any]], used: Mapping[str, int]
) -> dict[str, Any]:
    stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
    return {"id": f"msg_{next(_ids):012d}", "type": "message", "role": "assistant",
            "model": request.get("model", "claude-fake"), "content": blocks,
            "stop_reason": stop, "stop_sequence": None, "usage": dict(used)}  # fmt: skip


def sse_events(msg: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The streaming events of a message: start, each block (start, delta, stop), delta, stop."""
    used = dict(msg["usage"])
    start_usage = dict(used, output_tokens=1)
    start = dict(msg, content=[], stop_reason=None, usage=start_usage)
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(msg["content"]):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            delta: dict[str, Any] = {"type": "text_delta", "text": block["text"]}
        else:
            opening = dict(block, input={})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events += [
            ("content_block_start",
             {"type": "content_block_start", "index": index, "content_block": opening}),
            ("content_block_delta",
             {"type": "content_block_delta", "index": index, "delta": delta}),
            ("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]  # fmt: skip
    events += [
        ("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": msg["stop_reason"], "stop_sequence": None}, "usage": used}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return events


def encode_sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def reply(turn: Mapping[str, Any], request_body: bytes) -> tuple[bytes, str, dict[str, int]]:
    """(body, content type, served tokens) for a scripted turn: SSE when the request asks
    to stream, else one JSON message. Served: input, cached (reads), cache_write, output."""
    request = json.loads(request_body or b"{}")
    blocks = content(turn, request_body)
    used = usage(request_body, blocks, turn)
    msg = message(request, blocks, used)
    served = {
        "input": used["input_tokens"],
        "cached": used["cache_read_input_tokens"],
        "cache_write": used["cache_creation_input_tokens"],
        "output": used["output_tokens"],
        "reasoning": 0,
    }
    if request.get("stream"):
        return encode_sse(sse_events(msg)), "text/event-stream", served
    return json.dumps(msg).encode(), "application/json", served


def count_tokens_reply(request_body: bytes) -> bytes:
    """`/v1/messages/count_tokens`: the endpoint's count of the request (nothing served)."""
    return json.dumps({"input_tokens": tokens(request_body)}).encode()


def error_body(status: int, message: str) -> bytes:
    """Anthropic's error object for an HTTP failure (claude prints its message)."""
    kind = ERROR_TYPES.get(status, "api_error")
    if status == 400 and any(word in message.lower() for word in ("budget", "billing", "credit")):
        kind = "billing_error"  # as a budget gate answers (claude retries an invalid request)
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def has_tool_output(request_body: bytes) -> bool:
    """Whether the request's last message carries a tool result (the model's next step)."""
    request = json.loads(request_body or b"{}")
    messages = request.get("messages") or []
    last = messages[-1] if messages else {}
    blocks = last.get("content") if isinstance(last, dict) else None
    return isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in blocks
    )

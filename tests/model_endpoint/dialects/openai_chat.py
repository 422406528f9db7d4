"""OpenAI chat completions (`POST /v1/chat/completions`, streaming SSE or one JSON body), as
aider (litellm), cline and opencode (`@ai-sdk/openai-compatible`) call it.

A scripted turn is a plain dict, one per model call:
- `{"text": "..."}`: an assistant message (aider's edit formats are plain text: a
  SEARCH/REPLACE block in `text` is how aider edits);
- `{"edit": {"path": "a.txt", "old": "x", "new": "y"}}`: an edit through the tool the
  request offers (opencode's `edit`, cline's `editor`, a `write`/`str_replace` fallback); a
  request that offers no tools (aider) gets aider's SEARCH/REPLACE block as text;
- `{"tool": NAME, "arguments": {...}}`: any function call, as is;
- `"cached": N`: report N of the input tokens as cached (`prompt_tokens_details`).

Usage is what the endpoint counts: prompt = request body bytes / 4, completion = the
assistant message's JSON bytes / 4. A streamed answer carries it in a last chunk only when
the request asks for it (`stream_options.include_usage`), as OpenAI does. `GET .../models`
is answered as a side call (no turn consumed, no tokens).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from ..tokens import tokens

_ids = itertools.count(1)
#: Edit tools by name -> (path key, old key, new key).
EDIT_TOOLS = {
    "edit": ("filePath", "oldString", "newString"),  # opencode
    "editor": ("path", "old_text", "new_text"),  # cline 3
    "replace_in_file": ("path", "old_text", "new_text"),
    "str_replace_based_edit_tool": ("path", "old_str", "new_str"),
}


def matches(method: str, path: str) -> bool:
    """A chat completion, or the model listing (a side call, see `side_reply`)."""
    bare = path.split("?", 1)[0].rstrip("/")
    if method == "GET":
        return bare.endswith("/models")
    return method == "POST" and bare.endswith("/chat/completions")


def side_reply(method: str, path: str, body: bytes) -> tuple[bytes, str, dict[str, int]] | None:
    """`GET .../models`: one model, so a client that lists models finds the scripted one."""
    if method == "GET" and path.split("?", 1)[0].rstrip("/").endswith("/models"):
        listing = {"object": "list", "data": [{"id": "fake-model", "object": "model",
                                               "created": 0, "owned_by": "logist"}]}  # fmt: skip
        return json.dumps(listing).encode(), "application/json", {}
    return None


def offered_tools(request: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for tool in request.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def search_replace(path: str, old: str, new: str) -> str:
    """aider's `diff` edit format: a fenced SEARCH/REPLACE block after the file name."""
    return f"{path}\n```\n<<<<<<< SEARCH\n{old}\n=======\n{new}\n>>>>>>> REPLACE\n```\n"


def _call(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": f"call_{next(_ids)}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}  # fmt: skip


def edit_call(request: Mapping[str, Any], edit: Mapping[str, str]) -> dict[str, Any] | str:
    """A tool call making the edit with a tool the request offers, or aider's text block."""
    offered = offered_tools(request)
    for name, (path_key, old_key, new_key) in EDIT_TOOLS.items():
        if name in offered:
            return _call(name, {path_key: edit["path"], old_key: edit["old"],
                                new_key: edit["new"]})  # fmt: skip
    if "apply_patch" in offered:  # cline 3 for OpenAI models (codex's patch format)
        minus = "".join(f"-{line}\n" for line in edit["old"].splitlines())
        plus = "".join(f"+{line}\n" for line in edit["new"].splitlines())
        patch = (
            f"*** Begin Patch\n*** Update File: {edit['path']}\n@@\n{minus}{plus}*** End Patch\n"
        )
        return _call("apply_patch", {"input": patch})
    if offered:
        raise ValueError(f"no edit tool among the offered tools {offered}")
    return search_replace(edit["path"], edit["old"], edit["new"])


def message(turn: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """The assistant message for a scripted turn."""
    text = str(turn["text"]) if "text" in turn else None
    calls: list[dict[str, Any]] = []
    if "edit" in turn:
        made = edit_call(request, turn["edit"])
        if isinstance(made, str):
            text = made + (text or "")
        else:
            calls.append(made)
    if "tool" in turn:
        calls.append(_call(str(turn["tool"]), turn.get("arguments") or {}))
    said: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        said["tool_calls"] = calls
    return said


def usage(request_body: bytes, said: Mapping[str, Any], cached: int = 0) -> dict[str, Any]:
    prompt = tokens(request_body)
    completion = tokens(json.dumps(said))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": min(cached, prompt)},
    }


def chunks(said: Mapping[str, Any], finish: str, base: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The streamed chunks of one message: role, text, each tool call, then the finish."""

    def chunk(delta: Mapping[str, Any], reason: str | None = None) -> dict[str, Any]:
        return dict(base, choices=[{"index": 0, "delta": dict(delta), "finish_reason": reason}])

    out = [chunk({"role": "assistant", "content": ""})]
    if said.get("content"):
        out.append(chunk({"content": said["content"]}))
    for index, call in enumerate(said.get("tool_calls") or []):
        opening = {"index": index, "id": call["id"], "type": "function",
                   "function": {"name": call["function"]["name"], "arguments": ""}}  # fmt: skip
        args = {"index": index, "function": {"arguments": call["function"]["arguments"]}}
        out += [chunk({"tool_calls": [opening]}), chunk({"tool_calls": [args]})]
    out.append(chunk({}, finish))
    return out


def reply(turn: Mapping[str, Any], request_body: bytes) -> tuple[bytes, str, dict[str, int]]:
    """(body, content type, served tokens) for a scripted turn: SSE when the request asks
    to stream, else one JSON body."""
    request = json.loads(request_body or b"{}")
    said = message(turn, request)
    used = usage(request_body, said, cached=int(turn.get("cached", 0)))
    finish = "tool_calls" if said.get("tool_calls") else "stop"
    base = {"id": f"chatcmpl-{next(_ids)}", "created": 0,
            "model": str(request.get("model") or "fake-model")}  # fmt: skip
    served = {"input": used["prompt_tokens"], "output": used["completion_tokens"],
              "cached": used["prompt_tokens_details"]["cached_tokens"]}  # fmt: skip
    if request.get("stream"):
        events = chunks(said, finish, dict(base, object="chat.completion.chunk"))
        options = request.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            events.append(dict(base, object="chat.completion.chunk", choices=[], usage=used))
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return body.encode(), "text/event-stream", served
    whole = dict(base, object="chat.completion", usage=used,
                 choices=[{"index": 0, "message": said, "finish_reason": finish}])  # fmt: skip
    return json.dumps(whole).encode(), "application/json", served


def error_body(status: int, message: str) -> bytes:
    """OpenAI's error object (litellm, the AI SDK and cline print its message)."""
    kinds = {400: "invalid_request_error", 401: "invalid_request_error",
             402: "insufficient_quota", 403: "permission_denied", 404: "not_found_error",
             429: "rate_limit_exceeded", 500: "server_error"}  # fmt: skip
    codes = {401: "invalid_api_key", 402: "insufficient_quota", 429: "rate_limit_exceeded"}
    return json.dumps({"error": {"message": message, "type": kinds.get(status, "api_error"),
                                 "code": codes.get(status), "param": None}}).encode()  # fmt: skip

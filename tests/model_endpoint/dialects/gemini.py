"""The Gemini API (`/v1beta/models/M:streamGenerateContent?alt=sse` and `:generateContent`),
as gemini-cli and `gemini --acp` call it.

A scripted turn is a plain dict, one per model call:
- `{"text": "..."}`: a model text part;
- `{"edit": {"path": "a.txt", "old": "x", "new": "y"}}`: a `replace` function call
  (gemini-cli's edit tool; `write_file` when the request offers no `replace`);
- `{"tool": NAME, "arguments": {...}}`: any function call, as is.

A non-streaming call whose `generationConfig` asks for JSON (gemini-cli's routing classifier)
is answered with an object matching its `responseJsonSchema` / `responseSchema`, whatever the
script says: it is not one of the scripted turns (`is_routing`).

`usageMetadata` is what the endpoint counts: prompt = request body bytes / 4, candidates =
the candidate's compact JSON bytes / 4 (thoughts none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def matches(method: str, path: str) -> bool:
    bare = path.split("?", 1)[0]
    return method == "POST" and bare.endswith((":streamGenerateContent", ":generateContent"))


def streaming(path: str) -> bool:
    return ":streamGenerateContent" in path


def model_of(path: str) -> str:
    """`gemini-x` of `/v1beta/models/gemini-x:generateContent`."""
    bare = path.split("?", 1)[0]
    return bare.rsplit("/", 1)[-1].split(":", 1)[0]


def tokens(data: bytes | str) -> int:
    size = len(data.encode() if isinstance(data, str) else data)
    return (size + 3) // 4


def is_routing(path: str, request: Mapping[str, Any]) -> bool:
    """gemini-cli's routing call: not streamed, asks for a JSON answer."""
    config = request.get("generationConfig") or {}
    return not streaming(path) and config.get("responseMimeType") == "application/json"


def fill(schema: Any) -> Any:
    """A value matching a JSON/OpenAPI schema (Gemini spells types in capitals)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: fill(sub) for name, sub in props.items()}
    if kind == "array":
        return [fill(schema.get("items"))] if schema.get("minItems") else []
    if kind in ("integer", "number"):
        low = schema.get("minimum", 1)
        return int(low) if kind == "integer" else float(low)
    if kind == "boolean":
        return False
    return "simple"


def offered(request: Mapping[str, Any]) -> set[str]:
    return {
        f["name"]
        for tool in request.get("tools") or []
        for f in (tool.get("functionDeclarations") or [])
        if isinstance(f, dict) and isinstance(f.get("name"), str)
    }


def parts(turn: Mapping[str, Any], request: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The candidate's parts for a scripted turn."""
    out: list[dict[str, Any]] = []
    if "text" in turn:
        out.append({"text": str(turn["text"])})
    if "edit" in turn:
        edit = turn["edit"]
        if "replace" in offered(request) or "write_file" not in offered(request):
            args = {"file_path": edit["path"], "old_string": edit["old"],
                    "new_string": edit["new"], "instruction": "make the scripted edit"}  # fmt: skip
            out.append({"functionCall": {"name": "replace", "args": args}})
        else:
            out.append({"functionCall": {"name": "write_file",
                        "args": {"file_path": edit["path"], "content": edit["new"]}}})  # fmt: skip
    if "tool" in turn:
        out.append({"functionCall": {"name": turn["tool"], "args": turn.get("arguments", {})}})
    return out


def reply(
    turn: Mapping[str, Any], request_body: bytes, path: str
) -> tuple[bytes, str, dict[str, int]]:
    """(body, content type, served tokens) for one call: SSE for `streamGenerateContent`,
    one JSON object for `generateContent`. A routing call gets its schema's answer."""
    request = json.loads(request_body or b"{}")
    if is_routing(path, request):
        config = request.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        content = [{"text": json.dumps(fill(schema))}]
    else:
        content = parts(turn, request)
    candidate = {"content": {"role": "model", "parts": content}, "finishReason": "STOP",
                 "index": 0}  # fmt: skip
    prompt = tokens(request_body)
    output = tokens(json.dumps(candidate, separators=(",", ":")))
    used = {"promptTokenCount": prompt, "candidatesTokenCount": output,
            "totalTokenCount": prompt + output}  # fmt: skip
    body_obj = {"candidates": [candidate], "usageMetadata": used, "modelVersion": model_of(path)}
    served = {"input": prompt, "cached": 0, "output": output, "reasoning": 0}
    if streaming(path):
        return f"data: {json.dumps(body_obj)}\r\n\r\n".encode(), "text/event-stream", served
    return json.dumps(body_obj).encode(), "application/json", served


def error_body(status: int, message: str) -> bytes:
    """Google's error object (`{"error": {"code", "message", "status"}}`)."""
    names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "FAILED_PRECONDITION",
             403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
             500: "INTERNAL", 503: "UNAVAILABLE"}  # fmt: skip
    return json.dumps(
        {"error": {"code": status, "message": message, "status": names.get(status, "UNKNOWN")}}
    ).encode()


def has_tool_output(request_body: bytes) -> bool:
    """Whether the last content carries a function response (the model's next step)."""
    request = json.loads(request_body or b"{}")
    contents = request.get("contents") or []
    last = contents[-1] if contents else {}
    return any("functionResponse" in p for p in last.get("parts") or [] if isinstance(p, dict))

"""The scripted endpoint's OpenAI chat completions dialect (tests/model_endpoint/dialects/
openai_chat.py), through the real endpoint over HTTP: a tool edit for the tool each agent
offers, aider's text edit, SSE with and without `include_usage`, the served token count."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from model_endpoint import ModelEndpoint, tokens

EDIT = {"edit": {"path": "a.txt", "old": "x", "new": "y"}}


def post(url: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body).encode()
    request = urllib.request.Request(f"{url}/v1/chat/completions", data=data,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as answer:
        return bytes(answer.read())


def tools(*names: str) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": n, "parameters": {}}} for n in names]


def sse(payload: bytes) -> list[dict[str, Any]]:
    lines = [line[6:] for line in payload.decode().splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_edits_through_the_offered_tool_or_as_aider_text() -> None:
    with ModelEndpoint(dialects=("openai_chat",)) as endpoint:
        endpoint.script(EDIT, EDIT, EDIT, EDIT)
        calls = []
        for offered in (("read", "edit"), ("editor",), ("apply_patch",)):
            body = {"model": "m", "messages": [], "tools": tools(*offered)}
            message = json.loads(post(endpoint.url, body))["choices"][0]["message"]
            call = message["tool_calls"][0]["function"]
            calls.append((call["name"], json.loads(call["arguments"])))
        text = json.loads(post(endpoint.url, {"model": "m", "messages": []}))
        totals = endpoint.totals()
    assert calls[0] == ("edit", {"filePath": "a.txt", "oldString": "x", "newString": "y"})
    assert calls[1] == ("editor", {"path": "a.txt", "old_text": "x", "new_text": "y"})
    assert (
        calls[2][0] == "apply_patch"
        and "*** Update File: a.txt\n@@\n-x\n+y\n" in calls[2][1]["input"]
    )
    content = text["choices"][0]["message"]["content"]
    assert "a.txt\n```\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n```" in content
    assert text["usage"]["prompt_tokens"] == tokens(json.dumps({"model": "m", "messages": []}))
    assert totals["served"] == 4 and totals["input"] > 0 and totals["output"] > 0


def test_streaming_usage_only_when_asked() -> None:
    with ModelEndpoint(dialects=("openai_chat",)) as endpoint:
        endpoint.script({"text": "hi"}, {"text": "hi"})
        plain = sse(post(endpoint.url, {"model": "m", "messages": [], "stream": True}))
        asked = sse(post(endpoint.url, {"model": "m", "messages": [], "stream": True,
                                        "stream_options": {"include_usage": True}}))  # fmt: skip
        served = [entry.output for entry in endpoint.log]
    assert not any("usage" in chunk for chunk in plain)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in plain if c["choices"])
    assert text == "hi" and plain[-1]["choices"][0]["finish_reason"] == "stop"
    assert asked[-1]["choices"] == [] and asked[-1]["usage"]["completion_tokens"] == served[1]
    assert served[0] == served[1]  # the same count whether the client reads usage or not

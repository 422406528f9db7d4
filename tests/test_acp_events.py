"""The ACP event mapping (`acp_events.UpdateMapper`) on the recorded sessions of the real
agents (`tests/fixtures/agent-samples/acp-*.jsonl`: every JSON-RPC message both ways,
recorded with the Python SDK 0.12.1 as the client against the scripted endpoint)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

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
from logist_server.providers.agents.acp_events import UpdateMapper

SAMPLES = Path(__file__).parent / "fixtures" / "agent-samples"
REPO = "/home/dev/repo"


def relative(path: str) -> str | None:
    return path[len(REPO) + 1 :] if path.startswith(REPO + "/") else None


def replay(name: str) -> list[AgentEvent]:
    """The events of a recorded session: its updates and permission requests in order, then
    the prompt's response."""
    mapper = UpdateMapper(relative)
    events: list[AgentEvent] = []
    prompt_id: Any = None
    for line in (SAMPLES / name).read_text().splitlines():
        entry = json.loads(line)
        message = entry["msg"]
        if entry["dir"] == "outgoing":
            if message.get("method") == "session/prompt":
                prompt_id = message["id"]
            continue
        method = message.get("method")
        if method == "session/update":
            events += mapper.update(message["params"]["update"])
        elif method == "session/request_permission":
            events += mapper.flush() + mapper.note_tool(message["params"]["toolCall"])
        elif method == "fs/write_text_file":
            events += mapper.written(str(relative(message["params"]["path"])), False)
        elif method is None and message.get("id") == prompt_id and "result" in message:
            events += mapper.finish(message["result"])
    return events


def of(events: list[AgentEvent], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


@pytest.mark.parametrize(
    "name",
    ["acp-claude.jsonl", "acp-claude-exe2.1.332.jsonl", "acp-codex.jsonl", "acp-gemini.jsonl",
     "acp-opencode.jsonl", "acp-cline.jsonl"],
)  # fmt: skip
def test_every_edit_session_ends_done_with_one_message_and_paired_tool_calls(name: str) -> None:
    events = replay(name)
    assert isinstance(events[-1], AgentDone) and events[-1].success
    messages = [m.text for m in of(events, AgentMessage)]
    assert messages[-1] == "Done: edited the file as requested."  # chunks coalesced
    calls = of(events, AgentToolCall)
    results = of(events, AgentToolResult)
    assert calls and all(c.id for c in calls)
    assert len({c.id for c in calls}) == len(calls), "each call announced once"
    assert {r.id for r in results} <= {c.id for c in calls}
    for result in results:  # a result never comes before its call
        first_call = next(i for i, e in enumerate(events) if isinstance(e, AgentToolCall)
                          and e.id == result.id)  # fmt: skip
        assert first_call < events.index(result)
    assert not of(events, AgentError)


@pytest.mark.parametrize(
    "name", ["acp-claude.jsonl", "acp-codex.jsonl", "acp-gemini.jsonl", "acp-opencode.jsonl"]
)
def test_an_edit_with_a_diff_is_a_file_change_in_the_workspace(name: str) -> None:
    changes = of(replay(name), AgentFileChange)
    assert changes == [AgentFileChange(path="hello.py", action="modify")]


def test_cline_sends_no_diff_so_no_file_change_is_made_up() -> None:
    assert of(replay("acp-cline.jsonl"), AgentFileChange) == []


def test_claude_tool_input_is_the_full_one_not_the_empty_first_announcement() -> None:
    calls = of(replay("acp-claude.jsonl"), AgentToolCall)
    edit = next(c for c in calls if c.tool == "Edit hello.py")
    assert edit.input["file_path"] == "/home/dev/repo/hello.py"
    assert "hello from fake acp-claude" in edit.input["new_string"]


def test_claude_usage_tokens_from_the_prompt_response_and_cost_from_usage_update() -> None:
    usage = of(replay("acp-claude.jsonl"), AgentUsage)
    assert usage[0].cost_usd == pytest.approx(0.217308)  # mid-run: the cost so far
    final = usage[-1]
    assert (final.input_tokens, final.output_tokens) == (71891, 109)
    assert final.cache_read_tokens == 0 and final.cumulative
    assert final.cost_usd == pytest.approx(0.217308)


def test_gemini_usage_per_model_from_meta_quota() -> None:
    usage = of(replay("acp-gemini.jsonl"), AgentUsage)
    assert [(u.model, u.input_tokens, u.output_tokens) for u in usage] == [
        ("gemini-3.8-flash", 12183, 61), ("auto", 12352, 12)
    ]  # fmt: skip
    assert all(not u.cumulative and u.cost_usd is None for u in usage)
    assert sum(u.input_tokens for u in usage) == 24535  # the quota's total


def test_codex_context_size_updates_are_not_usage() -> None:
    assert of(replay("acp-codex.jsonl"), AgentUsage) == []


def test_opencode_usage_from_the_prompt_response() -> None:
    (usage,) = of(replay("acp-opencode.jsonl"), AgentUsage)
    assert (usage.input_tokens, usage.output_tokens, usage.cost_usd) == (8001, 8, None)


def test_a_refused_tool_is_a_failed_result_and_nothing_changed() -> None:
    events = replay("acp-claude-deny.jsonl")
    (result,) = of(events, AgentToolResult)
    assert not result.ok and "refused" in result.output
    assert of(events, AgentFileChange) == []


def test_codex_escalation_result_is_ok_with_its_output() -> None:
    events = replay("acp-codex-escalate.jsonl")
    (call,) = of(events, AgentToolCall)
    assert call.id == "call_6d5e2f5c" and call.tool == "touch pwned.txt"
    (result,) = of(events, AgentToolResult)
    assert result.ok and result.id == call.id


@pytest.mark.parametrize(
    ("stop", "words"),
    [("max_tokens", "output token limit"), ("refusal", "refused"), ("cancelled", "cancelled"),
     ("max_turn_requests", "limit of model requests"), ("weird", "stopped (weird)")],
)  # fmt: skip
def test_a_stop_reason_that_is_not_end_turn_is_an_error(stop: str, words: str) -> None:
    events = UpdateMapper(relative).finish({"stopReason": stop})
    error, done = events[-2:]
    assert isinstance(error, AgentError) and words in error.message
    assert isinstance(done, AgentDone) and not done.success


def test_a_diff_outside_the_workspace_is_not_a_change_of_the_job() -> None:
    mapper = UpdateMapper(relative)
    diff = {"type": "diff", "path": "/etc/passwd", "oldText": "a", "newText": "b"}
    update = {"sessionUpdate": "tool_call", "toolCallId": "c1", "kind": "edit",
              "status": "completed", "title": "Edit", "content": [diff]}  # fmt: skip
    events = mapper.update(update)
    assert of(events, AgentFileChange) == []
    assert of(events, AgentToolResult)[0].ok


def test_hostile_shapes_do_not_break_the_mapper() -> None:
    mapper = UpdateMapper(relative)
    for update in (
        {}, {"sessionUpdate": 5}, {"sessionUpdate": "tool_call", "toolCallId": ["x"]},
        {"sessionUpdate": "tool_call_update", "toolCallId": "t", "content": "nope"},
        {"sessionUpdate": "tool_call_update", "toolCallId": "t", "content": 5, "rawInput": 7},
        {"sessionUpdate": "agent_message_chunk", "content": "text"},
        {"sessionUpdate": "usage_update", "cost": {"amount": -5, "currency": "USD"}},
        {"sessionUpdate": "usage_update", "cost": {"amount": "1", "currency": "USD"}},
        {"sessionUpdate": "usage_update", "cost": {"amount": 1.5, "currency": "EUR"}},
    ):  # fmt: skip
        for event in mapper.update(update):
            assert not isinstance(event, AgentUsage)
    events = mapper.finish({"stopReason": "end_turn", "usage": {"inputTokens": -3},
                            "_meta": {"quota": {"model_usage": 3}}})  # fmt: skip
    (usage,) = of(events, AgentUsage)
    assert usage.input_tokens == 0

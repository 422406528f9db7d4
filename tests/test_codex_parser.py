"""CodexParser on codex 0.171's recorded `exec --json` output (tests/fixtures/agent-samples,
copied unchanged from the recordings: real program, scripted endpoint)."""

from __future__ import annotations

import json
from pathlib import Path

from logist_server.domain.events import (
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentMessage,
    AgentSession,
    AgentToolCall,
    AgentToolResult,
    AgentUsage,
)
from logist_server.domain.observer import Observer
from logist_server.providers.agents.codex_events import CodexParser

SAMPLES = Path(__file__).parent / "fixtures" / "agent-samples"


def parse(name: str, exit_code: int | None = 0) -> list[AgentEvent]:
    parser = CodexParser()
    data = (SAMPLES / name).read_bytes()
    return parser.feed_lines(data) + parser.finish(exit_code)


def of(events: list[AgentEvent], kind: type[AgentEvent]) -> list[AgentEvent]:
    return [e for e in events if type(e) is kind]


def observed(event: AgentError) -> str | None:
    """The observer pattern the engine would match on this error (message, then detail)."""
    observer = Observer()
    for text in (event.message, event.detail or ""):
        hit = observer.scan(text)
        if hit is not None:
            return hit.pattern.name
    return None


def test_edit_run_session_change_message_usage() -> None:
    events = parse("codex.jsonl")
    assert events[0] == AgentSession(id="01a22c2c-eb92-7391-bd5d-4c48f441dceb")
    assert of(events, AgentFileChange) == [
        AgentFileChange(path="/home/dev/repo/hello.py", action="modify")
    ]
    assert AgentMessage(text="Done: edited the file as requested.") in events
    (usage,) = of(events, AgentUsage)
    assert isinstance(usage, AgentUsage)
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (21222, 0, 123)
    assert usage.cost_usd is None and usage.cumulative is False
    # The unknown model's `error` item is a warning: the run did not fail.
    assert of(events, AgentError) == []


def test_usage_splits_cached_input_and_reasoning_output() -> None:
    line = json.dumps({"type": "turn.completed", "usage": {
        "input_tokens": 1000, "cached_input_tokens": 600, "cache_write_input_tokens": 7,
        "output_tokens": 300, "reasoning_output_tokens": 120}})  # fmt: skip
    (usage,) = CodexParser().feed(line)
    assert usage == AgentUsage(
        input_tokens=400, cache_read_tokens=600, cache_write_tokens=7, output_tokens=180,
        reasoning_tokens=120, cost_usd=None, cumulative=False,
    )  # fmt: skip


def test_hostile_usage_figures_never_go_negative() -> None:
    line = json.dumps({"type": "turn.completed", "usage": {
        "input_tokens": 5, "cached_input_tokens": 900, "output_tokens": -3,
        "reasoning_output_tokens": "lots"}})  # fmt: skip
    (usage,) = CodexParser().feed(line)
    assert isinstance(usage, AgentUsage)
    assert usage.input_tokens == 0 and usage.cache_read_tokens == 5
    assert usage.output_tokens == 0 and usage.reasoning_tokens == 0


def test_command_execution_pairs_call_and_result_by_id() -> None:
    parser = CodexParser()
    started = {
        "type": "item.started",
        "item": {
            "id": "item_3",
            "type": "command_execution",
            "command": "bash -lc ls",
            "aggregated_output": "",
            "status": "in_progress",
        },
    }
    done = {"type": "item.completed", "item": {"id": "item_3", "type": "command_execution",
            "command": "bash -lc ls", "aggregated_output": "a.txt\n", "exit_code": 2,
            "status": "failed"}}  # fmt: skip
    (call,) = parser.feed(json.dumps(started))
    (result,) = parser.feed(json.dumps(done))
    assert call == AgentToolCall(tool="shell", input={"command": "bash -lc ls"}, id="item_3")
    assert result == AgentToolResult(id="item_3", tool="shell", ok=False, output="a.txt\n")


def test_budget_400_is_one_error_with_the_reason_and_the_json_kept() -> None:
    events = parse("budget-refused-400-codex.jsonl", exit_code=1)
    errors = of(events, AgentError)
    assert len(errors) == 1  # turn.failed repeats the error line: not twice
    (error,) = errors
    assert isinstance(error, AgentError)
    assert "Logist budget of -1 tokens exhausted" in error.message
    assert error.message.startswith("the model API refused the request")
    assert error.detail is not None and json.loads(error.detail)["type"] == "error"
    assert observed(error) == "quota"  # insufficient_quota: failed, not retried


def test_retry_notices_are_not_failures_but_the_last_error_is() -> None:
    events = parse("budget-refused-402-codex.jsonl", exit_code=1)
    notices = [e for e in of(events, AgentMessage) if "Reconnecting" in str(e)]
    assert len(notices) == 5
    (error,) = of(events, AgentError)
    assert isinstance(error, AgentError)
    assert "payment required (Error code: 402)" in error.message
    assert of(events, AgentFileChange)  # the edit before the refusal is still reported


def test_401_reads_as_authentication_and_the_observer_agrees() -> None:
    events = parse("codex-401.jsonl", exit_code=1)
    (error,) = of(events, AgentError)
    assert isinstance(error, AgentError)
    assert error.message.startswith("authentication failed (Error code: 401)")
    assert "Incorrect API key provided" in error.message
    assert observed(error) == "auth"


def test_429_after_codex_gave_up_is_a_rate_limit_logist_retries() -> None:
    events = parse("codex-429.jsonl", exit_code=1)
    (error,) = of(events, AgentError)
    assert isinstance(error, AgentError)
    assert error.message.startswith("the model API is rate limiting requests (Error code: 429)")
    assert observed(error) == "rate_limit"


def test_nonzero_exit_without_an_error_line_is_an_error() -> None:
    parser = CodexParser()
    parser.feed('{"type":"thread.started","thread_id":"t1"}')
    (error,) = parser.finish(101)
    assert isinstance(error, AgentError) and "status 101" in error.message


def test_plain_and_broken_lines_are_messages() -> None:
    parser = CodexParser()
    assert parser.feed("Reading additional input from stdin...") == [
        AgentMessage(text="Reading additional input from stdin...")
    ]
    assert parser.feed('{"type": "item.completed", "item": ') == [
        AgentMessage(text='{"type": "item.completed", "item": ')
    ]
    assert parser.feed("[1, 2]") == [AgentMessage(text="[1, 2]")]
    assert parser.feed('{"type":"item.completed","item":{"type":"file_change","changes":7}}') == []


def test_refusal_samples_end_without_error_events() -> None:
    # codex exec never asks: a refused action leaves nothing structured (REAL-PARTS.md).
    for name in ("codex-ask.jsonl", "codex-deny-readonly.jsonl", "codex-escalate.jsonl"):
        events = parse(name)
        assert of(events, AgentError) == [] and len(of(events, AgentUsage)) == 1

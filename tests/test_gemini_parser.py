"""GeminiParser on gemini-cli 0.61's recorded stream-json output (tests/fixtures/agent-samples,
copied unchanged from the recordings: real program, scripted endpoint)."""

from __future__ import annotations

import json
from pathlib import Path

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
from logist_server.domain.observer import Observer
from logist_server.providers.agents.gemini_events import GeminiParser

SAMPLES = Path(__file__).parent / "fixtures" / "agent-samples"


def parse(name: str, exit_code: int | None = 0) -> list[AgentEvent]:
    parser = GeminiParser()
    data = (SAMPLES / name).read_bytes()
    return parser.feed_lines(data) + parser.finish(exit_code)


def of(events: list[AgentEvent], kind: type[AgentEvent]) -> list[AgentEvent]:
    return [e for e in events if type(e) is kind]


def test_edit_run() -> None:
    events = parse("gemini.jsonl")
    assert events[0] == AgentSession(id="f041e656-c0c7-430a-91e6-54d891939e43")
    tool_id = "replace__replace_1796037476303_0"
    (call,) = of(events, AgentToolCall)
    assert isinstance(call, AgentToolCall)
    assert (call.tool, call.id, call.input["file_path"]) == (
        "replace",
        tool_id,
        "/home/dev/repo/hello.py",
    )
    assert of(events, AgentToolResult) == [AgentToolResult(id=tool_id, tool="replace", ok=True)]
    assert of(events, AgentFileChange) == [AgentFileChange(path="/home/dev/repo/hello.py")]
    # The user's own prompt echoed back is not the agent's message.
    assert of(events, AgentMessage) == [AgentMessage(text="Done: edited the file as requested.")]
    assert of(events, AgentUsage) == [
        AgentUsage(input_tokens=25373, output_tokens=90, cost_usd=None, cumulative=False,
                   model="gemini-fake")
    ]  # fmt: skip
    assert events[-1] == AgentDone(success=True) and of(events, AgentError) == []


def test_usage_per_model_cached_apart_and_zero_rows_dropped() -> None:
    stats = {"models": {
        "gemini-a": {"input_tokens": 100, "output_tokens": 5, "cached": 40, "thoughts": 9},
        "gemini-b": {"input_tokens": 0, "output_tokens": 0, "cached": 0},
        "gemini-c": {"input_tokens": 7, "output_tokens": 1, "cached": 99}}}  # fmt: skip
    line = json.dumps({"type": "result", "status": "success", "stats": stats})
    usages = of(GeminiParser().feed(line), AgentUsage)
    assert usages == [
        AgentUsage(input_tokens=60, cache_read_tokens=40, output_tokens=5, reasoning_tokens=9,
                   cost_usd=None, cumulative=False, model="gemini-a"),
        AgentUsage(input_tokens=0, cache_read_tokens=7, output_tokens=1, cost_usd=None,
                   cumulative=False, model="gemini-c"),
    ]  # fmt: skip


def test_budget_400_error_with_reason_and_json() -> None:
    events = parse("budget-refused-400-gemini.jsonl", exit_code=144)
    (error,) = of(events, AgentError)
    assert isinstance(error, AgentError)
    assert error.message.startswith("the model API refused the request (Error code: 400)")
    assert "Logist budget of -1 tokens exhausted" in error.message
    assert error.detail is not None and json.loads(error.detail)["status"] == "error"
    assert events[-1] == AgentDone(success=False)
    assert of(events, AgentUsage) == []  # every model row is zero


def test_error_result_is_an_error_even_when_the_exit_status_is_zero() -> None:
    # The exit status is the HTTP status mod 256: 256 would exit 0. The result says it.
    line = json.dumps({"type": "result", "status": "error", "error": {"type": "unknown",
        "message": '[API Error: {"error":{"code":256,"message":"odd"}}]'}})  # fmt: skip
    parser = GeminiParser()
    events = parser.feed(line) + parser.finish(0)
    (error,) = of(events, AgentError)
    assert isinstance(error, AgentError) and "Error code: 256" in error.message


def test_402_keeps_the_usage_before_it() -> None:
    events = parse("budget-refused-402-gemini.jsonl", exit_code=146)
    assert [u.model for u in of(events, AgentUsage) if isinstance(u, AgentUsage)] == ["gemini-fake"]
    (error,) = of(events, AgentError)
    assert isinstance(error, AgentError) and "Error code: 402" in error.message


def test_401_reads_as_authentication_and_the_observer_agrees() -> None:
    events = parse("gemini-401.jsonl", exit_code=145)
    (error,) = of(events, AgentError)
    assert isinstance(error, AgentError) and error.message.startswith("authentication failed")
    assert "Request had invalid authentication credentials. (UNAUTHENTICATED)" in error.message
    hit = Observer().scan(error.message)
    assert hit is not None and hit.pattern.name == "auth"
    assert of(events, AgentSession) == []  # nothing answered: no session to resume


def test_denied_shell_run_and_missing_result() -> None:
    events = parse("gemini-deny.jsonl")
    assert of(events, AgentToolCall) == [] and of(events, AgentError) == []
    parser = GeminiParser()
    parser.feed('{"type":"init","session_id":"s1"}')
    (error,) = parser.finish(0)  # a run that ends with no `result` did not succeed
    assert isinstance(error, AgentError)


def test_failed_tool_result_is_not_a_file_change() -> None:
    parser = GeminiParser()
    parser.feed(
        json.dumps(
            {
                "type": "tool_use",
                "tool_name": "write_file",
                "tool_id": "w1",
                "parameters": {"file_path": "/r/x.py", "content": "x"},
            }
        )
    )
    events = parser.feed(
        json.dumps(
            {
                "type": "tool_result",
                "tool_id": "w1",
                "status": "error",
                "error": {"type": "x", "message": "denied"},
            }
        )
    )
    assert events == [AgentToolResult(id="w1", tool="write_file", ok=False, output="denied")]


def test_plain_and_broken_lines_are_messages() -> None:
    parser = GeminiParser()
    assert parser.feed("Loaded cached credentials.") == [
        AgentMessage(text="Loaded cached credentials.")
    ]
    assert parser.feed('{"type":"result",') == [AgentMessage(text='{"type":"result",')]


def observed(error: AgentEvent) -> str | None:
    assert isinstance(error, AgentError)
    for text in (error.message, error.detail or ""):
        hit = Observer().scan(text)
        if hit is not None:
            return hit.pattern.name
    return None


def result_error(message: str) -> AgentEvent:
    line = json.dumps({"type": "result", "status": "error",
                       "error": {"type": "unknown", "message": message}})  # fmt: skip
    (error,) = of(GeminiParser().feed(line), AgentError)
    return error


def test_gemini_cli_429_shape_is_a_rate_limit_the_observer_retries() -> None:
    events = parse("gemini-429.jsonl", exit_code=173)
    (error,) = of(events, AgentError)
    assert isinstance(error, AgentError) and "rate limiting" in error.message
    assert observed(error) == "rate_limit"


def test_status_word_shape_maps_to_the_http_status() -> None:
    error = result_error("[API Error: Request had invalid credentials. (Status: UNAUTHENTICATED)]")
    assert isinstance(error, AgentError) and error.message.startswith("authentication failed")
    assert "Request had invalid credentials. (UNAUTHENTICATED)" in error.message
    assert observed(error) == "auth"


def test_plain_api_error_without_a_status_keeps_its_words() -> None:
    error = result_error("[API Error: something odd happened]")
    assert isinstance(error, AgentError)
    assert error.message.startswith("the model API failed: something odd happened")


def test_a_failed_exit_names_the_last_plain_error_line() -> None:
    # gemini-cli 0.61 `--resume=<unknown id>`: this on stderr, no JSON, exit 42.
    parser = GeminiParser()
    parser.feed('Error resuming session: Invalid session identifier "0000".')
    parser.feed("  Use --list-sessions to see available sessions")
    (error,) = parser.finish(42)
    assert isinstance(error, AgentError)
    assert error.message == (
        'gemini exited with status 42: Error resuming session: Invalid session identifier "0000".'
    )


def test_the_session_is_reported_only_once_the_model_answered() -> None:
    # gemini saves no session for a run whose first call failed: resuming it fails
    # ("No previous sessions found for this project"), so a retry must start a new one.
    events = parse("budget-refused-400-gemini.jsonl", exit_code=144)
    assert of(events, AgentSession) == []
    events = parse("gemini.jsonl")
    sessions = of(events, AgentSession)
    assert sessions == [AgentSession(id="f041e656-c0c7-430a-91e6-54d891939e43")]
    assert isinstance(events[0], AgentSession) and isinstance(events[1], AgentToolCall)


def test_a_warning_is_not_an_error() -> None:
    # gemini-cli 0.61 when its loop detection stops a repetitive answer (recorded live).
    line = ('{"type":"error","timestamp":"2026-11-30T18:55:43.231Z","severity":"warning",'
            '"message":"Loop detected, stopping execution"}')  # fmt: skip
    assert GeminiParser().feed(line) == [
        AgentMessage(text="gemini warning: Loop detected, stopping execution")
    ]

"""ClaudeStreamParser on claude-code 2.1.332's recorded `stream-json` output
(tests/fixtures/agent-samples: real program, scripted endpoint; see CLAUDE-RECORDINGS.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
from logist_server.domain.observer import Observer, ObserverHit
from logist_server.providers.agents.claude_parser import BRIDGE_TYPE, ClaudeStreamParser

SAMPLES = Path(__file__).parent / "fixtures" / "agent-samples"


def parse(data: bytes, exit_code: int | None = 0) -> list[AgentEvent]:
    parser = ClaudeStreamParser()
    return parser.feed_lines(data) + parser.finish(exit_code)


def sample(name: str, exit_code: int | None = 0) -> list[AgentEvent]:
    return parse((SAMPLES / name).read_bytes(), exit_code)


def of(events: list[AgentEvent], kind: type[AgentEvent]) -> list[AgentEvent]:
    return [e for e in events if type(e) is kind]


def observed(event: AgentEvent) -> ObserverHit | None:
    """The observer's hit the engine makes of an error (message, then detail)."""
    assert isinstance(event, AgentError)
    observer = Observer()
    for text in (event.message, event.detail or ""):
        hit = observer.scan(text)
        if hit is not None:
            return hit
    return None


def final_usage(events: list[AgentEvent]) -> AgentUsage:
    usage = [e for e in of(events, AgentUsage) if isinstance(e, AgentUsage) and e.cumulative]
    assert len(usage) == 1
    return usage[0]


def test_edit_run_session_calls_results_change_usage_done() -> None:
    events = sample("claude.jsonl")
    assert events[0] == AgentSession(id="c99c6dae-da8e-426c-b465-57beb017d56d")
    calls = of(events, AgentToolCall)
    assert [(c.tool, c.id) for c in calls if isinstance(c, AgentToolCall)] == [
        ("Read", "toolu_f6c01d8106"), ("Edit", "toolu_de2f579f64"),
    ]  # fmt: skip
    results = [r for r in of(events, AgentToolResult) if isinstance(r, AgentToolResult)]
    assert [(r.id, r.tool, r.ok) for r in results] == [
        ("toolu_f6c01d8106", "Read", True), ("toolu_de2f579f64", "Edit", True),
    ]  # fmt: skip
    # The path is made relative to claude's working directory; a Read is no change.
    assert of(events, AgentFileChange) == [AgentFileChange(path="hello.py", action="modify")]
    assert AgentMessage(text="Done: edited the file as requested.") in events
    usage = final_usage(events)
    assert (usage.input_tokens, usage.output_tokens) == (38509, 106)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (0, 0)
    assert usage.cost_usd == pytest.approx(0.156156) and usage.turns == 3
    assert usage.model == "claude-opus-5-5"
    assert events[-1] == AgentDone(success=True, summary="Done: edited the file as requested.")
    assert of(events, AgentError) == []


def test_each_api_response_counts_once_while_claude_works() -> None:
    """Each response's first line gives a usage delta (so limits hold mid-run); the result
    then replaces them with claude's exact totals."""
    events = sample("claude.jsonl")
    deltas = [e for e in of(events, AgentUsage) if isinstance(e, AgentUsage) and not e.cumulative]
    assert [d.input_tokens for d in deltas] == [12742, 12815, 12952]
    assert all(d.model == "claude-opus-5-5" and d.cost_usd is None for d in deltas)
    assert events.index(deltas[-1]) < events.index(final_usage(events))


def test_a_model_without_a_list_price_costs_nothing_until_claude_reports_it() -> None:
    """A name only a proxy knows: no unknown cost mid-run (it would halt a job with a
    cost limit at once); the result's own figure then replaces it."""
    data = (SAMPLES / "claude.jsonl").read_text().replace("claude-opus-5-5", "acme-proxy-model")
    events = parse(data.encode())
    deltas = [e for e in of(events, AgentUsage) if isinstance(e, AgentUsage) and not e.cumulative]
    assert len(deltas) == 3 and all(d.cost_usd == 0.0 for d in deltas)
    assert final_usage(events).cost_usd == pytest.approx(0.156156)


def test_cache_reads_and_writes_and_side_models_are_summed_from_model_usage() -> None:
    result = json.loads((SAMPLES / "claude.jsonl").read_text().splitlines()[-1])
    result["modelUsage"]["claude-haiku-4-5"] = {
        "inputTokens": 300, "outputTokens": 20, "cacheReadInputTokens": 1000,
        "cacheCreationInputTokens": 50, "costUSD": 0.001, "thinkingTokens": 7,
    }  # fmt: skip
    result["modelUsage"]["claude-opus-5-5"]["cacheReadInputTokens"] = 4000
    usage = final_usage(parse(json.dumps(result).encode() + b"\n"))
    assert (usage.input_tokens, usage.output_tokens) == (38509 + 300, 106 + 20)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (5000, 50)
    assert usage.reasoning_tokens == 7 and usage.model == "claude-opus-5-5"
    assert usage.cost_usd == pytest.approx(result["total_cost_usd"])


@pytest.mark.parametrize(
    ("name", "pattern", "words"),
    [
        ("claude-401.jsonl", "auth", "authentication failed"),
        ("claude-429.jsonl", "rate_limit", "rate limited"),
        ("budget-refused-400-claude.jsonl", None, "budget or billing"),
        ("budget-refused-402-claude.jsonl", None, "budget or billing"),
    ],
)
def test_api_errors_are_errors_a_person_and_the_observer_understand(
    name: str, pattern: str | None, words: str
) -> None:
    events = sample(name, exit_code=1)
    errors = of(events, AgentError)
    assert len(errors) == 1, errors  # finish adds no second error for the exit status
    (error,) = errors
    assert isinstance(error, AgentError) and words in error.message
    assert error.detail is not None and json.loads(error.detail)["type"] == "result"
    hit = observed(error)
    if pattern is None:  # a budget refusal: whatever names it, never worth a retry
        assert hit is None or (not hit.transient and hit.status == "failed"), hit
    else:
        assert hit is not None and hit.pattern.name == pattern
    assert of(events, AgentDone) == []


def test_a_retry_claude_makes_itself_is_said_not_an_error() -> None:
    events = sample("claude-429.jsonl", exit_code=1)
    assert any(
        isinstance(e, AgentMessage) and "retries the API call" in e.text and "429" in e.text
        for e in events
    )


@pytest.mark.parametrize("name", ["claude-deny-default.jsonl", "claude-deny-prompts-none.jsonl"])
def test_success_with_denials_logist_did_not_make_is_an_error_naming_them(name: str) -> None:
    """claude says `success` (exit 0) after its own rules refused a shell command: not a
    silent success, an error naming the tool and the command."""
    events = sample(name)
    (error,) = of(events, AgentError)
    assert isinstance(error, AgentError)
    assert "Bash (touch pwned.txt)" in error.message and "incomplete" in error.message
    assert of(events, AgentDone) == []
    assert any(isinstance(e, AgentMessage) and "permission denied (Bash)" in e.text for e in events)


def test_a_denial_the_bridge_made_is_no_error() -> None:
    """The same denial, decided by Logist (its `logist_bridge` line names the tool use)."""
    lines = (SAMPLES / "claude-perm-stdio-deny.jsonl").read_text().splitlines()
    note = {"type": BRIDGE_TYPE, "denied": "toolu_61db0f6b7e",
            "event": {"type": "message", "text": "denied: Bash"}}  # fmt: skip
    lines.insert(3, json.dumps(note))
    events = parse(("\n".join(lines) + "\n").encode())
    assert of(events, AgentError) == [] and isinstance(events[-1], AgentDone)
    assert AgentMessage(text="denied: Bash") in events
    results = [r for r in of(events, AgentToolResult) if isinstance(r, AgentToolResult)]
    assert [(r.tool, r.ok) for r in results] == [("Bash", False)]
    # Without the bridge's line the same output is an error.
    assert of(sample("claude-perm-stdio-deny.jsonl"), AgentError) != []


def test_bidirectional_samples_parse_with_their_control_lines_ignored() -> None:
    for name in ("claude-perm-stdio-allow.jsonl", "claude-ask-stdio.jsonl"):
        events = sample(name)
        assert isinstance(events[-1], AgentDone) and of(events, AgentError) == []
        assert not any(isinstance(e, AgentMessage) and "control_" in e.text for e in events)
    ask = sample("claude-ask-stdio.jsonl")
    (call,) = of(ask, AgentToolCall)
    assert isinstance(call, AgentToolCall) and call.tool == "AskUserQuestion"


def test_the_bridges_question_line_is_a_typed_question() -> None:
    text = "claude wants to run a shell command: ls"
    line = {"type": BRIDGE_TYPE, "event": {"type": "question", "id": "r1", "kind": "permission",
                                           "text": text, "options": ["allow", "deny"]}}  # fmt: skip
    (event,) = parse(json.dumps(line).encode() + b"\n")
    assert event == AgentQuestion(
        text="claude wants to run a shell command: ls", id="r1", kind="permission",
        options=["allow", "deny"],
    )  # fmt: skip


@pytest.mark.parametrize(
    "line",
    [
        b"not json at all",
        b'{"type": "assistant", "message": {"content": "not a list", "usage": [1]}}',
        b'{"type": "user", "message": {"content": [{"type": "tool_result", "content": 5}]}}',
        b'{"type": "result", "modelUsage": {"m": {"inputTokens": -5, "outputTokens": true}}}',
        b'{"type": "logist_bridge", "event": {"type": "nonsense"}}',
        b'{"type": "system", "subtype": "init", "session_id": 12}',
        b"[1, 2, 3]",
        b'{"type": "assistant", "message": {"content": [{"type": "tool_use", "input": 3}]}}',
    ],
)
def test_malformed_lines_never_raise(line: bytes) -> None:
    events = parse(line + b"\n")
    for event in events:
        if isinstance(event, AgentUsage):
            assert event.input_tokens >= 0 and event.output_tokens >= 0


def test_an_exit_without_a_result_is_an_error() -> None:
    lines = (SAMPLES / "claude.jsonl").read_bytes().splitlines(keepends=True)[:3]
    events = parse(b"".join(lines), exit_code=137)
    assert isinstance(events[-1], AgentError) and "before its result" in events[-1].message

"""The cline parser on recorded output of the real cline 3.0.65 (tests/fixtures/
agent-samples): task id, usage per call (totalCost 0 = not reported), tool calls with ids,
the edit's file, the headless approval refusal as a permission question, budget errors."""

from __future__ import annotations

from pathlib import Path

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
from logist_server.providers.agents.cline_parser import ClineParser

SAMPLES = Path(__file__).parent / "fixtures" / "agent-samples"


def parse(name: str, exit_code: int = 0) -> list[AgentEvent]:
    parser = ClineParser()
    return parser.feed_lines((SAMPLES / name).read_bytes()) + parser.finish(exit_code)


def of(events: list[AgentEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def test_a_one_shot_edit() -> None:
    events = parse("cline.jsonl")
    assert of(events, AgentSession) == [AgentSession(id="conv_1796037490040_sz2csus")]
    usages = of(events, AgentUsage)
    assert [(u.input_tokens, u.output_tokens) for u in usages] == [(5665, 38), (5818, 8)]
    # The run's totals are the sum of the calls: nothing counted twice.
    assert sum(u.input_tokens for u in usages) == 11483
    assert all(u.cost_usd is None and not u.cumulative for u in usages)
    (call,) = of(events, AgentToolCall)
    assert (call.tool, call.id, call.input["path"]) == ("editor", "call_eb0a80c2",
                                                        "/home/dev/repo/hello.py")  # fmt: skip
    (result,) = of(events, AgentToolResult)
    assert result.ok and result.id == "call_eb0a80c2" and "Edited" in result.output
    assert of(events, AgentFileChange) == [AgentFileChange(path="/home/dev/repo/hello.py")]
    assert of(events, AgentMessage) == [AgentMessage(text="Done: edited the file as requested.")]
    done = AgentDone(success=True, summary="Done: edited the file as requested.")
    assert of(events, AgentDone) == [done]
    assert not of(events, AgentError) and not of(events, AgentQuestion)


def test_a_refused_tool_is_a_permission_question() -> None:
    events = parse("cline-deny.jsonl")
    (result,) = of(events, AgentToolResult)
    assert not result.ok and "requires approval in a TTY session" in result.output
    (question,) = of(events, AgentQuestion)
    assert question.kind == "permission" and question.id == "call_2a1cdc66"
    assert "run_commands" in question.text and "touch pwned.txt" in question.text
    assert not of(events, AgentFileChange)
    # The recoverable "tool call failed" event is not the run's error.
    assert not of(events, AgentError)


def test_a_budget_refusal_is_an_error() -> None:
    events = parse("budget-refused-400-cline.jsonl", exit_code=1)
    (error,) = of(events, AgentError)
    assert error.message == "Logist budget of -1 tokens exhausted (0 used)"
    assert not of(events, AgentDone) and not of(events, AgentUsage)
    events = parse("budget-refused-402-cline.jsonl", exit_code=1)
    (error,) = of(events, AgentError)
    assert "5703 used" in error.message
    (usage,) = of(events, AgentUsage)  # the call before the refusal is counted
    assert usage.input_tokens == 5665
    assert of(events, AgentFileChange)


def test_a_priced_provider_reports_cost_per_call() -> None:
    parser = ClineParser()
    costs = [
        parser.usage({"inputTokens": 10, "outputTokens": 1, "totalCost": total}).cost_usd
        for total in (0.5, 0.75)
    ]
    assert costs == [0.5, 0.25]


def test_a_command_line_error_and_hostile_lines() -> None:
    parser = ClineParser()
    line = '{"ts":"x","type":"error","message":"JSON output mode requires a prompt argument"}'
    (error,) = parser.feed(line)
    assert isinstance(error, AgentError) and "requires a prompt" in error.message
    for hostile in ("", "warning text", "[]", '{"type":"agent_event","event":[]}',
                    '{"type":"agent_event","event":{"type":"content_end","contentType":"tool"}}',
                    '{"type":"run_result","usage":"x"}'):  # fmt: skip
        parser.feed(hostile)
    assert not parser.finish(0)
    assert of(ClineParser().finish(1), AgentError)

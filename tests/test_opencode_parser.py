"""The opencode parser on recorded output of the real opencode 1.18.33 (tests/fixtures/
agent-samples, recorded against a scripted endpoint): session, tool calls with ids, the edit's
file, usage per model call (cost 0 = not reported), the API error, the `ask` rule's refusal."""

from __future__ import annotations

from pathlib import Path

from logist_server.domain.events import (
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
from logist_server.domain.observer import Observer
from logist_server.providers.agents.opencode_parser import OpencodeParser

SAMPLES = Path(__file__).parent / "fixtures" / "agent-samples"


def parse(name: str, exit_code: int = 0) -> list[AgentEvent]:
    parser = OpencodeParser()
    data = (SAMPLES / name).read_bytes()
    return parser.feed_lines(data) + parser.finish(exit_code)


def of(events: list[AgentEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def test_a_one_shot_edit() -> None:
    events = parse("opencode.jsonl")
    assert of(events, AgentSession) == [AgentSession(id="ses_dd3d2b5aeffefCB7odFDLJ1BQg")]
    calls = of(events, AgentToolCall)
    assert [(c.tool, c.id) for c in calls] == [("read", "call_c766518a"), ("edit", "call_b10e9957")]
    results = of(events, AgentToolResult)
    assert [(r.id, r.ok) for r in results] == [("call_c766518a", True), ("call_b10e9957", True)]
    assert of(events, AgentFileChange) == [AgentFileChange(path="/home/dev/repo/hello.py")]
    usages = of(events, AgentUsage)
    assert [(u.input_tokens, u.output_tokens) for u in usages] == [
        (7781, 17),
        (7894, 41),
        (7996, 8),
    ]
    assert all(not u.cumulative for u in usages)
    # This recording's model had a price in opencode's configuration: its cost is reported.
    assert sum(u.cost_usd or 0 for u in usages) == 0.023598 + 0.024297 + 0.024108
    assert of(events, AgentMessage) == [AgentMessage(text="Done: edited the file as requested.")]
    assert not of(events, AgentError)


def test_a_zero_cost_is_not_reported() -> None:
    events = parse("opencode-deny-ask-rule.jsonl")
    (usage,) = of(events, AgentUsage)
    assert usage.cost_usd is None and usage.input_tokens == 7783


def test_the_ask_rule_refusal_is_a_permission_question() -> None:
    events = parse("opencode-deny-ask-rule.jsonl")
    (result,) = of(events, AgentToolResult)
    assert not result.ok and "rejected permission" in result.output
    (question,) = of(events, AgentQuestion)
    assert question.kind == "permission" and question.id == "call_6eb1d9bd"
    assert "touch pwned.txt" in question.text and question.options == ["allow", "deny"]
    assert not of(events, AgentFileChange)


def test_a_budget_refusal_is_an_error_with_its_status() -> None:
    for name, status in (("budget-refused-400-opencode.jsonl", 400),
                         ("budget-refused-402-opencode.jsonl", 402)):  # fmt: skip
        events = parse(name, exit_code=1)
        (error,) = of(events, AgentError)
        assert error.message.startswith(f"API Error: {status} Logist budget of")
        assert error.detail is not None and '"APIError"' in error.detail
        assert of(events, AgentSession)  # the session id comes with the error line


def test_observer_names_401_and_429_in_the_error_shape() -> None:
    observer = Observer()
    for status, kind in ((401, "auth_failed"), (429, "rate_limited")):
        line = ('{"type":"error","sessionID":"ses_1","error":{"name":"APIError","data":'
                f'{{"message":"scripted","statusCode":{status}}}}}}}')  # fmt: skip
        (error,) = of(OpencodeParser().feed(line), AgentError)
        hit = observer.scan(error.message)
        assert hit is not None and hit.kind == kind, (status, error.message)


def test_hostile_lines_do_not_break_it() -> None:
    parser = OpencodeParser()
    edit = '{"type":"tool_use","part":{"tool":"edit","state":{"status":"completed","input":[]}}}'
    odd = '{"type":"step_finish","part":{"tokens":{"input":-5,"output":true},"cost":"x"}}'
    for line in ("", "not json", "[1,2]", '{"type":"tool_use","part":[]}', edit, odd):
        parser.feed(line)
    (usage,) = of(parser.feed('{"type":"step_finish","part":{"tokens":{"input":-5},"cost":-1}}'),
                  AgentUsage)  # fmt: skip
    assert usage.input_tokens == 0 and usage.cost_usd is None


def test_a_nonzero_exit_without_an_error_line_is_an_error() -> None:
    assert of(OpencodeParser().finish(3), AgentError)
    assert not OpencodeParser().finish(0)

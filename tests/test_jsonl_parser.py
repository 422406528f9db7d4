"""JsonLinesParser on the real output of the mock agent program (recorded live, not invented)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import PYTHON
from logist_server.domain.events import (
    AgentDone,
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentMessage,
    AgentToolCall,
    AgentToolResult,
    AgentUsage,
    event_data,
    event_kind,
)
from logist_server.providers.agents.jsonl import JsonLinesParser


def run_mock(cwd: Path, *args: str) -> tuple[list[str], int]:
    """Run the real mock program as the host runtime does (stderr into stdout)."""
    proc = subprocess.run(
        [PYTHON, "-m", "logist_server.providers.agents.mock_program", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )
    return proc.stdout.splitlines(), proc.returncode


def parse(lines: list[str]) -> tuple[JsonLinesParser, list[AgentEvent]]:
    parser = JsonLinesParser()
    events = [event for line in lines for event in parser.feed(line)]
    return parser, events


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "a.txt").write_text("first\n")
    return tmp_path


def test_edit_scenario_becomes_typed_events(workdir: Path) -> None:
    lines, code = run_mock(
        workdir, "--prompt", "hi\nsecond line", "--scenario", "edit", "--target", "a.txt"
    )
    assert code == 0
    assert (workdir / "a.txt").read_text() == "first\nlogist-mock: hi\n"
    parser, events = parse(lines)  # no job directory: no session kept, none reported
    assert [type(e) for e in events] == [
        AgentMessage,
        AgentToolCall,
        AgentToolResult,
        AgentToolCall,
        AgentToolResult,
        AgentFileChange,
        AgentUsage,
        AgentDone,
    ]
    assert events[0] == AgentMessage(text="Working on: hi")
    assert events[1] == AgentToolCall(tool="read", input={"path": "a.txt"}, id="call_1")
    assert events[2] == AgentToolResult(id="call_1", tool="read", output="6 bytes")
    assert events[3] == AgentToolCall(
        tool="edit", input={"path": "a.txt", "append": "logist-mock: hi"}, id="call_2"
    )
    assert events[4] == AgentToolResult(id="call_2", tool="edit", output="appended 1 line")
    assert events[5] == AgentFileChange(path="a.txt", action="modify")
    usage = events[6]
    assert isinstance(usage, AgentUsage)
    assert (usage.input_tokens, usage.output_tokens, usage.cost_usd) == (120, 40, 0.0012)
    assert usage.cumulative is True
    assert events[7] == AgentDone(success=True, summary="appended one line")
    assert parser.finish(0) == []


def test_edit_without_target_creates_default_file(workdir: Path) -> None:
    lines, code = run_mock(workdir, "--prompt", "make it", "--scenario", "edit")
    assert code == 0
    assert (workdir / "LOGIST_MOCK.md").read_text() == "logist-mock: make it\n"
    _, events = parse(lines)
    changes = [e for e in events if isinstance(e, AgentFileChange)]
    assert changes == [AgentFileChange(path="LOGIST_MOCK.md", action="create")]


def test_crash_scenario_plain_stderr_line_is_a_message_and_error_is_typed(workdir: Path) -> None:
    lines, code = run_mock(workdir, "--prompt", "hi", "--scenario", "crash", "--target", "a.txt")
    assert code == 3
    assert any(not line.startswith("{") for line in lines), lines  # the stderr line
    parser, events = parse(lines)
    messages = [e for e in events if isinstance(e, AgentMessage)]
    assert AgentMessage(text="mock agent: simulated crash (scenario=crash)") in messages
    errors = [e for e in events if isinstance(e, AgentError)]
    assert errors == [AgentError(message="simulated crash (scenario=crash)")]
    # An error was already reported: the non-zero exit adds no second one.
    assert parser.finish(3) == []


def test_finish_adds_an_error_only_when_none_was_seen(workdir: Path) -> None:
    lines, code = run_mock(workdir, "--prompt", "hi", "--scenario", "noop")
    assert code == 0
    parser, events = parse(lines)
    assert events == [
        AgentMessage(text="nothing to do"),
        AgentDone(success=True, summary="no changes"),
    ]
    assert parser.finish(0) == []
    assert parser.finish(None) == []
    assert parser.finish(7) == [AgentError(message="agent exited with status 7")]
    assert parser.finish(-1) == [AgentError(message="agent exited with status -1")]


def test_cost_scenario_usage_climbs(workdir: Path) -> None:
    lines, code = run_mock(
        workdir, "--prompt", "hi", "--scenario", "cost", "--opt", "steps=3", "--opt", "interval=0"
    )
    assert code == 0
    _, events = parse(lines)
    usages = [e for e in events if isinstance(e, AgentUsage)]
    costs = [u.cost_usd or 0.0 for u in usages[:3]]
    assert costs == sorted(costs) and costs[0] > 0
    assert [u.input_tokens for u in usages[:3]] == [1000, 2000, 3000]


def test_cost_scenario_cumulative_totals_never_decrease(workdir: Path) -> None:
    lines, _ = run_mock(
        workdir, "--prompt", "hi", "--scenario", "cost", "--opt", "steps=3", "--opt", "interval=0"
    )
    _, events = parse(lines)
    usages = [e for e in events if isinstance(e, AgentUsage) and e.cumulative]
    costs = [u.cost_usd or 0.0 for u in usages]
    tokens = [u.input_tokens for u in usages]
    assert costs == sorted(costs), costs
    assert tokens == sorted(tokens), tokens


def test_non_json_and_malformed_lines_become_messages() -> None:
    parser = JsonLinesParser()
    assert parser.feed("") == []
    assert parser.feed("   ") == []
    assert parser.feed("plain text output") == [AgentMessage(text="plain text output")]
    assert parser.feed("{not json") == [AgentMessage(text="{not json")]
    assert parser.feed('{"type": "bogus", "x": 1}') == [
        AgentMessage(text='{"type": "bogus", "x": 1}')
    ]
    assert parser.feed('{"type": "message"}') == [AgentMessage(text='{"type": "message"}')]
    # Not an event of Logist's, nor shaped like an error: kept as said.
    assert parser.feed('{"type": "result", "is_error": false, "result": "ok"}') == [
        AgentMessage(text='{"type": "result", "is_error": false, "result": "ok"}')
    ]
    assert not parser.saw_error
    assert parser.finish(2) == [AgentError(message="agent exited with status 2")]


def test_error_line_sets_saw_error() -> None:
    parser = JsonLinesParser()
    assert parser.feed('{"type": "error", "message": "bad"}') == [AgentError(message="bad")]
    assert parser.saw_error
    assert parser.finish(1) == []


def test_event_kind_and_data_for_job_events() -> None:
    usage = AgentUsage(input_tokens=5, output_tokens=6, cost_usd=0.5)
    assert event_kind(usage) == "usage"
    data = event_data(usage)
    assert "type" not in data
    assert data["input_tokens"] == 5 and data["cost_usd"] == 0.5
    assert event_kind(AgentFileChange(path="x")) == "file_change"
    assert event_data(AgentFileChange(path="x")) == {"path": "x", "action": "modify"}


def test_feed_lines_block_gives_the_same_events_as_line_by_line(workdir: Path) -> None:
    lines, _ = run_mock(workdir, "--prompt", "hi", "--scenario", "edit", "--target", "a.txt")
    _, one_by_one = parse(lines)
    block = "".join(line + "\n" for line in lines).encode()
    parser = JsonLinesParser()
    assert parser.feed_lines(block) == one_by_one
    assert not parser.saw_error


def test_feed_lines_with_a_plain_line_and_an_error(workdir: Path) -> None:
    lines, code = run_mock(workdir, "--prompt", "hi", "--scenario", "crash", "--target", "a.txt")
    _, one_by_one = parse(lines)
    parser = JsonLinesParser()
    block = "".join(line + "\n" for line in lines).encode()
    assert parser.feed_lines(block) == one_by_one  # the stderr line is not JSON: still a message
    assert parser.saw_error
    assert parser.finish(code) == []


def test_feed_lines_notices_an_error_in_an_all_json_block() -> None:
    parser = JsonLinesParser()
    block = b'{"type": "message", "text": "a"}\n{"type": "error", "message": "bad"}\n'
    assert parser.feed_lines(block) == [AgentMessage(text="a"), AgentError(message="bad")]
    assert parser.saw_error
    assert parser.finish(1) == []
    other = JsonLinesParser()
    other.feed_lines(b'{"type": "message", "text": "an error, in words only"}\n')
    assert not other.saw_error


# -- errors an agent prints as JSON in its own shape -------------------------------------------
FOREIGN_ERRORS = {
    # Anthropic's error body (claude-code prints it after `API Error: 429`).
    '{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed '
    "your account's rate limit.\"}}": "This request would exceed your account's rate limit.",
    # codex `exec --json`.
    '{"type":"turn.failed","error":{"message":"unexpected status 401 Unauthorized"}}': (
        "unexpected status 401 Unauthorized"
    ),
    # claude-code's `result` of a failed run.
    '{"type":"result","subtype":"success","is_error":true,"result":"Invalid API key"}': (
        "Invalid API key"
    ),
    # OpenAI's error body, and a bare string.
    '{"error":{"message":"Rate limit reached","code":429}}': "Rate limit reached",
    '{"error":"quota exceeded"}': "quota exceeded",
    # Logist's own shape with a field of the wrong type.
    '{"type":"error","message":42}': "the agent reported an error (error)",
}


@pytest.mark.parametrize(("line", "message"), FOREIGN_ERRORS.items(), ids=range(6))
def test_an_error_in_another_json_shape_is_an_error_with_its_json(line: str, message: str) -> None:
    for feed in (JsonLinesParser().feed, lambda text: JsonLinesParser().feed_lines(
            (text + "\n").encode())):  # fmt: skip
        (event,) = feed(line)
        assert event == AgentError(message=message, detail=line)
    parser = JsonLinesParser()
    parser.feed(line)
    assert parser.saw_error and parser.finish(1) == []

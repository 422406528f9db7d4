"""The mock agent program's `fail` and `review` scenarios, and its edits after a review.

The program runs as the host runtime runs it (a subprocess, stderr after stdout into one
stream) in a plain directory, with prompt files written here the way the driver renders
them.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import PYTHON
from logist_server.domain.errors import UsageError
from logist_server.domain.model import AgentSpec, Job, Target
from logist_server.domain.observer import Observer
from logist_server.providers.agents.base import AgentContext
from logist_server.providers.agents.mock import MockAgent
from logist_server.providers.agents.mock_program import FAILURES, REVIEW_COMMENT


class Ran:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.stdout = proc.stdout.splitlines()
        self.stderr = proc.stderr.splitlines()
        events = [json.loads(line) for line in self.stdout]
        # A run with a job directory starts with its session (tests/test_agent_sessions.py).
        has_session = bool(events) and events[0]["type"] == "session"
        self.session = events[0] if has_session else None
        self.events = events[1:] if has_session else events

    def kinds(self) -> list[str]:
        return [e["type"] for e in self.events]

    def edit(self) -> dict[str, Any]:
        """Its (one) `edit` tool call."""
        (call,) = [e for e in self.events if e["type"] == "tool_call" and e["tool"] == "edit"]
        return dict(call)

    def messages(self) -> list[str]:
        return [e["text"] for e in self.events if e["type"] == "message"]


def run_mock(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Ran:
    proc = subprocess.run(
        [PYTHON, "-m", "logist_server.providers.agents.mock_program", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return Ran(proc)


def files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def job_env(job_dir: Path) -> dict[str, str]:
    return {**os.environ, "LOGIST_JOB_DIR": str(job_dir)}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.txt").write_text("first\n")
    return workspace


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "job"
    directory.mkdir()
    return directory


# -- fail ------------------------------------------------------------------------------------
EXPECTED_PATTERN = {
    "rate_limit": "rate_limit",
    "auth": "auth",
    "overflow": "context_overflow",
    "network": "network_agent",
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_fail_prints_the_real_cli_error_and_exits_1(work: Path, kind: str) -> None:
    before = files(work)
    ran = run_mock(
        work, "--prompt", "Add a greeting", "--target", "a.txt",
        "--scenario", "fail", "--opt", f"kind={kind}",
    )  # fmt: skip
    assert ran.code == 1
    assert ran.kinds() == ["message", "tool_call", "error"]
    assert ran.events[0] == {"type": "message", "text": "Working on: Add a greeting"}
    assert ran.events[1] == {
        "type": "tool_call", "id": "call_1", "tool": "read", "input": {"path": "a.txt"}
    }  # fmt: skip
    assert ran.stderr == [FAILURES[kind]]
    assert ran.events[2] == {"type": "error", "message": FAILURES[kind]}
    assert files(work) == before
    # The observer names it, on the raw stderr line and on the error event's text alike.
    hit = Observer().scan(FAILURES[kind])
    assert hit is not None and hit.pattern.name == EXPECTED_PATTERN[kind]


def test_fail_defaults_to_a_rate_limit(work: Path) -> None:
    ran = run_mock(work, "--prompt", "x", "--scenario", "fail")
    assert ran.code == 1
    assert ran.stderr == [FAILURES["rate_limit"]]
    assert FAILURES["rate_limit"].startswith('API Error: 429 {"type":"error"')


def test_fail_times_fails_the_first_runs_then_edits(work: Path, job_dir: Path) -> None:
    args = ("--prompt", "Add a greeting", "--target", "a.txt", "--scenario", "fail")
    opts = ("--opt", "kind=network", "--opt", "times=2")
    for attempt in (1, 2):
        ran = run_mock(work, *args, *opts, env=job_env(job_dir))
        assert ran.code == 1, attempt
        assert (job_dir / "mock-runs").read_text() == f"{attempt}\n"
        assert (work / "a.txt").read_text() == "first\n"
    ran = run_mock(work, *args, *opts, env=job_env(job_dir))
    assert ran.code == 0
    assert ran.kinds() == [
        "message", "tool_call", "tool_result", "tool_call", "tool_result", "file_change",
        "usage", "done",
    ]  # fmt: skip
    assert (work / "a.txt").read_text() == "first\nlogist-mock: Add a greeting\n"
    assert (job_dir / "mock-runs").read_text() == "3\n"
    assert not (work / "mock-runs").exists()


def test_fail_times_zero_never_fails(work: Path, job_dir: Path) -> None:
    ran = run_mock(
        work, "--prompt", "hi", "--scenario", "fail", "--opt", "times=0", env=job_env(job_dir)
    )
    assert ran.code == 0
    assert (work / "LOGIST_MOCK.md").read_text() == "logist-mock: hi\n"


def test_fail_times_needs_the_job_dir(work: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LOGIST_JOB_DIR"}
    ran = run_mock(work, "--prompt", "hi", "--scenario", "fail", "--opt", "times=1", env=env)
    assert ran.code != 0
    assert "LOGIST_JOB_DIR" in "\n".join(ran.stderr)


# -- review ----------------------------------------------------------------------------------
def unified(old: str, new: str, path: str = "a.txt") -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}"
    )
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


def supervisor_prompt(diff: str, fence: str = "```") -> str:
    """A supervisor's rendered prompt, shaped as the contract says."""
    return (
        "You are reviewing a change another agent made for the task below.\n"
        "Do not edit files.\n\n"
        "## Task\nAdd a greeting\n\n---\nFile: a.txt\n\n"
        f"## Proposed change\n{fence}diff\n{diff.rstrip()}\n{fence}\n\n"
        "Check that the change is correct. End your reply with a line `VERDICT: APPROVE` when "
        "it is ready, or `VERDICT: CHANGES` followed by the changes you ask for.\n"
    )


def review(work: Path, rendered: str, *args: str) -> Ran:
    prompt_file = work.parent / "prompt.txt"
    prompt_file.write_text(rendered)
    (work.parent / "user-prompt.txt").write_text("Add a greeting\n")
    return run_mock(
        work,
        "--prompt-file", str(work.parent / "user-prompt.txt"),
        "--rendered-prompt-file", str(prompt_file),
        "--role", "supervisor",
        *args,
    )  # fmt: skip


FIRST_ROUND = unified("first\n", "first\nlogist-mock: Add a greeting\n")
SECOND_ROUND = unified(
    "first\n",
    f"first\nlogist-mock: Add a greeting\nlogist-mock: Add a greeting\n"
    f"logist-mock: addressed: {REVIEW_COMMENT}\n",
)


def test_review_asks_for_changes_then_approves_the_addressed_change(work: Path) -> None:
    before = files(work)
    ran = review(work, supervisor_prompt(FIRST_ROUND))  # no --scenario: the role decides
    assert ran.code == 0
    assert ran.kinds() == ["message", "message", "message", "usage", "done"]
    assert ran.messages() == [
        "Reviewing the proposed change: 1 line(s) added, 0 removed",
        "VERDICT: CHANGES",
        REVIEW_COMMENT,
    ]
    assert ran.events[-1] == {
        "type": "done",
        "success": True,
        "summary": "review: changes requested",
    }

    ran = review(work, supervisor_prompt(SECOND_ROUND))
    assert ran.code == 0
    assert ran.kinds() == ["message", "message", "usage", "done"]
    assert ran.messages() == [
        "Reviewing the proposed change: 3 line(s) added, 0 removed",
        "VERDICT: APPROVE",
    ]
    assert ran.events[-1]["summary"] == "review: approved"
    assert files(work) == before  # a reviewer never edits


def test_review_forced_verdicts(work: Path) -> None:
    ran = review(work, supervisor_prompt(FIRST_ROUND), "--opt", "verdict=approve")
    assert ran.messages()[1:] == ["VERDICT: APPROVE"]
    ran = review(work, supervisor_prompt(SECOND_ROUND), "--opt", "verdict=changes")
    assert ran.messages()[1:] == ["VERDICT: CHANGES", REVIEW_COMMENT]


def test_review_reads_only_added_lines_of_the_fenced_diff(work: Path) -> None:
    # The marker in a removed line, in the task text or after the fence does not count;
    # a longer fence (the diff itself holds ```) and `## ` lines inside it are handled.
    diff = unified(
        "```\nlogist-mock: addressed: old\n```\n",
        "```\n## Heading\n```\n",
        "notes.md",
    )
    rendered = (
        supervisor_prompt(diff, fence="````").replace(
            "## Task\nAdd a greeting", "## Task\nAdd a greeting (logist-mock: addressed)"
        )
        + "\n+logist-mock: addressed: after the fence\n"
    )
    ran = review(work, rendered)
    assert ran.messages() == [
        "Reviewing the proposed change: 1 line(s) added, 1 removed",
        "VERDICT: CHANGES",
        REVIEW_COMMENT,
    ]


def test_review_without_a_proposed_change(work: Path) -> None:
    ran = review(work, "## Task\nAdd a greeting\n\n## Proposed change\n(no change)\n")
    assert ran.messages()[1:] == ["VERDICT: CHANGES", REVIEW_COMMENT]
    ran = review(work, "nothing here")
    assert ran.messages()[1:] == ["VERDICT: CHANGES", REVIEW_COMMENT]


def test_a_worker_role_still_edits_by_default(work: Path) -> None:
    ran = run_mock(work, "--prompt", "hi", "--target", "a.txt", "--role", "worker")
    assert ran.code == 0
    assert (work / "a.txt").read_text() == "first\nlogist-mock: hi\n"


# -- a worker after review -------------------------------------------------------------------
def worker(work: Path, rendered: str, *args: str) -> Ran:
    prompt_file = work.parent / "prompt.txt"
    prompt_file.write_text(rendered)
    (work.parent / "user-prompt.txt").write_text("Add a greeting\nmore detail\n")
    return run_mock(
        work,
        "--prompt-file", str(work.parent / "user-prompt.txt"),
        "--rendered-prompt-file", str(prompt_file),
        "--role", "worker", "--target", "a.txt",
        *args,
    )  # fmt: skip


def test_edit_without_reviewer_comments_is_unchanged(work: Path) -> None:
    ran = worker(work, "Add a greeting\nmore detail\n\n---\nFile: a.txt\n")
    assert ran.code == 0
    assert (work / "a.txt").read_text() == "first\nlogist-mock: Add a greeting\n"
    assert ran.edit()["input"]["append"] == "logist-mock: Add a greeting"


@pytest.mark.parametrize("scenario", ["edit", "slow", "cost"])
def test_edit_after_review_appends_the_addressed_line(work: Path, scenario: str) -> None:
    rendered = (
        "Add a greeting\nmore detail\n\n---\nFile: a.txt\n\n"
        f"## Reviewer comments\n\n{REVIEW_COMMENT}\nAnd a second remark.\n"
    )
    opts = {"slow": ["--opt", "seconds=0.1"], "cost": ["--opt", "steps=1", "--opt", "interval=0"]}
    ran = worker(work, rendered, "--scenario", scenario, *opts.get(scenario, []))
    assert ran.code == 0
    assert (work / "a.txt").read_text() == (
        f"first\nlogist-mock: Add a greeting\nlogist-mock: addressed: {REVIEW_COMMENT}\n"
    )
    edits = [e for e in ran.events if e["type"] == "tool_call" and e["tool"] == "edit"]
    assert edits[0]["input"]["append"] == (
        f"logist-mock: Add a greeting\nlogist-mock: addressed: {REVIEW_COMMENT}"
    )


def test_fail_past_its_times_addresses_comments_too(work: Path, job_dir: Path) -> None:
    rendered = f"Add a greeting\n\n## Reviewer comments\n{REVIEW_COMMENT}\n"
    (work.parent / "prompt.txt").write_text(rendered)
    ran = run_mock(
        work, "--prompt", "Add a greeting", "--target", "a.txt", "--scenario", "fail",
        "--opt", "times=0", "--rendered-prompt-file", str(work.parent / "prompt.txt"),
        env=job_env(job_dir),
    )  # fmt: skip
    assert ran.code == 0
    assert (work / "a.txt").read_text().endswith(f"logist-mock: addressed: {REVIEW_COMMENT}\n")


def test_rounds_with_the_real_role_templates(work: Path) -> None:
    """Worker, supervisor, worker, supervisor through the lead's own rendering."""
    from logist_server.domain import roles  # the project's own module: an import error fails

    supervisor = roles.BUILTIN_ROLES[roles.SUPERVISOR]
    worker_role = roles.BUILTIN_ROLES[roles.WORKER]
    task = "Add a greeting\n\n---\nFile: a.txt\n"
    base = (work / "a.txt").read_text()

    ran = worker(work, roles.render_instructions(worker_role, task))
    assert ran.code == 0
    diff = unified(base, (work / "a.txt").read_text())
    ran = review(work, roles.render_instructions(supervisor, task, diff))
    verdict = roles.parse_verdict("\n".join(ran.messages()))
    assert verdict == ("changes", REVIEW_COMMENT)

    ran = worker(work, roles.render_instructions(worker_role, task, comments=verdict[1]))
    assert ran.code == 0
    diff = unified(base, (work / "a.txt").read_text())
    ran = review(work, roles.render_instructions(supervisor, task, diff))
    assert roles.parse_verdict("\n".join(ran.messages())) == ("approve", "")


# -- the provider ----------------------------------------------------------------------------
def ctx(tmp_path: Path, role: str = "worker", kind: str | None = None) -> AgentContext:
    return AgentContext(
        workspace=str(tmp_path / "ws"),
        job_dir=str(tmp_path / "job"),
        prompt_file=str(tmp_path / "job" / "step-2" / "prompt.txt"),
        rendered_prompt="...",
        answer_file=str(tmp_path / "job" / "step-2" / "answer"),
        role=role,
        step=2,
        role_kind=kind or role,
    )


def job(options: dict[str, str]) -> Job:
    return Job(
        id="j1", prompt="hi", repo="/r", agent=AgentSpec(name="mock", options=options),
        target=Target(file="a.txt"),
    )  # fmt: skip


def arg(argv: list[str], flag: str) -> str:
    """The value given to `flag`, as `--flag value` or `--flag=value`."""
    for index, item in enumerate(argv):
        if item == flag:
            return argv[index + 1]
        if item.startswith(f"{flag}="):
            return item[len(flag) + 1 :]
    raise AssertionError(f"{flag} not in {argv}")


def test_build_passes_the_rendered_prompt_role_and_job_dir(tmp_path: Path) -> None:
    spec = MockAgent().build(job({"scenario": "fail", "times": "1"}), ctx(tmp_path))
    assert arg(spec.argv, "--scenario") == "fail"
    assert arg(spec.argv, "--rendered-prompt-file") == str(tmp_path / "job/step-2/prompt.txt")
    assert arg(spec.argv, "--role") == "worker"
    assert arg(spec.argv, "--prompt-file") == f"{tmp_path / 'job'}/user-prompt.txt"
    assert arg(spec.argv, "--opt") == "times=1"
    assert spec.env["LOGIST_JOB_DIR"] == str(tmp_path / "job")
    assert spec.env["LOGIST_ANSWER_FILE"] == str(tmp_path / "job/step-2/answer")


def test_build_defaults_to_review_for_a_supervisor(tmp_path: Path) -> None:
    spec = MockAgent().build(job({}), ctx(tmp_path, role="supervisor"))
    assert arg(spec.argv, "--scenario") == "review"
    assert arg(spec.argv, "--role") == "supervisor"
    # A supervisor role of another name reviews too: the kind decides, not the name.
    spec = MockAgent().build(job({}), ctx(tmp_path, role="strict-reviewer", kind="supervisor"))
    assert arg(spec.argv, "--scenario") == "review"
    spec = MockAgent().build(job({"scenario": "noop"}), ctx(tmp_path, role="supervisor"))
    assert arg(spec.argv, "--scenario") == "noop"
    spec = MockAgent().build(job({}), ctx(tmp_path))
    assert arg(spec.argv, "--scenario") == "edit"


BAD_OPTIONS: dict[str, tuple[dict[str, str], str]] = {
    "unknown kind": ({"scenario": "fail", "kind": "quota"}, "kind must be one of auth, network"),
    "times negative": ({"scenario": "fail", "times": "-1"}, "times must not be negative"),
    "times not whole": ({"scenario": "fail", "times": "1.5"}, "times must be a whole number"),
    "unknown verdict": ({"scenario": "review", "verdict": "maybe"}, "verdict must be one of"),
    "unknown scenario": ({"scenario": "bogus"}, "unknown mock scenario 'bogus'"),
}


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_validate_options(options: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        MockAgent().validate_options(options)


def test_valid_options_pass() -> None:
    for options in (
        {"scenario": "fail", "kind": "overflow", "times": "2"},
        {"scenario": "review", "verdict": "approve"},
        {},
    ):
        MockAgent().validate_options(options)
    assert "fail" in MockAgent.description and "review" in MockAgent.description

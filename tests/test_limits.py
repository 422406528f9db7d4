"""Limits and questions, end to end with real agent processes: `--max-time` and `--max-turns`
halt a job with the reason and kill its agent before it finishes (from the CLI and from
the editor), and a question only the observer can see (plain text on the agent's terminal)
puts the job in `needs_input` until `job answer` resumes it to review."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    job_events,
    logist_running,
    make_repo,
    parse_json,
    processes_in,
    run_logist,
    show_job,
    wait_for,
)
from plugin_agents import install_plugins
from review_harness import lsp_session


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": b"one\n"})


def halted_run(repo: Path, *args: str) -> dict[str, Any]:
    proc = run_logist("run", "--json", "--prompt", "limited", *args, cwd=repo, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    record: dict[str, Any] = parse_json(proc.stdout)
    assert record["status"] == "halted", record
    return record


def check_killed_before_done(repo: Path, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The agent was stopped: no process left, it never said done, nothing was harvested."""
    assert not processes_in(Path(record["workspace"]["path"]))
    events = job_events(repo, record["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert not any(e["kind"] in ("done", "harvest") for e in events)
    assert [e["data"]["to"] for e in events if e["kind"] == "status"][-1] == "halted"
    assert record["result"]["result_commit"] is None
    return events


def test_max_time_halts_a_slow_agent_with_the_reason(repo: Path, no_stray_agents: None) -> None:
    record = halted_run(
        repo, "--agent-opt", "scenario=slow", "--agent-opt", "seconds=120", "--max-time", "1"
    )
    assert record["limits"]["max_time_s"] == 1
    assert record["status_reason"] == "time limit: ran longer than 1 s"
    assert record["result"]["error"] == record["status_reason"]
    events = check_killed_before_done(repo, record)
    assert any(e["kind"] == "message" for e in events)  # it did run


def test_max_time_also_ends_a_wait_for_an_answer(repo: Path, no_stray_agents: None) -> None:
    """A job waiting in needs_input still runs its agent: the time limit applies there too."""
    record = halted_run(
        repo, "--agent-opt", "scenario=question", "--agent-opt", "question=Anyone?",
        "--max-time", "1",
    )  # fmt: skip
    assert record["status_reason"] == "time limit: ran longer than 1 s"
    events = check_killed_before_done(repo, record)
    tos = [e["data"]["to"] for e in events if e["kind"] == "status"]
    assert tos == ["provisioning", "running", "needs_input", "halted"]


def test_max_turns_halts_at_the_first_report_over_the_limit(
    repo: Path, no_stray_agents: None
) -> None:
    record = halted_run(
        repo,
        "--agent-opt", "scenario=cost", "--agent-opt", "steps=400", "--agent-opt", "interval=0.05",
        "--max-turns", "3",
    )  # fmt: skip
    match = re.fullmatch(r"turn limit: (\d+) turns, limit 3", record["status_reason"])
    assert match, record["status_reason"]
    assert int(match.group(1)) > 3
    assert record["result"]["usage"]["turns"] >= int(match.group(1))
    events = check_killed_before_done(repo, record)
    # The cost limit (none set) played no part: the reason is the turns.
    assert "cost" not in record["status_reason"]
    assert sum(1 for e in events if e["kind"] == "usage") >= 4


def test_max_turns_not_reached_lets_the_job_finish(repo: Path) -> None:
    proc = run_logist(
        "run", "--json", "--prompt", "short", "--agent-opt", "scenario=cost",
        "--agent-opt", "steps=2", "--agent-opt", "interval=0", "--max-turns", "3", cwd=repo,
    )  # fmt: skip
    record = parse_json(proc.stdout)
    assert record["status"] == "review" and record["result"]["usage"]["turns"] == 3


async def test_time_limit_from_the_editor_halts_and_says_so(
    repo: Path, no_stray_agents: None
) -> None:
    async with lsp_session([repo]) as editor:
        created = await editor.request(
            "logist/createJob",
            {
                "prompt": "slow",
                "agent": "mock",
                "agentOptions": {"scenario": "slow", "seconds": "120"},
                "limits": {"maxTimeS": 1},
            },
        )
        event = await editor.wait_status(created["jobId"], {"halted", "review", "failed"})
        assert event["status"] == "halted"
        assert event["data"]["reason"] == "time limit: ran longer than 1 s"
    check_killed_before_done(repo, show_job(repo, created["jobId"]))


# -- a question only the observer sees -------------------------------------------------------
def test_a_question_on_the_terminal_waits_in_needs_input_until_answered(
    repo: Path, tmp_path: Path, no_stray_agents: None
) -> None:
    env = install_plugins(tmp_path / "plugins")
    with logist_running(
        "run", "--json", "--agent", "asker", "--prompt", "ask", cwd=repo, env=env
    ) as runner:
        job = wait_for(lambda: job_in(repo, env, "needs_input"), timeout=30, interval=0.1)
        assert job["status_reason"] == "the agent is waiting for an answer on its terminal"
        assert runner.poll() is None  # the run waits with its agent
        question = [e for e in job_events(repo, job["id"]) if e["kind"] == "question"]
        assert len(question) == 1
        assert question[0]["data"]["pattern"] == "question_yes_no"
        assert "Overwrite ASKED.md? [y/n]" in question[0]["data"]["text"]
        run_logist("job", "answer", job["id"], "yes please", cwd=repo, env=env)
        out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert parse_json(out)["status"] == "review"
    events = job_events(repo, job["id"])
    tos = [e["data"]["to"] for e in events if e["kind"] == "status"]
    assert tos == ["provisioning", "running", "needs_input", "running", "review"]
    diff = run_logist("job", "diff", job["id"], cwd=repo, env=env).stdout
    assert "+answered: yes please" in diff


def job_in(repo: Path, env: dict[str, str], status: str) -> dict[str, Any] | None:
    listed = parse_json(run_logist("job", "list", "--json", cwd=repo, env=env).stdout)
    for row in listed:
        if row["status"] == status:
            return show_job(repo, row["id"])
    return None


async def test_a_terminal_question_reaches_the_editor_and_an_answer_resumes_it(
    repo: Path, tmp_path: Path, no_stray_agents: None
) -> None:
    import os

    env = install_plugins(tmp_path / "plugins")
    async with lsp_session([repo], env={**os.environ, **env}) as editor:
        created = await editor.request("logist/createJob", {"prompt": "ask", "agent": "asker"})
        job_id = created["jobId"]
        event = await editor.wait_status(job_id, {"needs_input", "review", "failed"})
        assert event["status"] == "needs_input"
        assert event["data"]["reason"] == "the agent is waiting for an answer on its terminal"
        questions = [
            e for e in editor.events if e.get("jobId") == job_id and e.get("kind") == "question"
        ]
        assert len(questions) == 1 and "[y/n]" in questions[0]["data"]["text"]
        run_logist("job", "answer", job_id, "from the terminal", cwd=repo, env=env)
        event = await editor.wait_status(job_id, {"review", "failed"})
        assert event["status"] == "review", event
    diff = run_logist("job", "diff", job_id, cwd=repo, env=env).stdout
    assert "+answered: from the terminal" in diff

"""Agent sessions: a session id is an event stored on the step; a retry, a supervisor's
rework round, a second review and an answer resume it where the provider can, and the
step's events say so where it cannot.

The mock agent keeps real session state across runs (in the job's directory); `--resume`
continues it and fails, as claude-code does, for a session it does not know. End to end
through the real `logist` CLI on real git repositories, and a provider without
`supports_resume` installed from an entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import PYTHON, job_events, parse_json, run_job, run_logist, show_job
from logist_server.domain.model import AgentSpec, Job, PendingQuestion, Step
from logist_server.domain.sessions import continuation, resume_event, why_next

# -- which session the next step continues (the job's record alone) ---------------------------


def job_with(*steps: Step, question: PendingQuestion | None = None) -> Job:
    return Job(id="j", prompt="p", repo="/r", agent=AgentSpec(name="mock"), steps=list(steps),
               question=question)  # fmt: skip


def step(number: int, role: str = "worker", agent: str = "mock", **fields: Any) -> Step:
    return Step(number=number, role=role, agent=agent, **fields)


def test_a_first_step_starts_a_new_session_and_says_nothing() -> None:
    plan = continuation(job_with(), "worker", "mock", supports_resume=True)
    assert (plan.why, plan.session, plan.note, plan.history) == ("start", None, None, ())
    assert resume_event(1, plan) is None


def test_a_retry_resumes_the_failed_steps_session() -> None:
    job = job_with(step(1, outcome="retry", session_id="s-1"))
    plan = continuation(job, "worker", "mock", supports_resume=True)
    assert (plan.why, plan.session) == ("retry", "s-1")
    assert resume_event(2, plan) == {"step": 2, "why": "retry", "resumed": True, "session": "s-1"}
    assert [p.session_id for p in plan.history] == ["s-1"]


def test_a_rework_round_resumes_the_workers_session_and_a_review_the_supervisors() -> None:
    worker = step(1, outcome="done", session_id="w-1")
    review = step(2, role="supervisor", outcome="done", session_id="s-1", verdict="changes")
    plan = continuation(job_with(worker, review), "worker", "mock", supports_resume=True)
    assert (plan.why, plan.session) == ("rework", "w-1")
    rework = step(3, outcome="done", session_id="w-1", resumed_session="w-1")
    plan = continuation(job_with(worker, review, rework), "supervisor", "mock", True)
    assert (plan.why, plan.session) == ("review", "s-1")
    # Discarded steps (a restep went back over them) are not continued.
    gone = step(3, outcome="discarded", session_id="w-gone")
    plan = continuation(job_with(worker, review, gone), "worker", "mock", True)
    assert plan.session == "w-1"


def test_an_answer_resumes_the_asking_steps_session_with_the_answer() -> None:
    question = PendingQuestion(text="Which?", step=1, asked_at=0.0, answer="this one")
    job = job_with(step(1, outcome="asked", session_id="s-9"), question=question)
    assert why_next(job) == "answer"
    plan = continuation(job, "worker", "mock", supports_resume=True)
    assert (plan.why, plan.session, plan.answer) == ("answer", "s-9", "this one")


def test_a_provider_that_cannot_resume_gets_a_note_not_silence() -> None:
    job = job_with(step(1, outcome="retry", session_id="s-1"))
    plan = continuation(job, "worker", "mock", supports_resume=False)
    assert plan.session is None and plan.note is not None
    assert "cannot resume" in plan.note
    event = resume_event(2, plan)
    assert event is not None and event["resumed"] is False and event["reason"] == plan.note


def test_a_failover_does_not_hand_one_agents_session_to_another() -> None:
    job = job_with(step(1, agent="mock", outcome="failover", session_id="s-1"))
    plan = continuation(job, "worker", "other", supports_resume=True)
    assert plan.why == "failover" and plan.session is None
    assert plan.note is not None and "belongs to agent 'mock'" in plan.note


# -- the mock program keeps its sessions ------------------------------------------------------
def mock(cwd: Path, job_dir: Path | None, *args: str) -> tuple[int, list[dict[str, Any]]]:
    env = {k: v for k, v in os.environ.items() if k != "LOGIST_JOB_DIR"}
    if job_dir is not None:
        env["LOGIST_JOB_DIR"] = str(job_dir)
    proc = subprocess.run(
        [PYTHON, "-m", "logist_server.providers.agents.mock_program", "--prompt", "hi", *args],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines()]


def test_the_mock_resumes_its_session_and_keeps_state_across_runs(tmp_path: Path) -> None:
    code, events = mock(tmp_path, tmp_path, "--scenario", "noop")
    assert code == 0 and events[0]["type"] == "session" and "resumed" not in events[0]
    session = events[0]["id"]
    state = tmp_path / "mock-sessions" / f"{session}.json"
    assert json.loads(state.read_text())["runs"] == 1
    code, events = mock(tmp_path, tmp_path, "--scenario", "noop", f"--resume={session}")
    assert code == 0
    assert events[0] == {"type": "session", "id": session, "resumed": True}
    assert json.loads(state.read_text())["runs"] == 2


@pytest.mark.parametrize("session", ["no-such-session", "../../etc/passwd", "x" * 65])
def test_the_mock_fails_like_claude_on_a_session_it_does_not_know(
    tmp_path: Path, session: str
) -> None:
    code, events = mock(tmp_path, tmp_path, "--scenario", "edit", f"--resume={session}")
    assert code == 1
    assert events == [
        {"type": "error", "message": f"No conversation found with session ID: {session}"}
    ]
    assert not (tmp_path / "LOGIST_MOCK.md").exists()


def test_without_a_job_directory_the_mock_keeps_nothing_and_resumes_nothing(
    tmp_path: Path,
) -> None:
    code, events = mock(tmp_path, None, "--scenario", "noop")
    assert code == 0 and "session" not in [e["type"] for e in events]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    code, events = mock(tmp_path, tmp_path, "--scenario", "noop")
    code, events = mock(tmp_path, None, "--scenario", "noop", f"--resume={events[0]['id']}")
    assert code == 1 and events[0]["type"] == "error"


# -- end to end: the real CLI, the real mock, real repositories -------------------------------
def events_of(repo: Path, job_id: str, kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in job_events(repo, job_id) if e["kind"] == kind]


def argv_of(repo: Path, job_id: str, number: int) -> list[str]:
    """The command line step `number` ran (its `step`/`status` event)."""
    for event in job_events(repo, job_id):
        if event["data"].get("step") == number and "argv" in event["data"]:
            return list(event["data"]["argv"])
    raise AssertionError(f"no command line recorded for step {number}")


def mock_state(repo: Path, job_id: str, session: str) -> dict[str, Any]:
    path = repo / ".logist" / "jobs" / job_id / "mock-sessions" / f"{session}.json"
    state: dict[str, Any] = json.loads(path.read_text())
    return state


def test_a_retry_resumes_the_session_the_failed_step_started(repo: Path) -> None:
    record = run_job(repo, "--file", "a.txt", "--prompt", "retry me", "--agent-opt",
                     "scenario=fail", "--agent-opt", "times=1", "--retries", "1")  # fmt: skip
    assert record["status"] == "review"
    first, second = show_job(repo, record["id"])["steps"]
    session = first["session_id"]
    assert session and first["outcome"] == "retry" and first["why"] == "start"
    assert (second["why"], second["resumed_session"], second["session_id"]) == (
        "retry", session, session)  # fmt: skip
    assert f"--resume={session}" in argv_of(repo, record["id"], 2)
    assert not any(a.startswith("--resume") for a in argv_of(repo, record["id"], 1))
    assert events_of(repo, record["id"], "resume") == [
        {"step": 2, "why": "retry", "resumed": True, "session": session}
    ]
    # The agent itself continued it: it says so, and its session state counted both runs.
    assert {"id": session, "resumed": True} in events_of(repo, record["id"], "session")
    assert mock_state(repo, record["id"], session)["runs"] == 2


def test_supervisor_rounds_resume_the_workers_and_the_supervisors_sessions(repo: Path) -> None:
    record = run_job(repo, "--file", "a.txt", "--prompt", "review me", "--supervisor")
    assert record["status"] == "review"
    steps = show_job(repo, record["id"])["steps"]
    assert [(s["role"], s["why"], s["verdict"]) for s in steps] == [
        ("worker", "start", None),
        ("supervisor", "review", "changes"),
        ("worker", "rework", None),
        ("supervisor", "review", "approve"),
    ]
    worker, supervisor = steps[0]["session_id"], steps[1]["session_id"]
    assert worker and supervisor and worker != supervisor
    assert [s["resumed_session"] for s in steps] == [None, None, worker, supervisor]
    assert [s["session_id"] for s in steps] == [worker, supervisor, worker, supervisor]
    assert f"--resume={worker}" in argv_of(repo, record["id"], 3)
    assert f"--resume={supervisor}" in argv_of(repo, record["id"], 4)
    assert mock_state(repo, record["id"], worker)["runs"] == 2


def test_a_provider_that_cannot_resume_says_so_in_the_steps_events(
    repo: Path, tmp_path: Path
) -> None:
    """An agent from an entry point that reports a session but not `supports_resume`."""
    from contract_plugins import install_contract_plugins

    env = install_contract_plugins(tmp_path / "plugins")
    proc = run_logist("run", "--json", "--agent", "noresume", "--prompt", "go", "--retries", "1",
                      cwd=repo, env=env, check=False)  # fmt: skip
    record = parse_json(proc.stdout)
    assert record["status"] == "review", proc.stderr
    first, second = show_job(repo, record["id"])["steps"]
    assert first["session_id"] == "plain-session-1" and first["outcome"] == "retry"
    assert second["why"] == "retry" and second["resumed_session"] is None
    assert second["session_id"] == "plain-session-2"
    (resume,) = events_of(repo, record["id"], "resume")
    assert resume["step"] == 2 and resume["resumed"] is False
    assert "agent 'noresume' cannot resume a session" in resume["reason"]
    assert not any(a.startswith("--resume") for a in argv_of(repo, record["id"], 2))
    assert (repo / "DONE.md").exists() is False  # in the workspace, not the user's tree


def test_tool_calls_and_their_results_pair_by_id_in_the_job_log(repo: Path) -> None:
    record = run_job(repo, "--file", "a.txt", "--prompt", "pair them")
    events = job_events(repo, record["id"])
    calls = [e["data"] for e in events if e["kind"] == "tool_call"]
    results = [e["data"] for e in events if e["kind"] == "tool_result"]
    assert [c["tool"] for c in calls] == ["read", "edit"]
    assert [r["id"] for r in results] == [c["id"] for c in calls]  # each ends its own call
    assert len({c["id"] for c in calls}) == 2 and all(r["ok"] for r in results)
    seq_of = {(e["kind"], e["data"].get("id")): e["seq"] for e in events}
    assert all(seq_of[("tool_call", c["id"])] < seq_of[("tool_result", c["id"])] for c in calls)

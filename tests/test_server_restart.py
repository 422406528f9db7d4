"""Killing the language server (SIGKILL) while its jobs run, then starting a new one: the new
server re-attaches to the agents that kept running, every job reaches review, and no event
is lost or doubled (each job's log is gapless from seq 1, each agent line recorded once).

The agents ask a question and exit (as real CLIs do headless), so the jobs certainly wait in
`needs_input` when the server dies, whatever the machine's load; the answers come after the
restart or while no server runs, and the new server resumes each agent's session with its
answer in a second step."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from pygls.uris import from_fs_path

from conftest import (
    LOGIST,
    job_events,
    make_repo,
    processes_in,
    run_logist,
    show_job,
    wait_for,
)
from jsonrpc_raw import RawClient

FILES = ("a.txt", "b.txt", "c.txt")


def start_server(repo: Path) -> RawClient:
    client = RawClient([str(LOGIST), "serve"], env=dict(os.environ))
    answer = client.initialize(repo)
    assert "result" in answer, answer
    return client


def create_asking_job(client: RawClient, repo: Path, name: str) -> str:
    answer = client.request(
        "logist/createJob",
        {
            "prompt": f"survive {name}",
            "uri": from_fs_path(str(repo / name)),
            "agent": "mock",
            "agentOptions": {"scenario": "question", "question": f"Which {name}?"},
        },
    )
    assert "result" in answer, answer
    return str(answer["result"]["jobId"])


def statuses(repo: Path, job_ids: list[str]) -> set[str]:
    return {show_job(repo, j)["status"] for j in job_ids}


def notified_seqs(client: RawClient, job_id: str) -> list[int]:
    """Every seq the client was told about for this job (a coalesced run covers a range)."""
    seqs: list[int] = []
    for note in client.notifications:
        if note.get("method") != "logist/jobEvent":
            continue
        params: dict[str, Any] = note["params"]
        if params["jobId"] == job_id:
            seqs += range(params.get("firstSeq", params["seq"]), params["seq"] + 1)
    return seqs


@pytest.mark.parametrize("answered", ["after the restart", "while no server runs"])
def test_sigkill_the_server_while_jobs_run_then_a_new_server_finishes_them(
    tmp_path: Path, no_stray_agents: None, answered: str
) -> None:
    """Answered while no server runs, the agents finish and exit unobserved: the new
    server must read everything they wrote from their output files."""
    files = {name: f"{name}\n".encode() for name in FILES}
    repo = make_repo(tmp_path / "repo", {**files, "logist.yml": b"concurrency: 3\n"})
    first = start_server(repo)
    try:
        job_ids = [create_asking_job(first, repo, name) for name in FILES]
        wait_for(lambda: statuses(repo, job_ids) == {"needs_input"}, timeout=60, interval=0.1)
        # A fourth job waits in the queue behind the three (concurrency 3).
        answer = first.request("logist/createJob", {"prompt": "queued", "agent": "mock"})
        queued = str(answer["result"]["jobId"])
        assert show_job(repo, queued)["status"] == "pending"
        assert first.proc is not None
        first.proc.send_signal(signal.SIGKILL)
        assert first.proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.proc is not None and first.proc.poll() is None:
            first.proc.kill()
            first.proc.wait()
    # Nobody settled them: the server died with them waiting for their answers.
    assert statuses(repo, job_ids) == {"needs_input"}
    assert show_job(repo, queued)["status"] == "pending"

    def answer_all() -> None:
        for job_id, name in zip(job_ids, FILES, strict=True):
            run_logist("job", "answer", job_id, f"answer {name}", cwd=repo)

    if answered == "while no server runs":
        answer_all()
        workspaces = [Path(show_job(repo, j)["workspace"]["path"]) for j in job_ids]
        wait_for(lambda: not any(processes_in(w) for w in workspaces), timeout=60)
        assert statuses(repo, job_ids) == {"running"}  # finished, but nobody saw it yet
    second = start_server(repo)
    try:
        if answered == "after the restart":
            answer_all()
        wait_for(
            lambda: all(
                show_job(repo, j)["status"] not in ("running", "pending", "needs_input")
                for j in job_ids
            ),
            timeout=90,
            interval=0.2,
        )
        wait_for(lambda: show_job(repo, queued)["status"] == "review", timeout=60, interval=0.2)
        for job_id in job_ids:
            final = show_job(repo, job_id)
            assert final["status"] == "review", (job_id, final["status"], final["status_reason"])
        # The new server streamed each job from where it picked it up to the end, gapless.
        last = {j: job_events(repo, j)[-1]["seq"] for j in job_ids}
        wait_for(
            lambda: all(notified_seqs(second, j)[-1:] == [last[j]] for j in job_ids),
            timeout=30,
        )
        for job_id in job_ids:
            seqs = notified_seqs(second, job_id)
            assert seqs == list(range(seqs[0], last[job_id] + 1)), (job_id, seqs)
    finally:
        second.close()

    for job_id, name in zip(job_ids, FILES, strict=True):
        events = job_events(repo, job_id)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        # One agent per step (the question's, the answer's), none started twice; each of
        # its lines exactly once; the answer resumed the session the question was asked in.
        assert [e["data"]["step"] for e in events if e["kind"] == "started"] == [1, 2]
        steps = show_job(repo, job_id)["steps"]
        assert steps[1]["resumed_session"] == steps[0]["session_id"] is not None
        said = [(e["kind"], e["data"].get("text")) for e in events if "text" in e["data"]]
        assert said == [
            ("question", f"Which {name}?"),
            ("message", f"got the answer: answer {name}"),
            ("message", f"Working on: survive {name}"),
        ]
        tos = [e["data"]["to"] for e in events if e["kind"] == "status"]
        assert tos == ["provisioning", "running", "needs_input", "running", "review"]
        diff = run_logist("job", "diff", job_id, cwd=repo).stdout
        assert f"+logist-mock: survive {name}" in diff
    tos = [e["data"]["to"] for e in job_events(repo, queued) if e["kind"] == "status"]
    assert tos == ["provisioning", "running", "review"]

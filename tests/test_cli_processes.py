"""Processes: cancel of a hanging agent leaves no process behind; several `logist` at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest
from conftest import (
    PYTHON,
    job_events,
    list_jobs,
    parse_json,
    parse_json_lines,
    popen_logist,
    processes_in,
    review_record,
    run_logist,
    show_job,
    wait_for,
)

from logist_server.engine import Engine
from logist_server.errors import JobBusyError
from logist_server.locks import DriverLock, is_locked
from logist_server.requests import JobRequest
from logist_server.store import JobStore

pytestmark = pytest.mark.usefixtures("no_stray_agents")


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def running_job(repo: Path) -> dict[str, Any] | None:
    """The running job as `logist job list --json` shows it."""
    jobs = list_jobs(repo)
    return next((j for j in jobs if j["status"] == "running"), None)


def job_in(repo: Path, status: str, events_of_kind: str | None = None) -> dict[str, Any] | None:
    """A job in `status` read straight from the store (cheap polling while a job runs)."""
    if not (repo / ".logist" / "logist.db").exists():
        return None
    store = JobStore(repo)
    try:
        for job in store.list_jobs():
            if job.status != status:
                continue
            if events_of_kind and not any(e.kind == events_of_kind for e in store.events(job.id)):
                continue
            return dict(msgspec.to_builtins(job))
        return None
    finally:
        store.close()


def test_cancel_of_a_hanging_job_from_another_process_leaves_no_process(repo: Path) -> None:
    runner = popen_logist(
        "run",
        "--json",
        "--file",
        "a.txt",
        "--prompt",
        "hang",
        "--agent-opt",
        "scenario=hang",
        cwd=repo,
    )
    try:
        job = wait_for(lambda: running_job(repo), timeout=20)
        workspace = Path(job["workspace"]["path"])

        def agent_processes() -> list[psutil.Process] | None:
            procs = processes_in(workspace)
            sleeps = [p for p in procs if p.cmdline() == ["sleep", "3600"]]
            return procs if sleeps else None

        # The mock and its `sleep 3600` helper are working in the job's workspace.
        victims = wait_for(agent_processes, timeout=20)
        sleeper = next(p for p in victims if p.cmdline() == ["sleep", "3600"])
        assert runner.poll() is None

        cancel = run_logist("job", "cancel", job["id"], "--json", cwd=repo)
        assert parse_json(cancel.stdout)["status"] == "cancelled"

        out, _err = runner.communicate(timeout=20)
        assert runner.returncode != 0
        assert parse_json(out)["status"] == "cancelled"
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()

    psutil.wait_procs(victims, timeout=2)
    assert not alive(sleeper), "the agent's child `sleep 3600` survived the cancel"
    assert [p for p in victims if alive(p)] == []
    assert processes_in(workspace) == []
    record = show_job(repo, job["id"])
    assert record["status"] == "cancelled"
    assert record["status_reason"] == "cancelled by user"
    statuses = [e["data"]["to"] for e in job_events(repo, job["id"]) if e["kind"] == "status"]
    assert statuses[-1] == "cancelled"
    assert "running" in statuses
    # Cancelling a settled job is bad input.
    again = run_logist("job", "cancel", job["id"], cwd=repo, check=False)
    assert again.returncode == 2 and "already cancelled" in again.stderr


def test_two_runs_at_once_in_the_same_repository(repo: Path) -> None:
    first = popen_logist(
        "run",
        "--json",
        "--file",
        "a.txt",
        "--prompt",
        "first",
        "--agent-opt",
        "scenario=slow",
        "--agent-opt",
        "seconds=0.5",
        cwd=repo,
    )
    second = popen_logist(
        "run",
        "--json",
        "--file",
        "b.txt",
        "--prompt",
        "second",
        "--agent-opt",
        "scenario=slow",
        "--agent-opt",
        "seconds=0.5",
        cwd=repo,
    )
    results = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=60)
        results.append(review_record(proc.returncode, out, err))
    assert [r["status"] for r in results] == ["review", "review"]
    # They really ran at the same time: the agents' lifetimes overlap.
    (s1, f1), (s2, f2) = [
        (r["steps"][0]["started_at"], r["steps"][0]["finished_at"]) for r in results
    ]
    assert s1 < f2 and s2 < f1
    ids = {r["id"] for r in results}
    assert len(ids) == 2
    assert {j["id"] for j in list_jobs(repo)} == ids
    for job_id in ids:
        events = job_events(repo, job_id)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert all(e["job_id"] == job_id for e in events)
        assert events[-1]["kind"] == "status" and events[-1]["data"]["to"] == "review"
    for result in results:
        run_logist("job", "accept", result["id"], cwd=repo)
    assert (repo / "a.txt").read_text().endswith("logist-mock: first\n")
    assert (repo / "b.txt").read_text().endswith("logist-mock: second\n")


_DRIVE = """
import asyncio, sys
from pathlib import Path
from logist_server.engine import Engine
from logist_server.errors import JobBusyError
try:
    job = asyncio.run(Engine.for_path(Path(sys.argv[1])).drive(sys.argv[2]))
except JobBusyError as exc:
    print("busy:", exc)
    sys.exit(75)
print("drove:", job.status)
"""


def test_a_job_driven_by_one_process_is_refused_to_others(repo: Path) -> None:
    runner = popen_logist(
        "run",
        "--json",
        "--prompt",
        "slow one",
        "--agent-opt",
        "scenario=slow",
        "--agent-opt",
        "seconds=6",  # long enough for two more processes under load
        cwd=repo,
    )
    try:
        job = wait_for(lambda: job_in(repo, "running"), timeout=20)
        follower = popen_logist("job", "log", job["id"], "--follow", "--json", cwd=repo)
        # A second driver in another process is refused by the driver lock.
        other = subprocess.run(
            [PYTHON, "-c", _DRIVE, str(repo), job["id"]],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert other.returncode == 75, other.stdout + other.stderr
        assert "being driven by another process" in other.stdout
        # Deleting it from the CLI is refused too (exit 1, one line) and changes nothing.
        refused = run_logist("job", "delete", job["id"], cwd=repo, check=False)
        assert refused.returncode == 1
        assert len(refused.stderr.splitlines()) == 1
        assert "another process" in refused.stderr
        out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    review_record(runner.returncode, out, err)
    events = job_events(repo, job["id"])
    # `job log --follow`, started while the job ran, ends once it settles, with every event.
    followed, _ = follower.communicate(timeout=10)
    assert follower.returncode == 0
    assert parse_json_lines(followed) == events
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    # Exactly one driver: one provisioning and one review, no second start.
    tos = [e["data"]["to"] for e in events if e["kind"] == "status"]
    assert tos == ["provisioning", "running", "review"]
    assert sum(1 for e in events if e["kind"] == "started") == 1


_HOLD = """
import sys, time
from pathlib import Path
from logist_server.locks import DriverLock
lock = DriverLock(Path(sys.argv[1]))
assert lock.try_acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_driver_lock_held_by_another_process_makes_drive_raise_busy(repo: Path) -> None:
    engine = Engine.for_path(repo)
    job = engine.create_job(JobRequest(prompt="locked out", cwd=str(repo)))
    lock_path = engine.store.lock_path(job.id)
    holder = subprocess.Popen(
        [PYTHON, "-c", _HOLD, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert is_locked(lock_path)
        assert not DriverLock(lock_path).try_acquire()
        events_before = engine.store.events(job.id)
        with pytest.raises(JobBusyError, match="another process"):
            asyncio.run(engine.drive(job.id))
        assert engine.store.get(job.id).status == "pending"
        assert engine.store.events(job.id) == events_before
        # The CLI refuses to delete it meanwhile (exit 1).
        assert run_logist("job", "delete", job.id, cwd=repo, check=False).returncode == 1
        assert engine.store.get(job.id).id == job.id
    finally:
        holder.communicate(input="", timeout=10)
    # The lock dies with its holder: now this process may drive the job.
    assert not is_locked(lock_path)
    done = asyncio.run(engine.drive(job.id))
    assert done.status == "review", (done.status_reason, done.result.error)
    engine.store.close()


def agent_in(workspace: Path) -> list[psutil.Process] | None:
    """The mock's processes in `workspace`, once its `sleep 3600` helper has started."""
    procs = processes_in(workspace)
    return procs if any(p.cmdline() == ["sleep", "3600"] for p in procs) else None


def start_hanging_job(repo: Path) -> tuple[subprocess.Popen[str], dict[str, Any], Path, list[Any]]:
    runner = popen_logist(
        "run", "--json", "--prompt", "hang", "--agent-opt", "scenario=hang", cwd=repo
    )
    job = wait_for(lambda: job_in(repo, "running"), timeout=20)
    workspace = Path(job["workspace"]["path"])
    victims = wait_for(lambda: agent_in(workspace), timeout=20)
    return runner, job, workspace, victims


def test_ctrl_c_of_logist_run_cancels_the_job_and_its_processes(repo: Path) -> None:
    runner, job, workspace, victims = start_hanging_job(repo)
    try:
        runner.send_signal(signal.SIGINT)
        _out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 130
    assert f"cancelling job {job['id']}" in err
    assert "Traceback" not in err
    psutil.wait_procs(victims, timeout=2)
    assert [p for p in victims if alive(p)] == []
    assert processes_in(workspace) == []
    assert show_job(repo, job["id"])["status"] == "cancelled"


def test_agent_outlives_its_driver_and_cancel_still_stops_it(repo: Path) -> None:
    runner, job, workspace, victims = start_hanging_job(repo)
    runner.kill()  # the `logist run` process dies without any cleanup
    runner.communicate()
    # The agent runs in its own session: it survives its driver.
    assert all(alive(p) for p in victims)
    assert show_job(repo, job["id"])["status"] == "running"

    cancel = run_logist("job", "cancel", job["id"], "--json", cwd=repo)
    assert parse_json(cancel.stdout)["status"] == "cancelled"
    psutil.wait_procs(victims, timeout=2)
    assert [p for p in victims if alive(p)] == []
    assert processes_in(workspace) == []
    events = job_events(repo, job["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_job_attach_resumes_a_job_whose_driver_was_killed(repo: Path) -> None:
    runner = popen_logist(
        "run",
        "--json",
        "--file",
        "a.txt",
        "--prompt",
        "resume me",
        "--agent-opt",
        "scenario=slow",
        "--agent-opt",
        "seconds=1.2",
        cwd=repo,
    )
    job = wait_for(lambda: job_in(repo, "running", events_of_kind="message"), timeout=20)
    runner.kill()  # the driver dies; the agent goes on writing its output file
    runner.communicate()
    assert show_job(repo, job["id"])["status"] == "running"

    attached = run_logist("job", "attach", job["id"], "--json", cwd=repo, timeout=30, check=False)
    review_record(attached.returncode, attached.stdout, attached.stderr)
    events = job_events(repo, job["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    # Every line of the agent's output became exactly one event: none lost, none twice.
    messages = [e["data"]["text"] for e in events if e["kind"] == "message"]
    assert messages == [f"thinking {i}/4" for i in range(1, 5)] + ["Working on: resume me"]
    assert sum(1 for e in events if e["kind"] == "started") == 1
    assert "+logist-mock: resume me" in run_logist("job", "diff", job["id"], cwd=repo).stdout


def test_question_waits_in_needs_input_until_answered(repo: Path) -> None:
    runner = popen_logist(
        "run",
        "--json",
        "--file",
        "b.txt",
        "--prompt",
        "ask me",
        "--agent-opt",
        "scenario=question",
        "--agent-opt",
        "question=Which greeting?",
        cwd=repo,
    )
    try:
        job = wait_for(lambda: job_in(repo, "needs_input"), timeout=20)
        assert job["status_reason"] == "Which greeting?"
        assert runner.poll() is None  # still waiting
        answered = run_logist("job", "answer", job["id"], "hello there", cwd=repo)
        assert answered.returncode == 0
        out, err = runner.communicate(timeout=20)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    review_record(runner.returncode, out, err)
    events = job_events(repo, job["id"])
    kinds = [(e["kind"], e["data"].get("to") or e["data"].get("text")) for e in events]
    assert ("question", "Which greeting?") in kinds
    assert ("message", "got the answer: hello there") in kinds
    tos = [to for kind, to in kinds if kind == "status"]
    assert tos == ["provisioning", "running", "needs_input", "running", "review"]
    # Answering a job that is not waiting is bad input.
    again = run_logist("job", "answer", job["id"], "more", cwd=repo, check=False)
    assert again.returncode == 2 and len(again.stderr.splitlines()) == 1


def _accept_at_once(repo: Path, job_ids: list[str]) -> dict[str, str]:
    """Accept the jobs at the same moment, each through its own engine and store connection
    (as separate processes would); the outcome of each."""
    barrier = threading.Barrier(len(job_ids))
    outcome: dict[str, str] = {}

    def accept(job_id: str) -> None:
        own = Engine.for_path(repo)
        barrier.wait()
        try:
            outcome[job_id] = str(own.accept(job_id)[0].status)
        except Exception as exc:  # a refusal would be fine; losing a change is not
            outcome[job_id] = repr(exc)
        finally:
            own.store.close()

    threads = [threading.Thread(target=accept, args=(job_id,)) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def test_two_accepts_at_once_never_lose_a_change(repo: Path) -> None:
    user_edit = "line 1, the user's own edit\n"
    lost = []
    for attempt in range(20):
        (repo / "a.txt").write_text(user_edit + "".join(f"line {i}\n" for i in range(2, 11)))
        (repo / "a.txt").chmod(0o644)
        (repo / "LOGIST_MOCK.md").unlink(missing_ok=True)
        engine = Engine.for_path(repo)
        # One job appends to a.txt, the other makes it executable (and writes LOGIST_MOCK.md).
        one = engine.create_job(JobRequest(prompt=f"one {attempt}", file="a.txt", cwd=str(repo)))
        two = engine.create_job(
            JobRequest(prompt=f"two {attempt}", agent_options={"chmod": "a.txt"}, cwd=str(repo))
        )
        for job_id in (one.id, two.id):
            done = asyncio.run(engine.drive(job_id))
            assert done.status == "review"
        engine.store.close()
        outcome = _accept_at_once(repo, [one.id, two.id])
        text = (repo / "a.txt").read_text()
        executable = os.access(repo / "a.txt", os.X_OK)
        both_applied = text.startswith(user_edit) and f"logist-mock: one {attempt}" in text
        if set(outcome.values()) == {"accepted"} and not (both_applied and executable):
            lost.append((attempt, text, executable))
            break
    assert lost == []

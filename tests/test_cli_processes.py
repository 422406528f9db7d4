"""Processes: cancel of a hanging agent leaves no process behind; several `logist` at once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest

from conftest import (
    LOGIST,
    PYTHON,
    job_events,
    list_jobs,
    logist_running,
    parse_json,
    parse_json_lines,
    popen_logist,
    processes_in,
    review_record,
    run_logist,
    show_job,
    wait_for,
)
from logist_server.domain.errors import JobBusyError
from logist_server.domain.requests import JobRequest
from logist_server.engine.facade import Engine
from logist_server.store.job_store import JobStore
from logist_server.support.locks import DriverLock, is_locked

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
    with logist_running(
        "run",
        "--json",
        "--file",
        "a.txt",
        "--prompt",
        "hang",
        "--agent-opt",
        "scenario=hang",
        cwd=repo,
    ) as runner:
        job = wait_for(lambda: running_job(repo), timeout=60)
        workspace = Path(job["workspace"]["path"])

        def agent_processes() -> list[psutil.Process] | None:
            procs = processes_in(workspace)
            sleeps = [p for p in procs if p.cmdline() == ["sleep", "3600"]]
            return procs if sleeps else None

        # The mock and its `sleep 3600` helper are working in the job's workspace.
        victims = wait_for(agent_processes, timeout=60)
        sleeper = next(p for p in victims if p.cmdline() == ["sleep", "3600"])
        assert runner.poll() is None

        cancel = run_logist("job", "cancel", job["id"], "--json", cwd=repo)
        assert parse_json(cancel.stdout)["status"] == "cancelled"

        out, _err = runner.communicate(timeout=60)
        assert runner.returncode != 0
        assert parse_json(out)["status"] == "cancelled"

    # The kill waits until they are gone: no grace period here.
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


def jobs_in(repo: Path, status: str) -> list[dict[str, Any]]:
    """Every job in `status`, read straight from the store."""
    if not (repo / ".logist" / "logist.db").exists():
        return []
    store = JobStore(repo)
    try:
        return [dict(msgspec.to_builtins(j)) for j in store.list_jobs() if j.status == status]
    finally:
        store.close()


def asking_run(repo: Path, target: str, prompt: str) -> subprocess.Popen[str]:
    """`logist run` of a mock agent that asks a question and waits for the answer."""
    return popen_logist(
        "run", "--json", "--file", target, "--prompt", prompt,
        "--agent-opt", "scenario=question", "--agent-opt", f"question=Go on with {prompt}?",
        cwd=repo,
    )  # fmt: skip


def test_two_runs_at_once_in_the_same_repository(repo: Path) -> None:
    runners = [asking_run(repo, "a.txt", "first"), asking_run(repo, "b.txt", "second")]
    try:
        # They really run at the same time: both agents are alive, each waiting for its
        # answer, while both `logist run` processes still drive them.
        waiting = wait_for(lambda: len(jobs_in(repo, "needs_input")) == 2 and jobs_in(
            repo, "needs_input"), timeout=60)  # fmt: skip
        assert [r.poll() for r in runners] == [None, None]
        for job in waiting:
            run_logist("job", "answer", job["id"], "yes", cwd=repo)
        results = []
        for proc in runners:
            out, err = proc.communicate(timeout=60)
            results.append(review_record(proc.returncode, out, err))
    finally:
        for proc in runners:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert [r["status"] for r in results] == ["review", "review"]
    ids = {r["id"] for r in results}
    assert len(ids) == 2 and ids == {j["id"] for j in waiting}
    assert {j["id"] for j in list_jobs(repo)} == ids
    for job_id in ids:
        events = job_events(repo, job_id)
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert all(e["job_id"] == job_id for e in events)
        tos = [e["data"]["to"] for e in events if e["kind"] == "status"]
        assert tos == ["provisioning", "running", "needs_input", "running", "review"]
    for result in results:
        run_logist("job", "accept", result["id"], cwd=repo)
    assert (repo / "a.txt").read_text().endswith("logist-mock: first\n")
    assert (repo / "b.txt").read_text().endswith("logist-mock: second\n")


_DRIVE = """
import asyncio, sys
from pathlib import Path
from logist_server.engine.facade import Engine
from logist_server.domain.errors import JobBusyError
try:
    job = asyncio.run(Engine.for_path(Path(sys.argv[1])).drive(sys.argv[2]))
except JobBusyError as exc:
    print("busy:", exc)
    sys.exit(75)
print("drove:", job.status)
"""


def test_a_job_driven_by_one_process_is_refused_to_others(repo: Path) -> None:
    # The agent waits for an answer: the job stays driven for as long as the test needs.
    runner = asking_run(repo, "a.txt", "held")
    try:
        job = wait_for(lambda: job_in(repo, "needs_input"), timeout=60)
        follower = popen_logist("job", "log", job["id"], "--follow", "--json", cwd=repo)
        # A second driver in another process is refused by the driver lock.
        other = subprocess.run(
            [PYTHON, "-c", _DRIVE, str(repo), job["id"]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert other.returncode == 75, other.stdout + other.stderr
        assert "being driven by another process" in other.stdout
        # Deleting it from the CLI is refused too (exit 1, one line) and changes nothing.
        refused = run_logist("job", "delete", job["id"], cwd=repo, check=False)
        assert refused.returncode == 1
        assert len(refused.stderr.splitlines()) == 1
        assert "another process" in refused.stderr
        assert show_job(repo, job["id"])["status"] == "needs_input"
        assert runner.poll() is None  # its driver is still there: it waits for the answer
        run_logist("job", "answer", job["id"], "yes", cwd=repo)
        out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    review_record(runner.returncode, out, err)
    events = job_events(repo, job["id"])
    # `job log --follow`, started while the job ran, ends once it settles, with every event.
    followed, _ = follower.communicate(timeout=60)
    assert follower.returncode == 0
    assert parse_json_lines(followed) == events
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    # Exactly one driver: one provisioning and one review, no second start.
    tos = [e["data"]["to"] for e in events if e["kind"] == "status"]
    assert tos == ["provisioning", "running", "needs_input", "running", "review"]
    # Each step started once: the question's, and the one its answer resumes.
    assert [e["data"]["step"] for e in events if e["kind"] == "started"] == [1, 2]


_HOLD = """
import sys, time
from pathlib import Path
from logist_server.support.locks import DriverLock
lock = DriverLock(Path(sys.argv[1]))
assert lock.try_acquire()
print("held", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def lock_held_elsewhere(lock_path: Path) -> Iterator[None]:
    """Another process holds the driver lock `lock_path` until the block ends."""
    holder = subprocess.Popen(
        [PYTHON, "-c", _HOLD, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.communicate(input="", timeout=60)


def test_driver_lock_held_by_another_process_makes_drive_raise_busy(repo: Path) -> None:
    engine = Engine.for_path(repo)
    job = engine.create_job(JobRequest(prompt="locked out", cwd=str(repo)))
    lock_path = engine.store.lock_path(job.id)
    with lock_held_elsewhere(lock_path):
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
        "run", "--json", "--prompt", "hang", "--agent-opt", "scenario=hang", cwd=repo,
        interruptible=True,
    )  # fmt: skip
    job = wait_for(lambda: job_in(repo, "running"), timeout=60)
    workspace = Path(job["workspace"]["path"])
    victims = wait_for(lambda: agent_in(workspace), timeout=60)
    return runner, job, workspace, victims


def test_ctrl_c_of_logist_run_cancels_the_job_and_its_processes(repo: Path) -> None:
    runner, job, workspace, victims = start_hanging_job(repo)
    try:
        runner.send_signal(signal.SIGINT)
        _out, err = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 130
    assert f"cancelling job {job['id']}" in err
    assert "Traceback" not in err
    # The kill waits until they are gone: no grace period here.
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
    # The kill waits until they are gone: no grace period here.
    assert [p for p in victims if alive(p)] == []
    assert processes_in(workspace) == []
    events = job_events(repo, job["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_an_agent_its_runtime_cannot_locate_is_never_taken_for_gone(repo: Path) -> None:
    """A running job whose step records neither the agent's handle nor its launch nonce
    (as an older Logist left it, its driver dead): the runtime cannot tell whether the
    agent still runs. `job delete` refuses to remove the workspace under it, and `job
    cancel` settles the job but says the agent may still run and must be stopped by hand,
    instead of reporting nothing to kill."""
    runner, job, workspace, victims = start_hanging_job(repo)
    try:
        runner.kill()
        runner.communicate()

        def older_record(record: Any) -> None:
            record.current_step.handle = None
            record.current_step.launch = None

        Engine.for_path(repo).store.update(job["id"], older_record)
        deleted = run_logist("job", "delete", job["id"], cwd=repo, check=False)
        assert deleted.returncode == 2, deleted.stderr
        assert "cancel it first" in deleted.stderr
        assert workspace.is_dir()

        cancel = run_logist("job", "cancel", job["id"], "--json", cwd=repo)
        assert parse_json(cancel.stdout)["status"] == "cancelled"
        unknown = [e for e in job_events(repo, job["id"]) if e["kind"] == "reaped"]
        assert len(unknown) == 1, unknown
        assert "cannot tell whether step 1's agent still runs" in unknown[0]["data"]["unknown"]
        assert "stop it yourself" in unknown[0]["data"]["unknown"]
        assert all(alive(p) for p in victims)  # it was not found, and not claimed killed
    finally:
        for victim in victims:
            with contextlib.suppress(psutil.Error):
                victim.kill()
        psutil.wait_procs(victims, timeout=30)
    deleted = run_logist("job", "delete", job["id"], cwd=repo)
    assert not workspace.exists()


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
    job = wait_for(lambda: job_in(repo, "running", events_of_kind="message"), timeout=60)
    runner.kill()  # the driver dies; the agent goes on writing its output file
    runner.communicate()
    assert show_job(repo, job["id"])["status"] == "running"

    attached = run_logist("job", "attach", job["id"], "--json", cwd=repo, timeout=60, check=False)
    review_record(attached.returncode, attached.stdout, attached.stderr)
    events = job_events(repo, job["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    # Every line of the agent's output became exactly one event: none lost, none twice.
    messages = [e["data"]["text"] for e in events if e["kind"] == "message"]
    assert messages == [f"thinking {i}/4" for i in range(1, 5)] + ["Working on: resume me"]
    assert sum(1 for e in events if e["kind"] == "started") == 1
    assert "+logist-mock: resume me" in run_logist("job", "diff", job["id"], cwd=repo).stdout


def test_question_waits_in_needs_input_until_answered(repo: Path) -> None:
    with logist_running(
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
    ) as runner:
        job = wait_for(lambda: job_in(repo, "needs_input"), timeout=60)
        assert job["status_reason"] == "Which greeting?"
        assert runner.poll() is None  # still waiting
        answered = run_logist("job", "answer", job["id"], "hello there", cwd=repo)
        assert answered.returncode == 0
        out, err = runner.communicate(timeout=60)
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


# Each command waits in its own `sh` for the go file, then execs the real `logist`: they
# start together, as separate processes, with nothing shared but the repository.
_GATED = 'while [ ! -e "$1" ]; do sleep 0.005; done; shift; exec "$@"'


def logist_at_once(repo: Path, commands: list[list[str]]) -> list[tuple[int, str, str]]:
    """Run the `logist` commands at the same moment; (exit status, stdout, stderr) of each."""
    go = repo.parent / f"go-{os.getpid()}-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            ["sh", "-c", _GATED, "gate", str(go), str(LOGIST), *command],
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    go.touch()
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        go.unlink()
    return results


def in_review(engine: Engine, request: JobRequest) -> str:
    job = engine.create_job(request)
    done = asyncio.run(engine.drive(job.id))
    assert done.status == "review", (done.status_reason, done.result.error)
    return job.id


def busy_message(job_id: str) -> str:
    return f"logist: error: job {job_id} is being driven by another process\n"


def settled_message(job_id: str) -> str:
    return (
        f"logist: error: job {job_id} is accepted, not in review: "
        "only a job in review can be accepted\n"
    )


def test_two_accepts_of_different_jobs_at_once_both_apply(repo: Path) -> None:
    """Two `logist job accept` processes at once, on two jobs changing the same file:
    both are accepted and both changes land, with the user's own edit kept."""
    user_edit = "line 1, the user's own edit\n"
    for attempt in range(4):
        (repo / "a.txt").write_text(user_edit + "".join(f"line {i}\n" for i in range(2, 11)))
        (repo / "a.txt").chmod(0o644)
        (repo / "LOGIST_MOCK.md").unlink(missing_ok=True)
        engine = Engine.for_path(repo)
        # One job appends to a.txt, the other makes it executable (and writes LOGIST_MOCK.md).
        one = in_review(engine, JobRequest(prompt=f"one {attempt}", file="a.txt", cwd=str(repo)))
        two = in_review(
            engine,
            JobRequest(prompt=f"two {attempt}", agent_options={"chmod": "a.txt"}, cwd=str(repo)),
        )
        engine.store.close()
        results = logist_at_once(
            repo, [["job", "accept", job_id, "--json"] for job_id in (one, two)]
        )
        for code, out, err in results:
            assert code == 0, err
            assert parse_json(out)["status"] == "accepted"
        text = (repo / "a.txt").read_text()
        assert text.startswith(user_edit), text
        assert text.count(f"logist-mock: one {attempt}\n") == 1, text
        assert os.access(repo / "a.txt", os.X_OK)
        assert (repo / "LOGIST_MOCK.md").read_text() == f"logist-mock: two {attempt}\n"


def test_accepts_of_one_job_at_once_exactly_one_wins(repo: Path, record_property: Any) -> None:
    """Three `logist job accept` processes at once on the same job: exactly one applies it;
    each other one refuses in one line, either because the winner holds the job (busy) or
    because it is accepted already. The change lands once."""
    seen = {"busy": 0, "already accepted": 0}
    for attempt in range(3):
        engine = Engine.for_path(repo)
        job_id = in_review(
            engine, JobRequest(prompt=f"once {attempt}", file="b.txt", cwd=str(repo))
        )
        engine.store.close()
        results = logist_at_once(repo, [["job", "accept", job_id, "--json"]] * 3)
        winners = [r for r in results if r[0] == 0]
        assert len(winners) == 1, results
        assert parse_json(winners[0][1])["status"] == "accepted"
        for code, out, err in results:
            if code == 0:
                continue
            assert out == ""
            if err == busy_message(job_id):
                assert code == 1
                seen["busy"] += 1
            else:
                assert (code, err) == (2, settled_message(job_id))
                seen["already accepted"] += 1
        text = (repo / "b.txt").read_text()
        assert text.count(f"logist-mock: once {attempt}\n") == 1, text
        assert show_job(repo, job_id)["status"] == "accepted"
        statuses = [e["data"]["to"] for e in job_events(repo, job_id) if e["kind"] == "status"]
        assert statuses[-1] == "accepted" and statuses.count("accepted") == 1
    # Which refusal each loser met depends on timing; both are right. Reported, not required
    # (test_accept_while_the_job_is_held_is_refused_busy makes the busy one deterministic).
    record_property("refusals", seen)
    assert sum(seen.values()) == 2 * 3


def test_accept_while_the_job_is_held_is_refused_busy(repo: Path) -> None:
    """Another process holds the job's lock: every accept is refused, nothing is written;
    once it lets go, one accept applies, and a later one is refused as accepted already."""
    engine = Engine.for_path(repo)
    job_id = in_review(engine, JobRequest(prompt="held", file="b.txt", cwd=str(repo)))
    lock_path = engine.store.lock_path(job_id)
    engine.store.close()
    before = (repo / "b.txt").read_bytes()
    with lock_held_elsewhere(lock_path):
        results = logist_at_once(repo, [["job", "accept", job_id]] * 2)
        assert results == [(1, "", busy_message(job_id))] * 2
        assert (repo / "b.txt").read_bytes() == before
        assert show_job(repo, job_id)["status"] == "review"
    assert (
        parse_json(run_logist("job", "accept", job_id, "--json", cwd=repo).stdout)["status"]
        == "accepted"
    )
    again = run_logist("job", "accept", job_id, cwd=repo, check=False)
    assert (again.returncode, again.stderr) == (2, settled_message(job_id))
    assert (repo / "b.txt").read_text().count("logist-mock: held\n") == 1

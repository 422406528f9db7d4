"""Store faults settle jobs instead of orphaning them: a real full disk, real concurrent opens.

A job whose store cannot be written (its disk filled by the agent's own flood) must end
`failed` with a reason naming the disk, with no agent and no driver left; processes that
open one fresh store at the same moment must all succeed.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import re
import sqlite3
import time
from pathlib import Path

from conftest import git, list_jobs, make_repo, popen_logist, processes_in, run_logist, wait_for
from logist_server.domain.model import AgentSpec, Job
from logist_server.store.job_store import SCHEMA_VERSION, STORE_DIRNAME, JobStore, new_job_id
from logist_server.support.locks import is_locked
from mounts import tmpfs

FULL = re.compile(r"disk is full|no space left", re.IGNORECASE)


def test_a_flood_that_fills_the_disk_fails_the_job_naming_the_disk(
    tmp_path: Path, workspace_root: Path, no_stray_agents: None
) -> None:
    """The repository (and so `.logist`, the agent's output and the database) on a 2 MiB
    tmpfs; the mock floods it. Five tries: each settles the job, none leaves it running."""
    for attempt in range(5):
        with tmpfs(tmp_path / f"disk-{attempt}", "2m") as disk:
            repo = make_repo(disk / "repo")
            proc = run_logist("run", "--prompt", "flood", "--agent-opt", "scenario=flood",
                              "--agent-opt", "lines=200000", cwd=repo, check=False,
                              timeout=300)  # fmt: skip
            assert "Traceback" not in proc.stderr, proc.stderr
            (job,) = list_jobs(repo)
            assert job["status"] == "failed", (attempt, job["status"], proc.stderr[-2000:])
            assert FULL.search(job["status_reason"] or ""), job["status_reason"]
            assert FULL.search(job["result"]["error"] or ""), job["result"]
            assert proc.returncode == 1, proc.stderr[-2000:]
            assert f"job {job['id']}: failed" in proc.stdout
            # No driver holds the job, and nothing the agent started runs on.
            assert not is_locked(repo / STORE_DIRNAME / "locks" / f"{job['id']}.lock")
            assert processes_in(workspace_root) == []
            log = run_logist("job", "log", job["id"], cwd=repo).stdout.splitlines()
            assert re.search(r"status\s+running -> failed: ", log[-1]), log[-3:]
            assert FULL.search(log[-1]), log[-1]
            # Once there is room again, the job is an ordinary failed job.
            for output in (repo / STORE_DIRNAME / "jobs").glob("*/step-*/output.log"):
                output.unlink()
            git(repo, "status")  # the repository itself is intact
            run_logist("job", "delete", job["id"], cwd=repo)
            assert list_jobs(repo) == []


def _open_and_insert(
    repo: str, barrier: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue[str]
) -> None:
    """In a process of its own: open the store the moment every process is ready, add a job."""
    try:
        barrier.wait(timeout=60)
        store = JobStore(Path(repo))
        job = Job(id=new_job_id(), prompt="concurrent", repo=repo, agent=AgentSpec("mock"))
        store.insert(job, [("created", {"status": job.status.value})])
        store.close()
        results.put(job.id)
    except Exception as exc:  # reported to the parent, which fails the test
        results.put(f"error: {type(exc).__name__}: {exc}")


def _open_at_once(repo: Path, processes: int, hold_s: float = 0.0) -> None:
    """`processes` real processes open the store of `repo` at one moment and add a job each.
    With `hold_s`, this process holds a write lock on the fresh database (still in
    rollback-journal mode) when they start, for that long. All must succeed, one schema."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes + 1)
    queue: multiprocessing.Queue[str] = context.Queue()
    workers = [
        context.Process(target=_open_and_insert, args=(str(repo), barrier, queue))
        for _ in range(processes)
    ]
    for worker in workers:  # forked before any connection is open here (SQLite needs that)
        worker.start()
    holder = None
    if hold_s:
        (repo / STORE_DIRNAME).mkdir()
        holder = sqlite3.connect(repo / STORE_DIRNAME / "logist.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    barrier.wait(timeout=60)
    if holder is not None:
        # The openers reach the WAL switch within milliseconds; were one slower, it would
        # only find the lock free (the test could not fail that time, never falsely).
        time.sleep(hold_s)
        holder.execute("COMMIT")
        holder.close()
    results = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    errors = [r for r in results if r.startswith("error:")]
    assert errors == [], errors
    assert {job["id"] for job in list_jobs(repo)} == set(results)
    db = sqlite3.connect(repo / STORE_DIRNAME / "logist.db")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
    exclude = (repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert exclude.count("/.logist/") == 1


def test_processes_opening_one_fresh_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Released together by a barrier, many times (the race of the WAL switch is rare)."""
    for round_ in range(12):
        _open_at_once(make_repo(tmp_path / f"repo-{round_}", {"a.txt": b"a\n"}), 10)


def test_opening_a_fresh_store_waits_for_a_writer_holding_it(tmp_path: Path) -> None:
    """The WAL switch of a fresh store meets another connection's write lock: before the fix
    it failed with `database is locked` instead of waiting as every write does."""
    _open_at_once(make_repo(tmp_path / "repo", {"a.txt": b"a\n"}), 4, hold_s=1.0)


def test_when_nothing_can_be_recorded_attach_settles_the_job(
    tmp_path: Path, workspace_root: Path, no_stray_agents: None
) -> None:
    """The reserve is deleted as the agent starts, so a full disk leaves no room to record
    the failure: the driver stops the agent, says so in one line (exit 2) and how to settle
    the job; once there is room, `logist job attach` settles it `failed`, naming the disk.
    Three tries; the unrecordable case must come up at least once (it is the point)."""
    unrecorded = 0
    for attempt in range(3):
        with tmpfs(tmp_path / f"disk-{attempt}", "2m") as disk:
            repo = make_repo(disk / "repo")
            room = disk / "room-to-free-later"
            room.write_bytes(b"\0" * 300_000)
            proc = popen_logist("run", "--prompt", "flood", "--agent-opt", "scenario=flood",
                                "--agent-opt", "lines=200000", cwd=repo)  # fmt: skip
            jobs = repo / STORE_DIRNAME / "jobs"
            wait_for(lambda jobs=jobs: list(jobs.glob("*/step-1/output.log")), timeout=120)
            (repo / STORE_DIRNAME / "reserve").unlink()
            _, stderr = proc.communicate(timeout=300)
            assert "Traceback" not in stderr, stderr
            (job,) = list_jobs(repo)
            lock = repo / STORE_DIRNAME / "locks" / f"{job['id']}.lock"
            if job["status"] == "running":
                unrecorded += 1
                assert proc.returncode == 2
                (line,) = stderr.splitlines()[-1:]
                assert FULL.search(line) and f"logist job attach {job['id']}" in line, line
                assert not is_locked(lock)
                assert processes_in(workspace_root) == []  # the agent was stopped
                room.unlink()
                attach = run_logist("job", "attach", job["id"], cwd=repo, check=False,
                                    timeout=300)  # fmt: skip
                assert "Traceback" not in attach.stderr
                (job,) = list_jobs(repo)
            assert job["status"] == "failed", (attempt, job["status"])
            assert FULL.search(job["status_reason"] or ""), job["status_reason"]
            assert not is_locked(lock)
            assert processes_in(workspace_root) == []
    assert unrecorded >= 1, "the store always had room: the case under test never came up"

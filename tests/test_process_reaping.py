"""No process outlives its job: whatever an agent leaves running is killed when its step ends.

The mock's `linger` scenario starts, like a hostile or careless agent would, a background
child, a double-forked `setsid` daemon that moved to `/`, and a child that moved to `/`, then
exits 0, crashes, or waits to be cancelled or stopped by a limit. Each runs through the real
`logist` CLI in a real repository; afterwards none of the three may be alive, and the job's
`reaped` event names them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import job_events, logist_running, processes_tagged, run_logist, show_job, wait_for
from logist_server.providers.runtimes import cgroups

KINDS = ("child", "daemon", "elsewhere")
SETTLED = {"review", "done", "failed", "cancelled", "halted", "stuck"}


@pytest.fixture
def tag(tmp_path: Path) -> Iterator[str]:
    """A tag in the lingerers' command lines; whatever carries it is killed at teardown."""
    value = f"logist-linger-{os.getpid()}-{tmp_path.name}"
    yield value
    strays = processes_tagged(value)
    for proc in strays:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def lingerers(repo: Path, job_id: str) -> dict[str, int]:
    """The pids the agent wrote once all three were running."""
    path = repo / ".logist" / "jobs" / job_id / "linger-pids"
    pids: dict[str, int] = json.loads(path.read_text())
    return pids


def reaped(repo: Path, job_id: str) -> list[dict[str, Any]]:
    return [
        process
        for event in job_events(repo, job_id)
        if event["kind"] == "reaped"
        for process in event["data"]["processes"]
    ]


def assert_all_reaped(repo: Path, job_id: str, tag: str) -> None:
    pids = lingerers(repo, job_id)
    assert sorted(pids) == sorted(KINDS)  # all three ran: the test attacked something
    assert processes_tagged(tag) == []
    assert not any(alive(pid) for pid in pids.values())
    report = {p["pid"]: p for p in reaped(repo, job_id)}
    assert set(pids.values()) <= set(report), report
    assert all(report[pid]["name"] not in ("", "?") for pid in pids.values()), report
    assert cgroups.detect() is not None, "no writable cgroup here: the daemon would escape"
    assert report[pids["daemon"]]["found"] == "cgroup"


def linger_run(repo: Path, tag: str, *extra: str) -> dict[str, Any]:
    proc = run_logist(
        "run", "--json", "--prompt", "linger", "--retries", "0",
        "--agent-opt", "scenario=linger", "--agent-opt", f"tag={tag}", *extra,
        cwd=repo, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    record: dict[str, Any] = json.loads(proc.stdout)
    return record


def test_processes_left_by_an_agent_that_exits_0_are_killed(repo: Path, tag: str) -> None:
    record = linger_run(repo, tag)
    assert record["status"] in SETTLED
    assert_all_reaped(repo, record["id"], tag)


def test_processes_left_by_a_crashing_agent_are_killed(repo: Path, tag: str) -> None:
    record = linger_run(repo, tag, "--agent-opt", "code=3")
    assert record["status"] == "failed"
    assert_all_reaped(repo, record["id"], tag)


def test_processes_of_a_cancelled_agent_are_killed(repo: Path, tag: str) -> None:
    with logist_running(
        "run", "--json", "--prompt", "linger", "--retries", "0",
        "--agent-opt", "scenario=linger", "--agent-opt", f"tag={tag}",
        "--agent-opt", "hold=true", cwd=repo,
    ) as proc:  # fmt: skip
        jobs = repo / ".logist" / "jobs"
        pids_file = wait_for(lambda: next(jobs.glob("*/linger-pids"), None), timeout=60)
        job_id = pids_file.parent.name
        run_logist("job", "cancel", job_id, cwd=repo)
        proc.communicate(timeout=60)
    assert show_job(repo, job_id)["status"] == "cancelled"
    assert_all_reaped(repo, job_id, tag)


def test_processes_of_an_agent_stopped_by_a_limit_are_killed(repo: Path, tag: str) -> None:
    record = linger_run(repo, tag, "--agent-opt", "hold=true", "--max-time", "1")
    assert record["status"] == "halted"
    assert_all_reaped(repo, record["id"], tag)


def test_reject_kills_what_still_works_in_the_workspace_before_removing_it(
    repo: Path, tag: str
) -> None:
    """A last resort (a driver killed before it could reap leaves such a process): nothing
    keeps running in a deleted worktree."""
    record = run_logist_json_review(repo)
    workspace = Path(record["workspace"]["path"])
    assert_kills_a_stray_and_removes(repo, workspace, tag, "job", "reject", record["id"])


def assert_kills_a_stray_and_removes(repo: Path, workspace: Path, tag: str, *command: str) -> None:
    """`logist *command` kills a process left working in `workspace`, then removes it."""
    stray = subprocess.Popen(
        [sys.executable, "-I", "-c", "import time; time.sleep(3600)", tag],
        cwd=workspace, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: processes_tagged(tag))
        run_logist(*command, cwd=repo)
        assert stray.wait(timeout=30) is not None  # killed (it would sleep an hour)
        assert not workspace.exists()
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()


def run_logist_json_review(repo: Path) -> dict[str, Any]:
    proc = run_logist("run", "--json", "--prompt", "x", cwd=repo)
    record: dict[str, Any] = json.loads(proc.stdout)
    assert record["status"] == "review"
    return record


def test_gc_kills_what_still_works_in_a_worktree_it_removes(repo: Path, tag: str) -> None:
    proc = run_logist(
        "run", "--json", "--prompt", "x", "--retries", "0", "--agent-opt", "scenario=crash",
        cwd=repo, check=False,
    )  # fmt: skip
    record = json.loads(proc.stdout)
    assert record["status"] == "failed"
    workspace = Path(record["workspace"]["path"])
    assert workspace.is_dir()
    assert_kills_a_stray_and_removes(repo, workspace, tag, "gc")


def test_an_agent_that_leaves_nothing_behind_gets_no_reaped_event(repo: Path) -> None:
    """The wrapper's own last steps (its `mv` of the status file) are not reported."""
    for _ in range(3):
        record = run_logist_json_review(repo)
        assert reaped(repo, record["id"]) == []
        run_logist("job", "reject", record["id"], cwd=repo)

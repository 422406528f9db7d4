"""The host runtime on real processes: output file, exit status, kill of the whole tree."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from logist_server.model import Workspace
from logist_server.runtimes.base import JobPaths, ProcessSpec
from logist_server.runtimes.host import HostRuntime


def start(runtime: HostRuntime, tmp_path: Path, name: str, script: str, cwd: Path | None = None):  # type: ignore[no-untyped-def]
    paths = JobPaths(dir=str(tmp_path / name))
    spec = ProcessSpec(argv=["/bin/sh", "-c", script], cwd=str(cwd or tmp_path))
    handle = runtime.start(None, None, spec, paths)  # type: ignore[arg-type]
    return handle, paths


def wait_exit(runtime: HostRuntime, handle, paths, timeout: float = 10) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while (code := runtime.exit_status(handle, paths)) is None:
        assert time.monotonic() < deadline, "the process did not end"
        time.sleep(0.01)
    return code


def test_output_and_exit_status_are_recorded(tmp_path: Path) -> None:
    runtime = HostRuntime()
    handle, paths = start(runtime, tmp_path, "s1", "echo out; echo err >&2; exit 3")
    assert handle.pid is not None and handle.runtime == "host"
    assert wait_exit(runtime, handle, paths) == 3
    assert paths.exit_status.read_text() == "3"
    assert runtime.read_output(handle, paths, 0) == b"out\nerr\n"
    assert runtime.read_output(handle, paths, 4) == b"err\n"
    assert runtime.read_output(handle, paths, 8) == b""
    assert not runtime.is_alive(handle, paths)


def test_exit_status_is_known_to_a_runtime_that_did_not_start_it(tmp_path: Path) -> None:
    starter = HostRuntime()
    handle, paths = start(starter, tmp_path, "s1", "exit 5")
    assert wait_exit(starter, handle, paths) == 5
    # Another process (a new driver) only has the handle and the files.
    other = HostRuntime()
    assert other.exit_status(handle, paths) == 5
    assert not other.is_alive(handle, paths)


def test_kill_takes_down_the_session_and_processes_in_the_workspace(tmp_path: Path) -> None:
    workspace_dir = tmp_path / "ws"
    workspace_dir.mkdir()
    workspace = Workspace(path=str(workspace_dir), branch="logist/x", base_commit="0" * 40)
    runtime = HostRuntime()
    # Children in the agent's session, and one that left it (setsid) but works in the workspace.
    script = "sleep 3600 & setsid sleep 3601 & sleep 3602 & echo started; wait"
    handle, paths = start(runtime, tmp_path, "s1", script, cwd=workspace_dir)
    deadline = time.monotonic() + 10
    while runtime.read_output(handle, paths, 0) != b"started\n":
        assert time.monotonic() < deadline
        time.sleep(0.01)

    def sleepers() -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            try:
                if (
                    proc.cmdline()[:1] == ["sleep"]
                    and proc.cwd() == str(workspace_dir)
                    and proc.status() != psutil.STATUS_ZOMBIE
                ):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    victims = sleepers()
    assert sorted(p.cmdline()[1] for p in victims) == ["3600", "3601", "3602"]
    assert runtime.is_alive(handle, paths)
    runtime.kill(handle, paths, workspace)
    psutil.wait_procs(victims, timeout=2)
    assert sleepers() == []
    assert not runtime.is_alive(handle, paths)
    assert runtime.exit_status(handle, paths) is not None
    runtime.kill(handle, paths, workspace)  # idempotent


def test_exit_status_of_a_process_that_exited_0_is_never_minus_one(tmp_path: Path) -> None:
    # The exit-status file is read, then the wrapper polled: if it exits in between, the
    # status must still be the recorded 0, never -1. On one CPU (a small CI container) the
    # poller is often preempted inside that window (half of the runs, before it was fixed).
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        runtime = HostRuntime()
        wrong = []
        for i in range(100):
            paths = JobPaths(dir=str(tmp_path / f"s{i}"))
            spec = ProcessSpec(argv=["true"], cwd=str(tmp_path))
            handle = runtime.start(None, None, spec, paths)  # type: ignore[arg-type]
            while (code := runtime.exit_status(handle, paths)) is None:
                pass
            if code != 0:
                wrong.append((i, code, paths.exit_status.read_text()))
                break
    finally:
        os.sched_setaffinity(0, affinity)
    assert wrong == []

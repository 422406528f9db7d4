"""A hostile agent against the host runtime's reaping and environment.

The agent can write its step directory and its workspace: replacing either with a symlink
must neither let its processes escape `kill` nor point `kill` at someone else's processes
(another job's agent, the user's shells). And it gets only a minimal base of the user's
environment plus what its provider declares: never `LOGIST_TOKEN` nor anything else exported.
Real processes, real cgroups, the real host runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import processes_tagged
from hostile_agent import SCRIPT_AGENT, ScriptAgent
from logist_server.domain.errors import RuntimeProviderError
from logist_server.domain.model import JobStatus, RuntimeHandle, Workspace
from logist_server.domain.requests import JobRequest
from logist_server.engine.facade import Engine, default_agents
from logist_server.providers.runtimes import cgroups
from logist_server.providers.runtimes.base import JobPaths, ProcessSpec
from logist_server.providers.runtimes.host import HostRuntime, host_identity, kill_working_in
from logist_server.vcs.git import find_repo


def start(
    runtime: HostRuntime, step_dir: Path, script: str, cwd: Path, workspace: Workspace | None
) -> tuple[RuntimeHandle, JobPaths]:
    paths = JobPaths(dir=str(step_dir))
    spec = ProcessSpec(argv=["/bin/sh", "-c", script], cwd=str(cwd))
    return runtime.start(None, workspace, spec, paths), paths  # type: ignore[arg-type]


def wait_exit(runtime: HostRuntime, handle: RuntimeHandle, paths: JobPaths) -> int:
    deadline = time.monotonic() + 30
    while (code := runtime.exit_status(handle, paths)) is None:
        assert time.monotonic() < deadline, "the process did not end"
        time.sleep(0.01)
    return code


def wait_for_count(tag: str, count: int) -> list[psutil.Process]:
    deadline = time.monotonic() + 30
    while len(found := processes_tagged(tag)) < count:
        assert time.monotonic() < deadline, found
        time.sleep(0.01)
    return found


@pytest.fixture
def tag(tmp_path: Path) -> Iterator[str]:
    """A unique `sleep` duration: its command line finds exactly this test's processes."""
    value = str(20_000_000 + os.getpid() * 100 + len(tmp_path.name) % 100)
    yield value
    for proc in processes_tagged(value):
        with contextlib.suppress(psutil.Error):
            proc.kill()


@pytest.fixture
def cgroup_root() -> cgroups.CgroupRoot:
    root = cgroups.detect()
    assert root is not None, "no writable cgroup here: agents fall back to sessions"
    return root


SWAP_STEP_DIR = 'd="$STEP"; cp -a "$d" "$d.copy" && rm -rf "$d" && ln -s "$TO" "$d"'


@pytest.mark.usefixtures("cgroup_root")
def test_a_daemon_is_reaped_though_its_agent_made_its_step_directory_a_symlink(
    tmp_path: Path, tag: str
) -> None:
    """The cgroup is named in the handle, not derived from the (now moved) step directory."""
    step = tmp_path / "step-1"
    script = f"(setsid sh -c 'cd / && exec sleep {tag}' &); " + SWAP_STEP_DIR.replace(
        "$STEP", str(step)
    ).replace("$TO", f"{step}.copy")
    runtime = HostRuntime()
    handle, paths = start(runtime, step, script, tmp_path, None)
    wait_exit(runtime, handle, paths)
    (daemon,) = wait_for_count(tag, 1)
    assert step.is_symlink()  # the attack happened
    killed = runtime.kill(handle, paths, None)
    assert {"pid": daemon.pid, "name": "sleep", "found": "cgroup"} in killed
    assert processes_tagged(tag) == []


@pytest.mark.usefixtures("cgroup_root")
def test_a_step_directory_pointed_at_another_agents_spares_that_agent(
    tmp_path: Path, tag: str
) -> None:
    """Another job's agent runs in its own cgroup; this agent links its step directory to
    that job's: killing this one must not kill that one."""
    runtime = HostRuntime()
    other_step = tmp_path / "other" / "step-1"
    other, other_paths = start(runtime, other_step, f"exec sleep {tag}", tmp_path, None)
    (bystander,) = wait_for_count(tag, 1)
    step = tmp_path / "mine" / "step-1"
    script = SWAP_STEP_DIR.replace("$STEP", str(step)).replace("$TO", str(other_step))
    handle, paths = start(runtime, step, script, tmp_path, None)
    wait_exit(runtime, handle, paths)
    assert step.is_symlink()
    try:
        killed = runtime.kill(handle, paths, None)
        assert bystander.pid not in {k["pid"] for k in killed}
        assert bystander.is_running() and bystander.status() != psutil.STATUS_ZOMBIE
    finally:
        runtime.kill(other, other_paths, None)
    assert processes_tagged(tag) == []


def test_a_step_directory_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    step = tmp_path / "step-2"
    step.symlink_to(elsewhere)
    with pytest.raises(RuntimeProviderError, match="not a plain directory"):
        start(HostRuntime(), step, "exit 0", tmp_path, None)
    assert list(elsewhere.iterdir()) == []


@pytest.fixture
def bystander(tmp_path: Path, tag: str) -> Iterator[tuple[Path, subprocess.Popen[bytes]]]:
    """(the user's directory, a process of the user working in it)."""
    victim = tmp_path / "home"
    (victim / "deep").mkdir(parents=True)
    proc = subprocess.Popen(["sleep", tag], cwd=victim / "deep", stdin=subprocess.DEVNULL)
    wait_for_count(tag, 1)
    yield victim, proc
    proc.kill()
    proc.wait()


def test_kill_never_follows_a_workspace_the_agent_made_a_symlink(
    tmp_path: Path, bystander: tuple[Path, subprocess.Popen[bytes]]
) -> None:
    """`cd /; rm -rf "$WS"; ln -s ~ "$WS"`: neither the step's kill nor the last-resort
    `kill_working_in` (reject, gc) may kill the user's processes working in the target."""
    victim, proc = bystander
    ws = tmp_path / "ws"
    ws.mkdir()
    workspace = Workspace(path=str(ws), branch="logist/x", base_commit="0" * 40)
    runtime = HostRuntime()
    script = f'cd /; rm -rf "{ws}"; ln -s "{victim}" "{ws}"'
    handle, paths = start(runtime, tmp_path / "step-1", script, ws, workspace)
    wait_exit(runtime, handle, paths)
    assert ws.is_symlink()
    assert runtime.kill(handle, paths, workspace) == []
    assert kill_working_in(ws) == []
    assert proc.poll() is None


def test_kill_working_in_reaches_deep_directories_of_the_real_workspace(
    tmp_path: Path, tag: str
) -> None:
    """The positive side: the match walks `..` up from each working directory."""
    ws = tmp_path / "ws"
    (ws / "a" / "b").mkdir(parents=True)
    proc = subprocess.Popen(
        ["setsid", "sleep", tag], cwd=ws / "a" / "b", stdin=subprocess.DEVNULL
    )  # fmt: skip
    try:
        wait_for_count(tag, 1)
        killed = kill_working_in(ws)
        assert proc.pid in {k["pid"] for k in killed}
        assert proc.wait(timeout=30) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_agent_gets_a_minimal_environment_plus_what_its_provider_declares(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile agent dumps its environment outside its workspace."""
    monkeypatch.setenv("LOGIST_TOKEN", "token-must-stay")
    monkeypatch.setenv("SECRET_X", "secret-must-stay")
    monkeypatch.setenv("DECLARED_KEY", "declared-value")
    monkeypatch.setenv("LC_MESSAGES", "C")
    dump = tmp_path / "agent-env"
    agents = default_agents()
    declared = ("DECLARED_KEY", "LOGIST_TOKEN")  # even declared, the token never passes
    script = f'env -0 > "{dump}"; echo agent >> a.txt'
    agents.register(SCRIPT_AGENT, lambda: ScriptAgent(script, env_vars=declared))
    engine = Engine(find_repo(repo), agents=agents)
    job = engine.create_job(JobRequest(prompt="env", agent=SCRIPT_AGENT))
    job = asyncio.run(engine.drive(job.id))
    assert job.status == JobStatus.REVIEW, job.status_reason
    env = dict(e.split("=", 1) for e in dump.read_text().split("\0") if "=" in e)
    assert env["DECLARED_KEY"] == "declared-value"
    assert env["PATH"] == os.environ["PATH"] and env["LC_MESSAGES"] == "C"
    assert env["USER_REPO"] == str(repo)  # what the provider sets itself
    assert "LOGIST_TOKEN" not in env and "SECRET_X" not in env
    assert not any("must-stay" in value for value in env.values())


def test_a_hanging_mock_has_its_declared_key_and_no_other_variable_of_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real mock, built by its provider and started by the host runtime: its
    `/proc/<pid>/environ` while it hangs."""
    from test_agent_isolation import start_mock

    monkeypatch.setenv("LOGIST_TOKEN", "token-must-stay")
    monkeypatch.setenv("SECRET_X", "secret-must-stay")
    monkeypatch.setenv("LOGIST_MOCK_API_KEY", "mock-key")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    runtime, handle, paths, _spec = start_mock(tmp_path, workspace, {"scenario": "hang"})
    try:
        deadline = time.monotonic() + 30
        while True:
            mocks = [
                p
                for p in psutil.Process(host_identity(handle).pid).children(recursive=True)
                if "logist_server.providers.agents.mock_program" in p.cmdline()
            ]
            if mocks:
                break
            assert time.monotonic() < deadline, "the mock did not start"
            time.sleep(0.02)
        raw = Path(f"/proc/{mocks[0].pid}/environ").read_bytes().split(b"\0")
        env = dict(e.decode().split("=", 1) for e in raw if b"=" in e)
    finally:
        runtime.kill(handle, paths, None)
    assert env["LOGIST_MOCK_API_KEY"] == "mock-key"
    assert env["LOGIST_JOB_DIR"] == str(tmp_path / "job")  # set by the provider
    assert "LOGIST_TOKEN" not in env and "SECRET_X" not in env

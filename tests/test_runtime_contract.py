"""The runtime contract (providers/runtimes/base.py), honoured by the engine for any runtime:
options validated and refused in one line, the workspace handed over by copy (the agent
never sees the job's directory) and harvested by the engine, a runtime that cannot
re-attach or kill a whole tree treated as its flags say, `locate` refusing a forged pid.

Real git repositories, the real mock agent and real processes; test runtimes are small
subclasses of the host runtime registered in the engine's registry."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest

from conftest import (
    assert_one_line_error,
    list_jobs,
    processes_tagged,
    run_logist,
    wait_for,
)
from logist_server.domain.model import Job, RuntimeHandle, Step, Workspace
from logist_server.domain.process import ProcessSpec
from logist_server.domain.requests import JobRequest
from logist_server.domain.runtime import (
    Mount,
    Resources,
    RuntimeOptionsError,
    parse_runtime_options,
)
from logist_server.engine import reaping
from logist_server.engine.facade import Engine, default_runtimes
from logist_server.providers.runtimes.base import JobPaths
from logist_server.providers.runtimes.host import HostRuntime, host_identity, pid_file
from logist_server.vcs.git import find_repo

pytestmark = pytest.mark.usefixtures("no_stray_agents")


def engine_with(repo: Path, name: str, runtime: Any) -> Engine:
    runtimes = default_runtimes()
    runtimes.register(name, lambda: runtime)
    return Engine(find_repo(repo), runtimes=runtimes)


# -- options ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("image=ubuntu:24.04", "runtime 'host' cannot honour the option 'image'"),
        ("mounts=/srv:/data:ro", "runtime 'host' cannot honour the option 'mounts'"),
        ("memory=512m", "runtime 'host' cannot honour the option 'memory'"),
        ("network=none", "runtime 'host' cannot honour network=none"),
        ("memory=12q", "runtime option 'memory': '12q' is not a size"),
        ("cpu=-1", "runtime option 'cpu': '-1' is not a positive number"),
        ("mounts=data:/data", "runtime option 'mounts': 'data:/data' needs absolute paths"),
        ("env=A-B", "runtime option 'env': 'A-B' is not a variable name"),
        ("colour=red", "unknown runtime option 'colour' (known: image, mounts, cpu, memory"),
        # F9: option-shaped images, whole-machine and credential mounts, `..` sources: refused
        # by the one parser every runtime shares, whatever the runtime.
        ("image=--privileged", "runtime option 'image': '--privileged' is not an image"),
        ("image=-v/:/host", "runtime option 'image': '-v/:/host' is not an image"),
        ("mounts=/:/host:rw", "would show the agent the whole machine (/); refused"),
        ("mounts=/a/../..:/x", "'/a/../..:/x' has a '..' part"),
        (f"mounts={Path.home()}/.ssh:/root/.ssh:rw", "(credentials or the machine's control)"),
        (f"mounts={Path.home()}:/h", "would show the agent the user's home directory"),
        ("mounts=/var/run:/x", "/var/run/docker.sock (credentials or the machine's control)"),
        ("mounts=/etc/ssl:/x", "/etc (credentials or the machine's control)"),
    ],
)
def test_an_option_the_runtime_cannot_honour_is_one_line_and_creates_nothing(
    repo: Path, option: str, says: str
) -> None:
    for command in (("run",), ("run", "--dry-run"), ("job", "create")):
        proc = run_logist(*command, "--prompt", "x", "--runtime-opt", option, cwd=repo, check=False)
        line = assert_one_line_error(proc, 2)
        assert says in line, line
    assert list_jobs(repo) == []


def test_options_are_typed() -> None:
    options = parse_runtime_options(
        {"image": "ghcr.io/x/y:1", "mounts": "/srv:/data, /tmp/a:/a:rw", "cpu": "1.5",
         "memory": "2g", "network": "bridge", "env": "HTTP_TOKEN,OTHER"}
    )  # fmt: skip
    assert options.image == "ghcr.io/x/y:1"
    assert options.mounts == (Mount("/srv", "/data", True), Mount("/tmp/a", "/a", False))
    assert options.resources == Resources(cpu=1.5, memory=2 << 30)
    assert options.network == "bridge" and options.env_allow == ("HTTP_TOKEN", "OTHER")
    assert options.given() == ["image", "mounts", "cpu", "memory", "network", "env"]
    with pytest.raises(RuntimeOptionsError):
        parse_runtime_options({"mounts": "/a:/b:rx"})


def test_the_environment_allow_list_passes_exactly_the_named_variables(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGIST_TEST_ALLOWED", "allowed-value")
    monkeypatch.setenv("LOGIST_TEST_OTHER", "other-value")
    proc = run_logist(
        "run", "--json", "--prompt", "env", "--runtime-opt", "env=LOGIST_TEST_ALLOWED",
        "--agent-opt", "echo_env=LOGIST_TEST_ALLOWED,LOGIST_TEST_OTHER", cwd=repo,
    )  # fmt: skip
    job_id = msgspec.json.decode(proc.stdout)["id"]
    log = run_logist("job", "log", job_id, cwd=repo).stdout
    # The agent saw the value (its hash); a passed-on variable is a secret: never written.
    digest = hashlib.sha256(b"allowed-value").hexdigest()
    assert f"env LOGIST_TEST_ALLOWED=*** sha256={digest}" in log
    assert "allowed-value" not in log
    assert "env LOGIST_TEST_OTHER=<unset>" in log and "other-value" not in log


# -- hand-over by copy -------------------------------------------------------------------------
class CopyRuntime(HostRuntime):
    """A host process that, like a pod, works on its own copy of the workspace: `copy_in`
    copies the files (not `.git`) to a private directory, the agent runs there, `copy_out`
    brings the result back. Records what it saw."""

    name = "copyhost"
    hand_over = "copy"

    def __init__(self, remote_root: Path) -> None:
        super().__init__()
        self.remote_root = remote_root
        self.calls: list[str] = []

    def remote(self, paths: JobPaths) -> Path:
        return self.remote_root / Path(paths.dir).name

    def copy_in(self, job: Job, workspace: Workspace, paths: JobPaths) -> None:
        self.calls.append("copy_in")
        target = self.remote(paths)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(workspace.path, target, ignore=shutil.ignore_patterns(".git"))

    def start(
        self, job: Job, workspace: Workspace, spec: ProcessSpec, paths: JobPaths
    ) -> RuntimeHandle:
        self.calls.append("start")
        remote = str(self.remote(paths))
        argv = [remote if arg == workspace.path else arg for arg in spec.argv]
        moved = msgspec.structs.replace(spec, argv=argv, cwd=remote)
        return super().start(job, workspace, moved, paths)

    def copy_out(self, handle: RuntimeHandle, paths: JobPaths, staging: Path) -> None:
        self.calls.append("copy_out")
        shutil.copytree(self.remote(paths), staging, symlinks=True, dirs_exist_ok=True)


def test_a_runtime_that_works_on_a_copy_is_harvested_from_what_it_copies_back(
    repo: Path, tmp_path: Path
) -> None:
    runtime = CopyRuntime(tmp_path / "remote")
    engine = engine_with(repo, "copyhost", runtime)
    job = engine.create_job(
        JobRequest(prompt="copy me", runtime="copyhost", file="a.txt", cwd=str(repo),
                   agent_options={"scenario": "edit"})
    )  # fmt: skip
    done = asyncio.run(engine.drive(job.id))
    assert done.status == "review", (done.status_reason, done.result.error)
    assert runtime.calls == ["copy_in", "start", "copy_out"]
    # The agent edited its copy, never the job's workspace: what review shows came back.
    remote = tmp_path / "remote" / "step-1" / "a.txt"
    assert remote.read_text().endswith("logist-mock: copy me\n")
    assert b"+logist-mock: copy me" in engine.diff(job.id)
    assert done.result.diff is not None and done.result.diff.paths == ["a.txt"]


# -- flags the engine honours -----------------------------------------------------------------
class NoReattach(HostRuntime):
    name = "noreattach"
    supports_reattach = False


def test_a_runtime_that_cannot_re_attach_has_its_orphaned_step_run_again(repo: Path) -> None:
    """The first driver stops while the agent runs (its task is cancelled: the process goes
    on, as when the server exits); the next driver may not follow an agent it did not
    start, so it kills it and runs the step again."""
    engine = engine_with(repo, "noreattach", NoReattach())
    job = engine.create_job(
        JobRequest(prompt="again", runtime="noreattach", cwd=str(repo),
                   agent_options={"scenario": "slow", "seconds": "1"})
    )  # fmt: skip

    async def first_driver() -> None:
        task = asyncio.create_task(engine.drive(job.id))
        while not engine.get(job.id).steps or engine.get(job.id).steps[-1].handle is None:
            await asyncio.sleep(0.02)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(first_driver())
    orphan = engine.get(job.id).steps[-1]
    assert orphan.handle is not None and orphan.outcome is None
    first_pid = host_identity(orphan.handle).pid
    assert first_pid is not None and psutil.pid_exists(first_pid)
    done = asyncio.run(Engine(find_repo(repo), runtimes=engine.runtimes).drive(job.id))
    assert done.status == "review", (done.status_reason, done.result.error)
    assert [s.outcome for s in done.steps] == ["discarded", "done"]
    events = engine.store.events(job.id)
    restart = [e for e in events if e.kind == "restart"]
    assert len(restart) == 1 and "cannot re-attach" in restart[0].data["reason"]
    wait_for(lambda: not psutil.pid_exists(first_pid) or _zombie(first_pid), timeout=30)


class LeakyKill(HostRuntime):
    """Says it cannot kill a whole tree, and indeed kills nothing: the processes its agent
    left behind (tagged) stay alive, and `is_alive` says so."""

    name = "leaky"
    supports_kill_tree = False

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag

    def kill(
        self, handle: RuntimeHandle, paths: JobPaths, workspace: Workspace | None
    ) -> list[dict[str, object]]:
        return []

    def is_alive(self, handle: RuntimeHandle, paths: JobPaths) -> bool:
        return super().is_alive(handle, paths) or bool(processes_tagged(self.tag))


def test_a_runtime_that_cannot_kill_a_tree_is_watched_and_a_survivor_fails_the_step(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent exits 0 but leaves three processes that the runtime cannot kill: the step's
    workspace is not harvested while something may still write to it; the job fails."""
    monkeypatch.setattr(reaping, "KILL_TREE_WAIT_S", 0.5)
    tag = f"leaky-{os.getpid()}"
    engine = engine_with(repo, "leaky", LeakyKill(tag))
    job = engine.create_job(
        JobRequest(prompt="leak", runtime="leaky", cwd=str(repo),
                   agent_options={"scenario": "linger", "tag": tag, "code": "0"})
    )  # fmt: skip
    try:
        done = asyncio.run(engine.drive(job.id))
        assert len(processes_tagged(tag)) == 3  # the survivors the runtime could not kill
    finally:
        for proc in processes_tagged(tag):
            with contextlib.suppress(psutil.Error):
                proc.kill()
    assert done.status == "failed", done.status
    assert "could not stop the agent" in (done.status_reason or "")
    assert done.result.diff is None and done.result.result_commit is None  # no harvest


def test_an_ended_agent_is_judged_as_usual_on_a_runtime_without_tree_kill(repo: Path) -> None:
    class Polite(HostRuntime):
        name = "polite"
        supports_kill_tree = False

    engine = engine_with(repo, "polite", Polite())
    job = engine.create_job(JobRequest(prompt="fine", runtime="polite", cwd=str(repo)))
    done = asyncio.run(engine.drive(job.id))
    assert done.status == "review", (done.status_reason, done.result.error)


# -- locate --------------------------------------------------------------------------------------
def test_locate_refuses_a_pid_file_naming_a_process_older_than_the_step(tmp_path: Path) -> None:
    """The pid file is in a directory the agent can write: naming this test's own process
    (any older process, the user's editor say) must not make it the step's agent."""
    paths = JobPaths(dir=str(tmp_path / "step-1"))
    Path(paths.dir).mkdir()
    job = Job(
        id="locate", prompt="x", repo=str(tmp_path), agent=msgspec.convert({"name": "mock"}, Any)
    )  # type: ignore[arg-type]
    step = Step(number=1, started_at=time.time(), launch="n0nce")
    runtime = HostRuntime()
    assert runtime.locate(job, step, paths).state == "never_started"  # nothing carries it
    pid_file(paths).write_text(str(os.getpid()))
    found = runtime.locate(job, step, paths)
    assert found.state == "found" and found.handle is not None
    assert host_identity(found.handle).pid is None  # the pid file is never believed
    assert runtime.kill(found.handle, paths, None) == []  # nothing of ours is a victim
    # A step with no launch nonce cannot be told apart: unknown, never "never started".
    no_nonce = Step(number=1, started_at=time.time())
    assert runtime.locate(job, no_nonce, paths).state == "unknown"
    assert psutil.pid_exists(os.getpid())


def test_locate_finds_the_wrapper_it_started_with_its_cgroup(tmp_path: Path) -> None:
    runtime = HostRuntime()
    paths = JobPaths(dir=str(tmp_path / "step-1"))
    step = Step(number=1, started_at=time.time() - 0.5, launch="l4unch")
    job = Job(
        id="locate2", prompt="x", repo=str(tmp_path), agent=msgspec.convert({"name": "mock"}, Any)
    )  # type: ignore[arg-type]
    spec = ProcessSpec(argv=["/bin/sleep", "30"], cwd=str(tmp_path), launch="l4unch")
    started = runtime.start(job, None, spec, paths)  # type: ignore[arg-type]
    try:
        wait_for(lambda: pid_file(paths).exists() and pid_file(paths).read_text())
        pid_file(paths).write_text(str(os.getpid()))  # the agent may write anything there
        found = HostRuntime().locate(job, step, paths)
        assert found.state == "found" and found.handle is not None
        assert host_identity(found.handle).pid == host_identity(started).pid
        assert host_identity(found.handle).cgroup == host_identity(started).cgroup
        other = msgspec.structs.replace(step, launch="another")
        assert host_identity(HostRuntime().locate(job, other, paths).handle).pid is None
    finally:
        runtime.kill(started, paths, None)


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True

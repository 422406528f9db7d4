"""The repository cannot steer the agent: neither its options nor its own code.

A hostile repository commits a `logist.yml` (or a role) whose agent options name files
outside the workspace, symlinks that lead out, or a `logist_server/` package of its own
that would run instead of the installed mock. Each is attacked through the real `logist`
CLI in a real repository, or through the real host runtime running the real mock program.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import (
    LOGIST,
    assert_one_line_error,
    branches,
    git,
    make_repo,
    run_job,
    run_logist,
    wait_for,
    worktree_paths,
)
from jsonrpc_raw import RawClient
from logist_server.domain.errors import UsageError
from logist_server.domain.model import AgentSpec, Job, RuntimeHandle
from logist_server.providers.agents.base import AgentContext, build_spec
from logist_server.providers.agents.mock import MockAgent
from logist_server.providers.agents.program import installed_program
from logist_server.providers.runtimes.base import JobPaths, ProcessSpec
from logist_server.providers.runtimes.host import HostRuntime, host_identity


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file of the user's, outside any workspace, that no job may touch."""
    directory = tmp_path / "victim-dir"
    directory.mkdir()
    path = directory / "precious.txt"
    path.write_text("keep me\n")
    path.chmod(0o644)
    return path


def commit(repo: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hostile")


def symlink(repo: Path, name: str, target: Path | str) -> None:
    (repo / name).symlink_to(target)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"symlink {name}")


def assert_nothing_created(repo: Path) -> None:
    assert not (repo / ".logist" / "logist.db").exists()
    assert branches(repo) == [] and worktree_paths(repo) == [str(repo)]


# -- point 8: options that name files ---------------------------------------------------------
HOSTILE_OPTIONS = {
    "absolute delete": ("delete", "{victim}", "an absolute path"),
    "absolute binary": ("binary", "{victim_dir}/new.bin", "an absolute path"),
    "dot-dot delete": ("delete", "../../victim-dir/precious.txt", "'..'"),
    "rename out": ("rename", "a.txt:../moved.txt", "'..'"),
    "second of a list": ("delete", "b.txt,/etc/hostname", "an absolute path"),
    "chmod git config": ("chmod", ".git/config", "inside .git"),
    "binary into .logist": ("binary", ".logist/roles/worker.yml", "inside .logist"),
    "binary through a symlinked dir": ("binary", "out/new.bin", "symlink out leads out"),
    "chmod through a symlinked file": ("chmod", "precious-link", "symlink precious-link leads"),
}


@pytest.mark.parametrize(
    ("key", "value", "reason"), HOSTILE_OPTIONS.values(), ids=HOSTILE_OPTIONS.keys()
)
def test_a_committed_logist_yml_cannot_name_a_file_outside_the_workspace(
    repo: Path, victim: Path, key: str, value: str, reason: str
) -> None:
    symlink(repo, "out", victim.parent)
    symlink(repo, "precious-link", victim)
    option = value.format(victim=victim, victim_dir=victim.parent)
    commit(repo, {"logist.yml": f"agent_options:\n  {key}: '{option}'\n"})
    before = victim.stat()
    line = assert_one_line_error(run_logist("run", "--prompt", "x", cwd=repo, check=False))
    assert f"{repo / 'logist.yml'}: agent_options.{key}:" in line, line
    assert reason in line, line
    assert_nothing_created(repo)
    after = victim.stat()
    assert victim.read_text() == "keep me\n" and after.st_mode == before.st_mode
    assert sorted(p.name for p in victim.parent.iterdir()) == ["precious.txt"]


def test_a_flag_naming_a_file_outside_is_refused_too(repo: Path, victim: Path) -> None:
    proc = run_logist(
        "run", "--prompt", "x", "--agent-opt", f"delete={victim}", cwd=repo, check=False
    )
    line = assert_one_line_error(proc)
    assert "command line: agent_options.delete:" in line and "an absolute path" in line
    assert victim.exists()
    assert_nothing_created(repo)


def test_a_worker_role_of_the_repository_cannot_name_a_file_outside(
    repo: Path, victim: Path
) -> None:
    commit(
        repo,
        {".logist/roles/fixer.yml": f"kind: worker\nagent_options:\n  delete: '{victim}'\n"},
    )
    proc = run_logist("run", "--prompt", "x", "--role", "fixer", cwd=repo, check=False)
    line = assert_one_line_error(proc)
    assert "role fixer" in line and "agent_options.delete" in line, line
    assert victim.exists()
    assert_nothing_created(repo)


def test_a_supervisor_role_of_the_repository_cannot_name_a_file_outside(
    repo: Path, victim: Path
) -> None:
    commit(
        repo,
        {
            ".logist/roles/supervisor.yml": (
                f"kind: supervisor\nagent_options:\n  binary: '{victim.parent}/x.bin'\n"
            )
        },
    )
    proc = run_logist("run", "--prompt", "x", "--supervisor", cwd=repo, check=False)
    line = assert_one_line_error(proc)
    assert "role supervisor" in line and "agent_options.binary" in line, line
    assert sorted(p.name for p in victim.parent.iterdir()) == ["precious.txt"]
    assert_nothing_created(repo)


def test_paths_inside_the_workspace_still_work(repo: Path) -> None:
    commit(repo, {"logist.yml": "agent_options:\n  delete: b.txt\n  binary: data/blob.bin\n"})
    record = run_job(repo, "--prompt", "x")
    assert record["status"] == "review"
    assert sorted(record["result"]["diff"]["paths"]) == ["LOGIST_MOCK.md", "b.txt", "data/blob.bin"]


def step_context(workspace: Path, tmp_path: Path) -> AgentContext:
    job_dir = tmp_path / "job"
    return AgentContext(
        workspace=str(workspace), job_dir=str(job_dir), prompt_file=str(job_dir / "p.txt"),
        rendered_prompt="x", answer_file=str(job_dir / "answer"),
    )  # fmt: skip


def test_the_step_checks_options_again_against_its_own_workspace(
    tmp_path: Path, victim: Path
) -> None:
    """A workspace can differ from the repository checked at creation (overlays, roles read
    later): the command is only built once its options stay inside that workspace."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "out").symlink_to(victim.parent)
    job = Job(id="j1", prompt="x", repo="/r", agent=AgentSpec("mock", options={"binary": "out/x"}))
    with pytest.raises(UsageError, match=r"agent_options\.binary: 'out/x'.*symlink out leads out"):
        build_spec(MockAgent(), job, step_context(workspace, tmp_path))
    safe = Job(id="j1", prompt="x", repo="/r", agent=AgentSpec("mock", options={"binary": "x"}))
    assert build_spec(MockAgent(), safe, step_context(workspace, tmp_path)).cwd == str(workspace)


# -- the mock program itself never follows a symlink out ---------------------------------------
MOCK_MODULE = "logist_server.providers.agents.mock_program"


def run_mock(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-m", MOCK_MODULE, "--prompt", "hi", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


MOCK_ATTACKS = {
    "target through a symlinked dir": ["--target=out/precious.txt"],
    "target that is a symlink": ["--target=precious-link"],
    "binary through a symlinked dir": ["--opt=binary=out/new.bin"],
    "binary onto a symlink": ["--opt=binary=precious-link"],
    "chmod of a symlink": ["--opt=chmod=precious-link"],
    "rename into a symlinked dir": ["--opt=rename=a.txt:out/a.txt"],
    "rename out of a symlinked dir": ["--opt=rename=out/precious.txt:stolen.txt"],
    "delete through a symlinked dir": ["--opt=delete=out/precious.txt"],
    "absolute": [f"--opt=delete={Path('/nonexistent/x')}"],
    "dot-dot": ["--opt=binary=../escaped.bin"],
}


@pytest.mark.parametrize("args", MOCK_ATTACKS.values(), ids=MOCK_ATTACKS.keys())
def test_the_mock_refuses_paths_that_lead_out(
    tmp_path: Path, victim: Path, args: list[str]
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.txt").write_text("a\n")
    (work / "out").symlink_to(victim.parent)
    (work / "precious-link").symlink_to(victim)
    before = victim.stat()
    proc = run_mock(work, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["type"] == "error" and "refused" in events[-1]["message"]
    assert victim.read_text() == "keep me\n" and victim.stat().st_mode == before.st_mode
    assert sorted(p.name for p in victim.parent.iterdir()) == ["precious.txt"]
    assert not (tmp_path / "escaped.bin").exists()


def test_deleting_a_symlink_removes_the_link_not_its_target(tmp_path: Path, victim: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious-link").symlink_to(victim)
    proc = run_mock(work, "--opt=delete=precious-link")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (work / "precious-link").is_symlink() and victim.read_text() == "keep me\n"


# -- point 9: the installed program runs, not the repository's copy ----------------------------
HOSTILE_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("the repository's code ran")
"""


def hostile_package(root: Path, marker: Path) -> dict[str, str]:
    """A `logist_server` package (and start-up hooks) that leave `marker` when imported."""
    code = HOSTILE_MODULE.format(marker=str(marker))
    return {
        "logist_server/__init__.py": code,
        "logist_server/providers/__init__.py": code,
        "logist_server/providers/agents/__init__.py": code,
        "logist_server/providers/agents/mock_program.py": code,
        "logist_server/domain/repo_paths.py": code,
        "sitecustomize.py": code,
        "usercustomize.py": code,
        "json/__init__.py": code,  # a standard module the mock imports
        "argparse.py": code,
    }


def test_a_repository_with_its_own_logist_server_does_not_run_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    repo = make_repo(tmp_path / "repo")
    commit(repo, hostile_package(repo, marker))
    record = run_job(repo, "--prompt", "x", "--agent-opt", "scenario=edit")
    assert record["status"] == "review"
    assert "LOGIST_MOCK.md" in record["result"]["diff"]["paths"]  # the real mock ran
    assert not marker.exists()


def start_mock(
    tmp_path: Path, workspace: Path, options: dict[str, str]
) -> tuple[HostRuntime, RuntimeHandle, JobPaths, ProcessSpec]:
    """The mock as a step runs it: built by its provider, started by the host runtime."""
    job = Job(id="j1", prompt="x", repo="/r", agent=AgentSpec("mock", options=options))
    ctx = step_context(workspace, tmp_path)
    Path(ctx.job_dir).mkdir()
    (Path(ctx.job_dir) / "user-prompt.txt").write_text("x\n")
    Path(ctx.prompt_file).write_text("x\n")
    spec = build_spec(MockAgent(), job, ctx)
    runtime = HostRuntime()
    paths = JobPaths(dir=str(tmp_path / "step"))
    handle = runtime.start(job, None, spec, paths)  # type: ignore[arg-type]
    return runtime, handle, paths, spec


def test_python_variables_cannot_steer_the_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative PYTHONPATH (`.` is common) resolves in the workspace, which the repository
    controls; PYTHONSTARTUP, PYTHONUSERBASE and PYTHONHOME could name it too."""
    marker = tmp_path / "marker"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    for name, text in hostile_package(workspace, marker).items():
        (workspace / name).parent.mkdir(parents=True, exist_ok=True)
        (workspace / name).write_text(text)
    (workspace / "startup.py").write_text(HOSTILE_MODULE.format(marker=str(marker)))
    monkeypatch.setenv("PYTHONPATH", ".")
    monkeypatch.setenv("PYTHONSTARTUP", "startup.py")
    monkeypatch.setenv("PYTHONUSERBASE", str(workspace))
    monkeypatch.setenv("PYTHONINSPECT", "1")
    runtime, handle, paths, spec = start_mock(tmp_path, workspace, {})
    deadline = time.monotonic() + 60
    while (code := runtime.exit_status(handle, paths)) is None:
        assert time.monotonic() < deadline, "the mock did not end"
        time.sleep(0.02)
    output = runtime.read_output(handle, paths, "", 1 << 20).data.decode()
    assert code == 0, output
    assert '"type": "done"' in output  # the real mock ran to its end
    assert (workspace / "LOGIST_MOCK.md").read_text() == "logist-mock: x\n"
    assert not marker.exists()
    assert os.path.isabs(spec.argv[0]) and "-I" in spec.argv[1:2]


def test_an_agent_program_is_found_in_absolute_path_entries_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository that commits `./claude` (or `bin/claude`) is not what runs."""
    work = tmp_path / "ws"
    (work / "bin").mkdir(parents=True)
    installed = tmp_path / "installed"
    installed.mkdir()
    for directory in (work, work / "bin", installed):
        program = directory / "agent-cli"
        program.write_text("#!/bin/sh\n")
        program.chmod(0o755)
    search = os.pathsep.join([".", "", "bin", str(installed)])
    monkeypatch.chdir(work)
    assert installed_program("agent-cli", search) == str(installed / "agent-cli")
    assert installed_program("agent-cli", os.pathsep.join([".", "bin"])) is None
    assert installed_program("./agent-cli", search) is None
    assert installed_program("bin/agent-cli", search) is None
    assert installed_program(str(installed / "agent-cli")) == str(installed / "agent-cli")
    assert installed_program(str(installed / "missing")) is None


def test_the_language_server_refuses_a_hostile_option_naming_file_and_key(
    repo: Path, victim: Path
) -> None:
    """`logist/createJob` goes through the same configuration check as `logist run`."""
    commit(repo, {"logist.yml": f"agent_options:\n  delete: '{victim}'\n"})
    client = RawClient([str(LOGIST), "serve"], env=dict(os.environ))
    try:
        client.initialize(repo)
        answer = client.request("logist/createJob", {"prompt": "x"}, timeout=60)
        message = answer["error"]["message"]
        assert f"{repo / 'logist.yml'}: agent_options.delete:" in message, answer
        flag = client.request(
            "logist/createJob",
            {"prompt": "x", "agentOptions": {"binary": "../escaped.bin"}},
            timeout=60,
        )
        assert "request: agent_options.binary:" in flag["error"]["message"], flag
    finally:
        client.close()
    assert victim.read_text() == "keep me\n"
    assert not (repo.parent / "escaped.bin").exists()
    assert_nothing_created(repo)


def test_the_mock_starts_the_installed_sleep_not_the_workspace_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hang` starts a `sleep` helper: with `.` in PATH, a committed `./sleep` would run."""
    marker = tmp_path / "marker"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    fake = workspace / "sleep"
    fake.write_text(f"#!/bin/sh\necho ran > {marker}\nexec /bin/sleep 3600\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([".", os.environ.get("PATH", os.defpath)]))
    runtime, handle, paths, _spec = start_mock(tmp_path, workspace, {"scenario": "hang"})
    try:
        wait_for(lambda: marker.exists() or helper_of(host_identity(handle).pid), timeout=60)
        assert not marker.exists(), "the workspace's ./sleep ran"
    finally:
        runtime.kill(handle, paths, None)
    assert not marker.exists()


def helper_of(wrapper: int | None) -> psutil.Process | None:
    """The `sleep 3600` among the wrapper's descendants, once it runs."""
    assert wrapper is not None
    for proc in psutil.Process(wrapper).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if proc.cmdline() == ["sleep", "3600"]:
                return proc
    return None

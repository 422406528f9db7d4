"""A toy agent and a toy runtime from an external package (tests/toy_plugin: its own
pyproject.toml and `logist.agents` / `logist.runtimes` entry points) run a job end to end
through the real `logist` CLI, with no change to Logist's files.

The package is built and installed by pip into a temporary directory (`--target`), which
is put on PYTHONPATH of the `logist` processes: the development venv is never changed.
The toy runtime's hand-over is `copy` (the agent runs in a sandbox copy of the workspace
and the runtime writes the result back), the way a remote runtime works. The package also
declares a `toy-broken` agent and runtime whose module fails to import: each is one line
naming its module, and the other providers keep working.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    BIN,
    assert_one_line_error,
    git,
    job_events,
    list_jobs,
    make_repo,
    parse_json,
    run_logist,
)
from fault_runner import popen_faulty

PLUGIN_SOURCE = Path(__file__).resolve().parent / "toy_plugin"
DISTRIBUTION = "logist-toy-plugin"
MISSING = "No module named 'logist_toy_missing_dependency'"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """pip installs the toy package (a copy of its source: a build writes into the source
    tree) into a temporary directory; the environment that puts it on the path."""
    tmp = tmp_path_factory.mktemp("toy-plugin")
    source = tmp / "source"
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp / "site"
    proc = subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-compile", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "logist_toy" / "runtime.py").is_file()
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(target) + (os.pathsep + path if path else "")}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": b"one\n"})


def rows(kind: str, repo: Path, env: dict[str, str] | None) -> dict[str, dict[str, Any]]:
    proc = run_logist(kind, "list", "--json", cwd=repo, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return {row["name"]: row for row in parse_json(proc.stdout)}


def test_the_dev_environment_does_not_have_the_plugin(
    repo: Path, plugin_env: dict[str, str]
) -> None:
    """Installed beside, not into, the venv: without its path Logist knows no toy."""
    assert "toy" not in rows("agent", repo, None)
    assert "toy" not in rows("runtime", repo, None)
    probe = subprocess.run(
        [sys.executable, "-c", "import importlib.metadata as m, sys;"
         f"sys.exit(any(d.metadata['Name'] == {DISTRIBUTION!r} for d in m.distributions()))"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, f"{DISTRIBUTION} is installed in the dev venv"


def test_agent_list_and_runtime_list_show_the_toys(repo: Path, plugin_env: dict[str, str]) -> None:
    agents = rows("agent", repo, plugin_env)
    assert agents["toy"]["installed"] is True, agents["toy"]
    assert "logist-toy-plugin" in agents["toy"]["description"]
    assert agents["mock"]["installed"] is True
    runtimes = rows("runtime", repo, plugin_env)
    assert runtimes["toy"]["available"] is True, runtimes["toy"]
    assert "copy hand-over" in runtimes["toy"]["description"]
    assert runtimes["host"]["available"] is True
    human = run_logist("runtime", "list", cwd=repo, env=plugin_env).stdout.splitlines()
    assert any(line.split()[:2] == ["toy", "available"] for line in human), human
    human = run_logist("agent", "list", cwd=repo, env=plugin_env).stdout.splitlines()
    assert any(line.split()[:2] == ["toy", "0.1.0"] for line in human), human


def test_a_job_runs_end_to_end_with_the_toy_agent_on_the_toy_runtime(
    repo: Path, plugin_env: dict[str, str]
) -> None:
    proc = run_logist(
        "run", "--json", "--agent", "toy", "--runtime", "toy", "--prompt", "Add a toy line",
        cwd=repo, env=plugin_env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = parse_json(proc.stdout)
    assert job["status"] == "review", job.get("status_reason")
    assert (job["agent"]["name"], job["runtime"]["name"]) == ("toy", "toy")
    step = job["steps"][-1]
    assert step["handle"]["runtime"] == "toy"
    assert step["session_id"] == "toy-1"  # the agent's session event, stored on its step
    sandbox = Path(step["handle"]["identity"]["sandbox"])
    # the agent ran in the runtime's copy, not in the workspace: the copy hand-over worked
    said = [e["data"]["text"] for e in job_events(repo, job["id"]) if e["kind"] == "message"]
    assert f"toy agent working in {sandbox}" in said, said
    assert Path(job["workspace"]["path"]).resolve() != sandbox.resolve()
    assert not (repo / "TOY.md").exists()  # the user's tree is untouched until accept

    diff = run_logist("job", "diff", job["id"], cwd=repo, env=plugin_env).stdout
    assert "+++ b/TOY.md" in diff and "+toy: Add a toy line" in diff, diff
    run_logist("job", "accept", job["id"], cwd=repo, env=plugin_env)
    assert (repo / "TOY.md").read_text() == "toy: Add a toy line\n"


@pytest.mark.parametrize(
    "flags",
    [("--agent", "toy-broken", "--runtime", "toy"), ("--agent", "toy", "--runtime", "toy-broken")],
)
def test_a_broken_plugin_is_one_line_naming_its_module(
    repo: Path, plugin_env: dict[str, str], flags: tuple[str, ...]
) -> None:
    proc = run_logist("run", *flags, "--prompt", "x", cwd=repo, env=plugin_env, check=False)
    line = assert_one_line_error(proc)
    assert "logist_toy.broken" in line and MISSING in line, line
    assert not (repo / ".logist" / "jobs").exists() or not any(
        (repo / ".logist" / "jobs").iterdir()
    ), "a job was created for a provider that cannot load"


def test_a_broken_plugin_breaks_no_other_provider(repo: Path, plugin_env: dict[str, str]) -> None:
    agents, runtimes = rows("agent", repo, plugin_env), rows("runtime", repo, plugin_env)
    for table, flag in ((agents, "installed"), (runtimes, "available")):
        broken = table["toy-broken"]
        assert broken[flag] is False, broken
        assert "logist_toy.broken" in broken["description"] and MISSING in broken["description"]
    assert agents["toy"]["installed"] and agents["mock"]["installed"]
    assert runtimes["toy"]["available"] and runtimes["host"]["available"]
    doctor = run_logist("doctor", cwd=repo, env=plugin_env, check=False)
    assert "Traceback" not in doctor.stdout + doctor.stderr
    failed = [x for x in doctor.stdout.splitlines() if "toy-broken" in x]
    assert failed and all(x.startswith("FAIL") and MISSING in x for x in failed), failed
    assert any(x.split()[:2] == ["ok", "runtime:toy"] for x in doctor.stdout.splitlines())
    job = parse_json(
        run_logist("run", "--json", "--agent", "mock", "--prompt", "still works",
                   cwd=repo, env=plugin_env, timeout=120).stdout
    )  # fmt: skip
    assert job["status"] == "review", job.get("status_reason")


def test_the_toy_runtime_refuses_an_option_it_cannot_honour(
    repo: Path, plugin_env: dict[str, str]
) -> None:
    """The contract's options reach an external runtime: the toy (no image support, the
    base class's flags) refuses `image` in one line before a job exists."""
    proc = run_logist(
        "run", "--agent", "toy", "--runtime", "toy", "--runtime-opt", "image=alpine",
        "--prompt", "x", cwd=repo, env=plugin_env, check=False,
    )  # fmt: skip
    line = assert_one_line_error(proc)
    assert "toy" in line and "image" in line, line
    assert not (repo / ".logist").exists() or not list_jobs(repo), "a job was created"


# -- copy-back: the engine writes the runtime's result, never through a symlink (F4) ----------
def hostile_repo(tmp_path: Path, victim: Path) -> Path:
    """A repository that commits `docs -> <victim>` (a symlink out of the tree, standing
    for the user's $HOME)."""
    victim.mkdir()
    (victim / ".bashrc").write_text("the user's own bashrc\n")
    repo = make_repo(tmp_path / "hostile", {"a.txt": b"one\n"})
    (repo / "docs").symlink_to(victim)
    git(repo, "add", "docs")
    git(repo, "commit", "-qm", "a symlink out of the tree")
    return repo


def test_copy_back_never_writes_through_a_repository_symlink(
    tmp_path: Path, plugin_env: dict[str, str]
) -> None:
    """The agent, in its sandbox, replaces the committed symlink `docs` by a directory
    holding `.bashrc`: the engine removes the symlink and makes a real directory in the
    workspace (shown in review); the file the symlink pointed at is untouched."""
    victim = tmp_path / "victimhome"
    repo = hostile_repo(tmp_path, victim)
    proc = run_logist(
        "run", "--json", "--agent", "toy", "--runtime", "toy", "--prompt", "plant: docs/.bashrc",
        cwd=repo, env=plugin_env, timeout=120, check=False,
    )  # fmt: skip
    job = parse_json(proc.stdout)
    assert job["status"] == "review", (job.get("status_reason"), proc.stderr)
    assert (victim / ".bashrc").read_text() == "the user's own bashrc\n"
    assert sorted(os.listdir(victim)) == [".bashrc"]
    workspace = Path(job["workspace"]["path"])
    assert not (workspace / "docs").is_symlink() and (workspace / "docs" / ".bashrc").is_file()
    diff = run_logist("job", "diff", job["id"], cwd=repo, env=plugin_env).stdout
    assert "docs/.bashrc" in diff, diff


@pytest.mark.parametrize("planted", ["sub/.git/hooks/post-checkout", "deep/er/.logist/x"])
def test_copy_back_refuses_git_and_logist_at_any_depth(
    repo: Path, plugin_env: dict[str, str], planted: str
) -> None:
    """A nested `.git` (hooks!) or `.logist` in the runtime's result fails the job naming
    the path; nothing of it reaches the workspace."""
    proc = run_logist(
        "run", "--json", "--agent", "toy", "--runtime", "toy", "--prompt", f"plant: {planted}",
        cwd=repo, env=plugin_env, timeout=120, check=False,
    )  # fmt: skip
    job = parse_json(proc.stdout)
    assert job["status"] == "failed", job
    reason = job.get("status_reason") or ""
    refused = planted.split("/.")[0] + "/." + planted.split("/.")[1].split("/")[0]
    assert refused in reason and "refused" in reason, reason
    workspace = job.get("workspace") or {}
    if workspace.get("path"):
        assert not (Path(workspace["path"]) / planted.split("/")[0]).exists()


# -- a runtime that cannot locate: never a second agent (F6) ------------------------------------
def test_a_runtime_without_locate_fails_the_step_instead_of_starting_a_second_agent(
    repo: Path, plugin_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver dies right after the toy runtime started the agent (its handle never
    recorded); the toy has no `locate`, so nobody can tell whether the agent runs. Attach
    fails the job saying so; no `restart` and no second step (a second agent) follow."""
    for key, value in plugin_env.items():
        monkeypatch.setenv(key, value)
    runner = popen_faulty(
        "start", "run", "--json", "--agent", "toy", "--runtime", "toy", "--prompt", "once",
        cwd=repo,
    )  # fmt: skip
    out, err = runner.communicate(timeout=120)
    assert runner.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), (out, err)
    (job,) = list_jobs(repo)
    assert job["status"] == "running" and job["steps"][-1]["handle"] is None
    proc = run_logist("job", "attach", job["id"], "--json", cwd=repo, timeout=120, check=False)
    record = parse_json(proc.stdout)
    assert record["status"] == "failed", record
    assert "cannot tell whether step 1's agent started" in record["status_reason"], record
    assert len(record["steps"]) == 1, record["steps"]
    kinds = [e["kind"] for e in job_events(repo, job["id"])]
    assert "restart" not in kinds and kinds.count("step") <= 1, kinds


# -- session ids are never paths (H2) -----------------------------------------------------------
@pytest.mark.parametrize("forged", ["../../home/u/.ssh/x", "a/b", "sess..ion", "/abs"])
def test_a_session_id_shaped_like_a_path_is_refused(
    repo: Path, plugin_env: dict[str, str], forged: str
) -> None:
    """A session id goes on the next step's command line, and real CLIs map it to a file:
    one with `/` or `..` is refused (the event says so) and never stored on the step."""
    proc = run_logist(
        "run", "--json", "--agent", "toy", "--runtime", "toy", "--prompt", f"session: {forged}",
        cwd=repo, env=plugin_env, timeout=120, check=False,
    )  # fmt: skip
    job = parse_json(proc.stdout)
    assert job["status"] == "review", job.get("status_reason")
    assert job["steps"][-1]["session_id"] is None, job["steps"][-1]
    sessions = [e["data"] for e in job_events(repo, job["id"]) if e["kind"] == "session"]
    assert len(sessions) == 1 and sessions[0]["refused"], sessions

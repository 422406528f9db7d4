"""A job store is Logist's own: a repository cannot bring one, nor point `.logist` elsewhere.

A hostile repository that commits `.logist/logist.db` hands Logist records of its making: a
`running` job whose agent pid is any process of the user, a workspace path anywhere. One that
commits `.logist` as a symbolic link makes Logist keep its store (and write its files) where
the link points. Both are refused, by every command and by both `job list` paths, and
nothing is killed, removed or written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from conftest import assert_one_line_error, git, make_repo, parse_json, run_logist, tree_state
from logist_server.domain.model import AgentSpec, Job, JobStatus, Step, Workspace
from logist_server.providers.runtimes.host import host_handle
from logist_server.store.job_store import STORE_DIRNAME, JobStore, new_job_id

COMMANDS = [
    ["job", "list"],
    ["job", "list", "--json"],
    ["job", "show", "{id}"],
    ["job", "attach", "{id}"],
    ["job", "cancel", "{id}"],
    ["job", "delete", "{id}"],
    ["gc", "--force"],
    ["run", "--prompt", "hi", "--agent-opt", "scenario=noop"],
]


@pytest.fixture
def victim_process() -> Iterator[psutil.Process]:
    """A process of the user's that a crafted record names as its agent."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def crafted_store(scratch: Path, pid: int, precious: Path) -> tuple[Path, str]:
    """A real Logist database holding a `running` job whose agent is `pid` and whose
    workspace is `precious`, as an attacker would make it (with Logist itself)."""
    make_repo(scratch)
    store = JobStore(scratch)
    job = Job(
        id=new_job_id(),
        prompt="crafted\x1b[2J",
        repo=str(scratch),
        agent=AgentSpec("mock"),
        status=JobStatus.RUNNING,
        workspace=Workspace(str(precious), "main", git(scratch, "rev-parse", "HEAD").strip()),
        steps=[Step(number=1, handle=host_handle(pid, psutil.Process(pid).create_time()))],
    )
    store.insert(job, [("created", {"status": "running"})])
    store.close()
    return scratch / STORE_DIRNAME / "logist.db", job.id


def precious_dir(tmp_path: Path) -> Path:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work\n")
    return precious


def assert_refused_everywhere(clone: Path, job_id: str, needle: str) -> None:
    for args in COMMANDS:
        argv = [a.replace("{id}", job_id) for a in args]
        line = assert_one_line_error(run_logist(*argv, cwd=clone, check=False))
        assert needle in line, (argv, line)


INDEX_FORMS = {
    "index v2": [],
    "index v4": ["update-index", "--index-version", "4"],  # paths compressed in the index
    "split index": ["update-index", "--split-index"],  # entries in a shared index file
}


@pytest.mark.parametrize("index_form", INDEX_FORMS.values(), ids=INDEX_FORMS.keys())
def test_a_committed_job_store_is_refused(
    tmp_path: Path, victim_process: psutil.Process, workspace_root: Path, index_form: list[str]
) -> None:
    precious = precious_dir(tmp_path)
    db, job_id = crafted_store(tmp_path / "scratch", victim_process.pid, precious)
    hostile = make_repo(tmp_path / "hostile")
    (hostile / STORE_DIRNAME).mkdir()
    shutil.copy(db, hostile / STORE_DIRNAME / "logist.db")
    git(hostile, "add", "-f", f"{STORE_DIRNAME}/logist.db")
    git(hostile, "commit", "-q", "-m", "a helpful job store")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(hostile), str(clone))
    if index_form:
        git(clone, *index_form)
    before = tree_state(clone)
    shipped = (clone / STORE_DIRNAME / "logist.db").read_bytes()
    assert_refused_everywhere(clone, job_id, "is tracked by git")
    assert victim_process.is_running() and victim_process.status() != psutil.STATUS_ZOMBIE
    assert (precious / "thesis.txt").read_text() == "years of work\n"
    assert tree_state(clone) == before
    assert (clone / STORE_DIRNAME / "logist.db").read_bytes() == shipped
    assert sorted(p.name for p in (clone / STORE_DIRNAME).iterdir()) == ["logist.db"]
    assert list(workspace_root.iterdir()) == []


def test_a_store_that_is_a_symbolic_link_is_refused(
    tmp_path: Path, victim_process: psutil.Process, workspace_root: Path
) -> None:
    """`.logist -> ../victim/.logist`: another repository's store, reached through a link."""
    precious = precious_dir(tmp_path)
    db, job_id = crafted_store(tmp_path / "victim", victim_process.pid, precious)
    victim_files = {p.name: p.stat().st_mtime_ns for p in db.parent.iterdir()}
    hostile = make_repo(tmp_path / "hostile")
    os.symlink(os.path.relpath(db.parent, hostile), hostile / STORE_DIRNAME)
    git(hostile, "add", STORE_DIRNAME)
    git(hostile, "commit", "-q", "-m", "a link")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(hostile), str(clone))
    assert (clone / STORE_DIRNAME).is_symlink()
    time.sleep(0.01)  # so that a write would show in the modification times
    assert_refused_everywhere(clone, job_id, "is a symbolic link")
    assert victim_process.is_running() and victim_process.status() != psutil.STATUS_ZOMBIE
    assert (precious / "thesis.txt").read_text() == "years of work\n"
    assert {p.name: p.stat().st_mtime_ns for p in db.parent.iterdir()} == victim_files
    assert list(workspace_root.iterdir()) == []


def test_a_link_to_an_empty_directory_gets_no_store_either(tmp_path: Path) -> None:
    """Pointing `.logist` at an empty directory elsewhere: nothing is created there."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    repo = make_repo(tmp_path / "repo")
    os.symlink(elsewhere, repo / STORE_DIRNAME)
    line = assert_one_line_error(
        run_logist("run", "--prompt", "hi", "--agent-opt", "scenario=noop", cwd=repo, check=False)
    )
    assert "is a symbolic link" in line
    assert list(elsewhere.iterdir()) == []


def test_a_committed_jobs_link_is_refused_and_committed_roles_are_fine(tmp_path: Path) -> None:
    """`.logist/jobs -> elsewhere` would receive every job's files; `.logist/roles/` is the
    one part of `.logist` a repository may bring."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    hostile = make_repo(tmp_path / "hostile")
    roles = hostile / STORE_DIRNAME / "roles"
    roles.mkdir(parents=True)
    (roles / "careful.yml").write_text("kind: worker\ndescription: a shared role\n")
    git(hostile, "add", "-f", STORE_DIRNAME)
    git(hostile, "commit", "-q", "-m", "a shared role")
    fine = tmp_path / "fine"
    git(tmp_path, "clone", "-q", str(hostile), str(fine))
    job = parse_json(run_logist("run", "--json", "--prompt", "hi", "--role", "careful",
                                "--agent-opt", "scenario=noop", cwd=fine).stdout)  # fmt: skip
    assert job["status"] == "review"
    assert run_logist("job", "list", cwd=fine).stdout.startswith(job["id"])
    os.symlink(elsewhere, hostile / STORE_DIRNAME / "jobs")
    git(hostile, "add", "-f", f"{STORE_DIRNAME}/jobs")
    git(hostile, "commit", "-q", "-m", "a link for the job files")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(hostile), str(clone))
    for args in (["run", "--prompt", "hi", "--agent-opt", "scenario=noop"],
                 ["job", "create", "--prompt", "hi"]):  # fmt: skip
        line = assert_one_line_error(run_logist(*args, cwd=clone, check=False))
        assert f"{STORE_DIRNAME}/jobs is tracked by git" in line, line
    assert run_logist("job", "list", cwd=clone).stdout == "no jobs\n"  # and nothing made
    assert list(elsewhere.iterdir()) == []
    assert not (clone / STORE_DIRNAME / "logist.db").exists()

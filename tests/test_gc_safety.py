"""Issue 9, point 1: `logist gc` removes only what Logist made for settled jobs of this
repository's store, keeps unharvested work unless forced, and says what it would do.

Real repositories and the real `logist` CLI; hostile or failing agents are shell scripts run
by the real host runtime (tests/hostile_agent.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import branches, git, parse_json, run_job, run_logist, worktree_paths
from fault_runner import popen_faulty
from hostile_agent import run_hostile
from logist_server.domain.model import JobStatus, Workspace
from logist_server.store.job_store import JobStore
from logist_server.support.locks import DriverLock
from logist_server.vcs.workspace import remove_workspace_dir


def gc(repo: Path, *args: str) -> dict[str, Any]:
    report: dict[str, Any] = parse_json(run_logist("gc", "--json", *args, cwd=repo).stdout)
    return report


def failed_clean_job(repo: Path) -> dict[str, Any]:
    """A settled job whose workspace holds nothing unharvested (the agent crashed at once)."""
    return run_job(repo, "--prompt", "boom", "--agent-opt", "scenario=crash", expect=1)


def as_legacy_worktree(repo: Path, job: dict[str, Any]) -> tuple[Path, str]:
    """Replace the job's workspace by what an earlier version made: a `git worktree` on
    the job's branch at its base. (workspace path, branch)"""
    ws, branch = Path(job["workspace"]["path"]), f"logist/{job['id']}"
    remove_workspace_dir(repo, ws)
    git(repo, "branch", "-D", "-q", branch)
    git(repo, "worktree", "add", "-q", "-b", branch, str(ws), job["base_commit"])
    assert (ws / ".git").is_file()
    return ws, branch


def test_gc_keeps_the_users_own_logist_branches_and_worktrees(repo: Path, tmp_path: Path) -> None:
    job = failed_clean_job(repo)
    git(repo, "branch", "logist/my-feature")
    mine = tmp_path / "my-worktree"
    git(repo, "worktree", "add", "-q", "-b", "logist/other", str(mine))
    (mine / "wip.txt").write_text("uncommitted work\n")
    git(repo, "branch", "logist/zzzzzzzz")  # looks like a job id; no job of this store has it
    report = gc(repo)
    assert report["branches"] == [f"logist/{job['id']}"]
    assert report["worktrees"] == [job["workspace"]["path"]]
    assert sorted(branches(repo)) == ["logist/my-feature", "logist/other", "logist/zzzzzzzz"]
    assert (mine / "wip.txt").read_text() == "uncommitted work\n"
    assert str(mine) in worktree_paths(repo)


def test_gc_keeps_unharvested_changes_unless_forced(repo: Path) -> None:
    _engine, job = run_hostile(repo, "echo unharvested >> a.txt\necho new > new.txt\nexit 3\n")
    assert job.status == JobStatus.FAILED and job.workspace is not None
    ws = Path(job.workspace.path)
    report = gc(repo)
    assert report["worktrees"] == [] and report["branches"] == []
    assert len(report["kept"]) == 1 and str(ws) in report["kept"][0]
    assert "never harvested" in report["kept"][0]
    assert (ws / "new.txt").is_file() and branches(repo) == [f"logist/{job.id}"]
    text = run_logist("gc", cwd=repo).stdout
    assert f"kept {ws}" in text and "nothing to remove" in text
    dry = gc(repo, "--dry-run", "--force")
    assert dry["dry_run"] is True and dry["worktrees"] == [str(ws)]
    assert (ws / "new.txt").is_file() and branches(repo) == [f"logist/{job.id}"]
    forced = gc(repo, "--force")
    assert forced["worktrees"] == [str(ws)] and forced["branches"] == [f"logist/{job.id}"]
    assert not ws.exists() and not Path(str(job.workspace.index)).exists()
    assert branches(repo) == []


def test_gc_dry_run_prints_what_it_would_remove_and_removes_nothing(repo: Path) -> None:
    job = failed_clean_job(repo)
    ws = Path(job["workspace"]["path"])
    out = run_logist("gc", "--dry-run", cwd=repo).stdout.splitlines()
    assert out == [f"would remove workspace {ws}", f"would remove branch logist/{job['id']}"]
    assert ws.is_dir() and branches(repo) == [f"logist/{job['id']}"]
    out = run_logist("gc", cwd=repo).stdout.splitlines()
    assert out == [f"removed workspace {ws}", f"removed branch logist/{job['id']}"]
    assert not ws.exists() and branches(repo) == []
    assert run_logist("gc", cwd=repo).stdout.strip() == "nothing to remove"


def test_gc_keeps_a_job_branch_the_user_moved_or_checked_out(repo: Path) -> None:
    moved, checked = failed_clean_job(repo), failed_clean_job(repo)
    git(repo, "checkout", "-q", f"logist/{moved['id']}")
    git(repo, "commit", "-q", "--allow-empty", "-m", "the user's own commit on it")
    git(repo, "checkout", "-q", f"logist/{checked['id']}")
    report = gc(repo)
    assert sorted(report["worktrees"]) == sorted(
        [moved["workspace"]["path"], checked["workspace"]["path"]]
    )
    assert report["branches"] == []
    kept = "\n".join(report["kept"])
    assert f"logist/{moved['id']}: it has commits logist did not make" in kept
    assert f"logist/{checked['id']}: it is checked out" in kept
    assert sorted(branches(repo)) == sorted([f"logist/{moved['id']}", f"logist/{checked['id']}"])


def test_gc_in_a_linked_worktree_leaves_the_main_worktrees_jobs(repo: Path, tmp_path: Path) -> None:
    main_failed = failed_clean_job(repo)
    main_review = run_job(repo, "--file", "a.txt", "--prompt", "in review")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "elsewhere", str(linked))
    linked_failed = failed_clean_job(linked)
    report = gc(linked)
    assert report["worktrees"] == [linked_failed["workspace"]["path"]]
    assert report["branches"] == [f"logist/{linked_failed['id']}"]
    for job in (main_failed, main_review):
        assert Path(job["workspace"]["path"]).is_dir()
        assert f"logist/{job['id']}" in branches(repo)
    assert gc(repo)["worktrees"] == [main_failed["workspace"]["path"]]
    assert branches(repo) == [f"logist/{main_review['id']}"]


def test_gc_removes_legacy_worktree_workspaces_of_recorded_jobs_only(
    repo: Path, tmp_path: Path
) -> None:
    """Workspaces made by earlier versions were `git worktree`s: gc still removes those of
    recorded settled jobs, through git, and keeps others (and their uncommitted files)."""
    legacy = failed_clean_job(repo)
    ws, branch = as_legacy_worktree(repo, legacy)
    store = JobStore(repo, repo / ".git")

    def as_legacy(j: Any) -> None:
        j.workspace = Workspace(path=str(ws), branch=branch, base_commit=legacy["base_commit"])

    store.update(legacy["id"], as_legacy)
    store.close()
    foreign = tmp_path / "foreign"
    git(repo, "worktree", "add", "-q", "-b", "logist/aaaaaaaa", str(foreign))
    (foreign / "wip.txt").write_text("keep me\n")
    report = gc(repo)
    assert report["worktrees"] == [str(ws)] and report["branches"] == [branch]
    assert sorted(worktree_paths(repo)) == sorted([str(repo), str(foreign)])
    assert not ws.exists()
    assert (foreign / "wip.txt").read_text() == "keep me\n"
    assert branches(repo) == ["logist/aaaaaaaa"]


def test_gc_keeps_a_legacy_worktree_with_uncommitted_files(repo: Path) -> None:
    legacy = failed_clean_job(repo)
    ws, _branch = as_legacy_worktree(repo, legacy)
    (ws / "a.txt").write_text("changed in the old worktree\n")
    report = gc(repo)
    assert report["worktrees"] == [] and str(ws) in report["kept"][0]
    assert (ws / "a.txt").read_text() == "changed in the old worktree\n"
    assert gc(repo, "--force")["worktrees"] == [str(ws)]
    assert worktree_paths(repo) == [str(repo)] and branches(repo) == []


def test_gc_leaves_a_job_another_process_holds(repo: Path) -> None:
    job = failed_clean_job(repo)
    store = JobStore(repo, repo / ".git")
    lock = DriverLock(store.lock_path(job["id"]))
    assert lock.try_acquire()
    try:
        report = gc(repo)
        assert report["worktrees"] == [] and report["branches"] == []
        assert report["kept"] == [f"job {job['id']}: another process is working on it"]
        assert Path(job["workspace"]["path"]).is_dir()
    finally:
        lock.release()
        store.close()
    assert gc(repo)["worktrees"] == [job["workspace"]["path"]]


def test_delete_removes_a_workspace_made_but_never_recorded(
    repo: Path, workspace_root: Path
) -> None:
    """A driver killed right after provisioning (`fault_runner.py provision`) leaves a
    workspace the record does not name: `job delete` still removes it, and its branch."""
    proc = popen_faulty("provision", "run", "--json", "--prompt", "x", cwd=repo)
    out, _err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and out == ""
    (job,) = parse_json(run_logist("job", "list", "--json", cwd=repo).stdout)
    assert job["workspace"] is None
    made = [p for p in workspace_root.glob("*/*") if p.is_dir()]
    assert [p.name for p in made] == [job["id"]]
    assert branches(repo) == [f"logist/{job['id']}"]
    run_logist("job", "delete", job["id"], cwd=repo)
    assert not made[0].exists() and list(workspace_root.glob("*/*")) == []
    assert branches(repo) == []

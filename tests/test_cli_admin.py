"""Listing, logs, providers, gc, reject and delete through the real CLI."""

from __future__ import annotations

from pathlib import Path

from conftest import (
    assert_one_line_error,
    branches,
    git,
    job_events,
    list_jobs,
    parse_json,
    parse_json_lines,
    porcelain,
    run_job,
    run_logist,
    show_job,
    tree_state,
    worktree_paths,
)
from logist_server.store.job_store import JobStore


def test_list_log_and_gc(repo: Path, workspace_root: Path) -> None:
    # No jobs yet: an empty JSON array, and listing creates no store.
    assert run_logist("job", "list", "--json", cwd=repo).stdout.strip() == "[]"
    assert run_logist("job", "list", cwd=repo).stdout.strip() == "no jobs"
    assert not (repo / ".logist").exists()

    kept = run_job(repo, "--file", "a.txt", "--prompt", "keep me")
    failed = run_job(repo, "--prompt", "boom", "--agent-opt", "scenario=crash", expect=1)
    orphan = run_job(repo, "--file", "b.txt", "--prompt", "orphan")
    paths = {j["id"]: Path(j["workspace"]["path"]) for j in (kept, failed, orphan)}
    assert all(p.is_dir() for p in paths.values())  # a failed job keeps its worktree until gc

    # `job list --json` is one array of full records, oldest first.
    listed = list_jobs(repo)
    assert [j["id"] for j in listed] == [kept["id"], failed["id"], orphan["id"]]
    assert [j["status"] for j in listed] == ["review", "failed", "review"]
    only_review = parse_json(
        run_logist("job", "list", "--status", "review", "--json", cwd=repo).stdout
    )
    assert [j["id"] for j in only_review] == [kept["id"], orphan["id"]]
    text = run_logist("job", "list", cwd=repo).stdout.splitlines()
    assert len(text) == 3 and text[0].startswith(kept["id"]) and "review" in text[0]

    # `job log --json`: one object per line, seq 1..N, from creation to the final status.
    events = job_events(repo, kept["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["kind"] == "created"
    assert events[-1]["kind"] == "status" and events[-1]["data"]["to"] == "review"
    assert {"message", "tool_call", "file_change", "usage", "done"} <= {e["kind"] for e in events}
    # --follow on a settled job prints the same and terminates.
    follow = run_logist("job", "log", kept["id"], "--follow", "--json", cwd=repo, timeout=10)
    assert parse_json_lines(follow.stdout) == events
    human = run_logist("job", "log", kept["id"], cwd=repo).stdout.splitlines()
    assert len(human) == len(events) and "running -> review" in human[-1]

    # The orphan's job record disappears from the store; its workspace and branch stay behind,
    # and gc leaves them too: it removes only what carries the id of a job the store records.
    store = JobStore(repo)
    store.delete(orphan["id"])
    store.close()
    assert f"logist/{orphan['id']}" in branches(repo)

    report = parse_json(run_logist("gc", "--json", cwd=repo).stdout)
    assert report["worktrees"] == [str(paths[failed["id"]])]
    assert not paths[failed["id"]].exists()
    assert paths[orphan["id"]].is_dir()
    assert paths[kept["id"]].is_dir()  # a job in review keeps its workspace
    assert sorted(branches(repo)) == sorted([f"logist/{kept['id']}", f"logist/{orphan['id']}"])
    assert worktree_paths(repo) == [str(repo)]  # workspaces are not git worktrees
    assert show_job(repo, failed["id"])["status"] == "failed"  # the record itself stays

    # A second gc has nothing left to do, and the kept job can still be accepted.
    assert "nothing to remove" in run_logist("gc", cwd=repo).stdout
    run_logist("job", "accept", kept["id"], cwd=repo)
    assert (repo / "a.txt").read_text().endswith("logist-mock: keep me\n")


def test_gc_leaves_a_logist_branch_no_job_recorded(repo: Path) -> None:
    git(repo, "branch", "logist/zzzzzzzz")
    git(repo, "branch", "feature/mine")
    out = run_logist("gc", cwd=repo).stdout
    assert "nothing to remove" in out
    assert branches(repo) == ["logist/zzzzzzzz"]  # no job of this store has that id
    assert branches(repo, "feature/*") == ["feature/mine"]


def test_reject_and_delete(repo: Path) -> None:
    (repo / "a.txt").write_bytes(b"user's uncommitted content\n")
    rejected = run_job(repo, "--file", "a.txt", "--prompt", "no thanks")
    deleted = run_job(repo, "--file", "b.txt", "--prompt", "forget me")
    before = tree_state(repo)
    status_before = porcelain(repo)

    out = parse_json(run_logist("job", "reject", rejected["id"], "--json", cwd=repo).stdout)
    assert out["status"] == "rejected"
    assert not Path(rejected["workspace"]["path"]).exists()
    assert f"logist/{rejected['id']}" not in branches(repo)
    assert tree_state(repo) == before
    assert porcelain(repo) == status_before
    assert "rejected" in assert_one_line_error(
        run_logist("job", "accept", rejected["id"], cwd=repo, check=False)
    )

    out = parse_json(run_logist("job", "delete", deleted["id"], "--json", cwd=repo).stdout)
    assert out == {"id": deleted["id"], "deleted": True}
    assert [j["id"] for j in list_jobs(repo)] == [rejected["id"]]
    assert not Path(deleted["workspace"]["path"]).exists()
    assert branches(repo) == []
    assert worktree_paths(repo) == [str(repo)]
    assert not (repo / ".logist" / "jobs" / deleted["id"]).exists()
    assert_one_line_error(run_logist("job", "show", deleted["id"], cwd=repo, check=False))
    assert tree_state(repo) == before
    assert ".logist" not in porcelain(repo)


def test_agent_and_runtime_lists(repo: Path) -> None:
    agents = parse_json(run_logist("agent", "list", "--json", cwd=repo).stdout)
    assert isinstance(agents, list)
    mock = next(a for a in agents if a["name"] == "mock")
    assert mock["version"] and "edit" in mock["description"]
    runtimes = parse_json(run_logist("runtime", "list", "--json", cwd=repo).stdout)
    host = next(r for r in runtimes if r["name"] == "host")
    assert host["available"] is True
    assert "mock" in run_logist("agent", "list", cwd=repo).stdout
    assert "host" in run_logist("runtime", "list", cwd=repo).stdout
    assert not (repo / ".logist").exists()


def test_flood_of_output_is_logged_gapless_and_in_order(repo: Path) -> None:
    n = 3000
    job = run_job(
        repo, "--prompt", "flood", "--agent-opt", "scenario=flood", "--agent-opt", f"lines={n}"
    )
    assert job["status"] == "review"
    events = job_events(repo, job["id"])
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    texts = [e["data"]["text"] for e in events if e["kind"] == "message"]
    assert texts == [f"flood line {i}" for i in range(n)]
    # Following from the start gives the same, and --follow ends on a settled job.
    followed = run_logist("job", "log", job["id"], "--json", "--follow", cwd=repo, timeout=20)
    assert parse_json_lines(followed.stdout) == events


def test_gc_leaves_no_lock_file_for_a_job_that_does_not_exist(repo: Path) -> None:
    git(repo, "branch", "logist/zzzzzzzz")
    run_logist("gc", cwd=repo)
    assert branches(repo) == ["logist/zzzzzzzz"]
    assert not (repo / ".logist" / "locks" / "zzzzzzzz.lock").exists()

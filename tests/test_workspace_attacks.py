"""Issue 9, attacks on the workspace and the job's branch after the first safety fixes:

- settling a job (`accept`, `reject`, `job delete`) never deletes a `logist/<id>` branch the
  user committed to or checked out (the rule gc follows, `gc.release_branch`);
- `job diff` shows what accept applies (from git), not a file a surviving agent can rewrite;
- a workspace path the agent replaced by a symlink or another directory is never followed:
  no git call, reset or removal reaches what it points at;
- a repository's `.gitignore` cannot pull Logist's store into a base or a workspace.

Real repositories, the real `logist` CLI and mock agent; hostile agents are shell scripts run
by the real host runtime (tests/hostile_agent.py).
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from conftest import branches, git, job_events, make_repo, parse_json, run_job, run_logist
from hostile_agent import SCRIPT_AGENT, engine_with, run_hostile
from logist_server.domain.model import JobPolicy, JobStatus
from logist_server.domain.requests import JobRequest

RATE_LIMIT = (
    'API Error: 429 {"type":"error","error":{"type":"rate_limit_error",'
    '"message":"This request would exceed the rate limit."}}'
)
SECRET = b"-----BEGIN OPENSSH PRIVATE KEY----- not really\n"


def in_object_store(repo: Path, content: bytes) -> bool:
    """Whether a blob with `content` is in `repo`'s object store."""
    blob = git(repo, "hash-object", "--stdin", input=content).strip()
    probe = subprocess.run(["git", "cat-file", "-e", blob], cwd=repo, capture_output=True)
    return probe.returncode == 0


def victim_dir(tmp_path: Path) -> Path:
    """A directory of the user's that is no part of any job: a key and a note."""
    victim = tmp_path / "victim"
    (victim / "notes").mkdir(parents=True)
    (victim / "id_rsa").write_bytes(SECRET)
    (victim / "notes" / "n.md").write_text("mine\n")
    return victim


def victim_intact(victim: Path) -> bool:
    files = sorted(str(p.relative_to(victim)) for p in victim.rglob("*"))
    return files == ["id_rsa", "notes", "notes/n.md"] and (victim / "id_rsa").read_bytes() == SECRET


# -- the job's branch --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reject", "accept", "delete"])
def test_settling_keeps_a_job_branch_the_user_committed_to(repo: Path, action: str) -> None:
    job = run_job(repo, "--prompt", "edit")
    branch = f"logist/{job['id']}"
    git(repo, "switch", "-q", branch)
    (repo / "mine.txt").write_text("my own work\n")
    git(repo, "add", "mine.txt")
    git(repo, "commit", "-qm", "mine")
    mine = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "main")
    proc = run_logist("job", action, job["id"], cwd=repo)
    assert branches(repo) == [branch]
    assert git(repo, "rev-parse", branch).strip() == mine
    assert f"kept branch {branch}: it has commits logist did not make" in proc.stderr
    assert not Path(job["workspace"]["path"]).exists()
    if action != "delete":  # the record stays, and says so
        kept = [e for e in job_events(repo, job["id"]) if e["kind"] == "kept"]
        assert kept and "commits logist did not make" in kept[0]["data"]["kept"][0]


def test_settling_keeps_a_job_branch_checked_out_and_deletes_an_untouched_one(
    repo: Path, tmp_path: Path
) -> None:
    checked, untouched = run_job(repo, "--prompt", "edit"), run_job(repo, "--prompt", "edit")
    where = tmp_path / "look"
    git(repo, "worktree", "add", "-q", str(where), f"logist/{checked['id']}")
    out = run_logist("job", "reject", checked["id"], cwd=repo)
    assert f"kept branch logist/{checked['id']}: it is checked out" in out.stderr
    out = run_logist("job", "reject", untouched["id"], cwd=repo)
    assert "kept" not in out.stderr
    assert branches(repo) == [f"logist/{checked['id']}"]
    assert git(where, "rev-parse", "HEAD").strip() == checked["result"]["result_commit"]


# -- job diff ----------------------------------------------------------------------------------


def test_job_diff_is_made_from_the_recorded_commits_not_a_stored_file(repo: Path) -> None:
    job = run_job(repo, "--prompt", "edit")
    base, result = job["base_commit"], job["result"]["result_commit"]
    shown = run_logist("job", "diff", job["id"], cwd=repo).stdout
    patch = repo / ".logist" / "jobs" / job["id"] / "result.patch"
    patch.write_text(  # what a surviving agent process would write there
        "diff --git a/harmless.txt b/harmless.txt\nnew file mode 100644\n--- /dev/null\n"
        "+++ b/harmless.txt\n@@ -0,0 +1 @@\n+harmless\n"
    )
    again = run_logist("job", "diff", job["id"], cwd=repo).stdout
    assert again == shown and "harmless" not in again
    assert again == git(repo, "diff", "--binary", "-M", base, result)
    assert "+logist-mock: edit" in again


def test_job_diff_refuses_a_result_whose_tree_is_not_the_reviewed_one(repo: Path) -> None:
    """A record pointing at another result than the harvested tree (a store edited behind
    Logist's back) is refused, as accept refuses it."""
    job = run_job(repo, "--prompt", "edit")
    other = git(repo, "commit-tree", "-p", job["base_commit"], "-m", "x", "HEAD^{tree}").strip()
    from logist_server.store.job_store import JobStore

    store = JobStore(repo, repo / ".git")
    try:
        store.update(job["id"], lambda j: setattr(j.result, "result_commit", other), [])
    finally:
        store.close()
    proc = run_logist("job", "diff", job["id"], cwd=repo, check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert "cannot show the diff" in proc.stderr and "Traceback" not in proc.stderr


# -- a workspace path replaced by the agent ----------------------------------------------------


def test_a_retry_never_resets_through_a_workspace_replaced_by_a_symlink(
    repo: Path, tmp_path: Path
) -> None:
    victim = victim_dir(tmp_path)
    once = tmp_path / "once"
    script = f"""
        WS=$(pwd)
        if [ ! -e {once} ]; then
            touch {once}
            cd /; rm -rf "$WS"; ln -s {victim} "$WS"
            echo '{RATE_LIMIT}' >&2
            exit 1
        fi
    """
    engine = engine_with(repo, script)
    policy = JobPolicy(max_retries=1, backoff_s=0.01, max_backoff_s=0.01)
    job = engine.create_job(JobRequest(prompt="retry", agent=SCRIPT_AGENT, policy=policy))
    job = asyncio.run(engine.drive(job.id))
    assert once.exists()  # the first try ran
    assert job.status == JobStatus.FAILED
    assert job.status_reason is not None and "replaced by a symlink" in job.status_reason
    assert victim_intact(victim)
    assert not in_object_store(repo, SECRET)
    assert job.workspace is not None and job.workspace.device is not None
    run_logist("job", "delete", job.id, cwd=repo)
    assert not Path(job.workspace.path).is_symlink() and victim_intact(victim)


def test_harvest_never_reads_a_workspace_replaced_by_a_symlink(repo: Path, tmp_path: Path) -> None:
    victim = victim_dir(tmp_path)
    _engine, job = run_hostile(repo, f'WS=$(pwd); cd /; rm -rf "$WS"; ln -s {victim} "$WS"\n')
    assert job.status == JobStatus.FAILED
    assert job.status_reason is not None and "replaced by a symlink" in job.status_reason
    assert job.result.result_commit is None
    assert not in_object_store(repo, SECRET)
    assert victim_intact(victim)
    report = run_logist("gc", "--force", cwd=repo)
    assert job.workspace is not None and job.workspace.path in report.stdout
    assert not Path(job.workspace.path).is_symlink() and victim_intact(victim)


def test_a_workspace_replaced_by_another_directory_is_refused_and_kept(
    repo: Path, tmp_path: Path
) -> None:
    script = 'WS=$(pwd); cd /; rm -rf "$WS"; mkdir "$WS"; echo other > "$WS/other.txt"\n'
    _engine, job = run_hostile(repo, script)
    assert job.status == JobStatus.FAILED
    assert job.status_reason is not None
    assert "replaced by another directory" in job.status_reason
    assert job.workspace is not None
    ws = Path(job.workspace.path)
    assert not in_object_store(repo, b"other\n")
    kept = run_logist("gc", cwd=repo).stdout
    assert "replaced by another directory" in kept and (ws / "other.txt").exists()
    run_logist("gc", "--force", cwd=repo)
    assert not ws.exists()


def test_reject_removes_a_symlink_at_the_workspace_not_its_target(
    repo: Path, tmp_path: Path
) -> None:
    """After review a surviving process swaps the workspace for a symlink to the user's
    directory: reject (and gc) remove the link only."""
    victim = victim_dir(tmp_path)
    job = run_job(repo, "--prompt", "edit")
    ws = Path(job["workspace"]["path"])
    subprocess.run(["rm", "-rf", str(ws)], check=True)
    ws.symlink_to(victim, target_is_directory=True)
    run_logist("job", "reject", job["id"], cwd=repo)
    assert not ws.is_symlink() and not ws.exists()
    assert victim_intact(victim)
    assert branches(repo) == []


# -- the store stays out of every snapshot -----------------------------------------------------


def test_a_gitignore_cannot_pull_the_store_into_a_base_or_a_workspace(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "hostile",
        {
            "a.txt": b"a\n",
            ".gitignore": b"!/.logist\n!/.logist/**\n!.logist\n!**/.logist/**\n",
        },
    )
    first = run_job(repo, "--prompt", "a secret prompt")  # the store now exists, with prompts
    assert (repo / ".logist" / "logist.db").is_file()
    (repo / "sub" / ".LOGIST").mkdir(parents=True)
    (repo / "sub" / ".LOGIST" / "x").write_text("another store\n")
    clean = run_job(repo, "--prompt", "edit")
    assert clean["base_commit"] == git(repo, "rev-parse", "HEAD").strip()  # nothing else new
    (repo / "a.txt").write_text("dirty\n")
    literal = {"GIT_LITERAL_PATHSPECS": "1", "GIT_GLOB_PATHSPECS": "1"}  # the user's own
    dirty = parse_json(
        run_logist("run", "--json", "--prompt", "edit", cwd=repo, env=literal).stdout
    )
    for job in (first, clean, dirty):
        listed = git(repo, "ls-tree", "-r", "--name-only", job["base_commit"]).split()
        assert not [p for p in listed if ".logist" in p.lower()], listed
        ws = Path(job["workspace"]["path"])
        assert not (ws / ".logist").exists() and not (ws / "sub").exists()
    listed = git(repo, "ls-tree", "-r", "--name-only", dirty["base_commit"]).split()
    assert sorted(listed) == [".gitignore", "a.txt"]

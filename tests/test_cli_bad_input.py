"""Every bad input: exit status 2, exactly one line on stderr, no traceback, nothing created."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import (
    assert_one_line_error,
    branches,
    list_jobs,
    porcelain,
    run_job,
    run_logist,
    tree_state,
    worktree_paths,
)

RUN_CASES = {
    "no prompt": (["run", "--file", "a.txt"], "prompt"),
    "blank prompt": (["run", "--prompt", "   "], "prompt"),
    "unknown agent": (["run", "--prompt", "hi", "--agent", "nope"], "nope"),
    "unknown runtime": (["run", "--prompt", "hi", "--runtime", "nope"], "nope"),
    "file outside (absolute)": (["run", "--prompt", "hi", "--file", "{outside_file}"], "outside"),
    "missing file": (["run", "--prompt", "hi", "--file", "missing.txt"], "missing.txt"),
    "file in .git": (["run", "--prompt", "hi", "--file", ".git/config"], ".git/config"),
    "range not a number": (["run", "--prompt", "hi", "--file", "a.txt", "--range", "x"], "range"),
    "range backwards": (["run", "--prompt", "hi", "--file", "a.txt", "--range", "5-2"], "range"),
    "range past the end": (
        ["run", "--prompt", "hi", "--file", "a.txt", "--range", "50-60"],
        "past the end",
    ),
    "range without file": (["run", "--prompt", "hi", "--range", "1-2"], "--range"),
    "max-cost lots": (["run", "--prompt", "hi", "--max-cost", "lots"], "--max-cost"),
    "max-cost negative": (["run", "--prompt", "hi", "--max-cost", "-1"], "--max-cost"),
    "agent-opt without =": (["run", "--prompt", "hi", "--agent-opt", "scenario"], "--agent-opt"),
    "missing prompt file": (["run", "--prompt-file", "nope.txt"], "nope.txt"),
    "unknown option": (["run", "--prompt", "hi", "--frobnicate"], "--frobnicate"),
    "unknown mock scenario": (["run", "--prompt", "hi", "--agent-opt", "scenario=bogus"], "bogus"),
    "mock option not a number": (
        ["run", "--prompt", "hi", "--agent-opt", "scenario=slow", "--agent-opt", "seconds=abc"],
        "seconds",
    ),
    "prompt and prompt file": (["run", "--prompt", "hi", "--prompt-file", "a.txt"], "not both"),
    "json mode too": (["run", "--json", "--prompt", "hi", "--agent", "nope"], "nope"),
}


def assert_nothing_created(repo: Path, workspace_root: Path, before: dict[str, object]) -> None:
    assert not (repo / ".logist").exists()
    assert worktree_paths(repo) == [str(repo)]
    assert branches(repo) == []
    assert list(workspace_root.iterdir()) == []
    assert tree_state(repo) == before
    assert porcelain(repo) == ""


@pytest.mark.parametrize(("args", "needle"), RUN_CASES.values(), ids=RUN_CASES.keys())
def test_bad_run_input(
    repo: Path, workspace_root: Path, tmp_path: Path, args: list[str], needle: str
) -> None:
    outside_file = tmp_path / "outside.txt"
    outside_file.write_text("not in the repo\n")
    args = [a.replace("{outside_file}", str(outside_file)) for a in args]
    before = tree_state(repo)
    proc = run_logist(*args, cwd=repo, check=False)
    line = assert_one_line_error(proc)
    assert needle in line
    if "--json" in args:
        assert proc.stdout == ""
    assert_nothing_created(repo, workspace_root, before)


@pytest.mark.parametrize("action", ["show", "diff", "accept", "cancel", "log"])
def test_unknown_job_id_in_a_repository_without_jobs(
    repo: Path, workspace_root: Path, action: str
) -> None:
    before = tree_state(repo)
    line = assert_one_line_error(run_logist("job", action, "zzzzzzzz", cwd=repo, check=False))
    assert "zzzzzzzz" in line
    assert_nothing_created(repo, workspace_root, before)


def test_unknown_ambiguous_and_malformed_job_ids_with_jobs_present(repo: Path) -> None:
    ids = [
        run_job(repo, "--prompt", f"job {i}", "--agent-opt", "scenario=noop")["id"]
        for i in range(2)
    ]
    before = tree_state(repo)
    cases = [(action, "zzzzzzzz") for action in ("show", "diff", "accept", "cancel", "delete")]
    cases += [("show", "not-an-id!"), ("reject", "zz")]
    for action, ref in cases:
        proc = run_logist("job", action, ref, "--json", cwd=repo, check=False)
        assert ref in assert_one_line_error(proc)
        assert proc.stdout == ""
    # Ids made seconds apart share their leading (time) characters: a short prefix is ambiguous.
    common = 0
    while ids[0][common] == ids[1][common]:
        common += 1
    assert common > 0, ids
    line = assert_one_line_error(run_logist("job", "show", ids[0][:common], cwd=repo, check=False))
    assert "ambiguous" in line
    shown = run_logist("job", "show", ids[0][: common + 1], "--json", cwd=repo)
    assert ids[0] in shown.stdout
    assert [j["id"] for j in list_jobs(repo)] == ids
    assert [j["status"] for j in list_jobs(repo)] == ["review", "review"]
    assert tree_state(repo) == before


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--prompt", "hi"],
        ["job", "list"],
        ["job", "show", "zzzzzzzz"],
        ["gc"],
    ],
    ids=lambda a: " ".join(a),
)
def test_not_inside_a_git_repository(outside: Path, workspace_root: Path, args: list[str]) -> None:
    (outside / "x.txt").write_text("x\n")
    line = assert_one_line_error(run_logist(*args, cwd=outside, check=False))
    assert "not inside a git repository" in line
    assert sorted(p.name for p in outside.iterdir()) == ["x.txt"]
    assert list(workspace_root.iterdir()) == []


def test_dash_c_pointing_outside_a_repository(repo: Path, outside: Path) -> None:
    line = assert_one_line_error(
        run_logist("run", "-C", str(outside), "--prompt", "hi", cwd=repo, check=False)
    )
    assert "not inside a git repository" in line
    assert not (repo / ".logist").exists()

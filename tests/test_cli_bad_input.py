"""Every bad input: exit status 2, exactly one line on stderr, no traceback, nothing created."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from conftest import (
    assert_one_line_error,
    branches,
    git,
    job_events,
    list_jobs,
    make_repo,
    porcelain,
    run_job,
    run_logist,
    tree_state,
    worktree_paths,
)
from mounts import read_only

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
    "max-cost nan": (["run", "--prompt", "hi", "--max-cost", "nan"], "--max-cost"),
    "max-cost inf": (["run", "--prompt", "hi", "--max-cost", "inf"], "--max-cost"),
    "max-cost overflowing to inf": (["run", "--prompt", "hi", "--max-cost=1e999"], "--max-cost"),
    "max-time nan": (["run", "--prompt", "hi", "--max-time", "NaN"], "--max-time"),
    "hang-timeout inf": (["run", "--prompt", "hi", "--hang-timeout", "Infinity"], "--hang-timeout"),
    "missing prompt file": (["run", "--prompt-file", "nope.txt"], "nope.txt"),
    "prompt file not UTF-8": (["run", "--prompt-file", "{latin1_file}"], "not UTF-8"),
    "-C to a missing directory": (["run", "-C", "{missing_dir}", "--prompt", "hi"], "no such"),
    "-C to a file": (["-C", "{outside_file}", "run", "--prompt", "hi"], "not a directory"),
    "unknown option": (["run", "--prompt", "hi", "--frobnicate"], "--frobnicate"),
    "unknown mock scenario": (["run", "--prompt", "hi", "--agent-opt", "scenario=bogus"], "bogus"),
    "mock option not a number": (
        ["run", "--prompt", "hi", "--agent-opt", "scenario=slow", "--agent-opt", "seconds=abc"],
        "seconds",
    ),
    "prompt and prompt file": (["run", "--prompt", "hi", "--prompt-file", "a.txt"], "not both"),
    "a value that looks like a flag": (["run", "--prompt", "hi", "--file", "-rf"], "--flag=VALUE"),
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
    latin1_file = tmp_path / "latin1.txt"
    latin1_file.write_bytes("Résumé du problème\n".encode("latin-1"))
    places = {
        "{outside_file}": str(outside_file),
        "{latin1_file}": str(latin1_file),
        "{missing_dir}": str(tmp_path / "missing" / "dir"),
    }
    for mark, value in places.items():
        args = [a.replace(mark, value) for a in args]
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


# -- the job store: not a directory, read-only, damaged ---------------------------------------
STORE_COMMANDS = [
    ["run", "--prompt", "hi", "--agent-opt", "scenario=noop"],
    ["job", "list"],
    ["job", "list", "--json"],
    ["job", "show", "zzzzzzzz"],
    ["job", "create", "--prompt", "hi"],
]


def assert_store_refused(repo: Path, workspace_root: Path, args: list[str], needle: str) -> str:
    """One line naming the store, exit 2, and nothing made: no worktree, branch or file."""
    before = tree_state(repo)
    proc = run_logist(*args, cwd=repo, check=False)
    line = assert_one_line_error(proc)
    assert needle in line, line
    assert str(repo / ".logist") in line, line
    assert worktree_paths(repo) == [str(repo)]
    assert branches(repo) == []
    assert list(workspace_root.iterdir()) == []
    assert tree_state(repo) == before
    return line


@pytest.mark.parametrize("args", STORE_COMMANDS, ids=" ".join)
def test_a_store_path_that_is_a_file(repo: Path, workspace_root: Path, args: list[str]) -> None:
    (repo / ".logist").write_text("in the way\n")
    line = assert_store_refused(repo, workspace_root, args, "is not a directory")
    assert "mv " in line  # says how to get out of it
    assert (repo / ".logist").read_text() == "in the way\n"


def damaged_store(repo: Path) -> bytes:
    """A `.logist/logist.db` that is not a database (a truncated copy, a stray file...)."""
    (repo / ".logist").mkdir()
    garbage = b"this is not an SQLite database\n" * 300
    (repo / ".logist" / "logist.db").write_bytes(garbage)
    return garbage


@pytest.mark.parametrize("args", STORE_COMMANDS, ids=" ".join)
def test_a_damaged_store(repo: Path, workspace_root: Path, args: list[str]) -> None:
    garbage = damaged_store(repo)
    db = repo / ".logist" / "logist.db"
    line = assert_store_refused(repo, workspace_root, args, "damaged")
    assert str(db) in line and f"mv {db} " in line  # names the file and how to recover
    assert db.read_bytes() == garbage  # nothing lost: the file is left for recovery
    assert sorted(p.name for p in (repo / ".logist").iterdir()) == ["logist.db"]


def test_a_damaged_store_moved_aside_as_told_gives_a_working_store(repo: Path) -> None:
    garbage = damaged_store(repo)
    line = assert_one_line_error(run_logist("job", "list", cwd=repo, check=False))
    move = re.search(r"mv (\S+) (\S+)\)", line)
    assert move is not None, line
    Path(move.group(1)).rename(move.group(2))
    job = run_job(repo, "--prompt", "after the recovery", "--agent-opt", "scenario=noop")
    assert job["status"] == "review"
    assert Path(move.group(2)).read_bytes() == garbage


@pytest.mark.parametrize("with_jobs", [False, True], ids=["fresh", "with jobs"])
def test_a_read_only_store(repo: Path, workspace_root: Path, with_jobs: bool) -> None:
    """Unwritable for root too (a read-only bind mount): refused with the reason, and an
    existing store comes out of it byte for byte."""
    if with_jobs:
        run_job(repo, "--prompt", "before", "--agent-opt", "scenario=noop")
    else:
        (repo / ".logist").mkdir()
    saved = {p.name: p.read_bytes() for p in (repo / ".logist").iterdir() if p.is_file()}
    worktrees, refs = worktree_paths(repo), branches(repo)
    roots = sorted(workspace_root.rglob("*"))
    with read_only(repo / ".logist"):
        before = tree_state(repo)
        proc = run_logist("run", "--prompt", "hi", "--agent-opt", "scenario=noop", cwd=repo,
                          check=False)  # fmt: skip
        line = assert_one_line_error(proc)
        assert "read-only" in line and str(repo / ".logist") in line, line
        assert tree_state(repo) == before
        assert (worktree_paths(repo), branches(repo)) == (worktrees, refs)
        assert sorted(workspace_root.rglob("*")) == roots
    after = {p.name: p.read_bytes() for p in (repo / ".logist").iterdir() if p.is_file()}
    assert {k: v for k, v in after.items() if k in saved} == saved


# -- names and places a job cannot take -------------------------------------------------------
def test_a_file_inside_a_submodule_is_refused_naming_it(
    repo: Path, workspace_root: Path, tmp_path: Path
) -> None:
    upstream = make_repo(tmp_path / "upstream", {"lib/x.txt": b"x\n"})
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(upstream),
        "vendor/dep")  # fmt: skip
    git(repo, "commit", "-q", "-m", "a submodule")
    nested = make_repo(repo / "nested", {"y.txt": b"y\n"})  # a clone inside, not a submodule
    before = tree_state(repo)
    status = porcelain(repo)
    for target, where in (("vendor/dep/lib/x.txt", "vendor/dep"), ("nested/y.txt", "nested")):
        proc = run_logist("run", "--prompt", "hi", "--file", target, cwd=repo, check=False)
        line = assert_one_line_error(proc)
        assert f"inside the submodule {where} " in line, line
        assert target in line
    assert not (repo / ".logist").exists()
    assert list(workspace_root.iterdir()) == []
    assert (tree_state(repo), porcelain(repo)) == (before, status)
    assert nested.is_dir()


@pytest.mark.parametrize("name", ["-rf", "--scenario=crash", "--help"])
def test_a_target_named_like_an_option_is_a_file(repo: Path, name: str) -> None:
    """A repository's file named like an option reaches the agent as a file name."""
    (repo / name).write_text("keep me\n")
    git(repo, "add", "--", name)
    git(repo, "commit", "-q", "-m", "an awkward name")
    job = run_job(repo, f"--file={name}", "--prompt", "edit it")
    assert job["target"]["file"] == name
    assert job["result"]["diff"]["paths"] == [name]
    started = [e for e in job_events(repo, job["id"]) if e["kind"] == "status"]
    argv = next(e["data"]["argv"] for e in started if "argv" in e["data"])
    assert f"--target={name}" in argv and name not in argv
    run_logist("job", "accept", job["id"], cwd=repo)
    assert (repo / name).read_text().startswith("keep me\n")
    assert (repo / name).read_text() != "keep me\n"


@pytest.mark.parametrize(
    ("yaml_value", "key"),
    [(".nan", "max_cost_usd"), (".inf", "max_cost_usd"), ("-.inf", "max_time_s"),
     (".NaN", "hang_timeout_s"), ("-1", "max_cost_usd")],
)  # fmt: skip
def test_a_limit_in_logist_yml_that_is_not_a_positive_finite_number(
    repo: Path, workspace_root: Path, yaml_value: str, key: str
) -> None:
    (repo / "logist.yml").write_text(f"limits:\n  {key}: {yaml_value}\n")
    git(repo, "add", "logist.yml")
    git(repo, "commit", "-q", "-m", "a hostile limit")
    before = tree_state(repo)
    line = assert_one_line_error(run_logist("run", "--prompt", "hi", cwd=repo, check=False))
    assert "logist.yml" in line and f"limits.{key}" in line, line
    assert_nothing_created(repo, workspace_root, before)


@pytest.mark.parametrize(
    "args",
    [["job", "list"], ["job", "list", "--json"], ["job", "show", "zzzzzzzz"], ["gc"],
     ["doctor"], ["config", "show"]],
    ids=" ".join,
)  # fmt: skip
def test_dash_c_to_a_missing_directory_with_every_command(
    repo: Path, tmp_path: Path, args: list[str]
) -> None:
    missing = tmp_path / "gone"
    for argv in (["-C", str(missing), *args], [*args, "-C", str(missing)]):
        line = assert_one_line_error(run_logist(*argv, cwd=repo, check=False))
        assert line == f"logist: error: -C {missing}: no such directory", line
    assert not missing.exists()


def test_init_in_a_read_only_repository_names_the_file(repo: Path) -> None:
    before = tree_state(repo)
    with read_only(repo):
        line = assert_one_line_error(run_logist("init", cwd=repo, check=False))
    assert line.startswith(f"logist: error: cannot write {repo / 'logist.yml'}: "), line
    assert tree_state(repo) == before


def test_a_read_only_git_info_directory_names_the_exclude_file(
    repo: Path, workspace_root: Path
) -> None:
    """The store's first write is `/.logist/` into info/exclude: refused there, nothing made."""
    before = tree_state(repo)
    with read_only(repo / ".git" / "info"):
        proc = run_logist("run", "--prompt", "hi", "--agent-opt", "scenario=noop", cwd=repo,
                          check=False)  # fmt: skip
    line = assert_one_line_error(proc)
    assert f"cannot add /.logist/ to {repo / '.git' / 'info' / 'exclude'}: " in line, line
    assert_nothing_created(repo, workspace_root, before)


def test_a_damaged_job_record_is_named(repo: Path) -> None:
    job = run_job(repo, "--prompt", "fine", "--agent-opt", "scenario=noop")
    db = repo / ".logist" / "logist.db"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE jobs SET record=? WHERE id=?", (b'{"id": "cut off', job["id"]))
    conn.commit()
    conn.close()
    for args in (["job", "show", job["id"]], ["job", "accept", job["id"]]):
        line = assert_one_line_error(run_logist(*args, cwd=repo, check=False))
        assert f"the job store {db} holds a damaged record" in line, line


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 0.0, -1.0])
@pytest.mark.parametrize("name", ["max_cost_usd", "max_time_s", "hang_timeout_s"])
def test_every_front_end_refuses_a_limit_that_is_not_positive_and_finite(
    repo: Path, name: str, value: float
) -> None:
    """The engine's own check, which the language server's createJob goes through too
    (JSON numbers such as 1e999 decode to inf)."""
    from logist_server.domain.errors import UsageError
    from logist_server.domain.model import Limits
    from logist_server.domain.requests import JobRequest
    from logist_server.engine.facade import Engine

    engine = Engine.for_path(repo)
    request = JobRequest(prompt="hi", cwd=str(repo), limits=Limits(**{name: value}))
    with pytest.raises(UsageError, match=f"limit {name} must be a positive finite number"):
        engine.create_job(request)
    assert not (repo / ".logist").exists()

"""`logist job list` on its lean path (`cli/entry.py` + `cli/fast_list.py`) against the full CLI.

Every comparison runs the real `logist` console script and, as the reference, the full CLI
(`logist_server.cli.main.main`) in a subprocess with the same arguments, directory and
environment, and requires the same exit status, stdout and stderr, byte for byte. Where the
lean path must serve the invocation itself, the test also checks that `fast_list.run` did
(it did not hand it back to the full CLI), so an equality cannot come from a fallback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from conftest import LOGIST, PYTHON, git, make_repo, run_logist
from logist_server.cli import fast_list
from logist_server.domain.model import AgentSpec, Job, JobStatus, LineRange, Target
from logist_server.store.job_store import SCHEMA_VERSION, STORE_DIRNAME, JobStore, new_job_id
from logist_server.vcs.git import find_repo

ROOT = Path(__file__).resolve().parent.parent
FULL_CLI = "import sys; from logist_server.cli.main import main; sys.exit(main())"
# Exit status 99 when fast_list.run hands the invocation back to the full CLI.
LEAN_ONLY = (
    "import sys; from logist_server.cli.fast_list import run; "
    "status = run(sys.argv[1:]); sys.exit(99 if status is None else status)"
)
HANDED_BACK = 99

PROMPTS = [
    "Add a greeting",
    "Réécris la fonction « parse » pour qu'elle accepte les dates ISO 8601 complètes",
    "日本語のコメントを英語に翻訳してください。すべてのファイルで、テストも含めて。",
    "Fix the 🐛 in the parser 🚀",
    "  \n\n  Leading blank lines, then the first real line\nand a second line",
    "   ",
    "",
    "x" * 47 + "é",
    "y" * 48,
    "z" * 49,
    "tab\tinside and a trailing space ",
    "Zeilenumbruch\r\nmit CRLF",
]
STATUSES = [
    JobStatus.REVIEW,
    JobStatus.ACCEPTED,
    JobStatus.FAILED,
    JobStatus.RUNNING,
    JobStatus.CANCELLED,
    JobStatus.NEEDS_INPUT,
]


# -- helpers -------------------------------------------------------------------------------
def run(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        argv,
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )


def reference(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The full CLI, as `logist` was before the lean path."""
    return run([PYTHON, "-c", FULL_CLI, *args], cwd, env)


def logist(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The real console script."""
    return run([str(LOGIST), *args], cwd, env)


def lean(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """`fast_list.run` alone: exit status HANDED_BACK when it leaves the call to the full CLI."""
    return run([PYTHON, "-c", LEAN_ONLY, *args], cwd, env)


def assert_same(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, served: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """`logist args` prints and exits exactly as the full CLI; `served`: by the lean path."""
    want = reference(args, cwd, env)
    got = logist(args, cwd, env)
    assert (got.returncode, got.stderr) == (want.returncode, want.stderr), args
    assert got.stdout == want.stdout, f"stdout differs for {args}"
    own = lean(args, cwd, env)
    if served:
        assert own.returncode != HANDED_BACK, f"the lean path handed {args} back"
        assert (own.returncode, own.stdout, own.stderr) == (
            want.returncode,
            want.stdout,
            want.stderr,
        )
    else:
        assert own.returncode == HANDED_BACK, f"the lean path served {args}"
        assert own.stdout == b"" and own.stderr == b"", "it printed before handing back"
    return want


def add_jobs(repo: Path, count: int = len(PROMPTS), common_dir: Path | None = None) -> list[Job]:
    """Jobs in several statuses, with and without a target, stored as the engine stores them."""
    info = find_repo(repo)
    store = JobStore(info.root, common_dir or info.common_dir)
    jobs = []
    base = time.time() - 86400 * 40
    for i in range(count):
        target = None
        if i % 3 == 0:
            target = Target(file=f"src/ファイル_{i}.py", range=LineRange(1, i + 1))
        elif i % 3 == 1:
            target = Target(file="a.txt")
        job = Job(
            id=new_job_id(),
            prompt=PROMPTS[i % len(PROMPTS)],
            repo=str(info.root),
            agent=AgentSpec("mock" if i % 2 else "claude-code", None, {"scenario": "edit"}),
            target=target,
            status=STATUSES[i % len(STATUSES)],
            created_at=base + i * 3917.25 + (0 if i % 4 else 0.5),
        )
        store.insert(job, [("created", {"status": job.status.value})])
        jobs.append(job)
    store.close()
    return jobs


def job_list_variants(*prefix: str) -> list[list[str]]:
    return [
        [*prefix, "job", "list"],
        [*prefix, "job", "list", "--json"],
        [*prefix, "job", "list", "--json", "--status", "review"],
        [*prefix, "job", "list", "--status", "failed"],
        [*prefix, "job", "list", "--status", "review", "--status", "running", "--json"],
        [*prefix, "job", "list", "--status", "review", "--status", "review"],
        [*prefix, "job", "list", "--status", "draft"],  # no job in that status
        [*prefix, "job", "list", "--status", "draft", "--json"],
        [*prefix, "job", "list", "--json", "--json"],
    ]


def few_variants(*prefix: str) -> list[list[str]]:
    """Text and JSON, with and without a filter (for the tests about where it runs)."""
    return [
        [*prefix, "job", "list"],
        [*prefix, "job", "list", "--json"],
        [*prefix, "job", "list", "--status", "review", "--status", "failed"],
        [*prefix, "job", "list", "--json", "--status", "accepted"],
    ]


# -- the entry point ------------------------------------------------------------------------
def test_the_logist_script_is_the_lean_entry_point() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert declared["logist"] == "logist_server.cli.entry:main"
    (installed,) = entry_points(group="console_scripts", name="logist")
    assert installed.value == "logist_server.cli.entry:main", "re-run pip install -e ."
    assert "logist_server.cli.entry" in LOGIST.read_text()


def test_copied_constants_match_the_store_and_the_model() -> None:
    assert fast_list.STORE_DIRNAME == STORE_DIRNAME
    assert fast_list.SCHEMA_VERSION == SCHEMA_VERSION
    assert {s.value for s in JobStatus} == fast_list.STATUSES
    line = f"/{STORE_DIRNAME}/".encode()  # as store.ensure_excluded writes it
    assert line == fast_list.EXCLUDE_LINE


def test_json_listing_imports_no_parser_engine_or_msgspec(repo: Path) -> None:
    add_jobs(repo, 3)
    code = (
        "import sys\n"
        "from logist_server.cli.entry import main\n"
        "status = main()\n"
        "heavy = {'argparse', 'asyncio', 'msgspec', 'pydantic', 'subprocess', 'typing',\n"
        "         'logist_server.cli.main', 'logist_server.domain.model',\n"
        "         'logist_server.store.job_store',\n"
        "         'logist_server.engine.facade', 'logist_server.vcs.git'}\n"
        "sys.stderr.write(repr(sorted(heavy & set(sys.modules))))\n"
        "sys.exit(status)\n"
    )
    proc = run([PYTHON, "-c", code, "job", "list", "--json"], repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b"[]"
    assert proc.stdout.startswith(b'[{"id":')


# -- byte-for-byte against the full CLI --------------------------------------------------
def test_no_store_yet_prints_the_same_and_creates_nothing(repo: Path) -> None:
    for args in job_list_variants():
        assert_same(args, repo)
    assert not (repo / STORE_DIRNAME).exists()
    assert b"/.logist/" not in (repo / ".git" / "info" / "exclude").read_bytes()
    assert logist(["job", "list"], repo).stdout == b"no jobs\n"
    assert logist(["job", "list", "--json"], repo).stdout == b"[]\n"


def test_jobs_in_several_statuses_with_filters(repo: Path) -> None:
    jobs = add_jobs(repo, 40)
    for args in job_list_variants():
        assert_same(args, repo)
    listed = logist(["job", "list", "--json"], repo).stdout
    assert listed.count(b'"id":') == len(jobs)
    text = logist(["job", "list"], repo).stdout.decode()
    assert len(text.splitlines()) == len(jobs)
    assert "日本語のコメントを英語に翻訳してください。すべてのファイルで、テストも含めて。" in text
    assert "Fix the 🐛 in the parser 🚀" in text


def test_many_batches(repo: Path) -> None:
    """Records are written in batches: with batches of 7, the joins between them show."""
    add_jobs(repo, 30)
    code = (
        "import sys; from logist_server.cli import fast_list; fast_list.BATCH_ROWS = 7; "
        "status = fast_list.run(sys.argv[1:]); sys.exit(99 if status is None else status)"
    )
    for args in job_list_variants():
        want = reference(args, repo)
        got = run([PYTHON, "-c", code, *args], repo)
        assert (got.returncode, got.stdout, got.stderr) == (
            want.returncode,
            want.stdout,
            want.stderr,
        ), args


def test_a_job_made_by_logist_run(repo: Path) -> None:
    run_logist("run", "--agent", "mock", "--agent-opt", "scenario=noop", "--prompt", "Noop ✓",
               "--json", cwd=repo)  # fmt: skip
    add_jobs(repo, 4)
    for args in few_variants():
        assert_same(args, repo)


def test_non_ascii_prompts_under_a_c_locale(repo: Path) -> None:
    add_jobs(repo)
    for env in ({"LC_ALL": "C", "LANG": "C"}, {"PYTHONIOENCODING": "latin-1"}):
        for args in few_variants():
            assert_same(args, repo, env)


def test_dash_c_before_after_and_both(repo: Path, outside: Path) -> None:
    add_jobs(repo, 8)
    (repo / "sub" / "deeper").mkdir(parents=True)
    other = make_repo(outside / "other")
    add_jobs(other, 3)
    # before the subcommand: absolute, a subdirectory, relative to the current directory
    for where in (str(repo), str(repo / "sub" / "deeper"), "../repo"):
        for args in few_variants("-C", where):
            assert_same(args, outside)
    # after the subcommand, and both: the one after the subcommand wins
    assert_same(["job", "list", "-C", str(repo), "--json"], outside)
    assert_same(["job", "list", "--status", "review", "-C", "../repo"], outside)
    both = assert_same(["-C", str(other), "job", "list", "-C", str(repo), "--json"], outside)
    assert both.stdout == logist(["job", "list", "--json"], repo).stdout
    assert_same(["-C", str(repo), "job", "list", "-C", "other"], outside)
    # repeated -C: the last one counts
    assert_same(["-C", str(outside), "-C", str(repo), "job", "list"], outside)
    assert_same(["job", "list", "-C", str(outside), "-C", str(other), "--json"], outside)
    # an empty -C means the current directory, as in the full CLI
    assert_same(["-C", "", "job", "list"], repo)
    assert_same(["-C", str(other), "job", "list", "-C", "", "--json"], repo)


def test_from_a_subdirectory_and_a_linked_worktree(repo: Path, tmp_path: Path) -> None:
    add_jobs(repo, 6)
    (repo / "sub").mkdir()
    for args in few_variants():
        assert_same(args, repo / "sub")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    (linked / "nested").mkdir()
    # The store belongs to the worktree's top level: none there yet.
    for args in few_variants():
        assert_same(args, linked)
    assert logist(["job", "list"], linked / "nested").stdout == b"no jobs\n"
    add_jobs(linked, 5)
    assert (linked / STORE_DIRNAME / "logist.db").is_file()
    for args in few_variants():
        assert_same(args, linked / "nested")
        assert_same([*args, "-C", str(linked)], repo)
    mine = logist(["job", "list", "--json"], linked).stdout
    assert mine.count(b'"id":') == 5
    assert mine != logist(["job", "list", "--json"], repo).stdout


def test_a_symlinked_directory(repo: Path, tmp_path: Path) -> None:
    add_jobs(repo, 3)
    link = tmp_path / "link-to-repo"
    link.symlink_to(repo)
    for args in few_variants():
        assert_same(args, link)
    assert_same(["-C", str(link), "job", "list"], tmp_path)


def test_not_a_repository_is_the_full_clis_error(outside: Path, repo: Path) -> None:
    for args in (["job", "list"], ["job", "list", "--json", "--status", "review"]):
        want = assert_same(args, outside, served=False)
        assert want.returncode == 2
        assert want.stderr == f"logist: error: not inside a git repository: {outside}\n".encode()
        assert want.stdout == b""
    want = assert_same(["-C", str(outside), "job", "list"], repo, served=False)
    assert want.returncode == 2
    assert want.stderr.startswith(b"logist: error: not inside a git repository: ")
    assert_same(["job", "list", "-C", str(outside / "missing")], repo, served=False)
    assert_same(["job", "list", "-C", str(repo / "a.txt")], outside, served=False)
    assert_same(["job", "list"], repo / ".git", served=False)


@pytest.mark.parametrize(
    "args",
    [
        ["job", "list", "--help"],
        ["job", "list", "-h"],
        ["-h", "job", "list"],
        ["job", "list", "--status", "bogus"],
        ["job", "list", "--status"],
        ["job", "list", "--stat", "review"],
        ["job", "list", "--js"],
        ["job", "list", "--status=review"],
        ["job", "list", "--unknown"],
        ["job", "list", "extra"],
        ["job", "list", "--"],
        ["job", "list", "-C"],
        ["job", "list", "-C", "--json"],
        ["-C", "job", "list"],
        ["job", "-C", ".", "list"],
        ["--version", "job", "list"],
        ["job", "show", "list"],
        ["list"],
        ["job", "list", "-Crepo"],
    ],
)
def test_other_shapes_go_to_the_full_parser(args: list[str], repo: Path) -> None:
    add_jobs(repo, 2)
    assert_same(args, repo, served=False)


def test_other_commands_still_work_through_the_entry_point(repo: Path) -> None:
    (job,) = add_jobs(repo, 1)
    for args in (["--version"], ["job", "show", job.id, "--json"], ["job", "show", "list"], []):
        want = reference(args, repo)
        got = logist(args, repo)
        assert (got.returncode, got.stdout, got.stderr) == (
            want.returncode,
            want.stdout,
            want.stderr,
        )


def test_a_store_that_needs_changes_is_left_to_the_full_cli(repo: Path) -> None:
    add_jobs(repo, 3)
    exclude = repo / ".git" / "info" / "exclude"
    original = exclude.read_bytes()
    assert b"/.logist/\n" in original
    stripped = original.replace(b"/.logist/\n", b"")
    # The full CLI puts the exclude line back; the lean path must not answer instead.
    exclude.write_bytes(stripped)
    want = reference(["job", "list", "--json"], repo)
    assert exclude.read_bytes() != stripped
    exclude.write_bytes(stripped)
    assert lean(["job", "list", "--json"], repo).returncode == HANDED_BACK
    assert exclude.read_bytes() == stripped
    got = logist(["job", "list", "--json"], repo)
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    assert exclude.read_bytes() == original
    # An older schema: the full CLI migrates it before listing.
    with sqlite3.connect(repo / STORE_DIRNAME / "logist.db") as db:
        db.execute("PRAGMA user_version=0")
    db.close()
    assert lean(["job", "list"], repo).returncode == HANDED_BACK
    got = logist(["job", "list", "--json"], repo)
    assert (got.returncode, got.stdout, got.stderr) == (want.returncode, want.stdout, want.stderr)
    check = sqlite3.connect(repo / STORE_DIRNAME / "logist.db")
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()
    assert_same(["job", "list"], repo)


def test_a_writer_in_a_transaction_neither_blocks_nor_shows(repo: Path) -> None:
    add_jobs(repo, 5)
    before = logist(["job", "list", "--json"], repo).stdout
    writer = sqlite3.connect(repo / STORE_DIRNAME / "logist.db", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM jobs")
        # A reader that waited for the writer would hang (each run's timeout fails it) or
        # give up with "database is locked" (its output would differ): no clock needed.
        for args in few_variants():
            assert_same(args, repo)
        assert logist(["job", "list", "--json"], repo).stdout == before
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_reader_that_goes_away_ends_it_quietly(repo: Path) -> None:
    """`logist job list --json | head -c 10`: exit 141 and no traceback, as the full CLI."""
    store = JobStore(repo)
    for _ in range(300):  # 2.4 MB of records: more than a pipe grown to 1 MiB holds
        store.insert(
            Job(id=new_job_id(), prompt="x" * 8000, repo=str(repo), agent=AgentSpec("mock"))
        )
    store.close()

    def cut_short(argv: list[str]) -> tuple[int, bytes, bytes]:
        proc = subprocess.Popen(
            argv, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, restore_signals=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        head = proc.stdout.read(10)
        proc.stdout.close()
        err = proc.stderr.read()
        return proc.wait(timeout=30), head, err

    for args in (["job", "list", "--json"], ["job", "list"]):
        want = cut_short([PYTHON, "-c", FULL_CLI, *args])
        got = cut_short([str(LOGIST), *args])
        assert got == want
    status, head, err = cut_short([str(LOGIST), "job", "list", "--json"])
    assert (status, head[:7], err) == (141, b'[{"id":', b"")


def test_the_lean_parser_accepts_only_plain_shapes() -> None:
    parse = fast_list.parse_argv
    assert parse(["job", "list"]) == (None, False, None)
    assert parse(["-C", "a", "job", "list", "--json"]) == ("a", True, None)
    assert parse(["-C", "a", "job", "list", "-C", "b"]) == ("b", False, None)
    assert parse(["job", "list", "--status", "review", "--status", "failed"]) == (
        None,
        False,
        ["review", "failed"],
    )
    assert parse(["-C", "", "job", "list"]) == (None, False, None)
    for bad in (
        [],
        ["job"],
        ["job", "list", "--status", "nope"],
        ["job", "list", "-C", "-x"],
        ["job", "list", "--json=1"],
        ["job", "list", "x"],
        ["-C", "a"],
        ["-C", "a", "job"],
        ["job", "lis"],
    ):
        assert parse(bad) is None, bad


@pytest.mark.skipif(sys.platform != "linux", reason="the figures are for Linux")
def test_it_is_served_without_a_second_python_import_of_the_cli(repo: Path) -> None:
    """A smoke check, not a benchmark: the lean path must not load the full CLI later."""
    add_jobs(repo, 2)
    code = (
        "import sys\n"
        "from logist_server.cli.entry import main\n"
        "status = main()\n"
        "sys.stderr.write(str('logist_server.cli.main' in sys.modules))\n"
        "sys.exit(status)\n"
    )
    for args in (["job", "list"], ["job", "list", "--json"]):
        proc = run([PYTHON, "-c", code, *args], repo)
        assert proc.returncode == 0
        assert proc.stderr == b"False"


def test_a_file_name_with_a_newline_stays_one_escaped_line(repo: Path) -> None:
    """A hostile repository's file name cannot forge a second job or drive the terminal."""
    name = "evil\nzzzzzzzzzz  review       2026-01-01 00:00  mock  -  forged\x1b[2J.txt"
    (repo / name).write_text("x\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a file with a newline in its name")
    run_logist("run", "--agent-opt", "scenario=noop", "--file", name, "--prompt", "p\x1b]0;t\x07",
               cwd=repo)  # fmt: skip
    for args in few_variants():
        assert_same(args, repo)
    got = logist(["job", "list"], repo).stdout.decode()
    assert got.count("\n") == 1, got
    assert "evil\\nzzzzzzzzzz" in got and "forged\\x1b[2J.txt" in got
    assert "p\\x1b]0;t\\x07" in got
    assert "\x1b" not in got
    shown = json.loads(logist(["job", "list", "--json"], repo).stdout)
    assert shown[0]["target"]["file"] == name  # the record keeps the real name


def test_a_store_path_that_is_a_file_is_the_full_clis_error(repo: Path) -> None:
    (repo / STORE_DIRNAME).write_text("in the way\n")
    for args in (["job", "list"], ["job", "list", "--json"]):
        want = assert_same(args, repo, served=False)
        assert want.returncode == 2
        assert b"is not a directory" in want.stderr and want.stderr.count(b"\n") == 1
    assert (repo / STORE_DIRNAME).read_text() == "in the way\n"

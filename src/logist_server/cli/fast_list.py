"""`logist job list` on a lean path: the standard library, git and SQLite only.

`logist_server.cli.entry` hands every `job list` invocation here first. Only the plain, valid
argument shapes are served; for anything else (help, an abbreviated or unknown option, a bad
status, `-C` at a path that is not a directory, a directory outside any git repository, an
`info/exclude` line to add or a schema to migrate, an error before the first byte of
output...) `run` returns None *before printing anything*, and the full CLI
(`logist_server.cli.main`) handles the invocation from scratch. Error messages, exit statuses
and side effects therefore stay exactly those of the full CLI, and the output is
byte-identical to `cmd_job_list`'s.

What this path saves is the import of argparse, every command module, msgspec, the model and
the store. Neither form decodes a record: `--json` copies the stored bytes and the human
listing prints the lines SQLite composes from the store's summary index
(`logist_server.store.listing`).

This module must stay cheap to import: standard-library modules that the interpreter has
already loaded, SQLite, and `logist_server.cli.exits` (standard library only). Constants
copied from `logist_server.store.job_store` and `logist_server.domain.model` are checked
against the originals by tests/test_cli_list_fast.py.
"""

from __future__ import annotations

import errno
import os
import sys

from logist_server.cli.exits import debugging, internal_error, stdout_gone

TYPE_CHECKING = False  # typing itself costs an import; mypy reads the block below
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any

# Copies of logist_server.store.job_store.STORE_DIRNAME / SCHEMA_VERSION and of the JobStatus values
# (importing those modules costs msgspec and the model).
STORE_DIRNAME = ".logist"
SCHEMA_VERSION = 4
STATUSES = frozenset(
    {
        "draft",
        "pending",
        "provisioning",
        "running",
        "review",
        "accepted",
        "rejected",
        "needs_input",
        "stuck",
        "halted",
        "failed",
        "cancelled",
    }
)
# The line `store.ensure_excluded` adds to `.git/info/exclude` (if it is missing, the full
# CLI writes it: leave that to the full CLI).
EXCLUDE_LINE = b"/" + STORE_DIRNAME.encode() + b"/"
# The same query as `git.find_repo`.
GIT_REV_PARSE = ("rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir")
# Records per write. Small batches reuse the same memory: a fresh 3 MB buffer per batch
# costs more in page faults than the extra writes.
BATCH_ROWS = 200
# Read the database through mmap: about 10 ms less for 10,000 records than read() calls.
MMAP_BYTES = 1 << 30


class Fallback(Exception):
    """Leave this invocation to the full CLI (nothing has been printed)."""


def parse_argv(argv: Sequence[str]) -> tuple[str | None, bool, list[str] | None] | None:
    """(directory, json, statuses) for `[-C DIR]... job list [--json] [-C DIR] [--status S]...`.

    None for any other shape, including ones argparse would accept (`-CDIR`, `--status=S`,
    abbreviations, `--`): the full CLI handles those."""
    top: str | None = None
    sub: str | None = None
    as_json = False
    statuses: list[str] | None = None
    n = len(argv)
    i = 0
    while i < n and argv[i] == "-C":  # `logist -C DIR job list`
        if i + 1 >= n or argv[i + 1].startswith("-"):
            return None
        top = argv[i + 1]
        i += 2
    if argv[i : i + 2] != ["job", "list"]:
        return None
    i += 2
    while i < n:
        arg = argv[i]
        if arg == "--json":
            as_json = True
            i += 1
            continue
        if arg not in ("-C", "--status") or i + 1 >= n or argv[i + 1].startswith("-"):
            return None
        value = argv[i + 1]
        if arg == "-C":
            sub = value
        elif value in STATUSES:
            statuses = [*(statuses or ()), value]
        else:
            return None  # argparse's "invalid choice" error
        i += 2
    # `common.start_dir`: -C after the subcommand, else before it, else the current directory.
    return sub or top or None, as_json, statuses


def run(argv: Sequence[str]) -> int | None:
    """Serve `logist job list`: its exit status, or None to leave it to the full CLI."""
    request = parse_argv(argv)
    if request is None:
        return None
    directory, as_json, statuses = request
    db = None
    try:
        db = open_store(directory or ".")
        query = iter_records if as_json else iter_lines
        rows = query(db, statuses) if db is not None else iter(())
        first = next(rows, None)  # errors of the query surface here, before any output
    except KeyboardInterrupt:
        return 130
    except Exception:  # Fallback, or anything the full CLI reports in its own words
        if db is not None:
            db.close()
        return None
    try:
        if as_json:
            write_json(first, rows)
        else:
            write_text(first, rows)
        return 0
    except KeyboardInterrupt:  # from here on, as `logist_server.cli.main.main`
        return 130
    except BrokenPipeError:
        return stdout_gone()
    except Exception as exc:
        if debugging():
            raise
        return internal_error(exc)


def open_store(directory: str) -> Any:
    """The repository's store as an SQLite connection, or None when it has none yet.

    As `job_cmds.open_store` (`git.find_repo` then `JobStore`), but raises Fallback where
    those would fail, create or change anything."""
    start = os.path.realpath(directory)  # `Path(directory).resolve()`
    if not os.path.isdir(start):  # a file (find_repo uses its parent) or nothing there
        raise Fallback
    root, git_dir, common = find_repo(start)
    store_dir = os.path.join(root, STORE_DIRNAME)
    from logist_server.store.index import may_track_store

    if os.path.islink(store_dir) or may_track_store(git_dir):
        raise Fallback  # JobStore() refuses a store the repository brought: its words
    db_path = os.path.join(store_dir, "logist.db")
    try:
        os.stat(db_path)
    except OSError as exc:
        # No jobs yet: no `.logist`, or one without a database (`job_cmds.open_store`).
        if exc.errno == errno.ENOENT and (
            os.path.isdir(store_dir) or not os.path.lexists(store_dir)
        ):
            return None
        raise Fallback from None  # the full CLI says what is wrong with it
    if not os.path.isabs(common):
        common = os.path.realpath(os.path.join(start, common))
    try:
        with open(os.path.join(common, "info", "exclude"), "rb") as handle:
            exclude = handle.read()
    except FileNotFoundError:
        exclude = b""
    if EXCLUDE_LINE not in exclude.splitlines():
        raise Fallback  # JobStore() would add it
    sqlite = _sqlite()
    db = sqlite.connect(db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        # The statements JobStore() runs on open, in the same order.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=30000")
        if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            raise Fallback  # JobStore() would migrate it
        db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    except BaseException:
        db.close()
        raise
    return db


def find_repo(start: str) -> tuple[str, str, str]:
    """(top level, git dir, git common dir as git prints it) of the repository of `start`.

    `git.find_repo` without the subprocess module: the same git command, run in `start`
    (`git -C start` is `cwd=start`), its stderr discarded. Raises Fallback when git fails,
    so that the full CLI reports "not inside a git repository" in its own words."""
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawnp(
            "git",
            ["git", "-C", start, *GIT_REV_PARSE],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, write_end, 1),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    chunks = []
    try:
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
    finally:
        os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise Fallback
    top, git_dir, common = b"".join(chunks).decode().splitlines()[:3]
    return top, git_dir, common


def iter_records(db: Any, statuses: list[str] | None) -> Iterator[list[bytes]]:
    """Stored records (JSON bytes) in batches, oldest first: `JobStore.list_raw`'s query."""
    from logist_server.store.listing import ordered_query

    cursor = db.execute(*ordered_query("SELECT record FROM jobs", statuses))
    while rows := cursor.fetchmany(BATCH_ROWS):
        yield [row[0] for row in rows]


def iter_lines(db: Any, statuses: list[str] | None) -> Iterator[list[Any]]:
    """The listing's lines in batches, oldest first: `JobStore.listing_lines`' query."""
    from logist_server.store.listing import LINE_SELECT, ordered_query

    cursor = db.execute(*ordered_query(LINE_SELECT, statuses))
    while rows := cursor.fetchmany(BATCH_ROWS * 10):
        yield rows


def write_json(first: list[bytes] | None, rest: Iterator[list[bytes]]) -> None:
    """`cmd_job_list --json`: one JSON array of the stored records."""
    out = sys.stdout.buffer
    if first is None:
        out.write(b"[]\n")
        return
    from logist_server.support.pipesize import grow_pipe

    grow_pipe(out.fileno())  # about half the wall time when a program reads 16 MB
    out.write(b"[")
    out.write(b",".join(first))
    for batch in rest:
        batch.insert(0, b"")  # a leading comma, without copying the joined batch again
        out.write(b",".join(batch))
    out.write(b"]\n")


def write_text(first: list[Any] | None, rest: Iterator[list[Any]]) -> None:
    """`cmd_job_list` without --json: one line per job, or "no jobs"."""
    if first is None:
        sys.stdout.write("no jobs\n")
        return
    out = sys.stdout.buffer
    out.write("".join([row[0] for row in first]).encode())
    for rows in rest:
        out.write("".join([row[0] for row in rows]).encode())


def _sqlite() -> Any:
    """The sqlite3 module's C core: `sqlite3` itself also imports datetime (about 3 ms)."""
    try:
        return __import__("_sqlite3")
    except ImportError:  # pragma: no cover - an interpreter without the private module
        import sqlite3

        return sqlite3

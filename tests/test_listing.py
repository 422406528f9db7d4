"""`logist job list`'s lines: composed by SQLite from the summary columns, as Python would."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import msgspec
import pytest

from conftest import run_logist
from logist_server.domain.model import AgentSpec, Job, JobStatus, LineRange, Target
from logist_server.store.job_store import SCHEMA_VERSION, STORE_DIRNAME, JobStore, new_job_id
from logist_server.store.listing import HEADLINE_MAX, headline

PROMPTS = [
    "Add a greeting",
    "  \n\n  Leading blank lines, then the real first line  \nsecond line",
    "x" * 48,  # exactly the width: shown whole
    "y" * 49,  # one over: cut to 47 and an ellipsis
    "Ünïcödé prompt, wide characters: 日本語のテキストを少し長めに書いてみると",
    "tab\tinside and a very long line " + "z" * 400,
    "\x1b[31mred\x1b[0m, a back\\slash, a bell\x07 and a C1\x9b control",
    "",
    "   ",
]


def escaped(text: str) -> str:
    """C-style escapes for control characters and the backslash, written out independently."""
    names = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}
    out = []
    for c in text:
        code = ord(c)
        if c in names:
            out.append(names[c])
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\x{code:02x}")
        elif code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(c)
    return "".join(out)


def expected_line(job: Job) -> str:
    """The listing line as the Python f-string it replaced would print it, escaped."""
    target = escaped(job.target.file) if job.target else "-"
    prompt = job.prompt.strip().splitlines()[0] if job.prompt.strip() else ""
    prompt = escaped(prompt)
    if len(prompt) > 48:
        prompt = prompt[:47] + "…"
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created_at))
    return f"{job.id}  {job.status:<12} {stamp}  {job.agent.name:<10} {target:<24} {prompt}\n"


def make_jobs(repo: Path) -> list[Job]:
    jobs = []
    for i, prompt in enumerate(PROMPTS):
        name = f"dir/ファイル_{i}.py" if i % 4 != 3 else f"dir/new\nline\x1b_{i}.py"
        target = Target(file=name, range=LineRange(1, 2)) if i % 2 else None
        jobs.append(
            Job(
                id=new_job_id(),
                prompt=prompt,
                repo=str(repo),
                agent=AgentSpec("mock" if i % 3 else "claude-code"),
                target=target,
                created_at=1_790_000_000.25 + i * 3_600 * 24 * 40,  # across DST changes
            )
        )
    return jobs


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kathmandu"])
def test_lines_match_the_python_formatting_in_every_time_zone(
    repo: Path, tz: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = JobStore(repo)
    jobs = make_jobs(repo)
    for job in jobs:
        store.insert(job)
    store.close()
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        want = "".join(expected_line(job) for job in jobs)
    finally:
        monkeypatch.undo()
        time.tzset()
    env = {**os.environ, "TZ": tz}
    got = run_logist("job", "list", cwd=repo, env=env).stdout
    assert got == want
    # The full CLI (`--status=S` is a shape the lean path hands over) prints the same bytes.
    full = run_logist("job", "list", "--status=pending", cwd=repo, env=env).stdout
    assert full == want


def test_status_changes_show_in_the_listing(repo: Path) -> None:
    store = JobStore(repo)
    job = make_jobs(repo)[0]
    store.insert(job)
    store.transition(job.id, JobStatus.PROVISIONING)
    store.close()
    (line,) = run_logist("job", "list", cwd=repo).stdout.splitlines()
    assert line.split()[1] == "provisioning"


def test_headline_is_the_first_line_capped() -> None:
    assert headline("\n\n  first  \nsecond") == "first  "  # as the listing always showed it
    assert headline("  ") == ""
    assert len(headline("a" * 1000)) == HEADLINE_MAX


def test_a_version_1_store_gets_its_summary_columns_on_open(repo: Path) -> None:
    """A store written before the summary columns: opening it fills them from the records."""
    jobs = make_jobs(repo)
    store_dir = repo / STORE_DIRNAME
    store_dir.mkdir()
    (repo / ".git" / "info" / "exclude").write_text("/.logist/\n")
    db = sqlite3.connect(store_dir / "logist.db")
    db.executescript(
        """
        CREATE TABLE jobs (id TEXT PRIMARY KEY, created_at REAL NOT NULL, status TEXT NOT NULL,
                           last_seq INTEGER NOT NULL DEFAULT 0, record BLOB NOT NULL);
        CREATE INDEX jobs_by_created ON jobs(created_at);
        CREATE TABLE events (job_id TEXT NOT NULL, seq INTEGER NOT NULL, time REAL NOT NULL,
                             kind TEXT NOT NULL, data BLOB NOT NULL,
                             span INTEGER NOT NULL DEFAULT 1,
                             PRIMARY KEY (job_id, seq)) WITHOUT ROWID;
        PRAGMA user_version=1;
        """
    )
    db.executemany(
        "INSERT INTO jobs (id, created_at, status, record) VALUES (?,?,?,?)",
        [(j.id, j.created_at, j.status.value, msgspec.json.encode(j)) for j in jobs],
    )
    db.commit()
    db.close()
    # The lean path leaves an old schema to the full CLI, which migrates it.
    got = run_logist("job", "list", cwd=repo).stdout
    assert got == "".join(expected_line(job) for job in jobs)
    check = sqlite3.connect(store_dir / "logist.db")
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {row[1] for row in check.execute("PRAGMA index_list(jobs)")}
    check.close()
    assert "jobs_listing" in indexes and "jobs_by_created" not in indexes
    assert [j.id for j in JobStore(repo).list_jobs()] == [j.id for j in jobs]


def test_a_version_2_store_gets_its_columns_escaped_on_open(repo: Path) -> None:
    """Version 2 stored a file name's newline as is: opening the store escapes the columns."""
    jobs = make_jobs(repo)
    store = JobStore(repo)
    for job in jobs:
        store.insert(job)
    store.close()
    db = sqlite3.connect(repo / STORE_DIRNAME / "logist.db")
    for job in jobs:  # the columns as version 2 wrote them
        db.execute(
            "UPDATE jobs SET target=?, headline=? WHERE id=?",
            (job.target.file if job.target else None, headline(job.prompt), job.id),
        )
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    got = run_logist("job", "list", cwd=repo).stdout
    assert got == "".join(expected_line(job) for job in jobs)
    assert got.count("\n") == len(jobs)
    check = sqlite3.connect(repo / STORE_DIRNAME / "logist.db")
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()

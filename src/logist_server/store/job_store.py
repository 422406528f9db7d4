"""The durable job store under `<repo>/.logist/`: SQLite in WAL mode.

One row per job (the record, as msgspec JSON) and an append-only event table with a
gapless `seq` per job. Every change is one IMMEDIATE transaction, so several processes
can share a repository; a status change is committed before the caller acts on it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from logist_server.domain.errors import JobNotFoundError, StoreError
from logist_server.domain.model import Job, JobEvent, JobStatus
from logist_server.domain.states import check_transition
from logist_server.store.faults import SQLITE_FULL, Reserve, explain, is_busy, primary_code
from logist_server.store.guard import STORE_DIRNAME as STORE_DIRNAME
from logist_server.store.guard import refuse_foreign_store
from logist_server.store.listing import LINE_SELECT, ordered_query, summary_columns
from logist_server.support.fsutil import atomic_write
from logist_server.support.redaction import redact_bytes

# 2: the summary columns (agent, target, headline) and the index `job list` reads them from.
# 3: the same columns with control characters escaped (`listing.printable`).
# 4: `repo_guard`, the fingerprint of the user's git metadata taken before each step.
SCHEMA_VERSION = 4
BUSY_TIMEOUT_S = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    status TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    record BLOB NOT NULL,
    agent TEXT NOT NULL DEFAULT '',
    target TEXT,
    headline TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    data BLOB NOT NULL,
    span INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repo_guard (
    job_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    fingerprint BLOB NOT NULL,
    PRIMARY KEY (job_id, step)
) WITHOUT ROWID;
"""
# After the columns of older versions are added. `job list` reads only this index.
_INDEXES = """
DROP INDEX IF EXISTS jobs_by_created;
CREATE INDEX IF NOT EXISTS jobs_listing ON jobs(created_at, id, status, agent, target, headline);
"""
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
#: What a summary reads from each record besides the index: cost so far, the first step's
#: start, the last change (what an editor's jobs view shows for a job it saw no event of).
_SUMMARY_FIGURES = (
    "coalesce(json_extract(CAST(record AS TEXT), '$.result.usage.cost_usd'), 0.0),"
    " json_extract(CAST(record AS TEXT), '$.steps[0].started_at'),"
    " coalesce(json_extract(CAST(record AS TEXT), '$.updated_at'), created_at)"
)
SummaryRow = tuple[str, str, float, str, str | None, str, float, float | None, float]

_T = TypeVar("_T")
_encode = msgspec.json.Encoder().encode
_decode_job = msgspec.json.Decoder(Job).decode
_decode_jobs = msgspec.json.Decoder(list[Job]).decode
_decode_data = msgspec.json.Decoder(dict[str, Any]).decode

# (kind, data) or (kind, data, span): a run of `span` messages stored as one row.
EventSpec = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], int]


def new_job_id(attempt: int = 0) -> str:
    """A short id (10 characters), roughly time-ordered, easy to type by prefix.

    20 bits of seconds then 30 random bits; `insert` retries on the rare collision."""
    stamp = int(time.time()) & 0xFFFFF
    rand = (secrets.randbits(30) + attempt) & 0x3FFFFFFF  # a retry never repeats an id
    n = (stamp << 30) | rand
    chars = []
    for _ in range(10):
        chars.append(_ID_ALPHABET[n & 31])
        n >>= 5
    return "".join(reversed(chars))


def ensure_excluded(repo: Path, git_common_dir: Path) -> None:
    """Add `/.logist/` to the repository's `info/exclude` so it never shows in git status."""
    exclude = git_common_dir / "info" / "exclude"
    line = f"/{STORE_DIRNAME}/"
    try:
        current = exclude.read_bytes()
    except FileNotFoundError:
        current = b""
    if line.encode() in current.splitlines():
        return
    prefix = current if not current or current.endswith(b"\n") else current + b"\n"
    try:
        atomic_write(exclude, prefix + line.encode() + b"\n")
    except OSError as exc:
        raise StoreError(f"cannot add {line} to {exclude}: {exc.strerror or exc}") from None


def store_present(repo: Path) -> bool:
    """Whether `repo` has a job store, or something in its place that opening it reports
    (a `.logist` that is not a directory). False means: no jobs yet, nothing to open."""
    store_dir = repo / STORE_DIRNAME
    if not os.path.lexists(store_dir):
        return False
    return not store_dir.is_dir() or (store_dir / "logist.db").exists()


class JobStore:
    """Job records and event logs of one repository."""

    def __init__(self, repo: Path, git_common_dir: Path | None = None) -> None:
        self.repo = repo
        self.dir = repo / STORE_DIRNAME
        self.path = self.dir / "logist.db"
        self._lock = threading.RLock()
        self._reserve = Reserve(self.dir)
        self._durable = False
        db: sqlite3.Connection | None = None
        try:
            refuse_foreign_store(repo)
            if os.path.lexists(self.dir) and not self.dir.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(self.dir))
            ensure_excluded(repo, git_common_dir or repo / ".git")  # before anything is made
            if not self.dir.is_dir():
                self.dir.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._db = db
            _retry_busy(lambda: db.execute("PRAGMA journal_mode=WAL"))
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                self._migrate()
        except BaseException as exc:
            if db is not None:
                db.close()
            if isinstance(exc, OSError | sqlite3.Error):
                raise explain(exc, self.dir) from None
            raise
        self._reserve.keep()

    def _migrate(self) -> None:
        """Create or upgrade the schema (once per store, not on every open).

        Under the write lock, so that processes opening a fresh store at once migrate it once."""
        with self._write():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                return  # another process did it while this one waited for the lock
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
            if "span" not in columns:  # stores made before message runs were stored as one row
                self._db.execute("ALTER TABLE events ADD COLUMN span INTEGER NOT NULL DEFAULT 1")
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "headline" not in columns:  # version 1: no summary columns yet
                for statement in (
                    "ALTER TABLE jobs ADD COLUMN agent TEXT NOT NULL DEFAULT ''",
                    "ALTER TABLE jobs ADD COLUMN target TEXT",
                    "ALTER TABLE jobs ADD COLUMN headline TEXT NOT NULL DEFAULT ''",
                ):
                    self._db.execute(statement)
            # Versions 1 and 2: (re)compute the summary columns, now with control characters
            # escaped (version 2 kept a file name's newline, which broke a listing line).
            rows = self._db.execute("SELECT id, record FROM jobs").fetchall()
            self._db.executemany(
                "UPDATE jobs SET agent=?, target=?, headline=? WHERE id=?",
                [
                    (*summary_columns(self._decoded(_decode_job, raw)), job_id)
                    for job_id, raw in rows
                ],
            )
            for statement in _INDEXES.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- paths -----------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.dir / "jobs" / job_id

    def lock_path(self, job_id: str) -> Path:
        return self.dir / "locks" / f"{job_id}.lock"

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction. In WAL mode every commit survives a crash of the
        process (kill -9); `durable` also fsyncs it, for status changes that announce a
        side effect (surviving a power loss too). A failed commit is rolled back."""
        with self._reading():
            if durable != self._durable:
                self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                self._durable = durable
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (disk full)
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Hold the connection; an SQLite error becomes a StoreError naming the file.

        A full disk also gives up the reserve, so that the failure can still be recorded."""
        with self._lock:
            try:
                yield
            except sqlite3.IntegrityError:
                raise  # a taken job id: `insert` retries
            except sqlite3.Error as exc:
                if primary_code(exc) == SQLITE_FULL:
                    self._reserve.release()
                raise explain(exc, self.dir) from None

    # -- jobs ------------------------------------------------------------------------------
    def insert(self, job: Job, events: Sequence[EventSpec] = ()) -> list[JobEvent]:
        """Store a new job and its first events in one transaction.

        If its id is taken (a collision), the job gets a new id (`job.id` is updated)."""
        for attempt in range(1, 9):
            try:
                with self._write(durable=True) as db:
                    db.execute(
                        "INSERT INTO jobs (id, created_at, status, last_seq, record,"
                        " agent, target, headline) VALUES (?,?,?,0,?,?,?,?)",
                        (
                            job.id,
                            job.created_at,
                            job.status.value,
                            redact_bytes(_encode(job)),
                            *summary_columns(job),
                        ),
                    )
                    return self._append(db, job.id, 0, events)
            except sqlite3.IntegrityError:
                job.id = new_job_id(attempt)
        raise RuntimeError("could not find a free job id")

    def get(self, job_id: str) -> Job:
        with self._reading():
            row = self._db.execute("SELECT record FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job '{job_id}' in {self.repo}")
        return self._decoded(_decode_job, row[0])

    def resolve(self, ref: str) -> str:
        """The id of the one job whose id is `ref` or starts with it."""
        ref = ref.strip().lower()
        if not ref or any(c not in _ID_ALPHABET for c in ref):
            raise JobNotFoundError(f"'{ref}' is not a job id")
        with self._reading():
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2",
                (ref, ref + "~"),
            ).fetchall()
        if not rows:
            raise JobNotFoundError(f"no job '{ref}' in {self.repo}")
        if len(rows) > 1 and rows[0][0] != ref:
            raise JobNotFoundError(f"job id '{ref}' is ambiguous: give more characters")
        return str(rows[0][0])

    def list_raw(self, statuses: Iterable[JobStatus] | None = None) -> list[bytes]:
        """Job records as stored (JSON bytes), oldest first; the fast path for listings."""
        sql, args = ordered_query("SELECT record FROM jobs", _values(statuses))
        with self._reading():
            return [row[0] for row in self._db.execute(sql, args)]

    def summaries(self, statuses: Iterable[JobStatus] | None = None) -> list[SummaryRow]:
        """(id, status, created_at, agent, target file, headline, cost so far, first step's
        start or None, last change) per job, oldest first: the listing index and three
        fields SQLite reads from each record (no record decoded here)."""
        select = f"SELECT id, status, created_at, agent, target, headline, {_SUMMARY_FIGURES}"
        select += " FROM jobs"
        sql, args = ordered_query(select, _values(statuses))
        with self._reading():
            return list(self._db.execute(sql, args))

    def iter_raw(
        self, statuses: Iterable[JobStatus] | None = None, batch: int = 2000
    ) -> Iterator[list[bytes]]:
        """`list_raw` in batches, so a long listing can be written as it is read."""
        rows = self.list_raw(statuses)
        for start in range(0, len(rows), batch):
            yield rows[start : start + batch]

    def listing_lines(self, statuses: Iterable[JobStatus] | None = None) -> list[str]:
        """`logist job list`'s lines, oldest first, composed by SQLite from the index."""
        sql, args = ordered_query(LINE_SELECT, _values(statuses))
        with self._reading():
            return [row[0] for row in self._db.execute(sql, args)]

    def list_jobs(self, statuses: Iterable[JobStatus] | None = None) -> list[Job]:
        raw = self.list_raw(statuses)
        return self._decoded(_decode_jobs, b"[" + b",".join(raw) + b"]") if raw else []

    def update(
        self,
        job_id: str,
        mutate: Callable[[Job], None] | None = None,
        events: Sequence[EventSpec] = (),
    ) -> tuple[Job, list[JobEvent]]:
        """Apply `mutate` to the record and append `events`, atomically."""
        with self._write() as db:
            job, last_seq = self._read(db, job_id)
            if mutate is not None:
                mutate(job)
                job.updated_at = time.time()
                self._save(db, job)
            return job, self._append(db, job_id, last_seq, events)

    def transition(
        self,
        job_id: str,
        to: JobStatus,
        reason: str | None = None,
        mutate: Callable[[Job], None] | None = None,
        data: dict[str, Any] | None = None,
    ) -> tuple[Job, JobEvent]:
        """Move the job to `to` (validated) and log a `status` event, in one transaction."""
        with self._write(durable=True) as db:
            job, last_seq = self._read(db, job_id)
            source = job.status
            check_transition(source, to)
            job.status = to
            job.status_reason = reason
            if mutate is not None:
                mutate(job)
            job.updated_at = time.time()
            self._save(db, job)
            payload: dict[str, Any] = {"from": source.value, "to": to.value}
            if reason:
                payload["reason"] = reason
            if data:
                payload.update(data)
            (event,) = self._append(db, job_id, last_seq, [("status", payload)])
            return job, event

    def delete(self, job_id: str) -> None:
        with self._write() as db:
            db.execute("DELETE FROM events WHERE job_id=?", (job_id,))
            db.execute("DELETE FROM repo_guard WHERE job_id=?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id=?", (job_id,))

    # -- repository fingerprints (repo_guard) ----------------------------------------------
    def put_fingerprint(self, job_id: str, step: int, data: bytes) -> None:
        """Keep the fingerprint taken before `step` (out of the agent's job directory)."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO repo_guard (job_id, step, fingerprint) VALUES (?,?,?)",
                (job_id, step, data),
            )

    def fingerprint(self, job_id: str, step: int) -> bytes | None:
        """The fingerprint `put_fingerprint` kept for `step`, if any."""
        with self._reading():
            row = self._db.execute(
                "SELECT fingerprint FROM repo_guard WHERE job_id=? AND step=?", (job_id, step)
            ).fetchone()
        return None if row is None else bytes(row[0])

    # -- events ----------------------------------------------------------------------------
    def events(self, job_id: str, after: int = 0, limit: int | None = None) -> list[JobEvent]:
        """Events with seq > `after`, in order, one per sequence number."""
        out = expand_spans(self.event_rows(job_id, after, limit), after)
        return out if limit is None else out[:limit]

    def event_rows(self, job_id: str, after: int = 0, limit: int | None = None) -> list[JobEvent]:
        """Stored rows covering seq > `after`: runs of messages stay one event with a span."""
        sql = (
            "SELECT seq, time, kind, data, span FROM events"
            " WHERE job_id=? AND seq + span - 1 > ? ORDER BY seq"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._reading():
            rows = self._db.execute(sql, (job_id, after)).fetchall()
        return [
            JobEvent(job_id, seq, t, kind, self._decoded(_decode_data, data), span)
            for seq, t, kind, data, span in rows
        ]

    def last_seq(self, job_id: str) -> int:
        with self._reading():
            row = self._db.execute("SELECT last_seq FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job '{job_id}' in {self.repo}")
        return int(row[0])

    def data_version(self) -> tuple[int, int]:
        """Changes whenever anyone commits: another connection (SQLite's `data_version`) or
        this one (its `total_changes`, which `data_version` does not count)."""
        with self._reading():
            other = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            return other, self._db.total_changes

    def changes_since(self, marks: dict[str, int]) -> dict[str, int]:
        """Jobs whose last event is newer than `marks` (job id -> seq already seen)."""
        with self._reading():
            rows = self._db.execute("SELECT id, last_seq FROM jobs").fetchall()
        return {jid: seq for jid, seq in rows if marks.get(jid, 0) < seq}

    # -- internals -------------------------------------------------------------------------
    def _decoded(self, decode: Callable[[bytes], _T], raw: bytes) -> _T:
        """`decode(raw)`; a record that does not decode is a StoreError naming the store."""
        try:
            return decode(raw)
        except msgspec.DecodeError as exc:
            raise StoreError(
                f"the job store {self.path} holds a damaged record ({exc}): move the store "
                f"aside (mv {self.path} {self.path}.damaged) to start an empty one"
            ) from None

    def _read(self, db: sqlite3.Connection, job_id: str) -> tuple[Job, int]:
        row = db.execute("SELECT record, last_seq FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job '{job_id}' in {self.repo}")
        return self._decoded(_decode_job, row[0]), int(row[1])

    def _save(self, db: sqlite3.Connection, job: Job) -> None:
        db.execute(
            "UPDATE jobs SET status=?, record=?, agent=?, target=?, headline=? WHERE id=?",
            (job.status.value, redact_bytes(_encode(job)), *summary_columns(job), job.id),
        )

    def _append(
        self, db: sqlite3.Connection, job_id: str, last_seq: int, events: Sequence[EventSpec]
    ) -> list[JobEvent]:
        if not events:
            return []
        now = time.time()
        out: list[JobEvent] = []
        seq = last_seq + 1
        rows = []
        for spec in events:
            span = spec[2] if len(spec) == 3 else 1
            raw = _encode(spec[1])
            data = redact_bytes(raw)  # declared secrets masked, in the row and what listeners get
            event = JobEvent(
                job_id, seq, now, spec[0], _decode_data(data) if data != raw else spec[1], span
            )
            out.append(event)
            rows.append((job_id, seq, now, spec[0], data, span))
            seq += span
        db.executemany(
            "INSERT INTO events (job_id, seq, time, kind, data, span) VALUES (?,?,?,?,?,?)", rows
        )
        db.execute("UPDATE jobs SET last_seq=? WHERE id=?", (seq - 1, job_id))
        return out


def _retry_busy(statement: Callable[[], object]) -> None:
    """Run `statement`, retrying while another connection holds the lock it needs.

    Switching a fresh database to WAL takes an exclusive lock, and SQLite reports a busy
    database there at once instead of waiting for the busy timeout: wait here as it would."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    delay = 0.001
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _values(statuses: Iterable[JobStatus] | None) -> list[str] | None:
    return None if statuses is None else [s.value for s in statuses]


def expand_spans(rows: list[JobEvent], after: int = 0) -> list[JobEvent]:
    """Stored rows as one event per sequence number (a run of messages becomes each message)."""
    out: list[JobEvent] = []
    for row in rows:
        if row.span == 1:
            out.append(row)
            continue
        for i, text in enumerate(row.data["texts"]):
            if row.seq + i > after:
                out.append(JobEvent(row.job_id, row.seq + i, row.time, row.kind, {"text": text}))
    return out

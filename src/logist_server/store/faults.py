"""What can go wrong under the job store, said in one line, and the space kept to say it.

`explain` turns an `OSError` or `sqlite3.Error` met while opening, reading or writing the
store into a `StoreError` that names the file and what to do: a `.logist` that is not a
directory, a read-only file system or directory, a damaged database, a full disk. Every
store operation goes through it, so no command shows a traceback for them.

`Reserve` is a small file kept in `.logist/`. When a write fails because the disk is full,
the store deletes it, so that the driver can still record why the job failed (once the agent
that filled the disk is stopped). It is made again on the next open when there is room.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from pathlib import Path

from logist_server.domain.errors import StoreError, StoreFullError

RESERVE_NAME = "reserve"
RESERVE_BYTES = 256 * 1024  # far more than the few pages that settling a job writes

# SQLite primary result codes (the low byte of an extended code).
SQLITE_BUSY = 5
SQLITE_READONLY = 8
SQLITE_IOERR = 10
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_CANTOPEN = 14
SQLITE_NOTADB = 26
_WRITE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else int(code) & 0xFF


def is_busy(exc: sqlite3.Error) -> bool:
    return primary_code(exc) == SQLITE_BUSY or "database is locked" in str(exc)


def explain(exc: OSError | sqlite3.Error, store_dir: Path) -> StoreError:
    """A one-line StoreError for `exc`, met on the store in `store_dir`."""
    db = store_dir / "logist.db"
    if os.path.lexists(store_dir) and not os.path.isdir(store_dir):
        return StoreError(
            f"{store_dir} is not a directory, so Logist cannot keep its job store there: "
            f"move it aside (mv {store_dir} {store_dir}.old)"
        )
    if isinstance(exc, OSError):
        where = Path(exc.filename) if exc.filename else store_dir
        if exc.errno in _FULL_ERRNOS:
            return _full(db, str(where))
        if store_dir not in (where, *where.parents):  # `.git/info/exclude`, the repository
            return StoreError(f"cannot write {where}: {exc.strerror or exc}")
        if exc.errno in _WRITE_ERRNOS:
            return _read_only(db, store_dir, f"cannot write {where}")
        return StoreError(f"the job store {store_dir}: {exc.strerror or exc}")
    code = primary_code(exc)
    detail = str(exc)
    if code in (SQLITE_NOTADB, SQLITE_CORRUPT) or "not a database" in detail:
        return StoreError(
            f"the job store {db} is damaged ({detail}): move it aside "
            f"(mv {db} {db}.damaged) and Logist starts an empty one; "
            f"`sqlite3 {db}.damaged .recover` may save its jobs"
        )
    if code == SQLITE_FULL:
        return _full(db, detail)
    if code in (SQLITE_READONLY, SQLITE_CANTOPEN) or _not_writable(store_dir):
        return _read_only(db, store_dir, f"cannot open {db} for writing ({detail})")
    return StoreError(f"the job store {db}: {detail}")


def _full(db: Path, detail: str) -> StoreFullError:
    return StoreFullError(
        f"the job store {db} cannot be written: the disk is full ({detail}); "
        "free space on its file system and try again"
    )


def _read_only(db: Path, store_dir: Path, what: str) -> StoreError:
    if read_only_mount(store_dir):
        why = f"{store_dir} is on a read-only file system: Logist needs it writable"
    else:
        why = f"make {store_dir} and {db.name} writable for you (chmod u+rwX)"
    return StoreError(f"the job store {what}: {why}")


def read_only_mount(path: Path) -> bool:
    """Whether `path` is on a file system (or bind mount) mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _not_writable(store_dir: Path) -> bool:
    return read_only_mount(store_dir) or (
        store_dir.is_dir() and not os.access(store_dir, os.W_OK | os.X_OK)
    )


class Reserve:
    """A file of `RESERVE_BYTES` in the store directory, given up when the disk is full."""

    def __init__(self, store_dir: Path) -> None:
        self.path = store_dir / RESERVE_NAME

    def keep(self) -> None:
        """Make the reserve if it is missing and there is room (quietly, if there is not)."""
        if os.path.lexists(self.path):
            return
        tmp = self.path.with_name(f".{RESERVE_NAME}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def release(self) -> bool:
        """Delete the reserve; True when there was one (its space is free now)."""
        try:
            os.unlink(self.path)
        except OSError:
            return False
        return True

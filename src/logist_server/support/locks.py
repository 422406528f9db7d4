"""The driver lock: an OS advisory lock, so exactly one process drives a job and the
lock dies with its holder (kill -9 included)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType

# struct flock for F_OFD_* on Linux: l_type, l_whence, l_start, l_len, l_pid (+ padding).
_FLOCK = "hhqqi4x"
_WHOLE_FILE_WRITE = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)


class DriverLock:
    """A non-blocking exclusive open-file-description lock on a per-job file.

    OFD locks (not `flock`) so that `is_locked` can ask who holds the lock (F_OFD_GETLK)
    without taking it: a prober never makes a real driver's attempt fail."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True on success."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _WHOLE_FILE_WRITE)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the description releases its lock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> DriverLock:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


LOCK_WAIT_S = 30.0  # how long a command waits for another process's accept, reset, ...
LOCK_WAIT_ENV = "LOGIST_LOCK_WAIT_S"
_POLL_S = (0.005, 0.1)  # the first and the longest pause between two tries


class LockTimeoutError(OSError):
    """Another process held the lock for the whole wait (an OSError naming the lock file,
    so the CLI prints one line and exits 2)."""


def lock_wait_s() -> float:
    """The bounded wait (seconds) for a repository lock: LOGIST_LOCK_WAIT_S, else 30."""
    raw = os.environ.get(LOCK_WAIT_ENV, "")
    try:
        value = float(raw) if raw else LOCK_WAIT_S
    except ValueError:
        value = LOCK_WAIT_S
    return value if value >= 0 else LOCK_WAIT_S


def _open_lock(repo: Path, name: str) -> tuple[int, Path]:
    lock_dir = repo / ".logist" / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{name}.lock"
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644), path


def _try_lock(fd: int) -> bool:
    """Take the lock if free, and write this process's id in the file (for the message of
    whoever waits next)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return True


def _timed_out(fd: int, path: Path, waited: float) -> LockTimeoutError:
    try:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        holder = ""
    who = f"process {holder}" if holder.isdigit() else "another process"
    return LockTimeoutError(
        errno.EAGAIN,
        f"held by {who} for more than {waited:g} s (an accept, reset or editor accept in "
        f"progress); try again when it is done (wait longer with {LOCK_WAIT_ENV})",
        str(path),
    )


@contextlib.contextmanager
def repo_lock(repo: Path, name: str, wait_s: float | None = None) -> Iterator[None]:
    """An exclusive lock shared by every process working on `repo`
    (`.logist/locks/<name>.lock`), for changes that must not interleave. Waits at most
    `wait_s` (default `lock_wait_s()`), then LockTimeoutError naming the holder's pid."""
    limit = lock_wait_s() if wait_s is None else wait_s
    fd, path = _open_lock(repo, name)
    try:
        deadline = time.monotonic() + limit
        pause = _POLL_S[0]
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise _timed_out(fd, path, limit)
            time.sleep(pause)
            pause = min(pause * 2, _POLL_S[1])
        yield
    finally:
        os.close(fd)  # closing the file releases the lock


@contextlib.asynccontextmanager
async def repo_lock_async(
    repo: Path, name: str, wait_s: float | None = None
) -> AsyncIterator[None]:
    """`repo_lock` for coroutines: waits by polling on the event loop (no thread holds a
    half-taken lock), so a waiter cancelled while waiting leaves nothing behind."""
    import asyncio

    limit = lock_wait_s() if wait_s is None else wait_s
    fd, path = _open_lock(repo, name)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        pause = _POLL_S[0]
        while not _try_lock(fd):
            if loop.time() >= deadline:
                raise _timed_out(fd, path, limit)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _POLL_S[1])
        yield
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """True when some live process holds the lock at `path` (asks; never takes it)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _WHOLE_FILE_WRITE)
    finally:
        os.close(fd)
    return bool(struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK)

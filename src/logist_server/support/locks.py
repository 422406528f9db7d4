"""The driver lock: an OS advisory lock, so exactly one process drives a job and the
lock dies with its holder (kill -9 included)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
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


@contextlib.contextmanager
def repo_lock(repo: Path, name: str) -> Iterator[None]:
    """A blocking exclusive lock shared by every process working on `repo`
    (`.logist/locks/<name>.lock`), for changes that must not interleave."""
    lock_dir = repo / ".logist" / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.asynccontextmanager
async def repo_lock_async(repo: Path, name: str) -> AsyncIterator[None]:
    """`repo_lock` for coroutines: the wait happens in a thread, not in the event loop."""
    import asyncio

    lock = repo_lock(repo, name)
    await asyncio.to_thread(lock.__enter__)
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


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

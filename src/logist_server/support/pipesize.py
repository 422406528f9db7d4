"""Pipe sizes: fewer wake-ups for a reader of a long output (a listing, a flood of events)."""

from __future__ import annotations

# Linux caps an unprivileged request at /proc/sys/fs/pipe-max-size (1 MiB by default).
PIPE_BYTES = 1 << 20
F_SETPIPE_SZ = 1031  # fcntl.F_SETPIPE_SZ on Linux


def grow_pipe(fd: int, size: int = PIPE_BYTES) -> None:
    """Enlarge the pipe on `fd` to `size` bytes, if it is one; anything else is left alone.

    With the default 64 KiB, a writer of 16 MB blocks 256 times, each time waking the
    reader for one 64 KiB read; with 1 MiB, 16 times. Not a pipe, not Linux, or over the
    system's limit: nothing changes, and the default size works as before."""
    try:
        import fcntl

        fcntl.fcntl(fd, F_SETPIPE_SZ, size)
    except (ImportError, OSError, ValueError):
        pass

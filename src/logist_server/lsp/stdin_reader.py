"""Reading the editor's messages from stdin on the event loop itself.

pygls' `StdinAsyncReader` reads every header line and every body in a worker thread: three
thread hops per message, each needing the GIL back and a turn of the loop. While 20 jobs
start and stream, worker threads (git, spawning, committing output) hold the GIL most of
the time, and the editor's requests queued up in the pipe unread for seconds. A pipe (or
socket, or terminal) read through the loop's own selector needs no thread: a message
already in the pipe is framed in one turn of the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

from pygls.io_ import StdinAsyncReader

from logist_server.lsp.framing import MAX_BODY, Reader

log = logging.getLogger(__name__)
LIMIT = MAX_BODY  # a header line is refused by the framing long before this


async def stdin_reader(stdin: BinaryIO, stdout: BinaryIO, pool: ThreadPoolExecutor) -> Reader:
    """A reader of `stdin` driven by the event loop when stdin is a pipe or socket of its
    own; else pygls' reader in `pool`'s threads. (Watching stdin makes it non-blocking: a
    terminal, or one socket for both directions, would make stdout non-blocking too.)"""
    if not _own_pipe(stdin, stdout):
        return StdinAsyncReader(stdin, pool)
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader(limit=LIMIT, loop=loop)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), stdin)
    except (ValueError, OSError) as exc:
        log.info("stdin is read in a thread (%s)", exc)
        return StdinAsyncReader(stdin, pool)
    return _StreamReader(stream)


def _own_pipe(stdin: BinaryIO, stdout: BinaryIO) -> bool:
    """Whether stdin is a pipe or socket that is not also stdout."""
    try:
        got, put = os.fstat(stdin.fileno()), os.fstat(stdout.fileno())
    except (OSError, ValueError):
        return False
    if not (stat.S_ISFIFO(got.st_mode) or stat.S_ISSOCK(got.st_mode)):
        return False
    return (got.st_dev, got.st_ino) != (put.st_dev, put.st_ino)


class _StreamReader:
    """The `Reader` interface over an asyncio stream (end of input: b"" from readline)."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self._stream = stream

    def readline(self) -> Awaitable[bytes]:
        return self._stream.readline()

    def readexactly(self, n: int) -> Awaitable[bytes]:
        return self._stream.readexactly(n)

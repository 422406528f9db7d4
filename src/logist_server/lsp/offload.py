"""Blocking work of the language server's handlers runs here, never on the event loop.

Two long-lived pools whose threads are started once (a `ThreadPoolExecutor` starts a
thread inside `submit`, on the caller's thread, whenever none is idle):
- `reads`: short store reads (job lists, lookups, the store's data version), so a slow
  engine operation never queues a read behind it;
- `work`: engine operations that may take seconds (reject's kill and rmtree, accept's git
  merge and writes, a job's diff)."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")
READ_THREADS = 2
WORK_THREADS = 8


def _started(workers: int, prefix: str) -> ThreadPoolExecutor:
    """A pool with all its threads already running (each waits on a barrier once)."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix=prefix)
    barrier = threading.Barrier(workers + 1)
    for _ in range(workers):
        pool.submit(barrier.wait)
    barrier.wait()
    return pool


_pools: dict[str, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def pool(kind: str) -> ThreadPoolExecutor:
    """The process's `reads` or `work` pool (started on first use)."""
    with _pools_lock:
        found = _pools.get(kind)
        if found is None:
            size = READ_THREADS if kind == "reads" else WORK_THREADS
            found = _pools[kind] = _started(size, f"logist-lsp-{kind}")
        return found


async def read(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args)` on the reads pool: a store read the loop must not wait for."""
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool("reads"), call)


async def work(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args)` on the work pool: an engine operation (git, kills, file trees)."""
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(pool("work"), call)

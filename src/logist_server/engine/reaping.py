"""Ending a step's processes: whatever way a step ends, nothing of its agent outlives it."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from logist_server.domain.errors import RuntimeProviderError
from logist_server.domain.model import RuntimeHandle, Workspace
from logist_server.engine.job_log import JobLog
from logist_server.providers.runtimes.base import JobPaths, Runtime

T = TypeVar("T")
# Kills wait seconds for an agent that ignores SIGTERM: in threads of their own, so that
# they never queue behind (or hold up) the requests' worker threads, nor the reverse.
_KILLERS = ThreadPoolExecutor(4, thread_name_prefix="logist-kill")


async def in_killer(work: Callable[[], T]) -> T:
    """`work()` (a kill, or anything that waits for processes) in a killer thread."""
    return await asyncio.get_running_loop().run_in_executor(_KILLERS, work)


#: How long the engine watches an agent after `kill` when its runtime cannot promise that
#: `kill` takes down every process (`supports_kill_tree` false).
KILL_TREE_WAIT_S = 10.0


async def reap(
    log: JobLog,
    runtime: Runtime,
    handle: RuntimeHandle,
    paths: JobPaths,
    workspace: Workspace | None,
) -> None:
    """Kill every process the step's agent left (or still runs), in a worker thread (a kill
    waits for an agent that ignores SIGTERM); a `reaped` event names them. Runs whenever a
    step ends: exit, crash, cancel, limit. A runtime without `supports_kill_tree` is watched
    until its agent is gone; if it is not, the step fails (RuntimeProviderError) rather
    than harvest a workspace something may still write to."""
    killed = await in_killer(functools.partial(runtime.kill, handle, paths, workspace))
    if killed:
        await log.update_off_loop(None, [("reaped", {"processes": killed})])
    if not runtime.supports_kill_tree and not await in_killer(
        functools.partial(wait_gone, runtime, handle, paths)
    ):
        raise RuntimeProviderError(
            f"runtime '{runtime.name}' could not stop the agent within {KILL_TREE_WAIT_S:g} s "
            "(it cannot kill a whole process tree): the step's result is not used"
        )


def wait_gone(runtime: Runtime, handle: RuntimeHandle, paths: JobPaths) -> bool:
    """Whether the agent is gone within KILL_TREE_WAIT_S (blocks)."""
    deadline = time.monotonic() + KILL_TREE_WAIT_S
    while runtime.is_alive(handle, paths):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True

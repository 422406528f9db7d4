"""Ending a step's processes: whatever way a step ends, nothing of its agent outlives it."""

from __future__ import annotations

import asyncio

from logist_server.domain.model import RuntimeHandle, Workspace
from logist_server.engine.job_log import JobLog
from logist_server.providers.runtimes.base import JobPaths, Runtime


async def reap(
    log: JobLog,
    runtime: Runtime,
    handle: RuntimeHandle,
    paths: JobPaths,
    workspace: Workspace | None,
) -> None:
    """Kill every process the step's agent left (or still runs), in a worker thread (a kill
    waits for an agent that ignores SIGTERM); a `reaped` event names them. Runs whenever a
    step ends: exit, crash, cancel, limit."""
    killed = await asyncio.to_thread(runtime.kill, handle, paths, workspace)
    if killed:
        log.update(None, [("reaped", {"processes": killed})])

"""What every connection of one server process shares: the engines and the job drivers.

Each client connection has its own protocol state (its own `LogistServer`: workspace
folders, open documents, capabilities, event pump); they all reach the repositories through
one `Hub`, so two editors on one repository use one engine, and a job keeps being driven
when the connection that created it goes away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logist_server.domain.errors import JobBusyError
from logist_server.domain.model import JobEvent
from logist_server.engine.facade import Engine
from logist_server.vcs.git import RepoInfo

log = logging.getLogger(__name__)
# Called with the engine and the rows a driver in this process just committed.
Listener = Callable[[Engine, list[JobEvent]], None]


class Hub:
    """Engines per repository, the drivers of jobs and who listens to their events."""

    def __init__(self) -> None:
        self.engines: dict[Path, Engine] = {}
        self.listeners: set[Listener] = set()
        self.concurrency: int | None = None  # from the configuration of the first job's repo
        self._slots: asyncio.Semaphore | None = None
        self._driving: dict[tuple[Path, str], asyncio.Task[Any]] = {}

    def engine(self, info: RepoInfo) -> tuple[Engine, bool]:
        """The engine of this repository, and whether it was just made."""
        engine = self.engines.get(info.root)
        if engine is not None:
            return engine, False
        engine = Engine(info)
        self.engines[info.root] = engine
        return engine, True

    def invalidate(self) -> None:
        """Every engine reads its configuration, roles and observer table again on next use
        (the client says the configuration changed)."""
        for engine in self.engines.values():
            engine.invalidate()

    def committed(self, engine: Engine, events: list[JobEvent]) -> None:
        """Hand rows a driver of this process committed to every connection."""
        for listener in list(self.listeners):
            listener(engine, events)

    def submit(self, engine: Engine, job_id: str) -> None:
        """Drive the job in the background, at most `concurrency` at once, whichever
        connection asked: it goes on when that connection closes."""
        key = (engine.repo, job_id)
        if key in self._driving:  # queued or driven here already (another client resumed it)
            return
        task = asyncio.get_running_loop().create_task(
            self._drive(engine, job_id), name=f"drive job {job_id}"
        )
        self._driving[key] = task
        task.add_done_callback(lambda done: self._driver_done(key, done))

    def _driver_done(self, key: tuple[Path, str], task: asyncio.Task[Any]) -> None:
        self._driving.pop(key, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %s", task.get_name(), task.exception())

    async def _drive(self, engine: Engine, job_id: str) -> None:
        if self._slots is None:
            if self.concurrency is None:
                self.concurrency = engine.config.settings.concurrency
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            try:
                await engine.drive(job_id, lambda events: self.committed(engine, events))
            except JobBusyError:
                log.info("job %s is driven by another process; following its events", job_id)

"""One job's durable log as its driver writes it: every change committed, then handed on.

`update`/`transition` commit on the calling thread. A driver on the server's event loop
uses `update_off_loop`/`transition_off_loop`: the durable commit (SQLite, synchronous=FULL,
possibly waiting for another writer) runs in a store-writer thread, and the committed rows
are handed to the listener back on the loop, in order.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from logist_server.domain.model import Job, JobEvent, JobStatus
from logist_server.store.job_store import EventSpec, JobStore

EventListener = Callable[[list[JobEvent]], None]
T = TypeVar("T")
# Status changes and step records of every driver in this process: commits are serialised
# by the store anyway, and a pool of their own never waits behind requests' worker threads.
_WRITER = ThreadPoolExecutor(2, thread_name_prefix="logist-store")


async def in_writer(work: Callable[[], T], done: Callable[[T], None] | None = None) -> T:
    """`work()` in a store-writer thread, then `done(result)` on the loop. Cancelled
    meanwhile (the process is stopping), it lets the commit finish and still calls `done`,
    so what is committed is also handed on."""
    future = asyncio.get_running_loop().run_in_executor(_WRITER, work)
    try:
        result = await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait({future})
        if done is not None and not future.cancelled() and future.exception() is None:
            done(future.result())
        raise
    if done is not None:
        done(result)
    return result


class JobLog:
    """Commits one job's changes and events to the store, then tells the listener."""

    def __init__(self, store: JobStore, job_id: str, listener: EventListener | None) -> None:
        self.store = store
        self.job_id = job_id
        self.listener = listener

    def get(self) -> Job:
        return self.store.get(self.job_id)

    def update(self, mutate: Callable[[Job], None] | None, events: list[EventSpec]) -> Job:
        """Apply `mutate` and append `events` in one transaction; hand the rows on."""
        job, stored = self.store.update(self.job_id, mutate, events)
        self.emit(stored)
        return job

    def transition(
        self,
        to: JobStatus,
        reason: str | None = None,
        mutate: Callable[[Job], None] | None = None,
        data: dict[str, Any] | None = None,
    ) -> Job:
        job, event = self.store.transition(self.job_id, to, reason, mutate, data)
        self.emit([event])
        return job

    async def update_off_loop(
        self, mutate: Callable[[Job], None] | None, events: list[EventSpec]
    ) -> Job:
        """`update`, committed in a store-writer thread; the rows handed on from the loop."""
        commit = functools.partial(self.store.update, self.job_id, mutate, events)
        job, _stored = await in_writer(commit, lambda result: self.emit(result[1]))
        return job

    async def transition_off_loop(
        self,
        to: JobStatus,
        reason: str | None = None,
        mutate: Callable[[Job], None] | None = None,
        data: dict[str, Any] | None = None,
    ) -> Job:
        """`transition`, committed in a store-writer thread."""
        move = functools.partial(self.store.transition, self.job_id, to, reason, mutate, data)
        job, _event = await in_writer(move, lambda result: self.emit([result[1]]))
        return job

    async def get_off_loop(self) -> Job:
        """The job as stored, read in a store-writer thread (it may wait for a commit)."""
        return await in_writer(self.get)

    def emit(self, events: list[JobEvent]) -> None:
        if self.listener is not None and events:
            self.listener(events)

    def last_seq(self) -> int:
        return self.store.last_seq(self.job_id)

    def step_start_seq(self, number: int) -> int:
        """The seq of the event that started step `number` (0: not found)."""
        for event in reversed(self.store.event_rows(self.job_id)):
            if event.kind in ("step", "status") and event.data.get("step") == number:
                return event.seq
        return 0

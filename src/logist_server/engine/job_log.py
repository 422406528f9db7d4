"""One job's durable log as its driver writes it: every change committed, then handed on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logist_server.domain.model import Job, JobEvent, JobStatus
from logist_server.store.job_store import EventSpec, JobStore

EventListener = Callable[[list[JobEvent]], None]


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

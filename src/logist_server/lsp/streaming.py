"""Streaming job events to the client: `logist/jobEvent`, `$/progress`, `window/showMessage`.

The pump reads every job's new events from the stores, whichever process wrote them, so
jobs driven by the CLI or another editor stream here too. Jobs driven in this process hand
their committed rows to the pump directly (`wake(events)`), which spares reading them back;
any gap in what was handed over is read from the store, so nothing is lost either way.
Bursts of messages are coalesced into one notification (`firstSeq`..`seq`), so a flood
never stalls the server or client; and events wait while the client has more than
MAX_BACKLOG unread, so a reply never queues behind a flood, nor blocks the loop writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import sys
import termios
import time
from collections.abc import Callable

from lsprotocol import types

from logist_server.domain.event_kinds import EventKind
from logist_server.domain.model import JobEvent, JobStatus
from logist_server.domain.states import SETTLED
from logist_server.engine.facade import Engine
from logist_server.lsp import offload
from logist_server.lsp.app import LogistServer
from logist_server.lsp.protocol import JOB_EVENT
from logist_server.lsp.wire import job_event, message_run

log = logging.getLogger(__name__)
POLL_S = 0.1
MAX_EVENTS_PER_ROUND = 20_000
MAX_COALESCED = 2_000
MAX_HANDED_ROWS = 10_000  # rows kept per job until sent; beyond, the store is read instead
PROGRESS_REPORT_INTERVAL_S = 0.25
# Events wait while the client has this much unread (a reply to a request queues behind it;
# a write into a full pipe would stop the event loop until the client reads).
MAX_BACKLOG = 256 * 1024
BACKLOG_WAIT_S = 0.005
MESSAGE = EventKind.MESSAGE


class JobProgress:
    """The `$/progress` of one job: create, begin, throttled reports, end."""

    def __init__(self, server: LogistServer, job_id: str) -> None:
        self.server = server
        self.token = f"logist-job-{job_id}"
        self.job_id = job_id
        self.ready = False
        self.ended = False
        self._last_report = 0.0
        self._pending_end: str | None = None

    async def begin(self, title: str) -> None:
        try:
            await self.server.work_done_progress.create_async(self.token)
        except Exception as exc:
            log.info("client refused progress for %s: %s", self.job_id, exc)
            self.ended = True
            return
        self.server.work_done_progress.begin(
            self.token, types.WorkDoneProgressBegin(title=title, cancellable=False)
        )
        self.ready = True
        if self._pending_end is not None:
            self.end(self._pending_end)

    def report(self, message: str, force: bool = False) -> None:
        now = time.monotonic()
        if not self.ready or self.ended:
            return
        if not force and now - self._last_report < PROGRESS_REPORT_INTERVAL_S:
            return
        self._last_report = now
        self.server.work_done_progress.report(
            self.token, types.WorkDoneProgressReport(message=message[:120])
        )

    def end(self, message: str) -> None:
        if self.ended:
            return
        if not self.ready:
            self._pending_end = message
            return
        self.ended = True
        self.server.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))


class EventPump:
    """Sends every new job event of every watched repository to the client."""

    def __init__(self, server: LogistServer) -> None:
        self.server = server
        self.marks: dict[str, dict[str, int]] = {}
        self.progress: dict[str, JobProgress] = {}
        self.on_status: list[Callable[[Engine, str, JobStatus], None]] = []
        self._wake = asyncio.Event()
        self._versions: dict[str, tuple[int, int]] = {}
        self._handed: dict[str, list[JobEvent]] = {}  # committed rows from in-process drivers

    def watch(self, engine: Engine, marks: dict[str, int] | None = None) -> None:
        """Follow this repository's jobs from now on (history is not replayed); `marks`:
        each job's last event number, read beforehand in a worker thread (else here)."""
        key = str(engine.repo)
        if key in self.marks:
            return
        if marks is None:
            marks = engine.store.changes_since({}) if engine.has_store() else {}
        self.marks[key] = marks

    def wake(self, events: list[JobEvent] | None = None) -> None:
        """Something changed; `events` are rows a driver in this process just committed."""
        if events:
            rows = self._handed.setdefault(events[0].job_id, [])
            if len(rows) < MAX_HANDED_ROWS:
                rows.extend(events)
            else:  # the client is far behind: stop holding rows, read the store when it can
                rows.clear()
        self._wake.set()

    def committed(self, engine: Engine, events: list[JobEvent]) -> None:
        """Rows a driver of this process committed (any client's job): handed over when
        this client follows that repository, else only a wake-up."""
        self.wake(events if self.server.engines.get(engine.repo) is engine else None)

    async def run(self) -> None:
        while True:
            while output_backlog(self.server) > MAX_BACKLOG:
                await asyncio.sleep(BACKLOG_WAIT_S)  # the client reads what it has first
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_S)
            woken = self._wake.is_set()
            self._wake.clear()
            for engine in list(self.server.engines.values()):
                self.watch(engine)
                if not engine.has_store():
                    continue
                version = await offload.read(engine.store.data_version)  # the store lock
                key = str(engine.repo)
                if not woken and self._versions.get(key) == version:
                    continue  # nobody else wrote to this store since the last round
                self._versions[key] = version
                if await self._send_new(engine):
                    self._wake.set()  # more to send: go on without waiting
                await asyncio.sleep(0)

    async def _send_new(self, engine: Engine) -> bool:
        """Send what is new; True when a round's budget ran out with events left. The
        store is read in a worker thread (its lock may be held through a commit)."""
        marks = self.marks[str(engine.repo)]
        budget = MAX_EVENTS_PER_ROUND
        for job_id in await offload.read(engine.store.changes_since, dict(marks)):
            seen = marks.get(job_id, 0)
            rows = self._take_handed(job_id, seen, budget)
            if not rows:
                rows = await offload.read(engine.store.event_rows, job_id, after=seen, limit=budget)
            if not rows:
                continue
            self._send(engine, rows, seen)
            marks[job_id] = rows[-1].last_seq
            budget -= rows[-1].last_seq - seen  # events, not rows: a row can be a long run
            if budget <= 0:
                return True
        return False

    def _take_handed(self, job_id: str, seen: int, budget: int) -> list[JobEvent]:
        """The handed-over rows that continue the job's log right after seq `seen`.

        Rows already sent are dropped. Only a gapless run starting at `seen + 1` is used,
        and only up to about `budget` events; the rest waits for the next round (after a
        gap, the next round reads the store)."""
        rows = self._handed.pop(job_id, None)
        if not rows:
            return []
        start = 0
        while start < len(rows) and rows[start].last_seq <= seen:
            start += 1
        if start == len(rows) or rows[start].seq > seen + 1:
            return []
        end = start + 1
        while (
            end < len(rows)
            and rows[end].seq == rows[end - 1].last_seq + 1
            and rows[end - 1].last_seq - seen < budget
        ):
            end += 1
        if end < len(rows):
            self._handed[job_id] = rows[end:]
        return rows[start:end]

    def _send(self, engine: Engine, rows: list[JobEvent], seen: int) -> None:
        """Notify the client of stored rows after seq `seen`; messages go out in runs."""
        notify = self.server.protocol.notify
        texts: list[str] = []
        first = 0
        job_id = rows[0].job_id

        def flush() -> None:
            if not texts:
                return
            notify(JOB_EVENT, message_run(job_id, first, texts))
            self._progress_message(job_id, texts[-1])
            texts.clear()

        for event in rows:
            if event.kind == MESSAGE:
                row_texts = event.data["texts"] if event.span > 1 else [event.data.get("text", "")]
                skip = max(0, seen - event.seq + 1)  # a row partly sent already
                if not texts:
                    first = event.seq + skip
                texts.extend(row_texts[skip:] if skip else row_texts)
                if len(texts) >= MAX_COALESCED:
                    flush()
                continue
            flush()
            notify(JOB_EVENT, job_event(event))
            if event.kind == EventKind.STATUS:
                self._status_changed(engine, event)
            elif event.kind == EventKind.HUNKS_ACCEPTED:  # in any process: the markers change
                for callback in self.on_status:
                    callback(engine, job_id, JobStatus.REVIEW)
        flush()

    def _progress_message(self, job_id: str, text: str) -> None:
        progress = self.progress.get(job_id)
        if progress is not None:
            progress.report(text)

    def _status_changed(self, engine: Engine, event: JobEvent) -> None:
        status = JobStatus(event.data["to"])
        job_id = event.job_id
        starting = status in (JobStatus.PROVISIONING, JobStatus.RUNNING)
        if starting and job_id not in self.progress and _client_supports_progress(self.server):
            started = JobProgress(self.server, job_id)
            self.progress[job_id] = started
            self.server.run_task(started.begin(f"Logist job {job_id}"), f"progress {job_id}")
        progress = self.progress.get(job_id)
        reason = event.data.get("reason")
        if progress is not None:
            if status in SETTLED:
                progress.end(f"{status.value}" + (f": {reason}" if reason else ""))
                del self.progress[job_id]
            else:
                progress.report(status.value, force=True)
        if status == JobStatus.REVIEW:
            self._show(types.MessageType.Info, f"Logist job {job_id} is ready for review: {reason}")
        elif status == JobStatus.FAILED:
            self._show(types.MessageType.Error, f"Logist job {job_id} failed: {reason}")
        elif status in (JobStatus.STUCK, JobStatus.HALTED):
            self._show(types.MessageType.Warning, f"Logist job {job_id} {status.value}: {reason}")
        for callback in self.on_status:
            callback(engine, job_id, status)

    def _show(self, kind: types.MessageType, text: str) -> None:
        self.server.window_show_message(types.ShowMessageParams(type=kind, message=text))


def output_backlog(server: LogistServer) -> int:
    """Bytes sent to the client that it has not read yet: in the stdout pipe (FIONREAD)
    or in a TCP connection's transport buffer; 0 when it cannot be told."""
    writer = server.protocol.writer
    transport = getattr(writer, "transport", None)
    if isinstance(transport, asyncio.WriteTransport):
        return transport.get_write_buffer_size()
    stream = getattr(writer, "_stdout", None)  # pygls' StdoutWriter
    try:
        unread = fcntl.ioctl(stream.fileno(), termios.FIONREAD, b"\0\0\0\0")  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return 0
    return int.from_bytes(unread, sys.byteorder, signed=True)


def _client_supports_progress(server: LogistServer) -> bool:
    window = server.client_capabilities.window
    return bool(window and window.work_done_progress)

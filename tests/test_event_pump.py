"""The event pump: every stored event reaches the client once, in order, whoever wrote it.

Rows a driver in the server's own process commits are handed to the pump (`wake(events)`)
and sent without reading them back; anything not handed over (another process wrote it, a
gap) is read from the store. These tests use a real store and check the notifications.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from logist_server.engine import Engine
from logist_server.git import find_repo
from logist_server.model import AgentSpec, Job, JobEvent, JobStatus
from logist_server.requests import JobRequest
from logist_server.server.streaming import EventPump
from logist_server.store import JobStore, new_job_id


class FakeServer:
    """What the pump uses of the language server: notifications are recorded."""

    def __init__(self, engine: Engine) -> None:
        self.engines = {engine.repo: engine}
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.shown: list[str] = []
        self.protocol = SimpleNamespace(
            notify=lambda method, params: self.sent.append((method, params))
        )
        self.client_capabilities = SimpleNamespace(window=None)

    def window_show_message(self, params: Any) -> None:
        self.shown.append(params.message)


@pytest.fixture
def engine(repo: Path) -> Engine:
    return Engine(find_repo(repo))


def new_job(store: JobStore, repo: Path) -> str:
    job = Job(id=new_job_id(), prompt="p", repo=str(repo), agent=AgentSpec("mock"))
    store.insert(job, [("created", {"status": "pending"})])
    return job.id


def messages(store: JobStore, job_id: str, texts: list[str]) -> list[JobEvent]:
    """Store `texts` as one run of messages (as the driver does); the committed rows."""
    spec: Any = ("message", {"text": texts[0]})
    if len(texts) > 1:
        spec = ("message", {"texts": texts}, len(texts))
    _job, rows = store.update(job_id, None, [spec])
    return rows


def covered(server: FakeServer, job_id: str) -> list[int]:
    """Every seq the notifications of `job_id` cover, in the order sent."""
    seqs: list[int] = []
    for method, params in server.sent:
        if method == "logist/jobEvent" and params["jobId"] == job_id:
            seqs.extend(range(params.get("firstSeq", params["seq"]), params["seq"] + 1))
    return seqs


def texts_sent(server: FakeServer, job_id: str) -> list[str]:
    out: list[str] = []
    for _method, params in server.sent:
        if params["jobId"] == job_id and params["kind"] == "message":
            text = params["data"]["text"]
            out.extend(text.split("\n") if "firstSeq" in params else [text])
    return out


def start_pump(engine: Engine) -> tuple[FakeServer, EventPump]:
    server = FakeServer(engine)
    pump = EventPump(server)  # type: ignore[arg-type]
    pump.watch(engine)
    return server, pump


def test_rows_handed_over_are_sent_without_reading_the_store(
    engine: Engine, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = engine.store
    job_id = new_job(store, repo)
    server, pump = start_pump(engine)  # history (the `created` event) is not replayed
    rows = messages(store, job_id, [f"line {i}" for i in range(5000)])
    rows += messages(store, job_id, ["one more"])
    pump.wake(rows)

    def no_reads(*_args: object, **_kwargs: object) -> list[JobEvent]:
        raise AssertionError("the pump read rows it was handed")

    monkeypatch.setattr(store, "event_rows", no_reads)
    assert pump._send_new(engine) is False
    assert covered(server, job_id) == list(range(2, 5003))
    assert texts_sent(server, job_id) == [f"line {i}" for i in range(5000)] + ["one more"]


def test_rows_another_process_wrote_are_read_from_the_store(engine: Engine, repo: Path) -> None:
    store = engine.store
    job_id = new_job(store, repo)
    server, pump = start_pump(engine)
    other = JobStore(repo)  # another process's connection: nothing is handed over
    messages(other, job_id, ["a", "b"])
    other.transition(job_id, JobStatus.PROVISIONING)
    other.close()
    pump.wake()
    pump._send_new(engine)
    assert covered(server, job_id) == [2, 3, 4]
    statuses = [p.get("status") for _m, p in server.sent if "status" in p]
    assert statuses == ["provisioning"]


def test_a_gap_in_what_was_handed_over_is_filled_from_the_store(engine: Engine, repo: Path) -> None:
    store = engine.store
    job_id = new_job(store, repo)
    server, pump = start_pump(engine)
    first = messages(store, job_id, ["1", "2"])  # seq 2-3, handed over
    pump.wake(first)
    pump._send_new(engine)
    other = JobStore(repo)
    messages(other, job_id, ["3", "4"])  # seq 4-5: written elsewhere, never handed over
    other.close()
    later = messages(store, job_id, ["5"])  # seq 6: handed over, after the gap
    later += store.update(job_id, None, [("usage", {"input_tokens": 3})])[1]  # seq 7
    pump.wake(later)
    for _ in range(3):  # the gap is read from the store; what follows arrives too
        pump._send_new(engine)
    assert covered(server, job_id) == list(range(2, 8))
    assert texts_sent(server, job_id) == ["1", "2", "3", "4", "5"]


def test_rows_already_sent_are_not_sent_twice(engine: Engine, repo: Path) -> None:
    store = engine.store
    job_id = new_job(store, repo)
    server, pump = start_pump(engine)
    rows = messages(store, job_id, ["x", "y", "z"])  # seq 2-4
    pump.wake()  # a wake without rows: the pump reads the store
    pump._send_new(engine)
    pump.wake(rows)  # the same rows handed over late
    pump._send_new(engine)
    more = messages(store, job_id, ["w"])
    pump.wake(rows + more)  # a run partly sent already, then a new row
    pump._send_new(engine)
    assert covered(server, job_id) == [2, 3, 4, 5]


def test_a_partly_sent_run_resumes_after_the_last_seq_sent(engine: Engine, repo: Path) -> None:
    store = engine.store
    job_id = new_job(store, repo)
    server, pump = start_pump(engine)
    rows = messages(store, job_id, [str(i) for i in range(10)])  # seq 2-11
    pump.marks[str(engine.repo)][job_id] = 6  # as if seq 2-6 had gone out in an earlier round
    pump.wake(rows)
    pump._send_new(engine)
    assert covered(server, job_id) == list(range(7, 12))
    assert texts_sent(server, job_id) == ["5", "6", "7", "8", "9"]


def test_the_run_loop_delivers_a_driven_job_to_review(engine: Engine, repo: Path) -> None:
    """End to end in one process: a real mock job driven with the pump as its listener."""

    async def scenario() -> FakeServer:
        server, pump = start_pump(engine)
        request = JobRequest(
            prompt="flood", agent="mock", agent_options={"scenario": "flood", "lines": "3000"}
        )
        job = engine.create_job(request)
        runner = asyncio.create_task(pump.run())
        try:
            await engine.drive(job.id, pump.wake)
            for _ in range(50):
                if covered(server, job.id)[-1:] == [engine.store.last_seq(job.id)]:
                    break
                await asyncio.sleep(0.05)
        finally:
            runner.cancel()
        server.job_id = job.id  # type: ignore[attr-defined]
        return server

    server = asyncio.run(scenario())
    job_id = server.job_id  # type: ignore[attr-defined]
    assert covered(server, job_id) == list(range(1, engine.store.last_seq(job_id) + 1))
    assert texts_sent(server, job_id)[:2] == ["flood line 0", "flood line 1"]
    assert len(texts_sent(server, job_id)) == 3000
    assert engine.get(job_id).status == JobStatus.REVIEW
    assert any("ready for review" in text for text in server.shown)

"""The event pump through the real server: every stored event reaches the client once, in
order, whoever wrote it.

`logist-server` runs over stdio with a real LSP client (pytest-lsp). Jobs it drives hand
their committed rows to the pump; jobs the `logist` CLI drives in another process are read
from the store; a job the server drives while the CLI writes into its log (`job answer`)
has a gap in what was handed over, which the pump fills from the store. In every case the
`logist/jobEvent` notifications must tile seq 1..last of the job's log exactly: none lost,
none twice, in order, and with the stored content.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from conftest import LOGIST
from logist_server.domain.model import JobEvent
from logist_server.store.job_store import JobStore
from lsp_client import Editor, lsp_session

FLOOD_LINES = 30_000  # more than one round of the pump (MAX_EVENTS_PER_ROUND = 20 000)
TIMEOUT_S = 120  # only guards against a hang


@pytest_asyncio.fixture
async def editor(repo: Path) -> AsyncIterator[Editor]:
    async with lsp_session([repo], Editor) as ed:
        yield ed


# -- what the client received ----------------------------------------------------------------
def notifications(editor: Editor, job_id: str) -> list[dict[str, Any]]:
    return [e for e in editor.events if e.get("jobId") == job_id]


def covered(editor: Editor, job_id: str) -> list[int]:
    """Every seq the job's notifications cover, in the order they arrived."""
    seqs: list[int] = []
    for event in notifications(editor, job_id):
        seqs.extend(range(event.get("firstSeq", event["seq"]), event["seq"] + 1))
    return seqs


def received(editor: Editor, job_id: str) -> list[tuple[int, str, Any]]:
    """(seq, kind, data) per event, coalesced message runs split back into single events."""
    out: list[tuple[int, str, Any]] = []
    for event in notifications(editor, job_id):
        if "firstSeq" in event:
            texts = event["data"]["text"].split("\n")
            assert len(texts) == event["data"]["count"] == event["seq"] - event["firstSeq"] + 1
            first = event["firstSeq"]
            out.extend((first + i, "message", {"text": t}) for i, t in enumerate(texts))
        else:
            out.append((event["seq"], event["kind"], event["data"]))
    return out


def stored(repo: Path, job_id: str) -> list[JobEvent]:
    store = JobStore(repo)
    try:
        return store.events(job_id)
    finally:
        store.close()


async def wait_until(editor: Editor, done: Any, what: str) -> None:
    """Wait for notifications until `done()` holds; fail after TIMEOUT_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while not done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {what}")
        editor.event_arrived.clear()
        with contextlib.suppress(TimeoutError):  # a re-check now and then: no lost wake-up
            await asyncio.wait_for(editor.event_arrived.wait(), min(remaining, 1.0))


async def settled_and_delivered(editor: Editor, repo: Path, job_id: str) -> list[JobEvent]:
    """Wait for the job to settle and for the client to have caught up with its log."""
    await editor.wait_status(job_id, {"review", "failed", "stuck", "halted", "cancelled"}, 120)

    def caught_up() -> bool:
        got = covered(editor, job_id)
        return bool(got) and got[-1] >= stored(repo, job_id)[-1].seq

    await wait_until(editor, caught_up, f"every event of job {job_id}")
    return stored(repo, job_id)


def assert_tiles_the_log(editor: Editor, job_id: str, log: list[JobEvent]) -> None:
    """The notifications cover seq 1..last exactly once, in order, with the stored data (its
    keys camelCase on the wire)."""
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    got = covered(editor, job_id)
    assert got == list(range(1, len(log) + 1)), (
        f"lost {sorted(set(range(1, len(log) + 1)) - set(got))[:10]}, "
        f"twice {sorted({s for s in got if got.count(s) > 1})[:10]}"
    )
    assert [(s, k, d) for s, k, d in received(editor, job_id)] == [
        (e.seq, e.kind, camel_keys(e.data)) for e in log
    ]


def camel_keys(data: dict[str, Any]) -> dict[str, Any]:
    """`{"cost_usd": 1}` -> `{"costUsd": 1}`: the top-level keys only (values are data)."""
    return {re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), k): v for k, v in data.items()}


async def mock_job(editor: Editor, prompt: str, **options: str) -> str:
    """A job of the mock agent (with agent `options`) created through the server: its id."""
    params = {"prompt": prompt, "agent": "mock", "agentOptions": options}
    created = await editor.request("logist/createJob", params)
    return str(created["jobId"])


def statuses(editor: Editor, job_id: str) -> list[Any]:
    """The statuses the client was told of for `job_id`, in order."""
    return [e.get("status") for e in notifications(editor, job_id) if "status" in e]


def messages(editor: Editor, job_id: str) -> list[Any]:
    """The texts of the message events the client received for `job_id`."""
    return [d["text"] for _s, k, d in received(editor, job_id) if k == "message"]


# -- the cases -------------------------------------------------------------------------------
async def test_a_job_the_server_drives_reaches_the_client_whole(editor: Editor, repo: Path) -> None:
    """Rows handed over by the server's own driver are sent: a slow job, event by event."""
    job_id = await mock_job(editor, "handed", scenario="slow", seconds="1")
    log = await settled_and_delivered(editor, repo, job_id)
    assert_tiles_the_log(editor, job_id, log)
    assert statuses(editor, job_id) == ["provisioning", "running", "review"]
    texts = messages(editor, job_id)
    assert texts[:4] == [f"thinking {i}/4" for i in range(1, 5)]


async def test_a_job_another_process_drives_is_read_from_the_store(
    editor: Editor, repo: Path
) -> None:
    """Nothing is handed over for a job the CLI drives: the pump reads what it wrote."""
    proc = await asyncio.create_subprocess_exec(
        str(LOGIST), "run", "--json", "--prompt", "elsewhere", "--agent-opt", "scenario=slow",
        "--agent-opt", "seconds=1", cwd=repo,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    assert proc.returncode == 0, err
    job_id = json.loads(out)["id"]
    log = await settled_and_delivered(editor, repo, job_id)
    assert_tiles_the_log(editor, job_id, log)


async def test_a_gap_another_process_writes_is_filled_and_nothing_is_sent_twice(
    editor: Editor, repo: Path
) -> None:
    """The server drives a job that asks a question; `logist job answer`, another process,
    writes the answer's status event into its log. The driver's next rows, handed over,
    follow that gap: the pump must read the gap from the store and send every row once."""
    job_id = await mock_job(editor, "ask", scenario="question", question="Which one?")
    await editor.wait_status(job_id, {"needs_input"}, TIMEOUT_S)
    proc = await asyncio.create_subprocess_exec(
        str(LOGIST), "job", "answer", job_id, "this one", cwd=repo,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    assert proc.returncode == 0, err
    log = await settled_and_delivered(editor, repo, job_id)
    assert_tiles_the_log(editor, job_id, log)
    assert statuses(editor, job_id) == [
        "provisioning",
        "running",
        "needs_input",
        "running",
        "review",
    ]
    answered = next(e for e in log if e.kind == "status" and e.data.get("reason") == "answered")
    assert answered.data["answer"] == "this one"
    texts = messages(editor, job_id)
    assert "got the answer: this one" in texts


async def test_a_flood_tiles_seq_1_to_last(editor: Editor, repo: Path) -> None:
    """A flood larger than one round of the pump arrives coalesced, whole and in order."""
    job_id = await mock_job(editor, "flood", scenario="flood", lines=str(FLOOD_LINES))
    log = await settled_and_delivered(editor, repo, job_id)
    assert_tiles_the_log(editor, job_id, log)
    texts = messages(editor, job_id)
    floods = [t for t in texts if t.startswith("flood line ")]
    assert floods == [f"flood line {i}" for i in range(FLOOD_LINES)]
    # Coalesced: far fewer notifications than events.
    assert len(notifications(editor, job_id)) < len(log) // 10


async def test_a_job_the_cli_drives_while_the_server_drives_another(
    editor: Editor, repo: Path
) -> None:
    """Both paths at once on one store: handed rows of one job, read rows of the other."""
    mine = await mock_job(editor, "mine", scenario="flood", lines="5000")
    proc = await asyncio.create_subprocess_exec(
        str(LOGIST), "run", "--json", "--prompt", "theirs", "--file", "a.txt",
        "--agent-opt", "scenario=flood", "--agent-opt", "lines=5000", cwd=repo,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT_S)
    assert proc.returncode == 0, err
    store = JobStore(repo)
    theirs = next(j.id for j in store.list_jobs() if j.prompt == "theirs")
    store.close()
    for job_id in (mine, theirs):
        log = await settled_and_delivered(editor, repo, job_id)
        assert_tiles_the_log(editor, job_id, log)

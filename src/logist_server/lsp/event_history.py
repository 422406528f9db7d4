"""A page of a job's stored events, as `logist/jobEvent` sends them (getJobEvents): for a
panel opened late, the history after a sequence number, then the live stream goes on.

A page holds at most `limit` sequence numbers and about MAX_PAGE_BYTES of JSON (at least
one event); runs of messages are coalesced as on the stream (`firstSeq`..`seq`, `count`),
so a 200,000-line flood is a few hundred entries. Every payload is masked again with the
secrets this process knows (the store masked it with the writer's)."""

from __future__ import annotations

from typing import Any

import msgspec

from logist_server.domain.event_kinds import EventKind
from logist_server.lsp.streaming import MAX_COALESCED
from logist_server.lsp.wire import job_event, message_run
from logist_server.store.job_store import JobStore
from logist_server.support.redaction import redact_bytes

MAX_PAGE_BYTES = 1024 * 1024


def _masked(payload: Any) -> tuple[dict[str, Any], int]:
    raw = redact_bytes(msgspec.json.encode(payload))
    out: dict[str, Any] = msgspec.json.decode(raw)
    return out, len(raw)


def events_page(store: JobStore, job_id: str, after: int, limit: int) -> dict[str, Any]:
    """`{lastSeq, events, next}` for seq > `after` (a store read: call it off the loop)."""
    events: list[dict[str, Any]] = []
    size = 0
    covered = after
    texts: list[str] = []
    first = 0

    def flush() -> None:
        nonlocal size
        if not texts:
            return
        payload, length = _masked(message_run(job_id, first, texts))
        events.append(payload)
        size += length
        texts.clear()

    pending = 0  # bytes of the texts not flushed yet
    for event in store.events(job_id, after=after, limit=limit):
        if size + pending >= MAX_PAGE_BYTES and covered > after:
            break
        if event.kind == EventKind.MESSAGE:
            if not texts:
                first = event.seq
            text = str(event.data.get("text", ""))
            texts.append(text)
            pending += len(text) + 1
            covered = event.seq
            if len(texts) >= MAX_COALESCED:
                flush()
                pending = 0
            continue
        flush()
        pending = 0
        payload, length = _masked(job_event(event))
        events.append(payload)
        size += length
        covered = event.seq
    flush()
    last_seq = max(store.last_seq(job_id), covered)  # read after: an event since is a next page
    return {"lastSeq": last_seq, "events": events, "next": covered if covered < last_seq else None}

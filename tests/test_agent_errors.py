"""Errors an agent prints as JSON reach the observer, classified as the same error printed
as plain text: a rate limit in Anthropic's error object, claude's failed `result`, codex's
`turn.failed`, Logist's own `error` event. Each agent is a real script run by the real host
runtime in a real repository (tests/hostile_agent.py); only its output differs."""

from __future__ import annotations

import asyncio
import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from conftest import job_events
from hostile_agent import SCRIPT_AGENT, engine_with
from logist_server.domain.model import JobPolicy
from logist_server.domain.requests import JobRequest

RATE = (
    'API Error: 429 {"type":"error","error":{"type":"rate_limit_error",'
    '"message":"This request would exceed your account\'s rate limit."}}'
)
RATE_JSON = RATE.removeprefix("API Error: 429 ")
AUTH = "Invalid API key · Please run /login"
OVERFLOW = "prompt is too long: 213462 tokens > 200000 maximum"

#: observer kind -> (the plain-text line, the same error as JSON lines in other shapes)
CASES: dict[str, tuple[str, list[str]]] = {
    "rate_limited": (RATE, [
        RATE_JSON,  # the error object alone
        json.dumps({"type": "error", "message": RATE}),  # Logist's own shape
    ]),
    "auth_failed": (AUTH, [
        json.dumps({"type": "result", "subtype": "success", "is_error": True, "result": AUTH}),
    ]),
    "context_overflow": (OVERFLOW, [
        json.dumps({"type": "turn.failed", "error": {"message": OVERFLOW}}),
    ]),
}  # fmt: skip


def observed(repo: Path, line: str) -> tuple[list[tuple[Any, ...]], tuple[Any, ...]]:
    """Run an agent that prints `line` and exits 1: the observer's events (kind, pattern,
    reason, transient) and the step's (failure, transient)."""
    engine = engine_with(repo, f"printf '%s\\n' {shlex.quote(line)}; exit 1")
    job = engine.create_job(JobRequest(prompt="fail", agent=SCRIPT_AGENT,
                                       policy=JobPolicy(max_retries=0)))  # fmt: skip
    job = asyncio.run(engine.drive(job.id))
    assert job.status == "failed"
    hits = [
        (e["kind"], e["data"]["pattern"], e["data"]["reason"], e["data"]["transient"])
        for e in job_events(repo, job.id)
        if "pattern" in e["data"]
    ]
    step = job.steps[-1]
    return hits, (step.failure, step.transient)


@pytest.mark.parametrize("name", sorted(CASES))
def test_an_error_printed_as_json_is_classified_like_the_plain_line(repo: Path, name: str) -> None:
    plain, shapes = CASES[name]
    expected = observed(repo, plain)
    hits, failure = expected
    assert [hit[0] for hit in hits] == [name if name != "rate_limit" else "rate_limited"]
    assert failure[0] is not None
    for line in shapes:
        assert observed(repo, line) == expected, line

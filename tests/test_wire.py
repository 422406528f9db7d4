"""The typed wire (src/logist_server/lsp/wire.py), against the real server over stdio: job
records, summaries and event data are camelCase; every result is encoded through its Struct;
bad params and a hostile repository's configuration get one-line InvalidParams errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from conftest import make_repo, run_logist
from jsonrpc_raw import RawClient
from logist_server.domain.event_kinds import EventKind
from logist_server.domain.knobs import camel
from logist_server.lsp import wire

SERVER = str(Path(sys.executable).parent / "logist-server")
# Mappings inside the record whose keys are data (option names, a runtime's identity).
DATA_KEYS = {"options", "identity", "data", "input"}
INVALID_PARAMS = -32602


@pytest.fixture
def xdg(tmp_path: Path) -> Path:
    return tmp_path / "xdg"


@pytest.fixture
def client(tmp_path: Path, xdg: Path) -> Iterator[RawClient]:
    repo = make_repo(tmp_path / "repo")
    env = dict(os.environ, XDG_CONFIG_HOME=str(xdg))
    raw = RawClient([SERVER], env=env)
    answer = raw.initialize(repo)
    assert "result" in answer, answer
    yield raw
    raw.close()
    log = b"".join(raw.stderr_tail).decode(errors="replace")
    assert "Traceback" not in log, log


def snake_keys(value: Any, where: str = "$") -> list[str]:
    """Paths of keys with an underscore, outside mappings whose keys are data."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if "_" in key:
                found.append(f"{where}.{key}")
            if key not in DATA_KEYS:
                found += snake_keys(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += snake_keys(item, f"{where}[{index}]")
    return found


def same_record(stored: Any, wired: Any, where: str = "$") -> None:
    """`wired` is `stored` with every (non-data) key camelCase, and the same values."""
    if isinstance(stored, dict):
        assert isinstance(wired, dict), where
        expected = {camel(k) for k in stored}
        assert set(wired) == expected, (where, set(wired) ^ expected)
        for key, item in stored.items():
            if key in DATA_KEYS:
                assert wired[key] == item, f"{where}.{key}"
            else:
                same_record(item, wired[camel(key)], f"{where}.{key}")
    elif isinstance(stored, list):
        assert isinstance(wired, list) and len(wired) == len(stored), where
        for index, (a, b) in enumerate(zip(stored, wired, strict=True)):
            same_record(a, b, f"{where}[{index}]")
    else:
        assert wired == stored, where


def job_in_review(client: RawClient, repo: Path) -> str:
    uri = (repo / "a.txt").resolve().as_uri()
    created = client.request("logist/createJob", {"prompt": "p", "agent": "mock", "uri": uri})
    assert set(created["result"]) == {"jobId", "status"}, created
    job_id: str = created["result"]["jobId"]
    client.wait_notification(
        lambda n: (
            n["method"] == "logist/jobEvent"
            and n["params"].get("jobId") == job_id
            and n["params"].get("status") == "review"
        ),
        timeout=60,
    )
    return job_id


def test_job_record_summary_and_events_are_camel_case(client: RawClient, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    job_id = job_in_review(client, repo)

    record = client.request("logist/getJob", {"jobId": job_id})["result"]
    assert snake_keys(record) == [], snake_keys(record)
    stored = json.loads(run_logist("job", "show", "--json", job_id, cwd=repo).stdout)
    assert "base_commit" in stored and "baseCommit" not in stored  # the CLI keeps its shape
    same_record(stored, record)
    assert record["result"]["resultCommit"] and record["steps"][0]["startedAt"]
    msgspec.convert(record, wire.JobRecord, strict=True)  # the record is its Struct

    (summary,) = client.request("logist/listJobs", {})["result"]
    assert set(summary) == {"id", "status", "createdAt", "agent", "file", "headline", "costUsd",
                            "startedAt", "updatedAt"}  # fmt: skip
    assert summary["createdAt"] == stored["created_at"]

    events = [
        n["params"]
        for n in client.received
        if n.get("method") == "logist/jobEvent" and n["params"].get("jobId") == job_id
    ]
    kinds = {e["kind"] for e in events}
    assert {"created", "status", "usage", "harvest"} <= kinds, kinds
    assert kinds <= set(EventKind), kinds - set(EventKind)
    for event in events:
        assert snake_keys(event) == [], event
        msgspec.convert(event, wire.JobEventParams, strict=True)
    usage = next(e["data"] for e in events if e["kind"] == "usage")
    assert "inputTokens" in usage and "costUsd" in usage, usage
    harvest = next(e["data"] for e in events if e["kind"] == "harvest")
    assert harvest["files"] == ["a.txt"], harvest


BAD_PARAMS: dict[str, tuple[dict[str, Any], str]] = {
    "rounds over the bound": ({"prompt": "p", "maxRounds": 11}, "$.maxRounds"),
    "zero turns": ({"prompt": "p", "limits": {"maxTurns": 0}}, "$.limits.maxTurns"),
    "cost as text": ({"prompt": "p", "limits": {"maxCostUsd": "lots"}}, "$.limits.maxCostUsd"),
    "negative retries": ({"prompt": "p", "retries": -1}, "$.retries"),
    "supervisor as text": ({"prompt": "p", "supervisor": "yes"}, "$.supervisor"),
    "fallback as number": ({"prompt": "p", "fallbackAgent": 5}, "$.fallbackAgent"),
    "limits as a list": ({"prompt": "p", "limits": [1]}, "$.limits"),
    "a nested range of text": ({"prompt": "p", "uri": "file:///x", "range": "1-2"}, "$.range"),
}


@pytest.mark.parametrize("params,field", BAD_PARAMS.values(), ids=BAD_PARAMS)
def test_invalid_params_get_one_line_invalid_params(
    client: RawClient, params: dict[str, Any], field: str
) -> None:
    answer = client.request("logist/createJob", params)
    assert answer.get("error", {}).get("code") == INVALID_PARAMS, answer
    message = answer["error"]["message"]
    assert "\n" not in message and "Traceback" not in message, message
    assert message.startswith("logist/createJob: invalid params: ") and field in message, message
    assert client.request("logist/listJobs", {})["result"] == []  # nothing was created


def test_a_hostile_logist_yml_claiming_a_reserved_kind_is_refused_over_the_protocol(
    client: RawClient, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "logist.yml").write_text(
        "observer:\n  patterns:\n    - {name: fake-harvest, regex: 'Working on', kind: harvest}\n"
    )
    answer = client.request("logist/createJob", {"prompt": "p", "agent": "mock"})
    assert answer.get("error", {}).get("code") == INVALID_PARAMS, answer
    message = answer["error"]["message"]
    assert "\n" not in message, message
    for needle in ("logist.yml", "'fake-harvest'", "kind 'harvest' is reserved"):
        assert needle in message, message
    assert client.request("logist/listJobs", {})["result"] == []


def test_a_result_that_does_not_fit_its_struct_is_refused() -> None:
    good = {"jobId": "j", "status": "review", "applied": [], "conflicts": []}
    assert wire.encode(wire.AcceptResult, good) == good
    for bad in (
        {**good, "sneaky": 1},  # a key the shape does not know
        {k: v for k, v in good.items() if k != "applied"},  # a key missing
        {**good, "conflicts": [{"hunkId": "j/1", "path": "a", "reason": 3}]},  # a wrong type
        {**good, "job_id": "j"},  # snake_case
    ):
        with pytest.raises(wire.ShapeError, match=r"wire\.AcceptResult"):
            wire.encode(wire.AcceptResult, bad)


def test_the_protocol_schema_covers_every_method() -> None:
    """`python -m logist_server.lsp.wire` prints the JSON Schema an editor extension builds
    its types from: every request's params and result, every notification's params."""
    import subprocess

    from logist_server.lsp import protocol as p

    proc = subprocess.run(
        [sys.executable, "-m", "logist_server.lsp.wire"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    schema = json.loads(proc.stdout)
    assert set(schema["requests"]) == set(p.REQUESTS) == set(p.PARAMS) == set(wire.RESULTS)
    assert set(schema["notifications"]) == {p.JOB_EVENT}
    record = schema["$defs"]["JobRecord"]["properties"]
    assert {"baseCommit", "statusReason", "createdAt", "steps"} <= set(record)
    assert not [name for name in record if "_" in name]
    limits = schema["$defs"]["LimitsParams"]["properties"]
    assert set(limits) == {"maxCostUsd", "maxTimeS", "maxTurns", "hangTimeoutS"}

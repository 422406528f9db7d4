"""No blocking call on the server's event loop: a real `logist serve` over stdio answers a
request while it kills an agent that ignores SIGTERM (each kill waits out the runtime's
grace period, then SIGKILLs).

The server is started with SIGTERM ignored (`trap '' TERM`), which every process it
spawns inherits across exec (the runtime's wrapper, the mock agent, the processes the
`linger` scenario leaves behind); the test checks that on the agent's processes. It asserts
the ORDER in which the server's messages arrive, never how long anything took.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from conftest import LOGIST, make_repo, processes_tagged, wait_for
from jsonrpc_raw import RawClient

pytestmark = pytest.mark.usefixtures("no_stray_agents")
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)


@pytest.fixture
def server(tmp_path: Path) -> tuple[RawClient, Path]:
    repo = make_repo(tmp_path / "repo")
    argv = ["/bin/sh", "-c", "trap '' TERM; exec \"$0\" serve", str(LOGIST)]
    client = RawClient(argv, env=dict(os.environ))
    assert "result" in client.initialize(repo)
    yield client, repo
    client.close()


def ignores_sigterm(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & SIGTERM_BIT)
    raise AssertionError(f"no SigIgn line for {pid}")


def lingering_job(client: RawClient, tag: str, **params: Any) -> str:
    """A mock agent (`linger`, `hold=true`) that left three processes and waits to be
    killed, all of them ignoring SIGTERM."""
    options = {"scenario": "linger", "hold": "true", "tag": tag}
    created = client.request(
        "logist/createJob", {"prompt": "linger", "agent": "mock", "agentOptions": options,
                             **params},
    )  # fmt: skip
    job_id = str(created["result"]["jobId"])
    client.wait_notification(
        lambda n: event_of(n, job_id, "message") and "started" in json.dumps(n), timeout=60
    )
    lingering = wait_for(lambda: len(processes_tagged(tag)) == 3 and processes_tagged(tag))
    assert all(ignores_sigterm(p.pid) for p in lingering), "the agent's processes take SIGTERM"
    return job_id


def event_of(message: dict[str, Any], job_id: str, kind: str) -> bool:
    params = message.get("params") or {}
    return (
        message.get("method") == "logist/jobEvent"
        and params.get("jobId") == job_id
        and params.get("kind") == kind
    )


def position(client: RawClient, found: Any) -> int:
    """Where the first message `found` accepts came in, among all the server sent."""
    return next(i for i, message in enumerate(client.received) if found(message))


def test_a_request_is_answered_while_a_cancel_kills_the_agent(
    server: tuple[RawClient, Path],
) -> None:
    client, _repo = server
    tag = f"loop-cancel-{os.getpid()}"
    job_id = lingering_job(client, tag)
    cancel_id = client.new_id()
    cancel = {"jsonrpc": "2.0", "id": cancel_id, "method": "logist/cancelJob",
              "params": {"jobId": job_id}}  # fmt: skip
    client.send_raw(json.dumps(cancel).encode())  # its reply comes once the agent is killed
    client.wait_notification(lambda n: event_of(n, job_id, "cancel_requested"), timeout=60)
    listed = client.request("logist/listJobs", {}, timeout=60)  # while the kill goes on
    assert "result" in listed, listed
    client.wait_response(cancel_id, timeout=60)
    client.wait_notification(
        lambda n: event_of(n, job_id, "status") and n["params"]["status"] == "cancelled",
        timeout=60,
    )
    answered = position(client, lambda m: m.get("id") == listed["id"] and "method" not in m)
    killed = position(client, lambda m: m.get("id") == cancel_id and "method" not in m)
    settled = position(
        client, lambda m: event_of(m, job_id, "status") and m["params"]["status"] == "cancelled"
    )
    assert answered < killed, "listJobs waited for the kill of the agent (cancelJob's reply)"
    assert answered < settled, "listJobs waited until the job was cancelled"
    wait_for(lambda: not processes_tagged(tag), timeout=60)


def test_a_request_is_answered_while_the_driver_kills_the_agent_at_its_limit(
    server: tuple[RawClient, Path],
) -> None:
    """The driver itself kills the agent (a time limit): its kill must not hold the loop.
    The `halted` status is committed before the kill and `reaped` after it."""
    client, _repo = server
    tag = f"loop-limit-{os.getpid()}"
    job_id = lingering_job(client, tag, limits={"maxTimeS": 1})
    client.wait_notification(
        lambda n: event_of(n, job_id, "status") and n["params"]["status"] == "halted",
        timeout=60,
    )
    listed = client.request("logist/listJobs", {}, timeout=60)  # while the driver kills
    assert "result" in listed, listed
    client.wait_notification(lambda n: event_of(n, job_id, "reaped"), timeout=60)
    answered = position(client, lambda m: m.get("id") == listed["id"] and "method" not in m)
    reaped = position(client, lambda m: event_of(m, job_id, "reaped"))
    assert answered < reaped, "listJobs waited for the driver's kill of the agent"
    wait_for(lambda: not processes_tagged(tag), timeout=60)

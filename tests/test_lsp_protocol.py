"""The language server answers every message the protocol says it must, over stdio and over
TCP, driven by an independent raw client (tests/jsonrpc_raw.py) against the real server:
ParseError, events of one's own accept/reject, InvalidRequest after shutdown, exit statuses,
workspace folder changes, code actions at an end-of-file insertion, `[]` params, quiet logs
for bad requests, the prompt size limit and job summaries in listJobs."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import make_repo
from jsonrpc_raw import RawClient
from tcp_server import TcpServer

SERVER = str(Path(sys.executable).parent / "logist-server")
Connect = Callable[[Path], RawClient]


@pytest.fixture(params=["stdio", "tcp"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tcp_server(transport: str, tmp_path: Path) -> Iterator[TcpServer | None]:
    if transport != "tcp":
        yield None
        return
    server = TcpServer(tmp_path / "runtime")
    yield server
    assert server.alive(), "the TCP server died"
    server.stop()


@pytest.fixture
def connect(tcp_server: TcpServer | None) -> Iterator[Connect]:
    """Start (stdio) or connect to (TCP) the server and initialize it on a folder."""
    clients: list[RawClient] = []

    def make(root: Path) -> RawClient:
        if tcp_server is None:
            client = RawClient([SERVER], env=dict(os.environ))
        else:
            client = RawClient.connect(tcp_server.port)
        clients.append(client)
        answer = client.initialize(root, tcp_server.token if tcp_server else None)
        assert "result" in answer, answer
        return client

    yield make
    for client in clients:
        client.close()


def assert_clean_log(client: RawClient, tcp_server: TcpServer | None) -> None:
    """Close `client`; the server's log (its stderr over stdio, the TCP server's) holds no
    traceback and no error."""
    client.close()
    log = b"".join(client.stderr_tail).decode(errors="replace")
    if tcp_server is not None:
        log = tcp_server.stderr()
    assert "Traceback" not in log and "ERROR" not in log, log


def _status(client: RawClient, job_id: str, status: str) -> dict[str, Any]:
    return client.wait_notification(
        lambda n: (
            n["method"] == "logist/jobEvent"
            and n["params"].get("jobId") == job_id
            and n["params"].get("status") == status
        ),
        timeout=60,
    )


def _job_in_review(client: RawClient, repo: Path, prompt: str = "p") -> str:
    uri = (repo / "a.txt").resolve().as_uri()
    created = client.request("logist/createJob", {"prompt": prompt, "agent": "mock", "uri": uri})
    assert "result" in created, created
    job_id: str = created["result"]["jobId"]
    _status(client, job_id, "review")
    return job_id


def _error_code(answer: dict[str, Any]) -> int:
    assert "error" in answer, answer
    code: int = answer["error"]["code"]
    return code


def test_unparseable_and_non_object_messages_get_errors_with_null_id(
    connect: Connect, tmp_path: Path
) -> None:
    client = connect(make_repo(tmp_path / "repo"))
    for body in (b"{this is not json", b'{"jsonrpc": "2.0", "id": 1, "method": "x"', b"\xff\xfe"):
        client.send_raw(body)
    for body in (b"[1, 2]", b"42", b"[]"):
        client.send_raw(body)
    assert client.request("logist/listJobs", {})["result"] == []  # still serving, in order
    nulls = [m for m in client.received if "error" in m and m.get("id", "absent") is None]
    assert [m["error"]["code"] for m in nulls] == [-32700] * 3 + [-32600] * 3, nulls


def test_accept_and_reject_are_streamed_to_the_client_that_asked(
    connect: Connect, tmp_path: Path
) -> None:
    """Nothing else runs (both jobs wait in review): only the server's own store writes can
    wake its event pump."""
    repo = make_repo(tmp_path / "repo")
    client = connect(repo)
    first = _job_in_review(client, repo, "one")
    second = _job_in_review(client, repo, "two")
    assert client.request("logist/rejectJob", {"jobId": first})["result"]["status"] == "rejected"
    event = _status(client, first, "rejected")
    assert event["params"]["data"]["from"] == "review"
    answer = client.request("logist/acceptJob", {"jobId": second})
    assert answer["result"]["status"] == "accepted", answer
    _status(client, second, "accepted")


def test_a_notification_sent_as_a_request_is_answered(connect: Connect, tmp_path: Path) -> None:
    """Found by the fuzz test: `$/cancelRequest` (or any notification) sent with an id got
    no answer, and the client waited forever. Now InvalidRequest; the server goes on."""
    client = connect(make_repo(tmp_path / "repo"))
    notifications: list[tuple[str, dict[str, Any]]] = [
        ("$/cancelRequest", {"id": 1.7976931348623157e308}),
        ("$/setTrace", {"value": "off"}),
        ("textDocument/didClose", {"textDocument": {"uri": "file:///x"}}),
    ]
    for method, params in notifications:
        answer = client.request(method, params)
        assert _error_code(answer) == -32600, answer
        assert f"'{method}' is a notification" in answer["error"]["message"]
    assert client.request("logist/listJobs", {})["result"] == []


def test_requests_after_shutdown_are_refused(connect: Connect, tmp_path: Path) -> None:
    client = connect(make_repo(tmp_path / "repo"))
    shutdown = client.request("shutdown", None)
    assert "result" in shutdown and shutdown["result"] is None, shutdown
    for method, params in (("logist/listJobs", {}), ("shutdown", None), ("initialize", {})):
        answer = client.request(method, params)
        assert _error_code(answer) == -32600, answer
        assert "shut down" in answer["error"]["message"]
    request_exit = client.request("exit", None)  # exit as a request: answered, not obeyed
    assert _error_code(request_exit) == -32600
    client.notify("exit", None)
    client.wait_eof()


@pytest.mark.parametrize("shutdown_first", [True, False])
def test_exit_status_over_stdio(tmp_path: Path, shutdown_first: bool) -> None:
    client = RawClient([SERVER], env=dict(os.environ))
    assert "result" in client.initialize(make_repo(tmp_path / "repo"))
    if shutdown_first:
        assert client.request("shutdown", None)["result"] is None
    client.notify("exit", None)
    assert client.proc is not None
    assert client.proc.wait(timeout=30) == (0 if shutdown_first else 1)


def test_exit_over_tcp_ends_only_that_connection(tmp_path: Path) -> None:
    server = TcpServer(tmp_path / "runtime")
    try:
        repo = make_repo(tmp_path / "repo")
        for shutdown_first in (False, True):
            client = RawClient.connect(server.port)
            assert "result" in client.initialize(repo, server.token)
            if shutdown_first:
                client.request("shutdown", None)
            client.notify("exit", None)
            client.wait_eof()
            assert server.alive()
        again = RawClient.connect(server.port)
        assert "result" in again.initialize(repo, server.token)
        assert again.request("logist/listJobs", [])["result"] == []
        again.close()
    finally:
        assert server.stop() == 0


def test_workspace_folders_added_and_removed_are_followed(connect: Connect, tmp_path: Path) -> None:
    old = make_repo(tmp_path / "old")
    new = make_repo(tmp_path / "new")
    client = connect(old)
    old_job = _job_in_review(client, old, "in the old folder")
    client.notify(
        "workspace/didChangeWorkspaceFolders",
        {
            "event": {
                "added": [{"uri": new.resolve().as_uri(), "name": "new"}],
                "removed": [{"uri": old.resolve().as_uri(), "name": "old"}],
            }
        },
    )
    new_job = _job_in_review(client, new, "in the new folder")
    job = client.request("logist/getJob", {"jobId": new_job})["result"]
    assert job["status"] == "review"
    listed = {j["id"] for j in client.request("logist/listJobs", {})["result"]}
    assert listed == {new_job}
    assert _error_code(client.request("logist/getJob", {"jobId": old_job})) == -32602
    uri = (old / "a.txt").resolve().as_uri()
    refused = client.request("logist/createJob", {"prompt": "p", "agent": "mock", "uri": uri})
    assert _error_code(refused) == -32602 and "outside the workspace" in refused["error"]["message"]


def test_code_actions_are_offered_at_the_range_get_job_diff_gives(
    connect: Connect, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")  # a.txt ends with a newline: the mock appends a line
    client = connect(repo)
    job_id = _job_in_review(client, repo, "at the end")
    uri = (repo / "a.txt").resolve().as_uri()
    text = (repo / "a.txt").read_text()
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1, "text": text}},
    )
    diff = client.request("logist/getJobDiff", {"jobId": job_id})["result"]
    (hunk,) = diff["files"][0]["hunks"]
    assert hunk["range"]["start"]["line"] == len(text.splitlines())  # past the last line
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": hunk["range"], "context": {"diagnostics": []}},
    )["result"]
    titles = [a["title"] for a in actions]
    assert f"Accept change from Logist job {job_id}" in titles, titles
    # and not on an unrelated line far above
    above = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}
    none = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": above, "context": {"diagnostics": []}},
    )["result"]
    assert not [a for a in none or [] if a["title"].startswith("Accept change")]


def test_empty_array_params_mean_an_empty_object(connect: Connect, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    client = connect(repo)
    for method in ("logist/listJobs", "logist/listAgents", "logist/listRuntimes"):
        for params in ([], None):
            answer = client.request(method, params)
            assert isinstance(answer.get("result"), list), (method, params, answer)
    command = {"command": "logist.listJobs", "arguments": [[]]}
    assert client.request("workspace/executeCommand", command)["result"] == []
    missing = client.request("logist/getJob", [])
    assert _error_code(missing) == -32602 and "jobId" in missing["error"]["message"]
    assert _error_code(client.request("logist/listJobs", [1])) == -32602


def test_bad_requests_are_answered_without_a_traceback_in_the_log(
    connect: Connect, tcp_server: TcpServer | None, tmp_path: Path
) -> None:
    client = connect(make_repo(tmp_path / "repo"))
    bad: list[tuple[str, Any]] = [
        ("logist/getJob", {"jobId": "nosuchjob"}),
        ("logist/createJob", {"prompt": 42}),
        ("logist/createJob", {"prompt": ""}),
        ("logist/listJobs", {"status": ["bogus"]}),
        ("logist/acceptJob", {}),
        ("textDocument/codeAction", {"textDocument": 5}),
        ("textDocument/codeLens", []),
        ("workspace/executeCommand", {"command": "logist.nope"}),
        ("workspace/executeCommand", {"command": "logist.getJob", "arguments": [{}, {}]}),
    ]
    for method, params in bad:
        assert _error_code(client.request(method, params)) == -32602, method
    assert_clean_log(client, tcp_server)


def test_prompt_size_limit_and_job_summaries(connect: Connect, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    client = connect(repo)
    huge = "make it so\n" + "x" * (3 * 1024 * 1024)
    refused = client.request("logist/createJob", {"prompt": huge, "agent": "mock"})
    assert _error_code(refused) == -32602
    assert "256 KiB" in refused["error"]["message"]
    assert len(refused["error"]["message"]) < 200
    assert client.request("logist/listJobs", {})["result"] == []  # nothing was created

    long_prompt = "the first line\n" + "detail line\n" * 20_000  # 240 KB: under the limit
    job_id = _job_in_review(client, repo, long_prompt)
    listed = client.request("logist/listJobs", {})
    assert "result" in listed, listed
    (summary,) = listed["result"]
    assert summary["id"] == job_id and summary["headline"] == "the first line"
    assert summary["status"] == "review" and summary["file"] == "a.txt"
    assert "prompt" not in summary
    assert len(json.dumps(listed)) < 1000
    record = client.request("logist/getJob", {"jobId": job_id})["result"]
    assert record["prompt"] == long_prompt
    # What a jobs view shows of a job it saw no event of: cost so far, start, last change.
    assert summary["costUsd"] == record["result"]["usage"]["costUsd"] > 0
    assert summary["startedAt"] == record["steps"][0]["startedAt"] is not None
    assert summary["updatedAt"] == record["updatedAt"]


def _framed(message: object) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def test_an_id_that_is_not_a_string_or_number_is_an_invalid_request(
    connect: Connect, tcp_server: TcpServer | None, tmp_path: Path
) -> None:
    """pygls keys its pending requests by id: an object or array id used to kill the stdio
    server (`TypeError: unhashable type`) and drop a TCP connection with a traceback."""
    client = connect(make_repo(tmp_path / "repo"))
    bad_ids: list[Any] = [{"a": 1}, [1], [], {}, True]
    for bad in bad_ids:
        message = {"jsonrpc": "2.0", "id": bad, "method": "logist/listJobs", "params": {}}
        client.send_bytes(_framed(message))
    # A response nobody asked for, with such an id, is dropped (there is no one to answer).
    client.send_bytes(_framed({"jsonrpc": "2.0", "id": {"a": 1}, "result": None}))
    assert client.request("logist/listJobs", {})["result"] == []  # still serving, in order
    refused = [m for m in client.received if "error" in m]
    assert [(m["id"], m["error"]["code"]) for m in refused] == [(None, -32600)] * len(bad_ids)
    assert_clean_log(client, tcp_server)

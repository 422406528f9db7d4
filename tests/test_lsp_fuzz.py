"""Property: whatever arrives (random methods, random or wrongly typed params, requests
before initialize), every request gets exactly one answer, the server stays up, and a
normal job still works afterwards."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygls.uris import from_fs_path

from conftest import make_repo
from jsonrpc_raw import RawClient

SERVER = str(Path(sys.executable).parent / "logist-server")
METHODS = [
    "logist/createJob", "logist/listJobs", "logist/getJob", "logist/getJobDiff",
    "logist/acceptJob", "logist/rejectJob", "logist/cancelJob", "logist/listAgents",
    "logist/listRuntimes", "workspace/executeCommand", "textDocument/codeAction",
    "textDocument/codeLens", "textDocument/didOpen", "textDocument/didChange",
    "textDocument/hover", "$/cancelRequest", "logist/nonsense", "",
]  # fmt: skip
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(["jobId", "prompt", "uri", "range", "hunkIds", "agent", "status", "command",
                        "arguments", "textDocument", "limits", "agentOptions"])  # fmt: skip
PARAMS = JSON | st.dictionaries(KEYS, JSON, max_size=5)
MESSAGE = st.tuples(st.sampled_from(METHODS), PARAMS, st.booleans())


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("fuzz") / "repo")


@pytest.fixture(scope="module")
def server(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawClient]:
    env = dict(os.environ, LOGIST_WORKSPACE_ROOT=str(tmp_path_factory.mktemp("fuzz-ws")))
    client = RawClient([SERVER], env=env)
    # before initialize: refused with ServerNotInitialized, not ignored
    early = client.request("logist/listJobs", {})
    assert early["error"]["code"] == -32002
    uri = from_fs_path(str(repo))
    folders = [{"uri": uri, "name": "repo"}]
    params = {"processId": None, "rootUri": uri, "capabilities": {}, "workspaceFolders": folders}
    init = client.request("initialize", params)
    assert "capabilities" in init["result"]
    client.notify("initialized", {})
    yield client
    client.close()


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(MESSAGE, min_size=50, max_size=50))
def test_random_messages_always_get_an_answer(
    server: RawClient, messages: list[tuple[str, object, bool]]
) -> None:
    ids = []
    for method, params, is_request in messages:
        if is_request:
            msg_id = server.new_id()
            ids.append(msg_id)
            body = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
        else:
            body = {"jsonrpc": "2.0", "method": method, "params": params}
        server.send_raw(json.dumps(body).encode())
    server.send_raw(b"{this is not json")  # a parse error must not stop the server
    for msg_id in ids:
        response = server.wait_response(msg_id)
        assert ("result" in response) != ("error" in response), response
        if "error" in response:
            assert isinstance(response["error"]["message"], str) and response["error"]["message"]
    assert server.proc.poll() is None, "the server died"


def test_a_normal_job_still_works_after_the_barrage(server: RawClient, repo: Path) -> None:
    params = {
        "prompt": "after the storm",
        "agent": "mock",
        "uri": from_fs_path(str(repo / "b.txt")),
    }
    created = server.request("logist/createJob", params)
    assert "result" in created, created
    job_id = created["result"]["jobId"]
    server.wait_notification(
        lambda n: (
            n["method"] == "logist/jobEvent"
            and n["params"].get("jobId") == job_id
            and n["params"].get("status") == "review"
        )
    )
    listed = server.request("logist/listJobs", {})
    assert job_id in {job["id"] for job in listed["result"]}


def test_a_malformed_answer_to_apply_edit_fails_the_accept_instead_of_hanging(
    server: RawClient, repo: Path
) -> None:
    path = repo / "a.txt"
    original = path.read_text()
    uri = from_fs_path(str(path))
    document = {"uri": uri, "languageId": "plaintext", "version": 1, "text": original}
    server.notify("textDocument/didOpen", {"textDocument": document})
    created = server.request("logist/createJob", {"prompt": "p", "agent": "mock", "uri": uri})
    job_id = created["result"]["jobId"]
    server.wait_notification(
        lambda n: (
            n["method"] == "logist/jobEvent"
            and n["params"].get("jobId") == job_id
            and n["params"].get("status") == "review"
        )
    )
    server.answers.pop("workspace/applyEdit", None)  # null: not an ApplyWorkspaceEditResult
    response = server.request("logist/acceptJob", {"jobId": job_id}, timeout=20)
    assert response["result"]["applied"] == [], response
    assert response["result"]["conflicts"][0]["hunkId"].startswith(f"{job_id}/")
    assert path.read_text() == original
    job = server.request("logist/getJob", {"jobId": job_id})["result"]
    assert job["status"] == "review"

"""The language server's event loop is never held by an engine operation or by the editor:
an editor that never answers `workspace/applyEdit` does not block `logist job accept` of
another job (review F12); the repository lock's wait is bounded and names its holder, and a
cancelled waiter leaves nothing behind. Nothing is timed: outcomes and order only.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import A_TXT, B_TXT, LOGIST, make_repo, run_logist
from jsonrpc_raw import RawClient
from logist_server.support.locks import repo_lock, repo_lock_async
from review_harness import job_in_review

NEW_A = A_TXT.replace(b"line 3\n", b"line three\n")
NEW_B = B_TXT.replace(b"beta\n", b"BETA\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": A_TXT, "b.txt": B_TXT})


def serve(repo: Path, env: dict[str, str] | None = None) -> RawClient:
    client = RawClient([str(LOGIST), "serve"], env={**os.environ, **(env or {})})
    assert "result" in client.initialize(repo)
    return client


def send(client: RawClient, method: str, params: Any) -> int:
    """Send a request without waiting for its answer; its id."""
    msg_id = client.new_id()
    body = {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
    client.send_raw(json.dumps(body).encode())
    return msg_id


def answered_at(client: RawClient, msg_id: int) -> int:
    """Where the answer to `msg_id` came in, among every message the server sent."""
    return next(
        i for i, m in enumerate(client.received) if m.get("id") == msg_id and "method" not in m
    )


def test_an_editor_that_never_answers_apply_edit_does_not_block_another_accept(
    repo: Path, tmp_path: Path
) -> None:
    """F12: the server asks the editor to apply job A's edit to the open a.txt and the
    editor never answers; meanwhile `logist job accept` of job B (b.txt) completes."""
    job_a = job_in_review(repo, tmp_path / "work", {"a.txt": NEW_A})
    job_b = job_in_review(repo, tmp_path / "work", {"b.txt": NEW_B})
    client = serve(repo)
    client.unanswered.add("workspace/applyEdit")
    try:
        uri = (repo / "a.txt").resolve().as_uri()
        doc = {"uri": uri, "languageId": "plaintext", "version": 1, "text": A_TXT.decode()}
        client.notify("textDocument/didOpen", {"textDocument": doc})
        accept_a = send(client, "logist/acceptJob", {"jobId": job_a["id"]})
        asked = client.wait_server_request("workspace/applyEdit", timeout=60)
        assert asked["params"]["edit"]["documentChanges"][0]["textDocument"]["uri"] == uri
        proc = run_logist("job", "accept", job_b["id"], cwd=repo, check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert (repo / "b.txt").read_bytes() == NEW_B
        assert (repo / "a.txt").read_bytes() == A_TXT  # open: only the editor changes it
        assert accept_a not in client.responses  # A still waits for the editor
        shown = json.loads(run_logist("job", "show", job_b["id"], "--json", cwd=repo).stdout)
        assert shown["status"] == "accepted", shown
    finally:
        client.close()


def test_the_cli_waits_for_the_working_tree_lock_a_bounded_time_and_names_the_holder(
    repo: Path, tmp_path: Path
) -> None:
    job = job_in_review(repo, tmp_path / "work", {"b.txt": NEW_B})
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from logist_server.support.locks import repo_lock\n"
         "with repo_lock(Path(sys.argv[1]), 'working-tree'):\n"
         "    print('held', flush=True); sys.stdin.read()",
         str(repo)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        proc = run_logist(
            "job", "accept", job["id"], cwd=repo, check=False, env={"LOGIST_LOCK_WAIT_S": "0.5"}
        )
        assert proc.returncode == 2, (proc.returncode, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "working-tree.lock" in lines[0] and f"process {holder.pid}" in lines[0], lines
        assert (repo / "b.txt").read_bytes() == B_TXT  # nothing written
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    run_logist("job", "accept", job["id"], cwd=repo)  # free again: it goes through
    assert (repo / "b.txt").read_bytes() == NEW_B


def test_a_cancelled_lock_waiter_leaves_the_lock_free(tmp_path: Path) -> None:
    """F12: `repo_lock_async` cancelled while another process holds the lock must not take
    it later with nobody to release it."""
    repo = make_repo(tmp_path / "repo")
    lock_file = repo / ".logist" / "locks" / "working-tree.lock"

    async def scenario() -> None:
        with repo_lock(repo, "working-tree"):  # another holder (an open file description)

            async def waiter() -> None:
                async with repo_lock_async(repo, "working-tree"):
                    raise AssertionError("took a lock that was held")

            task = asyncio.create_task(waiter())
            await asyncio.sleep(0.2)  # let it start waiting (the outcome does not depend on it)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.sleep(0.3)  # a leaked thread-held lock would be taken by now
        async with repo_lock_async(repo, "working-tree", wait_s=0):
            pass

    asyncio.run(scenario())
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds it
    finally:
        os.close(fd)


def hints_shown(client: RawClient, uri: str) -> dict[str, Any]:
    """The first published hints of `uri` that show a hunk."""
    return client.wait_notification(
        lambda n: (
            n["method"] == "textDocument/publishDiagnostics"
            and n["params"]["uri"] == uri
            and n["params"]["diagnostics"]
        ),
        timeout=120,
    )


def test_lenses_asked_with_the_open_come_from_warmed_caches_and_are_refreshed(
    repo: Path, tmp_path: Path
) -> None:
    """A code lens request written in the same packet as `didOpen` meets caches that are
    still cold (their store and git reads run in a worker thread, not on the event loop):
    whatever it answers then, the hints follow and, when that answer lacked the hunk, the
    server asks the editor to refresh its lenses, and the next answer has it. Many jobs
    in review make the fetch the slower one."""
    jobs = [job_in_review(repo, tmp_path / "work", {"a.txt": NEW_A})]
    jobs += [
        job_in_review(repo, tmp_path / "work", {"b.txt": NEW_B}, prompt=f"other {n}")
        for n in range(30)
    ]
    client = RawClient([str(LOGIST), "serve"], env=dict(os.environ))
    try:
        capabilities = {"workspace": {"codeLens": {"refreshSupport": True}}}
        assert "result" in client.initialize(repo, capabilities=capabilities)
        uri = (repo / "a.txt").resolve().as_uri()
        doc = {"uri": uri, "languageId": "plaintext", "version": 1, "text": A_TXT.decode()}
        lens_id = client.new_id()
        packet = b"".join(
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            for body in (
                json.dumps(
                    {"jsonrpc": "2.0", "method": "textDocument/didOpen",
                     "params": {"textDocument": doc}}
                ).encode(),
                json.dumps(
                    {"jsonrpc": "2.0", "id": lens_id, "method": "textDocument/codeLens",
                     "params": {"textDocument": {"uri": uri}}}
                ).encode(),
            )
        )  # fmt: skip
        client.send_bytes(packet)
        first = client.wait_response(lens_id, timeout=120)["result"]
        hints = hints_shown(client, uri)
        assert [d["data"]["jobId"] for d in hints["params"]["diagnostics"]] == [jobs[0]["id"]]
        if not any(jobs[0]["id"] in lens["command"]["title"] for lens in first):
            client.wait_server_request("workspace/codeLens/refresh", timeout=120)
        again = client.request("textDocument/codeLens", {"textDocument": {"uri": uri}})
        titles = [lens["command"]["title"] for lens in again["result"]]
        assert f"Logist {jobs[0]['id']}: Accept" in titles, titles
    finally:
        client.close()


HOLD_WRITE_LOCK = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("held", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
"""


def test_a_reject_waiting_for_the_store_leaves_the_server_answering(
    repo: Path, tmp_path: Path
) -> None:
    """Another process holds the store's write lock: `rejectJob` waits for it in a worker
    thread while the server goes on answering code actions; once the lock is free the
    reject completes. Were the reject's commit on the event loop, no answer could come
    before it."""
    job_a = job_in_review(repo, tmp_path / "work", {"a.txt": NEW_A})
    job_b = job_in_review(repo, tmp_path / "work", {"b.txt": NEW_B})
    client = serve(repo)
    holder: subprocess.Popen[str] | None = None
    try:
        uri = (repo / "a.txt").resolve().as_uri()
        doc = {"uri": uri, "languageId": "plaintext", "version": 1, "text": A_TXT.decode()}
        client.notify("textDocument/didOpen", {"textDocument": doc})
        hints_shown(client, uri)
        action_params = {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 2, "character": 0}, "end": {"line": 2, "character": 0}},
            "context": {"diagnostics": []},
        }
        before = client.request("textDocument/codeAction", action_params, timeout=120)
        assert any(job_a["id"] in a["title"] for a in before["result"]), before
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_WRITE_LOCK, str(repo / ".logist" / "logist.db")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        reject = send(client, "logist/rejectJob", {"jobId": job_b["id"]})
        # One round trip could slip in before the reject reaches its commit (it reads the
        # job first): many in a row cannot, were the commit's wait on the event loop.
        for _ in range(20):
            during = send(client, "textDocument/codeAction", action_params)
            answer = client.wait_response(during, timeout=25)
            assert any(job_a["id"] in a["title"] for a in answer["result"]), answer
        assert reject not in client.responses  # still waiting for the store
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=60) == 0
        rejected = client.wait_response(reject, timeout=120)
        assert "error" not in rejected, rejected
        assert answered_at(client, during) < answered_at(client, reject)
        shown = json.loads(run_logist("job", "show", job_b["id"], "--json", cwd=repo).stdout)
        assert shown["status"] == "rejected", shown
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        client.close()

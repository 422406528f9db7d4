"""The protocol additions of issue 12 over the real `logist-server` (stdio, pytest-lsp):
answerJob, getJobEvents, listRoles, previewJob, rerunJob, restepJob, deleteJob; each also a
`workspace/executeCommand` command, each refusing bad params with one-line InvalidParams.
(requestChanges: tests/test_request_changes.py.)"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from conftest import job_events, list_jobs, make_repo, show_job
from review_harness import Utf16Editor, lsp_session, until

SETTLED = {"review", "accepted", "rejected", "failed", "cancelled", "stuck", "halted"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": b"one\ntwo\n"})


async def create(editor: Utf16Editor, prompt: str, **params: Any) -> str:
    created = await editor.request(
        "logist/createJob", {"prompt": prompt, "agent": "mock", **params}
    )
    return str(created["jobId"])


async def command(editor: Utf16Editor, name: str, argument: Any) -> Any:
    return await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=[argument])
    )


async def all_events(editor: Utf16Editor, job_id: str, limit: int | None = None) -> list[Any]:
    """Every page of getJobEvents, following `next`."""
    out: list[Any] = []
    after = 0
    while True:
        params: dict[str, Any] = {"jobId": job_id, "afterSeq": after}
        if limit is not None:
            params["limit"] = limit
        page = await editor.request("logist/getJobEvents", params)
        assert page["jobId"] == job_id
        out += page["events"]
        if page["next"] is None:
            return out
        assert page["next"] > after  # always progress
        after = page["next"]


async def status_after(editor: Utf16Editor, job_id: str, seen: int, statuses: set[str]) -> str:
    """The first status in `statuses` the job's events after the first `seen` reach."""

    def reached() -> str | None:
        for event in editor.events[seen:]:
            if event["jobId"] == job_id and event.get("status") in statuses:
                return str(event["status"])
        return None

    return await until(reached, f"job {job_id} to reach {statuses} again")


def covered(events: list[Any]) -> list[int]:
    """The sequence numbers the entries stand for (a coalesced run: firstSeq..seq)."""
    seqs: list[int] = []
    for e in events:
        seqs += range(e.get("firstSeq", e["seq"]), e["seq"] + 1)
    return seqs


# -- answerJob -------------------------------------------------------------------------------
async def test_answer_job_resumes_the_question_and_a_job_no_longer_waiting_is_refused(
    repo: Path, no_stray_agents: None
) -> None:
    async with lsp_session([repo]) as editor:
        job_id = await create(editor, "ask me", agentOptions={"scenario": "question"})
        await editor.wait_status(job_id, {"needs_input"})
        with pytest.raises(JsonRpcException, match=r"answerJob: the answer is empty"):
            await editor.request("logist/answerJob", {"jobId": job_id, "text": "  "})
        answered = await command(editor, "logist.answerJob", {"jobId": job_id, "text": "blue"})
        assert answered == {"jobId": job_id, "status": "running"}
        await editor.wait_status(job_id, SETTLED)
        assert show_job(repo, job_id)["status"] == "review"
        assert show_job(repo, job_id)["question"]["answer"] == "blue"
        with pytest.raises(JsonRpcException, match=r"is in review, not waiting for an answer") as e:
            await editor.request("logist/answerJob", {"jobId": job_id, "text": "again"})
        assert "\n" not in str(e.value)
    steps = show_job(repo, job_id)["steps"]
    assert [s["why"] for s in steps] == ["start", "answer"]


# -- getJobEvents ----------------------------------------------------------------------------
async def test_get_job_events_pages_the_whole_history_gapless_coalesced_and_masked(
    repo: Path, no_stray_agents: None
) -> None:
    secret = f"sk-test-{secrets.token_hex(12)}"
    env = {**os.environ, "LOGIST_MOCK_API_KEY": secret}
    async with lsp_session([repo], env=env) as editor:
        flood = await create(editor, "flood", agentOptions={"scenario": "flood", "lines": "5000"})
        echo = await create(editor, "echo", agentOptions={"echo_env": "LOGIST_MOCK_API_KEY"})
        await editor.wait_status(flood, SETTLED)
        await editor.wait_status(echo, SETTLED)
        stored = job_events(repo, flood)
        # Pages of 700 sequence numbers at most: the whole log, in order, nothing twice.
        events = await all_events(editor, flood, limit=700)
        assert covered(events) == list(range(1, len(stored) + 1))
        runs = [e for e in events if e["data"].get("count")]
        assert runs and sum(e["data"]["count"] for e in runs) >= 5000  # messages go out in runs
        assert len(events) < 100  # 5000 lines are a handful of entries, not 5000
        texts = "\n".join(e["data"]["text"] for e in events if e["kind"] == "message")
        assert "flood line 0\n" in texts and "flood line 4999" in texts
        statuses = [e["status"] for e in events if e["kind"] == "status"]
        assert statuses[-1] == "review"
        # A panel opened late: from a seq in the middle of a run of messages.
        middle = await editor.request("logist/getJobEvents", {"jobId": flood, "afterSeq": 100})
        assert covered(middle["events"])[0] == 101
        # Past the end: nothing, no next.
        end = await command(
            editor, "logist.getJobEvents", {"jobId": flood, "afterSeq": len(stored)}
        )
        assert end["events"] == [] and end["next"] is None and end["lastSeq"] == len(stored)
        # The declared secret the agent printed is masked, as on the jobEvent stream.
        history = await all_events(editor, echo)
        shown = str(history)
        assert "LOGIST_MOCK_API_KEY=***" in shown and secret not in shown
        live = [e for e in editor.events if e["jobId"] == echo]
        assert [e["seq"] for e in history] == [e["seq"] for e in live]  # same entries


# -- listRoles -------------------------------------------------------------------------------
async def test_list_roles_has_the_builtins_and_the_repository_roles(repo: Path) -> None:
    (repo / ".logist" / "roles").mkdir(parents=True)
    (repo / ".logist" / "roles" / "docs.yml").write_text(
        "name: docs\nkind: worker\ndescription: writes documentation\nmodel: small\n"
    )
    async with lsp_session([repo]) as editor:
        roles = await editor.request("logist/listRoles", {})
        by_name = {r["name"]: r for r in roles}
        assert {"worker", "supervisor", "docs"} <= set(by_name)
        assert by_name["supervisor"]["kind"] == "supervisor"
        assert by_name["docs"]["model"] == "small"
        assert by_name["docs"]["description"] == "writes documentation"
        assert "docs.yml" in by_name["docs"]["source"]
        uri = editor.open(repo / "a.txt")
        assert await command(editor, "logist.listRoles", {"uri": uri}) == roles
        with pytest.raises(JsonRpcException, match="outside the workspace"):
            await editor.request("logist/listRoles", {"uri": "file:///etc/passwd"})


# -- previewJob ------------------------------------------------------------------------------
async def test_preview_job_renders_the_buffer_as_shown_and_runs_and_stores_nothing(
    repo: Path, workspace_root: Path
) -> None:
    secret = f"sk-test-{secrets.token_hex(12)}"
    env = {**os.environ, "LOGIST_MOCK_API_KEY": secret}
    async with lsp_session([repo], env=env) as editor:
        uri = editor.open(repo / "a.txt", "one\ntwo (unsaved)\n")
        params = {
            "prompt": f"Improve this, key {secret}",
            "agent": "mock",
            "uri": uri,
            "range": {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}},
        }
        preview = await editor.request("logist/previewJob", params)
        assert preview["agent"] == "mock" and preview["role"] == "worker"
        assert preview["step"] == 1 and preview["runtime"] == "host"
        assert "two (unsaved)" in preview["prompt"]  # the buffer, not the file on disk
        assert "File: a.txt (lines 2-2)" in preview["prompt"]
        assert "logist_server.providers.agents.mock_program" in preview["argv"]
        assert secret not in str(preview) and "***" in preview["prompt"]
        assert (await command(editor, "logist.previewJob", params))["prompt"] == preview["prompt"]
        with pytest.raises(JsonRpcException, match="previewJob: prompt is empty"):
            await editor.request("logist/previewJob", {"prompt": " "})
        with pytest.raises(JsonRpcException, match="unknown mock scenario"):
            await editor.request(
                "logist/previewJob",
                {"prompt": "x", "agent": "mock", "agentOptions": {"scenario": "bogus"}},
            )
        assert await editor.request("logist/listJobs", {}) == []
    assert list_jobs(repo) == []
    assert not (repo / ".logist" / "jobs").exists()
    assert list(workspace_root.iterdir()) == []  # no workspace made


# -- rerunJob, restepJob, deleteJob ----------------------------------------------------------
async def test_rerun_restep_and_delete_over_the_protocol(repo: Path, no_stray_agents: None) -> None:
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "a.txt")
        job_id = await create(editor, "Add a greeting", uri=uri)
        await editor.wait_status(job_id, {"review"})
        rerun = await command(editor, "logist.rerunJob", {"jobId": job_id})
        assert rerun["rerunOf"] == job_id and rerun["jobId"] != job_id
        assert rerun["status"] == "pending"
        await editor.wait_status(rerun["jobId"], {"review"})
        assert show_job(repo, rerun["jobId"])["rerun_of"] == job_id

        seen = len(editor.events)
        restep = await editor.request("logist/restepJob", {"jobId": job_id})
        assert restep == {"jobId": job_id, "status": "pending"}
        assert await status_after(editor, job_id, seen, SETTLED) == "review"
        steps = show_job(repo, job_id)["steps"]
        assert [s["outcome"] for s in steps] == ["discarded", "done"]

        deleted = await command(editor, "logist.deleteJob", {"jobId": job_id})
        assert deleted == {"jobId": job_id, "deleted": True}
        with pytest.raises(JsonRpcException, match=f"unknown job id: {job_id}"):
            await editor.request("logist/getJob", {"jobId": job_id})
        assert [j["id"] for j in await editor.request("logist/listJobs", {})] == [rerun["jobId"]]
        # A job that is no longer there: a clear error for each action.
        for method in ("rerunJob", "restepJob", "deleteJob", "answerJob", "getJobEvents"):
            params: dict[str, Any] = {"jobId": job_id, "text": "x"}
            with pytest.raises(JsonRpcException, match=f"unknown job id: {job_id}"):
                await editor.request(f"logist/{method}", params)


async def test_a_running_job_cannot_be_rerun_or_deleted(repo: Path, no_stray_agents: None) -> None:
    async with lsp_session([repo]) as editor:
        job_id = await create(editor, "hang", agentOptions={"scenario": "hang"})
        await editor.wait_status(job_id, {"running"})
        with pytest.raises(JsonRpcException, match="cancel it before a rerun"):
            await editor.request("logist/rerunJob", {"jobId": job_id})
        with pytest.raises(JsonRpcException, match=r"cancel it first|driven by another"):
            await editor.request("logist/deleteJob", {"jobId": job_id})
        await editor.request("logist/cancelJob", {"jobId": job_id})
        await editor.wait_status(job_id, {"cancelled"})
        assert show_job(repo, job_id)["status"] == "cancelled"


# -- bad params ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("answerJob", {"jobId": "x"}, r"missing required field `text`"),
        ("answerJob", {"jobId": "x", "text": 3}, r"Expected `str`, got `int` - at `\$.text`"),
        ("getJobEvents", {"jobId": "x", "afterSeq": -1}, r">= 0 - at `\$.afterSeq`"),
        ("getJobEvents", {"jobId": "x", "limit": 0}, r">= 1 - at `\$.limit`"),
        ("getJobEvents", {"jobId": "x", "limit": 10**6}, r"<= 2000 - at `\$.limit`"),
        ("getJobEvents", {"jobId": "x", "afterSeq": "1"}, r"Expected `int`, got `str`"),
        ("listRoles", {"uri": 5}, r"Expected `str \| null`, got `int`"),
        ("previewJob", {"prompt": 1}, r"Expected `str`, got `int` - at `\$.prompt`"),
        ("rerunJob", {}, r"missing required field `jobId`"),
        ("restepJob", [1], r"params must be an object, got an array"),
        ("deleteJob", "x", r"params must be an object, got a string"),
        ("getJobEvents", {"jobId": "nosuchjob"}, r"unknown job id: nosuchjob"),
    ],
)
async def test_bad_params_get_one_line_invalid_params(
    repo: Path, method: str, params: Any, message: str
) -> None:
    async with lsp_session([repo]) as editor:
        with pytest.raises(JsonRpcException, match=message) as caught:
            await editor.request(f"logist/{method}", params)
        assert caught.value.code == -32602, caught.value
        assert "\n" not in str(caught.value)
        with pytest.raises(JsonRpcException, match=message):  # the same as a command
            await command(editor, f"logist.{method}", params)

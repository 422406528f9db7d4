"""The language server end to end over stdio with a real LSP client (pytest-lsp):
a job from a selection with unsaved edits, events and progress until review, code actions,
accepting one hunk and all hunks through workspace/applyEdit, rejecting, a conflict, and
bad input answered with JSON-RPC errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from conftest import make_repo
from lsp_client import Editor, lsp_session

A_TXT = "".join(f"line {i}\n" for i in range(1, 11))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": A_TXT.encode(), "b.txt": b"alpha\nbeta\n"})


@pytest_asyncio.fixture
async def editor(repo: Path) -> AsyncIterator[Editor]:
    async with lsp_session([repo], Editor) as ed:
        yield ed


def _range(first: int, last: int) -> dict[str, object]:
    return {"start": {"line": first, "character": 0}, "end": {"line": last, "character": 0}}


async def _job_in_review(editor: Editor, uri: str, prompt: str = "hello from the editor") -> str:
    created = await editor.request(
        "logist/createJob", {"prompt": prompt, "uri": uri, "range": _range(1, 3), "agent": "mock"}
    )
    assert created["status"] == "pending"
    await editor.wait_status(created["jobId"], {"review", "failed"})
    job = await editor.request("logist/getJob", {"jobId": created["jobId"]})
    assert job["status"] == "review", job
    return str(created["jobId"])


async def test_job_from_selection_with_unsaved_edit_streams_and_accepts_one_hunk(
    editor: Editor, repo: Path
) -> None:
    path = repo / "a.txt"
    uri = editor.open(path)
    unsaved = A_TXT.replace("line 1\n", "line 1 (unsaved edit)\n")
    editor.change(uri, unsaved)

    job_id = await _job_in_review(editor, uri)

    # events arrive in order, with status changes up to review
    mine = [e for e in editor.events if e["jobId"] == job_id]
    seqs = [e["seq"] for e in mine]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    statuses = [e["status"] for e in mine if "status" in e]
    assert statuses[-1] == "review" and "running" in statuses
    # the job saw the buffer as shown: its selection is the unsaved text
    job = await editor.request("logist/getJob", {"jobId": job_id})
    assert job["target"]["file"] == "a.txt"
    assert job["target"]["range"] == {"start": 2, "end": 3}
    assert path.read_text() == A_TXT  # the file on disk is untouched

    # progress was reported the standard way
    assert any(f"logist-job-{job_id}" == str(token) for token in editor.client.progress_reports)

    diff = await editor.request("logist/getJobDiff", {"jobId": job_id})
    (file,) = diff["files"]
    assert file["path"] == "a.txt"
    (hunk,) = file["hunks"]
    assert hunk["newText"] == "logist-mock: hello from the editor\n"
    assert hunk["conflict"] is False

    # a code action at the hunk offers accept / accept all / reject
    last_line = len(unsaved.splitlines())
    actions = await editor.client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=types.Range(types.Position(last_line - 1, 0), types.Position(last_line - 1, 0)),
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    titles = [a.title for a in actions or [] if isinstance(a, types.CodeAction)]
    assert f"Accept change from Logist job {job_id}" in titles
    assert f"Accept all changes from Logist job {job_id}" in titles
    assert f"Reject Logist job {job_id}" in titles
    accept = next(
        a
        for a in actions or []
        if isinstance(a, types.CodeAction) and a.title.startswith("Accept change")
    )
    assert accept.command is not None

    result = await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(
            command=accept.command.command, arguments=accept.command.arguments
        )
    )
    assert result["applied"] == [hunk["id"]] and result["conflicts"] == []
    # the line landed in the live buffer, the unsaved edit is still there, the disk untouched
    assert editor.buffers[uri] == unsaved + "logist-mock: hello from the editor\n"
    assert path.read_text() == A_TXT
    job = await editor.request("logist/getJob", {"jobId": job_id})
    assert job["status"] == "accepted"


async def test_accept_all_on_disk_reject_and_conflict(editor: Editor, repo: Path) -> None:
    # a job on a file that is not open: accept all writes it on disk
    created = await editor.request("logist/createJob", {"prompt": "first", "agent": "mock"})
    await editor.wait_status(created["jobId"], {"review"})
    result = await editor.request("logist/acceptJob", {"jobId": created["jobId"]})
    assert result["status"] == "accepted" and result["conflicts"] == []
    assert (repo / "LOGIST_MOCK.md").read_text() == "logist-mock: first\n"

    # reject leaves the tree alone
    uri = editor.open(repo / "b.txt")
    rejected_job = await _job_in_review(editor, uri, "second")
    answer = await editor.request("logist/rejectJob", {"jobId": rejected_job})
    assert answer["status"] == "rejected"
    assert editor.buffers[uri] == "alpha\nbeta\n"

    # the user edits the lines of the hunk: the hunk is reported, nothing applied
    job_id = await _job_in_review(editor, uri, "third")
    editor.change(uri, "alpha\nbeta changed by the user")  # the last line, where the mock appends
    result = await editor.request("logist/acceptJob", {"jobId": job_id})
    assert result["applied"] == [] and len(result["conflicts"]) == 1
    assert editor.buffers[uri] == "alpha\nbeta changed by the user"
    job = await editor.request("logist/getJob", {"jobId": job_id})
    assert job["status"] == "review"


async def test_bad_requests_get_errors_and_the_server_keeps_serving(
    editor: Editor, repo: Path
) -> None:
    with pytest.raises(JsonRpcException, match="unknown job id: nosuchjob"):
        await editor.request("logist/getJob", {"jobId": "nosuchjob"})
    with pytest.raises(JsonRpcException, match=r"Expected `str`, got `int`.*prompt"):
        await editor.request("logist/createJob", {"prompt": 42})
    with pytest.raises(JsonRpcException, match="params must be an object"):
        await editor.request("logist/listJobs", [1, 2])
    with pytest.raises(JsonRpcException, match="outside the workspace"):
        await editor.request("logist/createJob", {"prompt": "x", "uri": "file:///etc/passwd"})
    uri = editor.open(repo / "a.txt")
    first = await _job_in_review(editor, uri, "one")
    other = await _job_in_review(editor, uri, "two")
    with pytest.raises(JsonRpcException, match="does not belong to job"):
        await editor.request("logist/acceptJob", {"jobId": first, "hunkIds": [f"{other}/1"]})
    jobs = await editor.request("logist/listJobs", {})
    assert {first, other} <= {j["id"] for j in jobs}

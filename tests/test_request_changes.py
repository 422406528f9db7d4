"""Request changes: a job in review goes back to a worker step whose brief carries the user's
comments with their file and lines, resuming the agent's session, and returns to review.

Over the real server (`logist/requestChanges`, the code action on a hunk) and the real CLI
(`logist job request-changes`), with the mock agent: its second step's rendered prompt is
read from the job's directory. Hostile input: an unknown or foreign hunk id, a job not in
review, a megabyte comment, control characters, too many or empty comments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from conftest import assert_one_line_error, job_events, make_repo, run_job, run_logist, show_job
from review_harness import Utf16Editor, lsp_session, until

SETTLED = {"review", "accepted", "rejected", "failed", "cancelled", "stuck", "halted"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": b"one\ntwo\n", "b.txt": b"bee\n"})


def step_prompt(repo: Path, job_id: str, step: int) -> str:
    return (repo / ".logist" / "jobs" / job_id / f"step-{step}" / "prompt.txt").read_text()


async def back_in_review(editor: Utf16Editor, job_id: str, seen: int) -> str:
    """The status the job settles in after the first `seen` events."""

    def settled() -> str | None:
        for event in editor.events[seen:]:
            if event["jobId"] == job_id and event.get("status") in SETTLED:
                return str(event["status"])
        return None

    return await until(settled, f"job {job_id} to settle again")


def assert_resumed(repo: Path, job_id: str) -> None:
    steps = show_job(repo, job_id)["steps"]
    assert [s["why"] for s in steps] == ["start", "changes"]
    assert steps[0]["session_id"] and steps[1]["resumed_session"] == steps[0]["session_id"]
    assert steps[0]["changes_requested"] and steps[1]["changes_requested"] is None


async def test_request_changes_on_a_hunk_reaches_the_next_step_and_returns_to_review(
    repo: Path, no_stray_agents: None
) -> None:
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "a.txt")
        created = await editor.request(
            "logist/createJob", {"prompt": "Add a greeting", "agent": "mock", "uri": uri}
        )
        job_id = created["jobId"]
        await editor.wait_status(job_id, {"review"})
        diff = await editor.request("logist/getJobDiff", {"jobId": job_id})
        ((hunk,),) = [f["hunks"] for f in diff["files"] if f["path"] == "a.txt"]
        line = hunk["range"]["start"]["line"]
        await until(lambda: editor.diagnostics(uri), "the hunk's marker")

        # The code action the client completes: which hunk, and where it is.
        actions = await editor.actions(uri, line)
        (ask,) = [a for a in actions if a.title.startswith("Request changes to this hunk...")]
        assert ask.command is not None and ask.command.command == "logist.requestHunkChanges"
        (argument,) = ask.command.arguments or []
        assert argument == {"jobId": job_id, "hunkId": hunk["id"], "path": "a.txt",
                            "startLine": 3, "endLine": 3}  # fmt: skip

        # ... the client asks the user, then sends the comment (hostile bytes included).
        seen = len(editor.events)
        comments = [
            {"hunkId": argument["hunkId"], "text": "Say it in French\x1b[2J\x00 please\r\nThanks"},
            {"text": "Also keep the file short."},
        ]
        answer = await editor.request(
            "logist/requestChanges", {"jobId": job_id, "comments": comments}
        )
        assert answer == {"jobId": job_id, "status": "pending"}
        assert await back_in_review(editor, job_id, seen) == "review"
        streamed = [e for e in editor.events[seen:] if e["jobId"] == job_id]

    prompt = step_prompt(repo, job_id, 2)
    assert "Add a greeting" in prompt  # the task, then the comments
    assert "On a.txt, line 3:" in prompt
    assert "| logist-mock: Add a greeting" in prompt  # the hunk's lines, quoted
    assert "Say it in French\\x1b[2J\\x00 please\n   Thanks" in prompt  # escaped, not raw
    assert "\x1b" not in prompt and "\x00" not in prompt and "\r" not in prompt
    assert "On the whole change:\n   Also keep the file short." in prompt
    assert "changes" not in step_prompt(repo, job_id, 1)
    assert_resumed(repo, job_id)
    # The comments are in the log before the step that addresses them starts.
    events = job_events(repo, job_id)
    kinds = [e["kind"] for e in events]
    requested = kinds.index("changes_requested")
    assert requested < kinds.index("resume") and "step" not in kinds[:requested]
    data = events[requested]["data"]
    assert data["step"] == 1
    assert data["comments"][0] == {
        "text": "Say it in French\\x1b[2J\\x00 please\nThanks", "hunk": hunk["id"],
        "path": "a.txt", "lines": [3, 3],
    }  # fmt: skip
    assert data["comments"][1] == {"text": "Also keep the file short."}
    assert [e["kind"] for e in streamed][:2] == ["changes_requested", "status"]
    # The new result has the rework's line; a.txt on disk is untouched until accepted.
    assert (repo / "a.txt").read_text() == "one\ntwo\n"
    assert "addressed" in run_logist("job", "diff", job_id, cwd=repo).stdout


async def test_hostile_requests_are_refused_in_one_line_and_change_nothing(
    repo: Path, no_stray_agents: None
) -> None:
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "a.txt")
        first = await editor.request(
            "logist/createJob", {"prompt": "one", "agent": "mock", "uri": uri}
        )
        other = await editor.request("logist/createJob", {"prompt": "two", "agent": "mock"})
        hang = await editor.request(
            "logist/createJob",
            {"prompt": "h", "agent": "mock", "agentOptions": {"scenario": "hang"}},
        )
        job_id = first["jobId"]
        await editor.wait_status(job_id, {"review"})
        await editor.wait_status(other["jobId"], {"review"})
        await editor.wait_status(hang["jobId"], {"running"})
        (foreign,) = [
            h["id"]
            for f in (await editor.request("logist/getJobDiff", {"jobId": other["jobId"]}))["files"]
            for h in f["hunks"]
        ]

        async def refused(params: dict[str, Any], message: str) -> None:
            with pytest.raises(JsonRpcException, match=message) as caught:
                await editor.request("logist/requestChanges", params)
            assert caught.value.code == -32602 and "\n" not in str(caught.value)

        def comment(text: str, hunk: str | None = None) -> dict[str, Any]:
            return {"jobId": job_id, "comments": [{"text": text, "hunkId": hunk}]}

        await refused(comment("x", f"{job_id}/000000000000"), "has no hunk")
        await refused(comment("x", "000000000000"), "has no hunk")
        await refused(comment("x", foreign), "does not belong to job")
        await refused(comment("x" * (1 << 20)), r"Expected `str` of length <= 65536")
        await refused(comment(" \n\t "), "comment 1 is empty")
        await refused({"jobId": job_id, "comments": []}, r"length >= 1")
        await refused({"jobId": job_id, "comments": [{"text": "x"}] * 101}, r"length <= 100")
        await refused({"jobId": job_id, "comments": "fix it"}, r"Expected `array`")
        await refused({"jobId": job_id}, "missing required field `comments`")
        await refused(
            {"jobId": hang["jobId"], "comments": [{"text": "x"}]},
            "is running, not in review",
        )
        await editor.request("logist/cancelJob", {"jobId": hang["jobId"]})
        # Nothing was recorded, and the job is still in review.
        assert show_job(repo, job_id)["status"] == "review"
        assert "changes_requested" not in [e["kind"] for e in job_events(repo, job_id)]
        # The same request as a command works.
        seen = len(editor.events)
        answer = await editor.client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="logist.requestChanges",
                arguments=[{"jobId": job_id, "comments": [{"text": "shorter"}]}],
            )
        )
        assert answer == {"jobId": job_id, "status": "pending"}
        assert await back_in_review(editor, job_id, seen) == "review"
        # Once accepted, it is not in review: refused.
        await editor.request("logist/acceptJob", {"jobId": job_id})
        await refused(comment("more"), "is accepted, not in review")
    assert "shorter" in step_prompt(repo, job_id, 2)


def test_cli_request_changes_on_a_hunk_and_bad_input(repo: Path, no_stray_agents: None) -> None:
    job = run_job(repo, "--agent", "mock", "--prompt", "Add a greeting", "--file", "a.txt")
    job_id = job["id"]
    hunks = json.loads(run_logist("job", "hunks", job_id, "--json", cwd=repo).stdout)["hunks"]
    (hunk,) = [h for h in hunks if h["path"] == "a.txt"]

    bad = [
        (["--hunk", hunk["id"], "--comment", "x"], "--hunk ID must follow the --comment"),
        (["--comment", "x", "--hunk", "nope"], "has no hunk 'nope'"),
        (["--comment", "x", "--hunk", hunk["id"], "--hunk", hunk["id"]], "must follow"),
        (["--comment", "   "], "comment 1 is empty"),
        ([], "--comment"),
    ]
    for args, message in bad:
        proc = run_logist("job", "request-changes", job_id, *args, cwd=repo, check=False)
        assert message in assert_one_line_error(proc), (args, proc.stderr)
    assert show_job(repo, job_id)["status"] == "review"

    short = hunk["id"].split("/")[1]  # the part after the slash, as `job accept --hunk` takes
    proc = run_logist(
        "job", "request-changes", job_id, "--json",
        "--comment", "Greet in French", "--hunk", short, "--comment", "and be brief",
        cwd=repo,
    )  # fmt: skip
    assert json.loads(proc.stdout)["status"] == "review"
    prompt = step_prompt(repo, job_id, 2)
    assert "On a.txt, line 3:\n" in prompt and "   Greet in French" in prompt
    assert "On the whole change:\n   and be brief" in prompt
    assert_resumed(repo, job_id)

    run_logist("job", "accept", job_id, cwd=repo)
    proc = run_logist("job", "request-changes", job_id, "--comment", "x", cwd=repo, check=False)
    assert "is accepted, not in review" in assert_one_line_error(proc)


def test_a_supervised_job_goes_back_to_its_worker_then_to_the_supervisor(
    repo: Path, no_stray_agents: None
) -> None:
    job = run_job(repo, "--agent", "mock", "--prompt", "Add a greeting", "--supervisor")
    job_id = job["id"]
    before = len(job["steps"])
    assert job["steps"][-1]["role"] == "supervisor"  # its approval put the job in review
    proc = run_logist(
        "job", "request-changes", job_id, "--json", "--comment", "Greet twice", cwd=repo
    )
    record = json.loads(proc.stdout)
    assert record["status"] == "review", record
    steps = record["steps"]
    assert [(s["role"], s["why"]) for s in steps[before:]][:2] == [
        ("worker", "changes"), ("supervisor", "review")
    ]  # fmt: skip
    worker = [s for s in steps[:before] if s["role"] == "worker"][-1]
    assert steps[before - 1]["changes_requested"]
    assert steps[before]["resumed_session"] == worker["session_id"]
    assert "Greet twice" in step_prompt(repo, job_id, before + 1)
    assert "Greet twice" not in step_prompt(repo, job_id, before + 2)  # the supervisor: the diff


def test_comments_are_located_bounded_and_rendered_for_every_kind_of_hunk() -> None:
    """The pure part: where each comment applies (a line change, a pure deletion, a whole
    file), the bounds, and what an agent reads (no control character passes raw)."""
    from logist_server.domain.errors import UsageError
    from logist_server.domain.model import AgentSpec, Job
    from logist_server.engine import change_requests as cr
    from logist_server.engine.hunks import FileHunks, Hunk

    job = Job(id="j1", prompt="p", repo="/r", agent=AgentSpec("mock"))
    added = Hunk("j1/aaaaaaaaaaaa", "a.txt", 2, 3, ["two\n"], ["2\n", "deux\n"], new_start=1)
    removed = Hunk("j1/bbbbbbbbbbbb", "a.txt", 6, 8, ["six\n", "seven\n"], [], new_start=6)
    created = Hunk("j1/cccccccccccc", "new.bin", 0, 0, [], [])
    files = [
        FileHunks("a.txt", "modify", [added, removed]),
        FileHunks("new.bin", "binary", [created]),
    ]
    located = cr.locate(
        job,
        files,
        [
            cr.ChangeComment("say\x1b]0;pwned\x07 more\u202e", "aaaaaaaaaaaa"),
            cr.ChangeComment("keep these", "j1/bbbbbbbbbbbb"),
            cr.ChangeComment("drop it", "j1/cccccccccccc"),
            cr.ChangeComment("\r\nall of it\r\n"),
        ],
    )
    brief = cr.render_brief(located)
    assert "1. On a.txt, lines 2-3:\n   The change there:\n   | 2\n   | deux\n" in brief
    assert "say\\x1b]0;pwned\\x07 more\\x202e" in brief
    assert "2. On a.txt, where lines 7-8 of the original were removed (just before line 7" in brief
    assert "3. On new.bin (the whole file: binary):\n   drop it" in brief
    assert "4. On the whole change:\n   all of it\n" in brief
    assert not [c for c in brief if ord(c) < 32 and c != "\n"]
    assert cr.event_data(1, located)["comments"][1] == {
        "text": "keep these", "hunk": "j1/bbbbbbbbbbbb", "path": "a.txt", "lines": [7, 7]
    }  # fmt: skip
    bad = [
        ([], "no comment given"),
        ([cr.ChangeComment("x")] * 101, "101 comments, over the limit of 100"),
        ([cr.ChangeComment("x" * 70_000)], "comment 1 is 70000 characters long"),
        ([cr.ChangeComment("\x00\r\n")], None),  # NUL escaped: not empty, but not raw
        ([cr.ChangeComment("x", "other/aaaaaaaaaaaa")], "does not belong to job j1"),
        ([cr.ChangeComment("x", "j1/ffffffffffff")], "has no hunk"),
    ]
    for comments, message in bad:
        if message is None:
            assert "\\x00" in cr.render_brief(cr.locate(job, files, comments))
            continue
        with pytest.raises(UsageError, match=message):
            cr.locate(job, files, comments)
    many = [cr.ChangeComment("y" * 60_000)] * 5  # each allowed, together too long a brief
    with pytest.raises(UsageError, match="over the limit of 262144"):
        cr.render_brief(cr.locate(job, files, many))

"""Jobs driven by the real language server: cancel from the editor, the concurrency limit
queueing jobs, and multi-root workspaces spanning two repositories (and a repository nested
in a workspace folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import job_events, list_jobs, make_repo, processes_in, run_logist, show_job
from review_harness import Utf16Editor, lsp_session, until

SETTLED = {"review", "accepted", "rejected", "failed", "cancelled", "stuck", "halted"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": b"one\ntwo\n"})


async def create(editor: Utf16Editor, prompt: str, **params: Any) -> str:
    created = await editor.request(
        "logist/createJob", {"prompt": prompt, "agent": "mock", **params}
    )
    assert created["status"] == "pending"
    return str(created["jobId"])


async def status(editor: Utf16Editor, job_id: str) -> str:
    job = await editor.request("logist/getJob", {"jobId": job_id})
    return str(job["status"])


# -- cancel from the editor ------------------------------------------------------------------
def agent_pid(repo: Path, job_id: str) -> int | None:
    record = show_job(repo, job_id)
    steps = record["steps"]
    handle = steps[-1].get("handle") if steps else None
    return handle.get("identity", {}).get("pid") if handle else None


@pytest.mark.parametrize("scenario", ["hang", "question"])
async def test_cancel_from_the_editor_ends_the_job_and_its_processes(
    repo: Path, no_stray_agents: None, scenario: str
) -> None:
    async with lsp_session([repo]) as editor:
        job_id = await create(editor, "hang", agentOptions={"scenario": scenario})
        await editor.wait_status(job_id, {"running" if scenario == "hang" else "needs_input"})
        workspace = Path(show_job(repo, job_id)["workspace"]["path"])
        tree: list[psutil.Process] = []
        if scenario == "question":
            # The agent exits after asking (as real CLIs do headless): the job waits for its
            # answer with no process; the waiting driver settles the cancel.
            await until(lambda: show_job(repo, job_id)["steps"][-1]["outcome"] == "asked",
                        "the asking step's end")  # fmt: skip
            assert not processes_in(workspace)
        else:
            pid = await until(lambda: agent_pid(repo, job_id), "the agent's pid in the record")
            agent = psutil.Process(pid)
            # The hang scenario starts a helper child (`sleep`): both must go.
            await until(lambda: len(processes_in(workspace)) >= 2,
                        "the agent and the hang scenario's helper child")  # fmt: skip
            tree = [agent, *agent.children(recursive=True)]

        answer = await editor.request("logist/cancelJob", {"jobId": job_id})
        assert answer == {"jobId": job_id, "status": "cancelled"}
        _gone, alive = psutil.wait_procs(tree, timeout=10)
        assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
        assert not processes_in(workspace)
        await editor.wait_status(job_id, {"cancelled"})
        assert await status(editor, job_id) == "cancelled"
    events = job_events(repo, job_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["data"]["to"] for e in events if e["kind"] == "status"][-1] == "cancelled"


async def test_cancel_of_a_job_waiting_in_the_queue(repo: Path, no_stray_agents: None) -> None:
    """A job still pending behind the concurrency limit is cancelled at once and never runs."""
    (repo / "logist.yml").write_text("concurrency: 1\n")
    async with lsp_session([repo]) as editor:
        blocker = await create(editor, "block", agentOptions={"scenario": "hang"})
        await editor.wait_status(blocker, {"running"})
        queued = await create(editor, "queued")
        assert await status(editor, queued) == "pending"
        answer = await editor.request("logist/cancelJob", {"jobId": queued})
        assert answer["status"] == "cancelled"
        assert (await editor.request("logist/cancelJob", {"jobId": blocker}))["status"] == (
            "cancelled"
        )
    tos = [e["data"]["to"] for e in job_events(repo, queued) if e["kind"] == "status"]
    assert tos == ["cancelled"]
    assert not any(e["kind"] == "started" for e in job_events(repo, queued))


# -- the concurrency limit -------------------------------------------------------------------
def intervals(repo: Path, job_ids: list[str]) -> dict[str, tuple[float, float]]:
    """When each job left `pending` and when it settled, from its stored event log."""
    spans: dict[str, tuple[float, float]] = {}
    for job_id in job_ids:
        events = job_events(repo, job_id)
        times = {e["data"]["to"]: e["time"] for e in events if e["kind"] == "status"}
        start = times["provisioning"]
        end = min(t for to, t in times.items() if to in SETTLED)
        spans[job_id] = (start, end)
    return spans


def most_at_once(spans: dict[str, tuple[float, float]]) -> int:
    points = sorted(
        [(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()],
        key=lambda p: (p[0], p[1]),  # an end before a start at the same instant
    )
    running = peak = 0
    for _time, delta in points:
        running += delta
        peak = max(peak, running)
    return peak


async def test_jobs_over_the_concurrency_limit_wait_pending_and_run_later(
    repo: Path, no_stray_agents: None
) -> None:
    (repo / "logist.yml").write_text("concurrency: 2\n")
    question = {"scenario": "question", "question": "Go on?"}
    async with lsp_session([repo]) as editor:
        first = await create(editor, "first", agentOptions=question)
        second = await create(editor, "second", agentOptions=question)
        for job_id in (first, second):
            await editor.wait_status(job_id, {"needs_input"})
        # Both slots are held by jobs waiting for an answer: new jobs queue.
        third = await create(editor, "third")
        fourth = await create(editor, "fourth")
        assert [await status(editor, j) for j in (third, fourth)] == ["pending", "pending"]

        run_logist("job", "answer", first, "yes", cwd=repo)
        for job_id in (first, third, fourth):
            await editor.wait_status(job_id, {"review"})
        assert await status(editor, second) == "needs_input"  # it kept its slot
        run_logist("job", "answer", second, "yes", cwd=repo)
        await editor.wait_status(second, {"review"})

    spans = intervals(repo, [first, second, third, fourth])
    assert most_at_once(spans) == 2, spans
    # The queued jobs started only after the first job freed its slot.
    assert spans[third][0] >= spans[first][1] and spans[fourth][0] >= spans[first][1]
    for job_id in (third, fourth):
        tos = [e["data"]["to"] for e in job_events(repo, job_id) if e["kind"] == "status"]
        assert tos == ["provisioning", "running", "review"]


# -- multi-root workspaces ------------------------------------------------------------------
async def test_two_repositories_in_one_workspace_each_job_in_its_own_store(
    tmp_path: Path, no_stray_agents: None
) -> None:
    """Both repositories have a `same.txt` (and a `.logist` store of their own): nothing may
    be looked up by relative path alone."""
    left = make_repo(tmp_path / "left", {"same.txt": b"left\n"})
    right = make_repo(tmp_path / "right", {"same.txt": b"right\n"})
    async with lsp_session([left, right]) as editor:
        left_uri = editor.open(left / "same.txt")
        right_uri = editor.open(right / "same.txt")
        in_left = await create(editor, "to the left", uri=left_uri)
        in_right = await create(editor, "to the right", uri=right_uri)
        for job_id in (in_left, in_right):
            await editor.wait_status(job_id, {"review", "failed"})
        listed = await editor.request("logist/listJobs", {})
        assert {j["id"] for j in listed} == {in_left, in_right}
        # Each document shows only its own repository's job.
        await until(
            lambda: (
                [str(d.code).split("/")[0] for d in editor.diagnostics(left_uri)] == [in_left]
                and [str(d.code).split("/")[0] for d in editor.diagnostics(right_uri)] == [in_right]
            ),
            lambda: (
                f"one marker each: {editor.diagnostics(left_uri)} / {editor.diagnostics(right_uri)}"
            ),
        )
        # Each is accepted into its own repository's open buffer.
        for job_id in (in_left, in_right):
            result = await editor.request("logist/acceptJob", {"jobId": job_id})
            assert result["status"] == "accepted", result
        assert editor.buffers[left_uri] == "left\nlogist-mock: to the left\n"
        assert editor.buffers[right_uri] == "right\nlogist-mock: to the right\n"
    assert [j["id"] for j in list_jobs(left)] == [in_left]
    assert [j["id"] for j in list_jobs(right)] == [in_right]
    assert show_job(left, in_left)["target"]["file"] == "same.txt"
    assert show_job(right, in_right)["target"]["file"] == "same.txt"
    assert (left / "same.txt").read_text() == "left\n"  # accepted into buffers, not on disk
    assert (right / "same.txt").read_text() == "right\n"


async def test_a_repository_nested_in_a_workspace_folder_gets_its_own_jobs(
    tmp_path: Path, no_stray_agents: None
) -> None:
    """The workspace folder is one repository; a file of another repository inside it (a
    nested clone, ignored by the outer one) belongs to the inner repository's store."""
    outer = make_repo(tmp_path / "outer", {"o.txt": b"outer\n", ".gitignore": b"inner/\n"})
    inner = make_repo(outer / "inner", {"i.txt": b"inner\n"})
    async with lsp_session([outer]) as editor:
        uri = editor.open(inner / "i.txt")
        job_id = await create(editor, "inside", uri=uri)
        await editor.wait_status(job_id, {"review", "failed"})
        assert await status(editor, job_id) == "review"
    assert [j["id"] for j in list_jobs(inner)] == [job_id]
    assert not (outer / ".logist" / "logist.db").exists() or list_jobs(outer) == []
    assert show_job(inner, job_id)["target"]["file"] == "i.txt"
    diff = run_logist("job", "diff", job_id, cwd=inner).stdout
    assert "+logist-mock: inside" in diff and "i.txt" in diff


# -- the selection a job is created from -----------------------------------------------------
async def test_a_selection_is_read_in_lsp_lines_and_utf16_columns(
    tmp_path: Path, no_stray_agents: None
) -> None:
    """The editor's range counts UTF-16 units (an emoji is two) and breaks lines only at
    \\n, \\r\\n and \\r: a form feed before the selection does not shift it."""
    text = "head\x0cstill head\nsmile 😀 pick me 😀 tail\nlast\n"
    repo = make_repo(tmp_path / "repo", {"s.txt": text.encode()})
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "s.txt")
        # Line 1 is "smile 😀 pick me 😀 tail": "pick me" starts after "smile 😀 " = 9 units.
        rng = {"start": {"line": 1, "character": 9}, "end": {"line": 1, "character": 16}}
        job_id = await create(editor, "sel", uri=uri, range=rng)
        await editor.wait_status(job_id, SETTLED)
    target = show_job(repo, job_id)["target"]
    assert target["text"] == "pick me"
    assert (target["range"]["start"], target["range"]["end"]) == (2, 2)

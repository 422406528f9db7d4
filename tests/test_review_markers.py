"""Review markers in the editor, through the real server over stdio: a job in review shows
its hunks as hint diagnostics and code lenses on the open document, they follow the user's
live edits (didChange), and they vanish once the job is accepted or rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from conftest import git, make_repo, run_logist
from review_harness import Utf16Editor, diff_hunk_ids, job_in_review, lsp_session, until

A_TXT = "".join(f"line {i}\n" for i in range(1, 11))
MOCK_LINE = "logist-mock: mark me\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": A_TXT.encode(), "b.txt": b"alpha\nbeta\n"})


def job_of(diagnostic: types.Diagnostic) -> str:
    data = diagnostic.data
    assert isinstance(data, dict)
    return str(data["jobId"])


def lens_job(lens: types.CodeLens) -> str:
    assert lens.command is not None and lens.command.arguments
    argument = lens.command.arguments[0]
    assert isinstance(argument, dict)
    return str(argument["jobId"])


def lines_of(diagnostics: list[types.Diagnostic]) -> list[int]:
    return sorted(d.range.start.line for d in diagnostics)


async def editor_job(editor: Utf16Editor, uri: str, prompt: str) -> str:
    created = await editor.request(
        "logist/createJob", {"prompt": prompt, "uri": uri, "agent": "mock"}
    )
    await editor.wait_status(created["jobId"], {"review", "failed"})
    job = await editor.request("logist/getJob", {"jobId": created["jobId"]})
    assert job["status"] == "review", job
    return str(created["jobId"])


async def until_marked(editor: Utf16Editor, uri: str, jobs: set[str]) -> None:
    """Wait until the markers on `uri` are those of exactly `jobs`."""
    await until(
        lambda: {job_of(d) for d in editor.diagnostics(uri)} == jobs,
        lambda: f"markers of {sorted(jobs)}, have {editor.diagnostics(uri)}",
    )


async def test_markers_appear_at_review_follow_edits_and_vanish_after_accept(
    repo: Path,
) -> None:
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "a.txt")
        job_id = await editor_job(editor, uri, "mark me")

        # At review: one hint on the last line (the mock appends after it), naming the hunk.
        (diag,) = await until(lambda: editor.diagnostics(uri), "the hunk's diagnostic")
        assert diag.severity == types.DiagnosticSeverity.Hint
        (hunk_id,) = await diff_hunk_ids(editor, job_id)
        assert diag.code == hunk_id and hunk_id.startswith(f"{job_id}/")
        assert diag.data == {"jobId": job_id, "hunkId": hunk_id}
        assert diag.range.start.line == 9 and diag.range.end.line == 9
        assert "adds 1 line(s)" in diag.message and "logist-mock: mark me" in diag.message
        lenses = await editor.lenses(uri)
        assert {(lens.range.start.line, lens.command.title) for lens in lenses if lens.command} == {
            (9, f"Logist {job_id}: Accept"),
            (9, "Reject job"),
        }

        # The user types three lines above: the markers move down with the text.
        edited = "new 1\nnew 2\nnew 3\n" + A_TXT
        editor.change(uri, edited)
        await until(
            lambda: lines_of(editor.diagnostics(uri)) == [12],
            lambda: f"the diagnostic on line 12, have {lines_of(editor.diagnostics(uri))}",
        )
        lenses = await editor.lenses(uri)
        assert {lens.range.start.line for lens in lenses} == {12}
        assert await editor.actions(uri, 9) == []  # where the hunk was: nothing any more
        titles = [a.title for a in await editor.actions(uri, 12)]
        assert f"Accept change from Logist job {job_id}" in titles

        # Accept through the lens: the change lands after the user's lines, markers vanish.
        accept = next(
            lens.command
            for lens in lenses
            if lens.command and lens.command.title.endswith("Accept")
        )
        result = await editor.run_command(accept)
        assert result["applied"] == [hunk_id] and result["conflicts"] == []
        assert editor.buffers[uri] == edited + MOCK_LINE
        await until(lambda: not editor.client.diagnostics.get(uri), "the diagnostics to clear")
        assert await editor.lenses(uri) == []
        assert await editor.actions(uri, 13) == []


async def test_markers_vanish_after_reject_and_stay_for_the_other_job(repo: Path) -> None:
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "b.txt")
        first = await editor_job(editor, uri, "first")
        second = await editor_job(editor, uri, "second")
        await until_marked(editor, uri, {first, second})
        reject = next(
            lens.command
            for lens in await editor.lenses(uri)
            if lens.command
            and lens.command.title == "Reject job"
            and list(lens.command.arguments or []) == [{"jobId": first}]
        )
        assert (await editor.run_command(reject))["status"] == "rejected"
        await until_marked(editor, uri, {second})
        lenses = await editor.lenses(uri)
        assert lenses
        assert {lens_job(lens) for lens in lenses} == {second}
        assert editor.buffers[uri] == "alpha\nbeta\n"  # reject touches nothing


async def test_markers_appear_for_a_job_another_process_settled(repo: Path, tmp_path: Path) -> None:
    """A job settled by the CLI in review shows on the open document without any request:
    the server learns it from the store (three hunks, each on its own lines)."""
    base = [f"row {i}\n" for i in range(1, 31)]
    (repo / "c.txt").write_text("".join(base))
    git(repo, "add", "c.txt")
    git(repo, "commit", "-qm", "c")
    changed = list(base)
    del changed[26]  # hunk 3: row 27 (line 26) removed
    changed[14:16] = ["row fifteen\n", "row sixteen\n", "row 16b\n"]  # hunk 2: lines 14-15
    changed[2] = "row three\n"  # hunk 1: line 2
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "c.txt")
        job = job_in_review(repo, tmp_path / "work", {"c.txt": "".join(changed).encode()})
        diags = await until(
            lambda: editor.diagnostics(uri) if len(editor.diagnostics(uri)) == 3 else None,
            lambda: f"three diagnostics, have {editor.diagnostics(uri)}",
        )
        by_code = {str(d.code): d for d in diags}
        assert sorted(by_code) == sorted(await diff_hunk_ids(editor, job["id"]))
        spans = [
            (d.range.start.line, d.range.end.line)
            for d in sorted(diags, key=lambda d: d.range.start.line)
        ]
        assert spans == [(2, 2), (14, 15), (26, 26)]
        # The user deletes the first line: every marker moves up by one.
        editor.change(uri, "".join(base[1:]))
        await until(
            lambda: lines_of(editor.diagnostics(uri)) == [1, 13, 25],
            lambda: f"markers one line up, have {lines_of(editor.diagnostics(uri))}",
        )


async def test_markers_vanish_when_another_process_accepts_or_rejects(
    repo: Path, tmp_path: Path
) -> None:
    """`logist job reject` / `job accept` in a terminal: the editor's markers go too."""
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "a.txt")
        rejected = await editor_job(editor, uri, "rejected elsewhere")
        accepted = await editor_job(editor, uri, "accepted elsewhere")
        await until_marked(editor, uri, {rejected, accepted})
        run_logist("job", "reject", rejected, cwd=repo)
        await until_marked(editor, uri, {accepted})
        run_logist("job", "accept", accepted, cwd=repo)
        await until(lambda: not editor.diagnostics(uri), "no marker left")
        assert await editor.lenses(uri) == []
        assert (repo / "a.txt").read_text() == A_TXT + "logist-mock: accepted elsewhere\n"


async def test_a_hunk_the_user_edited_is_marked_as_a_conflict_and_offers_no_accept(
    repo: Path, tmp_path: Path
) -> None:
    rows = [f"row {i}\n" for i in range(1, 21)]
    (repo / "c.txt").write_text("".join(rows))
    git(repo, "add", "c.txt")
    git(repo, "commit", "-qm", "c")
    changed = list(rows)
    changed[4] = "row five\n"
    changed[14] = "row fifteen\n"
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "c.txt")
        job = job_in_review(repo, tmp_path / "work", {"c.txt": "".join(changed).encode()})
        await until(lambda: len(editor.diagnostics(uri)) == 2, "two markers")
        first, second = await diff_hunk_ids(editor, job["id"])
        mine = list(rows)
        mine[4] = "row 5, edited by the user\n"  # inside the first hunk
        editor.change(uri, "".join(mine))

        def conflicted() -> list[types.Diagnostic]:
            return [d for d in editor.diagnostics(uri) if "conflict" in d.message]

        (diag,) = await until(conflicted, lambda: f"a conflict marker: {editor.diagnostics(uri)}")
        assert diag.code == first and diag.range.start.line == 4
        assert "(conflict: you edited these lines)" in diag.message
        lenses = {
            (lens.range.start.line, lens.command.title)
            for lens in await editor.lenses(uri)
            if lens.command
        }
        assert (4, f"Logist {job['id']}: conflict: edited since the job started") in lenses
        assert (14, f"Logist {job['id']}: Accept") in lenses
        assert await editor.actions(uri, 4) == []  # nothing to accept there
        titles = [a.title for a in await editor.actions(uri, 14)]
        assert f"Accept change from Logist job {job['id']}" in titles
        # Accepting everything applies the other hunk and reports this one.
        result = await editor.request("logist/acceptJob", {"jobId": job["id"]})
        assert result["applied"] == [second]
        assert [c["hunkId"] for c in result["conflicts"]] == [first]
        assert result["status"] == "review"
        expected = list(mine)
        expected[14] = "row fifteen\n"
        assert editor.buffers[uri] == "".join(expected)

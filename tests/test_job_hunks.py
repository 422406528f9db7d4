"""`logist job hunks` and `logist job accept --hunk`, end to end: real jobs made by the mock
agent's `multi_hunk` scenario (several separated changes of one file, and a second file),
the real CLI, and the real language server, which must name the same hunks the same way.

Attacks: a stale or unknown id, a hunk accepted twice, a user edit inside a hunk (nothing
written, the job stays in review), hostile file names and contents in the listing, and a
crash between the write and its record (the accept is recorded when run again).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from accept_attacks import leftovers, unwritable
from conftest import (
    A_TXT,
    assert_one_line_error,
    git,
    make_repo,
    run_job,
    run_logist,
    show_job,
    tree_state,
)
from review_harness import cli_hunks, job_in_review, lsp_session, until

ROWS = "".join(f"row {n}\n" for n in range(1, 31))
PROMPT = "Fix rows"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"rows.txt": ROWS.encode(), "notes.md": b"notes\n"})


def multi_hunk_job(repo: Path) -> dict[str, Any]:
    """A mock job in review changing rows 1, 11 and 21 of rows.txt and appending to notes.md."""
    return run_job(
        repo, "--agent", "mock", "--agent-opt", "scenario=multi_hunk",
        "--agent-opt", "also=notes.md", "--file", "rows.txt", "--prompt", PROMPT,
    )  # fmt: skip


def rows_with(*hunks: int) -> str:
    """ROWS with the mock's hunks `hunks` (1: row 1, 2: row 11, 3: row 21) applied."""
    lines = ROWS.splitlines(keepends=True)
    for k in hunks:
        lines[(k - 1) * 10] = f"logist-mock: hunk {k}: {PROMPT}\n"
    return "".join(lines)


def by_path(hunks: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [h for h in hunks if h["path"] == path]


def accept_hunks(repo: Path, job_id: str, *ids: str, status: int = 0) -> Any:
    args = ["job", "accept", job_id, "--json"]
    for hunk_id in ids:
        args += ["--hunk", hunk_id]
    return run_logist(*args, cwd=repo, check=status == 0)


def diff_sections(patch: str, path: str) -> list[tuple[int, int]]:
    """(old start, new start) of each `@@` section of `path` in a `job diff` patch."""
    sections, current = [], None
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            current = line.split(" b/", 1)[1]
        match = re.match(r"@@ -(\d+)(?:,\d+)? \+(\d+)", line)
        if match and current == path:
            sections.append((int(match[1]), int(match[2])))
    return sections


# -- the CLI ---------------------------------------------------------------------------------
def test_hunks_listed_then_accepted_one_by_one_until_the_job_is_accepted(repo: Path) -> None:
    job_id = multi_hunk_job(repo)["id"]
    hunks = cli_hunks(repo, job_id)
    rows = by_path(hunks, "rows.txt")
    (notes,) = by_path(hunks, "notes.md")
    assert [(h["kind"], h["oldStart"], h["oldLines"], h["newLines"]) for h in rows] == [
        ("modify", 1, 1, 1), ("modify", 11, 1, 1), ("modify", 21, 1, 1)
    ]  # fmt: skip
    assert [h["newText"] for h in rows] == [f"logist-mock: hunk {k}: {PROMPT}\n" for k in (1, 2, 3)]
    assert {h["state"] for h in hunks} == {"pending"}
    assert len({h["id"] for h in hunks}) == 4
    assert all(re.fullmatch(rf"{job_id}/[0-9a-f]{{12}}", h["id"]) for h in hunks)

    # Same boundaries as `job diff`: one `@@` section per hunk, at the same lines (with
    # git's three lines of context before the change, where the file has them).
    patch = run_logist("job", "diff", job_id, cwd=repo).stdout
    assert diff_sections(patch, "rows.txt") == [(1, 1), (8, 8), (18, 18)]
    assert [max(1, h["oldStart"] - 3) for h in rows] == [
        s[0] for s in diff_sections(patch, "rows.txt")
    ]

    # The middle hunk alone (by its short form, the part after the slash).
    accepted = json.loads(accept_hunks(repo, job_id, rows[1]["id"].split("/")[1]).stdout)
    assert accepted == {"id": job_id, "status": "review", "hunks": [rows[1]["id"]],
                        "files": ["rows.txt"]}  # fmt: skip
    assert (repo / "rows.txt").read_text() == rows_with(2)
    assert (repo / "notes.md").read_text() == "notes\n"
    states = {h["id"]: h["state"] for h in cli_hunks(repo, job_id)}
    assert states == {rows[0]["id"]: "pending", rows[1]["id"]: "accepted",
                      rows[2]["id"]: "pending", notes["id"]: "pending"}  # fmt: skip
    events = [e["kind"] for e in map(json.loads, run_logist(
        "job", "log", job_id, "--json", cwd=repo).stdout.splitlines())]  # fmt: skip
    assert events[-2:] == ["accepting", "hunks_accepted"]  # recorded before and after the write

    # The rest, in two accepts: the job settles with the last one.
    accepted = json.loads(accept_hunks(repo, job_id, rows[2]["id"], rows[0]["id"]).stdout)
    assert accepted["status"] == "review"
    accepted = json.loads(accept_hunks(repo, job_id, notes["id"]).stdout)
    assert accepted["status"] == "accepted"
    assert (repo / "rows.txt").read_text() == rows_with(1, 2, 3)
    assert (repo / "notes.md").read_text() == f"notes\nlogist-mock: {PROMPT}\n"
    assert show_job(repo, job_id)["status"] == "accepted"
    assert {h["state"] for h in cli_hunks(repo, job_id)} == {"accepted"}


def refused(repo: Path, job_id: str, ids: list[str], status: int, *expected: str) -> str:
    """`job accept --hunk ...` fails with one line holding `expected`: nothing written, no
    temporary left, the job still in review with the same hunks accepted."""
    before, accepted = tree_state(repo), show_job(repo, job_id)["result"]["accepted_hunks"]
    line = assert_one_line_error(accept_hunks(repo, job_id, *ids, status=status), status)
    for text in expected:
        assert text in line, line
    assert tree_state(repo) == before
    assert leftovers(repo) == []
    job = show_job(repo, job_id)
    assert job["status"] == "review" and job["result"]["accepted_hunks"] == accepted
    return line


def test_unknown_stale_repeated_and_conflicting_hunks_are_refused_writing_nothing(
    repo: Path,
) -> None:
    job_id = multi_hunk_job(repo)["id"]
    other_id = multi_hunk_job(make_repo(repo.parent / "other", {"rows.txt": ROWS.encode()}))["id"]
    rows = by_path(cli_hunks(repo, job_id), "rows.txt")
    first, second, third = (h["id"] for h in rows)
    refused(repo, job_id, ["0123456789ab"], 2, "has no hunk", f"logist job hunks {job_id}")
    refused(repo, job_id, [f"{other_id}/0123456789ab"], 2, "does not belong to job")
    refused(repo, job_id, [first, "\x1b[31mnope\n"], 2, "has no hunk", "\\x1b")  # one line
    accept_hunks(repo, job_id, first)
    refused(repo, job_id, [second, first], 2, "already accepted")

    # The user changes row 21 (inside the third hunk), and adds a line above the second
    # (which moves it, no conflict): accepting both is refused as a whole.
    mine = rows_with(1).replace("row 21\n", "row 21, mine\n").replace("row 5\n", "row 5\nmine\n")
    (repo / "rows.txt").write_text(mine)
    line = refused(repo, job_id, [second, third], 1, third, "you changed these lines")
    assert second not in line
    states = {h["id"]: h["state"] for h in cli_hunks(repo, job_id)}
    assert (states[second], states[third]) == ("pending", "conflict")
    accept_hunks(repo, job_id, second)  # alone, it applies where row 11 is now
    assert (repo / "rows.txt").read_text() == mine.replace(
        "row 11\n", f"logist-mock: hunk 2: {PROMPT}\n"
    )


def test_a_hunk_written_but_not_recorded_is_recorded_by_accepting_it_again(repo: Path) -> None:
    """As if the accept's process died between the write and its record: the file has the
    hunk, the record does not. The listing says `in place`; accepting it records it and
    writes nothing more."""
    job_id = multi_hunk_job(repo)["id"]
    rows = by_path(cli_hunks(repo, job_id), "rows.txt")
    (repo / "rows.txt").write_text(rows_with(3))
    states = [h["state"] for h in by_path(cli_hunks(repo, job_id), "rows.txt")]
    assert states == ["pending", "pending", "in place"]
    result = json.loads(accept_hunks(repo, job_id, rows[2]["id"]).stdout)
    assert result["files"] == [] and result["status"] == "review"
    assert (repo / "rows.txt").read_text() == rows_with(3)
    assert show_job(repo, job_id)["result"]["accepted_hunks"] == [rows[2]["id"]]


def test_a_hunk_accept_is_recorded_before_its_write_and_a_failed_write_changes_nothing(
    tmp_path: Path,
) -> None:
    """The `accepting` event names the hunks before anything is written: when the write
    fails (a directory nobody may change), it is there without `hunks_accepted`, nothing was
    written, the hunk is still pending, and the same accept succeeds once it can."""
    repo = make_repo(tmp_path / "repo", {"docs/rows.txt": ROWS.encode()})
    job_id = run_job(
        repo, "--agent", "mock", "--agent-opt", "scenario=multi_hunk", "--file", "docs/rows.txt",
        "--prompt", PROMPT,
    )["id"]  # fmt: skip
    first = cli_hunks(repo, job_id)[0]["id"]
    with unwritable(repo / "docs"):
        line = refused(repo, job_id, [first], 1, "docs/rows.txt", "nothing was written")
    assert "Traceback" not in line
    events = [
        json.loads(e)
        for e in run_logist("job", "log", job_id, "--json", cwd=repo).stdout.splitlines()
    ]
    assert events[-1]["kind"] == "accepting" and events[-1]["data"]["hunks"] == [first]
    assert cli_hunks(repo, job_id)[0]["state"] == "pending"
    accept_hunks(repo, job_id, first)
    assert (repo / "docs" / "rows.txt").read_text() == rows_with(1)


def test_the_two_halves_of_a_rename_are_accepted_together(repo: Path) -> None:
    """A rename is a deletion and a creation; accepting either hunk alone would lose the file
    or leave a copy, so naming one accepts both."""
    job_id = run_job(
        repo, "--agent", "mock", "--agent-opt", "rename=notes.md:moved/notes.md",
        "--prompt", "move",
    )["id"]  # fmt: skip
    hunks = {h["path"]: h for h in cli_hunks(repo, job_id)}
    assert (hunks["notes.md"]["kind"], hunks["notes.md"]["moved"]) == ("delete", "moved/notes.md")
    assert (hunks["moved/notes.md"]["kind"], hunks["moved/notes.md"]["moved"]) == (
        "create",
        "notes.md",
    )
    listing = run_logist("job", "hunks", job_id, cwd=repo).stdout
    assert "notes.md delete (renamed to moved/notes.md)" in listing
    result = json.loads(accept_hunks(repo, job_id, hunks["moved/notes.md"]["id"]).stdout)
    assert sorted(result["hunks"]) == sorted(
        [hunks["notes.md"]["id"], hunks["moved/notes.md"]["id"]]
    )
    assert sorted(result["files"]) == ["moved/notes.md", "notes.md"]
    assert not (repo / "notes.md").exists()
    assert (repo / "moved" / "notes.md").read_text() == "notes\n"
    states = {h["path"]: h["state"] for h in cli_hunks(repo, job_id)}
    assert states["notes.md"] == states["moved/notes.md"] == "accepted"


def test_hostile_names_and_lines_are_escaped_in_the_listing(repo: Path, tmp_path: Path) -> None:
    """The agent controls file names and content: the human listing shows each hunk on one
    line with escape sequences, bidirectional overrides and newlines escaped."""
    hostile_name = "evil\x1b[2J\u202e\nname.txt"
    job = job_in_review(
        repo,
        tmp_path / "work",
        {hostile_name: b"\x1b]0;pwned\x07 text \xe2\x80\xae rtl\r more\n",
         "rows.txt": rows_with(2).encode()},
    )  # fmt: skip
    proc = run_logist("job", "hunks", job["id"], cwd=repo)
    lines = proc.stdout.splitlines()
    assert len(lines) == 3, lines  # the heading and one line per hunk
    for bad in ("\x1b", "\x07", "\u202e", "\r"):
        assert bad not in proc.stdout
    assert "evil\\x1b[2J\\u202e\\nname.txt" in proc.stdout
    assert "\\x1b]0;pwned\\x07 text \\u202e rtl" in proc.stdout
    listed = {h["path"] for h in cli_hunks(repo, job["id"])}  # JSON keeps the real name
    assert listed == {hostile_name, "rows.txt"}


# -- the editor and the CLI name the same hunks ----------------------------------------------
async def test_the_editor_offers_the_cli_hunk_ids_and_each_sees_the_others_accepts(
    repo: Path,
) -> None:
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "rows.txt")
        job_id = multi_hunk_job(repo)["id"]
        rows = [h["id"] for h in by_path(cli_hunks(repo, job_id), "rows.txt")]
        await until(lambda: len(editor.diagnostics(uri)) == 3, "three markers")
        assert [str(d.code) for d in editor.diagnostics(uri)] == rows
        diff = await editor.request("logist/getJobDiff", {"jobId": job_id})
        assert [h["id"] for f in diff["files"] for h in f["hunks"]] == [
            h["id"] for h in cli_hunks(repo, job_id)
        ]

        # The quick fix on row 11 accepts exactly the CLI's second hunk, in the buffer.
        actions = await editor.actions(uri, 10)
        (fix,) = [a for a in actions if a.is_preferred]
        assert fix.command is not None and list(fix.command.arguments or []) == [
            {"jobId": job_id, "hunkIds": [rows[1]]}
        ]
        result = await editor.run_command(fix.command)
        assert result["applied"] == [rows[1]] and result["status"] == "review"
        assert editor.buffers[uri] == rows_with(2)
        states = {h["id"]: h["state"] for h in cli_hunks(repo, job_id)}
        assert states[rows[1]] == "accepted"
        assert (states[rows[0]], states[rows[2]]) == ("pending", "pending")

        # The CLI accepts the first one (on disk): the editor's markers drop it.
        (repo / "rows.txt").write_text(editor.buffers[uri])  # the user saves the buffer
        accept_hunks(repo, job_id, rows[0])
        await until(
            lambda: [str(d.code) for d in editor.diagnostics(uri)] == [rows[2]],
            lambda: f"only the third marker, have {editor.diagnostics(uri)}",
        )
        assert (repo / "rows.txt").read_text() == rows_with(1, 2)
    assert git(repo, "status", "--porcelain", "--", "rows.txt").strip() == "M rows.txt"


async def test_a_hunk_the_user_already_typed_is_offered_and_recorded_without_an_edit(
    repo: Path, tmp_path: Path
) -> None:
    """The user made exactly the job's change in the buffer: the marker says it is in
    place, the quick fix is still offered, and accepting records the hunk (the job settles)
    without touching the buffer."""
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "rows.txt")
        job = job_in_review(repo, tmp_path / "work", {"rows.txt": rows_with(2).encode()})
        (hunk_id,) = [h["id"] for h in cli_hunks(repo, job["id"])]
        await until(lambda: len(editor.diagnostics(uri)) == 1, "the marker")
        editor.change(uri, rows_with(2))
        await until(
            lambda: any("already in place" in d.message for d in editor.diagnostics(uri)),
            lambda: f"an in-place marker, have {editor.diagnostics(uri)}",
        )
        (fix,) = [a for a in await editor.actions(uri, 10) if a.is_preferred]
        assert fix.command is not None
        result = await editor.run_command(fix.command)
        assert result == {
            "jobId": job["id"], "status": "accepted", "applied": [hunk_id], "conflicts": []
        }  # fmt: skip
        assert editor.buffers[uri] == rows_with(2)
    assert (repo / "rows.txt").read_text() == ROWS  # the buffer was never saved


def test_a_job_settled_between_an_accepts_two_steps_records_no_hunk(tmp_path: Path) -> None:
    """An editor's accept plans under the working-tree lock, lets the editor apply the
    edit, then records under the lock again. Another process that rejects the job in
    between wins: the finish records nothing on the rejected job and reports its status."""
    from logist_server.engine.facade import Engine
    from logist_server.vcs.git import find_repo

    repo = make_repo(tmp_path / "repo", {"a.txt": A_TXT})
    job = job_in_review(repo, tmp_path / "work", {"a.txt": A_TXT.replace(b"line 3\n", b"3\n")})
    editor = Engine(find_repo(repo))
    run = editor.start_hunk_accept(job["id"], None, {"a.txt": A_TXT.decode()})
    assert run.plan.applied  # the editor now applies the edit to its buffer
    Engine(find_repo(repo)).reject(job["id"])  # another process, meanwhile
    finished = editor.finish_hunk_accept(run, {})
    assert finished.status == "rejected"
    shown = json.loads(run_logist("job", "show", job["id"], "--json", cwd=repo).stdout)
    assert shown["status"] == "rejected" and shown["result"]["accepted_hunks"] == [], shown
    log = run_logist("job", "log", job["id"], "--json", cwd=repo).stdout
    kinds = [json.loads(line)["kind"] for line in log.splitlines() if line.strip()]
    assert "hunks_accepted" not in kinds

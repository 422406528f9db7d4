"""A real Neovim (headless, Debian's `neovim` package) as the LSP client of `logist-server`.

Neovim opens a.txt, makes an unsaved edit, creates a job over a range with the mock agent,
receives `logist/jobEvent` notifications until review, and accepts the hunk through its own
`vim.lsp.buf.code_action()` path: `workspace/executeCommand`, then the server's
`workspace/applyEdit` applied by Neovim to the live buffer. The Lua side is
tests/nvim/review_job.lua; it writes what it saw to a JSON file checked here.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import git, make_repo, show_job

SERVER = Path(sys.executable).parent / "logist-server"
SCRIPT = Path(__file__).parent / "nvim" / "review_job.lua"
A_TXT = "".join(f"line {i}\n" for i in range(1, 11))
UNSAVED = "line 1 (unsaved edit in neovim)"
PROMPT = "add a line from neovim\nthe mock agent only uses the first line"
MOCK_LINE = "logist-mock: add a line from neovim"
NVIM_TIMEOUT_S = 90


def _nvim() -> str:
    path = shutil.which("nvim")
    if path is None:
        pytest.fail(
            "nvim is not installed: this test needs a real Neovim; "
            "CI must install neovim (apt-get install -y neovim)"
        )
    return path


def _run_nvim(tmp_path: Path, config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Run the Lua script in headless Neovim; the result file's content and a diagnosis text."""
    config_path = tmp_path / "nvim-test.json"
    config_path.write_text(json.dumps(config))
    home = tmp_path / "nvim-home"
    env = dict(os.environ)  # LOGIST_WORKSPACE_ROOT and the git isolation from conftest
    env["LOGIST_NVIM_TEST"] = str(config_path)
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(home / name.lower())
    cmd = [_nvim(), "--headless", "--clean", "-u", "NONE", "-i", "NONE", "-c", f"luafile {SCRIPT}"]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=config["root"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so a hang can be killed with the server it started
    )
    try:
        stdout, stderr = proc.communicate(timeout=NVIM_TIMEOUT_S)
        outcome = f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        outcome = f"killed after {NVIM_TIMEOUT_S} s"
    elapsed = time.monotonic() - started

    result_path = Path(config["result"])
    raw = result_path.read_text() if result_path.exists() else ""
    lsp_log = home / "xdg_cache_home" / "nvim" / "lsp.log"
    diagnosis = (
        f"nvim {outcome} in {elapsed:.1f} s\n"
        f"result file: {raw or '(missing)'}\n"
        f"nvim stdout: {stdout[-3000:]}\nnvim stderr: {stderr[-3000:]}\n"
        f"lsp.log tail: {lsp_log.read_text()[-3000:] if lsp_log.exists() else '(none)'}"
    )
    assert proc.returncode == 0 and raw, f"headless Neovim failed\n{diagnosis}"
    result: dict[str, Any] = json.loads(raw)
    assert result.get("ok") is True, f"the Lua script failed\n{diagnosis}"
    return result, diagnosis


def test_neovim_creates_a_job_streams_events_and_accepts_the_hunk(tmp_path: Path) -> None:
    # resolved, so Neovim's buffer URI and the server's URIs name the same file
    repo = make_repo((tmp_path / "repo").resolve(), {"a.txt": A_TXT.encode()})
    a_txt = repo / "a.txt"
    result, diagnosis = _run_nvim(
        tmp_path,
        {
            "server": str(SERVER),
            "root": str(repo),
            "file": str(a_txt),
            "prompt": PROMPT,
            # 0-based LSP lines 2..4, end exclusive: "line 3" and "line 4"
            "range": {"start": {"line": 2, "character": 0}, "end": {"line": 4, "character": 0}},
            "unsaved_line": UNSAVED,
            "expected_line": MOCK_LINE,
            "result": str(tmp_path / "nvim-result.json"),
            "timeout_ms": 45_000,
        },
    )
    job_id = result["job_id"]
    edited = [UNSAVED, *A_TXT.splitlines()[1:]]
    assert result["edited_lines"] == edited, diagnosis

    # listJobs with Neovim's `{}` (sent as `[]`): job summaries, the prompt's first line only
    (listed,) = [j for j in result["listed"] if j["id"] == job_id]
    assert listed["headline"] == PROMPT.splitlines()[0] and "prompt" not in listed, listed
    assert "createdAt" in listed and "created_at" not in listed, listed

    # events: this job's, strictly increasing seq, up to review
    mine = [e for e in result["events"] if e["jobId"] == job_id]
    seqs = [e["seq"] for e in mine]
    assert seqs, f"no logist/jobEvent for job {job_id}\n{diagnosis}"
    assert all(a < b for a, b in itertools.pairwise(seqs)), (
        f"seq not strictly increasing: {seqs}\n{diagnosis}"
    )
    statuses = [e["status"] for e in mine if "status" in e]
    assert "review" in statuses, f"statuses {statuses}\n{diagnosis}"
    # event data keys are camelCase on the wire (the usage event's costUsd, ...)
    keys = {key for e in mine for key in e["dataKeys"]}
    assert {"costUsd", "inputTokens"} <= keys and not [k for k in keys if "_" in k], keys
    assert "failed" not in statuses, diagnosis
    assert any(f"job {job_id} is ready for review" in m for m in result["messages"]), diagnosis
    tokens = {(p["token"], p["kind"]) for p in result["progress"]}
    assert (f"logist-job-{job_id}", "begin") in tokens, diagnosis
    assert (f"logist-job-{job_id}", "end") in tokens, diagnosis

    # the code action Neovim offered and ran
    titles = result["titles"]
    assert f"Accept change from Logist job {job_id}" in titles, diagnosis
    assert any("Accept" in t for t in titles), diagnosis
    assert result["apply_edit"]["applied"] is True, diagnosis
    assert result["execute_command"].get("error") is None, diagnosis
    executed = result["execute_command"]["result"]
    assert executed["status"] == "accepted" and executed["conflicts"] == [], diagnosis

    # the live buffer: the unsaved edit is kept, the mock's line is appended, nothing is saved
    assert result["final_lines"] == [*edited, MOCK_LINE], diagnosis
    assert result["modified"] is True, diagnosis
    assert result["buffer_count"] == 1, f"the edit went to another buffer\n{diagnosis}"
    assert a_txt.read_text() == A_TXT, "the file on disk changed"
    # the accepted change is an ordinary edit: undo takes it away, the unsaved edit stays
    assert result["undone_lines"] == edited, diagnosis
    assert result["redone_lines"] == [*edited, MOCK_LINE], diagnosis
    assert result["server_exit"]["code"] == 0, diagnosis

    # the job: accepted, based on the buffer as Neovim showed it (unsaved edit included)
    job = show_job(repo, job_id)
    assert job["status"] == "accepted", job
    assert job["target"]["file"] == "a.txt", job
    assert job["target"]["range"] == {"start": 3, "end": 4}, job
    assert job["target"]["text"] == "line 3\nline 4\n", job
    base_a = git(repo, "show", f"{job['base_commit']}:a.txt")
    assert base_a.splitlines()[0] == UNSAVED, f"the job's base missed the unsaved edit: {base_a!r}"

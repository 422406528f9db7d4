"""A real Neovim (headless) requests changes to a hunk: the server's code action "Request
changes to this hunk...", completed by the client-side command doc/protocol.md documents
(`vim.lsp.commands["logist.requestHunkChanges"]` + `vim.ui.input`), sends
`logist/requestChanges`; the job runs a second step with the comment and returns to review;
then the job's history comes back through `logist/getJobEvents` pages. The Lua side is
tests/nvim/request_changes.lua."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import job_events, make_repo, show_job

SERVER = Path(sys.executable).parent / "logist-server"
SCRIPT = Path(__file__).parent / "nvim" / "request_changes.lua"
NVIM_TIMEOUT_S = 120


def run_nvim(tmp_path: Path, config: dict[str, Any]) -> tuple[dict[str, Any], str]:
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.fail("nvim is not installed: CI must install neovim (apt-get install -y neovim)")
    config_path = tmp_path / "nvim-test.json"
    config_path.write_text(json.dumps(config))
    home = tmp_path / "nvim-home"
    env = dict(os.environ)
    env["LOGIST_NVIM_TEST"] = str(config_path)
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(home / name.lower())
    cmd = [nvim, "--headless", "--clean", "-u", "NONE", "-i", "NONE", "-c", f"luafile {SCRIPT}"]
    proc = subprocess.Popen(
        cmd, cwd=config["root"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=NVIM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
    result_path = Path(config["result"])
    raw = result_path.read_text() if result_path.exists() else ""
    diagnosis = (
        f"result: {raw[-4000:] or '(missing)'}\nstdout: {stdout[-2000:]}\nstderr: {stderr[-2000:]}"
    )
    assert proc.returncode == 0 and raw, f"headless Neovim failed\n{diagnosis}"
    result: dict[str, Any] = json.loads(raw)
    assert result.get("ok") is True, f"the Lua script failed\n{diagnosis}"
    return result, diagnosis


def test_neovim_requests_changes_to_a_hunk_through_the_code_action(
    tmp_path: Path, no_stray_agents: None
) -> None:
    repo = make_repo((tmp_path / "repo").resolve(), {"a.txt": b"one\ntwo\n"})
    comment = "Greet in French, from Neovim"
    result, diagnosis = run_nvim(
        tmp_path,
        {
            "server": str(SERVER),
            "root": str(repo),
            "file": str(repo / "a.txt"),
            "prompt": "Add a greeting",
            "comment": comment,
            "result": str(tmp_path / "nvim-result.json"),
            "timeout_ms": 60_000,
        },
    )
    job_id = result["job_id"]
    assert any(t.startswith("Request changes to this hunk...") for t in result["titles"]), diagnosis
    argument = result["command_argument"]
    assert argument["jobId"] == job_id and argument["path"] == "a.txt", diagnosis
    assert (argument["startLine"], argument["endLine"]) == (3, 3), diagnosis
    assert result["input_prompt"] == "Changes to a.txt:3-3: ", diagnosis
    assert result["notified"] == [], diagnosis  # no error answer
    assert result["statuses_after"][0] == "pending" and result["statuses_after"][-1] == "review"

    prompt = (repo / ".logist" / "jobs" / job_id / "step-2" / "prompt.txt").read_text()
    assert "On a.txt, line 3:" in prompt and f"   {comment}" in prompt, prompt
    assert [s["why"] for s in show_job(repo, job_id)["steps"]] == ["start", "changes"]
    # The history pages (5 events each) cover the whole log, in order.
    history = result["history"]
    assert "history_error" not in result, diagnosis
    stored = job_events(repo, job_id)
    assert [h["seq"] for h in history][-1] == len(stored)
    assert "changes_requested" in [h["kind"] for h in history]

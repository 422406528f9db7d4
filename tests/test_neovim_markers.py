"""Review markers with a real Neovim (headless) as the client: the hint diagnostic of a job
in review follows the user's typing (Neovim's own incremental didChange), the code lens
sits on the hunk, accepting through the lens changes exactly the hunk's line in the live
buffer, and the markers vanish. The Lua side is tests/nvim/markers.lua.

The second case puts a form feed in a line above (as in Python or Lisp sources): Neovim,
like LSP, does not break lines there, so the server must not either."""

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

from conftest import make_repo
from review_harness import job_in_review

SERVER = Path(sys.executable).parent / "logist-server"
SCRIPT = Path(__file__).parent / "nvim" / "markers.lua"
NVIM_TIMEOUT_S = 90


def run_nvim(tmp_path: Path, repo: Path, file: Path, hunk_line: int) -> dict[str, Any]:
    nvim = shutil.which("nvim")
    if nvim is None:
        pytest.fail("nvim is not installed: this test needs a real Neovim (apt-get install neovim)")
    config = tmp_path / "nvim-markers.json"
    result_path = tmp_path / "nvim-markers-result.json"
    config.write_text(
        json.dumps(
            {
                "server": str(SERVER),
                "root": str(repo),
                "file": str(file),
                "hunk_line": hunk_line,
                "result": str(result_path),
                "timeout_ms": 45_000,
            }
        )
    )
    env = dict(os.environ)
    env["LOGIST_NVIM_TEST"] = str(config)
    home = tmp_path / "nvim-home"
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(home / name.lower())
    cmd = [nvim, "--headless", "--clean", "-u", "NONE", "-i", "NONE", "-c", f"luafile {SCRIPT}"]
    proc = subprocess.Popen(
        cmd, cwd=repo, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        _out, err = proc.communicate(timeout=NVIM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate()
    raw = result_path.read_text() if result_path.exists() else "{}"
    result: dict[str, Any] = json.loads(raw)
    assert result.get("ok") is True, f"Neovim: exit {proc.returncode}, {raw}\nstderr: {err}"
    return result


@pytest.mark.parametrize("above", ["", "section \x0c one\n"], ids=["plain", "form-feed-above"])
def test_neovim_sees_markers_follow_its_edits_and_vanish_after_accept(
    tmp_path: Path, above: str
) -> None:
    lines = [f"line {i}\n" for i in range(1, 11)]
    lines[1:1] = [above] if above else []
    hunk = lines.index("line 8\n")
    text = "".join(lines)
    repo = make_repo((tmp_path / "repo").resolve(), {"a.txt": text.encode()})
    job = job_in_review(
        repo, tmp_path / "work", {"a.txt": text.replace("line 8\n", "line eight\n").encode()}
    )
    result = run_nvim(tmp_path, repo, repo / "a.txt", hunk)
    assert result["at_review"] == [hunk], result
    assert result["after_top"] == [hunk + 2], result  # moved with the two typed lines
    assert result["after_below"] == [hunk + 2], result  # a line below does not move it
    assert {(lens["line"], lens["title"]) for lens in result["lenses"]} == {
        (hunk + 2, f"Logist {job['id']}: Accept"),
        (hunk + 2, "Reject job"),
    }
    assert [h.split("/")[0] for h in result["accepted"]["applied"]] == [job["id"]], result
    expected = [line.rstrip("\n") for line in lines]
    expected[hunk] = "line eight"
    expected.insert(hunk + 1, "typed below the hunk")
    expected[0:0] = ["typed at the top 1", "typed at the top 2"]
    assert result["final_lines"] == expected, result
    assert result["after_accept"] == [], result
    assert (repo / "a.txt").read_text() == text  # the buffer, not the disk

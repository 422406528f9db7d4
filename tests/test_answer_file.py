"""The answer file both live bridges wait on (review R5): a FIFO or a symlink planted at the
answer path never counts as an answer and never blocks the bridge (the ACP bridge's event loop
keeps running), and an answer left from an earlier question is never taken for the next."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from logist_server.domain.permissions import Permissions
from logist_server.providers.agents.answer_file import read_answer

ACP_SCENARIO = r"""
import asyncio, os, sys
from pathlib import Path
from logist_server.domain.permissions import Permissions
from logist_server.providers.agents.acp_client import LogistClient

async def main() -> None:
    d = Path(sys.argv[1]); answer = d / "answer"
    answer.write_text("allow")  # stale: written for an earlier question
    client = LogistClient(d, Permissions(), answer, {})
    task = asyncio.create_task(client._ask("run it?", "q1", ["allow", "deny"]))
    await asyncio.sleep(0.2)
    print("stale-cleared", not answer.exists(), file=sys.stderr)
    os.mkfifo(answer)  # planted by a process of the user
    await asyncio.sleep(0.5)  # the loop must keep running meanwhile
    print("fifo-ignored", not task.done(), file=sys.stderr)
    staged = d / "staged"; staged.write_text("deny"); os.replace(staged, answer)
    print("answered", await asyncio.wait_for(task, 30), file=sys.stderr)

asyncio.run(main())
"""


def test_a_fifo_at_the_acp_answer_path_does_not_freeze_the_bridge(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ACP_SCENARIO, str(tmp_path)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["stale-cleared True", "fifo-ignored True", "answered deny"]


def test_read_answer_takes_only_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "answer"
    assert read_answer(str(path)) is None
    os.mkfifo(path)
    assert read_answer(str(path)) is None  # returns at once, never blocks
    path.unlink()
    decoy = tmp_path / "decoy"
    decoy.write_text("allow")
    path.symlink_to(decoy)
    assert read_answer(str(path)) is None
    path.unlink()
    path.write_text("deny")
    assert read_answer(str(path)) == "deny"


def test_the_claude_bridge_never_takes_a_stale_answer_for_a_new_question(tmp_path: Path) -> None:
    from conftest import wait_for
    from test_claude_bridge import RESULT, Run, ask

    (tmp_path / "answer").write_text("allow")  # left from an earlier question
    run = Run(tmp_path, [ask("Bash", "t1", command="rm -rf ~"),
                         {"print": json.dumps(RESULT)}, {"exit": 0}], Permissions())  # fmt: skip
    wait_for(lambda: run.questions(), timeout=30)
    staged = tmp_path / "staged"
    staged.write_text("deny")
    os.replace(staged, run.answer)
    assert run.wait() == 0
    (answer,) = run.answers()
    assert answer["response"]["behavior"] == "deny"

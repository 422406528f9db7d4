"""F7: a hostile (or buggy) agent prints one huge line with no newline. The follower keeps
at most `MAX_LINE` bytes of it (the driver's memory does not grow with the line), reports
the cut once (`observer_warning` `line_cut`), moves the committed cursor past the dropped
bytes and goes on with the next lines. Real `logist run`, real mock agent, real git repo."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from conftest import job_events, list_jobs, popen_logist, run_logist, show_job, wait_for

pytestmark = pytest.mark.usefixtures("no_stray_agents")

LINE_MIB = 64


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_line_without_newline_is_cut_and_memory_stays_bounded(repo: Path) -> None:
    run = popen_logist("run", "--json", "--agent-opt", "scenario=hang", "--prompt", "flood",
                       cwd=repo)  # fmt: skip
    try:
        job_id = wait_for(lambda: [j["id"] for j in list_jobs(repo) if j["steps"]], timeout=60)[0]
        wait_for(lambda: any(e["kind"] == "message" for e in job_events(repo, job_id)), timeout=60)
        output = repo / ".logist" / "jobs" / job_id / "step-1" / "output.log"
        before = peak_rss(run.pid)
        block = b"x" * (1 << 20)
        with open(output, "ab") as out:  # what the agent writes: one line, no newline
            for _ in range(LINE_MIB):
                out.write(block)
        size = output.stat().st_size
        wait_for(lambda: show_job(repo, job_id)["steps"][-1]["output_offset"] >= size, timeout=120)
        grown = peak_rss(run.pid) - before
        assert grown < 24 << 20, f"the driver grew {grown >> 20} MiB for one {LINE_MIB} MiB line"
        with open(output, "ab") as out:  # the line ends; the next one is read as usual
            out.write(b"tail of the long line\n")
            out.write(json.dumps({"type": "message", "text": "after the flood"}).encode() + b"\n")
        events = wait_for(
            lambda: (
                (evs := job_events(repo, job_id))
                and any(e["data"].get("text") == "after the flood" for e in evs)
                and evs
            ),
            timeout=60,
        )
        cuts = [e for e in events if e["kind"] == "observer_warning"
                and e["data"].get("warning") == "line_cut"]  # fmt: skip
        assert len(cuts) == 1, cuts
        texts = [e["data"].get("text", "") for e in events if e["kind"] == "message"]
        assert not any("tail of the long line" in t or "xxxx" in t for t in texts), texts
    finally:
        run_logist("job", "cancel", job_id, cwd=repo, check=False)
        run.communicate(timeout=60)
        if run.returncode is None:
            psutil.Process(run.pid).kill()

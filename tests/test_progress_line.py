"""On a terminal, `logist run` and `logist job attach` show elapsed time, tokens and cost
so far on their progress line; on a pipe they do not (plain event lines only).

The terminal is a real pseudo-terminal (`pty.openpty`) on the real CLI's stderr."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

from conftest import LOGIST, run_logist, wait_for
from logist_server.cli.progress import format_figures
from logist_server.domain.model import Usage

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
FIGURES = re.compile(r"\d+:\d\d · ([\d.]+k?) tokens · \$(\d+\.\d{4})( \(computed\))?")
COST_RUN = ("--agent", "mock", "--agent-opt", "scenario=cost", "--agent-opt", "steps=12",
            "--agent-opt", "interval=0.15")  # fmt: skip


def run_on_a_terminal(repo: Path, *args: str, timeout: float = 90) -> tuple[int, str]:
    """Run `logist ARGS` with stderr on a pseudo-terminal; its exit status and what the
    terminal received, escape sequences removed."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "LINES": "40", "TERM": "xterm-256color"}
    proc = subprocess.Popen([str(LOGIST), *args], cwd=repo, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env)  # fmt: skip
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the last writer closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()
    return proc.returncode, ANSI.sub("\n", b"".join(chunks).decode("utf-8", "replace"))


def test_the_progress_line_shows_time_tokens_and_cost_on_a_terminal(repo: Path) -> None:
    code, screen = run_on_a_terminal(repo, "run", *COST_RUN, "--prompt", "hi")
    assert code == 0, screen
    shown = FIGURES.findall(screen)
    assert shown, screen[-2000:]
    costs = [float(cost) for _tokens, cost, _label in shown]
    assert max(costs) > 0.01 and costs == sorted(costs)  # it climbs as the agent reports


def test_a_computed_cost_is_labelled_on_the_progress_line(repo: Path) -> None:
    code, screen = run_on_a_terminal(repo, "run", *COST_RUN, "--agent-opt", "report_cost=false",
                                     "--model", "gpt-5", "--prompt", "hi")  # fmt: skip
    assert code == 0, screen
    assert any(label for *_rest, label in FIGURES.findall(screen)), screen[-2000:]


def test_job_attach_shows_the_figures_of_a_job_another_process_drives(repo: Path) -> None:
    driver = subprocess.Popen(
        [str(LOGIST), "run", "--json", "--agent", "mock", "--agent-opt", "scenario=cost",
         "--agent-opt", "steps=30", "--agent-opt", "interval=0.2", "--prompt", "hi"],
        cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        job_id = wait_for(lambda: _running_job(repo), timeout=60)
        code, screen = run_on_a_terminal(repo, "job", "attach", job_id)
        assert code == 0, screen
        assert FIGURES.search(screen), screen[-2000:]
    finally:
        driver.communicate(timeout=90)


def _running_job(repo: Path) -> str | None:
    proc = run_logist("job", "list", "--json", cwd=repo, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    import json

    jobs = [j for j in json.loads(proc.stdout) if j["status"] == "running"]
    return str(jobs[0]["id"]) if jobs else None


def test_no_progress_figures_on_a_pipe(repo: Path) -> None:
    proc = run_logist("run", *COST_RUN, "--prompt", "hi", cwd=repo)
    assert not FIGURES.search(proc.stderr) and " tokens · " not in proc.stderr
    assert "usage" in proc.stderr or "turn" in proc.stderr  # plain event lines instead


def test_format_figures() -> None:
    usage = Usage(input_tokens=1000, cache_read_tokens=10_000, output_tokens=2345,
                  reasoning_tokens=100, cost_usd=0.01234, cost_source="reported")  # fmt: skip
    assert format_figures(usage, 62.9) == "1:02 · 13.4k tokens · $0.0123"
    assert format_figures(Usage(), 3725) == "1:02:05"
    unknown = Usage(input_tokens=5, unpriced="mystery-1")
    assert format_figures(unknown, 0) == "0:00 · 5 tokens · cost unknown"
    computed = Usage(output_tokens=5, cost_usd=1.5, cost_source="computed")
    assert format_figures(computed, 0).endswith("$1.5000 (computed)")

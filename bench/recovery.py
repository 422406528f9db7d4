"""Recovery figures: kill -9 of the driving process, then `logist job attach`.

1. The fault matrix. For each fault point (`tests/fault_runner.py provision|start|stream|harvest`,
   where `logist run` SIGKILLs itself) and each mock scenario where it makes sense (`edit`,
   `slow` with seconds=2, `question`, `crash`), it runs the job until the process dies, then
   `logist job attach ID --json` without the fault (answering the question when there is
   one).
2. `--iterations` external kills. Each runs a `slow` job (seconds=3) and sends SIGKILL to
   `logist run` after a random delay in [0.05, 2.5] s (seeded), then attaches.

A re-attach **succeeds** when the job settles by what the agent did: `review` (`failed` with
the agent's own error for `crash`), the log's `seq` is exactly 1..N, every line the mock
printed is there exactly once and in order, and no process is left in the job's workspace.
A kill that lands before the job exists counts as neither success nor failure.

3. `--hang-runs` jobs with `--agent-opt scenario=hang --hang-timeout 2`: the time from the
   mock's last output line to `stuck`, taken from the job's own event times (the last
   `message` event to the `status` event that moves to `stuck`).

It prints the re-attach success rate, the median time from spawning `logist job attach` to
its exit with the job settled (cases without a question; a question waits for the answer),
and the median hang-to-stuck time. Medians only; nothing is asserted.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from common import (
    LOGIST,
    base_parser,
    bench_env,
    filesystem_of,
    load_line,
    machine_line,
    make_repo,
    make_tmpdir,
    median,
    ms,
    p90,
)

QUESTION = "Which greeting?"
ANSWER = "hello there"
FAULTS = ("provision", "start", "stream", "harvest")
SCENARIOS: dict[str, list[str]] = {
    "edit": ["--agent-opt", "scenario=edit"],
    "slow": ["--agent-opt", "scenario=slow", "--agent-opt", "seconds=2"],
    "question": ["--agent-opt", "scenario=question", "--agent-opt", f"question={QUESTION}"],
    "crash": ["--agent-opt", "scenario=crash"],
}
KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)
WAIT_ANSWER_S = 15.0
ATTACH_TIMEOUT_S = 60.0


class Outcome:
    """One recovery: did it succeed, how long the attach took, and what went wrong."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ok = False
        self.attach_s: float | None = None
        self.problem = ""
        self.no_job = False
        self.short = False  # the agent had (almost) nothing left to do: edit, crash, harvest


# -- what the mock prints ------------------------------------------------------------------
def expected_events(scenario: str, prompt: str, seconds: float) -> list[tuple[str, str]]:
    edit = [
        ("message", f"Working on: {prompt}"),
        ("tool_call", "read"),
        ("tool_call", "edit"),
        ("file_change", "a.txt"),
        ("usage", "0.0012"),
        ("done", "appended one line"),
    ]
    if scenario == "edit":
        return edit
    if scenario == "slow":
        n = max(1, int(seconds * 4))
        return [*[("message", f"thinking {i}/{n}") for i in range(1, n + 1)], *edit]
    if scenario == "question":
        return [("question", QUESTION), ("message", f"got the answer: {ANSWER}"), *edit]
    return [("message", "starting work"), ("tool_call", "read"),
            ("message", "mock agent: simulated crash (scenario=crash)"),
            ("error", "simulated crash (scenario=crash)")]  # fmt: skip


def agent_events(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    keys = {"message": "text", "tool_call": "tool", "file_change": "path", "question": "text",
            "error": "message", "done": "summary"}  # fmt: skip
    out = []
    for event in events:
        kind, data = event["kind"], event["data"]
        if kind == "usage":
            out.append((kind, f"{data['cost_usd']:g}"))
        elif kind in keys:
            out.append((kind, str(data[keys[kind]])))
    return out


# -- the CLI -----------------------------------------------------------------------------------
def logist(repo: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LOGIST, *args], cwd=repo, env=env, capture_output=True, text=True, check=False,
        stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip


def spawn(repo: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LOGIST, *args], cwd=repo, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


# The test-only runner that SIGKILLs `logist` at a named point (nothing of it ships).
FAULT_RUNNER = Path(__file__).resolve().parent.parent / "tests" / "fault_runner.py"


def spawn_faulty(repo: Path, env: dict[str, str], fault: str, *args: str) -> subprocess.Popen[str]:
    python = str(Path(LOGIST).parent / "python")
    return subprocess.Popen(
        [python, str(FAULT_RUNNER), fault, *args], cwd=repo, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def jobs(repo: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(logist(repo, env, "job", "list", "--json").stdout)
    return found


def status(repo: Path, env: dict[str, str], job_id: str) -> str:
    return str(json.loads(logist(repo, env, "job", "show", job_id, "--json").stdout)["status"])


def poll(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def answer_when_asked(repo: Path, env: dict[str, str], job_id: str) -> bool:
    if not poll(lambda: status(repo, env, job_id) == "needs_input", WAIT_ANSWER_S):
        return False
    return logist(repo, env, "job", "answer", job_id, ANSWER).returncode == 0


def processes_in(directory: Path) -> list[psutil.Process]:
    root = os.path.realpath(directory)
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cwd = proc.cwd()
        except psutil.Error:
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(proc)
    return found


def kill_all(procs: list[psutil.Process]) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=2)


# -- one recovery -------------------------------------------------------------------------------
def attach_and_check(
    outcome: Outcome, repo: Path, env: dict[str, str], job_id: str, scenario: str,
    prompt: str, seconds: float, asks: bool,
) -> None:  # fmt: skip
    """`logist job attach`, then judge the settled job; fills `outcome`."""
    start = time.perf_counter()
    proc = spawn(repo, env, "job", "attach", job_id, "--json")
    try:
        if asks and not answer_when_asked(repo, env, job_id):
            outcome.problem = f"never reached needs_input (it is {status(repo, env, job_id)})"
            logist(repo, env, "job", "cancel", job_id)
            return
        out, err = proc.communicate(timeout=ATTACH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        outcome.problem = "attach did not settle the job"
        logist(repo, env, "job", "cancel", job_id)
        return
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if not asks:
        outcome.attach_s = time.perf_counter() - start
    if not out.strip():
        outcome.problem = f"attach exited {proc.returncode}: {err.strip()[:120]}"
        return
    record = json.loads(out)
    want = "failed" if scenario == "crash" else "review"
    if record["status"] != want:
        outcome.problem = f"settled {record['status']} ({record['status_reason']})"
        return
    if scenario == "crash" and "simulated crash" not in (record["result"]["error"] or ""):
        outcome.problem = f"wrong error: {record['result']['error']}"
        return
    log = logist(repo, env, "job", "log", job_id, "--json").stdout
    events = [json.loads(line) for line in log.splitlines() if line.strip()]
    if [e["seq"] for e in events] != list(range(1, len(events) + 1)):
        outcome.problem = "seq has a gap or a duplicate"
        return
    if agent_events(events) != expected_events(scenario, prompt, seconds):
        outcome.problem = "agent events lost or repeated"
        return
    workspace = Path(record["workspace"]["path"])
    if not poll(lambda: not processes_in(workspace), 10):
        outcome.problem = "processes left in the workspace"
        kill_all(processes_in(workspace))
        return
    outcome.ok = True


def fault_case(root: Path, env: dict[str, str], fault: str, scenario: str) -> Outcome:
    outcome = Outcome(f"{fault}/{scenario}")
    outcome.short = scenario in ("edit", "crash") or fault == "harvest"
    repo = make_repo(root / f"{fault}-{scenario}", n_files=10)
    prompt = f"recover {fault} {scenario}"
    argv = ["run", "--json", "--file", "a.txt", "--prompt", prompt, *SCENARIOS[scenario]]
    runner = spawn_faulty(repo, env, fault, *argv)
    if scenario == "question" and fault == "harvest":  # answered before it reaches harvest
        poll(lambda: bool(jobs(repo, env)), 20)
        answer_when_asked(repo, env, jobs(repo, env)[0]["id"])
    try:
        runner.communicate(timeout=ATTACH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        runner.kill()
        runner.communicate()
    if runner.returncode not in KILLED:
        outcome.problem = f"logist run exited {runner.returncode}, not -9"
        return outcome
    (job,) = jobs(repo, env)
    asks = scenario == "question" and fault != "harvest"
    attach_and_check(outcome, repo, env, job["id"], scenario, prompt, 2.0, asks)
    return outcome


def random_kill(root: Path, env: dict[str, str], index: int, delay: float) -> Outcome:
    outcome = Outcome(f"kill after {delay:.2f} s")
    repo = make_repo(root / f"random-{index}", n_files=10)
    prompt = f"random kill {index}"
    argv = ["run", "--json", "--file", "a.txt", "--prompt", prompt, *SCENARIOS["slow"]]
    argv[-1] = "seconds=3"
    runner = spawn(repo, env, *argv)
    time.sleep(delay)
    runner.kill()
    runner.communicate()
    found = jobs(repo, env)
    if not found:
        outcome.no_job = True
        return outcome
    attach_and_check(outcome, repo, env, found[0]["id"], "slow", prompt, 3.0, asks=False)
    return outcome


def hang_to_stuck(root: Path, env: dict[str, str], index: int) -> tuple[float, float] | None:
    """(last output line -> stuck, wall time of `logist run`) from one hanging job."""
    repo = make_repo(root / f"hang-{index}", n_files=10)
    start = time.perf_counter()
    proc = logist(repo, env, "run", "--agent-opt", "scenario=hang", "--hang-timeout", "2",
                  "--prompt", "hang", "--json")  # fmt: skip
    wall = time.perf_counter() - start
    record = json.loads(proc.stdout)
    if record["status"] != "stuck":
        return None
    log = logist(repo, env, "job", "log", record["id"], "--json").stdout
    events = [json.loads(line) for line in log.splitlines() if line.strip()]
    last_output = max(e["time"] for e in events if e["kind"] == "message")
    stuck = next(e["time"] for e in events if e["kind"] == "status" and e["data"]["to"] == "stuck")
    return stuck - last_output, wall


# -- main -----------------------------------------------------------------------------------------
def main() -> int:
    parser = base_parser(__doc__.splitlines()[0], default_dir="tmpfs")
    parser.add_argument("--iterations", type=int, default=10, help="random kills (default 10)")
    parser.add_argument("--hang-runs", type=int, default=5, help="hang jobs (default 5)")
    parser.add_argument("--seed", type=int, default=20261121)
    parser.add_argument("--no-matrix", action="store_true", help="skip the fault matrix")
    args = parser.parse_args()
    if args.quick:
        args.iterations, args.hang_runs = min(args.iterations, 3), min(args.hang_runs, 2)
    root = make_tmpdir("logist-bench-recovery-", args.dir)
    env = bench_env({"LOGIST_WORKSPACE_ROOT": str(root / "worktrees")})
    env.pop("LOGIST_FAULT", None)
    print(f"# recovery: {machine_line()}")
    print(f"# {load_line()}; files on {filesystem_of(root)} ({root})")
    outcomes: list[Outcome] = []
    try:
        if not args.no_matrix:
            print("\n== fault matrix (tests/fault_runner.py, then job attach)")
            for fault in FAULTS:
                for scenario in SCENARIOS:
                    if fault == "harvest" and scenario == "crash":
                        continue
                    outcome = fault_case(root, env, fault, scenario)
                    outcomes.append(outcome)
                    report(outcome)
        rng = random.Random(args.seed)
        print(f"\n== {args.iterations} external kill -9 of `logist run` (slow, 3 s)")
        for i in range(args.iterations):
            outcome = random_kill(root, env, i, rng.uniform(0.05, 2.5))
            outcomes.append(outcome)
            report(outcome)
        stuck: list[tuple[float, float]] = []
        print(f"\n== {args.hang_runs} hanging jobs, --hang-timeout 2")
        for i in range(args.hang_runs):
            sample = hang_to_stuck(root, env, i)
            if sample is None:
                print(f"{'hang ' + str(i):<28} did not end stuck")
                continue
            stuck.append(sample)
            print(f"{'hang ' + str(i):<28} last output -> stuck {ms(sample[0]):7.0f} ms, "
                  f"run {sample[1]:.2f} s")  # fmt: skip
        summary = summarize(outcomes, stuck)
    finally:
        if args.keep:
            print(f"# kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def report(outcome: Outcome) -> None:
    if outcome.no_job:
        verdict = "killed before the job existed"
    elif outcome.ok:
        took = "" if outcome.attach_s is None else f" (attach {outcome.attach_s:.2f} s)"
        verdict = "re-attached, settled" + took
    else:
        verdict = "FAILED: " + outcome.problem
    print(f"{outcome.name:<28} {verdict}")
    sys.stdout.flush()


def summarize(outcomes: list[Outcome], stuck: list[tuple[float, float]]) -> dict[str, Any]:
    tried = [o for o in outcomes if not o.no_job]
    ok = [o for o in tried if o.ok]
    attach_times = [o.attach_s for o in ok if o.attach_s is not None]
    short_times = [o.attach_s for o in ok if o.attach_s is not None and o.short]
    gaps = [s[0] for s in stuck]
    walls = [s[1] for s in stuck]
    print("\n== summary")
    rate = len(ok) / len(tried) if tried else float("nan")
    print(f"re-attach success rate           {len(ok)}/{len(tried)} = {100 * rate:.0f} %"
          f" ({len(outcomes) - len(tried)} kills before the job existed)")  # fmt: skip
    for o in tried:
        if not o.ok:
            print(f"  failed: {o.name}: {o.problem}")
    if attach_times:
        print(f"attach start -> settled           median {median(attach_times):.2f} s, "
              f"p90 {p90(attach_times):.2f} s (n={len(attach_times)}, no question)")  # fmt: skip
    if short_times:
        print(f"  of which nothing left to run    median {median(short_times):.2f} s "
              f"(n={len(short_times)}: edit, crash, any kill at harvest)")  # fmt: skip
    if gaps:
        print(f"hang (last output) -> stuck       median {ms(median(gaps)):.0f} ms "
              f"(--hang-timeout 2; n={len(gaps)})")  # fmt: skip
        print(f"`logist run` of a hanging job     median {median(walls):.2f} s wall")
    return {
        "reattach_ok": len(ok),
        "reattach_tried": len(tried),
        "killed_before_job": len(outcomes) - len(tried),
        "failures": {o.name: o.problem for o in tried if not o.ok},
        "attach_to_settled_median_s": median(attach_times) if attach_times else None,
        "attach_short_median_s": median(short_times) if short_times else None,
        "hang_to_stuck_median_s": median(gaps) if gaps else None,
        "hang_run_wall_median_s": median(walls) if walls else None,
    }


if __name__ == "__main__":
    sys.exit(main())

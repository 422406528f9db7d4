"""(b) `logist run` with the `noop` mock agent against running the mock agent directly.

logist: `logist run --agent mock --agent-opt scenario=noop --prompt x --json` as a
subprocess in a small repository: interpreter start-up, snapshot, worktree, store, agent
spawn, output streaming, harvest, until the job is in review.
raw: `python -m logist_server.providers.agents.mock_program --prompt x --scenario noop` as a
subprocess in the same repository (the same program the job runs, without logist).

Measured alternately in the same run; each job is deleted (worktree, branch, record)
outside the timed window. Wall time and CPU time (user + system of the process and the
children it waited for) are reported; the job's own event times give a breakdown.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    LOGIST,
    PYTHON,
    Row,
    base_parser,
    bench_env,
    children_cpu,
    filesystem_of,
    load_line,
    machine_line,
    make_repo,
    make_tmpdir,
    median,
    ms,
    phase,
    prepare_process_env,
    print_table,
    release_tmpdir,
    run_measured,
)
from logist_server.domain.model import JobEvent
from logist_server.engine.facade import Engine

RUN_ARGV = [LOGIST, "run", "--agent", "mock", "--agent-opt", "scenario=noop", "--prompt", "x"]
MOCK_ARGV = [PYTHON, "-m", "logist_server.providers.agents.mock_program", "--prompt", "x"]
MOCK_ARGV += ["--scenario", "noop"]


def logist_run(repo: Path, env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall, cpu, wall-clock time.time() at spawn, job id) of one `logist run --json`."""
    cpu_before = children_cpu()
    wall_start = time.time()
    start = time.perf_counter()
    proc = subprocess.run(
        [*RUN_ARGV, "--json"], cwd=repo, env=env, capture_output=True, check=False
    )
    elapsed = time.perf_counter() - start
    cpu = children_cpu() - cpu_before
    if proc.returncode != 0:
        raise RuntimeError(f"logist run exited {proc.returncode}: {proc.stderr.decode().strip()}")
    record = json.loads(proc.stdout)
    if record.get("status") != "review":
        raise RuntimeError(f"logist run ended {record.get('status')}")
    return elapsed, cpu, wall_start, str(record["id"])


def timeline(events: list[JobEvent], spawned_at: float, exited_at: float) -> dict[str, float]:
    """Seconds between the milestones of one job, from its stored event times."""
    marks: dict[str, float] = {}
    for event in events:
        key = f"status:{event.data.get('to')}" if event.kind == "status" else event.kind
        marks.setdefault(key, event.time)
    agent_events = [
        e.time for e in events if e.kind not in ("status", "created", "workspace", "started")
    ]
    points = [
        ("process spawn -> `created` event", spawned_at, marks.get("created")),
        ("`created` -> `started` (agent spawned)", marks.get("created"), marks.get("started")),
        (
            "`started` -> last agent event",
            marks.get("started"),
            max(agent_events) if agent_events else None,
        ),
        (
            "last agent event -> `review` (harvest)",
            max(agent_events) if agent_events else None,
            marks.get("status:review"),
        ),
        ("`review` -> process exit", marks.get("status:review"), exited_at),
    ]
    return {name: b - a for name, a, b in points if a is not None and b is not None}


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50, help="files in the repository")
    parser.add_argument("--reps", type=int, help="repetitions of each (default 15, quick 5)")
    args = parser.parse_args()
    reps = args.reps or (5 if args.quick else 15)

    tmp = make_tmpdir("logist-bench-run-", args.dir)
    try:
        print(f"machine: {machine_line()}")
        print(f"temporary files (repository, worktrees, store) on {filesystem_of(tmp)}: {tmp}")
        repo = make_repo(tmp / "repo", args.files)
        prepare_process_env(tmp / "worktrees")
        env = bench_env()
        engine = Engine.for_path(repo)

        # Warm-up: .pyc files, page cache, the store.
        engine.delete(logist_run(repo, env)[3])
        run_measured(MOCK_ARGV, repo, env)

        wall: dict[str, list[float]] = {"logist": [], "mock": []}
        cpu: dict[str, list[float]] = {"logist": [], "mock": []}
        phases: list[dict[str, float]] = []
        with phase(f"measuring ({reps} repetitions of each, alternating)"):
            for rep in range(reps):
                order = ("mock", "logist") if rep % 2 == 0 else ("logist", "mock")
                for which in order:
                    if which == "mock":
                        w, c = run_measured(MOCK_ARGV, repo, env)
                    else:
                        w, c, spawned_at, job_id = logist_run(repo, env)
                        events = engine.store.events(job_id)
                        phases.append(timeline(events, spawned_at, spawned_at + w))
                        engine.delete(job_id)
                    wall[which].append(w)
                    cpu[which].append(c)

        print(load_line())
        rows = [
            Row("logist run noop (wall)", wall["logist"], wall["mock"]),
            Row("logist run noop (cpu)", cpu["logist"], cpu["mock"]),
            Row("mock agent directly (wall)", wall["mock"]),
            Row("mock agent directly (cpu)", cpu["mock"]),
        ]
        print_table("logist run --agent mock noop vs the mock agent run directly", rows)
        row = rows[0]
        print(
            f"logist run: {row.ratio:.2f}x the mock run directly "
            f"({row.median_ms - (row.raw_median_ms or 0):+.0f} ms; median of the paired "
            f"ratios {row.paired_ratio:.2f}x)"
        )
        print("\n-- where `logist run` spends its time (medians, from the job's event times):")
        for key in phases[0]:
            values = [p[key] for p in phases if key in p]
            print(f"   {key:<42} {ms(median(values)):8.1f} ms")
        if args.json:
            results: dict[str, Any] = {
                "machine": machine_line(),
                "filesystem": filesystem_of(tmp),
                "rows": [r.as_dict() for r in rows],
            }
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        release_tmpdir(tmp, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

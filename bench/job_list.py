"""(c) `logist job list` with 10,000 jobs in the store.

The store is filled through `JobStore.insert` with realistic, settled records (workspace,
a step with its runtime handle, diff stats, usage, some with a target) and five events each.
Then, alternately in the same run:
  - `logist job list --json` and `logist job list` as subprocesses, through the installed
    console script (interpreter start-up, finding the repository, opening the store,
    listing, printing: what a user or a script waits for). The script's entry point
    (`cli/entry.py`) serves `job list` on the lean path (`cli/fast_list.py`);
  - the same two through the full CLI (`logist_server.cli.main.main`), i.e. the command as
    it was before the lean path; the script checks that the output is byte-identical;
  - `python -c pass` with the same interpreter: the raw reference for a subprocess;
  - `logist --version`: start-up and the full CLI's imports;
  - the floor: a standard-library script that prints the same bytes (`git rev-parse` +
    `sqlite3`, streamed), and a what-if through the git and store modules only;
  - in-process `JobStore.list_raw()` and `JobStore.list_jobs()` on an open store, and
    opening a store then listing (what the language server does on each request).
A separate fresh-interpreter run times each phase of the lean `--json` path.
"""

from __future__ import annotations

import gc
import json
import random
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
    filesystem_of,
    load_line,
    machine_line,
    make_repo,
    make_tmpdir,
    median,
    ms,
    phase,
    print_table,
    release_tmpdir,
    run_measured,
    time_call,
)
from logist_server.domain.model import (
    AgentSpec,
    DiffStats,
    Job,
    JobResult,
    JobStatus,
    LineRange,
    Step,
    Target,
    Usage,
    Workspace,
)
from logist_server.providers.runtimes.host import host_handle
from logist_server.store.job_store import EventSpec, JobStore

ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # the store's job id alphabet
BAR_MS = 100.0

PROMPTS = [
    "Add a greeting",
    "Fix the off-by-one error in the pagination helper",
    "Refactor the configuration loader so that environment variables override the file",
    "Write unit tests for the date parsing module\n\nCover leap years and time zones.",
    "Rename `fetch_all` to `fetch_pages` everywhere and update the callers",
    "Explain why the cache is invalidated twice and remove the second invalidation",
]
SETTLED = [
    (JobStatus.ACCEPTED, 5),
    (JobStatus.REJECTED, 2),
    (JobStatus.REVIEW, 2),
    (JobStatus.FAILED, 1),
    (JobStatus.CANCELLED, 1),
]


def job_id(created_at: float, rng: random.Random, taken: set[str]) -> str:
    """An id in the store's format (time-sortable, 8 characters), unique in this store."""
    while True:
        n = ((int(created_at) & 0xFFFFF) << 20) | rng.getrandbits(20)
        chars = []
        for _ in range(8):
            chars.append(ID_ALPHABET[n & 31])
            n >>= 5
        candidate = "".join(reversed(chars))
        if candidate not in taken:
            taken.add(candidate)
            return candidate


def make_job(i: int, repo: Path, created_at: float, rng: random.Random, taken: set[str]) -> Job:
    """A settled job as the engine leaves it: workspace, one step, result and usage."""
    jid = job_id(created_at, rng, taken)
    status = rng.choices([s for s, _ in SETTLED], weights=[w for _, w in SETTLED])[0]
    files = [f"src/module_{rng.randrange(200):03d}.py" for _ in range(rng.randint(1, 4))]
    target = None
    if i % 3 == 0:
        start = rng.randint(1, 200)
        target = Target(file=files[0], range=LineRange(start, start + rng.randint(0, 30)))
    finished = created_at + rng.uniform(5, 600)
    error = "agent exited with status 3" if status == JobStatus.FAILED else None
    step = Step(
        number=1,
        started_at=created_at + 0.3,
        finished_at=finished,
        exit_code=3 if status == JobStatus.FAILED else 0,
        handle=host_handle(rng.randint(1000, 99999), created_at),
        output_offset=rng.randint(500, 200_000),
    )
    diff = None
    if status != JobStatus.FAILED:
        diff = DiffStats(
            files=len(files),
            insertions=rng.randint(1, 300),
            deletions=rng.randint(0, 120),
            paths=files,
        )
    return Job(
        id=jid,
        prompt=PROMPTS[i % len(PROMPTS)],
        repo=str(repo),
        agent=AgentSpec("mock", None, {"scenario": "edit"}),
        target=target,
        status=status,
        created_at=created_at,
        updated_at=finished,
        base_commit=f"{rng.getrandbits(160):040x}",
        workspace=Workspace(
            path=f"/home/dev/.cache/logist/worktrees/repo-0a1b2c3d/{jid}",
            branch=f"logist/{jid}",
            base_commit=f"{rng.getrandbits(160):040x}",
        ),
        steps=[step],
        result=JobResult(
            diff=diff,
            result_commit=None if diff is None else f"{rng.getrandbits(160):040x}",
            usage=Usage(
                input_tokens=rng.randint(1000, 90_000),
                output_tokens=rng.randint(100, 9000),
                cost_usd=round(rng.uniform(0.001, 0.9), 4),
                turns=rng.randint(1, 12),
            ),
            error=error,
            exit_code=step.exit_code,
        ),
        status_reason=error or ("1 file(s) changed, +1 -0" if diff else None),
    )


def populate(store: JobStore, repo: Path, n: int) -> None:
    rng = random.Random(42)
    taken: set[str] = set()
    start = time.time() - 60 * 86400  # spread over the last 60 days
    for i in range(n):
        created_at = start + i * (60 * 86400 / n) + rng.uniform(0, 30)
        job = make_job(i, repo, created_at, rng, taken)
        events: list[EventSpec] = [
            ("created", {"status": "pending"}),
            ("status", {"from": "pending", "to": "provisioning"}),
            ("message", {"text": "Working on it"}),
            ("done", {"success": True, "summary": "appended one line"}),
            ("status", {"from": "running", "to": job.status.value}),
        ]
        store.insert(job, events)


# What `logist job list --json` does on the lean path, phase by phase, timed inside a fresh
# interpreter (so imports are cold, as in the real command). Same functions as the command.
PHASES_SCRIPT = """
import time
t = [time.perf_counter()]
import sys, json
from logist_server.cli import entry, fast_list
t.append(time.perf_counter())
request = fast_list.parse_argv(["job", "list", "--json"])
t.append(time.perf_counter())
fast_list._sqlite()
t.append(time.perf_counter())
db = fast_list.open_store(".")
t.append(time.perf_counter())
rows = fast_list.iter_records(db, None)
first = next(rows, None)
t.append(time.perf_counter())
fast_list.write_json(first, rows)
sys.stdout.flush()
t.append(time.perf_counter())
db.close()
t.append(time.perf_counter())
names = ["import cli.entry + cli.fast_list", "parse the arguments", "import _sqlite3",
         "find the repository (git) + open", "query + first 2,000 records",
         "the rest: fetch, join, write", "close the store"]
sys.stderr.write(json.dumps({n: t[i + 1] - t[i] for i, n in enumerate(names)}))
"""

# The full CLI, as the `logist` console script was before the lean path.
FULL_CLI = "import sys; from logist_server.cli.main import main; sys.exit(main())"


# The same listing through only the modules it needs (repository discovery and the store),
# without the engine, asyncio or the CLI: a what-if for a leaner `job list` path.
LEAN_SCRIPT = """
import sys
from pathlib import Path
from logist_server.vcs.git import find_repo
from logist_server.store.job_store import EventSpec, JobStore
info = find_repo(Path.cwd())
raw = JobStore(info.root, info.common_dir).list_raw()
sys.stdout.buffer.write(b"[" + b",".join(raw) + b"]\\n")
"""


# The floor for this output: the standard library only (git for the repository root,
# sqlite3 for the records, streamed to stdout), no logist module at all.
FLOOR_SCRIPT = """
import sqlite3, subprocess, sys
root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True,
                      check=True).stdout.decode().strip()
db = sqlite3.connect(root + "/.logist/logist.db")
out = sys.stdout.buffer
out.write(b"[")
cursor = db.execute("SELECT record FROM jobs ORDER BY created_at, id")
first = True
while rows := cursor.fetchmany(1000):
    out.write((b"" if first else b",") + b",".join(r[0] for r in rows))
    first = False
out.write(b"]\\n")
"""


def cli_phases(repo: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """(wall time of the subprocess, seconds per phase inside it)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "-c", PHASES_SCRIPT], cwd=repo, env=env, capture_output=True, check=True
    )
    wall = time.perf_counter() - start
    return wall, json.loads(proc.stderr.decode().strip().splitlines()[-1])


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in the store")
    parser.add_argument("--reps", type=int, help="repetitions (default 15, quick 5)")
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="let the subprocesses cache bytecode (in a private PYTHONPYCACHEPREFIX) even "
        "when PYTHONDONTWRITEBYTECODE is set, as an ordinary installation does",
    )
    args = parser.parse_args()
    reps = args.reps or (5 if args.quick else 15)

    tmp = make_tmpdir("logist-bench-list-", args.dir)
    try:
        print(f"machine: {machine_line()}")
        print(f"temporary files (repository, store) on {filesystem_of(tmp)}: {tmp}")
        repo = make_repo(tmp / "repo", 20)
        store = JobStore(repo, repo / ".git")
        with phase(f"inserting {args.jobs} jobs through JobStore.insert"):
            populate(store, repo, args.jobs)
        db_size = sum(p.stat().st_size for p in (repo / ".logist").glob("logist.db*"))
        env = bench_env({"LOGIST_WORKSPACE_ROOT": str(tmp / "worktrees")})
        if args.bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        bytecode = "off" if env.get("PYTHONDONTWRITEBYTECODE") else "on"

        commands = {
            "json": [LOGIST, "job", "list", "--json"],
            "text": [LOGIST, "job", "list"],
            "full_json": [PYTHON, "-c", FULL_CLI, "job", "list", "--json"],
            "full_text": [PYTHON, "-c", FULL_CLI, "job", "list"],
            "pass": [PYTHON, "-c", "pass"],
            "version": [LOGIST, "--version"],
            "lean": [PYTHON, "-c", LEAN_SCRIPT],
            "floor": [PYTHON, "-c", FLOOR_SCRIPT],
        }

        def list_jobs_without_gc() -> None:
            gc.disable()
            try:
                store.list_jobs()
            finally:
                gc.enable()

        def open_and_list() -> None:
            fresh = JobStore(repo, repo / ".git")
            fresh.list_raw()
            fresh.close()

        # Sanity checks, and a warm-up for the page cache and .pyc files.
        def output(argv: list[str]) -> bytes:
            return subprocess.run(argv, cwd=repo, env=env, capture_output=True, check=True).stdout

        out = output(commands["json"])
        listed = len(json.loads(out))
        if listed != args.jobs:
            raise RuntimeError(f"logist job list printed {listed} jobs, expected {args.jobs}")
        for key in ("full_json", "lean", "floor"):
            if output(commands[key]) != out:
                raise RuntimeError(f"{key} printed something else than logist job list --json")
        if output(commands["text"]) != output(commands["full_text"]):
            raise RuntimeError("logist job list and the full CLI's job list differ")
        for argv in commands.values():
            run_measured(argv, repo, env)
        cli_phases(repo, env)
        phase_runs: list[dict[str, float]] = []
        phase_walls: list[float] = []
        samples: dict[str, list[float]] = {
            k: [] for k in (*commands, "raw", "jobs", "jobs_nogc", "open")
        }
        cpu: dict[str, list[float]] = {k: [] for k in commands}
        with phase(f"measuring ({reps} repetitions, alternating)"):
            for _ in range(reps):
                for key, argv in commands.items():
                    wall, used = run_measured(argv, repo, env)
                    samples[key].append(wall)
                    cpu[key].append(used)
                samples["raw"].append(time_call(store.list_raw))
                samples["jobs"].append(time_call(store.list_jobs))
                samples["jobs_nogc"].append(time_call(list_jobs_without_gc))
                samples["open"].append(time_call(open_and_list))
                wall, phases = cli_phases(repo, env)
                phase_walls.append(wall)
                phase_runs.append(phases)

        rows = [
            Row("logist job list --json (subprocess)", samples["json"], samples["pass"]),
            Row("logist job list (subprocess)", samples["text"], samples["pass"]),
            Row("before: full CLI, job list --json", samples["full_json"], samples["pass"]),
            Row("before: full CLI, job list", samples["full_text"], samples["pass"]),
            Row("logist --version (subprocess)", samples["version"], samples["pass"]),
            Row("python -c pass (subprocess)", samples["pass"]),
            Row("JobStore.list_raw() (in-process)", samples["raw"]),
            Row("JobStore.list_jobs() (in-process)", samples["jobs"]),
            Row("JobStore() + list_raw() (in-process)", samples["open"]),
            Row("what-if: list_jobs(), gc disabled (in-process)", samples["jobs_nogc"]),
            Row("what-if: git + store modules only (subprocess)", samples["lean"], samples["pass"]),
            Row("what-if: stdlib only, streamed (subprocess)", samples["floor"], samples["pass"]),
        ]
        cpu_rows = [
            Row("logist job list --json (subprocess)", cpu["json"], cpu["pass"]),
            Row("logist job list (subprocess)", cpu["text"], cpu["pass"]),
            Row("before: full CLI, job list --json", cpu["full_json"], cpu["pass"]),
            Row("before: full CLI, job list", cpu["full_text"], cpu["pass"]),
            Row("logist --version (subprocess)", cpu["version"], cpu["pass"]),
            Row("what-if: git + store modules only (subprocess)", cpu["lean"], cpu["pass"]),
            Row("what-if: stdlib only, streamed (subprocess)", cpu["floor"], cpu["pass"]),
        ]
        print(
            f"store: {args.jobs} jobs, {5 * args.jobs} events, "
            f"{db_size / 1e6:.1f} MB; `logist job list --json` prints {len(out) / 1e6:.1f} MB"
        )
        print(load_line())
        print(f"bytecode caching in the subprocesses: {bytecode} (see --bytecode)")
        print_table(f"job list over {args.jobs} jobs, wall time (raw = python -c pass)", rows)
        print_table("the same subprocesses, CPU time (user + system)", cpu_rows)
        floor_rows = [
            Row("logist job list --json (subprocess)", samples["json"], samples["floor"]),
            Row("logist job list (subprocess)", samples["text"], samples["floor"]),
            Row("before: full CLI, job list --json", samples["full_json"], samples["floor"]),
        ]
        print_table("against the floor (raw = the standard-library script, wall time)", floor_rows)
        print()
        for row, floor_row in zip(rows[:2], floor_rows[:2], strict=True):
            verdict = "under" if row.median_ms < BAR_MS else "NOT under"
            print(
                f"{row.name}: median {row.median_ms:.1f} ms, {verdict} the {BAR_MS:.0f} ms bar; "
                f"{floor_row.ratio:.2f}x the floor (paired {floor_row.paired_ratio:.2f}x)"
            )
        speedup = median(samples["full_json"]) / median(samples["json"])
        print(f"the lean path vs the full CLI for --json: {speedup:.2f}x faster")
        startup = median(samples["version"]) - median(samples["pass"])
        print(
            f"interpreter {ms(median(samples['pass'])):.1f} ms; the full CLI's imports and "
            f"argument parsing {ms(startup):.1f} ms (logist --version - python -c pass)"
        )
        print("\n-- where `logist job list --json` spends its time (lean path, medians):")
        inside = [sum(p.values()) for p in phase_runs]
        outside = [w - i for w, i in zip(phase_walls, inside, strict=True)]
        print(f"   {'interpreter start-up and exit':<40} {ms(median(outside)):8.1f} ms")
        for key in phase_runs[0]:
            print(f"   {key:<40} {ms(median([p[key] for p in phase_runs])):8.1f} ms")
        if args.json:
            results: dict[str, Any] = {
                "machine": machine_line(),
                "filesystem": filesystem_of(tmp),
                "jobs": args.jobs,
                "bytecode": bytecode,
                "rows": [r.as_dict() for r in rows],
                "cpu_rows": [r.as_dict() for r in cpu_rows],
                "floor_rows": [r.as_dict() for r in floor_rows],
            }
            Path(args.json).write_text(json.dumps(results, indent=2))
        store.close()
    finally:
        release_tmpdir(tmp, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

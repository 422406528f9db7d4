"""(a) Job start overhead on a repository of 10,000 files, against a raw `git worktree add`.

logist: in-process, `Engine.create_job` then `Engine.drive` with the `noop` mock agent; the
time runs from just before `create_job` to the moment the `started` job event reaches the
listener (the event is stored right after the runtime has spawned the agent process).
raw: `git worktree add -q -b b<i> <tmp>/raw<i> HEAD` as a subprocess, same repository.

process: the whole `logist run --agent mock --agent-opt scenario=noop` as a subprocess, with
a cold interpreter and no engine warmed up: from spawning it to the job's stored `started`
event (the same end point as the in-process figure, read from the event's own time), and
from spawning it to its exit (the whole run: imports, snapshot, worktree, agent, harvest,
review, teardown). This is what a user of the CLI waits for; the in-process figure isolates
the engine's share.

what-if: the same git work with the snapshot overlapped with the checkout (see
`overlapped_start`), to show what that change to logist would buy.

They are measured alternately in the same run, for a clean working tree and for one with
an uncommitted change and an untracked file (the snapshot path). Worktrees are removed
between repetitions, outside the timed window. A breakdown of where logist's time goes is
printed too: the git commands, store transactions and fsynced writes inside the window are
timed by wrapping the functions (a few microseconds each), without changing their behaviour.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import logist_server.support.fsutil as fsutil_mod
import logist_server.vcs.git as git_mod
from common import (
    LOGIST,
    Row,
    base_parser,
    bench_env,
    children_cpu,
    filesystem_of,
    git,
    load_line,
    machine_line,
    make_dirty,
    make_repo,
    make_tmpdir,
    median,
    ms,
    phase,
    prepare_process_env,
    print_table,
    release_tmpdir,
)
from logist_server.domain.model import JobEvent, JobStatus
from logist_server.domain.requests import JobRequest
from logist_server.engine.facade import Engine
from logist_server.providers.runtimes.host import HostRuntime
from logist_server.store.job_store import JobStore


class Recorder:
    """Wraps functions so that their time inside the measured window is summed per label."""

    def __init__(self) -> None:
        self.active = False
        self.current: dict[str, float] = defaultdict(float)
        self.per_rep: list[dict[str, float]] = []

    def add(self, label: str, seconds: float) -> None:
        if self.active:
            self.current[label] += seconds

    def wrap(self, label: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                name = label(*args, **kwargs) if callable(label) else label
                self.add(name, time.perf_counter() - start)

        return wrapper

    def begin(self) -> None:
        self.current = defaultdict(float)
        self.active = True

    def end(self) -> None:
        self.active = False
        self.per_rep.append(dict(self.current))


def _git_label(args: Any, *_: Any, **__: Any) -> str:
    words = list(args[:2]) if args and args[0] == "worktree" else list(args[:1])
    return "git " + " ".join(words)


def _replace_everywhere(original: Any, replacement: Any) -> None:
    """Point every reference to `original` in the loaded logist_server modules at the
    replacement (modules that did `from .git import git` hold their own reference)."""
    for name, module in list(sys.modules.items()):
        if not (name == "logist_server" or name.startswith("logist_server.")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, replacement)


def install_recorder() -> Recorder:
    """Time the pieces of the start path: each git command, store transactions, fsynced
    writes and the spawn. Only the lowest-level git helper is wrapped, so nothing is
    counted twice; what is not covered shows as the remainder."""
    rec = Recorder()
    _replace_everywhere(git_mod.git, rec.wrap(_git_label, git_mod.git))
    _replace_everywhere(
        fsutil_mod.atomic_write, rec.wrap("atomic_write (fsync)", fsutil_mod.atomic_write)
    )
    for method in ("insert", "update", "transition", "get"):
        if hasattr(JobStore, method):
            setattr(JobStore, method, rec.wrap(f"store.{method}", getattr(JobStore, method)))
    HostRuntime.start = rec.wrap("runtime.start (spawn)", HostRuntime.start)  # type: ignore[method-assign]
    return rec


def cpu_now() -> float:
    """CPU seconds of this process (every thread) plus its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime + children_cpu()


def raw_worktree_add(repo: Path, raw_dir: Path, i: int) -> tuple[float, float]:
    """(wall, CPU) seconds of one raw `git worktree add`; removed afterwards."""
    path = raw_dir / f"raw{i}"
    cpu = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        ["git", "worktree", "add", "-q", "-b", f"b{i}", str(path), "HEAD"],
        cwd=repo,
        env=bench_env(),
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    cpu = children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"git worktree add failed: {proc.stderr.decode().strip()}")
    git(["worktree", "remove", "--force", "--force", str(path)], repo)
    git(["branch", "-D", "-q", f"b{i}"], repo)
    return elapsed, cpu


def overlapped_start(repo: Path, raw_dir: Path, i: int) -> tuple[float, float]:
    """What-if, git only: the snapshot taken while the worktree of HEAD is checked out.

    `git worktree add` of HEAD starts at once; meanwhile the snapshot is taken as logist
    takes it (a copy of the index, `add -A`, `write-tree`, `commit-tree` when it differs
    from HEAD); when it differs, `git reset -q --keep <snapshot>` in the worktree moves
    the branch and rewrites only the changed files. Removed afterwards."""
    path = raw_dir / f"overlap{i}"
    branch = f"o{i}"
    env = bench_env()
    cpu = children_cpu()
    start = time.perf_counter()
    head = git(["rev-parse", "HEAD", "HEAD^{tree}"], repo).split()
    checkout = subprocess.Popen(
        ["git", "worktree", "add", "-q", "-b", branch, str(path), head[0]],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory(prefix="logist-bench-index-") as tmp:
        index = Path(tmp) / "index"
        shutil.copyfile(repo / ".git" / "index", index)
        index_env = {**env, "GIT_INDEX_FILE": str(index)}
        for argv in (["git", "add", "-A", "--", "."], ["git", "write-tree"]):
            proc = subprocess.run(argv, cwd=repo, env=index_env, capture_output=True, check=True)
        tree = proc.stdout.decode().strip()
    base = head[0]
    if tree != head[1]:
        base = git(["commit-tree", tree, "-p", head[0], "-m", "snapshot"], repo)
    if checkout.wait() != 0:
        raise RuntimeError("git worktree add failed")
    if base != head[0]:
        git(["reset", "-q", "--keep", base], path)
    elapsed = time.perf_counter() - start
    cpu = children_cpu() - cpu
    git(["worktree", "remove", "--force", "--force", str(path)], repo)
    git(["branch", "-D", "-q", branch], repo)
    return elapsed, cpu


def process_run(repo: Path, engine: Engine) -> tuple[float, float, float]:
    """(spawn -> `started` event, spawn -> exit, CPU) seconds of one whole `logist run`
    process; the job is deleted afterwards, outside the window."""
    argv = [LOGIST, "run", "--json", "--agent", "mock", "--agent-opt", "scenario=noop",
            "--prompt", "benchmark: the whole process"]  # fmt: skip
    cpu = children_cpu()
    wall_start = time.time()  # the clock of the stored event times
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=repo, env=bench_env(), capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    cpu = children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"logist run exited {proc.returncode}: {proc.stderr.decode().strip()}")
    record = json.loads(proc.stdout)
    if record["status"] != JobStatus.REVIEW.value:
        raise RuntimeError(f"job {record['id']} ended {record['status']}")
    events = engine.store.events(record["id"])
    started = next(e.time for e in events if e.kind == "started")
    engine.delete(record["id"])
    return started - wall_start, elapsed, cpu


class LogistRun:
    """One job: create, drive to review, note when `started` arrived, then delete it."""

    def __init__(self, engine: Engine, rec: Recorder) -> None:
        self.engine = engine
        self.rec = rec

    async def _one(self) -> tuple[float, float, dict[str, float]]:
        marks: dict[str, float] = {}
        cpu: dict[str, float] = {}

        def listener(events: list[JobEvent]) -> None:
            now = time.perf_counter()
            for event in events:
                key = f"status:{event.data.get('to')}" if event.kind == "status" else event.kind
                marks.setdefault(key, now)
                if event.kind == "started" and self.rec.active:
                    cpu.setdefault("started", cpu_now())
                    self.rec.end()

        request = JobRequest(
            prompt="benchmark: start overhead",
            agent="mock",
            agent_options={"scenario": "noop"},
        )
        self.rec.begin()
        cpu["t0"] = cpu_now()
        t0 = time.perf_counter()
        job = self.engine.create_job(request)
        marks["created"] = time.perf_counter()
        final = await self.engine.drive(job.id, listener)
        if self.rec.active:
            self.rec.end()
        if final.status != JobStatus.REVIEW or "started" not in marks:
            raise RuntimeError(f"job {job.id} ended {final.status}: {final.status_reason}")
        self.engine.delete(job.id)
        # Time between consecutive milestones (those the engine emitted, in this order).
        order = ["created", "status:provisioning", "workspace", "status:running", "started"]
        labels = {
            "created": "create_job returns",
            "status:provisioning": "-> `provisioning` event",
            "workspace": "-> `workspace` event",
            "status:running": "-> `running` event",
            "started": "-> `started` event",
        }
        phases: dict[str, float] = {}
        previous = t0
        for key in order:
            if key in marks:
                phases[labels[key]] = marks[key] - previous
                previous = marks[key]
        return marks["started"] - t0, cpu["started"] - cpu["t0"], phases

    def __call__(self) -> tuple[float, float, dict[str, float]]:
        return asyncio.run(self._one())


class Case:
    """The samples of one case: wall and CPU times of both sides, logist's breakdowns."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.raw: list[float] = []
        self.raw_cpu: list[float] = []
        self.logist: list[float] = []
        self.logist_cpu: list[float] = []
        self.overlap: list[float] = []
        self.overlap_cpu: list[float] = []
        self.process_started: list[float] = []
        self.process_exit: list[float] = []
        self.process_cpu: list[float] = []
        self.phases: list[dict[str, float]] = []
        self.parts: list[dict[str, float]] = []

    @property
    def row(self) -> Row:
        return Row(f"start overhead ({self.label})", self.logist, self.raw)

    @property
    def cpu_row(self) -> Row:
        return Row(f"CPU time ({self.label})", self.logist_cpu, self.raw_cpu)

    @property
    def extra(self) -> list[float]:
        """Per job: logist's time minus its own checkout (`git read-tree -u` into the
        isolated workspace; `git worktree add` in earlier versions), i.e. what logist adds to the
        checkout (robust to the checkout's own run-to-run variation)."""
        return [
            total - parts.get("git read-tree", parts.get("git worktree add", 0.0))
            for total, parts in zip(self.logist, self.parts, strict=True)
        ]

    @property
    def derived_ratio(self) -> float:
        """(raw median + logist's median extra) / raw median."""
        raw = median(self.raw)
        return (raw + median(self.extra)) / raw

    @property
    def process_rows(self) -> list[Row]:
        return [
            Row(f"whole process, spawn->started ({self.label})", self.process_started, self.raw),
            Row(f"whole process, spawn->exit ({self.label})", self.process_exit, self.raw),
        ]

    @property
    def overlap_row(self) -> Row:
        return Row(f"what-if: overlapped ({self.label})", self.overlap, self.raw)


def measure_case(
    label: str, repo: Path, raw_dir: Path, run: LogistRun, reps: int, counter: list[int]
) -> Case:
    case = Case(label)
    first_rec = len(run.rec.per_rep)
    for rep in range(reps):
        order = ("raw", "logist", "process", "overlap")
        for which in order if rep % 2 == 0 else reversed(order):
            if which == "process":
                to_started, to_exit, cpu = process_run(repo, run.engine)
                case.process_started.append(to_started)
                case.process_exit.append(to_exit)
                case.process_cpu.append(cpu)
            elif which == "overlap":
                counter[0] += 1
                wall, cpu = overlapped_start(repo, raw_dir, counter[0])
                case.overlap.append(wall)
                case.overlap_cpu.append(cpu)
            elif which == "raw":
                counter[0] += 1
                wall, cpu = raw_worktree_add(repo, raw_dir, counter[0])
                case.raw.append(wall)
                case.raw_cpu.append(cpu)
            else:
                wall, cpu, split = run()
                case.logist.append(wall)
                case.logist_cpu.append(cpu)
                case.phases.append(split)
    case.parts = run.rec.per_rep[first_rec:]
    return case


def print_breakdown(case: Case) -> None:
    phases, parts, logist = case.phases, case.parts, case.logist
    print(f"\n-- where logist's start time goes ({case.label}), medians in ms")
    print("   between the events the listener saw:")
    for key in phases[0]:
        values = [p[key] for p in phases if key in p]
        print(f"     {key:<40} {ms(median(values)):8.1f}")
    labels = sorted({k for p in parts for k in p})
    print("   timed pieces inside the window (summed per job):")
    totals = {k: median([p.get(k, 0.0) for p in parts]) for k in labels}
    for key in sorted(labels, key=lambda k: -totals[k]):
        print(f"     {key:<40} {ms(totals[key]):8.1f}")
    rest = [total - sum(p.values()) for total, p in zip(logist, parts, strict=True)]
    print(f"     {'everything else (Python, threads)':<40} {ms(median(rest)):8.1f}")


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0], default_dir="tmpfs")
    parser.add_argument("--files", type=int, default=10_000, help="files in the repository")
    parser.add_argument("--reps", type=int, help="repetitions of each (default 15, quick 3)")
    args = parser.parse_args()
    reps = args.reps or (3 if args.quick else 15)

    tmp = make_tmpdir("logist-bench-start-", args.dir)
    try:
        prepare_process_env(tmp / "worktrees")
        print(f"machine: {machine_line()}")
        print(f"temporary files (repository, worktrees, store) on {filesystem_of(tmp)}: {tmp}")
        print(f"repository: {args.files} files; {reps} repetitions of each, alternating")
        with phase(f"creating a repository of {args.files} files"):
            repo = make_repo(tmp / "repo", args.files)
            time.sleep(1.1)  # let git see settled stat data, as in a repository in use
            git(["status", "--porcelain"], repo)
        raw_dir = tmp / "raw"
        raw_dir.mkdir()
        engine = Engine.for_path(repo)
        rec = install_recorder()
        run = LogistRun(engine, rec)
        counter = [0]
        with phase("warm-up (page cache, store, imports)"):
            raw_worktree_add(repo, raw_dir, 0)
            run()
        rec.per_rep.clear()

        cases: list[Case] = []
        results: dict[str, Any] = {
            "machine": machine_line(),
            "filesystem": filesystem_of(tmp),
            "files": args.files,
            "reps": reps,
        }
        for label, dirty in (("clean tree", False), ("uncommitted + untracked", True)):
            if dirty:
                make_dirty(repo)
            with phase(f"measuring: {label}"):
                case = measure_case(label, repo, raw_dir, run, reps, counter)
            cases.append(case)
            print_breakdown(case)
            results[label] = case.row.as_dict()
            results[f"{label}, cpu"] = case.cpu_row.as_dict()
            results[f"{label}, what-if overlapped"] = case.overlap_row.as_dict()
            started_row, exit_row = case.process_rows
            results[f"{label}, whole process to started"] = started_row.as_dict()
            results[f"{label}, whole process to exit"] = exit_row.as_dict()
            results[f"{label}, whole process cpu"] = Row(
                "cpu", case.process_cpu, case.raw_cpu
            ).as_dict()
            results[f"{label}, extra"] = {
                "extra_ms": round(ms(median(case.extra)), 2),
                "derived_ratio": round(case.derived_ratio, 3),
            }
        print(load_line())
        rows = [case.row for case in cases]
        print_table(
            "job start overhead: logist create->agent started vs raw git worktree add",
            [*rows, *(case.overlap_row for case in cases)],
        )
        print_table(
            "the whole `logist run` process (cold interpreter) vs the same raw checkout",
            [row for case in cases for row in case.process_rows],
        )
        print_table(
            "the same, CPU time (this process + its children; less sensitive to other load)",
            [case.cpu_row for case in cases],
        )
        for case in cases:
            row = case.row
            verdict = "meets" if (row.ratio or 99) <= 1.3 else "does NOT meet"
            print(
                f"{row.name}: {row.ratio:.2f}x raw by the medians (the headline; median of "
                f"the paired ratios {row.paired_ratio:.2f}x); {verdict} the 1.3x bar by the "
                f"medians. logist adds {ms(median(case.extra)):.1f} ms to its own checkout: "
                f"(raw + that) / raw = {case.derived_ratio:.2f}x"
            )
            started_row, _exit_row = case.process_rows
            print(
                f"  the whole `logist run` process to the same point: {started_row.ratio:.2f}x "
                f"raw by the medians (paired {started_row.paired_ratio:.2f}x)"
            )
        print(
            "what-if rows: the same snapshot and worktree, with the snapshot taken while the "
            "checkout of HEAD runs (git commands only, not logist)"
        )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        release_tmpdir(tmp, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

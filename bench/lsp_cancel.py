"""(c) Latency of `textDocument/codeAction` while jobs are being cancelled and reset, side by
side with idle, in one run of one real `logist-server` over stdio.

Set-up: a repository of `--files` files (2000) and a document of 3000 lines with
`--review-jobs` jobs (5; `--quick` 3) in review on it, seeded through the CLI as in
lsp_latency.py; the document is opened and edited above every hunk, so each codeAction maps
the hunks of every job onto the buffer (never the unedited shortcut).

The agents ignore SIGTERM: the server is started with SIGTERM ignored (SIG_IGN), which every
process it spawns inherits across exec (the host runtime's `sh` wrapper, the mock agent and
whatever the agent starts), so each kill waits out the runtime's grace period and ends with
SIGKILL. The benchmark checks this on the first agent: its processes' SigIgn mask in
/proc must have SIGTERM.

Load (`loaded` phase), run until the phase's requests are done:
  cancel  `--cancellers` (4) loops, each: createJob with the mock's `linger` scenario
          (`hold=true`: it starts a background child, a double-forked `setsid` daemon and a
          child in `/`, then waits to be killed), wait until its agent reports them, then
          `logist/cancelJob` and wait for `cancelled`; again;
  reset   `--resetters` (2) loops, each: createJob with the mock's `fail` scenario (a rate
          limit, transient) and `retries: max_retries 20, backoff_s 0` in logist.yml, so the
          driver resets the workspace to its checkpoint (`git reset`) and starts the agent
          again, 20 times per job; again.
Phases, each `-n` codeAction and `-n` listJobs alternating, one at a time, timed from
writing the request to reading the response:
  idle    nothing else running;
  loaded  while the load runs (for each codeAction, how many cancels were in flight);
  after   idle again once every load job has settled.
Medians, p99 (nearest rank) and max in ms; loaded/idle ratios; how many cancels and resets
happened during the loaded phase and how long a cancel took. Nothing is asserted on time;
the issue's bar is a codeAction p99 under 50 ms while jobs are cancelled and reset.

Finding what blocks the event loop: `--py-spy FILE` samples the server with py-spy (when
installed) during the loaded phase and writes the event loop thread's busy stacks, heaviest
first; `--slow-callbacks MS` runs the server in asyncio debug mode and logs every callback
that held the loop longer than MS (to the server's stderr log, summarised at the end;
debug mode itself slows the server: do not read latencies from such a run); `--profile FILE`
runs it under cProfile (the loop thread only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import (
    PYTHON,
    VENV_BIN,
    base_parser,
    filesystem_of,
    git,
    load_line,
    machine_line,
    make_repo,
    make_tmpdir,
    median,
    ms,
    phase,
    release_tmpdir,
)
from lsp_flood import JOB_EVENT, LspClient, RpcError, kill_leftovers, server_env
from lsp_latency import (
    DOC_PATH,
    HUNKS_PER_JOB,
    SETTLED,
    TYPED_ABOVE,
    Diagnostics,
    Jobs,
    document_lines,
    edited_text,
    latency_rows,
    measure,
    seed_review_jobs,
)

BAR_MS = 50.0
SIGTERM_BIT = 1 << (signal.SIGTERM - 1)
PHASES = ("idle", "loaded", "after")

# The server, with SIGTERM ignored (inherited by every process it starts) and, for
# --slow-callbacks, every event loop's slow-callback threshold set; optionally under cProfile.
_SERVER = """
import signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
slow = float(sys.argv[1])
if slow > 0:
    import asyncio.base_events as base
    init = base.BaseEventLoop.__init__
    def patched(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.slow_callback_duration = slow
    base.BaseEventLoop.__init__ = patched
profile = sys.argv[2]
sys.argv = ["logist-server"]
from logist_server.cli.main import serve_main
if profile:
    import cProfile
    cProfile.run("serve_main()", profile)
else:
    serve_main()
"""


def server_argv(slow_s: float, profile: Path | None) -> list[str]:
    return [PYTHON, "-c", _SERVER, str(slow_s), str(profile or "")]


class Load:
    """The cancel and reset loops, and what they did."""

    def __init__(self, client: LspClient, jobs: Jobs, tag: str) -> None:
        self.client = client
        self.jobs = jobs
        self.tag = tag
        self.stop = asyncio.Event()
        self.in_flight = 0  # cancelJob requests sent and not yet answered
        self.cancel_s: list[float] = []
        self.created: list[str] = []
        self.retries: list[float] = []  # when each `retry` event (a workspace reset) arrived
        self.reaped = 0
        self.first_linger: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_event(self, params: dict[str, Any]) -> None:
        self.jobs.on_event(params)
        if params["kind"] == "retry":
            self.retries.append(time.perf_counter())
        elif params["kind"] == "reaped":
            self.reaped += 1

    async def create(self, options: dict[str, str], prompt: str) -> str:
        answer = await self.client.request(
            "logist/createJob", {"prompt": prompt, "agent": "mock", "agentOptions": options}
        )
        job_id = str(answer["jobId"])
        self.created.append(job_id)
        return job_id

    async def canceller(self, k: int) -> None:
        while not self.stop.is_set():
            await self.cancel_one(k)

    async def cancel_one(self, k: int) -> None:
        """A lingering job: started, its agent up, cancelled, settled."""
        options = {"scenario": "linger", "hold": "true", "tag": self.tag}
        job_id = await self.create(options, f"linger {k}")
        # running, and its agent has reported the processes it left (its first message)
        await self.jobs.wait(
            lambda: (
                self.jobs.messages.get(job_id, 0) > 0 or self.jobs.status.get(job_id) in SETTLED
            ),
            120,
            f"lingering job {job_id} to start",
        )
        if self.jobs.status.get(job_id) in SETTLED:
            raise RuntimeError(f"lingering job {job_id} ended: {self.jobs.reasons}")
        if not self.first_linger.done():
            self.first_linger.set_result(job_id)
        self.in_flight += 1
        start = time.perf_counter()
        try:
            with contextlib.suppress(RpcError):  # it settled meanwhile
                await self.client.request("logist/cancelJob", {"jobId": job_id})
        finally:
            self.in_flight -= 1
        self.cancel_s.append(time.perf_counter() - start)
        await self.jobs.wait(
            lambda: self.jobs.status.get(job_id) in SETTLED, 120, f"{job_id} cancelled"
        )

    async def resetter(self, k: int) -> None:
        while not self.stop.is_set():
            await self.reset_one(k)

    async def reset_one(self, k: int) -> None:
        """A job that fails transiently: the driver resets its workspace before each retry."""
        job_id = await self.create({"scenario": "fail", "kind": "rate_limit"}, f"retry {k}")
        await self.jobs.wait(
            lambda: self.jobs.status.get(job_id) in SETTLED or self.stop.is_set(),
            300,
            f"retrying job {job_id} to end",
        )


def sigterm_ignored(pids: list[int]) -> dict[int, bool]:
    """For each pid still there: whether its SigIgn mask (/proc) holds SIGTERM."""
    out: dict[int, bool] = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^SigIgn:\s*([0-9a-f]+)$", status, re.M)
        if match:
            out[pid] = bool(int(match.group(1), 16) & SIGTERM_BIT)
    return out


def kill_tagged(tag: str) -> int:
    """SIGKILL every process with `tag` in its command line (lingerers that escaped)."""
    import psutil

    killed = 0
    for proc in psutil.process_iter(["cmdline"]):
        if tag in " ".join(proc.info.get("cmdline") or []) and proc.pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                proc.kill()
                killed += 1
    return killed


def start_py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    if not Path(spy).exists():
        print("# py-spy is not installed: no sampling", file=sys.stderr)
        return None
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--format", "raw", "--threads", "--rate", "250",
         "--duration", str(max(1, int(seconds))), "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def loop_busy_stacks(raw: Path) -> tuple[int, list[tuple[str, int]]]:
    """From py-spy's collapsed stacks: samples of the main (event loop) thread that were not
    waiting in the selector, grouped by their last three logist_server frames and the
    innermost frame (where the thread was: a syscall, a lock, Python code)."""
    total = 0
    groups: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not count.isdigit() or "MainThread" not in frames[0]:
            continue
        if "selectors.py" in frames[-1] and "select" in frames[-1]:
            continue  # idle: waiting for the next event
        total += int(count)
        ours = [_short(f) for f in frames if "logist_server/" in f]
        groups[" > ".join(ours[-3:]) + "  ||  " + _short(frames[-1])] += int(count)
    return total, groups.most_common(20)


def _short(frame: str) -> str:
    """`fn (.../logist_server/engine/driver.py:123)` -> `engine/driver.py:fn:123`."""
    match = re.match(r"(.*) \((.*?):(\d+)\)$", frame.strip())
    if not match:
        return frame.strip()
    fn, path, line = match.groups()
    path = path.split("logist_server/", 1)[1] if "logist_server/" in path else Path(path).name
    return f"{path}:{fn.rsplit('.', 1)[-1]}:{line}"


def slow_callbacks(log: Path) -> list[tuple[str, int, float]]:
    """asyncio debug's "Executing <...> took N seconds" lines, grouped by what ran."""
    pattern = re.compile(r"Executing (<.*?>) took ([0-9.]+) seconds")
    where = re.compile(r"(?:coro=<(\S+?)\(\) running at (\S+?)>|(\S+\.py:\d+))")
    groups: dict[str, list[float]] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = pattern.search(line)
        if not match:
            continue
        what = where.search(match.group(1))
        key = (
            (f"{what.group(1)} at {what.group(2)}" if what.group(1) else what.group(3))
            if what
            else match.group(1)[:80]
        )
        key = key.split("logist_server/", 1)[-1]
        groups.setdefault(key, []).append(float(match.group(2)))
    rows = [(k, len(v), max(v)) for k, v in groups.items()]
    return sorted(rows, key=lambda r: -r[1] * r[2])[:15]


async def run(base: Path, args: Any) -> dict[str, Any]:
    repo = make_repo(base / "repo", args.files)
    doc = repo / DOC_PATH
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("".join(document_lines(args.doc_lines)))
    (repo / "logist.yml").write_text("retries:\n  max_retries: 20\n  backoff_s: 0\n")
    git(["add", "-A"], repo)
    git(["commit", "-q", "--no-gpg-sign", "-m", "a document"], repo)
    load_jobs = args.cancellers + args.resetters
    env = server_env(base / "workspaces", {"LOGIST_CONCURRENCY": str(load_jobs + 2)})
    if args.slow_callbacks:
        env["PYTHONASYNCIODEBUG"] = "1"
    with phase(f"{args.review_jobs} jobs in review on a {args.doc_lines}-line document (CLI)"):
        seeded = seed_review_jobs(repo, env, args.review_jobs)
    stderr_log = base / "server-stderr.log"
    profile = Path(args.profile).resolve() if args.profile else None
    argv = server_argv(args.slow_callbacks / 1000.0, profile)
    client = await LspClient.start(env, stderr_log, argv)
    jobs = Jobs()
    diagnostics = Diagnostics()
    tag = f"logist-bench-cancel-{os.getpid()}"
    load = Load(client, jobs, tag)
    client.handlers[JOB_EVENT] = load.on_event
    client.handlers["textDocument/publishDiagnostics"] = diagnostics.on_publish
    phases: dict[str, dict[str, list[float]]] = {}
    info: dict[str, Any] = {}
    watched_id, watched_line = seeded[0]
    expect = args.review_jobs
    n = args.n
    try:
        await client.initialize(repo)
        uri = await client.open(doc)

        async def wait_hint(line: int, what: str) -> None:
            deadline = time.perf_counter() + 60
            hunk = f"{watched_id}/"  # its first hunk: the job's hint nearest the top

            def first_line() -> int | None:
                lines = [h["range"]["start"]["line"] for h in diagnostics.by_uri.get(uri) or []
                         if str(h.get("code", "")).startswith(hunk)]  # fmt: skip
                return min(lines, default=None)

            while first_line() != line:
                if time.perf_counter() > deadline:
                    got = [(h.get("code"), h["range"]["start"]["line"])
                           for h in diagnostics.by_uri.get(uri) or []]  # fmt: skip
                    raise RuntimeError(f"{what}: no hint for {hunk} at line {line}: {got}")
                await asyncio.sleep(0.02)

        await wait_hint(watched_line, "the unedited document")
        client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": 2},
                "contentChanges": [{"text": edited_text(doc.read_text())}],
            },
        )
        line = watched_line + TYPED_ABOVE
        await wait_hint(line, "the edited buffer")  # the hunks were mapped onto the edit
        hints = len(diagnostics.by_uri.get(uri) or [])
        if hints != args.review_jobs * HUNKS_PER_JOB:
            raise RuntimeError(f"{hints} hints, expected {args.review_jobs * HUNKS_PER_JOB}")
        await measure(client, uri, line, 20, expect)  # warm-up
        with phase(f"idle: {n} codeAction + {n} listJobs"):
            phases["idle"] = await measure(client, uri, line, n, expect)

        loops = [asyncio.ensure_future(load.canceller(k)) for k in range(args.cancellers)]
        loops += [asyncio.ensure_future(load.resetter(k)) for k in range(args.resetters)]
        with phase("load starting (first lingering agent up)"):
            first = await asyncio.wait_for(load.first_linger, 120)
        pids_file = repo / ".logist" / "jobs" / first / "linger-pids"
        lingerers = json.loads(pids_file.read_text()) if pids_file.exists() else {}
        ignored = sigterm_ignored([int(p) for p in lingerers.values()])
        info["sigterm_ignored"] = ignored
        if not ignored or not all(ignored.values()):
            raise RuntimeError(f"the agent's processes do not ignore SIGTERM: {ignored}")
        spy = None
        if args.py_spy:
            spy = start_py_spy(client.proc.pid, base / "py-spy.raw", args.spy_seconds)
        cancels_before, retries_before = len(load.cancel_s), len(load.retries)
        began = time.perf_counter()
        with phase(f"loaded: {n}+ codeAction + {n}+ listJobs, {args.min_cancels}+ cancels"):
            loaded: dict[str, list[float]] = {"codeAction": [], "listJobs": [], "running": []}
            # at least n of each, and on until `--min-cancels` cancels have been answered
            while len(loaded["codeAction"]) < n or (
                len(load.cancel_s) - cancels_before < args.min_cancels
                and len(loaded["codeAction"]) < 10 * n
            ):
                chunk = await measure(client, uri, line, 20, expect, lambda: load.in_flight)
                for key, values in chunk.items():
                    loaded[key] += values
            phases["loaded"] = loaded
        loaded_s = time.perf_counter() - began
        info.update(
            loaded_phase_s=round(loaded_s, 2),
            cancels_during=len(load.cancel_s) - cancels_before,
            resets_during=len(load.retries) - retries_before,
            cancel_ms_median=round(ms(median(load.cancel_s)), 1) if load.cancel_s else None,
            cancel_ms_max=round(ms(max(load.cancel_s)), 1) if load.cancel_s else None,
        )
        load.stop.set()
        with phase("ending the load"):
            await asyncio.wait_for(asyncio.gather(*loops), 300)
            limit = asyncio.Semaphore(3)

            async def cancel(job_id: str) -> None:
                async with limit:
                    if jobs.status.get(job_id) not in SETTLED:
                        with contextlib.suppress(RpcError):
                            await client.request("logist/cancelJob", {"jobId": job_id})

            await asyncio.gather(*(cancel(j) for j in load.created))
            await jobs.wait(
                lambda: all(jobs.status.get(j) in SETTLED for j in load.created), 120, "the load"
            )
        info["load_jobs"] = len(load.created)
        info["reaped_events"] = load.reaped
        if spy is not None:
            spy.wait(timeout=args.spy_seconds + 60)
        with phase(f"after: {n} codeAction + {n} listJobs"):
            phases["after"] = await measure(client, uri, line, n, expect + len(load.created))
    finally:
        await client.close()
        kill_tagged(tag)
    if args.py_spy and (base / "py-spy.raw").exists():
        total, rows = loop_busy_stacks(base / "py-spy.raw")
        info["loop_busy_samples"] = total
        info["loop_busy"] = rows
        shutil.copy(base / "py-spy.raw", args.py_spy)
    if args.slow_callbacks:
        info["slow_callbacks"] = slow_callbacks(stderr_log)
    return {"phases": phases, "info": info}


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, help="requests of each kind per phase (300, --quick 100)")
    parser.add_argument("--files", type=int, default=2000, help="repository files (2000)")
    parser.add_argument("--doc-lines", type=int, default=3000, help="document length (3000)")
    parser.add_argument("--review-jobs", type=int, help="jobs in review on it (5, --quick 3)")
    parser.add_argument("--cancellers", type=int, default=4, help="cancel loops (4)")
    parser.add_argument(
        "--min-cancels", type=int, help="cancels during the loaded phase (16, --quick 8)"
    )
    parser.add_argument("--resetters", type=int, default=2, help="retry/reset loops (2)")
    parser.add_argument("--py-spy", metavar="FILE", help="sample the loaded phase with py-spy")
    parser.add_argument("--spy-seconds", type=float, default=20, help="py-spy duration (20)")
    parser.add_argument(
        "--slow-callbacks", type=float, default=0, metavar="MS",
        help="asyncio debug mode: log callbacks holding the loop longer than MS",
    )  # fmt: skip
    parser.add_argument("--profile", metavar="FILE", help="run the server under cProfile")
    args = parser.parse_args()
    args.n = args.n or (100 if args.quick else 300)
    args.review_jobs = args.review_jobs or (3 if args.quick else 5)
    args.min_cancels = args.min_cancels or (8 if args.quick else 16)
    base = make_tmpdir("logist-bench-cancel-", args.dir)
    print(f"# {machine_line()}; {load_line()}")
    print(
        f"# temp dir on {filesystem_of(base)}; {args.files}-file repository; n={args.n} per "
        f"kind and phase; {args.review_jobs} jobs x {HUNKS_PER_JOB} hunks in review on a "
        f"{args.doc_lines}-line buffer edited above every hunk; load: {args.cancellers} "
        f"cancel loops (linger, SIGTERM ignored) + {args.resetters} reset loops (transient "
        "failure, 20 retries, no backoff)"
        + ("; asyncio DEBUG mode (slow)" if args.slow_callbacks else "")
    )
    try:
        result = asyncio.run(run(base, args))
    finally:
        kill_leftovers(base)
        release_tmpdir(base, args.keep)
    phases, info = result["phases"], result["info"]
    n = args.n
    loaded_n = len(phases["loaded"]["codeAction"])
    print(f"\n== request latency, ms (n={n} each, loaded {loaded_n}; p99 = nearest rank)")
    header = f"{'request':<12} {'phase':<7} {'median':>8} {'p99':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    summary: dict[str, Any] = {"n": n, "info": info}
    latency_rows(phases, PHASES, summary, width=7)
    flight = sorted(phases["loaded"]["running"])
    print(
        f"\nloaded phase: {info['loaded_phase_s']} s, {info['cancels_during']} cancels "
        f"(cancelJob median {info['cancel_ms_median']} ms, max {info['cancel_ms_max']} ms) and "
        f"{info['resets_during']} workspace resets (retries); cancels in flight as each "
        f"codeAction was sent: median {median(flight):g}, max {flight[-1]}; "
        f"{info['load_jobs']} load jobs in all; SIGTERM ignored by the agent's processes: "
        f"{all(info['sigterm_ignored'].values())}"
    )
    if "loop_busy" in info:
        print(
            f"\n== event loop thread not idle (py-spy, {info['loop_busy_samples']} samples at "
            f"250/s; innermost logist frames  ||  innermost frame)"
        )
        for key, count in info["loop_busy"]:
            print(f"{count:6d}  {key}")
    if "slow_callbacks" in info:
        print(f"\n== callbacks holding the loop > {args.slow_callbacks:g} ms (count, max s)")
        for key, count, worst in info["slow_callbacks"]:
            print(f"{count:5d} {worst:7.3f}  {key}")
    bar = summary["codeAction.loaded"]["p99_ms"]
    print(f"bar: codeAction p99 while jobs are cancelled and reset < {BAR_MS:g} ms: "
          f"{bar:.1f} ms -> {'met' if bar < BAR_MS else 'NOT met'}")  # fmt: skip
    print(f"# at the end: {load_line()}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

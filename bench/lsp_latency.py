"""(b) Latency of `textDocument/codeAction` and `logist/listJobs` on an edited buffer of a
few thousand lines with several jobs in review, idle and under a flood of 20 jobs.

One `logist-server` over stdio (LOGIST_CONCURRENCY=20, so all 20 load jobs run at once).
Before it starts, `--review-jobs` jobs (5; `--quick` 3) are put in review on one document of
`--doc-lines` lines (3000) through the CLI (`job create` + `job poststep --patch`), each
proposing three hunks spread over the file (a replaced line, an inserted line, a deleted
line). The document is opened in the server; then the user's edit is sent with didChange:
lines typed above every hunk, a line changed near the top and one near the end. From then
on the buffer differs from each job's base, so every codeAction maps the hunks of every job
onto it (the line diff of base -> buffer in `hunks.map_hunks`): the shortcut for an
unedited buffer is never taken. The benchmark checks that the hint for a known hunk moved
by the lines typed above, and that a code action at the moved line offers "Accept change".

Each phase sends N requests of each kind, one at a time, alternating codeAction (at the
moved hunk) and listJobs, and times each from writing the request to reading its response:
  unedited  the document as on disk (the mapping shortcut), for reference;
  idle      the edited buffer, nothing else running;
  loaded    the edited buffer while 20 mock jobs flood (`flood` scenario, `--lines` each:
            100,000, --quick 30,000; or `--scenario slow`: a line every 0.25 s per job),
            measured from the moment the 20 createJob requests are sent; the benchmark
            reports how many jobs were running as each codeAction was sent and how many
            message events arrived during the phase;
  after     idle again once the 20 have ended (cancelled if need be).
Medians and p99 (nearest rank) in milliseconds, and loaded/idle ratios. Nothing is asserted
on time; the issue's bar is a codeAction p99 under 100 ms while 20 jobs stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import (
    LOGIST,
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
from lsp_flood import JOB_EVENT, LspClient, RpcError, kill_leftovers, server_argv, server_env

JOBS = 20
SETTLED = {"review", "accepted", "rejected", "failed", "cancelled", "stuck", "halted"}
DOC_PATH = "src/module.py"
TYPED_ABOVE = 5  # lines the user types at the top of the buffer
HUNKS_PER_JOB = 3


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


class Jobs:
    """Job statuses and event counts from `logist/jobEvent` notifications."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.messages: dict[str, int] = {}
        self.reasons: dict[str, str] = {}
        self.changed = asyncio.Event()

    def on_event(self, params: dict[str, Any]) -> None:
        job_id = params["jobId"]
        if params["kind"] == "message":
            count = params["data"].get("count", 1) if "firstSeq" in params else 1
            self.messages[job_id] = self.messages.get(job_id, 0) + count
        status = params.get("status")
        if status is not None:
            self.status[job_id] = status
            if status == "failed":
                self.reasons[job_id] = str(params["data"].get("reason"))
            self.changed.set()

    async def wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.perf_counter() + timeout
        while not ready():
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"timed out waiting for {what}: {self.status}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 1.0))


class Diagnostics:
    def __init__(self) -> None:
        self.by_uri: dict[str, list[dict[str, Any]]] = {}

    def on_publish(self, params: dict[str, Any]) -> None:
        self.by_uri[params["uri"]] = params["diagnostics"]


async def timed(send: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await send()
    return time.perf_counter() - start, result


async def measure(
    client: LspClient,
    uri: str,
    line: int,
    n: int,
    expect_jobs: int,
    running: Callable[[], int] = lambda: 0,
) -> dict[str, list[float]]:
    """n codeAction and n listJobs, alternating, one at a time; seconds each (and under
    `running`, how many load jobs were running as each codeAction was sent)."""
    params = {
        "textDocument": {"uri": uri},
        "range": {"start": {"line": line, "character": 0}, "end": {"line": line, "character": 0}},
        "context": {"diagnostics": []},
    }
    out: dict[str, list[float]] = {"codeAction": [], "listJobs": [], "running": []}
    for _ in range(n):
        out["running"].append(running())
        seconds, actions = await timed(lambda: client.request("textDocument/codeAction", params))
        if not any(a["title"].startswith("Accept change") for a in actions or []):
            raise RuntimeError(f"codeAction at the hunk offered no 'Accept change': {actions}")
        out["codeAction"].append(seconds)
        seconds, jobs = await timed(lambda: client.request("logist/listJobs", {}))
        if len(jobs) < expect_jobs:
            raise RuntimeError(f"listJobs returned {len(jobs)} jobs, expected {expect_jobs}")
        out["listJobs"].append(seconds)
    return out


def latency_rows(
    phases: dict[str, Any], names: tuple[str, ...], summary: dict[str, Any], width: int
) -> None:
    """Print median, p99 and max of codeAction and listJobs per phase, then the loaded/idle
    ratios, and keep each figure in `summary` (`<request>.<phase>`, `<request>.ratio_*`)."""
    for kind in ("codeAction", "listJobs"):
        for name in names:
            samples = phases[name][kind]
            row = {
                "median_ms": round(ms(median(samples)), 2),
                "p99_ms": round(ms(p99(samples)), 2),
                "max_ms": round(ms(max(samples)), 2),
            }
            summary[f"{kind}.{name}"] = row
            print(
                f"{kind:<12} {name:<{width}} {row['median_ms']:8.2f} {row['p99_ms']:8.2f} "
                f"{row['max_ms']:8.2f}"
            )
        idle, loaded = summary[f"{kind}.idle"], summary[f"{kind}.loaded"]
        summary[f"{kind}.ratio_median"] = round(loaded["median_ms"] / idle["median_ms"], 2)
        summary[f"{kind}.ratio_p99"] = round(loaded["p99_ms"] / idle["p99_ms"], 2)
        print(
            f"{kind:<12} loaded/idle: median {summary[f'{kind}.ratio_median']:.2f}x, "
            f"p99 {summary[f'{kind}.ratio_p99']:.2f}x"
        )


def document_lines(n: int) -> list[str]:
    return [
        f"def function_{i // 3}(x):\n" if i % 3 == 0 else
        f"    return x + {i // 3}\n" if i % 3 == 1 else "\n"
        for i in range(n)
    ]  # fmt: skip


def job_version(lines: list[str], k: int, n_jobs: int) -> tuple[list[str], int]:
    """Job k's proposal: three hunks in its own stretch of the file; the base line of its
    first hunk (a replaced line)."""
    stretch = len(lines) // (n_jobs + 1)
    first = (k + 1) * stretch
    changed = list(lines)
    del changed[first + stretch // 2]  # a deleted line
    changed.insert(first + stretch // 4, f"    # inserted by job {k}\n")  # an inserted line
    changed[first] = f"def replaced_by_job_{k}(x):\n"  # a replaced line
    return changed, first


def seed_review_jobs(repo: Path, env: dict[str, str], n_jobs: int) -> list[tuple[str, int]]:
    """Jobs in review on the document through the CLI (create + poststep --patch): each
    job's id and the base line of its first hunk."""
    doc = repo / DOC_PATH
    lines = doc.read_text().splitlines(keepends=True)
    response = repo.parent / "response.jsonl"
    response.write_text('{"type": "done", "success": true}\n')
    seeded = []
    for k in range(n_jobs):
        changed, first = job_version(lines, k, n_jobs)
        doc.write_text("".join(changed))
        patch = repo.parent / f"job{k}.patch"
        diff = subprocess.run(  # not common.git: it strips the output, and with it the
            ["git", "diff", "--no-color", "--", DOC_PATH],  # blank last context line
            cwd=repo, env=env, capture_output=True, check=True,
        )  # fmt: skip
        patch.write_bytes(diff.stdout)
        doc.write_text("".join(lines))
        created = cli(env, repo, "job", "create", "--json", "--prompt", f"review job {k}")
        job_id = created["id"]
        job = cli(env, repo, "job", "poststep", job_id, "--json", "--response", str(response),
                  "--patch", str(patch))  # fmt: skip
        if job["status"] != "review":
            raise RuntimeError(f"seeded job {job_id} is {job['status']}: {job['status_reason']}")
        seeded.append((job_id, first))
    return seeded


def cli(env: dict[str, str], repo: Path, *args: str) -> Any:
    proc = subprocess.run(
        [LOGIST, *args], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"logist {' '.join(args)} exited {proc.returncode}: {proc.stderr}{proc.stdout[-500:]}"
        )
    return json.loads(proc.stdout)


def edited_text(text: str) -> str:
    """The user's unsaved edit, outside every hunk: lines typed at the top, a line changed
    near the top and one near the end (so neither a common head nor a common tail covers
    the hunks)."""
    lines = text.splitlines(keepends=True)
    lines[2] = "    return x + 0  # the user was here\n"
    lines[-2] = lines[-2].rstrip("\n") + "  # and here\n"
    typed = [f"# typed by the user {i}\n" for i in range(TYPED_ABOVE)]
    return "".join(typed + lines)


async def run(
    base: Path,
    n: int,
    scenario: str,
    seconds: float,
    lines: int,
    doc_lines: int,
    review_jobs: int,
    profile: Path | None,
) -> dict[str, Any]:
    repo = make_repo(base / "repo", 0)
    doc = repo / DOC_PATH
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("".join(document_lines(doc_lines)))
    git(["add", "-A"], repo)
    git(["commit", "-q", "--no-gpg-sign", "-m", "a document"], repo)
    env = server_env(base / "workspaces", {"LOGIST_CONCURRENCY": str(JOBS)})
    with phase(f"{review_jobs} jobs in review on a {doc_lines}-line document (CLI)"):
        seeded = seed_review_jobs(repo, env, review_jobs)
    client = await LspClient.start(env, base / "server-stderr.log", server_argv(profile))
    jobs = Jobs()
    diagnostics = Diagnostics()
    client.handlers[JOB_EVENT] = jobs.on_event
    client.handlers["textDocument/publishDiagnostics"] = diagnostics.on_publish
    phases: dict[str, dict[str, list[float]]] = {}
    info: dict[str, Any] = {"review_jobs": review_jobs, "doc_lines": doc_lines}
    watched_id, watched_line = seeded[0]
    watched_hunk = f"{watched_id}/"  # its one hunk: the code starts with the job's id
    try:
        await client.initialize(repo)
        uri = await client.open(doc)

        def hint_line() -> int | None:
            for hint in diagnostics.by_uri.get(uri) or []:
                if str(hint.get("code", "")).startswith(watched_hunk):
                    return int(hint["range"]["start"]["line"])
            return None

        async def wait_hint(line: int, what: str) -> None:
            deadline = time.perf_counter() + 30
            while hint_line() != line:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{what}: hint for {watched_hunk} at {hint_line()}")
                await asyncio.sleep(0.02)

        await wait_hint(watched_line, "the unedited document")
        hints = len(diagnostics.by_uri.get(uri) or [])
        if hints != review_jobs * HUNKS_PER_JOB:
            raise RuntimeError(f"{hints} hints, expected {review_jobs * HUNKS_PER_JOB}")
        expect = review_jobs
        await measure(client, uri, watched_line, 20, expect)  # warm-up
        with phase(f"unedited: {n} codeAction + {n} listJobs"):
            phases["unedited"] = await measure(client, uri, watched_line, n, expect)

        client.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": 2},
                "contentChanges": [{"text": edited_text(doc.read_text())}],
            },
        )
        line = watched_line + TYPED_ABOVE
        await wait_hint(line, "the edited buffer")  # the hunks were mapped onto the edit
        with phase(f"idle: {n} codeAction + {n} listJobs"):
            phases["idle"] = await measure(client, uri, line, n, expect)

        options = {"scenario": scenario}
        if scenario == "slow":
            options["seconds"] = f"{seconds:g}"
        else:
            options["lines"] = str(lines)

        def load_jobs() -> list[str]:
            return [j for j in jobs.status if j not in dict(seeded)]

        def running() -> int:
            return sum(jobs.status.get(j) == "running" for j in load_jobs())

        started_at = time.perf_counter()
        creating = [
            client.send_request(
                "logist/createJob",
                {"prompt": f"stream {i}", "agent": "mock", "agentOptions": options},
            )
            for i in range(JOBS)
        ]

        async def all_answered() -> tuple[list[Any], float]:
            answers = await asyncio.gather(*creating)
            return answers, time.perf_counter() - started_at

        answered = asyncio.ensure_future(all_answered())
        if scenario == "slow":
            with phase(f"starting {JOBS} slow jobs"):
                answers, _ = await answered
                load_ids = [a["jobId"] for a in answers]
                await jobs.wait(
                    lambda: all(jobs.status.get(j) in {"running"} | SETTLED for j in load_ids),
                    120,
                    f"{JOBS} jobs running",
                )
        # a flood is measured from the moment the requests are sent: its jobs stream (and
        # some end) before the last createJob is even answered
        info["start_s"] = round(time.perf_counter() - started_at, 2)
        running_before = running()
        messages_before = sum(jobs.messages.values())
        with phase(f"loaded: {n} codeAction + {n} listJobs"):
            began = time.perf_counter()
            loaded_expect = expect + (JOBS if scenario == "slow" else 0)
            phases["loaded"] = await measure(client, uri, line, n, loaded_expect, running)
            load_seconds = time.perf_counter() - began
        running_after = running()
        failed = {j: r for j, r in jobs.reasons.items() if j not in dict(seeded)}
        if failed:
            print(f"# {len(failed)} load job(s) failed, e.g. {next(iter(failed.values()))}")
        messages_during = sum(jobs.messages.values()) - messages_before
        answers, answered_s = await answered
        load_ids = [a["jobId"] for a in answers]
        info.update(
            create_answered_s=round(answered_s, 2),
            running_at_start=running_before,
            running_at_end=running_after,
            loaded_phase_s=round(load_seconds, 2),
            messages_received_during=messages_during,
            failed_jobs=len(failed),
        )

        with phase("ending the load jobs"):
            # A few at a time: the server's cancelJob waits in a worker thread for the
            # driver, which needs a worker thread of the same pool to settle the job.
            limit = asyncio.Semaphore(3)

            async def cancel(job_id: str) -> None:
                async with limit:
                    if jobs.status.get(job_id) not in SETTLED:
                        with contextlib.suppress(RpcError):  # it settled meanwhile
                            await client.request("logist/cancelJob", {"jobId": job_id})

            await asyncio.gather(*(cancel(job_id) for job_id in load_ids))
            await jobs.wait(
                lambda: all(jobs.status.get(j) in SETTLED for j in load_ids), 120, "the load"
            )
        await wait_hint(line, "after the load")
        with phase(f"after: {n} codeAction + {n} listJobs"):
            phases["after"] = await measure(client, uri, line, n, expect + JOBS)
    finally:
        await client.close()
    return {"phases": phases, "info": info}


PHASES = ("unedited", "idle", "loaded", "after")


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, help="requests of each kind per phase (200, --quick 60)")
    parser.add_argument("--scenario", choices=["slow", "flood"], default="flood")
    parser.add_argument("--seconds", type=float, default=30, help="slow: job length (30)")
    parser.add_argument("--lines", type=int, help="flood: lines per job (100000, --quick 30000)")
    parser.add_argument("--doc-lines", type=int, default=3000, help="document length (3000)")
    parser.add_argument("--review-jobs", type=int, help="jobs in review on it (5, --quick 3)")
    parser.add_argument(
        "--profile", metavar="FILE", help="run the server under cProfile, stats to FILE"
    )
    args = parser.parse_args()
    n = args.n or (60 if args.quick else 200)
    review_jobs = args.review_jobs or (3 if args.quick else 5)
    args.lines = args.lines or (30_000 if args.quick else 100_000)
    base = make_tmpdir("logist-bench-latency-", args.dir)
    print(f"# {machine_line()}; {load_line()}")
    load = (
        f"slow, {args.seconds:g} s, 4 lines/s each"
        if args.scenario == "slow"
        else f"flood, {args.lines} lines each"
    )
    print(
        f"# temp dir on {filesystem_of(base)}; n={n} per kind and phase; "
        f"{review_jobs} jobs x {HUNKS_PER_JOB} hunks in review on a {args.doc_lines}-line "
        f"buffer edited above every hunk; load: {JOBS} x {load}"
    )
    try:
        profile = Path(args.profile).resolve() if args.profile else None
        result = asyncio.run(
            run(base, n, args.scenario, args.seconds, args.lines, args.doc_lines, review_jobs,
                profile)
        )  # fmt: skip
    finally:
        kill_leftovers(base)
        release_tmpdir(base, args.keep)
    phases, info = result["phases"], result["info"]
    print(f"\n== request latency, ms (n={n} each; p99 = nearest rank)")
    header = f"{'request':<12} {'phase':<9} {'median':>8} {'p99':>8} {'max':>8}"
    print(header)
    print("-" * len(header))
    summary: dict[str, Any] = {"n": n, "load": load, "info": info}
    latency_rows(phases, PHASES, summary, width=9)
    mapping = summary["codeAction.idle"]["median_ms"] / summary["codeAction.unedited"]["median_ms"]
    summary["codeAction.edited_over_unedited_median"] = round(mapping, 2)
    print(f"codeAction   edited/unedited (the hunk mapping), idle median: {mapping:.2f}x")
    counts = sorted(phases["loaded"]["running"])
    info["running_per_sample"] = {
        "min": counts[0],
        "median": median(counts),
        "max": counts[-1],
    }
    print(
        f"\nloaded phase started {info['start_s']} s after the {JOBS} createJob requests "
        f"(all answered after {info['create_answered_s']} s) and took "
        f"{info['loaded_phase_s']} s; jobs running as each codeAction was sent: "
        f"min {counts[0]}, median {median(counts):g}, max {counts[-1]}; "
        f"{info['messages_received_during']} message events received meanwhile"
    )
    bar = summary["codeAction.loaded"]["p99_ms"]
    print(f"bar: codeAction p99 while {JOBS} jobs stream < 100 ms: {bar:.1f} ms -> ", end="")
    print("met" if bar < 100 else "NOT met")
    print(f"# at the end: {load_line()}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

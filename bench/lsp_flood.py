"""(a) A mock `flood` of 200,000 lines delivered to an LSP client, against a raw pipe.

logist: `logist-server` over stdio in a fresh git repository, driven by a small stdio
JSON-RPC client (below; also used by lsp_latency.py). The time runs from just before
`logist/createJob` {agent: mock, scenario: flood, lines: N} is written to the server until
the client has received `logist/jobEvent` notifications covering every `message` event
(coalesced ones count `data.count`) and the status `review`. This includes what the job
does besides streaming: the git worktree, starting the agent and harvesting its result.
raw: the same mock program
(`python -m logist_server.providers.agents.mock_program --scenario flood`) with its stdout on
a pipe, every line read in Python, from spawn to the last line.

No event may be lost: the seq ranges [firstSeq or seq, seq] of all the job's notifications
must tile 1..last_seq (last_seq read from the job store afterwards) with no gap and no
overlap, and the message count must be exactly N. A rep that fails the check fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from common import (
    PYTHON,
    VENV_BIN,
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
    release_tmpdir,
)

SERVER = str(VENV_BIN / "logist-server")
JOB_EVENT = "logist/jobEvent"
_encode = msgspec.json.encode
_decode = msgspec.json.decode


# -- a minimal stdio JSON-RPC / LSP client ---------------------------------------------------
class RpcError(Exception):
    def __init__(self, method: str, error: dict[str, Any]) -> None:
        super().__init__(f"{method}: {error.get('code')} {error.get('message')}")
        self.error = error


class LspClient:
    """Just enough LSP client for benchmarks: requests, notifications, server requests
    answered (progress create, code lens refresh, applyEdit), notifications to callbacks.

    Messages are framed and decoded with msgspec in one reader task, so the client's own
    cost stays small next to the server's.
    """

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self._writer = proc.stdin
        self._reader = proc.stdout
        self._next_id = 0
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self.handlers: dict[str, Callable[[Any], None]] = {}
        self.counts: dict[str, int] = {}
        self.bytes_in = 0
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def start(cls, env: dict[str, str], stderr_path: Path, argv: list[str]) -> LspClient:
        with stderr_path.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env=env,
                limit=1 << 24,
            )
        return cls(proc)

    def _write(self, message: dict[str, Any]) -> None:
        body = _encode(message)
        self._writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def notify(self, method: str, params: Any) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    def send_request(self, method: str, params: Any) -> asyncio.Future[Any]:
        """Write the request now; the future resolves with its result."""
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = (method, future)
        self._write({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        return future

    async def request(self, method: str, params: Any) -> Any:
        future = self.send_request(method, params)
        await self._writer.drain()
        return await future

    async def _read_loop(self) -> None:
        reader = self._reader
        try:
            while True:
                header = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in header.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.bytes_in += len(header) + length
                self._dispatch(_decode(body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for method, future in self._pending.values():
                if not future.done():
                    future.set_exception(
                        ConnectionError(f"server exited before answering {method}")
                    )

    def _dispatch(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:  # a response
            method_name, future = self._pending.pop(message["id"], ("?", None))
            if future is None or future.done():
                return
            if "error" in message and message["error"] is not None:
                future.set_exception(RpcError(method_name, message["error"]))
            else:
                future.set_result(message.get("result"))
            return
        self.counts[method] = self.counts.get(method, 0) + 1
        if "id" in message:  # a request from the server
            result: Any = None
            if method == "workspace/applyEdit":
                result = {"applied": False, "failureReason": "benchmark client"}
            self._write({"jsonrpc": "2.0", "id": message["id"], "result": result})
            return
        handler = self.handlers.get(method)
        if handler is not None:
            handler(message.get("params"))

    async def initialize(self, root: Path) -> None:
        uri = root.as_uri()
        await self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": uri,
                "workspaceFolders": [{"uri": uri, "name": root.name}],
                "capabilities": {
                    "window": {"workDoneProgress": True, "showMessage": {}},
                    "textDocument": {
                        "synchronization": {"didSave": True},
                        "codeAction": {
                            "codeActionLiteralSupport": {
                                "codeActionKind": {"valueSet": ["quickfix"]}
                            }
                        },
                        "publishDiagnostics": {"versionSupport": True},
                    },
                    "workspace": {"applyEdit": True, "workspaceFolders": True},
                },
            },
        )
        self.notify("initialized", {})

    async def open(self, path: Path, text: str | None = None) -> str:
        uri = path.as_uri()
        content = path.read_text() if text is None else text
        self.notify(
            "textDocument/didOpen",
            {
                "textDocument": {
                    "uri": uri,
                    "languageId": "plaintext",
                    "version": 1,
                    "text": content,
                }
            },
        )
        await self._writer.drain()
        return uri

    async def close(self, timeout: float = 5.0) -> None:
        """shutdown + exit, then make sure the process is gone."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.request("shutdown", None), timeout)
            self.notify("exit", None)
            await self._writer.drain()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """bench_env without PYTHONUNBUFFERED: with it, the mock agent would write its flood one
    syscall per line (the program buffers and flushes once); the server and the raw
    reference run the mock the same way."""
    env = bench_env(extra)
    env.pop("PYTHONUNBUFFERED", None)
    return env


def server_env(workspace_root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return child_env({"LOGIST_WORKSPACE_ROOT": str(workspace_root), **(extra or {})})


def server_argv(profile: Path | None) -> list[str]:
    """The server command; under cProfile (stats written at exit) when `profile` is set."""
    if profile is None:
        return [SERVER]
    code = "from logist_server.cli.main import serve_main; serve_main()"
    return [
        PYTHON,
        "-c",
        "import cProfile, sys; "
        f"sys.argv = ['logist-server']; cProfile.run({code!r}, {str(profile)!r})",
    ]


def kill_leftovers(root: Path) -> None:
    """Kill agent processes still working under `root` (a failed rep leaves some)."""
    try:
        import psutil
    except ImportError:
        return
    for proc in psutil.process_iter(["cwd"]):
        cwd = proc.info.get("cwd") or ""
        if cwd.startswith(str(root)) and proc.pid != os.getpid():
            with contextlib.suppress(psutil.Error):
                proc.kill()


# -- the flood -------------------------------------------------------------------------------
@dataclass
class Received:
    """What the client got for one job (texts are not kept, only their counts)."""

    ranges: list[tuple[int, int]] = field(default_factory=list)
    messages: int = 0
    notifications: int = 0
    coalesced: int = 0
    statuses: list[str] = field(default_factory=list)
    last_arrival: float = 0.0
    last_message: float = 0.0
    done_at: float | None = None


class FloodWatcher:
    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.jobs: dict[str, Received] = {}
        self.finished = asyncio.Event()
        self.job_id: str | None = None

    def on_event(self, params: dict[str, Any]) -> None:
        now = time.perf_counter()
        got = self.jobs.setdefault(params["jobId"], Received())
        seq = params["seq"]
        got.ranges.append((params.get("firstSeq", seq), seq))
        got.notifications += 1
        got.last_arrival = now
        if params["kind"] == "message":
            count = params["data"].get("count", 1) if "firstSeq" in params else 1
            got.messages += count
            got.last_message = now
            if "firstSeq" in params:
                got.coalesced += 1
        status = params.get("status")
        if status is not None:
            got.statuses.append(status)
        if got.done_at is None and (
            (got.messages >= self.lines and "review" in got.statuses)
            or status in ("failed", "cancelled", "halted", "stuck")
        ):
            got.done_at = now
            if params["jobId"] == self.job_id or self.job_id is None:
                self.finished.set()


def check_complete(got: Received, last_seq: int, lines: int) -> list[str]:
    """Problems with what arrived: gaps, overlaps, wrong counts."""
    problems: list[str] = []
    ranges = sorted(got.ranges)
    expected = 1
    for first, last in ranges:
        if first > last:
            problems.append(f"bad range {first}..{last}")
        if first > expected:
            problems.append(f"gap: seq {expected}..{first - 1} never arrived")
        elif first < expected:
            problems.append(f"overlap: seq {first}..{min(last, expected - 1)} arrived twice")
        expected = max(expected, last + 1)
    if expected - 1 != last_seq:
        problems.append(f"covered 1..{expected - 1}, the store has 1..{last_seq}")
    if got.messages != lines:
        problems.append(f"{got.messages} message events, expected {lines}")
    if not got.statuses or got.statuses[-1] != "review":
        problems.append(f"ended in {got.statuses[-1:] or 'no status'}, not review")
    return problems[:10]


def store_facts(repo: Path, job_id: str, start_wall: float) -> tuple[int, dict[str, float]]:
    """The job's last seq in the store, and when (ms after createJob was sent, by the
    commit times the store records) its milestones were committed."""
    db = sqlite3.connect(f"file:{repo / '.logist' / 'logist.db'}?mode=ro", uri=True)
    try:
        (last_seq,) = db.execute("SELECT last_seq FROM jobs WHERE id=?", (job_id,)).fetchone()
        rows = db.execute(
            "SELECT kind, min(time), max(time), min(seq) FROM events WHERE job_id=? "
            "GROUP BY kind, CASE WHEN kind='status' THEN seq END ORDER BY min(seq)",
            (job_id,),
        ).fetchall()
    finally:
        db.close()
    marks: dict[str, float] = {}
    for kind, first, last, _seq in rows:
        if kind == "message":
            marks["first message stored"] = ms(first - start_wall)
            marks["last message stored"] = ms(last - start_wall)
        elif kind == "started":
            marks["agent started"] = ms(first - start_wall)
        elif kind == "done":
            marks["done stored"] = ms(first - start_wall)
        elif kind == "status":  # one row per status event; the last one is review
            marks["review stored"] = ms(first - start_wall)
    return int(last_seq), marks


@dataclass
class FloodRep:
    seconds: float
    notifications: int
    coalesced: int
    bytes_in: int
    last_seq: int
    problems: list[str]
    marks: dict[str, float]


async def flood_rep(base: Path, rep: int, lines: int, profile: Path | None) -> FloodRep:
    repo = make_repo(base / f"repo{rep}", 0)
    env = server_env(base / f"workspaces{rep}")
    client = await LspClient.start(env, base / "server-stderr.log", server_argv(profile))
    watcher = FloodWatcher(lines)
    client.handlers[JOB_EVENT] = watcher.on_event
    try:
        await client.initialize(repo)
        await client.request("logist/listJobs", {})  # the server is up and initialized
        params = {
            "prompt": "flood the client",
            "agent": "mock",
            "agentOptions": {"scenario": "flood", "lines": str(lines)},
        }
        start_wall = time.time()
        start = time.perf_counter()
        created = await client.request("logist/createJob", params)
        job_id = created["jobId"]
        watcher.job_id = job_id
        if job_id in watcher.jobs and watcher.jobs[job_id].done_at is not None:
            watcher.finished.set()
        await asyncio.wait_for(watcher.finished.wait(), 120)
        got = watcher.jobs[job_id]
        assert got.done_at is not None
        seconds = got.done_at - start
        last_seq, marks = store_facts(repo, job_id, start_wall)
        marks["last message received"] = ms(got.last_message - start)
        marks["review received"] = ms(seconds)
        deadline = time.perf_counter() + 3.0  # events after review would arrive late
        while max(s for _f, s in got.ranges) < last_seq and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        problems = check_complete(got, last_seq, lines)
        return FloodRep(
            seconds, got.notifications, got.coalesced, client.bytes_in, last_seq, problems, marks
        )
    finally:
        await client.close()


def raw_rep(lines: int, cwd: Path) -> float:
    """Spawn the mock flood with stdout on a pipe and read every line in Python."""
    argv = [PYTHON, "-m", "logist_server.providers.agents.mock_program", "--prompt", "x"]
    argv += ["--scenario", "flood", "--opt", f"lines={lines}"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=cwd, env=child_env())
    assert proc.stdout is not None
    count = 0
    for _line in proc.stdout:
        count += 1
    elapsed = time.perf_counter() - start
    proc.wait()
    if count != lines + 1:  # the lines, then `done`
        raise RuntimeError(f"raw pipe read {count} lines, expected {lines + 1}")
    return elapsed


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, help="repetitions (default 3, --quick 1)")
    parser.add_argument("--lines", type=int, default=200_000, help="flood lines (200000)")
    parser.add_argument(
        "--profile", metavar="FILE", help="run the server under cProfile, stats to FILE.<rep>"
    )
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 3)
    base = make_tmpdir("logist-bench-flood-", args.dir)
    print(f"# {machine_line()}; {load_line()}")
    print(f"# temp dir on {filesystem_of(base)}; {args.lines} lines, {reps} rep(s)")
    raw: list[float] = []
    results: list[FloodRep] = []
    failed = False
    try:
        for rep in range(reps):
            with phase(f"rep {rep + 1}/{reps}"):
                raw.append(raw_rep(args.lines, base))
                profile = Path(f"{args.profile}.{rep}").resolve() if args.profile else None
                result = asyncio.run(flood_rep(base, rep, args.lines, profile))
                results.append(result)
            print(
                f"rep {rep + 1}: raw {ms(raw[-1]):.0f} ms, logist {ms(result.seconds):.0f} ms "
                f"({result.seconds / raw[-1]:.2f}x); {result.notifications} notifications "
                f"({result.coalesced} coalesced), {result.bytes_in / 1e6:.1f} MB, "
                f"seq 1..{result.last_seq}: "
                + ("complete" if not result.problems else "; ".join(result.problems))
            )
            print(
                "  timeline (ms after createJob): "
                + ", ".join(
                    f"{k} {v:.0f}" for k, v in sorted(result.marks.items(), key=lambda kv: kv[1])
                )
            )
            failed = failed or bool(result.problems)
    finally:
        kill_leftovers(base)
        release_tmpdir(base, args.keep)
    logist = [r.seconds for r in results]
    ratio = median(logist) / median(raw)
    paired = median([s / r for s, r in zip(logist, raw, strict=True)])
    print(f"\n== flood of {args.lines} lines to an LSP client (median of {reps})")
    print(f"raw pipe       {ms(median(raw)):8.0f} ms")
    print(f"logist-server  {ms(median(logist)):8.0f} ms")
    print(f"ratio          {ratio:8.2f}x   (paired per rep: {paired:.2f}x; bar: 3x)")
    print(f"complete       {'yes, every rep' if not failed else 'NO: events lost or repeated'}")
    print(f"# at the end: {load_line()}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "lines": args.lines,
                    "raw_ms": [round(ms(s), 1) for s in raw],
                    "logist_ms": [round(ms(s), 1) for s in logist],
                    "ratio": round(ratio, 3),
                    "paired_ratio": round(paired, 3),
                    "complete": not failed,
                    "notifications": [r.notifications for r in results],
                },
                indent=2,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

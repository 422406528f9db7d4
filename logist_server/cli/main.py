"""`logist`: the job engine from a terminal or a script.

Bad input prints one line on stderr and exits with status 2; `--json` on every command
prints machine-readable output on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from .. import __version__
from ..errors import ConflictError, LogistError, UsageError
from ..model import Job, JobStatus, Limits
from ..states import SETTLED

Handler = Callable[[argparse.Namespace], int]
_json = msgspec.json.Encoder()


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def out_json(value: Any) -> None:
    sys.stdout.buffer.write(_json.encode(value) + b"\n")
    sys.stdout.flush()


def start_dir(args: argparse.Namespace) -> Path:
    """`-C DIR` (given before or after the subcommand), else the current directory."""
    return Path(getattr(args, "directory", None) or args.top_directory or ".").resolve()


def engine_for(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ..engine import Engine

    return Engine.for_path(start_dir(args))


def parse_kv(items: Sequence[str], flag: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got '{item}'")
        result[key] = value
    return result


# -- run ---------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from ..requests import JobRequest, parse_range

    if args.prompt is None and args.prompt_file is None:
        raise UsageError("no prompt given: use --prompt TEXT or --prompt-file FILE")
    if args.prompt is not None and args.prompt_file is not None:
        raise UsageError("give --prompt or --prompt-file, not both")
    base = start_dir(args)
    if args.prompt_file is not None:
        try:
            prompt = (base / args.prompt_file).read_text()
        except OSError as exc:
            raise UsageError(
                f"cannot read --prompt-file {args.prompt_file}: {exc.strerror}"
            ) from None
    else:
        prompt = args.prompt
    request = JobRequest(
        prompt=prompt,
        agent=args.agent,
        agent_options=parse_kv(args.agent_opt, "--agent-opt"),
        model=args.model,
        runtime=args.runtime,
        runtime_options=parse_kv(args.runtime_opt, "--runtime-opt"),
        file=args.file,
        range=parse_range(args.range) if args.range else None,
        limits=Limits(
            max_cost_usd=args.max_cost,
            max_time_s=args.max_time,
            max_turns=args.max_turns,
            hang_timeout_s=args.hang_timeout,
        ),
        cwd=str(base),
    )
    engine = engine_for(args)
    job = engine.create_job(request)
    job = drive_with_progress(engine, job.id, args.json)
    if args.json:
        out_json(job)
    else:
        print(
            f"job {job.id}: {job.status.value}"
            + (f" ({job.status_reason})" if job.status_reason else "")
        )
        if job.status == JobStatus.REVIEW:
            print(f"  see the change: logist job diff {job.id}")
            print(f"  apply it:       logist job accept {job.id}")
    return 0 if job.status == JobStatus.REVIEW else 1


def drive_with_progress(engine: Any, job_id: str, json_mode: bool) -> Job:
    import asyncio  # costs ~70 ms of start-up: only commands that drive a job pay it

    from .progress import make_progress

    with make_progress(job_id, json_mode) as progress:
        try:
            job: Job = asyncio.run(engine.drive(job_id, progress))
        except KeyboardInterrupt:
            sys.stderr.write(f"logist: interrupted: cancelling job {job_id}\n")
            engine.cancel(job_id)
            raise
    return job


# -- job ---------------------------------------------------------------------------------
def open_store(args: argparse.Namespace) -> Any:
    """The repository's store without the engine (a fast path for listings), or None."""
    from ..git import find_repo
    from ..store import STORE_DIRNAME, JobStore

    info = find_repo(start_dir(args))
    if not (info.root / STORE_DIRNAME / "logist.db").exists():
        return None
    return JobStore(info.root, info.common_dir)


def cmd_job_list(args: argparse.Namespace) -> int:
    """Every job, oldest first; records stream out in batches (10,000 jobs stay fast)."""
    from .render import job_summary_line

    store = open_store(args)
    statuses = [JobStatus(s) for s in args.status] if args.status else None
    batches = store.iter_raw(statuses) if store is not None else iter(())
    out = sys.stdout.buffer
    if args.json:
        sep = b"["
        for batch in batches:
            out.write(sep + b",".join(batch))
            sep = b","
        out.write(b"[]\n" if sep == b"[" else b"]\n")
        return 0
    wrote = False
    for batch in batches:
        out.write("".join(job_summary_line(raw) for raw in batch).encode())
        wrote = True
    if not wrote:
        print("no jobs")
    return 0


def cmd_job_show(args: argparse.Namespace) -> int:
    from .render import job_details

    job = engine_for(args).get(args.job)
    if args.json:
        out_json(job)
    else:
        print(job_details(job))
    return 0


def cmd_job_diff(args: argparse.Namespace) -> int:
    engine = engine_for(args)
    patch = engine.diff(args.job)
    if args.json:
        job = engine.get(args.job)
        out_json({"id": job.id, "stats": job.result.diff, "patch": patch.decode(errors="replace")})
    else:
        sys.stdout.buffer.write(patch)
    return 0


def cmd_job_log(args: argparse.Namespace) -> int:
    from .render import event_line

    engine = engine_for(args)
    job = engine.get(args.job)
    seen = 0
    while True:
        events = engine.store.events(job.id, after=seen)
        for event in events:
            if args.json:
                sys.stdout.buffer.write(_json.encode(event) + b"\n")
            else:
                sys.stdout.write(event_line(event) + "\n")
            seen = event.seq
        sys.stdout.flush()
        if not args.follow:
            return 0
        settled = not events and engine.store.get(job.id).status in SETTLED
        if settled and not engine.store.events(job.id, after=seen):
            return 0
        time.sleep(0.1)


def cmd_job_answer(args: argparse.Namespace) -> int:
    job = engine_for(args).answer(args.job, args.text)
    if args.json:
        out_json(job)
    else:
        print(f"job {job.id}: {job.status.value}")
    return 0


def cmd_job_attach(args: argparse.Namespace) -> int:
    """Follow a job until it settles; drive it (re-attach) when nothing else does."""
    from ..locks import is_locked
    from .progress import make_progress

    engine = engine_for(args)
    job = engine.get(args.job)
    if job.status not in SETTLED and not is_locked(engine.store.lock_path(job.id)):
        job = drive_with_progress(engine, job.id, args.json)
    else:
        seen = engine.store.last_seq(job.id)
        with make_progress(job.id, args.json) as progress:
            while job.status not in SETTLED:
                if not is_locked(engine.store.lock_path(job.id)):
                    break  # its driver died while we watched: take over below
                time.sleep(0.1)
                events = engine.store.events(job.id, after=seen)
                if events:
                    progress(events)
                    seen = events[-1].seq
                job = engine.store.get(job.id)
        if job.status not in SETTLED:
            job = drive_with_progress(engine, job.id, args.json)
    if args.json:
        out_json(job)
    else:
        print(
            f"job {job.id}: {job.status.value}"
            + (f" ({job.status_reason})" if job.status_reason else "")
        )
    return 0 if job.status == JobStatus.REVIEW else 1


def cmd_job_accept(args: argparse.Namespace) -> int:
    engine = engine_for(args)
    try:
        job, written = engine.accept(args.job)
    except ConflictError as exc:
        if args.json:
            out_json({"error": str(exc), "conflicts": exc.files})
        raise
    if args.json:
        out_json({"id": job.id, "status": job.status, "files": written})
    else:
        print(f"job {job.id}: accepted, {len(written)} file(s) written")
        for path in written:
            print(f"  {path}")
    return 0


def _simple(action: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        engine = engine_for(args)
        job: Job = getattr(engine, action)(args.job)
        if args.json:
            out_json(job)
        else:
            print(f"job {job.id}: {job.status.value}")
        return 0

    return handler


def cmd_job_delete(args: argparse.Namespace) -> int:
    job_id = engine_for(args).delete(args.job)
    if args.json:
        out_json({"id": job_id, "deleted": True})
    else:
        print(f"job {job_id}: deleted")
    return 0


# -- providers, gc -----------------------------------------------------------------------
def cmd_agent_list(args: argparse.Namespace) -> int:
    from ..catalog import describe_agents
    from ..engine import default_agents

    rows = describe_agents(default_agents())
    if args.json:
        out_json(rows)
    else:
        for row in rows:
            state = row["version"] or "not installed"
            print(f"{row['name']:<12} {state:<16} {row['description']}")
    return 0


def cmd_runtime_list(args: argparse.Namespace) -> int:
    from ..catalog import describe_runtimes
    from ..engine import default_runtimes

    rows = describe_runtimes(default_runtimes())
    if args.json:
        out_json(rows)
    else:
        for row in rows:
            state = "available" if row["available"] else f"unavailable: {row['detail']}"
            print(f"{row['name']:<12} {state:<16} {row['description']}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    engine = engine_for(args)
    report = engine.gc()
    if args.json:
        out_json(report)
    else:
        for path in report.worktrees:
            print(f"removed worktree {path}")
        for branch in report.branches:
            print(f"removed branch {branch}")
        if not report.worktrees and not report.branches:
            print("nothing to remove")
    return 0


# -- parser ------------------------------------------------------------------------------
def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got '{text}'")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    common.add_argument("-C", dest="directory", default=None, metavar="DIR",
                        help="run as if started in DIR")  # fmt: skip

    parser = OneLineParser(prog="logist", description="Hand work to AI coding agents.")
    parser.add_argument("--version", action="version", version=f"logist {__version__}")
    parser.add_argument("-C", dest="top_directory", metavar="DIR", help="run as if started in DIR")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=OneLineParser)  # fmt: skip

    run = sub.add_parser("run", parents=[common], help="create a job, run it, wait for review")
    run.add_argument("--prompt", help="what the agent should do")
    run.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE")
    run.add_argument("--file", help="the file the job is about")
    run.add_argument("--range", metavar="L1-L2", help="lines of --file the job is about")
    run.add_argument("--agent", default=os.environ.get("LOGIST_AGENT", "mock"))
    run.add_argument("--agent-opt", action="append", default=[], metavar="K=V")
    run.add_argument("--model")
    run.add_argument("--runtime", default=os.environ.get("LOGIST_RUNTIME", "host"))
    run.add_argument("--runtime-opt", action="append", default=[], metavar="K=V")
    run.add_argument("--max-cost", type=_positive_float, metavar="USD")
    run.add_argument("--max-time", type=_positive_float, metavar="SECONDS")
    run.add_argument("--max-turns", type=_positive_int, metavar="N")
    run.add_argument("--hang-timeout", type=_positive_float, metavar="SECONDS")
    run.set_defaults(handler=cmd_run)

    job = sub.add_parser("job", help="inspect and control jobs")
    jobs = job.add_subparsers(dest="job_command", required=True, metavar="ACTION",
                              parser_class=OneLineParser)  # fmt: skip
    lst = jobs.add_parser("list", parents=[common], help="all jobs, oldest first")
    lst.add_argument("--status", action="append", choices=[s.value for s in JobStatus])
    lst.set_defaults(handler=cmd_job_list)
    for name, handler, text in (
        ("show", cmd_job_show, "a job's record"),
        ("diff", cmd_job_diff, "the change a job proposes, as a patch"),
        ("accept", cmd_job_accept, "apply a job's change to the working tree"),
        ("reject", _simple("reject"), "discard a job's change"),
        ("cancel", _simple("cancel"), "stop a job and its agent"),
        ("delete", cmd_job_delete, "remove a job, its workspace and files"),
    ):
        p = jobs.add_parser(name, parents=[common], help=text)
        p.add_argument("job", help="job id (or a unique prefix)")
        p.set_defaults(handler=handler)
    answer = jobs.add_parser("answer", parents=[common], help="answer a job's question")
    answer.add_argument("job")
    answer.add_argument("text", help="the answer")
    answer.set_defaults(handler=cmd_job_answer)
    attach = jobs.add_parser(
        "attach", parents=[common], help="follow a job until it settles, re-attaching if needed"
    )
    attach.add_argument("job")
    attach.set_defaults(handler=cmd_job_attach)
    log = jobs.add_parser("log", parents=[common], help="a job's events")
    log.add_argument("job")
    log.add_argument("--follow", "-f", action="store_true", help="keep printing until it settles")
    log.set_defaults(handler=cmd_job_log)

    agent = sub.add_parser("agent", help="agent providers")
    agent_sub = agent.add_subparsers(
        dest="agent_command", required=True, parser_class=OneLineParser
    )
    agent_sub.add_parser("list", parents=[common]).set_defaults(handler=cmd_agent_list)
    runtime = sub.add_parser("runtime", help="runtime providers")
    runtime_sub = runtime.add_subparsers(dest="runtime_command", required=True,
                                         parser_class=OneLineParser)  # fmt: skip
    runtime_sub.add_parser("list", parents=[common]).set_defaults(handler=cmd_runtime_list)

    gc = sub.add_parser("gc", parents=[common], help="remove stale worktrees and branches")
    gc.set_defaults(handler=cmd_gc)

    serve = sub.add_parser("serve", help="run the language server (stdio, or --tcp HOST:PORT)")
    _add_serve_arguments(serve)
    serve.set_defaults(handler=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args)
        return status
    except LogistError as exc:
        sys.stderr.write(f"logist: error: {exc}\n")
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as git does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        if os.environ.get("LOGIST_DEBUG", "0") not in ("", "0"):
            raise
        sys.stderr.write(
            f"logist: internal error: {type(exc).__name__}: {exc} (LOGIST_DEBUG=1 shows details)\n"
        )
        return 1


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server.main import serve

    serve(tcp=args.tcp)
    return 0


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdio", action="store_true", help="talk LSP over stdio (the default)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead (127.0.0.1:PORT)")


def serve_main(argv: Sequence[str] | None = None) -> int:
    """`logist-server`: the language server."""
    parser = OneLineParser(prog="logist-server", description="The Logist language server.")
    parser.add_argument("--version", action="version", version=f"logist-server {__version__}")
    _add_serve_arguments(parser)
    args = parser.parse_args(argv)
    return cmd_serve(args)

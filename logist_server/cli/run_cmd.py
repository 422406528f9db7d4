"""`logist run`: create a job, drive it with progress, wait for review."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import UsageError
from ..model import Job, JobStatus, Limits
from .common import (
    engine_for,
    out_json,
    parse_kv,
    positive_float,
    positive_int,
    start_dir,
)


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


def register(sub: Any, common: argparse.ArgumentParser) -> None:
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
    run.add_argument("--max-cost", type=positive_float, metavar="USD")
    run.add_argument("--max-time", type=positive_float, metavar="SECONDS")
    run.add_argument("--max-turns", type=positive_int, metavar="N")
    run.add_argument("--hang-timeout", type=positive_float, metavar="SECONDS")
    run.set_defaults(handler=cmd_run)

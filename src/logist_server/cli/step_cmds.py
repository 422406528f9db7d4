"""Step control: `job create`, `step`, `run`, `poststep`, `preview`, `rerun`, `restep`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from logist_server.cli.common import engine_for, out_json, start_dir
from logist_server.cli.run_cmd import (
    add_request_arguments,
    drive_with_progress,
    print_preview,
    report_settled,
    request_from_args,
)
from logist_server.domain.errors import UsageError


def cmd_job_create(args: argparse.Namespace) -> int:
    """A draft job: validated and stored, nothing runs."""
    import msgspec

    engine = engine_for(args)
    request = msgspec.structs.replace(request_from_args(args, engine), draft=True)
    job = engine.create_job(request)
    if args.json:
        out_json(job)
    else:
        print(f"job {job.id}: draft")
        print(f"  see what would run: logist job preview {job.id}")
        print(f"  run one phase:      logist job step {job.id}")
        print(f"  run to review:      logist job run {job.id}")
    return 0


def cmd_job_step(args: argparse.Namespace) -> int:
    """One phase (provisioning, or one agent step), then the job waits, paused."""
    engine = engine_for(args)
    if args.dry_run:
        return print_preview(engine.preview(args.job), args.json)
    job = _unsettled(engine, args.job)
    job = drive_with_progress(engine, job.id, args.json, single_phase=True, resume=True)
    return report_phase(job, args.json)


def cmd_job_run(args: argparse.Namespace) -> int:
    """Phases until review or a stop state (a draft or paused job continues)."""
    engine = engine_for(args)
    if args.dry_run:
        return print_preview(engine.preview(args.job), args.json)
    job = engine.get(args.job)
    return report_settled(drive_with_progress(engine, job.id, args.json, resume=True), args.json)


def cmd_job_poststep(args: argparse.Namespace) -> int:
    """Feed a recorded agent response as the next step, instead of running the agent."""
    from logist_server.providers.runtimes.replay import ReplayRuntime

    base = start_dir(args)
    response = _readable(base / args.response, "--response")
    patch = _readable(base / args.patch, "--patch") if args.patch else None
    engine = engine_for(args)
    job = _unsettled(engine, args.job)
    job = drive_with_progress(
        engine,
        job.id,
        args.json,
        single_phase=True,
        resume=True,
        replay=ReplayRuntime(response),
        patch=patch,
    )
    return report_phase(job, args.json)


def cmd_job_preview(args: argparse.Namespace) -> int:
    return print_preview(engine_for(args).preview(args.job), args.json)


def cmd_job_rerun(args: argparse.Namespace) -> int:
    engine = engine_for(args)
    job = engine.rerun(args.job)
    return drive_started(engine, job, f"rerun of {args.job}", args.json)


def cmd_job_restep(args: argparse.Namespace) -> int:
    engine = engine_for(args)
    job = engine.restep(args.job)
    return drive_started(engine, job, "back to the checkpoint before its last step", args.json)


def drive_started(engine: Any, job: Any, what: str, json_mode: bool) -> int:
    """Say what became of `job` (unless JSON), drive it until it settles, report it."""
    if not json_mode:
        print(f"job {job.id}: {what}")
    return report_settled(drive_with_progress(engine, job.id, json_mode), json_mode)


def report_phase(job: Any, json_mode: bool) -> int:
    """After one phase: where the job is; exit 0 unless it failed or stopped."""
    from logist_server.domain.states import SETTLED

    if json_mode:
        out_json(job)
    else:
        reason = f" ({job.status_reason})" if job.status_reason else ""
        print(f"job {job.id}: {job.status.value}{reason}")
        if job.status not in SETTLED:
            print(f"  next phase: logist job step {job.id}   (or: logist job run {job.id})")
    settled_badly = job.status in SETTLED and job.status.value != "review"
    return 1 if settled_badly else 0


def _unsettled(engine: Any, ref: str) -> Any:
    """The job, unless its run is over (then nothing would run: say so)."""
    from logist_server.domain.states import SETTLED

    job = engine.get(ref)
    if job.status in SETTLED:
        raise UsageError(
            f"job {job.id} is {job.status.phrase}: nothing would run "
            f"(logist job restep {job.id} runs its last step again; rerun starts over)"
        )
    return job


def _readable(path: Path, flag: str) -> Path:
    if not path.is_file():
        raise UsageError(f"{flag}: no such file: {path}")
    return path


def register_job_actions(jobs: Any, common: argparse.ArgumentParser) -> None:
    create = jobs.add_parser("create", parents=[common], help="create a draft job; nothing runs")
    add_request_arguments(create)
    create.set_defaults(handler=cmd_job_create)
    for name, handler, text in (
        ("step", cmd_job_step, "run one phase of a job, then pause it"),
        ("run", cmd_job_run, "run a job's phases until review or a stop"),
    ):
        p = jobs.add_parser(name, parents=[common], help=text)
        p.add_argument("job")
        p.add_argument("--dry-run", action="store_true",
                       help="show the prompt and command that would run")  # fmt: skip
        p.set_defaults(handler=handler)
    post = jobs.add_parser("poststep", parents=[common],
                           help="feed a recorded agent response as the next step")  # fmt: skip
    post.add_argument("job")
    post.add_argument("--response", required=True, metavar="FILE",
                      help="the agent's output, in its own format")  # fmt: skip
    post.add_argument("--patch", metavar="FILE", help="a patch standing in for its edits")
    post.set_defaults(handler=cmd_job_poststep)
    for name, handler, text in (
        ("preview", cmd_job_preview, "the exact prompt and command the next step would run"),
        ("rerun", cmd_job_rerun, "run the job again as a new job from the same base"),
        ("restep", cmd_job_restep, "go back before the last step and run it again"),
    ):
        p = jobs.add_parser(name, parents=[common], help=text)
        p.add_argument("job")
        p.set_defaults(handler=handler)

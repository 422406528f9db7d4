"""`logist job ...`: inspect and control jobs."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from logist_server.cli.changes_cmd import register_request_changes
from logist_server.cli.common import JSON, Handler, engine_for, out_json, start_dir
from logist_server.cli.hunk_cmds import printable, register_hunks
from logist_server.cli.run_cmd import drive_with_progress
from logist_server.cli.step_cmds import register_job_actions
from logist_server.domain.errors import ConflictError, JobBusyError
from logist_server.domain.model import Job, JobStatus
from logist_server.domain.states import SETTLED
from logist_server.support.locks import is_locked


def open_store(args: argparse.Namespace) -> Any:
    """The repository's store without the engine (a fast path for listings), or None."""
    from logist_server.store.job_store import JobStore, store_present
    from logist_server.vcs.git import find_repo

    info = find_repo(start_dir(args))
    if not store_present(info.root):
        return None  # no jobs yet
    return JobStore(info.root, info.common_dir)


def cmd_job_list(args: argparse.Namespace) -> int:
    """Every job, oldest first, in batches (10,000 jobs stay fast).

    The human listing reads the store's summary index, never a record."""
    store = open_store(args)
    statuses = [JobStatus(s) for s in args.status] if args.status else None
    out = sys.stdout.buffer
    if args.json:
        from logist_server.support.pipesize import grow_pipe

        grow_pipe(out.fileno())
        sep = b"["
        for batch in store.iter_raw(statuses) if store is not None else ():
            out.write(sep + b",".join(batch))
            sep = b","
        out.write(b"[]\n" if sep == b"[" else b"]\n")
        return 0
    lines = store.listing_lines(statuses) if store is not None else []
    for start in range(0, len(lines), 2000):
        out.write("".join(lines[start : start + 2000]).encode())
    if not lines:
        print("no jobs")
    return 0


def cmd_job_show(args: argparse.Namespace) -> int:
    from logist_server.cli.render import job_details

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
    from logist_server.cli.render import event_line

    engine = engine_for(args)
    job = engine.get(args.job)
    seen = 0
    while True:
        events = engine.store.events(job.id, after=seen)
        for event in events:
            if args.json:
                sys.stdout.buffer.write(JSON.encode(event) + b"\n")
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
    """Follow a job until it settles; drive it (re-attach) whenever nothing else does."""
    engine = engine_for(args)
    job = engine.get(args.job)
    while job.status not in SETTLED and not job.paused and job.status != JobStatus.DRAFT:
        if not is_locked(engine.store.lock_path(job.id)):
            try:
                job = drive_with_progress(engine, job.id, args.json)
                continue
            except JobBusyError:
                pass  # another process took it a moment before us: follow that one
        job = follow_driven(engine, job.id, args.json)
    if args.json:
        out_json(job)
    else:
        print(
            f"job {job.id}: {job.status.value}"
            + (f" ({job.status_reason})" if job.status_reason else "")
        )
        if job.paused:
            print(f"  paused by `job step`: continue with logist job run {job.id}")
        elif job.status == JobStatus.DRAFT:
            print(f"  a draft: run it with logist job step {job.id}, or logist job run {job.id}")
    return 0 if job.status == JobStatus.REVIEW else 1


def follow_driven(engine: Any, job_id: str, json_mode: bool) -> Job:
    """Show the events of a job another process drives, until it settles or its driver dies."""
    from logist_server.cli.progress import make_progress, store_figures

    seen = engine.store.last_seq(job_id)
    job: Job = engine.store.get(job_id)
    with make_progress(job_id, json_mode, store_figures(engine.store, job_id)) as progress:
        while job.status not in SETTLED and is_locked(engine.store.lock_path(job_id)):
            time.sleep(0.1)
            events = engine.store.events(job_id, after=seen)
            if events:
                progress(events)
                seen = events[-1].seq
            job = engine.store.get(job_id)
    return job


def cmd_job_accept(args: argparse.Namespace) -> int:
    engine = engine_for(args)
    hunks: list[str] | None = args.hunk
    before = set(engine.get(args.job).result.accepted_hunks) if hunks is not None else set()
    try:
        job, written = engine.accept(args.job, hunks)
    except ConflictError as exc:
        if args.json:
            out_json({"error": str(exc), "conflicts": exc.files})
        raise
    if hunks is not None:
        ids = [h for h in job.result.accepted_hunks if h not in before]  # a rename: both halves
        return _hunks_accepted(job, ids, written, args.json)
    if args.json:
        out_json({"id": job.id, "status": job.status, "files": written})
    else:
        print(f"job {job.id}: accepted, {len(written)} file(s) written")
        for path in written:
            print(f"  {printable(path)}")
    return 0


def _hunks_accepted(job: Job, ids: list[str], written: list[str], json_mode: bool) -> int:
    if json_mode:
        out_json({"id": job.id, "status": job.status, "hunks": ids, "files": written})
        return 0
    state = "accepted (every hunk is)" if job.status == JobStatus.ACCEPTED else "still in review"
    print(f"job {job.id}: {len(ids)} hunk(s) accepted, {len(written)} file(s) written; {state}")
    for path in written:
        print(f"  {printable(path)}")
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


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from logist_server.cli.common import OneLineParser

    job = sub.add_parser("job", help="inspect and control jobs")
    jobs = job.add_subparsers(dest="job_command", required=True, metavar="ACTION",
                              parser_class=OneLineParser)  # fmt: skip
    lst = jobs.add_parser("list", parents=[common], help="all jobs, oldest first")
    lst.add_argument("--status", action="append", choices=[s.value for s in JobStatus])
    lst.set_defaults(handler=cmd_job_list)
    for name, handler, text in (
        ("show", cmd_job_show, "a job's record"),
        ("diff", cmd_job_diff, "the change a job proposes, as a patch"),
        ("reject", _simple("reject"), "discard a job's change"),
        ("cancel", _simple("cancel"), "stop a job and its agent"),
        ("delete", cmd_job_delete, "remove a job, its workspace and files"),
    ):
        p = jobs.add_parser(name, parents=[common], help=text)
        p.add_argument("job", help="job id (or a unique prefix)")
        p.set_defaults(handler=handler)
    accept = jobs.add_parser(
        "accept", parents=[common], help="apply a job's change (or some hunks) to the working tree"
    )
    accept.add_argument("job", help="job id (or a unique prefix)")
    accept.add_argument(
        "--hunk", action="append", metavar="H",
        help="accept only this hunk (an id from `logist job hunks`; repeatable)",
    )  # fmt: skip
    accept.set_defaults(handler=cmd_job_accept)
    register_hunks(jobs, common)
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
    register_job_actions(jobs, common)
    register_request_changes(jobs, common)

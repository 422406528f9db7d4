"""`logist run`: create a job, drive it with progress, wait for review."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from logist_server.cli.common import (
    bounded,
    engine_for,
    non_negative_int,
    out_json,
    parse_kv,
    positive_float,
    positive_int,
    read_text_file,
    start_dir,
)
from logist_server.config.loader import DEFAULT_SOURCE, user_config_path
from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job, JobStatus
from logist_server.support.redaction import redact_text

if TYPE_CHECKING:
    from logist_server.domain.knobs import Knob


def request_from_args(args: argparse.Namespace, engine: Any) -> Any:
    """The job request the flags ask for, on top of the repository's configuration."""
    from logist_server.domain.requests import parse_range, request_from_settings

    if args.prompt is None and args.prompt_file is None:
        raise UsageError("no prompt given: use --prompt TEXT or --prompt-file FILE")
    if args.prompt is not None and args.prompt_file is not None:
        raise UsageError("give --prompt or --prompt-file, not both")
    base = start_dir(args)
    if args.prompt_file is not None:
        prompt = read_text_file(base / args.prompt_file, "--prompt-file", args.prompt_file)
    else:
        prompt = args.prompt
    effective = engine.configure(overrides_from_args(args))
    settings = effective.settings
    if effective.source_of("agent") == DEFAULT_SOURCE:
        settings = msgspec.structs.replace(settings, agent=unattended_agent())
    return request_from_settings(
        settings,
        prompt,
        file=args.file,
        range=parse_range(args.range) if args.range else None,
        cwd=str(base),
    )


#: An agent for unattended runs (CI, the tests, the demo) where no configuration names one.
DEFAULT_AGENT_VARIABLE = "LOGIST_DEFAULT_AGENT"


def unattended_agent() -> str:
    """The agent when neither a flag, a variable nor a configuration file names one:
    `$LOGIST_DEFAULT_AGENT`, else a UsageError saying which installed agents could run
    and how to choose (never a silent mock run)."""
    import os

    chosen = os.environ.get(DEFAULT_AGENT_VARIABLE, "").strip()
    if chosen:
        return chosen
    from logist_server.engine.facade import default_agents
    from logist_server.providers.catalog import describe_agents

    rows = describe_agents(default_agents())
    installed = [r["name"] for r in rows if r["installed"] and r["name"] != "mock"]
    how = f"choose one with --agent NAME or `agent: NAME` in {user_config_path()}"
    if installed:
        raise UsageError(f"no agent chosen; installed: {', '.join(installed)}: {how}")
    raise UsageError(
        f"no agent chosen and no agent installed (`logist doctor` says how to install one): "
        f"{how} (--agent mock runs the scripted test agent)"
    )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (None where a flag was not given)."""
    return {
        "agent": args.agent,
        "model": args.model,
        "agent_options": parse_kv(args.agent_opt, "--agent-opt") or None,
        "runtime": args.runtime,
        "runtime_options": parse_kv(args.runtime_opt, "--runtime-opt") or None,
        "role": args.role,
        "fallback_agent_options": parse_kv(args.fallback_agent_opt, "--fallback-agent-opt") or None,
        "permissions": permission_overrides(args) or None,
    } | knob_overrides(args)


def permission_overrides(args: argparse.Namespace) -> dict[str, str]:
    """`--allow execute --deny fetch`: the job's decision per tool kind (permissions.py)."""
    chosen: dict[str, str] = {}
    for decision in ("allow", "ask", "deny"):
        for kind in getattr(args, f"perm_{decision}"):
            if chosen.get(kind, decision) != decision:
                raise UsageError(f"--{chosen[kind]} {kind} and --{decision} {kind}: choose one")
            chosen[kind] = decision
    return chosen


def knob_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The limit and policy flags (one per knob that has a flag: see domain/knobs.py)."""
    from logist_server.domain.settings import knobs

    sections: dict[str, dict[str, Any]] = {}
    for k in knobs():
        if k.flag is not None:
            sections.setdefault(k.section, {})[k.key] = getattr(args, k.dest)
    return sections


def cmd_run(args: argparse.Namespace) -> int:
    engine = engine_for(args)
    request = request_from_args(args, engine)
    if args.dry_run:
        return print_preview(engine.preview_request(request), args.json)
    job = engine.create_job(request)
    job = drive_with_progress(engine, job.id, args.json)
    return report_settled(job, args.json)


def report_settled(job: Job, json_mode: bool) -> int:
    """Print where the job ended; exit status 0 only for review."""
    if json_mode:
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


def print_preview(preview: Any, json_mode: bool) -> int:
    """What would run: the rendered prompt, the command line, environment and runtime."""
    import shlex

    if json_mode:
        out_json(preview)
        return 0
    lines = [f"# agent {preview.agent} on runtime {preview.runtime}, role {preview.role}"]
    lines.append(f"# in {preview.cwd}")
    lines += [f"{key}={shlex.quote(value)} \\" for key, value in sorted(preview.env.items())]
    lines += [shlex.join(preview.argv), "# prompt:", preview.prompt]
    sys.stdout.write(redact_text("\n".join(lines)))  # declared secrets as `***`
    return 0


def drive_with_progress(engine: Any, job_id: str, json_mode: bool, **options: Any) -> Job:
    """Drive the job here with progress on the terminal; `options` go to `Engine.drive`."""
    import asyncio  # costs ~70 ms of start-up: only commands that drive a job pay it

    from logist_server.cli.progress import make_progress, store_figures

    with make_progress(job_id, json_mode, store_figures(engine.store, job_id)) as progress:
        try:
            job: Job = asyncio.run(engine.drive(job_id, progress, **options))
        except KeyboardInterrupt:
            sys.stderr.write(f"logist: interrupted: cancelling job {job_id}\n")
            engine.cancel(job_id)
            raise
    return job


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that describe a job; unset ones come from the configuration."""
    parser.add_argument("--prompt", help="what the agent should do")
    parser.add_argument("--prompt-file", metavar="FILE", help="read the prompt from FILE")
    parser.add_argument("--file", help="the file the job is about")
    parser.add_argument("--range", metavar="L1-L2", help="lines of --file the job is about")
    parser.add_argument("--agent", help="agent provider (see `logist agent list`)")
    parser.add_argument("--agent-opt", action="append", default=[], metavar="K=V")
    parser.add_argument("--model", help="the agent's model (its own default when unset)")
    parser.add_argument("--runtime", help="runtime provider (see `logist runtime list`)")
    parser.add_argument("--runtime-opt", action="append", default=[], metavar="K=V")
    parser.add_argument("--role", help="role of the first step (see `logist role list`)")
    add_permission_arguments(parser)
    parser.add_argument("--fallback-agent-opt", action="append", default=[], metavar="K=V",
                        help="an option of the fallback agent (--fallback-agent)")  # fmt: skip
    add_knob_arguments(parser)


def add_permission_arguments(parser: argparse.ArgumentParser) -> None:
    """`--allow KIND`, `--ask KIND`, `--deny KIND` (repeatable): what the agent may do
    without asking, per ACP tool kind, over the configuration's `permissions`."""
    from logist_server.domain.permissions import TOOL_KINDS

    helps = {
        "allow": "let the agent use tools of KIND without asking (e.g. execute)",
        "ask": "ask before the agent uses a tool of KIND",
        "deny": "refuse the agent tools of KIND (e.g. fetch)",
    }
    for decision, text in helps.items():
        parser.add_argument(f"--{decision}", dest=f"perm_{decision}", action="append",
                            default=[], choices=TOOL_KINDS, metavar="KIND",
                            help=f"{text}; KIND is one of {', '.join(TOOL_KINDS)}")  # fmt: skip


def add_knob_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per limit or policy knob that has one, typed and bounded by its declaration
    (the bounds configuration files have too)."""
    from logist_server.domain.settings import knobs

    for k in knobs():
        if k.flag is None:
            continue
        if k.type is bool:
            parser.add_argument(k.flag, dest=k.dest, action=argparse.BooleanOptionalAction,
                                default=None, help=k.help)  # fmt: skip
            continue
        parser.add_argument(k.flag, dest=k.dest, type=_flag_type(k), metavar=k.metavar,
                            help=k.help)  # fmt: skip


def _flag_type(k: Knob) -> Callable[[str], Any]:
    """The argparse type of a knob's flag: its type and bounds, with the CLI's messages."""
    if k.type is str:
        return str
    if k.type is float:
        if k.gt == 0:
            return positive_float
        return _non_negative_float
    parse = positive_int if k.gt == 0 else non_negative_int
    return bounded(parse, int(k.le)) if k.le is not None else parse


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or more, got '{text}'")
    return value


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    run = sub.add_parser("run", parents=[common], help="create a job, run it, wait for review")
    add_request_arguments(run)
    run.add_argument("--dry-run", action="store_true",
                     help="show the prompt and command that would run; create nothing")  # fmt: skip
    run.set_defaults(handler=cmd_run)

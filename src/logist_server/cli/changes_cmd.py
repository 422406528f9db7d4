"""`logist job request-changes JOB --comment TEXT [--hunk ID] ...`: send a job in review back
to its worker with comments, then drive it until it settles again."""

from __future__ import annotations

import argparse
from typing import Any

from logist_server.cli.common import engine_for
from logist_server.cli.step_cmds import drive_started
from logist_server.domain.errors import UsageError


class _Comments(argparse.Action):
    """`--comment TEXT` starts a comment; a `--hunk ID` right after it puts it on that hunk."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        comments: list[dict[str, str]] = list(getattr(namespace, "comments", None) or [])
        if option_string == "--comment":
            comments.append({"text": str(values)})
        else:
            if not comments or "hunk" in comments[-1]:
                parser.error("--hunk ID must follow the --comment TEXT it is about")
            comments[-1]["hunk"] = str(values)
        namespace.comments = comments


def cmd_job_request_changes(args: argparse.Namespace) -> int:
    from logist_server.engine.change_requests import ChangeComment

    given: list[dict[str, str]] = args.comments or []
    if not given:
        raise UsageError("give at least one --comment TEXT (and --hunk ID after it for a hunk)")
    comments = [ChangeComment(c["text"], c.get("hunk")) for c in given]
    engine = engine_for(args)
    job = engine.request_changes(args.job, comments)
    what = f"changes requested ({len(comments)} comment(s)): a worker step addresses them"
    return drive_started(engine, job, what, args.json)


def register_request_changes(jobs: Any, common: argparse.ArgumentParser) -> None:
    p = jobs.add_parser(
        "request-changes",
        parents=[common],
        help="send a job in review back to its agent with comments, and run it again",
    )
    p.add_argument("job", help="job id (or a unique prefix)")
    p.add_argument(
        "--comment", action=_Comments, dest="comments", metavar="TEXT", required=True,
        help="what should change (repeatable); on the whole job unless --hunk follows",
    )  # fmt: skip
    p.add_argument(
        "--hunk", action=_Comments, dest="comments", metavar="ID",
        help="the hunk (an id from `logist job hunks`) the --comment before it is about",
    )  # fmt: skip
    p.set_defaults(handler=cmd_job_request_changes, comments=None)

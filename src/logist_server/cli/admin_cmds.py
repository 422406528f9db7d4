"""Providers, garbage collection and the language server: `agent`, `runtime`, `gc`, `serve`."""

from __future__ import annotations

import argparse
from typing import Any

from logist_server.cli.common import engine_for, out_json


def cmd_agent_list(args: argparse.Namespace) -> int:
    from logist_server.engine.facade import default_agents
    from logist_server.providers.catalog import describe_agents

    rows = describe_agents(default_agents())
    if args.json:
        out_json(rows)
    else:
        for row in rows:
            state = row["version"] or "not installed"
            login = row["credentials"]
            login = "no credentials" if login is None else f"credentials: {login}"
            if not row["installed"]:
                login = "-"
            print(f"{row['name']:<12} {state:<16} {login:<32} {row['description']}")
    return 0


def cmd_runtime_list(args: argparse.Namespace) -> int:
    from logist_server.engine.facade import default_runtimes
    from logist_server.providers.catalog import describe_runtimes

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
    report = engine.gc(dry_run=args.dry_run, force=args.force)
    if args.json:
        out_json(report)
        return 0
    verb = "would remove" if report.dry_run else "removed"
    for path in report.worktrees:
        print(f"{verb} workspace {path}")
    for branch in report.branches:
        print(f"{verb} branch {branch}")
    for reason in report.kept:
        print(f"kept {reason}")
    if not report.worktrees and not report.branches:
        print("nothing to remove")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from logist_server.domain.errors import UsageError
    from logist_server.lsp.main import serve

    if args.tcp is not None and args.stdio:
        raise UsageError("--stdio and --tcp exclude each other")
    if args.tcp is None and args.token_file is not None:
        raise UsageError("--token-file needs --tcp (over stdio no token is used)")
    return serve(tcp=args.tcp, token_file=args.token_file)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdio", action="store_true", help="talk LSP over stdio (the default)")
    tcp_help = "listen on TCP instead (HOST defaults to 127.0.0.1; PORT 0: any free port)"
    parser.add_argument("--tcp", metavar="HOST:PORT", help=tcp_help)
    token_help = (
        "with --tcp: read the token clients must send from FILE "
        "(default: LOGIST_TOKEN, else a new one, written to a 0600 file)"
    )
    parser.add_argument("--token-file", metavar="FILE", help=token_help)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    from logist_server.cli.common import OneLineParser

    agent = sub.add_parser("agent", help="agent providers")
    agent_sub = agent.add_subparsers(
        dest="agent_command", required=True, parser_class=OneLineParser
    )
    agent_sub.add_parser("list", parents=[common]).set_defaults(handler=cmd_agent_list)
    runtime = sub.add_parser("runtime", help="runtime providers")
    runtime_sub = runtime.add_subparsers(dest="runtime_command", required=True,
                                         parser_class=OneLineParser)  # fmt: skip
    runtime_sub.add_parser("list", parents=[common]).set_defaults(handler=cmd_runtime_list)

    gc = sub.add_parser(
        "gc", parents=[common], help="remove workspaces and branches of settled jobs"
    )
    gc.add_argument("--dry-run", action="store_true", help="print what would be removed")
    gc.add_argument(
        "--force", action="store_true", help="also remove workspaces with unharvested changes"
    )
    gc.set_defaults(handler=cmd_gc)

    serve = sub.add_parser("serve", help="run the language server (stdio, or --tcp HOST:PORT)")
    add_serve_arguments(serve)
    serve.set_defaults(handler=cmd_serve)

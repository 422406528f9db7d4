"""`logist`: the job engine from a terminal or a script.

Bad input prints one line on stderr and exits with status 2; `--json` on every command
prints machine-readable output on stdout. Each command group lives in its own module
with a `register(subparsers, common)` function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from logist_server import __version__
from logist_server.cli import admin_cmds, config_cmds, doctor_cmd, job_cmds, run_cmd
from logist_server.cli.common import OneLineParser
from logist_server.cli.exits import debugging, internal_error, stdout_gone
from logist_server.domain.errors import LogistError

COMMAND_MODULES = (run_cmd, job_cmds, config_cmds, admin_cmds, doctor_cmd)


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
    for module in COMMAND_MODULES:
        module.register(sub, common)
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
    except BrokenPipeError:
        return stdout_gone()
    except Exception as exc:
        if debugging():
            raise
        if isinstance(exc, OSError) and exc.filename is not None:
            # A file the command needed and could not use: say which (a permission, a
            # read-only mount, a full disk), not a traceback.
            sys.stderr.write(f"logist: error: {exc.filename}: {exc.strerror or exc}\n")
            return 2
        return internal_error(exc)


def serve_main(argv: Sequence[str] | None = None) -> int:
    """`logist-server`: the language server."""
    parser = OneLineParser(prog="logist-server", description="The Logist language server.")
    parser.add_argument("--version", action="version", version=f"logist-server {__version__}")
    admin_cmds.add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return admin_cmds.cmd_serve(args)
    except LogistError as exc:
        sys.stderr.write(f"logist-server: error: {exc}\n")
        return exc.exit_status

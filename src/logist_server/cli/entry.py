"""The `logist` console script: `job list` on a lean path, every other command in the full CLI.

Importing `logist_server.cli.main` costs argparse, every command module and msgspec (about
60 ms). `logist job list` does not need them: `fast_list` serves it when the arguments
have a plain, valid shape, and otherwise (or when anything is unusual) hands the invocation,
untouched, to `logist_server.cli.main.main`, so errors stay the full CLI's.
"""

import sys


def main() -> int:
    argv = sys.argv[1:]
    if "list" in argv and "job" in argv:
        from logist_server.cli.fast_list import run

        status = run(argv)
        if status is not None:
            return status
    from logist_server.cli.main import main as full_main

    return full_main()

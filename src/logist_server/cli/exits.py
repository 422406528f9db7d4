"""How a `logist` process ends on a closed pipe or an unexpected error.

Shared by the full CLI (`logist_server.cli.main`) and the lean `job list` path
(`logist_server.cli.fast_list`), so both say and return the same; standard library only, as
`fast_list` must stay cheap to import.
"""

from __future__ import annotations

import os
import sys


def stdout_gone() -> int:
    """The reader went away (`| head`): stop quietly, as git does (exit 141)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


def debugging() -> bool:
    """LOGIST_DEBUG is set: let unexpected errors raise with their traceback."""
    return os.environ.get("LOGIST_DEBUG", "0") not in ("", "0")


def internal_error(exc: BaseException) -> int:
    """Report an unexpected error in one line (exit 1)."""
    sys.stderr.write(
        f"logist: internal error: {type(exc).__name__}: {exc} (LOGIST_DEBUG=1 shows details)\n"
    )
    return 1

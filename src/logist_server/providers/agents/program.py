"""Finding an agent's installed program: an absolute path, never one in the workspace.

An agent runs with its working directory in the workspace, which the repository controls.
A bare program name is looked up in PATH, and a relative PATH entry (`.`, an empty entry,
`node_modules/.bin`) resolves there: a repository that commits `./claude` would run instead
of the installed CLI. Providers find their program with `installed_program` and put the
absolute path it returns in `argv[0]` (the host runtime refuses anything else).
"""

from __future__ import annotations

import os


def installed_program(name: str, search_path: str | None = None) -> str | None:
    """The absolute path of the executable `name` from PATH's absolute entries, or None.

    An absolute `name` is returned as is when it is an executable file; a relative one with
    a `/` (`./agent`, `bin/agent`) is never looked up."""
    if os.path.isabs(name):
        return name if _executable(name) else None
    if "/" in name or not name:
        return None
    entries = (search_path if search_path is not None else os.environ.get("PATH", "")).split(
        os.pathsep
    )
    for entry in entries:
        if not os.path.isabs(entry):
            continue  # `.`, empty and relative entries resolve in the working directory
        candidate = os.path.join(entry, name)
        if _executable(candidate):
            return candidate
    return None


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)

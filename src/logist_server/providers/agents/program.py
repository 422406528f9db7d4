"""Finding an agent's installed program: an absolute path, never one in the workspace.

An agent runs with its working directory in the workspace, which the repository controls.
A bare program name is looked up in PATH, and a relative PATH entry (`.`, an empty entry,
`node_modules/.bin`) resolves there: a repository that commits `./claude` would run instead
of the installed CLI. Providers find their program with `installed_program` and put the
absolute path it returns in `argv[0]` (the host runtime refuses anything else).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path


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


def program_version(name: str, npm_package: str | None = None) -> str | None:
    """The installed program's version, or None when it is not installed.

    A CLI installed from npm carries its version in its package's `package.json`, read
    without starting the program (node CLIs take seconds to answer `--version`); else the
    program's `--version` is asked and the word of its first line that looks like a
    version is taken ("unknown" when it says nothing usable)."""
    program = installed_program(name)
    if program is None:
        return None
    if npm_package is not None:
        found = _npm_version(program, npm_package)
        if found is not None:
            return found
    try:
        done = subprocess.run(
            [program, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = (done.stdout.strip().splitlines() or [""])[0]
    words = [w for w in first.replace("v", " ").split() if w[:1].isdigit()]
    return words[0] if words else "unknown"


def _npm_version(program: str, package: str) -> str | None:
    """The version in the `package.json` of npm package `package` holding `program`, or
    of `package` installed next to the one holding it (cline's binary lies in its platform
    package, `node_modules/@cline/cli-linux-x64`, beside `node_modules/cline`)."""
    for directory in Path(os.path.realpath(program)).parents:
        manifest = directory / "package.json"
        if directory.name == "node_modules" and (directory / package / "package.json").is_file():
            manifest = directory / package / "package.json"
        if not manifest.is_file():
            continue
        try:
            data = json.loads(manifest.read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(data, dict) and data.get("name") == package:
            version = data.get("version")
            return version if isinstance(version, str) else None
    return None

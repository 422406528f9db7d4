"""Agent options that name files: they must stay inside the job's workspace.

Options come from `logist.yml` and `.logist/roles/`, which the repository controls, so an
option that names a file is as hostile as a file name in the repository. A provider
declares which of its options name paths (`AgentProvider.path_options`, key -> syntax); this
module checks every such value, for every agent, when the job is created (against the
repository, naming the file and key that set it) and again when a step is built (against
the workspace the agent will run in). A path must pass `repo_paths.unsafe_reason` (relative,
no `..`, not in `.git` or `.logist`) and must not lead out through a symlink.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from logist_server.domain.errors import UsageError
from logist_server.domain.repo_paths import unsafe_reason

#: `paths`: comma-separated paths; `path-pairs`: comma-separated `OLD:NEW` pairs.
PathSyntax = Literal["paths", "path-pairs"]


def named_paths(syntax: PathSyntax, value: str) -> list[str]:
    """The paths an option value names."""
    items = [item for item in value.split(",") if item]
    if syntax == "path-pairs":
        return [path for item in items for path in item.split(":", 1)]
    return items


def path_problem(root: Path, path: str) -> str | None:
    """Why `path` (relative to `root`) is not a file inside `root`, or None when it is.

    Every existing part is looked at without following it: a symlink among them must stay
    inside `root`, outside `.git` and `.logist`."""
    reason = unsafe_reason(path)
    if reason is not None:
        return reason
    top = os.path.realpath(root)
    current = top
    for part in path.split("/"):
        current = os.path.join(current, part)
        if not os.path.islink(current):
            if not os.path.lexists(current):
                return None  # the rest does not exist yet: nothing to follow
            continue
        target = os.path.realpath(current)
        inside = os.path.relpath(target, top)
        if target != top and (inside == ".." or inside.startswith("../")):
            return f"the symlink {os.path.relpath(current, top)} leads out of the workspace"
        if inside != "." and unsafe_reason(inside) is not None:
            return f"the symlink {os.path.relpath(current, top)} leads into {inside}"
        current = target
    return None


def check_path_options(
    path_options: Mapping[str, PathSyntax],
    options: Mapping[str, str],
    root: Path,
    source_of: Callable[[str], str] | None = None,
) -> None:
    """UsageError naming the source and key of the first option whose path is not inside
    `root`. `source_of(key)` names where the option was set (a file, `command line`)."""
    for key in sorted(options):
        syntax = path_options.get(key)
        if syntax is None:
            continue
        for path in named_paths(syntax, options[key]):
            problem = path_problem(root, path)
            if problem is not None:
                where = f"{source_of(key)}: " if source_of is not None else ""
                raise UsageError(
                    f"{where}agent_options.{key}: {path!r} is not a file inside the "
                    f"workspace ({problem})"
                )

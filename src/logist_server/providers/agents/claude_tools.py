"""claude-code's tools in ACP's tool kinds, and where a tool aims (inside the workspace?).

The bridge (`claude_bridge`) answers claude's `can_use_tool` requests from the job's
`Permissions` (`domain.permissions.decide`), which speaks ACP's tool kinds. A path is
resolved (symlinks followed) against the workspace: a write aimed outside it, or into its
`.git` or `.logist`, is denied whatever the policy says; a read or search outside it is
asked rather than allowed (the agent runs with the user's rights: `~/.ssh` is a read away).
A search's glob (`Glob`'s pattern, `Grep`'s glob) counts as a path from its fixed directory
part; a tool of no known kind (MCP tools) naming a path outside the workspace is denied:
Logist cannot tell whether it writes.
"""

from __future__ import annotations

import os
from typing import Any

from logist_server.domain.permissions import Decision, Permissions, decide
from logist_server.domain.repo_paths import unsafe_reason

KINDS: dict[str, str] = {
    "Read": "read", "NotebookRead": "read", "BashOutput": "read",
    "Grep": "search", "Glob": "search", "LS": "search",
    "Edit": "edit", "Write": "edit", "MultiEdit": "edit", "NotebookEdit": "edit",
    "Bash": "execute", "KillShell": "execute", "KillBash": "execute",
    "WebFetch": "fetch", "WebSearch": "fetch",
    "TodoWrite": "think",
}  # fmt: skip
#: The input keys that name the path a tool works on.
PATH_KEYS = ("file_path", "notebook_path", "path")
READING_KINDS = frozenset({"read", "search"})
#: The input keys of a search tool that hold a glob (a path with wildcards).
GLOB_KEYS = {"Glob": "pattern", "Grep": "glob"}
#: Key words that mark a path in the input of a tool of no known kind (MCP tools).
OTHER_PATH_WORDS = ("path", "file", "dir", "source", "destination", "target", "cwd")


def tool_kind(tool: str) -> str:
    """The ACP kind of a claude tool (`other` for any tool not listed, MCP tools too)."""
    return KINDS.get(tool, "other")


def target_path(tool_input: Any) -> str | None:
    """The path a tool's input names, if any."""
    if not isinstance(tool_input, dict):
        return None
    for key in PATH_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def glob_root(pattern: str) -> str:
    """The fixed directory a glob starts from: `/root/.ssh/*` -> `/root/.ssh`, `**/*.py` -> ``."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?[{"), default=len(pattern))
    return pattern if cut == len(pattern) else os.path.dirname(pattern[:cut])


def aimed_paths(tool: str, tool_input: Any) -> list[str]:
    """Every path a tool's input aims at (see the module doc)."""
    if not isinstance(tool_input, dict):
        return []
    path = target_path(tool_input)
    paths = [path] if path is not None else []
    glob = tool_input.get(GLOB_KEYS.get(tool, ""))
    if isinstance(glob, str) and (root := glob_root(glob)):
        paths.append(os.path.join(path or "", root))
    if tool_kind(tool) == "other":
        paths += [
            value for key, value in tool_input.items()
            if isinstance(value, str) and value
            and any(word in key.lower() for word in OTHER_PATH_WORDS)
        ]  # fmt: skip
    return paths


def inside(workspace: str, path: str) -> bool:
    """Whether `path` (absolute, or relative to the workspace) resolves, symlinks followed,
    inside the workspace and outside its `.git` and `.logist`."""
    if "\x00" in path:
        return False
    top = os.path.realpath(workspace)
    real = os.path.realpath(os.path.join(top, os.path.expanduser(path)))
    if real == top:
        return True
    rel = os.path.relpath(real, top)
    if rel == ".." or rel.startswith("../"):
        return False
    return unsafe_reason(rel) is None


def decision(policy: Permissions, workspace: str, tool: str, tool_input: Any) -> Decision:
    """What the job's policy says of claude using `tool` with `tool_input`."""
    kind = tool_kind(tool)
    within = all(inside(workspace, path) for path in aimed_paths(tool, tool_input))
    if kind == "other" and not within:
        return "deny"  # it may write there: writes outside are always denied
    verdict = decide(policy, kind, inside_workspace=within)
    if verdict == "allow" and kind in READING_KINDS and not within:
        return "ask"
    return verdict


def describe(tool: str, tool_input: Any, workspace: str) -> str:
    """One line saying what claude wants to do, for the user's permission question."""
    data = tool_input if isinstance(tool_input, dict) else {}
    if tool == "Bash" and isinstance(data.get("command"), str):
        return f"claude wants to run a shell command: {data['command']}"
    path = target_path(data)
    if path is not None:
        shown = os.path.relpath(path, workspace) if os.path.isabs(path) else path
        where = "" if inside(workspace, path) else " (outside the workspace)"
        return f"claude wants to use {tool} on {shown}{where}"
    for key in ("url", "query", "pattern"):
        if isinstance(data.get(key), str):
            return f"claude wants to use {tool}: {data[key]}"
    return f"claude wants to use the tool {tool}"

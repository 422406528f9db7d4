"""How the ACP client judges a `session/request_permission`: by what the tool call carries,
not by the kind the agent declares.

An agent labels its own tool calls (`kind`), and a label can be loose (an MCP tool, a
subagent, a shell command shown as `read`) or a lie. So the declared kind is advisory:
- a call carrying a command (`command`, `cmd`, `argv`, `exec`, `code`, `program`... anywhere
  in its input) is also judged as `execute`; one carrying a diff or new content
  (`new_string`, `content(s)`, `patch`, `changes`... at any depth) is also judged as `edit`;
  the strictest decision of every kind the call shows wins (deny > ask > allow);
- the files it names are collected everywhere: its locations, its diffs, and every string
  under an input key that names a path, a file, a directory, a URI, a source, a destination,
  a target or a cwd, at any depth (codex's `changes` keys too); a URI with a scheme other
  than `file:` names no file;
- a path counts as inside only when it plainly names the workspace: the agent's own tool may
  expand `~`, so a path starting with it is outside; a `file:` URI is decoded to the absolute
  path it names; a path with `$` or a backquote (`$HOME/x`, or a file really named `$lib`)
  is one Logist cannot place, and a call naming one is asked at least;
- an apply_patch envelope (codex's format, cline's patch tool labelled `other`) in any
  string of its input makes it a write of the files its headers name: `*** Add File:` and
  `*** Update File:` an edit, `*** Delete File:` a delete, `*** Move to:` a move (cline
  also applies a body without the `*** Begin Patch` sentinel, so any header line counts);
  those kinds then stand for the `other` label (which says nothing, and an agent could as
  well have declared `edit`), so an envelope is judged like any other write;
- a call that writes (edit, delete, move, or content showing it) is denied when any of
  those paths is outside the workspace once `..` and symlinks are resolved (`.git` counts
  as outside), and asked, never allowed, when it names no path at all; any other call
  naming a path outside (a read of the user's keys) is asked at least.

Key names are a heuristic: an agent that hides a path under a key no list names is caught
only by its declared kind and the policy for it (see doc/security.md).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import msgspec

from logist_server.domain.permissions import (
    TOOL_KINDS,
    WRITING_KINDS,
    Decision,
    Permissions,
    decide,
)

#: Input keys (lower case, `_`/`-` dropped) whose value is a command to run.
COMMAND_KEYS = frozenset(
    {"command", "commands", "cmd", "cmds", "commandline", "shellcommand", "script", "argv",
     "exec", "execute", "code", "program", "executable", "shell", "bash"}
)  # fmt: skip
#: Input keys (at any depth) whose presence shows the call writes a file.
WRITE_KEYS = frozenset(
    {"content", "contents", "newcontent", "newcontents", "filecontent", "filecontents",
     "newstring", "newstr", "newtext", "newsource", "filetext", "patch", "diff", "changes",
     "edits"}
)  # fmt: skip
#: Input keys naming a path: these exactly, or ending with one of `_PATH_ENDINGS`.
PATH_KEYS = frozenset(
    {"source", "src", "destination", "dest", "dst", "target", "to", "from", "cwd", "uri",
     "url"}
)  # fmt: skip
_PATH_ENDINGS = ("path", "paths", "file", "files", "filename", "filenames", "dir", "dirs",
                 "directory", "directories", "cwd", "destination", "target", "uri", "uris",
                 "url", "urls")  # fmt: skip
#: A URI's scheme (`file:`, `https:`...).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
#: What a shell or the agent's tool may expand in a path besides `~`: variables, commands.
_EXPANDED = re.compile(r"[$`]")
_SEPARATORS = re.compile(r"[_\-\s]")
_STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}
#: An apply_patch envelope's lines, matched more loosely than the agents parse them
#: (leading blanks, case, spacing): a header the agent applies is never missed.
_PATCH_FILE = re.compile(r"\s*\*\*\*\s*(add|update|delete)\s*file\s*:(.*)", re.IGNORECASE)
_PATCH_MOVE = re.compile(r"\s*\*\*\*\s*move\s*to\s*:(.*)", re.IGNORECASE)
_PATCH_BEGIN = re.compile(r"\s*\*\*\*\s*begin\s*patch", re.IGNORECASE)
_PATCH_KINDS = {"add": "edit", "update": "edit", "delete": "delete"}
#: The write shown to the user when a call shows several: the most far-reaching.
_SHOWN_WRITES = ("delete", "move", "edit")
#: Deepest input nesting looked into (a deeper value counts as a command and a path).
MAX_DEPTH = 32


class Judged(msgspec.Struct, frozen=True):
    """What a tool call is, judged from its content."""

    kind: str  # the kind shown to the user: execute > delete > move > edit > declared
    kinds: frozenset[str]  # every kind the call shows (the declared ones included)
    writes: bool
    paths: tuple[str, ...]
    outside: tuple[str, ...]  # the paths that are not inside the workspace
    unplaced: tuple[str, ...] = ()  # inside as written, but with `$` or a backquote


def _key(name: str) -> str:
    return _SEPARATORS.sub("", name).lower()


def _is_path_key(name: str) -> bool:
    key = _key(name)
    return key in PATH_KEYS or key.endswith(_PATH_ENDINGS)


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string in `value` (itself, or in its lists and objects' values)."""
    if isinstance(value, str):
        yield value
    elif depth < MAX_DEPTH and isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, dict):
        for item in value.values():
            yield from _strings(item, depth + 1)


def _walk(value: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of the objects in `value`, at any depth."""
    if depth >= MAX_DEPTH:
        yield "command", "(nested too deep)"  # never a way to hide a command or a path
        yield "path", "/"
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key), item
            yield from _walk(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item, depth + 1)


def _has_command(raw: Any) -> bool:
    return any(
        _key(key) in COMMAND_KEYS
        and value not in (None, "", [], {})
        and not isinstance(value, bool)
        for key, value in _walk(raw)
    )


class Patch(msgspec.Struct, frozen=True):
    """What the apply_patch envelopes in a tool call's input say."""

    found: bool  # an envelope (a header or the Begin sentinel) is there
    kinds: frozenset[str]  # edit (Add/Update File), delete (Delete File), move (Move to)
    paths: tuple[str, ...]


def patch_envelope(raw: Any) -> Patch:
    """The apply_patch envelopes in any string of `raw` (a tool call's input)."""
    found, kinds, paths = False, set[str](), list[str]()
    for text in _strings(raw):
        if "***" not in text:
            continue
        for line in text.splitlines():  # every line break the agents split on, and more
            if header := _PATCH_FILE.match(line):
                kinds.add(_PATCH_KINDS[header.group(1).lower()])
                paths.append(header.group(2).strip())
            elif move := _PATCH_MOVE.match(line):
                kinds.add("move")
                paths.append(move.group(1).strip())
            elif not _PATCH_BEGIN.match(line):
                continue
            found = True
    return Patch(found, frozenset(kinds), tuple(p for p in paths if p))


def _paths(call: dict[str, Any]) -> list[str]:
    """Every path a tool call names: locations, diffs, path-like input keys, codex's
    `changes` keys."""
    found: list[Any] = []
    for location in call.get("locations") or []:
        if isinstance(location, dict):
            found.append(location.get("path"))
    for item in call.get("content") or []:
        if isinstance(item, dict) and item.get("type") == "diff":
            found.append(item.get("path"))
    raw = call.get("rawInput")
    for key, value in _walk(raw):
        if _is_path_key(key):
            found += list(_strings(value))
        if key == "changes" and isinstance(value, dict):
            found += list(value)
    found += patch_envelope(raw).paths
    return [p for p in found if isinstance(p, str) and p and not _web_uri(p)]


def _web_uri(text: str) -> bool:
    """Whether `text` is a URI of a scheme other than `file:` (it names no file here)."""
    scheme = _SCHEME.match(text)
    return scheme is not None and scheme.group(1).lower() != "file"


def within(path: str, inside: Callable[[str], bool]) -> bool:
    """Whether `path`, as written, names a place inside the workspace: a `file:` URI is
    decoded to the absolute path it names; a path starting with `~` (which the agent's tool
    may expand to the user's home) is outside."""
    if _SCHEME.match(path):
        uri = urllib.parse.urlsplit(path)
        if uri.scheme.lower() != "file" or uri.netloc not in ("", "localhost"):
            return False
        path = "/" + urllib.parse.unquote(uri.path).lstrip("/")  # a file URI is absolute
    return not path.startswith("~") and inside(path)


def _writes(call: dict[str, Any]) -> bool:
    content = call.get("content")
    if isinstance(content, list) and any(
        isinstance(item, dict) and item.get("type") == "diff" for item in content
    ):
        return True
    raw = call.get("rawInput")
    if any(_key(key) in WRITE_KEYS for key, _ in _walk(raw)):
        return True
    return patch_envelope(raw).found


def judge(calls: list[dict[str, Any]], inside: Callable[[str], bool]) -> Judged:
    """Judge a tool call from every view of it (the permission request's `toolCall`, what
    the turn's updates said of it); `inside(path)` says whether a path is in the workspace."""
    declared = {
        call["kind"] if call["kind"] in TOOL_KINDS else "other"
        for call in calls
        if isinstance(call.get("kind"), str)
    }
    kinds = set(declared) or {"other"}
    patched = {kind for call in calls for kind in patch_envelope(call.get("rawInput")).kinds}
    if patched:  # the envelope says what the call is: `other` said nothing
        kinds = (kinds - {"other"}) | patched
    command = any(_has_command(call.get("rawInput")) for call in calls)
    writes = bool(declared & WRITING_KINDS) or any(_writes(call) for call in calls)
    if command:
        kinds.add("execute")
    if writes and not kinds & WRITING_KINDS:
        kinds.add("edit")
    paths = tuple(dict.fromkeys(p for call in calls for p in _paths(call)))
    outside = tuple(p for p in paths if not within(p, inside))
    unplaced = tuple(p for p in paths if p not in outside and _EXPANDED.search(p))
    if command:
        shown = "execute"
    else:
        shown = next((k for k in _SHOWN_WRITES if k in kinds), None) or min(
            kinds, key=TOOL_KINDS.index
        )
    return Judged(shown, frozenset(kinds), writes, paths, outside, unplaced)


def decision(policy: Permissions, judged: Judged) -> Decision:
    """The policy's answer for a judged call: the strictest of its kinds'; a write with a
    path outside the workspace denied; a write naming no path, or any call naming a path
    outside or one it cannot place, asked at least."""
    if judged.writes and judged.outside:
        return "deny"
    decisions = [decide(policy, kind) for kind in sorted(judged.kinds)]
    if (judged.writes and not judged.paths) or judged.outside or judged.unplaced:
        decisions.append("ask")
    return max(decisions, key=_STRICTNESS.__getitem__)

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
  a target or a cwd, at any depth, the keys of an object under such a key or a write key
  (codex's `changes`, `{"files": {PATH: TEXT}}`), object keys that look like paths, and what
  a string holding JSON holds (not a file's new text); a web address under a URL key names
  no file;
- a path counts as inside only when it plainly names the workspace (`place`): the agent's
  own tool may expand `~`, so a path starting with it is outside; a `file:` URI is decoded to
  the absolute path it names; one starting with `$`, holding a backquote or `$(`, or of
  another scheme (`a:/../x`) is one Logist cannot place, and a call naming one is asked at
  least; a string listing paths or padded with blanks is judged by each trimmed piece;
- an apply_patch envelope (codex's format, cline's patch tool labelled `other`) in any
  string of its input makes it a write of the files its headers name: `*** Add File:` and
  `*** Update File:` an edit, `*** Delete File:` a delete, `*** Move to:` a move (cline
  also applies a body without the `*** Begin Patch` sentinel, so any header line counts);
  when the envelope is the tool's whole input those kinds stand for the `other` label
  (which says nothing), so it is judged like any other write; an envelope quoted in a
  file's new text is not applied, its paths outside only asked;
- a call that writes (edit, delete, move, or content showing it) is denied when any of
  those paths is outside the workspace once `..` and symlinks are resolved (`.git` counts
  as outside), and asked, never allowed, when it names no path at all; any other call
  naming a path outside (a read of the user's keys) is asked at least.

Key names are a heuristic: an agent that hides a path under a key no list names is caught
only by its declared kind and the policy for it (see doc/security.md).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, Literal

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
    {"command", "commands", "cmd", "cmds", "commandline", "cmdline", "shellcommand", "script",
     "argv", "exec", "execute", "code", "program", "executable", "shell", "bash"}
)  # fmt: skip
#: Values of a `command` key that name an editor action, not a program (the text-editor
#: tool shape of Anthropic's API and goose: `{"command": "view", "path": ...}`).
EDITOR_ACTIONS = frozenset({"view", "create", "strreplace", "insert", "undoedit"})
#: Input keys (at any depth) holding a file's new text.
CONTENT_KEYS = frozenset(
    {"content", "contents", "newcontent", "newcontents", "filecontent", "filecontents",
     "newstring", "newstr", "newtext", "newsource", "filetext"}
)  # fmt: skip
#: Input keys (at any depth) whose presence shows the call writes a file.
WRITE_KEYS = CONTENT_KEYS | {"patch", "diff", "changes", "edits"}
#: Input keys naming a path: these exactly, or ending with one of `_PATH_ENDINGS`.
PATH_KEYS = frozenset(
    {"source", "src", "destination", "dest", "dst", "target", "to", "from", "cwd", "uri",
     "url", "newname", "root", "folder", "workdir"}
)  # fmt: skip
_PATH_ENDINGS = ("path", "paths", "file", "files", "filename", "filenames", "dir", "dirs",
                 "directory", "directories", "cwd", "destination", "target", "uri", "uris",
                 "url", "urls", "folder", "folders")  # fmt: skip
_URI_ENDINGS = ("uri", "uris", "url", "urls")
#: A URI's scheme (`file:`, `https:`...), and a web address (not a file here).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_WEB_URL = re.compile(r"(https?|wss?|ftps?)://", re.IGNORECASE)
#: What splits a string naming several paths (a tool may split and trim it).
_LIST_SEPARATORS = re.compile(r"[,;\n\r\t]")
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

Place = Literal["inside", "outside", "unplaced"]


class Judged(msgspec.Struct, frozen=True):
    """What a tool call is, judged from its content."""

    kind: str  # the kind shown to the user: execute > delete > move > edit > declared
    kinds: frozenset[str]  # every kind the call shows (the declared ones included)
    writes: bool
    paths: tuple[str, ...]
    outside: tuple[str, ...]  # the paths that are not inside the workspace
    #: Paths Logist cannot place (`$HOME/x`, a backquote, a URI of another scheme, a
    #: padded one) and outside paths quoted in a file's new text: the user is asked.
    unplaced: tuple[str, ...] = ()


def _key(name: str) -> str:
    return _SEPARATORS.sub("", name).lower()


def _is_path_key(name: str) -> bool:
    key = _key(name)
    return key in PATH_KEYS or key.endswith(_PATH_ENDINGS)


def _decoded(text: str) -> Any:
    """The JSON object or array a string holds (a tool input sent as a string), or None."""
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def _texts(value: Any, in_content: bool = False, depth: int = 0) -> Iterator[tuple[str, bool]]:
    """Every string in `value` (itself, its lists and objects' values, and what a string
    holding JSON holds), each with whether it lies under a key holding a file's new text."""
    if depth >= MAX_DEPTH:
        return
    if isinstance(value, str):
        yield value, in_content
        if not in_content and (inner := _decoded(value)) is not None:
            yield from _texts(inner, in_content, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item, in_content, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(item, in_content or _key(str(key)) in CONTENT_KEYS, depth + 1)


def _strings(value: Any) -> Iterator[str]:
    return (text for text, _ in _texts(value))


def _walk(value: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of the objects in `value`, at any depth, in strings holding
    JSON too (not in a file's new text: a JSON file's keys are not the tool's)."""
    if depth >= MAX_DEPTH:
        yield "command", "(nested too deep)"  # never a way to hide a command or a path
        yield "path", "/"
        return
    if isinstance(value, str):
        if (inner := _decoded(value)) is not None:
            yield from _walk(inner, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key), item
            if not (isinstance(item, str) and _key(str(key)) in CONTENT_KEYS):
                yield from _walk(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item, depth + 1)


def _is_command(key: str, value: Any) -> bool:
    if _key(key) not in COMMAND_KEYS or value in (None, "", [], {}) or isinstance(value, bool):
        return False
    return not (isinstance(value, str) and _key(value) in EDITOR_ACTIONS)


def _has_command(raw: Any) -> bool:
    return any(_is_command(key, value) for key, value in _walk(raw))


class Patch(msgspec.Struct, frozen=True):
    """What the apply_patch envelopes in a tool call's input say."""

    found: bool  # an envelope (a header or the Begin sentinel) is there
    kinds: frozenset[str]  # edit (Add/Update File), delete (Delete File), move (Move to)
    paths: tuple[str, ...]
    #: The envelope is the tool's whole input (a string, or an object of one string: cline's
    #: `{"input": ENVELOPE}`): the tool is a patch tool.
    whole: bool = False
    #: Paths of envelopes quoted in a file's new text (a document about patches).
    quoted: tuple[str, ...] = ()


def _envelope(text: str) -> tuple[bool, set[str], list[str]]:
    found, kinds, paths = False, set[str](), list[str]()
    if "***" not in text:
        return found, kinds, paths
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
    return found, kinds, paths


def patch_envelope(raw: Any) -> Patch:
    """The apply_patch envelopes in any string of `raw` (a tool call's input)."""
    found, kinds, paths, quoted = False, set[str](), list[str](), list[str]()
    for text, in_content in _texts(raw):
        seen, its_kinds, its_paths = _envelope(text)
        if in_content:  # the new text of a file: what it quotes is not applied as a patch
            quoted += its_paths
            continue
        found |= seen
        kinds |= its_kinds
        paths += its_paths
    lone = raw if isinstance(raw, str) else None
    if isinstance(raw, dict) and len(raw) == 1 and isinstance(next(iter(raw.values())), str):
        lone = next(iter(raw.values()))
    whole = lone is not None and _envelope(lone.lstrip().split("\n", 1)[0])[0]
    return Patch(found, frozenset(kinds), tuple(p for p in paths if p), whole,
                 tuple(p for p in quoted if p))  # fmt: skip


def _paths(call: dict[str, Any], patch: Patch) -> list[str]:
    """Every path a tool call names: locations, diffs, path-like input keys (the keys of an
    object under one, or under a write key: `{"files": {PATH: TEXT}}`, codex's `changes`),
    object keys that look like paths, apply_patch headers. A web address under a URL key
    names no file."""
    found: list[Any] = []
    for location in call.get("locations") or []:
        if isinstance(location, dict):
            found.append(location.get("path"))
    for item in call.get("content") or []:
        if isinstance(item, dict) and item.get("type") == "diff":
            found.append(item.get("path"))
    raw = call.get("rawInput")
    for key, value in _walk(raw):
        if key.startswith(("/", "~", "file:")):
            found.append(key)
        path_key = _is_path_key(key)
        if path_key:
            web = _key(key).endswith(_URI_ENDINGS)
            found += [s for s in _strings(value) if not (web and _WEB_URL.match(s))]
        if isinstance(value, dict) and (path_key or _key(key) in WRITE_KEYS):
            found += [str(name) for name in value]
    found += patch.paths
    return [p for p in found if isinstance(p, str) and p]


def _place_one(path: str, inside: Callable[[str], bool]) -> Place:
    if _WEB_URL.match(path):
        return "unplaced"  # a web address where a file was expected
    if scheme := _SCHEME.match(path):
        if scheme.group(1).lower() != "file":
            return "unplaced"  # `a:/../x`: a tool may take it for a relative path
        uri = urllib.parse.urlsplit(path)
        if uri.netloc not in ("", "localhost"):
            return "outside"
        if uri.query or uri.fragment:  # a tool that only drops `file://` keeps the rest
            naive = "/" + path.split(":", 1)[1].lstrip("/")
            return "outside" if not inside(naive) else "unplaced"
        path = "/" + urllib.parse.unquote(uri.path).lstrip("/")  # a file URI is absolute
    if path.startswith("~"):
        return "outside"  # the agent's tool may expand it to the user's home
    if path.startswith("$") or "`" in path or "$(" in path:
        return "unplaced"  # an expansion: `$HOME/x`, a command's output
    return "inside" if inside(path) else "outside"


def place(path: str, inside: Callable[[str], bool]) -> Place:
    """Where `path` points: inside the workspace, outside it, or unplaced (Logist cannot
    tell). A string naming several paths (`a.py,b.py`, one per line) or padded with blanks
    is judged by each piece too: a tool may split or trim it."""
    pieces = {path, *(piece.strip() for piece in _LIST_SEPARATORS.split(path))} - {""}
    places = {_place_one(piece, inside) for piece in pieces}
    if "outside" in places:
        return "outside"
    if "unplaced" in places or path != path.strip():
        return "unplaced"
    return "inside"


def _writes(call: dict[str, Any], patch: Patch) -> bool:
    content = call.get("content")
    if isinstance(content, list) and any(
        isinstance(item, dict) and item.get("type") == "diff" for item in content
    ):
        return True
    raw = call.get("rawInput")
    return patch.found or any(_key(key) in WRITE_KEYS for key, _ in _walk(raw))


def judge(calls: list[dict[str, Any]], inside: Callable[[str], bool]) -> Judged:
    """Judge a tool call from every view of it (the permission request's `toolCall`, what
    the turn's updates said of it); `inside(path)` says whether a path is in the workspace."""
    declared = {
        call["kind"] if call["kind"] in TOOL_KINDS else "other"
        for call in calls
        if isinstance(call.get("kind"), str)
    }
    kinds = set(declared) or {"other"}
    patches = [patch_envelope(call.get("rawInput")) for call in calls]
    patched = {kind for patch in patches for kind in patch.kinds}
    if patched and any(patch.whole for patch in patches):
        kinds = (kinds - {"other"}) | patched  # a patch tool: `other` said nothing more
    else:
        kinds |= patched  # a header in some text of another tool: `other` still holds
    command = any(_has_command(call.get("rawInput")) for call in calls)
    writes = bool(declared & WRITING_KINDS) or any(
        _writes(call, patch) for call, patch in zip(calls, patches, strict=True)
    )
    if command:
        kinds.add("execute")
    if writes and not kinds & WRITING_KINDS:
        kinds.add("edit")
    paths = tuple(
        dict.fromkeys(
            p for call, patch in zip(calls, patches, strict=True) for p in _paths(call, patch)
        )
    )
    places = {p: place(p, inside) for p in paths}
    outside = tuple(p for p in paths if places[p] == "outside")
    quoted = dict.fromkeys(p for patch in patches for p in patch.quoted)
    unplaced = tuple(p for p in paths if places[p] == "unplaced") + tuple(
        p for p in quoted if p not in places and place(p, inside) != "inside"
    )
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

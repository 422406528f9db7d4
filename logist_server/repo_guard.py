"""Detect an agent's changes to the user's git metadata that can execute or redirect.

A job's workspace has git metadata of its own, but on the host runtime the agent runs as
the user and could still write to the user's repository directly. Before each step Logist
fingerprints what can make git run a program or read other content: the repository's
config (and each worktree's `config.worktree`), its hooks (or the `core.hooksPath`
directory), `info/` (attributes select filters, excludes hide files, grafts rewrite
history), `objects/info/alternates`, `shallow`, a gitfile `.git`, and the user's global git
config. After the step the fingerprint is compared: any difference fails the step and is
reported by name (Logist cannot tell who made it, so a change the user makes meanwhile is
reported too). Refs and HEAD are not watched: they change legitimately as the user works;
neither are the config entries `push -u`/`branch --track` write, nor linked worktrees that
come or go.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from pathlib import Path

from .fsutil import atomic_write
from .git import GitQuery, RepoInfo, git

FINGERPRINT_FILE = "repo-guard.json"
# Bounds: the watched directories are small; a huge one is summarised by its listing.
_MAX_ENTRIES = 2000
_MAX_HASHED = 8 << 20
# `info/refs` and `info/packs` are derived data that `git update-server-info` rewrites.
_DERIVED = frozenset({"refs", "packs"})


def fingerprint(info: RepoInfo) -> dict[str, str]:
    """Path -> digest of every watched file (absent files have no entry)."""
    common = info.common_dir
    prints: dict[str, str] = {}
    configs = [common / "config", common / "config.worktree", *_global_configs()]
    worktrees = common / "worktrees"
    with contextlib.suppress(OSError):
        for entry in sorted(worktrees.iterdir())[:_MAX_ENTRIES]:
            configs.append(entry / "config.worktree")
            _add(prints, entry / "commondir")
    queries = [(path, _ConfigQuery(path)) for path in configs]  # git reads them in parallel
    for path, query in queries:
        digest = query.digest()
        if digest is not None:
            prints[str(path)] = digest
    _add_tree(prints, common / "hooks")
    _add_tree(prints, common / "info", skip=_DERIVED)
    for name in ("objects/info/alternates", "objects/info/http-alternates", "shallow"):
        _add(prints, common / name)
    gitfile = info.root / ".git"
    if not gitfile.is_dir():
        _add(prints, gitfile)
    if any("hookspath" in digest for digest in prints.values()):
        custom = _hooks_path(info)
        if custom is not None:
            _add_tree(prints, custom)
    return prints


def record(info: RepoInfo, step_dir: Path) -> None:
    """Fingerprint the repository now, before a step starts (kept in the step's directory)."""
    atomic_write(step_dir / FINGERPRINT_FILE, json.dumps(fingerprint(info)).encode())


def changes_since(info: RepoInfo, step_dir: Path) -> list[str]:
    """What changed since `record` for this step, as `path (added|removed|changed)`; empty
    when nothing did or no fingerprint was recorded (a step started by an older version)."""
    try:
        before: dict[str, str] = json.loads((step_dir / FINGERPRINT_FILE).read_bytes())
    except (OSError, ValueError):
        return []
    after = fingerprint(info)
    found = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old == new or (path.endswith("/commondir") and (old is None or new is None)):
            continue  # a linked worktree added or removed (`git worktree add`) redirects nothing
        what = "added" if old is None else "removed" if new is None else "changed"
        found.append(f"{_shown(info, path)} ({what})")
    return found


def describe(changed: list[str]) -> str:
    """The step's failure reason for `changes_since` results."""
    more = len(changed) - 10
    listed = ", ".join(changed[:10]) + (f" and {more} more" if more > 0 else "")
    return (
        "the user's git metadata changed while the agent ran: "
        f"{listed}; logist stopped before running git on it (check these files)"
    )


# -- internals -----------------------------------------------------------------------------
#: Configuration keys that git writes as the user works (`push -u`, `branch --track`) and
#: that neither run a program nor redirect anything: a change to them is no alarm.
_HARMLESS_KEY = re.compile(r"branch\..*\.(remote|merge|rebase|pushremote|description)")


class _ConfigQuery:
    """A digest of a git config file's entries, harmless branch-tracking keys left out (of
    its bytes when git cannot read it as configuration); git starts reading at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._query: GitQuery | None = None
        try:
            regular = stat.S_ISREG(os.lstat(path).st_mode)
        except OSError:
            self._absent = True
            return
        self._absent = False
        if regular:
            args = ["config", "--file", str(path), "--list", "-z", "--no-includes"]
            self._query = GitQuery(args, path.parent)

    def digest(self) -> str | None:
        if self._absent:
            return None
        if self._query is None:
            return _digest(self.path)
        code, out = self._query.finish()
        if code != 0:
            return _digest(self.path)
        entries = [
            entry
            for entry in out.split(b"\0")
            if entry
            and not _HARMLESS_KEY.fullmatch(entry.split(b"\n", 1)[0].decode(errors="replace"))
        ]
        hint = ":hookspath" if any(e.startswith(b"core.hookspath\n") for e in entries) else ""
        digest = hashlib.sha256(b"\0".join(entries)).hexdigest()
        return f"config:{digest}{hint}"


def _digest(path: Path) -> str | None:
    """A digest of what is at `path` (type, permission bits, content or link target)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            return f"link:{os.readlink(path)}"
        return "link:?"
    if stat.S_ISDIR(st.st_mode):
        return f"dir:{mode:o}"
    if not stat.S_ISREG(st.st_mode):
        return f"special:{stat.S_IFMT(st.st_mode):o}"
    if st.st_size > _MAX_HASHED:
        return f"file:{mode:o}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    try:
        content = path.read_bytes()
    except OSError:
        return f"unreadable:{mode:o}"
    hint = ":hookspath" if b"hookspath" in content.lower() else ""
    return f"file:{mode:o}:{hashlib.sha256(content).hexdigest()}{hint}"


def _add(prints: dict[str, str], path: Path) -> None:
    digest = _digest(path)
    if digest is not None:
        prints[str(path)] = digest


def _add_tree(prints: dict[str, str], root: Path, skip: frozenset[str] = frozenset()) -> None:
    """Every entry under `root` (not following symlinks), `skip` names at its top left out."""
    _add(prints, root)
    stack = [root]
    seen = 0
    while stack and seen < _MAX_ENTRIES:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            if directory == root and entry.name in skip:
                continue
            seen += 1
            _add(prints, Path(entry.path))
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))


def _global_configs() -> list[Path]:
    """The user's global git configuration files (they apply to the repository too)."""
    configured = os.environ.get("GIT_CONFIG_GLOBAL")
    if configured:
        return [Path(configured)]
    home = Path.home()
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
    return [home / ".gitconfig", Path(xdg) / "git" / "config"]


def _hooks_path(info: RepoInfo) -> Path | None:
    """The `core.hooksPath` directory the user configured, if any."""
    args = ["config", "--show-origin", "--path", "--get-all", "core.hooksPath"]
    proc = git(args, info.root, check=False)
    values = [
        line.split("\t", 1)[1]
        for line in proc.stdout.decode(errors="replace").splitlines()
        if "\t" in line and not line.startswith("command line:")  # not Logist's own `-c`
    ]
    value = values[-1] if values else ""
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else info.root / path


def _shown(info: RepoInfo, path: str) -> str:
    """`path` relative to the repository when inside it, else as is."""
    with contextlib.suppress(ValueError):
        return str(Path(path).relative_to(info.root))
    return path

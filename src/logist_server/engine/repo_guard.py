"""Detect an agent's changes to the user's git metadata that can execute or redirect.

A job's workspace has git metadata of its own, but on the host runtime the agent runs as
the user and could still write to the user's repository directly. Before each step Logist
fingerprints what can make git run a program or read other content: the repository's
config (and each worktree's `config.worktree`), its hooks (or the `core.hooksPath`
directory), `info/` (attributes select filters, excludes hide files, grafts rewrite
history), `objects/info/alternates`, `shallow`, a gitfile `.git`, and the user's global git
config, the files those configs include (`include.path`, every `includeIf` target whatever
its condition), `core.attributesFile` (or the default `$XDG_CONFIG_HOME/git/attributes`),
and the same config/hooks/info of every submodule's git directory under `modules/`.
The fingerprint is kept in the driver's memory and in the store's database, never in the
job's directory, which the agent can write: a fingerprint that cannot be found means the
step cannot be verified, and fails. After the step the fingerprint is compared: any
difference fails the step and is reported by name (Logist cannot tell who made it, so a
change the user makes meanwhile is reported too). Refs and HEAD are not watched: they change
legitimately as the user works; neither are the config entries `push -u`/`branch --track`
write, nor linked worktrees that come or go.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from logist_server.vcs.git import GitQuery, RepoInfo, git

if TYPE_CHECKING:
    from logist_server.store.job_store import JobStore

#: What `changes_since` returns when there is no fingerprint to compare with.
UNVERIFIED = "<fingerprint missing>"
#: Fingerprints taken by this process, by (store, job, step): the agent cannot reach them.
_TAKEN: dict[tuple[str, str, int], dict[str, str]] = {}
# Included config files are followed this many levels deep (git stops at 10).
_MAX_INCLUDE_DEPTH = 10
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
    extra = _add_configs(prints, configs)
    attributes = extra or [_xdg_config() / "git" / "attributes"]  # git's default
    for path in attributes:
        _add(prints, path)
    _add_git_dir(prints, common)
    _add_modules(prints, common / "modules")
    gitfile = info.root / ".git"
    if not gitfile.is_dir():
        _add(prints, gitfile)
    if any("hookspath" in digest for digest in prints.values()):
        custom = _hooks_path(info)
        if custom is not None:
            _add_tree(prints, custom)
    return prints


def record(info: RepoInfo, store: JobStore, job_id: str, step: int) -> None:
    """Fingerprint the repository now, before a step starts: kept in this process's memory
    and in the store's database (for a driver that re-attaches), never in the job directory."""
    prints = fingerprint(info)
    store.put_fingerprint(job_id, step, json.dumps(prints).encode())
    _TAKEN[(str(store.path), job_id, step)] = prints


def changes_since(info: RepoInfo, store: JobStore, job_id: str, step: int) -> list[str]:
    """What changed since `record` for this step, as `path (added|removed|changed)`; empty
    when nothing did; `[UNVERIFIED]` when no fingerprint of the step can be found."""
    before = _TAKEN.pop((str(store.path), job_id, step), None)
    if before is None:
        before = _stored(store, job_id, step)
    if before is None:
        return [UNVERIFIED]
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
    if UNVERIFIED in changed:
        return (
            "cannot verify the user's git metadata: the fingerprint taken before the step is"
            " missing; logist stopped before running git on it (check .git/config, .git/hooks"
            " and .git/modules for changes)"
        )
    more = len(changed) - 10
    listed = ", ".join(changed[:10]) + (f" and {more} more" if more > 0 else "")
    return (
        "the user's git metadata changed while the agent ran: "
        f"{listed}; logist stopped before running git on it (check these files)"
    )


# -- internals -----------------------------------------------------------------------------
def _stored(store: JobStore, job_id: str, step: int) -> dict[str, str] | None:
    raw = store.fingerprint(job_id, step)
    if raw is None:
        return None
    try:
        prints = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(prints, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in prints.items()
    ):
        return None
    return prints


def _add_configs(prints: dict[str, str], configs: list[Path]) -> list[Path]:
    """Add the digest of each config file and, level by level, of every file they include;
    return the `core.attributesFile` paths they name."""
    attributes: list[Path] = []
    seen: set[Path] = set()
    level = list(dict.fromkeys(configs))
    for _ in range(_MAX_INCLUDE_DEPTH):
        level = [path for path in level if path not in seen]
        if not level:
            break
        seen.update(level)
        queries = [(path, _ConfigQuery(path)) for path in level]  # git reads them in parallel
        level = []
        for path, query in queries:
            digest = query.digest()
            if digest is None:
                continue
            prints[str(path)] = digest
            for key, value in query.paths:
                target = _config_path(value, path)
                if key == "core.attributesfile":
                    attributes.append(target)
                else:  # include.path, includeif.<condition>.path
                    level.append(target)
    return attributes


def _config_path(value: str, config: Path) -> Path:
    """A path as git reads it from `config`: `~` is home, relative is beside the file."""
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else config.parent / path


def _add_git_dir(prints: dict[str, str], git_dir: Path) -> None:
    """Hooks, `info/`, alternates and `shallow` of one git directory."""
    _add_tree(prints, git_dir / "hooks")
    _add_tree(prints, git_dir / "info", skip=_DERIVED)
    for name in ("objects/info/alternates", "objects/info/http-alternates", "shallow"):
        _add(prints, git_dir / name)


def _add_modules(prints: dict[str, str], modules: Path) -> None:
    """Every submodule git directory under `modules` (names may hold slashes, modules nest):
    its config (and what it includes), hooks and info. Object and ref stores are skipped."""
    stack = [modules]
    for _directory, entry in _walk(stack):
        path = Path(entry.path)
        if not entry.is_dir(follow_symlinks=False):
            _add(prints, path)  # a file or symlink where a module would be
        elif os.path.lexists(path / "config") or os.path.lexists(path / "HEAD"):
            _add_configs(prints, [path / "config"])
            _add_git_dir(prints, path)
            stack.append(path / "modules")
        else:
            stack.append(path)


#: Configuration keys that git writes as the user works (`push -u`, `branch --track`) and
#: that neither run a program nor redirect anything: a change to them is no alarm.
_HARMLESS_KEY = re.compile(r"branch\..*\.(remote|merge|rebase|pushremote|description)")
#: Keys whose value is another file git reads as configuration or attributes.
_PATH_KEY = re.compile(r"include\.path|includeif\..*\.path|core\.attributesfile")


class _ConfigQuery:
    """A digest of a git config file's entries, harmless branch-tracking keys left out (of
    its bytes when git cannot read it as configuration); git starts reading at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._query: GitQuery | None = None
        #: (key, value) of the entries that name other files git reads: includes and
        #: `core.attributesFile` (filled in by `digest`).
        self.paths: list[tuple[str, str]] = []
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
        for entry in entries:
            key, _, value = entry.decode(errors="replace").partition("\n")
            if _PATH_KEY.fullmatch(key) and value:
                self.paths.append((key, value))
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
    for directory, entry in _walk(stack):
        if directory == root and entry.name in skip:
            continue
        _add(prints, Path(entry.path))
        if entry.is_dir(follow_symlinks=False):
            stack.append(Path(entry.path))


def _walk(stack: list[Path]) -> Iterator[tuple[Path, os.DirEntry[str]]]:
    """(directory, entry) for the entries of each directory popped from `stack`, in name
    order; the caller pushes the directories to list next. At most about _MAX_ENTRIES
    entries; a directory that cannot be listed is passed over."""
    seen = 0
    while stack and seen < _MAX_ENTRIES:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            seen += 1
            yield directory, entry


def _global_configs() -> list[Path]:
    """The user's global git configuration files (they apply to the repository too)."""
    configured = os.environ.get("GIT_CONFIG_GLOBAL")
    if configured:
        return [Path(configured)]
    return [Path.home() / ".gitconfig", _xdg_config() / "git" / "config"]


def _xdg_config() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


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

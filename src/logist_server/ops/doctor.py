"""`logist doctor`: is this machine ready to run jobs? Checks only; printing is the CLI's.

Every check is a small function returning `(ok, detail, fix)`. `run_checks` runs them
concurrently (one daemon thread each, so a check that hangs cannot keep the process alive)
and returns one `Check` per line of the report. Nothing is left behind: the writability
probes create a temporary file and remove it, and the SQLite store is never opened.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from logist_server.domain.errors import LogistError, NotInRepositoryError
from logist_server.vcs.git import RepoInfo, find_repo

MIN_GIT = (2, 25)
DEFAULT_DEADLINE_S = 10.0

Outcome = tuple[bool, str, str | None]  # ok, what was found, how to fix it (a warning if ok)


class Check(msgspec.Struct):
    """One line of the report. `ok` with a `fix` is a warning."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    required: bool = False


@dataclass(frozen=True)
class CheckSpec:
    name: str
    required: bool
    run: Callable[[], Outcome]


def all_ok(checks: list[Check]) -> bool:
    """True when every required check passed (the exit status of `logist doctor`)."""
    return all(check.ok for check in checks if check.required)


# -- git and the repository ------------------------------------------------------------------
def parse_git_version(text: str) -> tuple[int, ...] | None:
    """`git version 2.39.3 (Apple Git-145)` -> (2, 39, 3)."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def check_git() -> Outcome:
    install = "install git 2.25 or newer (apt-get install git, dnf install git, brew install git)"
    path = shutil.which("git")
    if path is None:
        return False, "git not found on PATH", install
    proc = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=5, check=False
    )
    version = parse_git_version(proc.stdout)
    if proc.returncode != 0 or version is None:
        output = proc.stderr.strip() or proc.stdout.strip()
        return False, f"{path} --version failed: {output}", install
    shown = ".".join(map(str, version))
    if version[:2] < MIN_GIT:
        fix = (
            "upgrade git to 2.25 or newer: job workspaces rely on `git worktree add -B`, "
            "`worktree remove --force --force` and `worktree list --porcelain`"
        )
        return True, f"{shown} ({path}) is older than 2.25", fix
    return True, f"{shown} ({path})", None


REPO_FIX = "cd into a git repository, pass -C /path/to/repo, or run `git init` here"


def check_repository(start: Path) -> Outcome:
    if not os.path.exists(start):
        return False, f"no such directory: {start}", "pass an existing directory to -C"
    try:
        info = find_repo(start)
    except NotInRepositoryError:
        return False, f"not inside a git repository: {start}", REPO_FIX
    except FileNotFoundError:
        return False, "git not found, so no repository either", "install git (see the git check)"
    return True, str(info.root), None


# -- writable directories --------------------------------------------------------------------
def _probe_write(directory: Path) -> str | None:
    """Create and remove a temporary file in `directory`; None if that works, else why not."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".logist-doctor-", suffix=".tmp", dir=directory)
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        os.write(fd, b"x")
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return None


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists (an unreadable parent hides what is below)."""
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def check_config(start: Path) -> Outcome:
    """The configuration files parse and validate (roles and observer patterns included)."""
    from logist_server.domain.errors import ConfigError
    from logist_server.engine.facade import Engine

    try:
        engine = Engine(find_repo(start))
    except (NotInRepositoryError, OSError):
        return False, "not checked: no repository", "fix the repository check first"
    try:
        effective = engine.config
        engine.roles()
        engine.observer  # noqa: B018 - building it validates the patterns
    except ConfigError as exc:
        return False, str(exc), "fix that key, or see `logist config show` and doc/configuration.md"
    files = ", ".join(effective.files) or "no files, built-in defaults"
    return True, files, None


def check_store(start: Path) -> Outcome:
    from logist_server.store.job_store import STORE_DIRNAME

    try:
        info: RepoInfo = find_repo(start)
    except (NotInRepositoryError, OSError):
        return False, "not checked: no repository", "fix the repository check first"
    store = info.root / STORE_DIRNAME
    if os.path.lexists(store):
        if not os.path.isdir(store):
            return False, f"{store} is not a directory", f"move it away: mv {store} {store}.old"
        problem = _probe_write(store)
        if problem is not None:
            from logist_server.store.faults import read_only_mount

            if read_only_mount(store):
                fix = f"{store} is on a read-only mount: remount it read-write, or move it"
            else:
                fix = f"make it writable (as its owner): chmod u+rwx {store}"
            return False, f"cannot write in {store}: {problem}", fix
        database = store / "logist.db"
        if os.path.exists(database) and not os.access(database, os.R_OK | os.W_OK):
            return False, f"{database} is not writable", f"chmod u+rw {database}"
        return True, f"{store} writable", None
    # No store yet: the first job creates it in the repository root and adds `/.logist/` to
    # info/exclude, so both must be writable.
    problem = _probe_write(info.root)
    if problem is not None:
        return False, f"cannot create {store}: {problem}", f"make {info.root} writable for you"
    exclude_dir = _nearest_existing(info.common_dir / "info")
    if not os.access(exclude_dir, os.W_OK | os.X_OK):
        exclude = info.common_dir / "info" / "exclude"
        return False, f"cannot write {exclude}", f"make {exclude_dir} writable for you"
    return True, f"{store} can be created (no jobs yet)", None


def check_workspace_root(start: Path) -> Outcome:
    from logist_server.vcs.workspace import default_workspace_root

    root, source = default_workspace_root(), ""
    with contextlib.suppress(LogistError, OSError):
        from logist_server.engine.facade import Engine

        engine = Engine(find_repo(start))
        root = engine.workspace_root
        source = f" ({engine.config.source_of('workspace_root')})"
    fix = (
        f"make {root} writable, or point workspace_root (logist.yml) or LOGIST_WORKSPACE_ROOT "
        "at a writable directory"
    )
    if os.path.lexists(root):
        if not os.path.isdir(root):
            return False, f"{root}{source} is not a directory", fix
        problem = _probe_write(root)
        if problem is not None:
            return False, f"cannot write in {root}{source}: {problem}", fix
        return True, f"{root}{source}", None
    parent = _nearest_existing(root)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        return False, f"cannot create {root}{source}: {parent} is not writable", fix
    return True, f"{root}{source}, created on first job", None


# -- agents ------------------------------------------------------------------------------------
def _describe_agent(registry: Any, name: str) -> dict[str, Any]:
    """`catalog.describe_agents` for one provider, so each agent is probed in its own thread."""
    from logist_server.providers.catalog import describe_agents
    from logist_server.providers.registry import Registry

    class One(Registry[Any]):
        def names(self) -> list[str]:
            return [name]

        def get(self, wanted: str) -> Any:
            return registry.get(wanted)

    rows = describe_agents(One(registry.kind, {}, ""))
    return rows[0]


def check_agent(registry: Any, name: str) -> Outcome:
    """Installed, with its version, and whether credentials are configured; how to install
    it or log in when not (the provider's `install_hint` and `login_hint`)."""
    row = _describe_agent(registry, name)
    if row["program"] is None:  # the provider itself failed to load
        fix = "reinstall the package that provides this agent in logist's Python environment"
        return False, row["description"], fix
    if not row["installed"]:
        install = row["installHint"] or f"install {row['program']} and put it on PATH"
        login = f"; then log in: {row['loginHint']}" if row["loginHint"] else ""
        return False, f"{row['program']} not found", f"{install}{login}"
    found = f"{row['program']} {row['version']}"
    if row["credentials"] is None:
        login = row["loginHint"] or f"configure {name}'s credentials"
        return True, f"{found}, no credentials configured", f"log in: {login}"
    if row["credentials"] != "unknown":
        found += f", credentials: {row['credentials']}"
    return True, found, None


# -- running them --------------------------------------------------------------------------------
def default_checks(start: Path, runtimes: Any = None) -> list[CheckSpec]:
    """Every check, in report order. Agents and runtimes come from their registries (the
    built-ins and the `logist.agents` / `logist.runtimes` entry points), so new ones appear
    here; a runtime is checked by asking it (`available()`), never by a name doctor knows."""
    from logist_server.engine.facade import default_agents, default_runtimes

    specs = [
        CheckSpec("git", True, check_git),
        CheckSpec("repository", True, lambda: check_repository(start)),
        CheckSpec("store", True, lambda: check_store(start)),
        CheckSpec("config", True, lambda: check_config(start)),
        CheckSpec("workspace", True, lambda: check_workspace_root(start)),
    ]
    agents = default_agents()
    for name in agents.names():
        specs.append(CheckSpec(f"agent:{name}", False, _bind_agent(agents, name)))
    runtimes = runtimes if runtimes is not None else default_runtimes()
    for name in runtimes.names():
        specs.append(CheckSpec(f"runtime:{name}", False, _bind_runtime(runtimes, name)))
    return specs


def _bind_agent(registry: Any, name: str) -> Callable[[], Outcome]:
    return lambda: check_agent(registry, name)


def _bind_runtime(registry: Any, name: str) -> Callable[[], Outcome]:
    return lambda: check_runtime(registry, name)


def check_runtime(registry: Any, name: str) -> Outcome:
    """What the runtime says of itself (`available()`); one that cannot even be loaded or
    answers nonsense says so."""
    try:
        runtime = registry.get(name)
    except LogistError as exc:
        fix = "reinstall the package that provides this runtime in logist's Python environment"
        return False, str(exc), fix
    answer = runtime.available()
    if not (isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], bool)):
        return False, f"available() returned {answer!r}", "a bug in the runtime: report it"
    ok, detail = answer
    if ok:
        return True, str(detail), None
    return False, str(detail), f"only jobs run with --runtime {name} need it"


def run_checks(specs: list[CheckSpec], deadline_s: float = DEFAULT_DEADLINE_S) -> list[Check]:
    """Run every check at once; one that has not finished by the deadline fails as a timeout."""
    results: list[Outcome | None] = [None] * len(specs)

    def run(index: int, spec: CheckSpec) -> None:
        try:
            results[index] = spec.run()
        except Exception as exc:
            detail = f"the check itself failed: {type(exc).__name__}: {exc}"
            results[index] = (False, detail, "a bug in logist doctor: please report this line")

    threads = [
        threading.Thread(target=run, args=(i, spec), name=f"doctor-{spec.name}", daemon=True)
        for i, spec in enumerate(specs)
    ]
    for thread in threads:
        thread.start()
    end = time.monotonic() + deadline_s
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    checks = []
    for spec, outcome in zip(specs, results, strict=True):
        if outcome is None:
            hint = "something hangs (a slow network or program): run it again to see if it lasts"
            outcome = (False, f"no result within {deadline_s:g} s", hint)
        ok, detail, fix = outcome
        checks.append(Check(spec.name, ok, detail, fix, spec.required))
    return checks

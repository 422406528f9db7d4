"""`logist doctor`: is this machine ready to run jobs? Checks only; printing is the CLI's.

Every check is a small function returning `(ok, detail, fix)`. `run_checks` runs them
concurrently (one daemon thread each, so a check that hangs cannot keep the process alive)
and returns one `Check` per line of the report. Nothing is left behind: the writability
probes create a temporary file and remove it, and the SQLite store is never opened.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from logist_server.domain.errors import LogistError, NotInRepositoryError
from logist_server.vcs.git import RepoInfo, find_repo

MIN_GIT = (2, 25)
NET_TIMEOUT_S = 2.0
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
    row = _describe_agent(registry, name)
    if row["installed"]:
        return True, f"{row['program']} {row['version']}", None
    if row["program"] is None:  # the provider itself failed to load
        fix = "reinstall the package that provides this agent in logist's Python environment"
        return False, row["description"], fix
    return False, f"{row['program']} not found", f"install {row['program']} and put it on PATH"


# -- container daemons -------------------------------------------------------------------------
class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the Docker and Podman APIs)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


@dataclass(frozen=True)
class Endpoint:
    """Where a container API listens: a unix socket path or a TCP host and port."""

    url: str
    unix_path: str | None = None
    host: str = ""
    port: int = 0

    @property
    def where(self) -> str:
        return self.unix_path if self.unix_path is not None else f"{self.host}:{self.port}"

    def connection(self) -> http.client.HTTPConnection:
        if self.unix_path is not None:
            return UnixHTTPConnection(self.unix_path, NET_TIMEOUT_S)
        return http.client.HTTPConnection(self.host, self.port, timeout=NET_TIMEOUT_S)


def parse_endpoint(url: str) -> Endpoint | str:
    """An Endpoint for unix:// and tcp:// URLs; otherwise why it cannot be checked."""
    if url.startswith("unix://"):
        return Endpoint(url, unix_path=url[len("unix://") :])
    if url.startswith(("tcp://", "http://")):
        parts = urlsplit(url)
        if not parts.hostname:
            return f"no host in {url}"
        try:
            port = parts.port or 2375
        except ValueError:
            return f"bad port in {url}"
        return Endpoint(url, host=parts.hostname, port=port)
    if url.startswith("/"):
        return Endpoint(f"unix://{url}", unix_path=url)
    return f"{url}: only unix:// and tcp:// endpoints are checked"


def _get(endpoint: Endpoint, path: str) -> tuple[int, bytes]:
    conn = endpoint.connection()
    try:
        conn.request("GET", path, headers={"Host": "docker"})
        response = conn.getresponse()
        return response.status, response.read(64 * 1024)
    finally:
        conn.close()


def ping(endpoint: Endpoint) -> tuple[bool, str, str]:
    """(answered OK, server version or why not, the kind of failure).

    The kind is "" on success, else one of: missing, refused, denied, timeout, answer, error.
    """
    try:
        status, body = _get(endpoint, "/_ping")
    except FileNotFoundError:
        return False, f"no socket at {endpoint.where}", "missing"
    except ConnectionRefusedError:
        return False, f"no daemon listening at {endpoint.where}", "refused"
    except PermissionError:
        return False, f"permission denied on {endpoint.where}", "denied"
    except TimeoutError:
        return False, f"no answer from {endpoint.where} within {NET_TIMEOUT_S:g} s", "timeout"
    except (OSError, http.client.HTTPException) as exc:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return False, f"no socket at {endpoint.where}", "missing"
        return False, f"{endpoint.where}: {exc or type(exc).__name__}", "error"
    if status != 200 or body.strip() != b"OK":
        shown = body[:60].decode(errors="replace").strip()
        return False, f"GET /_ping at {endpoint.where} answered {status} {shown!r}", "answer"
    version = "version unknown"
    with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
        status, body = _get(endpoint, "/version")
        if status == 200:
            data = json.loads(body)
            if isinstance(data, dict) and data.get("Version"):
                version = str(data["Version"])
    return True, version, ""


def docker_endpoint(env: Mapping[str, str]) -> Endpoint | str:
    return parse_endpoint(env.get("DOCKER_HOST") or "unix:///var/run/docker.sock")


def check_docker(env: Mapping[str, str] | None = None) -> Outcome:
    env = os.environ if env is None else env
    endpoint = docker_endpoint(env)
    configured = bool(env.get("DOCKER_HOST"))
    if isinstance(endpoint, str):
        return False, f"DOCKER_HOST={endpoint}", "set DOCKER_HOST to unix:///path/to/docker.sock"
    ok, text, kind = ping(endpoint)
    if ok:
        return True, f"{text} at {endpoint.where}", None
    if kind == "denied":
        fix = "add yourself to the docker group: sudo usermod -aG docker $USER, then log in again"
    elif kind in ("missing", "refused"):
        fix = "start the daemon: sudo dockerd & (or sudo systemctl start docker)"
    else:
        fix = "check the daemon: sudo systemctl status docker (or its log)"
    if configured:
        fix += f"; or fix DOCKER_HOST (now {endpoint.url})"
    return False, text, fix


def podman_endpoint(env: Mapping[str, str]) -> Endpoint | str:
    if env.get("CONTAINER_HOST"):
        return parse_endpoint(env["CONTAINER_HOST"])
    candidates = []
    if env.get("XDG_RUNTIME_DIR"):
        candidates.append(f"{env['XDG_RUNTIME_DIR']}/podman/podman.sock")
    candidates.append("/run/podman/podman.sock")
    chosen = next((c for c in candidates if os.path.exists(c)), candidates[0])
    return parse_endpoint(f"unix://{chosen}")


def check_podman(env: Mapping[str, str] | None = None) -> Outcome:
    env = os.environ if env is None else env
    endpoint = podman_endpoint(env)
    if isinstance(endpoint, str):
        fix = "set CONTAINER_HOST to unix:///path/to/podman.sock"
        return False, f"CONTAINER_HOST={endpoint}", fix
    ok, text, kind = ping(endpoint)
    if ok:
        return True, f"{text} at {endpoint.where}", None
    if kind == "denied":
        fix = (
            "use your own rootless socket: "
            "export CONTAINER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock"
        )
    elif kind in ("missing", "refused"):
        unit = (
            "sudo systemctl start podman.socket"
            if (endpoint.unix_path or "").startswith("/run/podman/")
            else "systemctl --user start podman.socket"
        )
        fix = f"start the API service: podman system service --time=0 {endpoint.url} & (or {unit})"
    else:
        fix = "restart the API service: podman system service --time=0 " + endpoint.url
    if env.get("CONTAINER_HOST"):
        fix += f"; or fix CONTAINER_HOST (now {endpoint.url})"
    return False, text, fix


# -- Kubernetes --------------------------------------------------------------------------------
def kubeconfig_files(env: Mapping[str, str]) -> list[Path]:
    configured = env.get("KUBECONFIG")
    if configured:
        return [Path(p).expanduser() for p in configured.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _named(items: Any) -> dict[str, dict[str, Any]]:
    """A kubeconfig list of `{name, context|cluster}` as a dict by name (first one wins)."""
    result: dict[str, dict[str, Any]] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            result.setdefault(item["name"], item)
    return result


def load_kubeconfig(files: list[Path]) -> tuple[dict[str, Any], list[Path]] | str:
    """The merged config (as kubectl merges KUBECONFIG: the first value wins), or why not."""
    import yaml

    current: str | None = None
    contexts: dict[str, dict[str, Any]] = {}
    clusters: dict[str, dict[str, Any]] = {}
    read: list[Path] = []
    for path in files:
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror or exc}"
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            return f"{path} is not valid YAML{where}"
        if not isinstance(data, dict):
            return f"{path} is not a kubeconfig (no mapping at the top)"
        read.append(path)
        if current is None and data.get("current-context"):
            current = str(data["current-context"])
        for name, item in _named(data.get("contexts")).items():
            contexts.setdefault(name, item)
        for name, item in _named(data.get("clusters")).items():
            clusters.setdefault(name, item)
    merged = {"current-context": current, "contexts": contexts, "clusters": clusters}
    return merged, read


def check_kubernetes(env: Mapping[str, str] | None = None) -> Outcome:
    env = os.environ if env is None else env
    files = kubeconfig_files(env)
    shown = os.pathsep.join(map(str, files))
    switch = "kubectl config get-contexts, then kubectl config use-context NAME"
    loaded = load_kubeconfig(files)
    if isinstance(loaded, str):
        return False, loaded, "fix the file, or point KUBECONFIG at a valid one"
    config, read = loaded
    if not read:
        fix = "set KUBECONFIG or create ~/.kube/config (e.g. `kind create cluster`)"
        return False, f"no kubeconfig at {shown}", fix
    context_name = config["current-context"]
    if not context_name:
        return False, f"no current-context in {shown}", switch
    context = config["contexts"].get(context_name, {}).get("context")
    if not isinstance(context, dict):
        return False, f"current-context {context_name} is not defined in {shown}", switch
    cluster_name = context.get("cluster")
    cluster = config["clusters"].get(cluster_name, {}).get("cluster")
    server = cluster.get("server") if isinstance(cluster, dict) else None
    set_server = f"kubectl config set-cluster {cluster_name} --server=https://HOST:PORT"
    if not isinstance(server, str) or not server:
        return False, f"context {context_name}: cluster {cluster_name} has no server", set_server
    parts = urlsplit(server)
    try:
        port = parts.port or (80 if parts.scheme == "http" else 443)
    except ValueError:
        port = -1
    if not parts.hostname or port < 0:
        return False, f"context {context_name}: bad server URL {server}", set_server
    where = f"context {context_name}, server {server}"
    try:
        with socket.create_connection((parts.hostname, port), timeout=NET_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        fix = f"start the cluster (e.g. `kind create cluster`, `minikube start`), or {switch}"
        return False, f"{where} unreachable: {reason}", fix
    return True, f"{where} reachable", None


# -- running them --------------------------------------------------------------------------------
def default_checks(start: Path) -> list[CheckSpec]:
    """Every check, in report order. Agents come from the registry, so new ones appear here."""
    from logist_server.engine.facade import default_agents

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
    specs += [
        CheckSpec("docker", False, check_docker),
        CheckSpec("podman", False, check_podman),
        CheckSpec("kubernetes", False, check_kubernetes),
    ]
    return specs


def _bind_agent(registry: Any, name: str) -> Callable[[], Outcome]:
    return lambda: check_agent(registry, name)


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

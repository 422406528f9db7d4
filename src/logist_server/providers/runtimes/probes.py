"""Probes of container engines and clusters, for the `available()` of the runtimes that
use them (Docker, Podman, Kubernetes): each returns `(ok, detail, fix)`.

`logist doctor` does not call these itself: it asks each registered runtime's
`available()`, so a runtime that is not installed is not checked.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

NET_TIMEOUT_S = 2.0

Outcome = tuple[bool, str, str | None]  # ok, what was found, how to fix it (a warning if ok)


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

"""`logist doctor` against real things: git repositories, directories, sockets, servers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import socketserver
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import make_repo, parse_json, porcelain, run_logist
from logist_server.domain.errors import RuntimeProviderError
from logist_server.engine.facade import default_agents, default_runtimes
from logist_server.ops.doctor import CheckSpec, Outcome, all_ok, default_checks, run_checks
from logist_server.providers import registry as registry_module
from logist_server.providers.runtimes import probes
from logist_server.providers.runtimes.base import BaseRuntime
from logist_server.store.job_store import JobStore
from mounts import read_only

CHECK_KEYS = {"name", "ok", "detail", "fix", "required"}


@pytest.fixture(autouse=True)
def _no_daemons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own Docker, Podman and clusters never decide a test's outcome."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setenv("CONTAINER_HOST", f"unix://{tmp_path}/no-podman.sock")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


def doctor(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, dict[str, dict[str, Any]], str]:
    """Run `logist doctor --json` and `logist doctor`: (exit status, checks by name, text)."""
    proc = run_logist("doctor", "--json", *args, cwd=cwd, check=False, env=env)
    assert proc.stderr == "", proc.stderr
    rows: list[dict[str, Any]] = parse_json(proc.stdout)
    human = run_logist("doctor", *args, cwd=cwd, check=False, env=env)
    assert human.returncode == proc.returncode
    return proc.returncode, {row["name"]: row for row in rows}, human.stdout


def line_of(text: str, name: str) -> str:
    matches = [line for line in text.splitlines() if line.split()[1:2] == [name]]
    assert len(matches) == 1, f"no single line for {name} in:\n{text}"
    return matches[0]


# -- fakes that are real servers ------------------------------------------------------------
FAKE_VERSION = "99.1.2-fake"


class ContainerAPI(BaseHTTPRequestHandler):
    """Answers GET /_ping with OK and GET /version as Docker and Podman's compat API do."""

    def do_GET(self) -> None:
        if self.path == "/_ping":
            body, kind = b"OK", "text/plain"
        elif self.path == "/version":
            body = json.dumps({"Version": FAKE_VERSION, "ApiVersion": "1.43"}).encode()
            kind = "application/json"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@contextlib.contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_daemon(tmp_path: Path) -> Iterator[Path]:
    """A real HTTP server on a unix socket in tmp_path."""
    path = tmp_path / "api.sock"
    assert len(str(path)) < 100, "unix socket path too long for this test"
    with serving(_UnixHTTPServer(str(path), ContainerAPI)):
        yield path
    path.unlink(missing_ok=True)


def write_kubeconfig(path: Path, server: str, context: str = "dev") -> Path:
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        f"current-context: {context}\n"
        "clusters:\n"
        f"- name: c1\n  cluster:\n    server: {server}\n"
        "contexts:\n"
        f"- name: {context}\n  context:\n    cluster: c1\n    user: u1\n"
        "users:\n"
        "- name: u1\n  user: {}\n"
    )
    return path


# -- tests ------------------------------------------------------------------------------------
def test_healthy_repository(tmp_path: Path, workspace_root: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    exclude = (repo / ".git" / "info" / "exclude").read_bytes()
    status, checks, text = doctor(repo)

    assert status == 0, text
    for name in ("git", "repository", "store", "workspace", "agent:mock"):
        assert checks[name]["ok"], checks[name]
        assert line_of(text, name).startswith("ok ")
    assert checks["repository"]["detail"] == str(repo)
    assert "can be created" in checks["store"]["detail"]
    assert str(workspace_root) in checks["workspace"]["detail"]
    assert checks["agent:mock"]["detail"].endswith("0.1.0")
    assert checks["git"]["detail"].split()[0][0].isdigit()
    # Nothing left behind: no store, no temporary file, no change to info/exclude.
    assert porcelain(repo) == ""
    assert not (repo / ".logist").exists()
    assert (repo / ".git" / "info" / "exclude").read_bytes() == exclude
    assert list(workspace_root.iterdir()) == []


def test_json_shape(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    proc = run_logist("doctor", "--json", cwd=repo)
    rows = parse_json(proc.stdout)
    assert isinstance(rows, list)
    names = [row["name"] for row in rows]
    agents = [f"agent:{name}" for name in default_agents().names()]  # mock, and any others
    runtimes = [f"runtime:{name}" for name in default_runtimes().names()]
    assert "agent:mock" in agents and "runtime:host" in runtimes
    assert names == ["git", "repository", "store", "config", "workspace", *agents, *runtimes]
    for row in rows:
        assert set(row) == CHECK_KEYS
        assert isinstance(row["ok"], bool) and isinstance(row["required"], bool)
        assert isinstance(row["detail"], str) and row["detail"]
        assert row["fix"] is None or isinstance(row["fix"], str)
        if not row["ok"]:
            assert row["fix"], f"a failed check must say how to fix it: {row}"
    required = {row["name"] for row in rows if row["required"]}
    assert required == {"git", "repository", "store", "config", "workspace"}


def test_outside_a_repository(outside: Path) -> None:
    status, checks, text = doctor(outside)
    assert status == 1
    assert not checks["repository"]["ok"]
    assert str(outside) in checks["repository"]["detail"]
    assert "git init" in checks["repository"]["fix"]
    assert "-C" in checks["repository"]["fix"]
    line = line_of(text, "repository")
    assert line.startswith("FAIL ") and "git init" in line
    assert not checks["store"]["ok"]
    assert list(outside.iterdir()) == []


def test_dash_c_finds_the_repository(tmp_path: Path, outside: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    status, checks, _ = doctor(outside, "-C", str(repo))
    assert status == 0
    assert checks["repository"]["detail"] == str(repo)


def test_existing_store_is_writable(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    JobStore(repo, repo / ".git").close()  # the real store: .logist/logist.db, info/exclude
    before = sorted(p.name for p in (repo / ".logist").iterdir())
    status, checks, _ = doctor(repo)
    assert status == 0
    assert checks["store"]["ok"] and "writable" in checks["store"]["detail"]
    assert sorted(p.name for p in (repo / ".logist").iterdir()) == before
    assert porcelain(repo) == ""


def test_read_only_store(tmp_path: Path) -> None:
    """Unwritable for root too: a read-only bind mount as root (CI), `chmod` otherwise."""
    repo = make_repo(tmp_path / "repo")
    store = repo / ".logist"
    store.mkdir()
    with read_only(store):
        status, checks, text = doctor(repo)
    assert status == 1
    assert not checks["store"]["ok"]
    assert "cannot write" in checks["store"]["detail"]
    want = "remount" if os.geteuid() == 0 else "chmod"
    assert want in checks["store"]["fix"], checks["store"]
    assert line_of(text, "store").startswith("FAIL ")
    assert list(store.iterdir()) == []


def test_store_path_taken_by_a_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / ".logist").write_text("in the way\n")
    status, checks, _ = doctor(repo)
    assert status == 1
    assert not checks["store"]["ok"]
    assert "not a directory" in checks["store"]["detail"]
    assert (repo / ".logist").read_text() == "in the way\n"
    assert porcelain(repo) == "?? .logist\n"


def test_workspace_root_not_writable(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    status, checks, _ = doctor(repo, env={"LOGIST_WORKSPACE_ROOT": str(blocker)})
    assert status == 1
    assert not checks["workspace"]["ok"]
    assert "LOGIST_WORKSPACE_ROOT" in checks["workspace"]["fix"]


def test_workspace_root_created_later(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    root = tmp_path / "not" / "yet"
    status, checks, _ = doctor(repo, env={"LOGIST_WORKSPACE_ROOT": str(root)})
    assert status == 0
    assert "created on first job" in checks["workspace"]["detail"]
    assert not (tmp_path / "not").exists()


# -- the probes a container or cluster runtime's `available()` uses (providers/runtimes/probes.py) -
def probe(check: Any, env: dict[str, str]) -> dict[str, Any]:
    ok, detail, fix = check(env)
    return {"ok": ok, "detail": detail, "fix": fix}


def test_fake_docker_daemon(fake_daemon: Path) -> None:
    docker = probe(probes.check_docker, {"DOCKER_HOST": f"unix://{fake_daemon}"})
    assert docker["ok"], docker
    assert docker["detail"] == f"{FAKE_VERSION} at {fake_daemon}"
    assert docker["fix"] is None


def test_fake_podman_service(fake_daemon: Path) -> None:
    podman = probe(probes.check_podman, {"CONTAINER_HOST": f"unix://{fake_daemon}"})
    assert podman["ok"], podman
    assert FAKE_VERSION in podman["detail"]


def test_docker_over_tcp() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), ContainerAPI)
    port = server.server_address[1]
    with serving(server):
        docker = probe(probes.check_docker, {"DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
    assert docker["ok"], docker
    assert docker["detail"] == f"{FAKE_VERSION} at 127.0.0.1:{port}"


def test_docker_socket_missing(tmp_path: Path) -> None:
    missing = tmp_path / "gone.sock"
    docker = probe(probes.check_docker, {"DOCKER_HOST": f"unix://{missing}"})
    assert not docker["ok"]
    assert str(missing) in docker["detail"]
    assert "dockerd" in docker["fix"] and "DOCKER_HOST" in docker["fix"]


def test_docker_socket_without_daemon(tmp_path: Path) -> None:
    """A stale socket file (the daemon died) is refused, not missing."""
    path = tmp_path / "stale.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()
    docker = probe(probes.check_docker, {"DOCKER_HOST": f"unix://{path}"})
    assert not docker["ok"]
    assert "no daemon listening" in docker["detail"]
    assert "dockerd" in docker["fix"]


def test_podman_missing_socket_fix(tmp_path: Path) -> None:
    missing = tmp_path / "podman.sock"
    podman = probe(probes.check_podman, {"CONTAINER_HOST": f"unix://{missing}"})
    assert not podman["ok"]
    assert f"podman system service --time=0 unix://{missing}" in podman["fix"]


def test_kubernetes_reachable_and_unreachable(tmp_path: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        config = write_kubeconfig(tmp_path / "up.yaml", f"https://127.0.0.1:{port}", "kind-up")
        # A missing file earlier in the list is skipped, as kubectl does.
        kubeconfig = f"{tmp_path / 'missing.yaml'}{os.pathsep}{config}"
        kube = probe(probes.check_kubernetes, {"KUBECONFIG": kubeconfig})
    finally:
        listener.close()
    assert kube["ok"], kube
    assert "kind-up" in kube["detail"] and f"127.0.0.1:{port}" in kube["detail"]

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    config = write_kubeconfig(tmp_path / "down.yaml", f"https://127.0.0.1:{closed_port}")
    kube = probe(probes.check_kubernetes, {"KUBECONFIG": str(config)})
    assert not kube["ok"] and "unreachable" in kube["detail"]
    assert f"127.0.0.1:{closed_port}" in kube["detail"]
    assert "use-context" in kube["fix"]


def test_kubeconfig_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("clusters: [unclosed\n")
    kube = probe(probes.check_kubernetes, {"KUBECONFIG": str(bad)})
    assert not kube["ok"]
    assert "not valid YAML" in kube["detail"]

    no_context = tmp_path / "no-context.yaml"
    no_context.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    kube = probe(probes.check_kubernetes, {"KUBECONFIG": str(no_context)})
    assert "no current-context" in kube["detail"]

    kube = probe(probes.check_kubernetes, {"KUBECONFIG": str(tmp_path / "nothing")})
    assert "no kubeconfig" in kube["detail"]
    assert "KUBECONFIG" in kube["fix"]


def test_only_the_tests_files_in_the_repository(tmp_path: Path) -> None:
    """Every check together, twice (text and JSON), leaves the tree exactly as it was."""
    repo = make_repo(tmp_path / "repo")
    (repo / "mine.txt").write_text("the test's own file\n")
    doctor(repo)
    doctor(repo, "-C", str(repo))
    assert porcelain(repo) == "?? mine.txt\n"
    files = subprocess.run(
        ["find", str(repo), "-path", str(repo / ".git"), "-prune", "-o", "-print"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(Path(f).name for f in files) == ["a.txt", "b.txt", "mine.txt", "repo"]
    assert not any(stat.S_ISSOCK(os.lstat(f).st_mode) for f in files)


def test_old_git_is_a_warning(tmp_path: Path) -> None:
    """A real git behind a shim that reports an old version: ok, with advice, exit 0."""
    real_git = shutil.which("git")
    assert real_git is not None
    shim = tmp_path / "bin" / "git"
    shim.parent.mkdir()
    shim.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "git version 2.20.1"; exit 0; fi\n'
        f'exec {real_git} "$@"\n'
    )
    shim.chmod(0o755)
    repo = make_repo(tmp_path / "repo")
    path = f"{shim.parent}{os.pathsep}{os.environ['PATH']}"
    status, checks, text = doctor(repo, env={"PATH": path})
    assert status == 0
    assert checks["git"]["ok"] and checks["git"]["detail"].startswith("2.20.1")
    assert "2.25" in checks["git"]["fix"]
    assert line_of(text, "git").startswith("warn ")


def test_a_hanging_or_broken_check_does_not_stop_the_report() -> None:
    release = threading.Event()
    finished = threading.Event()

    def hangs() -> Outcome:
        release.wait(60)  # released only after the report is made
        finished.set()
        return True, "late", None

    def breaks() -> Outcome:
        raise RuntimeError("kaput")

    specs = [
        CheckSpec("hangs", True, hangs),
        CheckSpec("breaks", False, breaks),
        CheckSpec("fine", False, lambda: (True, "yes", None)),
    ]
    try:
        checks = run_checks(specs, deadline_s=0.5)
        assert not finished.is_set(), "the report waited for the hanging check"
    finally:
        release.set()
    by_name = {check.name: check for check in checks}
    assert [check.name for check in checks] == ["hangs", "breaks", "fine"]
    assert not by_name["hangs"].ok and "no result within 0.5 s" in by_name["hangs"].detail
    assert not by_name["breaks"].ok and "RuntimeError: kaput" in by_name["breaks"].detail
    assert by_name["hangs"].fix and by_name["breaks"].fix  # a failure always says what to do
    assert by_name["fine"].ok
    assert not all_ok(checks)


# -- runtimes: doctor asks each registered runtime, it knows none by name ----------------------
class ToyRuntime(BaseRuntime):
    """A runtime that says it cannot run here (as a container runtime without its daemon)."""

    name = "toy"

    def available(self) -> tuple[bool, str]:
        return False, "toyd is not running (socket /run/toyd.sock missing)"


class BrokenRuntime(BaseRuntime):
    name = "broken"

    def available(self) -> tuple[bool, str]:
        raise RuntimeProviderError("kaput")


def test_doctor_reports_each_registered_runtime_by_asking_it(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    runtimes = registry_module.Registry[Any]("runtime", {}, "logist.no-such-group")
    runtimes.register("toy", ToyRuntime)
    runtimes.register("broken", BrokenRuntime)
    runtimes.register("missing", lambda: (_ for _ in ()).throw(RuntimeProviderError("gone")))
    specs = default_checks(repo, runtimes=runtimes)
    checks = {check.name: check for check in run_checks(specs)}
    names = [spec.name for spec in specs]
    assert [n for n in names if n.startswith("runtime:")] == [
        "runtime:broken",
        "runtime:missing",
        "runtime:toy",
    ]
    toy = checks["runtime:toy"]
    assert not toy.ok and not toy.required
    assert toy.detail == "toyd is not running (socket /run/toyd.sock missing)"
    assert toy.fix == "only jobs run with --runtime toy need it"
    assert not checks["runtime:broken"].ok and "kaput" in checks["runtime:broken"].detail
    assert not checks["runtime:missing"].ok and "gone" in checks["runtime:missing"].detail
    assert all_ok(list(checks.values()))  # no runtime is required


def test_no_container_check_is_built_in(tmp_path: Path, fake_daemon: Path) -> None:
    """A live Docker API here is not reported: only registered runtimes are (host, replay)."""
    repo = make_repo(tmp_path / "repo")
    env = {"DOCKER_HOST": f"unix://{fake_daemon}", "CONTAINER_HOST": f"unix://{fake_daemon}"}
    status, checks, text = doctor(repo, env=env)
    assert status == 0
    assert not any(name in checks for name in ("docker", "podman", "kubernetes"))
    assert FAKE_VERSION not in text
    host = checks["runtime:host"]
    assert host["ok"] and host["detail"].startswith("ok")
    assert line_of(text, "runtime:host").startswith("ok ")

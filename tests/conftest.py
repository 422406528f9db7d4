"""Shared fixtures and helpers: real temporary git repositories and the real `logist` CLI.

Nothing is mocked: repositories are made with the git CLI, `logist` runs as a subprocess,
and the mock agent is the real `logist_server.providers.agents.mock_program` program.

Helpers are plain functions so test modules can `from conftest import ...` them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

BIN = Path(sys.executable).parent
LOGIST = BIN / "logist"
PYTHON = sys.executable

A_TXT = b"".join(f"line {i}\n".encode() for i in range(1, 11))
B_TXT = b"alpha\nbeta\ngamma\n"


# -- environment ---------------------------------------------------------------------------
_SHM = Path("/dev/shm")


def pytest_configure(config: pytest.Config) -> None:
    """Temporary directories in RAM when there is a tmpfs: every job fsyncs its store."""
    if config.option.basetemp or not (_SHM.is_dir() and os.access(_SHM, os.W_OK)):
        return
    config.option.basetemp = tempfile.mkdtemp(prefix="logist-tests-", dir=_SHM)
    config.add_cleanup(lambda: shutil.rmtree(config.option.basetemp, ignore_errors=True))


_OWN_PACKAGE = "logist_server"


def _own_import_skip(excinfo: pytest.ExceptionInfo[BaseException] | None) -> str | None:
    """The message when a skip hides a failed import of the project's own package."""
    if excinfo is None or not excinfo.errisinstance(pytest.skip.Exception):
        return None
    message = str(excinfo.value)
    if "could not import" in message and f"'{_OWN_PACKAGE}" in message:
        return f"the project's own module failed to import (a skip would hide it): {message}"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test skipped because `logist_server` does not import fails instead."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    message = _own_import_skip(call.excinfo) if report.skipped else None
    if message:
        report.outcome = "failed"
        report.longrepr = message


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """The same for a module-level `importorskip` of the project's own package."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and isinstance(report.longrepr, tuple):
        message = report.longrepr[2]
        if "could not import" in message and f"'{_OWN_PACKAGE}" in message:
            report.outcome = "failed"
            report.longrepr = f"the project's own module failed to import: {message}"


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Worktrees land in a per-test temporary directory; git ignores the machine's config."""
    root = tmp_path_factory.mktemp("worktrees")
    monkeypatch.setenv("LOGIST_WORKSPACE_ROOT", str(root))
    empty = tmp_path_factory.mktemp("gitconfig") / "config"
    empty.write_text("")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    # The developer's own ~/.config/logist/config.yml must not leak into the tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    # The tests' agent where nothing names one (`logist run` refuses to guess otherwise).
    monkeypatch.setenv("LOGIST_DEFAULT_AGENT", "mock")
    for name in ("LOGIST_AGENT", "LOGIST_MODEL", "LOGIST_RUNTIME", "LOGIST_CONCURRENCY",
                 "LOGIST_DEBUG", "LOGIST_FAULT", "GIT_DIR", "GIT_INDEX_FILE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    yield root


@pytest.fixture
def workspace_root(_isolated_env: Path) -> Path:
    """The directory LOGIST_WORKSPACE_ROOT points at for this test."""
    return _isolated_env


# -- git -------------------------------------------------------------------------------------
def git(
    repo: Path, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
) -> str:
    """Run git in `repo`; fail the test with git's message when it fails."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    proc = subprocess.run(
        ["git", *args], cwd=repo, input=input, capture_output=True, env=full_env, check=False
    )
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr.decode()}"
    return proc.stdout.decode()


def make_repo(path: Path, files: dict[str, bytes] | None = None) -> Path:
    """A git repository at `path` with `files` committed as the initial commit."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "tester@example.com")
    git(path, "config", "user.name", "Tester")
    files = {"a.txt": A_TXT, "b.txt": B_TXT} if files is None else files
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def make_crlf_repo(path: Path, files: dict[str, bytes], how: str) -> Path:
    """A repository of `files` (LF in git) checked out with CRLF line endings, by
    `* text eol=crlf` in .gitattributes (`how` "attributes") or by `core.autocrlf=true`."""
    repo = make_repo(path, files)
    if how == "attributes":
        (repo / ".gitattributes").write_bytes(b"* text eol=crlf\n")
        git(repo, "add", ".gitattributes")
        git(repo, "commit", "-q", "-m", "crlf")
    else:
        git(repo, "config", "core.autocrlf", "true")
    for name in files:
        (repo / name).unlink()
    git(repo, "checkout", "--", *files)
    for name, content in files.items():
        assert (repo / name).read_bytes() == content.replace(b"\n", b"\r\n")
    return repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with a.txt (10 lines) and b.txt committed, and a clean tree."""
    return make_repo(tmp_path / "repo")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory that is not inside any git repository."""
    path = tmp_path / "not-a-repo"
    path.mkdir()
    return path


def porcelain(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


def branches(repo: Path, pattern: str = "logist/*") -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{pattern}")
    return out.split()


def worktree_paths(repo: Path) -> list[str]:
    out = git(repo, "worktree", "list", "--porcelain")
    return [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]


def tree_state(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `root` (outside .git and .logist): content and permission bits."""
    state: dict[str, tuple[bytes, int]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in (".git", ".logist") or path.is_dir():
            continue
        state[rel.as_posix()] = (path.read_bytes(), stat.S_IMODE(path.lstat().st_mode))
    return state


def is_executable(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXUSR)


# -- the logist CLI -------------------------------------------------------------------------
def run_logist(
    *args: str,
    cwd: Path,
    check: bool = True,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real `logist` executable; with `check`, fail unless it exits 0."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [str(LOGIST), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )
    if check:
        assert proc.returncode == 0, (
            f"logist {' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def popen_logist(
    *args: str, cwd: Path, env: dict[str, str] | None = None, interruptible: bool = False
) -> subprocess.Popen[str]:
    """Start `logist` in the background (stdout and stderr captured), with `env` added to
    the environment. `interruptible`: SIGINT at its default, as in a terminal's foreground
    (a test run started in the background by a shell without job control inherits SIGINT
    ignored, and `logist run` then rightly ignores Ctrl-C)."""
    return subprocess.Popen(
        [str(LOGIST), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=_default_sigint if interruptible else None,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def logist_running(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`popen_logist`, killed and reaped on the way out if it still runs (a failed test
    leaves no driver behind)."""
    proc = popen_logist(*args, cwd=cwd, env=env)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def parse_json(stdout: str) -> Any:
    """The one JSON document a `--json` command printed."""
    return json.loads(stdout)


def parse_json_lines(stdout: str) -> list[Any]:
    """One JSON document per non-empty line."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def review_record(returncode: int | None, stdout: str, stderr: str = "") -> dict[str, Any]:
    """The job record a `--json` run (or attach) printed, which must have reached review."""
    assert returncode == 0, f"exit {returncode}\nstdout: {stdout}\nstderr: {stderr}"
    record: dict[str, Any] = parse_json(stdout)
    assert record["status"] == "review"
    return record


def run_job(repo: Path, *args: str, expect: int = 0) -> dict[str, Any]:
    """`logist run ... --json` in `repo`; the printed job record."""
    proc = run_logist("run", "--json", *args, cwd=repo, check=False)
    assert proc.returncode == expect, (
        f"logist run exited {proc.returncode}, wanted {expect}\n"
        f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    record: dict[str, Any] = parse_json(proc.stdout)
    return record


def show_job(repo: Path, job_id: str) -> dict[str, Any]:
    record: dict[str, Any] = parse_json(
        run_logist("job", "show", job_id, "--json", cwd=repo).stdout
    )
    return record


def list_jobs(repo: Path) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = parse_json(run_logist("job", "list", "--json", cwd=repo).stdout)
    return jobs


def job_events(repo: Path, job_id: str) -> list[dict[str, Any]]:
    return parse_json_lines(run_logist("job", "log", job_id, "--json", cwd=repo).stdout)


def wait_for(predicate: Callable[[], Any], timeout: float = 15, interval: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], status: int = 2) -> str:
    """Exit `status`, exactly one line on stderr, no traceback; returns that line."""
    assert proc.returncode == status, (
        f"exit {proc.returncode}, wanted {status}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert lines[0].strip(), "the error line is empty"
    return lines[0]


def processes_in(directory: Path) -> list[psutil.Process]:
    """Live (non-zombie) processes whose working directory is inside `directory`."""
    root = os.path.realpath(directory)
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cwd = proc.cwd()
        except psutil.Error:
            continue
        if cwd == root or cwd.startswith(root + os.sep):
            found.append(proc)
    return found


def processes_tagged(tag: str) -> list[psutil.Process]:
    """Live (non-zombie) processes with `tag` as one of their command-line arguments."""
    found = []
    for proc in psutil.process_iter():
        try:
            if tag in proc.cmdline() and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def no_stray_agents(workspace_root: Path) -> Iterator[None]:
    """A test that fails half-way must not leave its agents running (assertions come first)."""
    yield
    strays = processes_in(workspace_root)
    for proc in strays:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(strays, timeout=2)

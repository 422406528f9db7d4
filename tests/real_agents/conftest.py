"""Fixtures for the real-agent tests: the installed CLIs, the scripted model endpoint, an
isolated HOME, `logist run` in a fresh git repository, and the network guard.

- `agents_bin`: `${LOGIST_AGENTS_DIR:-~/.cache/logist-ci/agents}/bin`, where
  `scripts/ci/install-agents.sh` links every pinned CLI; `agent_program(name)` is one CLI.
  A missing CLI FAILS the test with a one-line message naming the install script (never a
  skip: CI installs them all).
- `model_endpoint`: a `ModelEndpoint` (all dialects) started for the test, stopped after.
- `agent_home`: an empty HOME for this test, under `~/.cache/logist-ci/homes/` (not a
  temporary directory: codex refuses those), removed after the test; with `.config`,
  `.cache`, `.local/share`, `.local/state` and aider's price cache pre-seeded with `{}`
  (else aider downloads a price list); `agent_env(home)` is the environment for a run with
  that HOME (below).
- `run_agent_job(repo, *args, home=...)`: the real `logist run --json ...` in `repo` with
  that environment; returns the process and the job record it printed (None if none).
- `agent_repo`: a fresh real git repository with `a.txt` committed.

Network guard (autouse, every test here): the tests may talk to 127.0.0.1 only.
`HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` (both cases) point at a port on 127.0.0.1 that is
bound and never listens (connections are refused at once) and `NO_PROXY` exempts
`127.0.0.1,localhost,::1`, so an agent that honours proxy variables and tries to reach the
internet fails fast instead of hanging or leaking; Logist passes these variables to every
agent (`runtimes/environment.py` BASE). Seen here: `claude -p` with no endpoint set fails
at once with ECONNREFUSED; Python's urllib too (test_network_guard.py). Node 20's built-in
`fetch` ignores proxy variables, and `gemini -p` with no endpoint set did not finish within
90 s (retrying, or a route around the proxy): give every agent its endpoint. A guard, not a
sandbox: a program that ignores proxy variables is stopped only by the machine's firewall.
The guard also removes the machine's own model credentials and agent settings
(`ANTHROPIC_*`, `OPENAI_*`, `GEMINI_*`, `*_API_KEY`, ...) from the environment, and after
each test kills and reports any process still running in the test's directories (a leaked
agent, e.g. codex-acp's native binary when only its npm launcher was killed).

`tests/real_agents` is a package (so this conftest does not replace `tests/conftest.py`,
which test modules import as `conftest`); this directory is also put on `sys.path` so a
test module can import a helper module next to it by its plain name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from conftest import LOGIST, make_repo  # noqa: E402
from model_endpoint import ModelEndpoint  # noqa: E402

INSTALL = "scripts/ci/install-agents.sh"
AGENTS = ("claude", "codex", "gemini", "aider", "cline", "opencode",
          "claude-agent-acp", "codex-acp")  # fmt: skip
LOOPBACK = "127.0.0.1,localhost,::1"
# The machine's own model credentials and agent settings never reach a test's agent.
_SCRUB_PREFIXES = ("ANTHROPIC_", "CLAUDE_", "OPENAI_", "CODEX_", "GEMINI_", "GOOGLE_",
                   "OPENCODE_", "CLINE_", "AIDER_", "OPENROUTER_", "AZURE_OPENAI_",
                   "LITELLM_", "VERTEX")  # fmt: skip
_SCRUB_SUFFIXES = ("_API_KEY", "_API_BASE", "_BASE_URL", "_AUTH_TOKEN")
_PROXY_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def agents_dir() -> Path:
    """Where `scripts/ci/install-agents.sh` installs (the same rule as the script)."""
    default = Path.home() / ".cache" / "logist-ci" / "agents"
    return Path(os.environ.get("LOGIST_AGENTS_DIR") or default)


# Resolved once, before any test changes HOME.
AGENTS_BIN = agents_dir() / "bin"


def agent_program(name: str) -> Path:
    """The installed CLI `name` in the agents' bin dir; fails the test when it is missing."""
    path = AGENTS_BIN / name
    if not (path.exists() and os.access(path, os.X_OK)):
        pytest.fail(f"agent CLI '{name}' is not installed in {AGENTS_BIN}: run {INSTALL} {name}",
                    pytrace=False)  # fmt: skip
    return path


@pytest.fixture
def agents_bin() -> Path:
    """The agents' bin dir (every pinned CLI linked there)."""
    if not AGENTS_BIN.is_dir():
        pytest.fail(f"no agents installed in {AGENTS_BIN}: run {INSTALL}", pytrace=False)
    return AGENTS_BIN


@pytest.fixture
def model_endpoint() -> Iterator[ModelEndpoint]:
    """The scripted model endpoint on 127.0.0.1 (every dialect), for this test only."""
    with ModelEndpoint() as endpoint:
        yield endpoint


HOMES = AGENTS_BIN.parent.parent / "homes"
_TEST_HOMES = pytest.StashKey[list[Path]]()


@pytest.fixture
def agent_home(request: pytest.FixtureRequest) -> Iterator[Path]:
    """An isolated, empty HOME for this test's agents, outside /tmp and /dev/shm (codex
    refuses to create its apply_patch helper under a temporary directory); removed after."""
    path = make_home(HOMES / f"home-{uuid.uuid4().hex[:12]}")
    request.node.stash.setdefault(_TEST_HOMES, []).append(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_home(path: Path) -> Path:
    """An empty HOME at `path`, with the XDG directories and aider's empty price cache."""
    for sub in (".config", ".cache", ".local/share", ".local/state", ".aider/caches"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    (path / ".aider" / "caches" / "model_prices_and_context_window.json").write_text("{}")
    return path


@pytest.fixture
def agent_repo(tmp_path: Path) -> Path:
    """A fresh real git repository with `a.txt` ("greeting = hello") committed."""
    return make_repo(tmp_path / "repo", {"a.txt": b"greeting = hello\n"})


# -- the network guard ------------------------------------------------------------------------
@pytest.fixture(scope="session")
def refused_proxy() -> Iterator[str]:
    """`http://127.0.0.1:PORT` where PORT is bound and never listens: connections refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def guard_env(proxy: str) -> dict[str, str]:
    """Proxy variables that send everything but loopback to `proxy` (refused)."""
    env = {}
    for name in _PROXY_NAMES:
        env[name] = env[name.lower()] = proxy
    env["NO_PROXY"] = env["no_proxy"] = LOOPBACK
    return env


def _scrubbed(name: str) -> bool:
    return name.startswith(_SCRUB_PREFIXES) or name.endswith(_SCRUB_SUFFIXES)


@pytest.fixture(autouse=True)
def _network_guard(
    refused_proxy: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    workspace_root: Path,
    request: pytest.FixtureRequest,
) -> Iterator[None]:
    """Every real-agent test: loopback only, no machine credentials, no leaked processes."""
    for name in list(os.environ):
        if _scrubbed(name):
            monkeypatch.delenv(name)
    for name, value in guard_env(refused_proxy).items():
        monkeypatch.setenv(name, value)
    yield
    # A process still running in the test's directories (cwd or HOME) after a grace period
    # for exits under way is a leak: killed, and the test fails naming it.
    homes = request.node.stash.get(_TEST_HOMES, [])
    _, leaked = psutil.wait_procs(_processes_under(tmp_path, workspace_root, *homes), timeout=5)
    for proc in leaked:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(leaked, timeout=5)
    if leaked:
        names = ", ".join(sorted({_describe(p) for p in leaked}))
        pytest.fail(f"processes left running after the test: {names}", pytrace=False)


def _processes_under(*directories: Path) -> list[psutil.Process]:
    """Live processes whose working directory or HOME is inside one of `directories`."""
    roots = tuple(str(d.resolve()) + os.sep for d in directories)
    found = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cwd, home = proc.cwd() + os.sep, proc.environ().get("HOME", "") + os.sep
            if cwd.startswith(roots) or home.startswith(roots):
                found.append(proc)
    return found


def _describe(proc: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return f"{proc.pid} {' '.join(proc.cmdline())[:80]}"
    return str(proc.pid)


# -- running logist ---------------------------------------------------------------------------
def agent_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for `logist` (and so its agents): this process's environment (which
    has the guard's proxies), HOME and the XDG directories inside `home`, the agents' bin
    dir first on PATH, then `extra`."""
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        PATH=f"{AGENTS_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra or {})
    return env


def run_agent_job(
    repo: Path,
    *args: str,
    home: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 240,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """The real `logist run --json ARGS` in `repo` with `agent_env(home, env)`; the process
    and the job record it printed (None when stdout is not one JSON object)."""
    proc = subprocess.run(
        [str(LOGIST), "run", "--json", *args],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=agent_env(home, env),
        check=False,
    )
    try:
        record = json.loads(proc.stdout)
    except ValueError:
        record = None
    return proc, record if isinstance(record, dict) else None

"""The real-agent fixtures themselves: the network guard refuses everything but loopback at
once, the scripted endpoint stays reachable through it, machine credentials are removed, a
missing CLI fails with the install command, and a leaked process is caught."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_endpoint import ModelEndpoint
from real_agents.conftest import (
    AGENTS,
    HOMES,
    _processes_under,
    agent_env,
    agent_program,
    run_agent_job,
)

FETCH = """
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=60).read().decode())
except Exception as exc:
    print(f"refused: {exc}")
"""


def fetch(url: str, home: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", FETCH, url], env=agent_env(home), capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    return proc.stdout.strip()


@pytest.mark.parametrize("url", ["http://example.com/", "https://registry.npmjs.org/"])
def test_the_internet_is_refused_through_the_proxy(url: str, agent_home: Path) -> None:
    out = fetch(url, agent_home)
    assert out.startswith("refused:") and "Connection refused" in out, out


def test_the_endpoint_on_loopback_is_reached_directly(
    model_endpoint: ModelEndpoint, agent_home: Path
) -> None:
    out = fetch(model_endpoint.url + "/nothing-here", agent_home)
    assert "404" in out  # an HTTP answer from the endpoint, not a refused proxy
    assert [e.path for e in model_endpoint.log] == ["/nothing-here"]


def test_machine_credentials_do_not_reach_the_tests() -> None:
    leaked = [n for n in os.environ if n.endswith("_API_KEY") or n.startswith("ANTHROPIC_")]
    assert leaked == []
    assert os.environ["NO_PROXY"] == "127.0.0.1,localhost,::1"


def test_a_missing_cli_fails_naming_the_install_script() -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        agent_program("no-such-agent")
    assert "scripts/ci/install-agents.sh no-such-agent" in str(failed.value)
    assert "\n" not in str(failed.value)


@pytest.mark.parametrize("name", AGENTS)
def test_every_pinned_cli_is_installed(name: str) -> None:
    assert agent_program(name).resolve().is_file()


def test_a_process_left_in_the_tests_directories_is_found(tmp_path: Path, agent_home: Path) -> None:
    """The leak check's finder: by working directory, and by HOME; not a stranger."""
    sleep = ["sleep", "120"]
    env = {"PATH": os.environ["PATH"], "HOME": str(agent_home)}
    by_cwd = subprocess.Popen(sleep, cwd=tmp_path)
    by_home = subprocess.Popen(sleep, cwd="/", env=env)
    stranger = subprocess.Popen(sleep, cwd="/")
    try:
        found = {p.pid for p in _processes_under(tmp_path, agent_home)}
        assert {by_cwd.pid, by_home.pid} <= found
        assert stranger.pid not in found
    finally:
        for proc in (by_cwd, by_home, stranger):
            proc.kill()
            proc.wait()


def test_agent_home_is_outside_temporary_directories(agent_home: Path) -> None:
    assert agent_home.parent == HOMES
    assert not str(agent_home).startswith(("/tmp", "/dev/shm"))
    prices = agent_home / ".aider" / "caches" / "model_prices_and_context_window.json"
    assert prices.read_text() == "{}"


def test_run_agent_job_runs_the_real_cli_in_the_repository(
    agent_repo: Path, agent_home: Path
) -> None:
    proc, record = run_agent_job(agent_repo, "--agent", "mock", "--prompt", "x", home=agent_home)
    assert proc.returncode == 0 and record is not None, proc.stderr
    assert record["status"] == "review"
    env = agent_env(agent_home)
    assert env["HOME"] == str(agent_home)
    assert env["PATH"].split(os.pathsep)[0].endswith("/bin")
    assert env["XDG_CONFIG_HOME"] == str(agent_home / ".config")

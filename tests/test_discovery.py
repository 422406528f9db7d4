"""Discovery: `logist agent list` and `logist doctor` say, for each agent, whether it is
installed, its version, whether credentials are configured, and how to install and log in;
`logist run` with no agent named anywhere refuses (exit 2, one line naming the installed
agents and how to choose) instead of silently running the mock.

An "installed" agent here is a real executable on PATH answering `--version` as the real
CLI does (`claude --version` prints `2.1.332 (Claude Code)`); nothing is mocked in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import assert_one_line_error, list_jobs, run_job, run_logist


@pytest.fixture
def fake_claude(tmp_path: Path) -> dict[str, str]:
    """A `claude` on PATH that answers `--version`, and a HOME with no credentials."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    claude = bin_dir / "claude"
    claude.write_text("#!/bin/sh\necho '2.1.332 (Claude Code)'\n")
    claude.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(home),
           "LOGIST_DEFAULT_AGENT": ""}  # fmt: skip
    unset = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
             "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")  # fmt: skip
    env.update(dict.fromkeys(unset, ""))
    return env


def agent_rows(repo: Path, env: dict[str, str]) -> dict[str, dict[str, object]]:
    rows = json.loads(run_logist("agent", "list", "--json", cwd=repo, env=env).stdout)
    return {row["name"]: row for row in rows}


def test_agent_list_shows_installed_version_credentials_and_hints(
    repo: Path, fake_claude: dict[str, str]
) -> None:
    rows = agent_rows(repo, fake_claude)
    claude = rows["claude-code"]
    assert (claude["installed"], claude["version"], claude["credentials"]) == (
        True,
        "2.1.332",
        None,
    )
    assert claude["installHint"] and claude["loginHint"]
    keyed = agent_rows(repo, fake_claude | {"ANTHROPIC_API_KEY": "sk-secret-value"})
    assert keyed["claude-code"]["credentials"] == "ANTHROPIC_API_KEY"  # the name, never the value
    text = run_logist("agent", "list", cwd=repo, env=fake_claude | {"ANTHROPIC_API_KEY": "sk-x"})
    assert "sk-x" not in text.stdout
    line = next(li for li in text.stdout.splitlines() if li.startswith("claude-code"))
    assert "2.1.332" in line and "credentials: ANTHROPIC_API_KEY" in line
    for row in rows.values():
        assert set(row) >= {"installed", "version", "credentials", "installHint", "loginHint"}


def test_doctor_says_how_to_install_and_log_in(repo: Path, fake_claude: dict[str, str]) -> None:
    proc = run_logist("doctor", "--json", cwd=repo, env=fake_claude, check=False)
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    claude = checks["agent:claude-code"]
    assert claude["ok"] and "no credentials" in claude["detail"]
    assert "log in" in claude["fix"] and "ANTHROPIC_API_KEY" in claude["fix"]
    missing = [c for name, c in checks.items() if name.startswith("agent:") and not c["ok"]]
    assert missing, "some agent is not installed here"
    for check in missing:
        assert "install" in check["fix"], check


def test_run_with_no_agent_named_lists_the_installed_ones(
    repo: Path, fake_claude: dict[str, str]
) -> None:
    proc = run_logist("run", "--prompt", "hi", cwd=repo, env=fake_claude, check=False)
    line = assert_one_line_error(proc)
    assert "no agent chosen" in line and "claude-code" in line and "--agent" in line
    assert "mock" not in line.split("installed:")[1].split(":")[0]
    assert list_jobs(repo) == []


def test_run_with_no_agent_installed_says_how_to_get_one(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {"LOGIST_DEFAULT_AGENT": "", "PATH": f"{empty}{os.pathsep}/usr/bin:/bin"}
    line = assert_one_line_error(run_logist("run", "--prompt", "hi", cwd=repo, env=env,
                                            check=False))  # fmt: skip
    assert "no agent chosen" in line and "logist doctor" in line and "--agent mock" in line


def test_an_agent_named_in_the_users_config_or_a_flag_runs(
    repo: Path, fake_claude: dict[str, str]
) -> None:
    env = {"LOGIST_DEFAULT_AGENT": ""}
    assert run_logist("run", "--agent", "mock", "--prompt", "a", cwd=repo, env=env).returncode == 0
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "logist" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("agent: mock\n")
    assert run_logist("run", "--prompt", "b", cwd=repo, env=env).returncode == 0
    assert len(list_jobs(repo)) == 2


def test_the_tests_default_agent_comes_from_the_environment(repo: Path) -> None:
    assert run_job(repo, "--prompt", "hi")["agent"]["name"] == "mock"

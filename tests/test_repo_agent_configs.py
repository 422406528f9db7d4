"""A repository's own agent config files are refused before the agent starts (review R1,
R2): claude-agent-acp's `.claude/`/`.mcp.json` (hooks run as the user), gemini's `.env`
(redirects the user's key to the repository's host) and each ACP preset's project config."""

from __future__ import annotations

from pathlib import Path

import pytest

from logist_server.domain.errors import UsageError
from logist_server.domain.model import AgentSpec, Job
from logist_server.domain.permissions import Permissions
from logist_server.providers.agents.acp import PRESETS, AcpAgent
from logist_server.providers.agents.base import AgentContext
from logist_server.providers.agents.gemini import GeminiAgent
from logist_server.providers.agents.repo_configs import CONFIGS

ASK = Permissions()
EXECUTE = Permissions(execute="allow")


def context(workspace: Path) -> AgentContext:
    return AgentContext(
        workspace=str(workspace), job_dir=str(workspace.parent / "job"),
        prompt_file=str(workspace.parent / "prompt.txt"), rendered_prompt="x",
        answer_file=str(workspace.parent / "job" / "answer"),
    )  # fmt: skip


def fake_programs(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in {preset.program for preset in PRESETS.values()} | {"claude"}:
        path = directory / name
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    monkeypatch.setenv("PATH", str(directory))


def plant(workspace: Path, name: str) -> None:
    target = workspace / name
    if name.endswith("/"):
        target.mkdir(parents=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("X=1\n")


@pytest.mark.parametrize("preset", sorted(CONFIGS))
def test_each_acp_preset_refuses_the_repository_config_it_would_load(
    preset: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_programs(tmp_path / "bin", monkeypatch)
    commands, environment = CONFIGS[preset]
    for name in (*commands, *environment):
        workspace = tmp_path / f"ws-{preset}-{name.replace('/', '_')}"
        workspace.mkdir()
        plant(workspace, name)
        job = Job(id="j", prompt="x", repo="/r", agent=AgentSpec("acp", options={"preset": preset}))
        with pytest.raises(UsageError, match=f"holds {name},") as err:
            AcpAgent().build(job, context(workspace))
        assert "\n" not in str(err.value)
        allowed = Job(
            id="j", prompt="x", repo="/r", permissions=EXECUTE,
            agent=AgentSpec("acp", options={"preset": preset}),
        )  # fmt: skip
        if name in environment:  # sets the agent's environment: refused even so
            with pytest.raises(UsageError, match=f"holds {name},"):
                AcpAgent().build(allowed, context(workspace))
        else:  # runs commands: the job may run commands anyway
            AcpAgent().build(allowed, context(workspace))


def test_the_default_preset_refuses_claude_settings_and_mcp_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_programs(tmp_path / "bin", monkeypatch)
    for name in (".claude/settings.json", ".claude/", ".mcp.json"):
        workspace = tmp_path / f"ws{len(name)}"
        workspace.mkdir()
        plant(workspace, name)
        job = Job(id="j", prompt="x", repo="/r", agent=AgentSpec("acp"))
        with pytest.raises(
            UsageError, match=r"claude-agent-acp: the repository holds \.(claude|mcp)"
        ):
            AcpAgent().build(job, context(workspace))


@pytest.mark.parametrize("name", [".env", ".gemini/.env"])
def test_gemini_refuses_a_repository_env_file_even_with_execute_allowed(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_programs(tmp_path / "bin", monkeypatch)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    plant(workspace, name)
    for permissions in (ASK, EXECUTE):
        job = Job(id="j", prompt="x", repo="/r", permissions=permissions, agent=AgentSpec("gemini"))
        with pytest.raises(UsageError, match=r"holds \.(env|gemini)"):
            GeminiAgent().build(job, context(workspace))


def test_a_clean_workspace_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_programs(tmp_path / "bin", monkeypatch)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "a.txt").write_text("x\n")
    for preset in CONFIGS:
        job = Job(id="j", prompt="x", repo="/r", agent=AgentSpec("acp", options={"preset": preset}))
        AcpAgent().build(job, context(workspace))
    GeminiAgent().build(
        Job(id="j", prompt="x", repo="/r", agent=AgentSpec("gemini")), context(workspace)
    )


def test_the_opencode_preset_never_reads_the_project_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    fake_programs(tmp_path / "bin", monkeypatch)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    job = Job(id="j", prompt="x", repo="/r", agent=AgentSpec("acp", options={"preset": "opencode"}))
    spec = AcpAgent().build(job, context(workspace))
    config = json.loads(spec.argv[4].removeprefix("--config="))
    assert config["env"]["OPENCODE_DISABLE_PROJECT_CONFIG"] == "1"

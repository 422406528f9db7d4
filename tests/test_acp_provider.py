"""The `acp` provider's command line: the bridge runs the installed agent (never one in the
workspace), keys travel by variable name only, presets map `base_url`/`api_key_env`/model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import msgspec
import pytest

from logist_server.domain.errors import UsageError
from logist_server.domain.model import AgentSpec, Job
from logist_server.domain.sessions import PriorStep
from logist_server.providers.agents.acp import AcpAgent
from logist_server.providers.agents.base import AgentContext


def context(workspace: Path) -> AgentContext:
    return AgentContext(
        workspace=str(workspace), job_dir=str(workspace.parent / "job"),
        prompt_file=str(workspace.parent / "prompt.txt"), rendered_prompt="x",
        answer_file=str(workspace.parent / "job" / "answer"), resume_session="s-1",
    )  # fmt: skip


def fake_program(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def bridge_config(argv: list[str]) -> dict[str, object]:
    assert argv[:4] == [sys.executable, "-I", "-m", "logist_server.providers.agents.acp_bridge"]
    data: dict[str, object] = json.loads(argv[4].removeprefix("--config="))
    return data


def test_a_preset_runs_the_installed_program_with_its_key_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    gemini = fake_program(bin_dir, "gemini")
    monkeypatch.setenv("PATH", f"relative/bin:{bin_dir}")
    monkeypatch.setenv("MY_KEY", "sk-secret-value")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    options = {"preset": "gemini", "base_url": "http://127.0.0.1:5", "api_key_env": "MY_KEY"}
    job = Job(id="j1", prompt="x", repo="/r", agent=AgentSpec("acp", model="m-1", options=options))
    spec = AcpAgent().build(job, context(workspace))
    assert "sk-secret-value" not in json.dumps(spec.argv) + json.dumps(spec.env)
    config = bridge_config(spec.argv)
    assert config["agent"] == [str(gemini), "--acp", "--skip-trust", "--model=m-1"]
    assert config["env"] == {"GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:5"}
    assert config["env_from"] == {"GEMINI_API_KEY": "MY_KEY"}
    assert config["resume"] == "s-1" and config["model"] is None  # given as gemini's flag
    assert "MY_KEY" in spec.inherit and "GEMINI_API_KEY" in spec.inherit
    assert spec.env == {"LOGIST_ANSWER_FILE": str(workspace.parent / "job" / "answer")}
    assert spec.cwd == str(workspace)


def test_a_command_inside_the_workspace_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "ws"
    planted = fake_program(workspace / "bin", "agent")
    monkeypatch.setenv("PATH", str(workspace / "bin"))
    for command in (str(planted), "agent --acp"):
        job = Job(
            id="j1", prompt="x", repo="/r", agent=AgentSpec("acp", options={"command": command})
        )
        with pytest.raises(UsageError, match="inside the job's workspace"):
            AcpAgent().build(job, context(workspace))


def test_codex_acp_gets_its_provider_as_config_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_program(tmp_path / "bin", "codex-acp")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    options = {"preset": "codex-acp", "base_url": "http://127.0.0.1:5/v1", "api_key_env": "K"}
    job = Job(
        id="j1", prompt="x", repo="/r", agent=AgentSpec("acp", model="gpt-5", options=options)
    )
    config = bridge_config(AcpAgent().build(job, context(tmp_path / "ws")).argv)
    agent = config["agent"]
    assert isinstance(agent, list)
    assert 'model_providers.logist.env_key="K"' in agent and 'model="gpt-5"' in agent
    assert "features.plugins=false" in agent
    assert config["model"] is None and config["env_from"] == {}


def test_gemini_loads_a_session_only_after_the_minute_it_began(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gemini empties a session loaded in the minute it began: the bridge is told to wait
    until the minute after the one in which the session's first step ended; codex-acp (no
    such file naming) and a new session are not held back."""
    bin_dir = tmp_path / "bin"
    fake_program(bin_dir, "gemini")
    fake_program(bin_dir, "codex-acp")
    monkeypatch.setenv("PATH", str(bin_dir))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    history = (
        PriorStep(number=1, role="worker", agent="acp", outcome="done", session_id="s-1",
                  finished_at=1_800_000_125.5),
        PriorStep(number=2, role="supervisor", agent="acp", outcome="done", session_id="s-2",
                  finished_at=1_800_000_190.0),
    )  # fmt: skip
    ctx = msgspec.structs.replace(context(workspace), why="rework", history=history)

    def load_not_before(preset: str, ctx: AgentContext) -> object:
        job = Job(id="j1", prompt="x", repo="/r",
                  agent=AgentSpec("acp", options={"preset": preset}))  # fmt: skip
        return bridge_config(AcpAgent().build(job, ctx).argv)["load_not_before"]

    assert load_not_before("gemini", ctx) == 1_800_000_180  # 125.5 s: the minute 120..180
    assert load_not_before("codex-acp", ctx) is None
    assert load_not_before("gemini", msgspec.structs.replace(ctx, resume_session=None)) is None

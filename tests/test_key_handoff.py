"""A key named by `api_key_env` reaches the agent by name only: for every built-in agent the
process spec (what a runtime, a container's included, is given and may record) and the
files the build writes hold the variable's name, never its value; the Logist-side launchers
(`env_alias`, `aider_bridge`, `claude_bridge`) copy it into the variable the agent reads when
the agent starts. Real providers, real launchers, executables named like the CLIs that
record the environment they got."""

from __future__ import annotations

import os
import subprocess
from importlib import import_module
from pathlib import Path

import msgspec
import pytest

from logist_server.domain.model import AgentSpec, Job
from logist_server.domain.permissions import Permissions
from logist_server.domain.process import ProcessSpec
from logist_server.providers.agents.acp import PRESETS, AcpAgent
from logist_server.providers.agents.base import AgentContext, build_spec
from logist_server.providers.registry import BUILTIN_AGENTS
from logist_server.providers.runtimes.environment import agent_environment

SECRET = "sk-logist-test-secret-4711"
PROGRAMS = ("claude", "codex", "gemini", "aider", "cline", "opencode", "claude-agent-acp",
            "codex-acp")  # fmt: skip
#: The variable each agent reads its key from, once its launcher ran (`MY_KEY`: the agent
#: is pointed at the named variable itself by its configuration).
RECEIVED = {
    "aider": "OPENAI_API_KEY",
    "cline": "OPENAI_API_KEY",
    "opencode": "MY_KEY",
    "claude-code": "ANTHROPIC_API_KEY",
    "codex": "MY_KEY",
    "gemini": "GEMINI_API_KEY",
}
OPTIONS = {"api_key_env": "MY_KEY", "base_url": "http://127.0.0.1:5", "model": "m1"}


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, AgentContext]:
    """CLIs that write their environment to `seen.env`, the key in `MY_KEY`, the agents'
    own key variables unset (so only the handoff can fill them)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "seen.env"
    for name in PROGRAMS:
        (bin_dir / name).write_text(f"#!/bin/sh\nenv > {seen}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("MY_KEY", SECRET)
    for name in set(RECEIVED.values()) - {"MY_KEY"}:
        monkeypatch.delenv(name, raising=False)
    workspace, job_dir = tmp_path / "ws", tmp_path / "job"
    workspace.mkdir()
    job_dir.mkdir()
    (job_dir / "prompt.txt").write_text("edit a.txt")
    ctx = AgentContext(
        workspace=str(workspace), job_dir=str(job_dir), prompt_file=str(job_dir / "prompt.txt"),
        rendered_prompt="edit a.txt", answer_file=str(job_dir / "answer"),
    )  # fmt: skip
    return seen, ctx


def build(agent: str, ctx: AgentContext, **extra: str) -> ProcessSpec:
    module, _, name = BUILTIN_AGENTS[agent].partition(":")
    provider = getattr(import_module(module), name)()
    job = Job(id="j1", prompt="p", repo="/r", permissions=Permissions(),
              agent=AgentSpec(name=agent, options={**OPTIONS, **extra}))  # fmt: skip
    return build_spec(provider, job, ctx)


def assert_value_nowhere(spec: ProcessSpec, ctx: AgentContext) -> None:
    assert SECRET.encode() not in msgspec.json.encode(spec), spec
    assert "MY_KEY" in spec.inherit
    for path in Path(ctx.job_dir).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("agent", sorted(set(BUILTIN_AGENTS) - {"mock", "acp"}))
def test_the_key_is_named_in_the_spec_and_reaches_the_agent(
    agent: str, setup: tuple[Path, AgentContext]
) -> None:
    seen, ctx = setup
    spec = build(agent, ctx)
    assert_value_nowhere(spec, ctx)
    env = agent_environment(os.environ, spec.inherit, spec.env)  # what the host runtime does
    proc = subprocess.run(
        spec.argv, env=env, cwd=spec.cwd, stdin=subprocess.DEVNULL, capture_output=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert seen.exists(), (proc.stdout, proc.stderr)
    got = dict(line.partition("=")[::2] for line in seen.read_text().splitlines() if "=" in line)
    assert got.get(RECEIVED[agent]) == SECRET, (agent, proc.stderr)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_no_acp_preset_puts_the_key_in_its_spec(
    preset: str, setup: tuple[Path, AgentContext]
) -> None:
    _, ctx = setup
    assert_value_nowhere(build("acp", ctx, preset=preset), ctx)


def test_claude_code_never_falls_back_on_another_key(
    setup: tuple[Path, AgentContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job names a key that is unset: claude gets an empty key, not the user's own."""
    seen, ctx = setup
    monkeypatch.delenv("MY_KEY")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "the-users-own-key")
    spec = build("claude-code", ctx)
    env = agent_environment(os.environ, spec.inherit, spec.env)
    subprocess.run(spec.argv, env=env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                   capture_output=True, timeout=120, check=False)  # fmt: skip
    assert "ANTHROPIC_API_KEY=\n" in seen.read_text()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_an_acp_step_inherits_only_its_own_agents_keys(
    preset: str, setup: tuple[Path, AgentContext]
) -> None:
    """Every preset's keys are masked, but a gemini step must not get the user's Anthropic
    or OpenAI key (nor a `command=` agent any key it was not given)."""
    _, ctx = setup
    spec = build("acp", ctx, preset=preset)
    others = set(AcpAgent.secret_env) - set(PRESETS[preset].secrets)
    assert others and not others & set(spec.inherit), spec.inherit


def test_an_acp_command_agent_inherits_no_key_but_the_named_one(
    setup: tuple[Path, AgentContext],
) -> None:
    _, ctx = setup
    options = {"api_key_env": "MY_KEY", "command": "codex-acp --acp"}  # on PATH (setup)
    job = Job(id="j1", prompt="p", repo="/r", permissions=Permissions(),
              agent=AgentSpec(name="acp", options=options))  # fmt: skip
    spec = build_spec(AcpAgent(), job, ctx)
    assert not set(AcpAgent.secret_env) & set(spec.inherit), spec.inherit

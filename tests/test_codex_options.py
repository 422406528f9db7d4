"""The codex and gemini providers' command lines and options: bad input is one line and exit
status 2 before any job exists; a hostile prompt or model never becomes an option; a resume
continues the recorded session (argv built by the real providers, against executables named
like the CLIs in a directory on PATH)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import msgspec
import pytest

from conftest import list_jobs, run_logist
from logist_server.domain.errors import UsageError
from logist_server.domain.model import AgentSpec, Job
from logist_server.domain.permissions import Permissions
from logist_server.providers.agents import stdin_feed
from logist_server.providers.agents.base import AgentContext
from logist_server.providers.agents.codex import CodexAgent
from logist_server.providers.agents.gemini import GeminiAgent
from logist_server.providers.runtimes.environment import agent_environment

HOSTILE = "--dangerously-bypass-approvals-and-sandbox"


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`codex` and `gemini` executables (never run here) in a directory on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("codex", "gemini"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 9\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir


def job(agent: str, options: dict[str, str] | None = None, model: str | None = None,
        permissions: Permissions | None = None) -> Job:  # fmt: skip
    return Job(id="j1", prompt="p", repo="/r", permissions=permissions or Permissions(),
               agent=AgentSpec(name=agent, model=model, options=options or {}))  # fmt: skip


def ctx(workspace: Path, prompt: str = HOSTILE, session: str | None = None) -> AgentContext:
    return AgentContext(
        workspace=str(workspace), job_dir="/j", prompt_file="/j/p.txt",
        rendered_prompt=prompt, answer_file="/j/a", resume_session=session,
    )  # fmt: skip


def test_codex_argv_prompt_after_double_dash_and_quiet_settings(
    on_path: Path, tmp_path: Path
) -> None:
    spec = CodexAgent().build(job("codex", model="gpt-5"), ctx(tmp_path))
    file, text, argv = stdin_feed.unwrap(spec.argv)  # the prompt on stdin, never an argument
    assert (file, text) == ("/j/p.txt", "") and HOSTILE not in spec.argv
    assert argv[0] == str(on_path / "codex") and argv[1:3] == ["exec", "--json"]
    assert argv[-2:] == ["--", "-"]
    spec = msgspec.structs.replace(spec, argv=argv)
    assert spec.argv[spec.argv.index("-m") + 1] == "gpt-5"
    assert spec.argv[4:6] == ["--sandbox", "workspace-write"]
    assert "features.plugins=false" in spec.argv and "resume" not in spec.argv


def test_codex_resume_and_provider_overrides(on_path: Path, tmp_path: Path) -> None:
    options = {"base_url": "http://127.0.0.1:1/v1", "api_key_env": "MY_KEY"}
    spec = CodexAgent().build(job("codex", options), ctx(tmp_path, "go on", "thread-1"))
    assert "go on" not in spec.argv
    spec = msgspec.structs.replace(spec, argv=stdin_feed.unwrap(spec.argv)[2])
    assert spec.argv[1:3] == ["exec", "resume"] and spec.argv[-3:] == ["--", "thread-1", "-"]
    assert 'sandbox_mode="workspace-write"' in spec.argv and "--sandbox" not in spec.argv
    assert 'model_providers.logist.base_url="http://127.0.0.1:1/v1"' in spec.argv
    assert 'model_providers.logist.env_key="MY_KEY"' in spec.argv
    assert spec.inherit == ("MY_KEY",)  # passed on to codex (and masked: declared secret)


def test_codex_refuses_execute_deny(on_path: Path, tmp_path: Path) -> None:
    denied = job("codex", permissions=Permissions(execute="deny"))
    with pytest.raises(UsageError, match="execute: deny"):
        CodexAgent().build(denied, ctx(tmp_path))


def test_gemini_approval_follows_the_permissions(on_path: Path, tmp_path: Path) -> None:
    spec = GeminiAgent().build(job("gemini"), ctx(tmp_path))
    assert spec.argv[spec.argv.index("--approval-mode") + 1] == "auto_edit"
    assert "--yolo" not in spec.argv and not any(HOSTILE in arg for arg in spec.argv)
    assert stdin_feed.unwrap(spec.argv)[0] == "/j/p.txt"
    allowed = job("gemini", permissions=Permissions(execute="allow"))
    spec = GeminiAgent().build(allowed, ctx(tmp_path, session="s-1"))
    assert "--yolo" in spec.argv and "--approval-mode" not in spec.argv
    assert "--resume=s-1" in spec.argv


def test_gemini_refuses_a_workspace_with_gemini_settings(on_path: Path, tmp_path: Path) -> None:
    (tmp_path / ".gemini").symlink_to(tmp_path / "elsewhere")  # even a dangling link
    with pytest.raises(UsageError, match=r"\.gemini/"):
        GeminiAgent().build(job("gemini"), ctx(tmp_path))
    allowed = job("gemini", permissions=Permissions(execute="allow"))
    assert GeminiAgent().build(allowed, ctx(tmp_path)).argv


def test_gemini_key_is_named_in_the_spec_and_copied_when_gemini_starts(
    on_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key's value is in no part of the spec (a container runtime sees the spec): the
    spec names the variable, and the launcher copies it into GEMINI_API_KEY at exec time."""
    monkeypatch.setenv("MY_GEMINI", "secret-value")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    seen = tmp_path / "seen.txt"
    (on_path / "gemini").write_text(f'#!/bin/sh\nprintf %s "$GEMINI_API_KEY" > {seen}\n')
    prompt = tmp_path / "p.txt"
    prompt.write_text("hi")
    context = msgspec.structs.replace(ctx(tmp_path), prompt_file=str(prompt))
    options = {"api_key_env": "MY_GEMINI", "base_url": "http://127.0.0.1:5"}
    spec = GeminiAgent().build(job("gemini", options), context)
    assert b"secret-value" not in msgspec.json.encode(spec)
    assert spec.env == {"GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:5"}
    assert spec.inherit == ("MY_GEMINI",)
    env = agent_environment(os.environ, spec.inherit, spec.env)  # what the host runtime does
    proc = subprocess.run(spec.argv, env=env, cwd=tmp_path, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert seen.read_text() == "secret-value"


@pytest.mark.parametrize(
    ("agent", "option", "words"),
    [
        ("codex", "foo=bar", "does not take the option 'foo'"),
        ("codex", "api_key_env=1BAD", "must name an environment variable"),
        ("codex", "base_url=file:///etc/passwd", "must be an http(s) URL"),
        ("codex", 'args="unclosed', "cannot split"),
        ("codex", "api_key_env=K", "needs base_url"),
        ("gemini", "model=-rf", "is not a model name"),
        ("gemini", "base_url=http://x y", "must be an http(s) URL"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    repo: Path, agent: str, option: str, words: str
) -> None:
    proc = run_logist("run", "--agent", agent, "--agent-opt", option, "--file", "a.txt",
                      "--prompt", "x", cwd=repo, check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr and list_jobs(repo) == []

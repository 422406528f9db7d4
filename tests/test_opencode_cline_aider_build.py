"""What the aider, cline and opencode providers build, attacked through their inputs: the
options (one-line errors), a key that must stay off command lines and out of files, a prompt
or file name that looks like a flag, a repository that would configure the agent, and the
job's permissions mapped to each agent's own switches. The programs are stand-in
executables on PATH (the real CLIs are exercised in tests/real_agents)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logist_server.domain.errors import UsageError
from logist_server.domain.model import AgentSpec, Job, Target
from logist_server.domain.permissions import Permissions
from logist_server.providers.agents import stdin_feed
from logist_server.providers.agents.aider import AiderAgent
from logist_server.providers.agents.base import AgentContext
from logist_server.providers.agents.cline import ClineAgent
from logist_server.providers.agents.opencode import OpencodeAgent
from logist_server.providers.registry import BUILTIN_AGENTS
from logist_server.support import redaction

KEY = "sk-never-on-a-command-line-7731"
PROMPT = "--help; rm -rf / (a prompt that looks like a flag)"


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    for name in ("aider", "cline", "opencode"):
        exe = path / name
        exe.write_text("#!/bin/sh\nexit 0\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{path}:/usr/bin:/bin")
    monkeypatch.setenv("MY_KEY", KEY)
    return path


def context(tmp_path: Path, **kw: object) -> AgentContext:
    job_dir = tmp_path / "job"
    (job_dir / "step-1").mkdir(parents=True, exist_ok=True)
    fields: dict[str, object] = {
        "workspace": str(tmp_path / "ws"), "job_dir": str(job_dir),
        "prompt_file": str(job_dir / "step-1" / "prompt.txt"), "rendered_prompt": PROMPT,
        "answer_file": str(job_dir / "step-1" / "answer"),
    }  # fmt: skip
    fields.update(kw)
    return AgentContext(**fields)  # type: ignore[arg-type]


def job(
    agent: str, options: dict[str, str] | None = None, permissions: Permissions | None = None
) -> Job:
    spec = AgentSpec(agent, options=dict(options or {}))
    return Job(id="j1", prompt=PROMPT, repo="/r", agent=spec,
               target=Target(file="-rf.txt"), permissions=permissions or Permissions())  # fmt: skip


ENDPOINT = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "MY_KEY", "model": "gpt-4o"}


def test_registered() -> None:
    assert {"aider", "cline", "opencode"} <= set(BUILTIN_AGENTS)


@pytest.mark.parametrize("provider", [AiderAgent(), ClineAgent(), OpencodeAgent()])
def test_bad_options_are_one_line_errors(provider: object) -> None:
    validate = provider.validate_options  # type: ignore[attr-defined]
    for options, words in (
        ({"colour": "red"}, "no option 'colour'"),
        ({"base_url": "file:///etc/passwd"}, r"http\(s\) URL"),
        ({"api_key_env": "A B"}, "must name a variable"),
        ({"args": "'unclosed"}, "cannot be split"),
        ({"model": "-rf"}, "model name"),
    ):
        with pytest.raises(UsageError, match=words) as caught:
            validate(options)
        assert "\n" not in str(caught.value)


@pytest.mark.parametrize("provider", [AiderAgent(), ClineAgent(), OpencodeAgent()])
def test_the_key_is_passed_by_name_and_masked(
    provider: object, bin_dir: Path, tmp_path: Path
) -> None:
    spec = provider.build(job(provider.name, ENDPOINT), context(tmp_path))  # type: ignore[attr-defined]
    assert "MY_KEY" in spec.inherit
    assert KEY not in json.dumps([spec.argv, spec.env])
    assert redaction.redact_text(f"key {KEY}") != f"key {KEY}"  # declared secret: masked
    for path in tmp_path.rglob("*"):  # cline's per-job configuration holds no key
        if path.is_file():
            assert KEY not in path.read_text(errors="replace"), path


def test_opencode_argv_env_and_permissions(bin_dir: Path, tmp_path: Path) -> None:
    spec = OpencodeAgent().build(job("opencode", ENDPOINT), context(tmp_path))
    file, text, argv = stdin_feed.unwrap(spec.argv)  # the prompt on stdin, never an argument
    assert file == context(tmp_path).prompt_file and not text and PROMPT not in spec.argv
    assert argv[0] == str(bin_dir / "opencode")
    assert argv[1:4] == ["run", "--format", "json"]
    assert argv[argv.index("-m") + 1] == "logist/gpt-4o"
    assert spec.env["OPENCODE_DISABLE_PROJECT_CONFIG"] == "1"  # the repository's config: no
    config = json.loads(spec.env["OPENCODE_CONFIG_CONTENT"])
    assert config["snapshot"] is False
    assert config["provider"]["logist"]["options"] == {
        "baseURL": "http://127.0.0.1:9/v1", "apiKey": "{env:MY_KEY}"}  # fmt: skip
    rules = json.loads(spec.env["OPENCODE_PERMISSION"])
    assert (rules["edit"], rules["bash"], rules["webfetch"]) == ("allow", "ask", "ask")
    assert rules["external_directory"] == "deny"
    # An answer `allow` resumes the session with the asked-for tool allowed for that run.
    answered = context(tmp_path, why="answer", answer="allow", resume_session="ses_1")
    spec = OpencodeAgent().build(job("opencode", ENDPOINT), answered)
    assert spec.argv[spec.argv.index("-s") + 1] == "ses_1"
    assert json.loads(spec.env["OPENCODE_PERMISSION"])["bash"] == "allow"
    denied = Permissions(execute="deny")
    spec = OpencodeAgent().build(job("opencode", ENDPOINT, denied), answered)
    assert json.loads(spec.env["OPENCODE_PERMISSION"])["bash"] == "deny"  # deny stays deny


def test_cline_approves_tools_only_when_the_job_may_execute(bin_dir: Path, tmp_path: Path) -> None:
    spec = ClineAgent().build(job("cline", ENDPOINT), context(tmp_path))
    assert spec.argv[spec.argv.index("--auto-approve") + 1] == "false"
    assert spec.env["CLINE_SESSION_BACKEND_MODE"] == "local"
    # cline 3.0.65 refuses a prompt on stdin in JSON mode: an argument, after `--`.
    assert spec.argv[-2:] == ["--", PROMPT]
    # The launcher copies MY_KEY into OPENAI_API_KEY; the config dir is the job's own.
    assert "OPENAI_API_KEY=MY_KEY" in spec.argv
    config = Path(spec.argv[spec.argv.index("--config") + 1])
    assert config.is_relative_to(tmp_path / "job")
    providers = json.loads((config / "data/settings/providers.json").read_text())
    settings = providers["providers"]["openai-compatible"]["settings"]
    assert settings == {"provider": "openai-compatible", "model": "gpt-4o",
                        "baseUrl": "http://127.0.0.1:9/v1"}  # fmt: skip
    allowed = ClineAgent().build(job("cline", ENDPOINT, Permissions(execute="allow")),
                                 context(tmp_path))  # fmt: skip
    assert allowed.argv[allowed.argv.index("--auto-approve") + 1] == "true"


def test_aider_argv_and_permissions(bin_dir: Path, tmp_path: Path) -> None:
    spec = AiderAgent().build(job("aider", ENDPOINT), context(tmp_path))
    assert spec.argv[1:4] == ["-I", "-m", "logist_server.providers.agents.aider_bridge"]
    inner = spec.argv[spec.argv.index(str(bin_dir / "aider")) :]
    assert not any(PROMPT in arg for arg in inner) and inner[-2:] == ["--", "-rf.txt"]
    assert f"--message-file={context(tmp_path).prompt_file}" in inner
    assert "--no-suggest-shell-commands" in inner and "--no-detect-urls" in inner
    assert "--model=openai/gpt-4o" in inner and spec.env["OPENAI_API_BASE"].endswith("/v1")
    history = inner[inner.index("--chat-history-file") + 1]
    assert history.startswith(str(tmp_path / "job"))  # not in the repository
    free = Permissions(execute="allow", fetch="allow")
    inner = AiderAgent().build(job("aider", None, free), context(tmp_path)).argv
    assert "--no-suggest-shell-commands" not in inner and "--no-detect-urls" not in inner

"""The aider provider: `aider --yes-always ... --message PROMPT [FILE]` (aider 0.86).

aider prints plain text (`aider_parser`) and exits 0 even when every model call failed, so
it runs under `aider_bridge`, which exits 1 in that case with the last error. By default it
uses the user's own configuration (`~/.aider.conf.yml`, keys in the environment); the
options `model` (`--model`, e.g. `openai/NAME`), `base_url` (`OPENAI_API_BASE`),
`api_key_env` (copied into `OPENAI_API_KEY` by the bridge: never on a command line) and
`args` add to it. aider keeps no session Logist can resume (`supports_resume` False): a
retry or rework step starts a new conversation, and says so in its events.

What aider may do beyond editing follows the job's permissions: it runs shell commands it
suggests only when `execute` is allowed, and fetches URLs it sees only when `fetch` is.
Its chat and input history go to the step's directory, not the repository.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.domain.process import ProcessSpec
from logist_server.domain.questions import AnswerVia
from logist_server.providers.agents import chat_agent_options as opts
from logist_server.providers.agents.aider_parser import AiderParser
from logist_server.providers.agents.base import AgentContext, OutputParser
from logist_server.providers.agents.options import PathSyntax
from logist_server.providers.agents.program import installed_program, program_version

KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY",
        "OPENROUTER_API_KEY")  # fmt: skip
FIXED_FLAGS = (
    "--yes-always", "--no-auto-commits", "--no-check-update", "--analytics-disable",
    "--no-pretty", "--map-tokens", "0", "--no-gitignore", "--no-show-release-notes",
)  # fmt: skip


def resume_note(ctx: AgentContext) -> str | None:
    """What the step says when it could have continued an earlier aider conversation."""
    if ctx.why == "start":
        return None
    earlier = [s for s in ctx.history if s.role == ctx.role and s.agent == "aider"]
    if not earlier:
        return None
    return (
        f"aider keeps no session to resume: step {ctx.step} ({ctx.why}) starts a new "
        f"conversation; step {earlier[-1].number}'s is not continued"
    )


class AiderAgent:
    """aider (aider-chat), plain text; an exit-0 failure made honest by `aider_bridge`."""

    name = "aider"
    description = "aider (plain text; tokens are aider's own estimates), no sessions"
    program = "aider"
    path_options: Mapping[str, PathSyntax] = {}
    env_vars: tuple[str, ...] = (*KEYS, "OPENAI_API_BASE", "AIDER_MODEL")
    secret_env: tuple[str, ...] = KEYS
    supports_resume = False
    answer_via: AnswerVia = "resume"
    install_hint = "python -m pip install aider-chat==0.86.2 (its own venv; or pipx install)"
    login_hint = "set OPENAI_API_KEY (or ANTHROPIC_API_KEY...) or --agent-opt api_key_env=NAME"

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        exe = installed_program(self.program)
        if exe is None:
            raise UsageError(f"aider is not installed: {self.install_hint}")
        options = job.agent.options
        key = opts.key_variable(job)
        model = opts.model_of(job)
        base_url = options.get("base_url")
        if base_url and model and "/" not in model:
            model = f"openai/{model}"  # an OpenAI-compatible endpoint: litellm's prefix
        step_dir = Path(ctx.prompt_file).parent
        inner = [exe, *FIXED_FLAGS]
        inner += ["--chat-history-file", str(step_dir / "aider.chat.history.md")]
        inner += ["--input-history-file", str(step_dir / "aider.input.history")]
        if job.permissions.execute != "allow":
            inner.append("--no-suggest-shell-commands")
        if job.permissions.fetch != "allow":
            inner.append("--no-detect-urls")
        if model:
            inner.append(f"--model={model}")
        inner += opts.extra_args(job)
        inner.append(f"--message-file={ctx.prompt_file}")  # never an argument: 128 KiB, `ps`
        if job.target is not None:
            inner += ["--", job.target.file]
        bridge = [sys.executable, "-I", "-m", "logist_server.providers.agents.aider_bridge"]
        if key and key != "OPENAI_API_KEY":
            bridge += ["--alias", f"OPENAI_API_KEY={key}"]
        note = resume_note(ctx)
        if note:
            bridge += ["--note", note]
        # litellm's bundled price table: no fetch from GitHub at every start (offline, it
        # fails after a DNS wait and prints a network error the observer would take).
        env = {"COLUMNS": "4000", "NO_COLOR": "1", "TERM": "dumb",
               "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # fmt: skip
        if base_url:
            env["OPENAI_API_BASE"] = base_url
        inherit = (key,) if key else ()
        return ProcessSpec(
            argv=[*bridge, "--", *inner], env=env, cwd=ctx.workspace, inherit=inherit
        )

    def validate_options(self, options: dict[str, str]) -> None:
        opts.check_options(self.name, options)

    def new_parser(self) -> OutputParser:
        return AiderParser()

    def version(self) -> str | None:
        return program_version(self.program)

    def credentials(self) -> str | None:
        import os

        for name in KEYS:
            if os.environ.get(name):
                return name
        conf = Path.home() / ".aider.conf.yml"
        return "~/.aider.conf.yml" if conf.is_file() else None

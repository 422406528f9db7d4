"""The gemini provider: `gemini -p PROMPT --output-format stream-json` (gemini-cli 0.61).

By default gemini runs with the user's own installation and `~/.gemini` (login, settings);
`GEMINI_API_KEY`, `GOOGLE_API_KEY` (secrets, masked) and `GOOGLE_GEMINI_BASE_URL` and the
Vertex AI variables are passed on when set. Options: `model`, `base_url` (sets
`GOOGLE_GEMINI_BASE_URL`), `api_key_env` (the variable whose value becomes
`GEMINI_API_KEY` when gemini starts: `env_alias`), `args`.

gemini runs headless only in a trusted folder, so every run passes `--skip-trust`; a
workspace with a `.gemini/` directory (repository settings that can start commands) is
refused unless the job allows shell commands anyway.

Approval follows `job.permissions`: `execute: allow` runs `--yolo` (every tool, shell too);
otherwise `--approval-mode auto_edit`, where gemini approves its edit tools and, headless,
does not offer the model its shell tool at all (nothing to approve: a shell request never
happens, the model works without it). gemini never asks a question headless, so an answer
resumes the session (`--resume ID`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.domain.process import ProcessSpec
from logist_server.domain.questions import AnswerVia
from logist_server.providers.agents import cli_options, env_alias, repo_configs, stdin_feed
from logist_server.providers.agents.base import AgentContext, OutputParser
from logist_server.providers.agents.gemini_events import GeminiParser
from logist_server.providers.agents.options import PathSyntax
from logist_server.providers.agents.program import installed_program, program_version

OPTIONS = ("model", "base_url", "api_key_env", "args")
_KEYS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


class GeminiAgent:
    """Google's Gemini CLI, headless (`gemini -p ... --output-format stream-json`)."""

    name = "gemini"
    description = "Google Gemini CLI (gemini --prompt --output-format stream-json)"
    program = "gemini"
    path_options: Mapping[str, PathSyntax] = {}
    env_vars: tuple[str, ...] = (
        "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_APPLICATION_CREDENTIALS", "GEMINI_MODEL",
        # gemini starts itself again with a larger heap unless this is set (twice the
        # start-up time); the user's choice is passed on, never forced.
        "GEMINI_CLI_NO_RELAUNCH",
    )  # fmt: skip
    secret_env: tuple[str, ...] = _KEYS
    supports_resume = True
    answer_via: AnswerVia = "resume"
    install_hint = "npm install -g @google/gemini-cli"
    login_hint = "run gemini once and log in with Google, or set GEMINI_API_KEY"

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        options = job.agent.options
        self.validate_options(dict(options))
        exe = installed_program(self.program)
        if exe is None:
            raise UsageError(f"gemini is not installed: {self.install_hint}")
        repo_configs.refuse(self.program, job.permissions, ctx.workspace)
        argv = [exe, "--output-format", "stream-json", "--skip-trust"]
        if job.permissions.execute == "allow":
            argv.append("--yolo")
        else:
            argv += ["--approval-mode", "auto_edit"]
        model = cli_options.model(self.name, job.agent.model, options)
        if model is not None:
            argv += ["--model", model]
        if ctx.resume_session is not None:
            argv.append(f"--resume={ctx.resume_session}")
        argv += cli_options.split_args(self.name, options)
        # The key by name: the launcher copies it into GEMINI_API_KEY when gemini starts, so
        # its value is in no spec, argument or file.
        key = cli_options.key_env(self.name, options)
        if key is not None and key != "GEMINI_API_KEY":
            argv = env_alias.command({"GEMINI_API_KEY": key}, argv)
        # The prompt on stdin, never an argument (128 KiB cap, `ps`): gemini reads a piped
        # stdin as its prompt and runs headless when stdin is not a terminal.
        argv = stdin_feed.command(argv, ctx.prompt_file, stdin_feed.answer_text(ctx.answer))
        env: dict[str, str] = {}
        url = cli_options.base_url(self.name, options)
        if url is not None:
            env["GOOGLE_GEMINI_BASE_URL"] = url
        return ProcessSpec(argv=argv, env=env, cwd=ctx.workspace, inherit=(key,) if key else ())

    def validate_options(self, options: dict[str, str]) -> None:
        cli_options.check_known(self.name, options, OPTIONS)
        cli_options.split_args(self.name, options)
        cli_options.key_env(self.name, options)
        cli_options.base_url(self.name, options)
        cli_options.model(self.name, None, options)

    def new_parser(self) -> OutputParser:
        return GeminiParser()

    def version(self) -> str | None:
        return program_version(self.program, "@google/gemini-cli")

    def credentials(self) -> str | None:
        """Where gemini's credentials come from (never their value)."""
        for name in _KEYS:
            if os.environ.get(name):
                return name
        if os.environ.get("GOOGLE_GENAI_USE_VERTEXAI") and os.environ.get(
            "GOOGLE_APPLICATION_CREDENTIALS"
        ):
            return "GOOGLE_APPLICATION_CREDENTIALS"
        home = Path.home() / ".gemini"
        if (home / "oauth_creds.json").is_file():
            return "~/.gemini/oauth_creds.json"
        return None

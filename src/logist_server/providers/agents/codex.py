"""The codex provider: `codex exec --json --sandbox workspace-write PROMPT` (codex 0.171).

By default codex runs with the user's own installation, login (`~/.codex/auth.json` or
`CODEX_HOME`) and `config.toml`. Options: `model`, `base_url` with `api_key_env` (a model
provider given as `-c` overrides, `wire_api = "responses"`: nothing is written into the
user's codex home), `args` (extra arguments). Every run also turns off what would call
github.com and chatgpt.com (plugins) and the update check, which change nothing codex does.

Shell commands run inside codex's own sandbox (`workspace-write`: writes to the workspace
only, no network) without asking, whatever the job's `execute` permission says: codex edits
through its shell tool, which cannot be turned off, so `execute: deny` is refused.

`codex exec` never asks (its approval policy is `never`): a refused action is reported to the
model only, so `answer_via` is `resume`, and a supervisor's rework round or a retry continues
the thread with `codex exec resume ID PROMPT`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.domain.process import ProcessSpec
from logist_server.domain.questions import AnswerVia
from logist_server.providers.agents import cli_options, stdin_feed
from logist_server.providers.agents.base import AgentContext, OutputParser
from logist_server.providers.agents.codex_events import CodexParser
from logist_server.providers.agents.options import PathSyntax
from logist_server.providers.agents.program import installed_program, program_version

#: The name of the model provider the `base_url` option defines (in `-c` overrides only).
PROVIDER_ID = "logist"
#: Settings that stop calls to github.com / chatgpt.com and the update check.
QUIET = ("features.plugins=false", "check_for_update_on_startup=false")
OPTIONS = ("model", "base_url", "api_key_env", "args")


def _toml(value: str) -> str:
    """A TOML basic string (JSON's string escapes are TOML's)."""
    return json.dumps(value)


def provider_settings(url: str, key: str | None) -> list[str]:
    """codex's settings for a model provider at `url` (responses API), its key read from
    the variable `key` (also codex-acp's: `acp`)."""
    table = f"model_providers.{PROVIDER_ID}"
    settings = [
        f"model_provider={_toml(PROVIDER_ID)}",
        f"{table}.name={_toml('Logist base_url')}",
        f"{table}.base_url={_toml(url)}",
        f"{table}.wire_api={_toml('responses')}",
    ]
    if key is not None:
        settings.append(f"{table}.env_key={_toml(key)}")
    return settings


class CodexAgent:
    """OpenAI's Codex CLI, headless (`codex exec --json`)."""

    name = "codex"
    description = "OpenAI Codex CLI (codex exec --json)"
    program = "codex"
    path_options: Mapping[str, PathSyntax] = {}
    env_vars: tuple[str, ...] = ("CODEX_HOME", "OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL")
    secret_env: tuple[str, ...] = ("OPENAI_API_KEY", "CODEX_API_KEY")
    supports_resume = True
    answer_via: AnswerVia = "resume"
    install_hint = "npm install -g @openai/codex"
    login_hint = "codex login (ChatGPT account), or set OPENAI_API_KEY / CODEX_API_KEY"

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        options = job.agent.options
        self.validate_options(dict(options))
        if job.permissions.execute == "deny":
            raise UsageError(
                "codex cannot honour execute: deny: it edits through its shell tool (run "
                "inside its sandbox), which cannot be turned off; allow or ask execute, or "
                "use another agent"
            )
        exe = installed_program(self.program)
        if exe is None:
            raise UsageError(f"codex is not installed: {self.install_hint}")
        argv = [exe, "exec"]
        if ctx.resume_session is not None:
            argv.append("resume")
        argv += ["--json", "--skip-git-repo-check"]
        if ctx.resume_session is None:
            argv += ["--sandbox", "workspace-write"]
        else:  # `exec resume` has no --sandbox: the same setting as an override
            argv += ["-c", 'sandbox_mode="workspace-write"']
        for setting in QUIET:
            argv += ["-c", setting]
        model = cli_options.model(self.name, job.agent.model, options)
        if model is not None:
            argv += ["-m", model]
        argv += self._provider(options)
        argv += cli_options.split_args(self.name, options)
        argv.append("--")
        if ctx.resume_session is not None:
            argv.append(ctx.resume_session)
        argv.append("-")  # the prompt on stdin: never an argument (128 KiB cap, `ps`)
        argv = stdin_feed.command(argv, ctx.prompt_file, stdin_feed.answer_text(ctx.answer))
        key = cli_options.key_env(self.name, options)
        return ProcessSpec(argv=argv, cwd=ctx.workspace, inherit=(key,) if key else ())

    def _provider(self, options: Mapping[str, str]) -> list[str]:
        """`-c` overrides for a model provider at `base_url` (responses API)."""
        url = cli_options.base_url(self.name, options)
        if url is None:
            return []
        key = cli_options.key_env(self.name, options)
        return [arg for setting in provider_settings(url, key) for arg in ("-c", setting)]

    def validate_options(self, options: dict[str, str]) -> None:
        cli_options.check_known(self.name, options, OPTIONS)
        cli_options.split_args(self.name, options)
        cli_options.key_env(self.name, options)
        cli_options.base_url(self.name, options)
        cli_options.model(self.name, None, options)
        if "api_key_env" in options and "base_url" not in options:
            raise UsageError("codex option api_key_env needs base_url (the provider it keys)")

    def new_parser(self) -> OutputParser:
        return CodexParser()

    def version(self) -> str | None:
        return program_version(self.program, "@openai/codex")

    def credentials(self) -> str | None:
        """Where codex's credentials come from (never their value)."""
        for name in ("CODEX_API_KEY", "OPENAI_API_KEY"):
            if os.environ.get(name):
                return name
        home = os.environ.get("CODEX_HOME") or str(Path.home() / ".codex")
        auth = Path(home) / "auth.json"
        if auth.is_file():
            return "$CODEX_HOME/auth.json" if os.environ.get("CODEX_HOME") else "~/.codex/auth.json"
        return None

"""The claude-code provider: Anthropic's `claude` CLI, through Logist's bridge.

By default claude runs with the user's own installation, login (a subscription or an API
key) and configuration. Options: `model` (or the job's `--model`), `base_url`
(ANTHROPIC_BASE_URL), `api_key_env` (the NAME of a variable holding the key, handed to
claude as ANTHROPIC_API_KEY by the bridge: its value is never on a command line) and
`args` (extra arguments). The job's limits become `--max-budget-usd` and `--max-turns`; a
retry, a rework round or an answer continues claude's session with `--resume ID`. Never
`--dangerously-skip-permissions`: every tool use claude would ask about reaches the bridge
(`claude_bridge`), which answers it from the job's permissions or asks the user, and claude
goes on in the same process (`answer_via = "file"`). claude reads the user's settings only
(`--setting-sources user`): a repository's `.claude/settings.json` is the repository's, and
its hooks would run commands on the user's machine before any question is asked.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import msgspec

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.domain.process import ProcessSpec
from logist_server.domain.questions import AnswerVia
from logist_server.providers.agents import cli_options
from logist_server.providers.agents.base import AgentContext, OutputParser
from logist_server.providers.agents.claude_parser import ClaudeStreamParser
from logist_server.providers.agents.options import PathSyntax
from logist_server.providers.agents.program import installed_program, program_version

OPTIONS = ("model", "base_url", "api_key_env", "args")
#: Flags Logist sets itself, or that would take the user's approvals away.
RESERVED_ARGS = (
    "--dangerously-skip-permissions", "--allow-dangerously-skip-permissions",
    "--permission-prompt-tool", "--input-format", "--output-format", "-p", "--print",
    "--resume", "-r", "--continue", "-c", "--permission-mode",
    # what tools may run without asking, and which settings and servers claude loads
    "--settings", "--setting-sources", "--allowedTools", "--allowed-tools", "--mcp-config",
    "--add-dir", "--plugin-dir",
)  # fmt: skip
SECRETS = (
    "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN",
    "ANTHROPIC_CUSTOM_HEADERS", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
)  # fmt: skip
ENV_VARS = (
    *SECRETS,
    "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_BETAS",
    "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX",
    "CLAUDE_CODE_SKIP_BEDROCK_AUTH", "CLAUDE_CODE_SKIP_VERTEX_AUTH", "CLAUDE_CODE_MAX_RETRIES",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
    "CLAUDE_CODE_API_KEY_HELPER_TTL_MS", "CLAUDE_CODE_USE_FOUNDRY", "API_TIMEOUT_MS",
    "AWS_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "ANTHROPIC_VERTEX_PROJECT_ID",
    "CLOUD_ML_REGION", "GOOGLE_APPLICATION_CREDENTIALS", "NODE_EXTRA_CA_CERTS",
    "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING", "DISABLE_AUTOUPDATER",
)  # fmt: skip


class ClaudeCodeAgent:
    """claude-code in its bidirectional stream-json mode, behind Logist's bridge."""

    name = "claude-code"
    description = "Anthropic's Claude Code CLI (claude), with permission questions answered live"
    program = "claude"
    path_options: Mapping[str, PathSyntax] = {}
    env_vars: tuple[str, ...] = ENV_VARS
    secret_env: tuple[str, ...] = SECRETS
    supports_resume = True
    answer_via: AnswerVia = "file"
    install_hint = "npm install -g @anthropic-ai/claude-code"
    login_hint = "run `claude` once and /login (subscription or Console), or set ANTHROPIC_API_KEY"

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        options = job.agent.options
        self.validate_options(dict(options))
        exe = installed_program(self.program)
        if exe is None:
            raise UsageError(f"claude-code is not installed: {self.install_hint}")
        argv = [sys.executable, "-I", "-m", "logist_server.providers.agents.claude_bridge"]
        argv += ["--workspace", ctx.workspace, "--prompt-file", ctx.prompt_file]
        permissions = msgspec.to_builtins(job.permissions)
        argv += ["--permissions", json.dumps(permissions, sort_keys=True, separators=(",", ":"))]
        key = cli_options.key_env(self.name, options)
        if key is not None:
            argv += ["--api-key-env", key]
        argv += ["--", exe, "--input-format", "stream-json", "--output-format", "stream-json"]
        argv += ["--verbose", "--permission-prompt-tool", "stdio"]
        # The user's settings only: the repository's `.claude/settings*.json` would run its
        # hooks (commands) and set claude's permissions and environment in every job.
        argv += ["--setting-sources", "user"]
        model = cli_options.model(self.name, job.agent.model, options)
        if model is not None:
            argv += ["--model", model]
        limits = job.limits
        if limits.max_cost_usd is not None:
            argv += ["--max-budget-usd", f"{limits.max_cost_usd:g}"]
        if limits.max_turns is not None:
            argv += ["--max-turns", str(limits.max_turns)]
        if ctx.resume_session is not None:
            argv += ["--resume", ctx.resume_session]
        argv += cli_options.split_args(self.name, options)
        env = {"LOGIST_ANSWER_FILE": ctx.answer_file, "DISABLE_AUTOUPDATER": "1"}
        url = cli_options.base_url(self.name, options)
        if url is not None:
            env["ANTHROPIC_BASE_URL"] = url
        return ProcessSpec(argv=argv, env=env, cwd=ctx.workspace, inherit=(key,) if key else ())

    def validate_options(self, options: dict[str, str]) -> None:
        cli_options.check_known(self.name, options, OPTIONS)
        for arg in cli_options.split_args(self.name, options):
            if arg.split("=", 1)[0] in RESERVED_ARGS:
                raise UsageError(f"claude-code option args: Logist sets or forbids {arg}")
        cli_options.key_env(self.name, options)
        cli_options.base_url(self.name, options)
        cli_options.model(self.name, None, options)

    def new_parser(self) -> OutputParser:
        return ClaudeStreamParser()

    def version(self) -> str | None:
        return program_version(self.program, "@anthropic-ai/claude-code")

    def credentials(self) -> str | None:
        """Where claude's credentials come from (never their value)."""
        for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN"):
            if os.environ.get(name):
                return name
        for name in ("CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"):
            if os.environ.get(name):
                return name
        config = os.environ.get("CLAUDE_CONFIG_DIR")
        where = Path(config) if config else Path.home() / ".claude"
        if (where / ".credentials.json").is_file():
            return (
                "$CLAUDE_CONFIG_DIR/.credentials.json" if config else "~/.claude/.credentials.json"
            )
        # A Console key claude stored itself, or a login whose token is in the system
        # keychain (macOS): `.claude.json` says so (only its keys are looked at).
        state = (Path(config) if config else Path.home()) / ".claude.json"
        shown = "$CLAUDE_CONFIG_DIR/.claude.json" if config else "~/.claude.json"
        try:
            data = json.loads(state.read_bytes()[: 16 * 1024 * 1024]) if state.is_file() else {}
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and (data.get("primaryApiKey") or data.get("oauthAccount")):
            return shown
        return None

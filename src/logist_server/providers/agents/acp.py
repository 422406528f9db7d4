"""The `acp` agent provider: any agent that speaks the Agent Client Protocol.

The step's process is Logist's ACP bridge (`acp_bridge`), which starts the agent, is its
ACP client and prints Logist's typed events. A preset names a known agent (its program,
arguments, the variables it reads); `command=` runs any other (shell-split, the program
found among the installed ones, never in the workspace).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.domain.permissions import Permissions
from logist_server.domain.process import ProcessSpec
from logist_server.domain.questions import AnswerVia
from logist_server.providers.agents import cline, opencode, repo_configs
from logist_server.providers.agents.acp_config import INIT_TIMEOUT_S, Config
from logist_server.providers.agents.base import AgentContext, OutputParser
from logist_server.providers.agents.codex import provider_settings
from logist_server.providers.agents.jsonl import JsonLinesParser
from logist_server.providers.agents.options import PathSyntax
from logist_server.providers.agents.program import installed_program, program_version
from logist_server.support import redaction


class Preset(msgspec.Struct, frozen=True):
    program: str
    args: tuple[str, ...] = ()
    env_vars: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    base_url: str | None = None  # the variable a `base_url` option sets
    api_key: str | None = None  # the variable the key named by `api_key_env` fills
    env: Mapping[str, str] = msgspec.field(default_factory=dict)
    install: str = ""
    login: str = ""
    credentials: tuple[str, ...] = ()  # files under HOME that hold a login
    model_flag: str | None = None  # the agent's own flag for the model (else: ACP config)
    #: `base_url` becomes a provider in the agent's own configuration, written by Logist
    #: for the job (opencode, cline): it needs a model
    endpoint_config: bool = False
    package: str | None = None  # its npm package (the version read from its package.json)
    #: The agent names a session's file by the minute it began, and a `session/load` in that
    #: same minute opens a new chat in the same file, which empties it (gemini 0.61): the
    #: bridge waits for the next minute before loading a session.
    minute_session_files: bool = False


_TELEMETRY = ("DISABLE_TELEMETRY", "DISABLE_AUTOUPDATER", "DISABLE_ERROR_REPORTING")
PRESETS: dict[str, Preset] = {
    "claude-agent-acp": Preset(
        program="claude-agent-acp",
        package="@zed-industries/claude-agent-acp",
        env_vars=(
            "ANTHROPIC_API_KEY",
            "ANTHROPIC_AUTH_TOKEN",
            "ANTHROPIC_BASE_URL",
            "ANTHROPIC_MODEL",
            "CLAUDE_CONFIG_DIR",
            "CLAUDE_CODE_EXECUTABLE",
            "CLAUDE_CODE_USE_BEDROCK",
            "CLAUDE_CODE_USE_VERTEX",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
            "CLAUDE_CODE_MAX_RETRIES",
            "API_TIMEOUT_MS",
            "ANTHROPIC_SMALL_FAST_MODEL",
            "ANTHROPIC_DEFAULT_HAIKU_MODEL",
            "ANTHROPIC_DEFAULT_SONNET_MODEL",
            "ANTHROPIC_DEFAULT_OPUS_MODEL",
            "IS_SANDBOX",
            *_TELEMETRY,
        ),
        secrets=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
        base_url="ANTHROPIC_BASE_URL",
        api_key="ANTHROPIC_API_KEY",
        install="npm install -g @zed-industries/claude-agent-acp @anthropic-ai/claude-code",
        login="run `claude` once and log in, or set ANTHROPIC_API_KEY",
        credentials=(".claude/.credentials.json", ".claude.json"),
    ),
    "codex-acp": Preset(
        program="codex-acp",
        package="@zed-industries/codex-acp",
        env_vars=("OPENAI_API_KEY", "CODEX_API_KEY", "OPENAI_BASE_URL", "CODEX_HOME"),
        secrets=("OPENAI_API_KEY", "CODEX_API_KEY"),
        base_url="OPENAI_BASE_URL",
        api_key="OPENAI_API_KEY",
        install="npm install -g @zed-industries/codex-acp (needs bwrap: apt install bubblewrap)",
        login="run `codex login`, or set OPENAI_API_KEY",
        credentials=(".codex/auth.json",),
    ),
    "gemini": Preset(
        program="gemini",
        package="@google/gemini-cli",
        args=("--acp", "--skip-trust"),
        model_flag="--model",
        env_vars=(
            "GEMINI_API_KEY",
            "GOOGLE_API_KEY",
            "GOOGLE_GEMINI_BASE_URL",
            "GEMINI_MODEL",
            "GOOGLE_CLOUD_PROJECT",
            "GOOGLE_CLOUD_LOCATION",
            "GOOGLE_GENAI_USE_VERTEXAI",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "GEMINI_CLI_TRUST_WORKSPACE",
        ),
        secrets=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        base_url="GOOGLE_GEMINI_BASE_URL",
        api_key="GEMINI_API_KEY",
        install="npm install -g @google/gemini-cli",
        login="run `gemini` once and log in, or set GEMINI_API_KEY",
        credentials=(".gemini/oauth_creds.json",),
        minute_session_files=True,
    ),
    "opencode": Preset(
        program="opencode",
        package="opencode-ai",
        args=("acp",),
        env_vars=(
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "OPENCODE_CONFIG",
            "npm_config_registry",
        ),
        secrets=("OPENAI_API_KEY", "ANTHROPIC_API_KEY"),
        # quiet and offline-friendly; the repository's opencode.json is not read (also
        # refused: `repo_configs`)
        env=opencode.QUIET_ENV,
        api_key="OPENAI_API_KEY",
        install="npm install -g opencode-ai",
        login="run `opencode auth login`, or configure a provider in opencode.json",
        credentials=(".local/share/opencode/auth.json",),
        endpoint_config=True,
    ),
    "cline": Preset(
        program="cline",
        package="cline",
        args=("--acp",),
        # cline --acp takes its provider from CLINE_PROVIDER (else its login's, else
        # "cline") and the key of ANY provider from CLINE_API_KEY
        env_vars=("CLINE_API_KEY", "CLINE_DIR", "CLINE_PROVIDER", "CLINE_MODEL"),
        secrets=("CLINE_API_KEY",),
        # without local mode a daemon outlives it
        env={"CLINE_SESSION_BACKEND_MODE": "local"},
        api_key="CLINE_API_KEY",
        install="npm install -g cline",
        login="run `cline auth` (an openai-compatible provider also needs CLINE_PROVIDER and "
        "CLINE_API_KEY set)",
        credentials=(".cline/data/settings/providers.json",),
        endpoint_config=True,
    ),
}
OPTIONS = ("preset", "command", "args", "model", "base_url", "api_key_env", "init_timeout")
DEFAULT_PRESET = "claude-agent-acp"


def _split(key: str, text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as err:
        raise UsageError(f"acp option {key} cannot be split into words: {err}") from None


class AcpAgent:
    """Any ACP agent: `--agent-opt preset=codex-acp` (claude-agent-acp, codex-acp, gemini,
    opencode, cline) or `--agent-opt command='my-agent --acp'`."""

    name = "acp"
    description = "any Agent Client Protocol agent (presets: " + ", ".join(PRESETS) + ")"
    program = "claude-agent-acp"
    path_options: Mapping[str, PathSyntax] = {}
    env_vars: tuple[str, ...] = ()  # per preset: added to each step's `inherit`
    secret_env: tuple[str, ...] = tuple(
        dict.fromkeys(name for preset in PRESETS.values() for name in preset.secrets)
    )
    # Every preset's keys are masked, but a step's agent gets only its own preset's (its
    # spec's `inherit`) and what `api_key_env` names: never another agent's key.
    secrets_inherited = False
    supports_resume = True
    answer_via: AnswerVia = "file"
    install_hint = "; ".join(f"{name}: {p.install}" for name, p in PRESETS.items())
    login_hint = "; ".join(f"{name}: {p.login}" for name, p in PRESETS.items())

    def validate_options(self, options: dict[str, str]) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise UsageError(f"unknown acp option {unknown[0]} (known: {', '.join(OPTIONS)})")
        if "preset" in options and "command" in options:
            raise UsageError("acp options preset and command exclude each other: give one")
        preset = options.get("preset")
        if preset is not None and preset not in PRESETS:
            raise UsageError(f"unknown acp preset '{preset}' (known: {', '.join(PRESETS)})")
        if "command" in options:
            words = _split("command", options["command"])
            if not words:
                raise UsageError("acp option command is empty")
            _installed(words[0])
        if "args" in options:
            _split("args", options["args"])
        chosen = PRESETS.get(preset or "") if "command" not in options else None
        if chosen is None and "command" not in options:
            chosen = PRESETS[DEFAULT_PRESET]
        if "base_url" in options and (
            chosen is None or (chosen.base_url is None and not chosen.endpoint_config)
        ):
            raise UsageError(
                "acp option base_url is not supported for this agent: set it in its own "
                "configuration"
            )
        url = options.get("base_url")
        if url is not None and (
            urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname
        ):
            raise UsageError(f"acp option base_url must be an http(s) URL, got '{url}'")
        name = options.get("api_key_env")
        if name is not None and not (name.isidentifier() and name.upper() == name):
            raise UsageError(f"acp option api_key_env must name a variable, got '{name}'")
        if "init_timeout" in options:
            try:
                seconds = float(options["init_timeout"])
            except ValueError:
                seconds = -1
            if not seconds > 0:
                raise UsageError("acp option init_timeout must be a positive number of seconds")

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        options = dict(job.agent.options)
        self.validate_options(options)
        argv, preset = self._agent_argv(options, ctx.workspace)
        preset_name = options.get("preset", DEFAULT_PRESET)
        env: dict[str, str] = dict(preset.env) if preset else {}
        env_from: dict[str, str] = {}
        inherit: list[str] = list(preset.env_vars) if preset else []
        if preset is not None:
            repo_configs.refuse(preset.program, job.permissions, ctx.workspace)
        if preset is not None and preset.program == "claude-agent-acp":
            claude = os.environ.get("CLAUDE_CODE_EXECUTABLE") or installed_program("claude")
            if claude:
                env["CLAUDE_CODE_EXECUTABLE"] = claude
        key = options.get("api_key_env")
        model = job.agent.model or options.get("model")
        url = options.get("base_url") if preset is not None and preset.endpoint_config else None
        if url is not None and model is None:
            raise UsageError(f"acp option base_url needs a model for {preset_name} (--model NAME)")
        if preset is not None and preset.program == "opencode":
            env.update(_opencode_env(url, key, model, job.permissions))
        elif preset is not None and preset.program == "cline" and url is not None:
            env.update(_cline_env(url, key, str(model), ctx.job_dir))
        if url is not None:
            model = None  # chosen in the agent's configuration
        if preset is not None and preset.program == "codex-acp":
            argv += _codex_settings(options.get("base_url"), key, model)
            model = None  # given as `-c model=...`: codex-acp has no model option per session
        elif preset is not None and preset.model_flag and model is not None:
            argv.append(f"{preset.model_flag}={model}")  # one word: a model is never an option
            model = None
        if preset and preset.base_url and preset.program != "codex-acp" and "base_url" in options:
            env[preset.base_url] = options["base_url"]
        if key is not None:
            redaction.declare((key,))  # its value is a secret wherever Logist writes text
            inherit.append(key)
            if preset is None or preset.program != "codex-acp":  # codex reads `env_key`
                env_from[preset.api_key if preset and preset.api_key else key] = key
        config = Config(
            agent=argv,
            workspace=ctx.workspace,
            prompt_file=ctx.prompt_file,
            permissions=job.permissions,
            env=env,
            env_from=env_from,
            resume=ctx.resume_session,
            load_not_before=_load_not_before(preset, ctx),
            model=model,
            init_timeout=float(options.get("init_timeout", INIT_TIMEOUT_S)),
        )
        bridge = [sys.executable, "-I", "-m", "logist_server.providers.agents.acp_bridge"]
        bridge.append("--config=" + msgspec.json.encode(config).decode())
        return ProcessSpec(
            argv=bridge,
            env={"LOGIST_ANSWER_FILE": ctx.answer_file},
            cwd=ctx.workspace,
            inherit=tuple(dict.fromkeys(inherit)),
        )

    def _agent_argv(
        self, options: dict[str, str], workspace: str
    ) -> tuple[list[str], Preset | None]:
        extra = _split("args", options.get("args", ""))
        if "command" in options:
            words = _split("command", options["command"])
            program = _installed_outside(words[0], workspace)
            return [program, *words[1:], *extra], None
        preset = PRESETS[options.get("preset", DEFAULT_PRESET)]
        program = _installed_outside(preset.program, workspace)
        return [program, *preset.args, *extra], preset

    def new_parser(self) -> OutputParser:
        return JsonLinesParser()

    def version(self) -> str | None:
        """The version of the default preset's program (claude-agent-acp), when installed."""
        return program_version(self.program, PRESETS[DEFAULT_PRESET].package)

    def presets(self) -> list[dict[str, object]]:
        """Each preset's program: installed or not, its version (`agent list`)."""
        rows: list[dict[str, object]] = []
        for name, preset in PRESETS.items():
            version = program_version(preset.program, preset.package)
            rows.append({"name": name, "program": preset.program,
                         "installed": version is not None, "version": version})  # fmt: skip
        return rows

    def credentials(self) -> str | None:
        """The first preset whose key variable or login file is present (never a value)."""
        home = Path.home()
        for name, preset in PRESETS.items():
            for variable in preset.secrets:
                if os.environ.get(variable):
                    return f"{variable} ({name})"
            for relative in preset.credentials:
                if (home / relative).exists():
                    return f"~/{relative} ({name})"
        return None


def _cline_env(url: str, key: str | None, model: str, job_dir: str) -> dict[str, str]:
    """cline --acp at `url` for this job only: its configuration directory in the job's
    directory (an `openai-compatible` provider, without the key; `~/.cline` untouched),
    that provider and model chosen by variable; the key is CLINE_API_KEY, which `env_from`
    fills from `key` (cline --acp sends it as any provider's key)."""
    root = Path(job_dir) / "cline-acp"
    cline.write_config(root, url, model)
    env = {"CLINE_DIR": str(root), "CLINE_PROVIDER": "openai-compatible", "CLINE_MODEL": model}
    if key is None:
        env["CLINE_API_KEY"] = "logist"  # never the user's cline key to another endpoint
    return env


def _opencode_env(
    url: str | None, key: str | None, model: str | None, policy: Permissions
) -> dict[str, str]:
    """opencode's configuration for the job, `OPENCODE_CONFIG_CONTENT` (merged over the
    user's files): no snapshots (Logist checkpoints the workspace), no title agent (it
    spends a model call naming the session), with `url` a provider there (the key read from
    the variable `key` names) whose model is the session's; and the job's permissions as
    its rules (`OPENCODE_PERMISSION`: an `ask` reaches Logist as a
    `session/request_permission`; opencode's default allows everything without asking)."""
    config: dict[str, object] = {"snapshot": False, "agent": {"title": {"disable": True}}}
    if url is not None and model is not None:
        name = model.split("/", 1)[1] if model.startswith(f"{opencode.PROVIDER_ID}/") else model
        settings: dict[str, object] = {"baseURL": url}
        if key is not None:
            settings["apiKey"] = "{env:" + key + "}"
        config["model"] = f"{opencode.PROVIDER_ID}/{name}"
        config["provider"] = {opencode.PROVIDER_ID: {
            "npm": "@ai-sdk/openai-compatible", "name": "Logist job endpoint",
            "options": settings, "models": {name: {"name": name}},
        }}  # fmt: skip
    return {
        "OPENCODE_CONFIG_CONTENT": json.dumps(config),
        "OPENCODE_PERMISSION": json.dumps(opencode.permission_rules(policy)),
    }


def _codex_settings(url: str | None, key: str | None, model: str | None) -> list[str]:
    """codex-acp's `-c` overrides: no calls home, the model, a model provider at `url`."""
    settings = ["features.plugins=false", "check_for_update_on_startup=false"]
    if model is not None:
        settings.append(f"model={json.dumps(model)}")
    if url is not None:
        settings += provider_settings(url, key)
    return [word for setting in settings for word in ("-c", setting)]


def _installed(name: str) -> str:
    """The absolute path of the installed program `name` (PATH's absolute entries only)."""
    program = installed_program(name)
    if program is None:
        raise UsageError(
            f"acp: the agent program '{name}' is not installed (not an executable in PATH's "
            "absolute entries, nor an absolute path to one)"
        )
    return program


def _installed_outside(name: str, workspace: str) -> str:
    """The absolute path of the installed program `name`, never one inside the workspace."""
    program = _installed(name)
    real = Path(os.path.realpath(program))
    root = Path(os.path.realpath(workspace))
    if real == root or root in real.parents:
        raise UsageError(f"acp: the agent program '{name}' lies inside the job's workspace")
    return program


def _load_not_before(preset: Preset | None, ctx: AgentContext) -> float | None:
    """For an agent with `minute_session_files`: the start of the minute after the one in
    which the resumed session's first step ended (its session began in that minute or
    before); None for other agents and new sessions."""
    if preset is None or not preset.minute_session_files or ctx.resume_session is None:
        return None
    ended = next((s.finished_at for s in ctx.history if s.session_id == ctx.resume_session), None)
    began = time.time() if ended is None else ended  # unknown: assume it began just now
    return (began // 60 + 1) * 60

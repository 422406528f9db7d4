"""The cline provider: `cline --json --auto-approve BOOL PROMPT` (cline 3.0).

By default cline runs with the user's own configuration (`~/.cline`). The options
`base_url`, `model` and `api_key_env` give the job its own configuration directory
(`--config JOB_DIR/cline`, an `openai-compatible` provider; the user's files are never
touched); the key is not written there: cline reads `OPENAI_API_KEY`, which a launcher sets
from the variable `api_key_env` names (`env_alias`).

`CLINE_SESSION_BACKEND_MODE=local` always: otherwise cline starts a detached hub daemon that
outlives the run. Headless cline cannot ask: without `--auto-approve true` every tool call
(edits too) is refused. So tools are approved only when the job's permissions allow
executing commands (`permissions.execute: allow`); otherwise the first refusal becomes a
permission question, and answering `allow` reruns the task with tools approved.
cline 3.0.65 cannot resume a session in JSON mode (`--id` with a prompt is refused), so
`supports_resume` is False: a later step starts a new task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.domain.process import ProcessSpec
from logist_server.domain.questions import AnswerVia
from logist_server.providers.agents import chat_agent_options as opts
from logist_server.providers.agents import env_alias
from logist_server.providers.agents.base import AgentContext, OutputParser
from logist_server.providers.agents.cline_parser import ALLOW, ClineParser
from logist_server.providers.agents.options import PathSyntax
from logist_server.providers.agents.program import installed_program, program_version
from logist_server.support.fsutil import atomic_write

KEY_VARIABLE = "OPENAI_API_KEY"  # what cline's openai-compatible provider reads
FIXED_DATE = "2026-01-01T00:00:00.000Z"  # `updatedAt` must be present, else cline ignores it


def provider_settings(base_url: str, model: str) -> dict[str, object]:
    """`data/settings/providers.json` as `cline auth -p openai-compatible` writes it, without
    the key (read from `OPENAI_API_KEY`)."""
    settings = {"provider": "openai-compatible", "model": model, "baseUrl": base_url}
    return {
        "version": 1,
        "lastUsedProvider": "openai-compatible",
        "modes": {},
        "providers": {
            "openai-compatible": {
                "settings": settings,
                "updatedAt": FIXED_DATE,
                "tokenSource": "manual",
            }
        },
    }


def write_config(root: Path, base_url: str, model: str) -> None:
    settings = root / "data" / "settings"
    settings.mkdir(parents=True, exist_ok=True, mode=0o700)
    payload = json.dumps(provider_settings(base_url, model), indent=2).encode()
    atomic_write(settings / "providers.json", payload)
    atomic_write(settings / "global-settings.json", b'{"telemetryOptOut": true}\n')


#: The longest prompt cline is given (as an argument: Linux refuses one over 128 KiB).
MAX_ARGV_PROMPT = 100 * 1024


class ClineAgent:
    """cline, headless with JSON events."""

    name = "cline"
    description = "cline (`cline --json`), tools approved only when the job may execute"
    program = "cline"
    path_options: Mapping[str, PathSyntax] = {}
    env_vars: tuple[str, ...] = ("OPENAI_API_KEY",)
    secret_env: tuple[str, ...] = ("OPENAI_API_KEY",)
    supports_resume = False
    answer_via: AnswerVia = "resume"
    install_hint = "npm install -g cline@3.0.65"
    login_hint = "cline auth (or --agent-opt base_url=... api_key_env=... model=...)"

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        exe = installed_program(self.program)
        if exe is None:
            raise UsageError(f"cline is not installed: {self.install_hint}")
        options = job.agent.options
        model = opts.model_of(job)
        key = opts.key_variable(job)
        answered = ctx.why == "answer" and (ctx.answer or "").strip().lower() == ALLOW
        approve = job.permissions.execute == "allow" or answered
        argv = [exe, "--json", "--auto-approve", "true" if approve else "false"]
        base_url = options.get("base_url")
        if base_url:
            if not model:
                raise UsageError("cline option base_url needs a model (--agent-opt model=NAME)")
            config = Path(ctx.job_dir) / "cline"
            write_config(config, base_url, model)
            argv += ["--config", str(config)]
        elif model:
            argv += ["-m", model]
        argv += opts.extra_args(job)
        # The prompt is an argument: cline 3.0.65 in JSON mode refuses a prompt on stdin
        # (file or pipe: "requires a prompt argument or piped stdin"). So it is bounded by
        # the 128 KiB argument cap and visible in `ps` (a supervisor's diff can exceed it).
        if len(ctx.rendered_prompt.encode()) > MAX_ARGV_PROMPT:
            raise UsageError(
                f"the prompt is too long for cline ({len(ctx.rendered_prompt.encode())} bytes; "
                f"cline takes it only as an argument, at most {MAX_ARGV_PROMPT} bytes): "
                "use another agent for this step"
            )
        argv += ["--", ctx.rendered_prompt]
        inherit: tuple[str, ...] = ()
        if key and key != KEY_VARIABLE:
            argv = env_alias.command({KEY_VARIABLE: key}, argv)
            inherit = (key,)
        env = {"CLINE_SESSION_BACKEND_MODE": "local"}
        return ProcessSpec(argv=argv, env=env, cwd=ctx.workspace, inherit=inherit)

    def validate_options(self, options: dict[str, str]) -> None:
        opts.check_options(self.name, options)

    def new_parser(self) -> OutputParser:
        return ClineParser()

    def version(self) -> str | None:
        return program_version(self.program, "cline")

    def credentials(self) -> str | None:
        providers = Path.home() / ".cline/data/settings/providers.json"
        if providers.is_file():
            return "~/.cline/data/settings/providers.json"
        return KEY_VARIABLE if _set(KEY_VARIABLE) else None


def _set(name: str) -> bool:
    import os

    return bool(os.environ.get(name))

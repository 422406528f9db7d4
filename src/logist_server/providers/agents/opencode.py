"""The opencode provider: `opencode run --format json PROMPT` (opencode 1.18).

By default opencode runs with the user's own configuration and login (`~/.config/opencode`,
`~/.local/share/opencode/auth.json`). The options `base_url`, `api_key_env` and `model` add a
provider for this job through `OPENCODE_CONFIG_CONTENT` (merged over the user's files, which
are never rewritten): `@ai-sdk/openai-compatible` at `base_url`, the key read by opencode
from the named variable (`{env:NAME}`: the value is never on a command line or in a file).
The repository's own `opencode.json` is not read (`OPENCODE_DISABLE_PROJECT_CONFIG`): a
repository must not choose the agent's provider, plugins or permissions.

The job's permission policy becomes opencode's `permission` rules (`OPENCODE_PERMISSION`).
A rule `ask` makes headless opencode reject the call and stop: the parser turns that into a
permission question, and the answer resumes the session (`-s ID`) with the tool allowed
or denied for that run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.domain.permissions import Decision, Permissions
from logist_server.domain.process import ProcessSpec
from logist_server.domain.questions import AnswerVia
from logist_server.providers.agents import chat_agent_options as opts
from logist_server.providers.agents import stdin_feed
from logist_server.providers.agents.base import AgentContext, OutputParser
from logist_server.providers.agents.opencode_parser import ALLOW, OpencodeParser
from logist_server.providers.agents.options import PathSyntax
from logist_server.providers.agents.program import installed_program, program_version

PROVIDER_ID = "logist"  # the provider a job's `base_url` adds
#: Quiet, offline-friendly runs: no auto-update, no models.dev fetch, no sharing.
QUIET_ENV = {
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
    "OPENCODE_DISABLE_PROJECT_CONFIG": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    "OPENCODE_EXPERIMENTAL_DISABLE_FILEWATCHER": "1",
}


def permission_rules(policy: Permissions, allow_all: bool = False) -> dict[str, str]:
    """opencode's `permission` rules for the job's policy (ACP tool kinds -> its tools)."""

    def rule(decision: Decision) -> str:
        return "allow" if allow_all and decision == "ask" else decision

    fetch = rule(policy.fetch)
    return {
        "read": rule(policy.read),
        "list": rule(policy.read),
        "glob": rule(policy.search),
        "grep": rule(policy.search),
        "edit": rule(policy.edit),
        "bash": rule(policy.execute),
        "webfetch": fetch,
        "websearch": fetch,
        "codesearch": fetch,
        "task": rule(policy.other),
        "external_directory": "deny",  # nothing outside the job's workspace
    }


class OpencodeAgent:
    """opencode (sst/opencode), headless with JSON events; sessions resumed with `-s`."""

    name = "opencode"
    description = "opencode (`opencode run --format json`), sessions resumed with -s"
    program = "opencode"
    path_options: Mapping[str, PathSyntax] = {}
    #: opencode installs its plugin package with npm on a first start: the user's registry.
    env_vars: tuple[str, ...] = ("npm_config_registry",)
    secret_env: tuple[str, ...] = ()
    supports_resume = True
    #: headless opencode rejects a tool its rules `ask` for and stops: the answer resumes it.
    answer_via: AnswerVia = "resume"
    install_hint = "npm install -g opencode-ai@1.18.33"
    login_hint = "opencode auth login (or --agent-opt base_url=... api_key_env=... model=...)"

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        exe = installed_program(self.program)
        if exe is None:
            raise UsageError(f"opencode is not installed: {self.install_hint}")
        options = job.agent.options
        model = opts.model_of(job)
        key = opts.key_variable(job)
        env = dict(QUIET_ENV)
        # No snapshots of its own (Logist checkpoints the workspace): a git copy per step.
        config: dict[str, object] = {"snapshot": False}
        if options.get("base_url"):
            if not model:
                raise UsageError("opencode option base_url needs a model (--agent-opt model=NAME)")
            name = model.split("/", 1)[1] if model.startswith(f"{PROVIDER_ID}/") else model
            settings: dict[str, object] = {"baseURL": options["base_url"]}
            if key:
                settings["apiKey"] = "{env:" + key + "}"
            config["provider"] = {PROVIDER_ID: {
                "npm": "@ai-sdk/openai-compatible", "name": "Logist job endpoint",
                "options": settings, "models": {name: {"name": name}},
            }}  # fmt: skip
            model = f"{PROVIDER_ID}/{name}"
        env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config)
        allowed = ctx.why == "answer" and (ctx.answer or "").strip().lower() == ALLOW
        env["OPENCODE_PERMISSION"] = json.dumps(permission_rules(job.permissions, allowed))
        # A title of its own: otherwise opencode spends a model call on making one up.
        argv = [exe, "run", "--format", "json", "--title", f"logist job {job.id}"]
        if model:
            argv += ["-m", model]
        if ctx.resume_session is not None:
            argv += ["-s", ctx.resume_session]
        argv += opts.extra_args(job)
        # The prompt on stdin, never an argument (128 KiB cap, `ps`): `opencode run` with
        # no message reads a piped stdin as its message.
        prompt = prompt_for(ctx)
        if prompt == ctx.rendered_prompt:
            argv = stdin_feed.command(argv, ctx.prompt_file)
        else:  # the short note of an answer step
            argv = stdin_feed.command(argv, None, prompt)
        inherit = (key,) if key else ()
        return ProcessSpec(argv=argv, env=env, cwd=ctx.workspace, inherit=inherit)

    def validate_options(self, options: dict[str, str]) -> None:
        opts.check_options(self.name, options)
        model = options.get("model")
        if model is not None and "/" not in model and not options.get("base_url"):
            raise UsageError(f"opencode option model must be provider/model, got '{model}'")

    def new_parser(self) -> OutputParser:
        return OpencodeParser()

    def version(self) -> str | None:
        return program_version(self.program, "opencode-ai")

    def credentials(self) -> str | None:
        from pathlib import Path

        auth = Path.home() / ".local/share/opencode/auth.json"
        return "~/.local/share/opencode/auth.json" if auth.is_file() else None


def prompt_for(ctx: AgentContext) -> str:
    """The step's prompt; an answer step resuming the session says what the user chose."""
    if ctx.why == "answer" and ctx.resume_session is not None and ctx.answer is not None:
        choice = ctx.answer.strip()
        if choice.lower() == ALLOW:
            return "The user allowed the tool call you asked for. Go on with the task."
        if choice.lower() == "deny":
            return "The user denied the tool call you asked for. Go on without it."
        return f"The user answered: {choice}"
    return ctx.rendered_prompt

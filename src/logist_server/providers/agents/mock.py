"""The mock agent provider: runs `logist-mock-agent` with a scenario from `--agent-opt`."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.domain.process import ProcessSpec
from logist_server.domain.questions import AnswerVia
from logist_server.providers.agents.base import AgentContext, OutputParser
from logist_server.providers.agents.jsonl import JsonLinesParser
from logist_server.providers.agents.mock_program import (
    FAILURES,
    SCENARIOS,
    VERDICTS,
    default_scenario,
)
from logist_server.providers.agents.options import PathSyntax


def _number(key: str, text: str, kind: type[int] | type[float]) -> None:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise UsageError(f"mock option {key} must be {what}, got '{text}'") from None
    if value < 0:
        raise UsageError(f"mock option {key} must not be negative, got '{text}'")


def _choice(key: str, text: str, known: Iterable[str]) -> None:
    choices = sorted(known)
    if text not in choices:
        raise UsageError(f"mock option {key} must be one of {', '.join(choices)}, got '{text}'")


def _check_scenario(scenario: str) -> None:
    if scenario not in SCENARIOS:
        raise UsageError(
            f"unknown mock scenario '{scenario}' (known: {', '.join(sorted(SCENARIOS))})"
        )


class MockAgent:
    """Scripted behaviours: edit, slow, hang, crash, cost, question, noop, flood, fail, review.

    Without a `scenario` option a supervisor step runs `review` and any other step `edit`.
    """

    name = "mock"
    description = "scripted test agent: " + ", ".join(sorted(SCENARIOS))
    program = "logist-mock-agent"
    path_options: Mapping[str, PathSyntax] = {
        "delete": "paths",
        "rename": "path-pairs",
        "binary": "paths",
        "chmod": "paths",
    }
    #: A stand-in for a real agent's API key: passed on from the user's environment.
    env_vars: tuple[str, ...] = ("LOGIST_MOCK_API_KEY",)
    #: ... and a secret: its value is masked wherever Logist writes text.
    secret_env: tuple[str, ...] = ("LOGIST_MOCK_API_KEY",)
    #: `--resume=SESSION` continues a session the mock kept in the job's directory.
    supports_resume = True
    #: Its `question` scenario exits after asking: the answer resumes its session.
    answer_via: AnswerVia = "resume"

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        options = dict(job.agent.options)
        scenario = options.pop("scenario", default_scenario(ctx.role_kind))
        _check_scenario(scenario)
        # The installed interpreter, isolated: neither the workspace (the working directory)
        # nor PYTHONPATH, PYTHONSTARTUP or user site-packages can put code in its way.
        argv = [sys.executable, "-I", "-m", "logist_server.providers.agents.mock_program"]
        argv += ["--prompt-file", f"{ctx.job_dir}/user-prompt.txt", "--scenario", scenario]
        argv += ["--rendered-prompt-file", ctx.prompt_file, "--role", ctx.role_kind]
        if job.target is not None:  # `--flag=value`: a name such as `-rf` is never an option
            argv.append(f"--target={job.target.file}")
        for key, value in sorted(options.items()):
            argv.append(f"--opt={key}={value}")
        if job.agent.model is not None:
            argv.append(f"--model={job.agent.model}")
        if ctx.resume_session is not None:
            argv.append(f"--resume={ctx.resume_session}")
        if ctx.answer is not None:
            argv.append(f"--answer={ctx.answer}")
        env = {"LOGIST_ANSWER_FILE": ctx.answer_file, "LOGIST_JOB_DIR": ctx.job_dir}
        return ProcessSpec(argv=argv, env=env, cwd=ctx.workspace)

    def validate_options(self, options: dict[str, str]) -> None:
        """UsageError for an unknown scenario or a malformed option, before anything runs."""
        _check_scenario(options.get("scenario", "edit"))
        for key in ("seconds", "interval"):
            if key in options:
                _number(key, options[key], float)
        for key in ("lines", "steps", "times", "code"):
            if key in options:
                _number(key, options[key], int)
        if "kind" in options:
            _choice("kind", options["kind"], FAILURES)
        if "report_cost" in options:
            _choice("report_cost", options["report_cost"], ("true", "false"))
        if "hold" in options:
            _choice("hold", options["hold"], ("true", "false"))
        if "verdict" in options:
            _choice("verdict", options["verdict"], VERDICTS)
        if "ask" in options:
            _choice("ask", options["ask"], ("question", "permission"))

    def new_parser(self) -> OutputParser:
        return JsonLinesParser()

    def version(self) -> str | None:
        from logist_server import __version__

        return __version__

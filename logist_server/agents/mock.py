"""The mock agent provider: runs `logist-mock-agent` with a scenario from `--agent-opt`."""

from __future__ import annotations

import sys

from ..errors import UsageError
from ..model import Job
from ..runtimes.base import ProcessSpec
from .base import AgentContext, OutputParser
from .jsonl import JsonLinesParser
from .mock_program import SCENARIOS


def _number(key: str, text: str, kind: type[int] | type[float]) -> None:
    try:
        value = kind(text)
    except ValueError:
        raise UsageError(f"mock option {key} must be a number, got '{text}'") from None
    if value < 0:
        raise UsageError(f"mock option {key} must not be negative, got '{text}'")


class MockAgent:
    """Scripted behaviours (edit, slow, hang, crash, cost, question, noop, flood)."""

    name = "mock"
    description = "scripted test agent: " + ", ".join(sorted(SCENARIOS))
    program = "logist-mock-agent"

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        options = dict(job.agent.options)
        scenario = options.pop("scenario", "edit")
        if scenario not in SCENARIOS:
            raise UsageError(
                f"unknown mock scenario '{scenario}' (known: {', '.join(sorted(SCENARIOS))})"
            )
        argv = [sys.executable, "-m", "logist_server.agents.mock_program"]
        argv += ["--prompt-file", f"{ctx.job_dir}/user-prompt.txt", "--scenario", scenario]
        if job.target is not None:
            argv += ["--target", job.target.file]
        for key, value in sorted(options.items()):
            argv += ["--opt", f"{key}={value}"]
        return ProcessSpec(
            argv=argv, env={"LOGIST_ANSWER_FILE": ctx.answer_file}, cwd=ctx.workspace
        )

    def validate_options(self, options: dict[str, str]) -> None:
        """UsageError for an unknown scenario or a malformed number, before anything runs."""
        scenario = options.get("scenario", "edit")
        if scenario not in SCENARIOS:
            raise UsageError(
                f"unknown mock scenario '{scenario}' (known: {', '.join(sorted(SCENARIOS))})"
            )
        for key in ("seconds", "interval"):
            if key in options:
                _number(key, options[key], float)
        for key in ("lines", "steps"):
            if key in options:
                _number(key, options[key], int)

    def new_parser(self) -> OutputParser:
        return JsonLinesParser()

    def version(self) -> str | None:
        from .. import __version__

        return __version__

"""A hostile agent for tests: a shell script run as the job's agent, in-process engine.

The script is a real process started by the real host runtime in the job's real workspace;
only the provider is declared here (an agent is a program plus an output parser). The
script gets `$USER_REPO` (the user's repository) in its environment, as an agent that looks
around would find it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from logist_server.domain.model import Job
from logist_server.domain.requests import JobRequest
from logist_server.engine.facade import Engine, default_agents
from logist_server.providers.agents.base import AgentContext, OutputParser
from logist_server.providers.agents.jsonl import JsonLinesParser
from logist_server.providers.runtimes.base import ProcessSpec
from logist_server.vcs.git import find_repo

SCRIPT_AGENT = "hostile"


class ScriptAgent:
    """Runs `/bin/sh -c SCRIPT` in the workspace; it gets the test variables it declares
    (`env_vars`) from the environment, like a real provider's API keys."""

    name = SCRIPT_AGENT
    description = "a shell script (tests)"
    program = "/bin/sh"
    path_options: Mapping[str, Any] = {}

    def __init__(self, script: str, env_vars: tuple[str, ...] = ("PROG", "MARKER", "RUNS")) -> None:
        self.script = script
        self.env_vars = env_vars

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        env = {"USER_REPO": job.repo}
        return ProcessSpec(argv=["/bin/sh", "-ec", self.script], env=env, cwd=ctx.workspace)

    def validate_options(self, options: dict[str, str]) -> None:
        return None

    def new_parser(self) -> OutputParser:
        return JsonLinesParser()

    def version(self) -> str | None:
        return "1"


def engine_with(repo: Path, script: str) -> Engine:
    """An engine for `repo` whose `hostile` agent runs `script`."""
    agents = default_agents()
    agents.register(SCRIPT_AGENT, lambda: ScriptAgent(script))
    return Engine(find_repo(repo), agents=agents)


def run_hostile(repo: Path, script: str, prompt: str = "be hostile") -> tuple[Engine, Job]:
    """Create and drive a job whose agent is `script`, to the end; (engine, settled job)."""
    engine = engine_with(repo, script)
    job = engine.create_job(JobRequest(prompt=prompt, agent=SCRIPT_AGENT))
    job = asyncio.run(engine.drive(job.id))
    return engine, job

"""The toy agent provider: runs `program.py` with the job's prompt; its output is Logist's
JSON-lines event stream, read by the stock `JsonLinesParser`.

It uses only Logist's public agent contract: the domain's job and process spec, the
provider's context (`providers.agents.base`) and parser (`providers.agents.jsonl`)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from logist_server.domain.model import Job
from logist_server.domain.process import ProcessSpec
from logist_server.providers.agents.base import AgentContext
from logist_server.providers.agents.jsonl import JsonLinesParser

PROGRAM = Path(__file__).resolve().with_name("program.py")


class ToyAgent:
    name = "toy"
    description = "a toy agent from the logist-toy-plugin package"
    program = sys.executable
    path_options: Mapping[str, str] = {}
    env_vars: tuple[str, ...] = ()
    secret_env: tuple[str, ...] = ()

    def build(self, job: Job, ctx: AgentContext) -> ProcessSpec:
        first = (job.prompt.strip().splitlines() or [""])[0]
        argv = [sys.executable, "-I", str(PROGRAM), "--prompt", first]
        return ProcessSpec(argv=argv, cwd=ctx.workspace)

    def validate_options(self, options: dict[str, str]) -> None:
        return None

    def new_parser(self) -> JsonLinesParser:
        return JsonLinesParser()

    def version(self) -> str | None:
        return "0.1.0"

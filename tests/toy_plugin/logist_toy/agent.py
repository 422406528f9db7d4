"""The toy agent provider: runs `program.py` with the job's prompt and reads its JSON lines.

It uses only Logist's public contract: `providers.agents.base` (the protocol's types) and
the domain's events and process spec."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

from logist_server.domain.events import AgentDone, AgentEvent, AgentFileChange, AgentMessage
from logist_server.domain.model import Job
from logist_server.domain.process import ProcessSpec
from logist_server.providers.agents.base import AgentContext

PROGRAM = Path(__file__).resolve().with_name("program.py")


class ToyParser:
    """One JSON object per line: message, file_change, done; anything else is a message."""

    only_events = True

    def feed(self, line: str) -> list[AgentEvent]:
        try:
            item = json.loads(line)
        except ValueError:
            self.only_events = False
            return [AgentMessage(text=line)] if line.strip() else []
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "file_change":
            return [AgentFileChange(path=str(item["path"]), action=str(item["action"]))]
        if kind == "done":
            return [AgentDone(success=bool(item["success"]), summary=item.get("summary"))]
        return [AgentMessage(text=str(item.get("text", line)))]

    def feed_lines(self, data: bytes) -> list[AgentEvent]:
        self.only_events = True
        text = data.decode("utf-8", "replace")
        return [event for line in text.splitlines() for event in self.feed(line)]

    def finish(self, exit_code: int | None) -> list[AgentEvent]:
        return []


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

    def new_parser(self) -> ToyParser:
        return ToyParser()

    def version(self) -> str | None:
        return "0.1.0"

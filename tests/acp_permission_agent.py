"""A real ACP agent (written with the `agent-client-protocol` SDK) whose tools are labelled
loosely: it asks leave for each scripted tool call and does what it asked for when allowed.

    python acp_permission_agent.py STEPS_JSON

STEPS_JSON is a file holding a list of steps, each
`{"id": ID, "call": TOOL_CALL, "update": TOOL_CALL_START?, "then": ACTION?}`:
- `update` (optional) is sent first as a `session/update` (`sessionUpdate: tool_call`),
- `call` is the `toolCall` of the `session/request_permission` (ACP's camelCase JSON),
- `then` is done only when the client chose an `allow_*` option:
  `{"write": PATH, "text": TEXT}`, `{"move": [SOURCE, DESTINATION]}` or `{"run": ARGV}`
  (relative paths from the session's cwd).
For each step the agent says `CALL ID -> OPTION_ID` (or `cancelled`).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from acp import (
    PROTOCOL_VERSION,
    Agent,
    Client,
    InitializeResponse,
    NewSessionResponse,
    PromptResponse,
    run_agent,
    update_agent_message_text,
)
from acp.schema import AgentCapabilities, PermissionOption, ToolCallStart, ToolCallUpdate

OPTIONS = [
    PermissionOption(option_id="allow", name="Allow", kind="allow_once"),
    PermissionOption(option_id="always", name="Always Allow", kind="allow_always"),
    PermissionOption(option_id="reject", name="Reject", kind="reject_once"),
]
ALLOWING = {"allow", "always"}


class Loose(Agent):
    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.steps = steps
        self.conn: Client | None = None
        self.cwd = "."

    def on_connect(self, conn: Client) -> None:
        self.conn = conn

    async def initialize(self, protocol_version: int, **kwargs: Any) -> InitializeResponse:
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION, agent_capabilities=AgentCapabilities()
        )

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        self.cwd = cwd
        return NewSessionResponse(session_id="loose-session-1")

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        assert self.conn is not None
        for step in self.steps:
            if "update" in step:
                start = ToolCallStart.model_validate(
                    {"sessionUpdate": "tool_call", **step["update"]}
                )
                await self.conn.session_update(session_id, start)
            answer = await self.conn.request_permission(
                session_id=session_id,
                tool_call=ToolCallUpdate.model_validate(step["call"]),
                options=OPTIONS,
            )
            chosen = getattr(answer.outcome, "option_id", "cancelled")
            if chosen in ALLOWING and "then" in step:
                self.act(step["then"])
            text = f"CALL {step['id']} -> {chosen}\n"
            await self.conn.session_update(session_id, update_agent_message_text(text))
        return PromptResponse(stop_reason="end_turn")

    def act(self, action: dict[str, Any]) -> None:
        """What the tool does once allowed (its harm, when the client was fooled)."""
        where = Path(self.cwd)
        if "write" in action:
            target = where / action["write"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(action["text"])
        elif "move" in action:
            source, destination = action["move"]
            os.replace(where / source, where / destination)
        elif "run" in action:
            subprocess.run(action["run"], cwd=where, check=False)


def main() -> None:
    steps = json.loads(Path(sys.argv[1]).read_text())
    asyncio.run(run_agent(Loose(steps), use_unstable_protocol=True))


if __name__ == "__main__":
    main()

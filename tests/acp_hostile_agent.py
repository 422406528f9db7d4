"""A real ACP agent (written with the `agent-client-protocol` SDK) that attacks its client.

    python acp_hostile_agent.py SCENARIO [ARG...]

Scenarios:
- `edit FILE`: a well-behaved agent: reads FILE through `fs/read_text_file`, asks leave to
  edit it (`session/request_permission`, kind edit, with a diff), writes it through
  `fs/write_text_file`, reports usage with a cost, ends the turn.
- `escape OUTSIDE_DIR`: tries to read and write outside the workspace every way it can
  (`..`, absolute paths, a symlink it plants pointing out, `.git` internals) and says in
  messages what the client answered (`READ path -> refused|content`), then writes one file
  inside legitimately.
- `terminal OUTSIDE_DIR`: runs commands through `terminal/*`: a huge output, a cwd outside
  the workspace, a background process that must die on release; says what happened.
- `resumable` / `loadable`: advertises session/resume (or only session/load) and says
  how its session began (`SESSION resume|load|new ID`); `load` replays an old message.
- `ask`: asks leave to run a command (kind execute) and writes ANSWERED.txt with the option
  the client chose.
- `huge`: sends one 40 MiB line during the prompt.
- `garbage FILE`: sends malformed JSON-RPC (bad JSON, arrays, an id that is a list, a
  response to nothing) and then behaves like `edit`.
- `hang`: never answers `initialize`.
- `die`: dies mid-prompt (`fatal: boom` on stderr, exit 3).
- `spawn PIDFILE`: starts a grandchild in its own session (pid in PIDFILE) and never ends
  the prompt: killing the client must take the grandchild down too.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
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
    RequestError,
    run_agent,
    update_agent_message_text,
)
from acp.schema import (
    AgentCapabilities,
    PermissionOption,
    ToolCallProgress,
    ToolCallStart,
    ToolCallUpdate,
    UsageUpdate,
)

SCENARIO = sys.argv[1] if len(sys.argv) > 1 else "edit"
ARGS = sys.argv[2:]


def raw(line: bytes) -> None:
    """Write bytes straight to the client (between the SDK's own whole lines; the SDK made
    stdout non-blocking, so wait whenever the pipe is full)."""
    view = memoryview(line)
    while view:
        try:
            view = view[os.write(1, view) :]
        except BlockingIOError:
            select.select([], [1], [])


class Hostile(Agent):
    def __init__(self) -> None:
        self.conn: Client | None = None
        self.cwd = "."
        self.resumed = "new"

    def on_connect(self, conn: Client) -> None:
        self.conn = conn

    async def initialize(self, protocol_version: int, **kwargs: Any) -> InitializeResponse:
        if SCENARIO == "hang":
            await asyncio.sleep(3600)
        if SCENARIO == "resumable":  # the SDK's model has no `resume` capability: raw JSON
            return {  # type: ignore[return-value]
                "protocolVersion": PROTOCOL_VERSION,
                "agentCapabilities": {"loadSession": True, "sessionCapabilities": {"resume": {}}},
            }
        capabilities = AgentCapabilities(load_session=SCENARIO == "loadable")
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION, agent_capabilities=capabilities
        )

    async def resume_session(self, cwd: str, session_id: str, **kwargs: Any) -> Any:
        self.cwd = cwd
        self.resumed = f"resume {session_id}"
        return {}

    async def load_session(self, cwd: str, session_id: str, **kwargs: Any) -> Any:
        self.cwd = cwd
        self.resumed = f"load {session_id}"
        assert self.conn is not None  # the history it replays: not news for the client
        await self.conn.session_update(session_id, update_agent_message_text("OLD HISTORY"))
        return {}

    async def new_session(self, cwd: str, **kwargs: Any) -> NewSessionResponse:
        self.cwd = cwd
        return NewSessionResponse(session_id="hostile-session-1")

    async def say(self, session_id: str, text: str) -> None:
        assert self.conn is not None
        await self.conn.session_update(session_id, update_agent_message_text(text + "\n"))

    async def prompt(self, prompt: list[Any], session_id: str, **kwargs: Any) -> PromptResponse:
        handler = getattr(self, "scenario_" + SCENARIO)
        await handler(session_id)
        return PromptResponse(stop_reason="end_turn")

    # -- scenarios -----------------------------------------------------------------------
    async def scenario_edit(self, session_id: str) -> None:
        assert self.conn is not None
        target = os.path.join(self.cwd, ARGS[0] if ARGS else "a.txt")
        try:
            before = (await self.conn.read_text_file(session_id=session_id, path=target)).content
        except RequestError:
            before = ""
        after = before + "edited by the hostile acp agent\n"
        diff = {"type": "diff", "path": target, "oldText": before, "newText": after}
        await self.conn.session_update(
            session_id,
            ToolCallStart(session_update="tool_call", tool_call_id="call-1", title="Edit",
                          kind="edit", status="pending", raw_input={"path": target},
                          content=[diff]),  # type: ignore[list-item]
        )  # fmt: skip
        answer = await self.conn.request_permission(
            session_id=session_id,
            tool_call=ToolCallUpdate(tool_call_id="call-1", kind="edit", title="Edit",
                                     content=[diff]),  # type: ignore[list-item]
            options=OPTIONS,
        )  # fmt: skip
        chosen = getattr(answer.outcome, "option_id", "cancelled")
        if chosen == "allow":
            await self.conn.write_text_file(session_id=session_id, path=target, content=after)
        await self.say(session_id, f"PERMISSION {chosen}")
        await self.conn.session_update(
            session_id,
            ToolCallProgress(session_update="tool_call_update", tool_call_id="call-1",
                             status="completed" if chosen == "allow"
                           else "failed", content=[diff]),  # type: ignore[arg-type,list-item]
        )  # fmt: skip
        for part in ("Done", ": edited ", "the file."):
            await self.conn.session_update(session_id, update_agent_message_text(part))
        await self.conn.session_update(
            session_id,
            UsageUpdate(session_update="usage_update", used=1000, size=200000,
                        cost={"amount": 0.0123, "currency": "USD"}),  # type: ignore[arg-type]
        )  # fmt: skip

    async def scenario_escape(self, session_id: str) -> None:
        assert self.conn is not None
        outside = Path(ARGS[0])
        cwd = Path(self.cwd)
        link = cwd / "link-out"
        link.symlink_to(outside)
        (cwd / "file-link").symlink_to(outside / "secret.txt")
        relative_out = os.path.relpath(outside / "secret.txt", cwd)
        reads = [
            str(outside / "secret.txt"),
            relative_out,
            str(cwd / ".." / outside.name / "secret.txt"),
            str(link / "secret.txt"),
            str(cwd / "file-link"),
            str(cwd / ".git" / "config"),
            ".git/HEAD",
            "/etc/hostname",
        ]
        for path in reads:
            try:
                got = await self.conn.read_text_file(session_id=session_id, path=path)
                await self.say(session_id, f"READ {path} -> content {got.content!r}")
            except RequestError:
                await self.say(session_id, f"READ {path} -> refused")
        writes = [
            str(outside / "pwned.txt"),
            os.path.relpath(outside / "pwned.txt", cwd),
            str(link / "pwned.txt"),
            str(cwd / "file-link"),
            str(cwd / ".git" / "hooks" / "post-checkout"),
            ".git/config",
            str(cwd / "link-out" / "sub" / "deep.txt"),
        ]
        for path in writes:
            try:
                await self.conn.write_text_file(session_id=session_id, path=path, content="pwned\n")
                await self.say(session_id, f"WRITE {path} -> written")
            except RequestError:
                await self.say(session_id, f"WRITE {path} -> refused")
        link.unlink()
        (cwd / "file-link").unlink()
        await self.conn.write_text_file(
            session_id=session_id, path=str(cwd / "inside" / "ok.txt"), content="fine\n"
        )
        await self.say(session_id, "WRITE inside/ok.txt -> written")

    async def scenario_terminal(self, session_id: str) -> None:
        assert self.conn is not None
        outside = ARGS[0]
        huge = await self.conn.create_terminal(
            session_id=session_id, command="sh", output_byte_limit=10**12,
            args=["-c", "head -c 30000000 /dev/zero | tr '\\0' x"],
        )  # fmt: skip
        await self.conn.wait_for_terminal_exit(session_id=session_id, terminal_id=huge.terminal_id)
        out = await self.conn.terminal_output(session_id=session_id, terminal_id=huge.terminal_id)
        await self.say(session_id, f"HUGE {len(out.output)} truncated={out.truncated}")
        await self.conn.release_terminal(session_id=session_id, terminal_id=huge.terminal_id)
        try:
            await self.conn.create_terminal(
                session_id=session_id, command="sh", args=["-c", "touch escaped.txt"], cwd=outside
            )
            await self.say(session_id, "CWD outside -> ran")
        except RequestError:
            await self.say(session_id, "CWD outside -> refused")
        where = await self.conn.create_terminal(session_id=session_id, command="pwd")
        await self.conn.wait_for_terminal_exit(session_id=session_id, terminal_id=where.terminal_id)
        pwd = await self.conn.terminal_output(session_id=session_id, terminal_id=where.terminal_id)
        await self.say(session_id, f"PWD {pwd.output.strip()}")
        sleeper = await self.conn.create_terminal(
            session_id=session_id, command="sh",
            args=["-c", "sleep 300 & echo $! > sleeper.pid; wait"],
        )  # fmt: skip
        pidfile = Path(self.cwd) / "sleeper.pid"
        for _ in range(200):
            if pidfile.exists() and pidfile.read_text().strip():
                break
            await asyncio.sleep(0.05)
        await self.conn.release_terminal(session_id=session_id, terminal_id=sleeper.terminal_id)
        await self.say(session_id, f"SLEEPER {pidfile.read_text().strip()}")
        pidfile.unlink()

    async def scenario_ask(self, session_id: str) -> None:
        assert self.conn is not None
        tool = ToolCallUpdate(tool_call_id="call-x", kind="execute", title="touch pwned.txt",
                              raw_input={"command": "touch pwned.txt"})  # fmt: skip
        answer = await self.conn.request_permission(
            session_id=session_id, tool_call=tool, options=OPTIONS
        )
        chosen = getattr(answer.outcome, "option_id", "cancelled")
        Path(self.cwd, "ANSWERED.txt").write_text(f"chosen: {chosen}\n")
        await self.say(session_id, f"the client chose {chosen}")

    async def scenario_resumable(self, session_id: str) -> None:
        await self.say(session_id, f"SESSION {self.resumed} {session_id}")

    scenario_loadable = scenario_resumable

    async def scenario_huge(self, session_id: str) -> None:
        await self.say(session_id, "about to flood")
        await asyncio.sleep(0.2)
        text = "x" * (40 * 1024 * 1024)
        message = {"jsonrpc": "2.0", "method": "session/update", "params": {
            "sessionId": session_id,
            "update": {"sessionUpdate": "agent_message_chunk",
                       "content": {"type": "text", "text": text}},
        }}  # fmt: skip
        raw(json.dumps(message).encode() + b"\n")
        await asyncio.sleep(3600)

    async def scenario_garbage(self, session_id: str) -> None:
        await asyncio.sleep(0.2)  # the SDK's own writes are out
        for line in (
            b"this is not json\n",
            b"[1, 2, 3]\n",
            b"42\n",
            b'{"jsonrpc": "2.0", "id": [1], "result": {}}\n',
            b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "fs/read_text_file", "params": {}}\n',
            b'{"jsonrpc": "2.0", "id": 999, "result": {"stopReason": "end_turn"}}\n',
            b'{"jsonrpc": "2.0", "method": 7}\n',
            b'{"jsonrpc": "2.0", "method": "session/update", "params": "nonsense"}\n',
            b"[" * 100000 + b"\n",
        ):
            raw(line)
        await self.scenario_edit(session_id)

    async def scenario_die(self, session_id: str) -> None:
        await self.say(session_id, "working on it")
        await asyncio.sleep(0.2)
        sys.stderr.write("fatal: boom\n")
        sys.stderr.flush()
        os._exit(3)

    async def scenario_spawn(self, session_id: str) -> None:
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        Path(ARGS[0]).write_text(f"{child.pid}\n")
        await self.say(session_id, "spawned")
        await asyncio.sleep(3600)


OPTIONS = [
    PermissionOption(option_id="allow", name="Allow", kind="allow_once"),
    PermissionOption(option_id="always", name="Always Allow", kind="allow_always"),
    PermissionOption(option_id="reject", name="Reject", kind="reject_once"),
]


def main() -> None:
    asyncio.run(run_agent(Hostile(), use_unstable_protocol=True))


if __name__ == "__main__":
    main()

"""ACP's `terminal/*`: commands the client runs for the agent, in the job's workspace.

Whether a command runs at all is the job's permission policy for `execute` (the caller
decides). A command runs in its own process group with its working directory inside the
workspace; its output is kept in a bounded buffer (the newest bytes, as ACP says: the
oldest are dropped and `truncated` is set); `kill` and `release` end its whole group, and
so does the end of the run (`close_all`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from logist_server.providers.agents.acp_fs import confine

#: The most output kept per terminal, whatever the agent asks for.
MAX_OUTPUT_BYTES = 1024 * 1024
#: How many terminals may exist at once.
MAX_TERMINALS = 16


@dataclass
class Terminal:
    process: asyncio.subprocess.Process
    limit: int
    output: bytearray = field(default_factory=bytearray)
    truncated: bool = False
    reader: asyncio.Task[None] | None = None

    def add(self, data: bytes) -> None:
        self.output += data
        excess = len(self.output) - self.limit
        if excess > 0:
            del self.output[:excess]
            # Never cut a UTF-8 character in two: drop continuation bytes at the start.
            while self.output and (self.output[0] & 0xC0) == 0x80:
                del self.output[0]
            self.truncated = True


class Terminals:
    """The terminals of one run."""

    def __init__(self, workspace: Path, env: dict[str, str]) -> None:
        self._workspace = workspace
        self._env = env
        self._terminals: dict[str, Terminal] = {}
        self._ids = itertools.count(1)

    async def create(
        self,
        command: str,
        args: list[str],
        cwd: str | None,
        env: dict[str, str],
        limit: int | None,
    ) -> str:
        if len(self._terminals) >= MAX_TERMINALS:
            raise ValueError(f"too many terminals (at most {MAX_TERMINALS})")
        directory = confine(self._workspace, cwd) if cwd else self._workspace.resolve()
        if not directory.is_dir():
            raise ValueError(f"'{cwd}' is not a directory")
        process = await asyncio.create_subprocess_exec(
            command,
            *args,
            cwd=str(directory),
            env={**self._env, **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        bound = MAX_OUTPUT_BYTES if limit is None else max(0, min(limit, MAX_OUTPUT_BYTES))
        terminal = Terminal(process=process, limit=bound)
        terminal.reader = asyncio.create_task(_pump(terminal))
        terminal_id = f"term-{next(self._ids)}"
        self._terminals[terminal_id] = terminal
        return terminal_id

    def get(self, terminal_id: str) -> Terminal:
        terminal = self._terminals.get(terminal_id)
        if terminal is None:
            raise KeyError(f"no terminal '{terminal_id}'")
        return terminal

    async def wait(self, terminal_id: str) -> int:
        terminal = self.get(terminal_id)
        code = await terminal.process.wait()
        if terminal.reader is not None:
            await terminal.reader
        return code

    def kill(self, terminal_id: str) -> None:
        _kill_group(self.get(terminal_id).process)

    async def release(self, terminal_id: str) -> None:
        terminal = self._terminals.pop(terminal_id, None)
        if terminal is not None:
            _kill_group(terminal.process)
            with contextlib.suppress(ProcessLookupError):
                await terminal.process.wait()
            if terminal.reader is not None:
                terminal.reader.cancel()

    def close_all(self) -> None:
        """Kill every terminal's process group (at the end of the run, or on a signal)."""
        for terminal in self._terminals.values():
            _kill_group(terminal.process)
        self._terminals.clear()


async def _pump(terminal: Terminal) -> None:
    stream = terminal.process.stdout
    assert stream is not None
    while chunk := await stream.read(65536):
        terminal.add(chunk)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)

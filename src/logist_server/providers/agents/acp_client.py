"""Logist as an ACP client: what it answers the agent, and the events it prints.

The security boundary of the `acp` provider. The agent asks; the client
- reads and writes files only inside the job's workspace (`acp_fs`),
- runs a terminal command only when the job's policy allows `execute` (asks the user when
  it says `ask`; refuses when it says `deny`), in the workspace (`acp_terminal`),
- answers `session/request_permission` from the job's policy by what the tool call carries
  (`acp_permission`: the declared kind is advisory), a write aimed outside the workspace
  always refused; `ask` prints a typed question and waits
  for the user's answer in `$LOGIST_ANSWER_FILE`, the same process going on afterwards.
Every `session/update` becomes typed events (`acp_events`), printed as JSON lines.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import msgspec
from acp import RequestError
from acp.schema import (
    AllowedOutcome,
    CreateTerminalResponse,
    DeniedOutcome,
    EnvVariable,
    KillTerminalResponse,
    PermissionOption,
    ReadTextFileResponse,
    ReleaseTerminalResponse,
    RequestPermissionResponse,
    TerminalExitStatus,
    TerminalOutputResponse,
    ToolCallUpdate,
    WaitForTerminalExitResponse,
    WriteTextFileResponse,
)

from logist_server.domain.events import AgentEvent, AgentMessage, AgentQuestion
from logist_server.domain.permissions import Permissions, decide
from logist_server.providers.agents import acp_fs, acp_permission
from logist_server.providers.agents.acp_events import UpdateMapper
from logist_server.providers.agents.acp_terminal import Terminals
from logist_server.providers.agents.answer_file import clear, read_answer

#: How often the client looks for the user's answer.
ANSWER_POLL_S = 0.1
_encode = msgspec.json.Encoder().encode
_YES = {"allow", "yes", "y", "ok", "approve", "approved", "accept", "once"}
_ALWAYS = {"always", "allow always", "allow_always"}
_NO = {"deny", "no", "n", "reject", "refuse", "abort", "cancel"}


def emit(events: list[AgentEvent]) -> None:
    """Print events as Logist's JSON lines (the engine's `JsonLinesParser` reads them)."""
    if events:
        sys.stdout.buffer.write(b"".join(_encode(e) + b"\n" for e in events))
        sys.stdout.buffer.flush()


def _dump(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


class LogistClient:
    """The ACP client side of one run (the SDK calls these methods)."""

    def __init__(
        self,
        workspace: Path,
        policy: Permissions,
        answer_file: Path | None,
        env: dict[str, str],
    ) -> None:
        self.workspace = workspace
        self.policy = policy
        self.answer_file = answer_file
        self.mapper = UpdateMapper(self._relative)
        self.terminals = Terminals(workspace, env)
        self.session_id: str | None = None
        self._asking = asyncio.Lock()  # one question to the user at a time

    def _relative(self, path: str) -> str | None:
        return acp_fs.workspace_relative(self.workspace, path)

    def _session(self, session_id: str) -> None:
        if self.session_id is not None and session_id != self.session_id:
            raise RequestError.invalid_params({"sessionId": "not this run's session"})

    # -- session/update ------------------------------------------------------------------
    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        """Nothing: the bridge maps each update from its raw JSON as it arrives (`RawLog`),
        which keeps the fields the SDK's models drop."""

    # -- fs/* ----------------------------------------------------------------------------
    async def read_text_file(
        self, session_id: str, path: str, line: int | None = None, limit: int | None = None,
        **kwargs: Any,
    ) -> ReadTextFileResponse:  # fmt: skip
        self._session(session_id)
        try:
            content = acp_fs.read_text(self.workspace, path, line, limit)
        except acp_fs.Refused as refused:
            raise RequestError.invalid_params({"path": str(refused)}) from None
        return ReadTextFileResponse(content=content)

    async def write_text_file(
        self, session_id: str, path: str, content: str, **kwargs: Any
    ) -> WriteTextFileResponse:
        self._session(session_id)
        decision: str = decide(
            self.policy, "edit", inside_workspace=self._relative(path) is not None
        )
        if decision == "ask":
            decision = await self._ask_yes_no(f"Allow the agent to write {path}?", None)
        if decision != "allow":
            raise RequestError.invalid_params({"path": f"writing '{path}' is not allowed"})
        try:
            relative, created = acp_fs.write_text(self.workspace, path, content)
        except acp_fs.Refused as refused:
            raise RequestError.invalid_params({"path": str(refused)}) from None
        emit(self.mapper.flush() + self.mapper.written(relative, created))
        return WriteTextFileResponse()

    # -- terminal/* ----------------------------------------------------------------------
    async def create_terminal(
        self, session_id: str, command: str, args: list[str] | None = None,
        env: list[EnvVariable] | None = None, cwd: str | None = None,
        output_byte_limit: int | None = None, **kwargs: Any,
    ) -> CreateTerminalResponse:  # fmt: skip
        self._session(session_id)
        shown = " ".join([command, *(args or [])])
        decision: str = decide(self.policy, "execute")
        if decision == "ask":
            decision = await self._ask_yes_no(f"Allow the agent to run: {shown}", None)
        if decision != "allow":
            raise RequestError.invalid_params({"command": f"running '{shown}' is not allowed"})
        variables = {v.name: v.value for v in env or []}
        try:
            terminal_id = await self.terminals.create(
                command, list(args or []), cwd, variables, output_byte_limit
            )
        except (acp_fs.Refused, ValueError, OSError) as err:
            raise RequestError.invalid_params({"command": str(err)}) from None
        return CreateTerminalResponse(terminal_id=terminal_id)

    def _terminal(self, session_id: str, terminal_id: str) -> Any:
        self._session(session_id)
        try:
            return self.terminals.get(terminal_id)
        except KeyError as err:
            raise RequestError.invalid_params({"terminalId": str(err)}) from None

    async def terminal_output(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> TerminalOutputResponse:
        terminal = self._terminal(session_id, terminal_id)
        code = terminal.process.returncode
        status = None if code is None else _exit_status(code)
        return TerminalOutputResponse(
            output=terminal.output.decode("utf-8", "replace"),
            truncated=terminal.truncated,
            exit_status=status,
        )

    async def wait_for_terminal_exit(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> WaitForTerminalExitResponse:
        self._terminal(session_id, terminal_id)
        code = await self.terminals.wait(terminal_id)
        status = _exit_status(code)
        return WaitForTerminalExitResponse(exit_code=status.exit_code, signal=status.signal)

    async def kill_terminal(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> KillTerminalResponse:
        self._terminal(session_id, terminal_id)
        self.terminals.kill(terminal_id)
        return KillTerminalResponse()

    async def release_terminal(
        self, session_id: str, terminal_id: str, **kwargs: Any
    ) -> ReleaseTerminalResponse:
        self._terminal(session_id, terminal_id)
        await self.terminals.release(terminal_id)
        return ReleaseTerminalResponse()

    # -- session/request_permission ------------------------------------------------------
    async def request_permission(
        self, session_id: str, tool_call: ToolCallUpdate, options: list[PermissionOption],
        **kwargs: Any,
    ) -> RequestPermissionResponse:  # fmt: skip
        self._session(session_id)
        call = _dump(tool_call)
        earlier = self.mapper.known_call(call.get("toolCallId"))
        emit(self.mapper.flush() + self.mapper.note_tool(call))
        judged = acp_permission.judge([call, earlier], lambda p: self._relative(p) is not None)
        decision = acp_permission.decision(self.policy, judged)
        if decision == "allow":
            chosen = _pick(options, ("allow_once", "allow_always"))
        elif decision == "deny":
            chosen = _pick(options, ("reject_once", "reject_always"))
        else:
            chosen = await self._ask_option(call, judged, options)
        if chosen is None:
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(option_id=chosen.option_id, outcome="selected")
        )

    async def _ask_option(
        self, call: dict[str, Any], judged: acp_permission.Judged, options: list[PermissionOption]
    ) -> PermissionOption | None:
        title = str(call.get("title") or judged.kind)
        text = f"The agent asks leave to {judged.kind}: {title}"
        if judged.outside:
            text += f" (outside the workspace: {', '.join(judged.outside[:3])})"
        elif judged.unplaced:
            text += f" (a path Logist cannot place: {', '.join(judged.unplaced[:3])})"
        answer = await self._ask(text, call.get("toolCallId"), [o.name for o in options])
        chosen = _match(answer, options)
        if chosen is None:
            emit([AgentMessage(text=f"the answer '{answer}' matches no option: refused")])
            chosen = _pick(options, ("reject_once", "reject_always"))
        return chosen

    async def _ask_yes_no(self, text: str, question_id: str | None) -> str:
        answer = (await self._ask(text, question_id, ["allow", "deny"])).strip().lower()
        return "allow" if answer in _YES or answer in _ALWAYS else "deny"

    async def _ask(self, text: str, question_id: Any, options: list[str]) -> str:
        """Print a permission question and wait for the user's answer (its text)."""
        async with self._asking:
            if self.answer_file is None:
                return "deny"  # nobody can answer: refused
            clear(str(self.answer_file))  # an answer to an earlier question
            qid = question_id if isinstance(question_id, str) else None
            emit(
                [
                    *self.mapper.flush(),
                    AgentQuestion(text=text, id=qid, kind="permission", options=options),
                ]
            )
            while (answer := read_answer(str(self.answer_file))) is None:
                await asyncio.sleep(ANSWER_POLL_S)  # never a blocking read (a planted FIFO)
            clear(str(self.answer_file))
            return answer


def _exit_status(code: int) -> TerminalExitStatus:
    if code < 0:
        return TerminalExitStatus(exit_code=None, signal=_signal_name(-code))
    return TerminalExitStatus(exit_code=code, signal=None)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _pick(options: list[PermissionOption], kinds: tuple[str, ...]) -> PermissionOption | None:
    for kind in kinds:
        for option in options:
            if option.kind == kind:
                return option
    return None


def _match(answer: str, options: list[PermissionOption]) -> PermissionOption | None:
    """The option the user's answer names: its id, its name, its number (1..), or a word
    (`allow`, `always`, `deny`...)."""
    text = answer.strip()
    folded = text.lower()
    for option in options:
        if text == option.option_id or folded == option.name.strip().lower():
            return option
    if folded.isdigit() and 1 <= int(folded) <= len(options):
        return options[int(folded) - 1]
    if folded in _ALWAYS:
        return _pick(options, ("allow_always", "allow_once"))
    if folded in _YES:
        return _pick(options, ("allow_once", "allow_always"))
    if folded in _NO:
        return _pick(options, ("reject_once", "reject_always"))
    return None

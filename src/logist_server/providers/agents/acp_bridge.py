"""The `acp` provider's program: Logist's ACP client for one step, run by the runtime.

    python -I -m logist_server.providers.agents.acp_bridge --config JSON

It starts the agent (an absolute program path and its arguments), speaks ACP to it over its
stdin/stdout through the `agent-client-protocol` SDK (initialize, session/new, or
session/resume or session/load when asked to continue a session the agent can continue,
session/prompt) and prints Logist's typed events as JSON lines on its own stdout.

The agent is not trusted: its messages are bounded in size (a larger one ends the run),
malformed ones are skipped, its death mid-prompt ends the run with the reason, and SIGTERM
(or any end) kills its whole process tree, launchers' children included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import re
import signal
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, cast

import msgspec
import psutil
from acp import PROTOCOL_VERSION, Client, RequestError
from acp.client.connection import ClientSideConnection
from acp.connection import StreamDirection, StreamEvent
from acp.schema import ClientCapabilities, FileSystemCapabilities, Implementation, TextContentBlock

from logist_server.domain.events import AgentError, AgentEvent, AgentMessage, AgentSession
from logist_server.providers.agents import env_alias
from logist_server.providers.agents.acp_client import LogistClient, emit
from logist_server.providers.agents.acp_config import Config

#: The largest JSON-RPC message taken from the agent (a file it writes travels in one).
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
#: How long the agent gets to exit once its input is closed, before it is killed.
EXIT_GRACE_S = 1.0
STDERR_TAIL = 4000
#: Terminal escape sequences (codex-acp colours its log lines even into a pipe) and other
#: control characters but tab: removed from the agent's stderr before Logist relays it.
_ESCAPES = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_])|[\x00-\x08\x0b-\x1f\x7f]"
)


class AgentGone(Exception):
    """The agent cannot go on; the message says why (one line)."""


# -- the wire: bounded lines ---------------------------------------------------------------
class BoundedTransport:
    """JSON-RPC messages over the agent's stdio, one JSON object per line, bounded in size.

    A line over the limit ends the conversation (its reason is kept); a line that is not a
    JSON object, or whose id or method has an impossible type, is skipped."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.failure: str | None = None
        self.skipped = 0

    async def send(self, message: dict[str, Any]) -> None:
        if self._writer.is_closing():
            raise ConnectionError("the agent's input is closed")
        self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        await self._writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:
                line = end.partial
                if not line.strip():
                    return None
            except asyncio.LimitOverrunError:
                self.failure = f"the agent sent a message larger than {MAX_MESSAGE_BYTES} bytes"
                return None
            except (ConnectionError, ValueError) as err:
                self.failure = f"the agent's output could not be read ({err})"
                return None
            message = _message(line)
            if message is None:
                self.skipped += 1
                if self.skipped <= 3:
                    sys.stderr.write("logist-acp: skipped a malformed message from the agent\n")
                continue
            return message

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()


def _message(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict):
        return None
    if (
        "id" in message and not (message["id"] is None or isinstance(message["id"], str | int))
    ) or isinstance(message.get("id"), bool):
        return None
    if "method" in message and not isinstance(message["method"], str):
        return None
    if "method" not in message and "id" not in message:
        return None
    return message


class RawLog:
    """The raw JSON of what the agent answered (the SDK's models drop fields the agents
    send: claude's usage, gemini's quota) and every `session/update`, as it arrives."""

    def __init__(self, client: LogistClient) -> None:
        self._client = client
        self._methods: dict[Any, str] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.replaying = False

    def __call__(self, event: StreamEvent) -> None:
        message = event.message
        if event.direction == StreamDirection.OUTGOING:
            if "method" in message and "id" in message:
                self._methods[message["id"]] = str(message["method"])
            return
        method = message.get("method")
        if method == "session/update":
            params = message.get("params")
            if isinstance(params, dict) and isinstance(params.get("update"), dict):
                session = params.get("sessionId")
                mine = self._client.session_id
                if not self.replaying and (mine is None or session == mine):
                    emit(self._client.mapper.update(params["update"]))
            return
        if method is None and "id" in message:
            name = self._methods.pop(message["id"], None)
            if name is not None and isinstance(message.get("result"), dict):
                self.results[name] = message["result"]


# -- the agent's process -------------------------------------------------------------------
class AgentProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.pump: asyncio.Task[None] | None = None

    async def pump_stderr(self) -> None:
        """Pass the agent's stderr on (the observer reads it) and keep its last lines."""
        stream = self.process.stderr
        assert stream is not None
        while True:
            try:
                line = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):
                line = await stream.read(65536)
            if not line:
                return
            text = _ESCAPES.sub("", line.decode("utf-8", "replace").rstrip("\n"))
            self.stderr_tail.append(text[:STDERR_TAIL])
            sys.stderr.write(text[:65536] + "\n")
            sys.stderr.flush()

    def describe_exit(self) -> str:
        code = self.process.returncode
        if code is None:
            how = "stopped answering"
        elif code < 0:
            how = f"was killed by signal {_signal_name(-code)}"
        else:
            how = f"exited with status {code}"
        tail = next((line for line in reversed(self.stderr_tail) if line.strip()), "")
        return f"the agent {how}" + (f": {tail.strip()[:500]}" if tail else "")

    def kill_tree(self) -> None:
        """SIGTERM the agent's process group and every descendant, then SIGKILL them."""
        kill_tree(self.process.pid)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def kill_tree(pid: int) -> None:
    try:
        victims = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        victims = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(victims, timeout=0.5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def agent_environment(config: Config) -> dict[str, str]:
    """The agent's environment: the bridge's own without the answer file, the config's
    variables, and each `env_from` target set to its source's value (names only in the
    config: the key's value is read here, by the one copy every launcher uses)."""
    env = dict(os.environ)
    env.pop("LOGIST_ANSWER_FILE", None)  # the agent has no business with the answers
    env.update(config.env)
    env_alias.copy(config.env_from, env)
    return env


# -- one run -------------------------------------------------------------------------------
async def run(config: Config) -> int:
    workspace = Path(config.workspace)
    answer = os.environ.get("LOGIST_ANSWER_FILE")
    env = agent_environment(config)
    client = LogistClient(workspace, config.permissions, Path(answer) if answer else None, env)
    prompt = Path(config.prompt_file).read_text("utf-8", "replace")
    process = await asyncio.create_subprocess_exec(
        *config.agent,
        cwd=str(workspace),
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        limit=MAX_MESSAGE_BYTES,
    )
    agent = AgentProcess(process)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, _on_signal, agent, client, sig)
    agent.pump = asyncio.create_task(agent.pump_stderr())
    assert process.stdout is not None and process.stdin is not None
    transport = BoundedTransport(process.stdout, process.stdin)
    raw = RawLog(client)
    conn = ClientSideConnection(cast(Client, client), transport, observers=[raw])
    try:
        return await _converse(conn, client, raw, config, prompt, agent, transport)
    finally:
        client.terminals.close_all()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), 2)
        await _stop(agent)


async def _converse(
    conn: ClientSideConnection,
    client: LogistClient,
    raw: RawLog,
    config: Config,
    prompt: str,
    agent: AgentProcess,
    transport: BoundedTransport,
) -> int:
    async def call(what: str, request: Any, timeout: float | None) -> Any:
        died = asyncio.ensure_future(agent.process.wait())
        task = asyncio.ensure_future(request)
        done, _ = await asyncio.wait({task, died}, timeout=timeout, return_when="FIRST_COMPLETED")
        if task not in done:
            task.cancel()
            if died in done:
                await asyncio.sleep(0.1)  # the stderr pump's last lines
                raise AgentGone(transport.failure or f"{agent.describe_exit()} during {what}")
            raise AgentGone(f"the agent did not answer {what} within {timeout:g} s")
        died.cancel()
        try:
            return task.result()
        except ConnectionError:
            await asyncio.sleep(0.1)
            raise AgentGone(transport.failure or f"{agent.describe_exit()} during {what}") from None

    try:
        init = await call(
            "initialize",
            conn.initialize(
                protocol_version=PROTOCOL_VERSION,
                client_capabilities=ClientCapabilities(
                    fs=FileSystemCapabilities(read_text_file=True, write_text_file=True),
                    terminal=config.permissions.execute != "deny",
                ),
                client_info=Implementation(name="logist", title="Logist", version=_version()),
            ),
            config.init_timeout,
        )
        del init
        capabilities = raw.results.get("initialize", {}).get("agentCapabilities") or {}
        session_id, resumed = await _open_session(call, conn, client, raw, config, capabilities)
        client.session_id = session_id
        emit([AgentSession(id=session_id, resumed=resumed)])
        await _choose_model(call, conn, raw, config, session_id, resumed)
        await call(
            "the prompt",
            conn.prompt(session_id=session_id, prompt=[TextContentBlock(type="text", text=prompt)]),
            None,
        )
    except AgentGone as gone:
        emit([*client.mapper.flush(), AgentError(message=str(gone))])
        return 1
    except RequestError as err:
        emit([*client.mapper.flush(), _request_error(err)])
        return 1
    result = raw.results.get("session/prompt", {})
    events = client.mapper.finish(result)
    emit(events)
    return 0 if result.get("stopReason") == "end_turn" else 1


#: The longest wait before a `session/load` (a minute turns within it; a clock set back
#: does not hold the step for longer).
MAX_LOAD_WAIT_S = 60.0


async def _wait_to_load(config: Config) -> None:
    """Wait until `config.load_not_before`, saying why (see `Preset.minute_session_files`)."""
    wait = min((config.load_not_before or 0) - time.time(), MAX_LOAD_WAIT_S)
    if wait > 0:
        emit([AgentMessage(text=(
            f"waiting {math.ceil(wait)} s before loading session {config.resume}: the agent "
            "empties a session loaded in the minute it began"
        ))])  # fmt: skip
        await asyncio.sleep(wait)


async def _open_session(
    call: Any,
    conn: ClientSideConnection,
    client: LogistClient,
    raw: RawLog,
    config: Config,
    capabilities: dict[str, Any],
) -> tuple[str, bool]:
    """Continue `config.resume` (session/resume, else session/load) when the agent can;
    a new session otherwise, the events saying why."""
    cwd = str(Path(config.workspace).resolve())
    if config.resume is not None:
        sessions = capabilities.get("sessionCapabilities")
        can_resume = isinstance(sessions, dict) and isinstance(sessions.get("resume"), dict)
        can_load = capabilities.get("loadSession") is True
        why = "the agent supports neither session/resume nor session/load"
        if can_resume or can_load:
            try:
                if can_resume:
                    request = conn.resume_session(session_id=config.resume, cwd=cwd, mcp_servers=[])
                    await call("session/resume", request, config.init_timeout)
                else:
                    await _wait_to_load(config)
                    raw.replaying = True  # the history it replays is not news
                    try:
                        loading = conn.load_session(
                            session_id=config.resume, cwd=cwd, mcp_servers=[]
                        )
                        await call("session/load", loading, config.init_timeout)
                    finally:
                        raw.replaying = False
                return config.resume, True
            except RequestError as err:
                why = f"the agent could not continue it ({readable(err)})"
        emit([AgentMessage(text=f"cannot resume session {config.resume}: {why}; a new one starts")])
    response = await call(
        "session/new", conn.new_session(cwd=cwd, mcp_servers=[]), config.init_timeout
    )
    return str(response.session_id), False


async def _choose_model(
    call: Any,
    conn: ClientSideConnection,
    raw: RawLog,
    config: Config,
    session_id: str,
    resumed: bool,
) -> None:
    """Set the model through the session's `model` configuration option, where it has one."""
    if config.model is None:
        return
    opened = raw.results.get("session/resume" if resumed else "session/new", {})
    if resumed and not opened:
        opened = raw.results.get("session/load", {})
    options = opened.get("configOptions") or []
    for option in options:
        if isinstance(option, dict) and (
            option.get("id") == "model" or option.get("category") == "model"
        ):
            try:
                setting = conn.set_config_option(
                    config_id=str(option["id"]), session_id=session_id, value=config.model
                )
                await call("session/set_config_option", setting, config.init_timeout)
            except RequestError as err:
                refused = f"the agent refused the model '{config.model}' ({readable(err)})"
                emit([AgentError(message=refused)])
            return
    emit(
        [
            AgentMessage(
                text=f"the agent offers no model choice over ACP: '{config.model}' is not applied"
            )
        ]
    )


def _request_error(err: RequestError) -> AgentEvent:
    data = getattr(err, "data", None)
    detail = json.dumps(
        {"error": {"code": err.code, "message": str(err), "data": data}}, default=str
    )
    return AgentError(message=readable(err), detail=detail)


#: JSON-RPC's generic text for an agent's failure (-32603), which says nothing of it.
_INTERNAL = "Internal error"


def readable(err: RequestError) -> str:
    """What an agent's JSON-RPC error says, for a person: the agent's own text (codex-acp
    puts it in `data.message`, gemini in `data.details`) without JSON-RPC's generic
    `Internal error`, and a model API's JSON error inside it (codex-acp and gemini pass the
    API's body on as text) as `the model API refused the request: MESSAGE (TYPE, HTTP N)`."""
    text, data = str(err), getattr(err, "data", None)
    if text.startswith(_INTERNAL + ": "):
        text = text[len(_INTERNAL) + 2 :]
    said = _said(data)
    if said is not None:
        text = said if text.strip() == _INTERNAL else f"{text}: {said}"
    elif data is not None:
        text = f"{text}: {json.dumps(data, default=str)[:1000]}"
    return _api_error(text) or text


def _said(data: Any) -> str | None:
    if isinstance(data, str) and data.strip():
        return data
    if isinstance(data, dict):
        for key in ("message", "details", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return value
    return None


def _api_error(text: str) -> str | None:
    """`text` read as a model API's JSON error object (OpenAI's, Google's, Anthropic's)."""
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    kind = error.get("type") or error.get("status")
    code = error.get("code")
    about = [str(kind)] if isinstance(kind, str) and kind else []
    if isinstance(code, int) and not isinstance(code, bool):
        about.append(f"HTTP {code}")
    suffix = f" ({', '.join(about)})" if about else ""
    return f"the model API refused the request: {error['message'][:1000]}{suffix}"


async def _stop(agent: AgentProcess) -> None:
    """Close the agent's input, give it a moment, then kill its whole tree."""
    process = agent.process
    if process.stdin is not None:
        with contextlib.suppress(Exception):
            process.stdin.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(process.wait(), EXIT_GRACE_S)
    agent.kill_tree()  # its children may outlive it (an npm launcher's native binary)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(process.wait(), 5)
    if agent.pump is not None:
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(agent.pump, 1)


def _on_signal(agent: AgentProcess, client: LogistClient, sig: signal.Signals) -> None:
    client.terminals.close_all()
    agent.kill_tree()
    os._exit(128 + sig.value)


def _version() -> str:
    from logist_server import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="logist-acp-bridge")
    parser.add_argument("--config", required=True, help="the run's configuration (JSON)")
    args = parser.parse_args(argv)
    try:
        config = msgspec.json.decode(args.config, type=Config)
    except msgspec.ValidationError as err:
        sys.stderr.write(f"logist-acp-bridge: bad configuration: {err}\n")
        return 2
    if not config.agent or not os.path.isabs(config.agent[0]):
        sys.stderr.write("logist-acp-bridge: the agent program must be an absolute path\n")
        return 2
    logging.basicConfig(level=logging.CRITICAL)  # the SDK logs the agent's faults: stay quiet
    try:
        return asyncio.run(run(config))
    except OSError as err:
        emit([AgentError(message=f"the agent could not be started: {err.strerror or err}")])
        return 1


if __name__ == "__main__":
    raise SystemExit(main())

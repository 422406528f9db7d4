"""`logist serve --tcp HOST:PORT`: the language server for clients that connect to it.

Every connection is a client of its own (its own protocol state over the shared `Hub`), and
must authenticate: its first message is an `initialize` carrying the token in
`initializationOptions.token`; anything else is refused, and anything that is not LSP
framing (an HTTP request) closes the connection unread. A client's disconnect or `exit`
ends that connection only: the server runs until it is killed (SIGINT, SIGTERM), and then
closes every connection quietly.

At most `MAX_PENDING` connections may wait unauthenticated at once (each may hold a first
body of up to 1 MiB for `AUTH_TIMEOUT_S`): one more closes the oldest waiting one at once,
so a local process opening connections by the hundred can neither exhaust memory nor keep
the editor's fresh connection out.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import sys
from collections.abc import Callable

from logist_server.domain.errors import UsageError
from logist_server.lsp.app import LogistServer
from logist_server.lsp.framing import serve_stream
from logist_server.lsp.hub import Hub
from logist_server.lsp.token import given_token, new_token, remove_token_file, write_token_file

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"
AUTH_TIMEOUT_S = 30.0  # how long a connection may stay without a good `initialize`
READ_LIMIT = 64 * 1024  # the longest line the stream reader buffers
MAX_PENDING = 16  # unauthenticated connections at once; one more closes the oldest
SHUTDOWN_TIMEOUT_S = 5.0  # how long the connections get to wind down on SIGINT/SIGTERM


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `[IPv6]:PORT` or `PORT` (loopback); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port.isdigit() or int(port) > 65535 or any(c.isspace() for c in host):
        raise UsageError(
            f"--tcp expects HOST:PORT (a port from 0 to 65535, 0 for any free one), got '{text}'"
        )
    return host or DEFAULT_HOST, int(port)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


#: Makes one client's server over the shared hub, with the token its `initialize` must carry
#: (`main.create_server`, passed in: this module does not import `main`, which imports it).
ServerFactory = Callable[[Hub, str], LogistServer]


def serve_tcp(address: str, token_file: str | None, create_server: ServerFactory) -> int:
    host, port = parse_address(address)
    given = given_token(token_file)
    token = given or new_token()
    return asyncio.run(_serve(host, port, token, given is None, create_server))


async def _serve(
    host: str, port: int, token: str, announce: bool, create_server: ServerFactory
) -> int:
    hub = Hub()
    # Every connection's server and writer, oldest first; and the tasks serving them.
    clients: dict[LogistServer, asyncio.StreamWriter] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            tasks.add(task)
        _close_oldest_pending(clients)
        server = create_server(hub, token)
        clients[server] = writer
        server.protocol.set_writer(writer)
        try:
            await serve_stream(server.protocol, reader, strict=True, first_timeout=AUTH_TIMEOUT_S)
        except asyncio.CancelledError:
            pass  # the server is stopping: this connection ends with it, quietly
        finally:
            clients.pop(server, None)
            server.close()
            writer.close()
            if task is not None:
                tasks.discard(task)

    stop = asyncio.Event()  # SIGINT, SIGTERM: from before anyone knows the port
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        listener = await asyncio.start_server(connection, host, port, limit=READ_LIMIT)
    except OSError as exc:
        errno = exc.errno or 0  # a resolver error's is negative
        reason = os.strerror(errno) if errno > 0 else (exc.strerror or str(exc))
        raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None
    bound = listener.sockets[0].getsockname()[1]
    token_path = write_token_file(token, bound) if announce else None
    _say(f"listening on {host}:{bound}")
    if token_path is not None:
        _say(f"token (also in {token_path}): {token}")
    if not is_loopback(host):
        _say(
            f"warning: {host} is not a loopback address: other machines can reach the port, "
            "and the token travels unencrypted"
        )
    try:
        async with listener:
            await stop.wait()
    finally:
        if token_path is not None:
            remove_token_file(token_path, token)
        for writer in list(clients.values()):
            writer.close()  # each connection's reader sees its end and returns
        if tasks:
            _, late = await asyncio.wait(set(tasks), timeout=SHUTDOWN_TIMEOUT_S)
            for task in late:
                task.cancel()  # swallowed in `connection`: no traceback at the end
            if late:
                await asyncio.wait(late, timeout=SHUTDOWN_TIMEOUT_S)
    return 0


def _close_oldest_pending(clients: dict[LogistServer, asyncio.StreamWriter]) -> None:
    """With MAX_PENDING connections waiting unauthenticated, close the oldest of them."""
    pending = [server for server in clients if not server.protocol.authenticated]
    for server in pending[: max(0, len(pending) - MAX_PENDING + 1)]:
        log.info("%d connections wait to authenticate: closing the oldest", MAX_PENDING)
        server.protocol.close("too many connections waiting to authenticate")
        clients[server].close()


def _say(text: str) -> None:
    sys.stderr.write(f"logist-server: {text}\n")
    sys.stderr.flush()

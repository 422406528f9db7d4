"""The LSP base protocol on a byte stream: header lines, a blank line, then the body.

Only `Content-Length` (required, digits) and `Content-Type` headers are LSP; anything else
(an HTTP request line such as `POST / HTTP/1.1`, another header, no Content-Length, a body
over the limit) is a `FramingError`. Over TCP a framing error closes the connection before
anything is executed, so a web page posting JSON-RPC to the port reaches nothing; over stdio
(the editor's own pipe) the bad header is logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import Protocol

from logist_server.lsp.jsonrpc import LogistProtocol

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024 * 1024  # a didOpen of a big file fits; a runaway length does not
MAX_FIRST_BODY = 1024 * 1024  # before the client is authenticated (TCP)
MAX_HEADER_LINE = 1024
_HEADER = re.compile(rb"([A-Za-z0-9-]+):[ \t]*([^\r\n]*?)[ \t]*\r?\n")


class FramingError(Exception):
    """The stream is not LSP base-protocol framing."""


class Reader(Protocol):
    def readline(self) -> Awaitable[bytes]: ...

    def readexactly(self, n: int) -> Awaitable[bytes]: ...


async def read_message(reader: Reader, max_body: int = MAX_BODY) -> bytes | None:
    """The next message's body, or None at the end of the stream."""
    length: int | None = None
    first = True
    while True:
        line = await reader.readline()
        if not line:
            if first:
                return None
            raise FramingError("the stream ended inside a header")
        first = False
        if line in (b"\r\n", b"\n"):
            break
        match = _HEADER.fullmatch(line) if len(line) <= MAX_HEADER_LINE else None
        if match is None:
            raise FramingError(f"not an LSP header line: {line[:60]!r}")
        name, value = match.group(1).lower(), match.group(2)
        if name == b"content-length":
            if not value.isdigit() or len(value) > 12:
                raise FramingError(f"bad Content-Length: {value[:20]!r}")
            length = int(value)
        elif name != b"content-type":
            raise FramingError(f"not an LSP header: {match.group(1)[:40]!r}")
    if length is None:
        raise FramingError("no Content-Length header")
    if length > max_body:
        raise FramingError(f"a body of {length} bytes is over the limit of {max_body}")
    return await reader.readexactly(length)


async def serve_stream(
    protocol: LogistProtocol,
    reader: Reader,
    *,
    strict: bool,
    first_timeout: float | None = None,
) -> None:
    """Hand every message on `reader` to `protocol` until the stream ends, the protocol
    closes the connection (`exit`, a refused client) or, when `strict`, the framing is bad.
    `first_timeout`: how long a client that must authenticate may take to do so."""
    closed = asyncio.Event()
    protocol.on_close = closed.set
    while not closed.is_set():
        gated = protocol.token is not None and not protocol.authenticated
        try:
            read = read_message(reader, MAX_FIRST_BODY if gated else MAX_BODY)
            body = await (asyncio.wait_for(read, first_timeout) if gated else read)
        except FramingError as exc:
            if strict:
                log.info("refusing a connection that does not speak LSP: %s", exc)
                return
            log.warning("skipping a malformed message header: %s", exc)
            continue
        except TimeoutError:
            log.info("closing a connection that did not initialize in %s s", first_timeout)
            return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError):
            return  # the stream broke off mid-message, or a line over the reader's limit
        if body is None:
            return
        protocol.receive(body)

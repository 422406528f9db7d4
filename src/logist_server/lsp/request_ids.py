"""A JSON-RPC message's `id` must be a string, a number or null (LSP: integer or string).

pygls keys its tables of pending requests by the id, so an object or an array there (which
cannot be a dictionary key) would raise deep inside it: the stdio server died with
`TypeError: unhashable type`, a TCP connection dropped with a traceback. Such a message is
answered InvalidRequest (-32600) with id null, as JSON-RPC says when the id cannot be read,
and the server keeps serving.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)
INVALID_REQUEST = -32600


class Answering(Protocol):
    """What of the connection's protocol (`jsonrpc.LogistProtocol`) the refusal uses."""

    def _send_error(self, msg_id: Any, code: int, message: str) -> None: ...

    def _gated(self) -> bool: ...

    def close(self, why: str) -> None: ...


def valid_id(value: Any) -> bool:
    """Whether `value` may be a JSON-RPC id (bool is JSON's true/false, not a number)."""
    return value is None or (isinstance(value, str | int | float) and not isinstance(value, bool))


def refuse_bad_id(protocol: Answering, message: dict[str, Any]) -> bool:
    """True (after answering, or ignoring a response) when `message` has an unusable id."""
    if "id" not in message or valid_id(message["id"]):
        return False
    kind = type(message["id"]).__name__
    if "method" in message:
        log.info("invalid request: its id is a JSON %s, not a string or a number", kind)
        protocol._send_error(
            None,
            INVALID_REQUEST,
            f"invalid request: the id must be a string or a number, not {kind}",
        )
        if protocol._gated():
            protocol.close("a first message with an invalid id")
    else:
        log.info("ignoring a response whose id is a JSON %s (no request has such an id)", kind)
    return True

"""JSON-RPC hardening on top of pygls: no request before `initialize`, and a malformed
request always gets an error response instead of silence."""

from __future__ import annotations

import logging
from typing import Any

import attrs
import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.protocol import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
    LanguageServerProtocol,
    default_converter,
)

log = logging.getLogger(__name__)
SERVER_NOT_INITIALIZED = -32002
_ALWAYS_ALLOWED = {types.INITIALIZE, types.SHUTDOWN, types.EXIT}


def raw_json_converter() -> cattrs.Converter:
    """pygls' converter, except that params and results of methods lsprotocol does not know
    stay plain JSON (pygls would make lossy namedtuples of them)."""
    converter: cattrs.Converter = default_converter()  # type: ignore[no-untyped-call]

    def keep(obj: dict[str, Any], cls: type[Any]) -> Any:
        return cls(**obj)

    for message in (JsonRPCRequestMessage, JsonRPCNotification, JsonRPCResponseMessage):
        converter.register_structure_hook(message, keep)
    return converter


@attrs.define
class InvalidRequest:
    """A request whose params could not be read; answered with InvalidParams."""

    id: Any
    method: str
    message: str
    jsonrpc: str = "2.0"


@attrs.define
class InvalidResponse:
    """A client's response we could not read; the waiting request fails with it."""

    id: Any
    message: str


class LogistProtocol(LanguageServerProtocol):
    """LanguageServerProtocol that answers every request, even a malformed or early one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False

    def structure_message(self, data: dict[str, Any]) -> Any:
        # pygls calls this for every JSON object, nested ones too: a params object that
        # happens to contain "jsonrpc" would be taken for a message. Keep plain JSON here;
        # the whole message is structured once it is complete, in `handle_message`.
        return data

    def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict):
            log.warning("ignoring a JSON-RPC message that is not an object: %r", message)
            return
        structured = self._structure(message)
        if isinstance(structured, InvalidRequest):
            error = JsonRpcInvalidParams(structured.message).to_response_error()
            self._send_response(structured.id, None, error)
        elif isinstance(structured, InvalidResponse):
            # Fail the request we are waiting on instead of waiting forever.
            error = types.ResponseError(code=JsonRpcInvalidParams.CODE, message=structured.message)
            self._handle_response(structured.id, None, error)
        elif isinstance(structured, dict):
            if "id" in structured and "method" in structured:
                invalid = types.ResponseError(
                    code=-32600, message="invalid request: not JSON-RPC 2.0"
                )
                self._send_response(structured["id"], None, invalid)
            else:
                log.warning("ignoring an invalid JSON-RPC message")
        else:
            super().handle_message(structured)

    def _structure(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if "jsonrpc" in data and "id" in data:
                if isinstance(data.get("method"), str):
                    return InvalidRequest(data["id"], data["method"], _describe(exc))
                if "method" not in data:
                    return InvalidResponse(data["id"], _describe(exc))
            return None
        except Exception as exc:
            log.warning("cannot read a JSON-RPC message: %s", exc)
            return None

    def _handle_request(self, msg_id: Any, method_name: str, params: Any) -> None:
        if method_name == types.INITIALIZE:
            self.initialize_received = True
        elif not self.initialize_received and method_name not in _ALWAYS_ALLOWED:
            error = types.ResponseError(
                code=SERVER_NOT_INITIALIZED,
                message=f"server not initialized: send 'initialize' before '{method_name}'",
            )
            self._send_response(msg_id, None, error)
            return
        super()._handle_request(msg_id, method_name, params)

    def _handle_notification(self, method_name: str, params: Any) -> None:
        if not self.initialize_received and method_name not in _ALWAYS_ALLOWED:
            return  # the spec: notifications before initialize are dropped
        super()._handle_notification(method_name, params)


def _describe(exc: JsonRpcException) -> str:
    cause = exc.__cause__
    if isinstance(cause, cattrs.ClassValidationError):
        details = "; ".join(cattrs.transform_error(cause))
        return f"invalid params: {details}"
    return f"invalid params: {cause or exc}"

"""JSON-RPC on top of pygls, answering every message the protocol says must be answered:
no request before `initialize` (nor, over TCP, before an `initialize` carrying the token),
InvalidRequest after `shutdown`, ParseError for a body that is not JSON, InvalidParams for
params that cannot be read, and `exit` ending with status 0 after `shutdown`, else 1.
Bad requests are logged at INFO on one line: they are the client's problem, not ours."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Generator
from concurrent.futures import Future
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
from pygls.protocol.language_server import lsp_method

from logist_server.lsp.documents import lsp_workspace

log = logging.getLogger(__name__)
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
SERVER_NOT_INITIALIZED = -32002
UNAUTHORIZED = -32001  # a TCP client without the server's token: refused, then disconnected
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
    """LanguageServerProtocol that answers every request, even a malformed or early one.

    `token`: when set (TCP), the first message must be an `initialize` request whose
    `initializationOptions.token` is this secret; anything else is answered with an error
    and the connection is closed (`on_close`). `exit_status` is set by `exit`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False
        self.token: str | None = None
        self.authenticated = False
        self.exit_status: int | None = None
        self.on_close: Callable[[], None] = lambda: None
        self._methods: dict[Any, str] = {}

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(
        self, params: types.InitializeParams
    ) -> Generator[Any, Any, types.InitializeResult]:
        """pygls's initialize; then open documents are numbered by LSP's line breaks."""
        result = yield from super().lsp_initialize(params)
        self._workspace = lsp_workspace(self.workspace)
        return result

    def structure_message(self, data: dict[str, Any]) -> Any:
        # pygls calls this for every JSON object, nested ones too: a params object that
        # happens to contain "jsonrpc" would be taken for a message. Keep plain JSON here;
        # the whole message is structured once it is complete, in `handle_message`.
        return data

    # -- the wire --------------------------------------------------------------------------
    def receive(self, body: bytes) -> None:
        """One message body as it came off the wire."""
        try:
            message = json.loads(body)
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            log.info("unparseable message: %s", exc)
            self._send_error(None, PARSE_ERROR, f"parse error: {exc}")
            if self._gated():
                self.close("an unparseable first message")
            return
        self.handle_message(message)

    def close(self, why: str) -> None:
        log.info("closing the connection: %s", why)
        self.on_close()

    def _send_error(self, msg_id: Any, code: int, message: str) -> None:
        self._send_data(
            {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}
        )

    def _gated(self) -> bool:
        return self.token is not None and not self.authenticated

    # -- dispatch --------------------------------------------------------------------------
    def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict):
            self._send_error(None, INVALID_REQUEST, "invalid request: not a JSON object")
            if self._gated():
                self.close("a first message that is not an object")
            return
        from logist_server.lsp.request_ids import (
            refuse_bad_id,  # an id that is no str/number: InvalidRequest
        )

        if refuse_bad_id(self, message):
            return
        if self._gated() and not self._authenticate(message):
            return
        method = message.get("method")
        is_request = "id" in message and isinstance(method, str)
        if method == types.EXIT:
            if is_request:  # pygls would exit without answering
                self._send_error(message["id"], INVALID_REQUEST, "'exit' is a notification")
                return
            self.exit_status = 0 if self._shutdown else 1
            self.close(f"exit (status {self.exit_status})")
            return
        if self._shutdown:
            if is_request:
                self._send_error(
                    message["id"], INVALID_REQUEST, f"the server is shut down: '{method}' refused"
                )
            return
        structured = self._structure(message)
        if isinstance(structured, InvalidRequest):
            log.info("%s: %s", structured.method, structured.message)
            error = JsonRpcInvalidParams(structured.message).to_response_error()
            self._send_response(structured.id, None, error)
        elif isinstance(structured, InvalidResponse):
            # Fail the request we are waiting on instead of waiting forever.
            error = types.ResponseError(code=JsonRpcInvalidParams.CODE, message=structured.message)
            self._handle_response(structured.id, None, error)
        elif isinstance(structured, dict):
            if "id" in structured and "method" in structured:
                self._send_error(
                    structured["id"], INVALID_REQUEST, "invalid request: not JSON-RPC 2.0"
                )
            else:
                log.info("ignoring an invalid JSON-RPC message")
        elif structured is not None:
            if is_request and not hasattr(structured, "id"):  # read as a notification type
                self._send_error(message["id"], INVALID_REQUEST, f"'{method}' is a notification")
                return
            super().handle_message(structured)

    def _authenticate(self, message: dict[str, Any]) -> bool:
        """Whether this first message is an `initialize` with the right token; if not, it
        is refused (an error for a request) and the connection closed."""
        assert self.token is not None
        params = message.get("params")
        options = params.get("initializationOptions") if isinstance(params, dict) else None
        given = options.get("token") if isinstance(options, dict) else None
        if (
            message.get("method") == types.INITIALIZE
            and "id" in message
            and isinstance(given, str)
            and hmac.compare_digest(given.encode(), self.token.encode())
        ):
            self.authenticated = True
            return True
        if "id" in message and isinstance(message.get("method"), str):
            self._send_error(
                message["id"],
                UNAUTHORIZED,
                "unauthorized: the first message must be 'initialize' with the server's token "
                "in initializationOptions.token",
            )
        self.close(f"refused {str(message.get('method'))[:40]!r} before a good initialize")
        return False

    def _structure(self, data: dict[str, Any]) -> Any:
        """The message as pygls' types, an InvalidRequest/InvalidResponse, or the plain dict
        when it is not JSON-RPC 2.0; never a traceback in the log."""
        if data.get("jsonrpc") != "2.0":
            return data
        try:
            if "id" in data:
                if "error" in data:
                    return self._converter.structure(data, types.ResponseErrorMessage)
                if "method" in data:
                    kind = self.get_message_type(data["method"]) or JsonRPCRequestMessage
                else:
                    kind = self._result_types.pop(data["id"], None) or JsonRPCResponseMessage
            else:
                kind = self.get_message_type(data.get("method", "")) or JsonRPCNotification
            return self._converter.structure(data, kind)
        except Exception as exc:
            if "id" in data:
                if isinstance(data.get("method"), str):
                    return InvalidRequest(data["id"], data["method"], _describe(exc))
                if "method" not in data:
                    return InvalidResponse(data["id"], _describe(exc))
            log.info("cannot read a JSON-RPC message: %s", _describe(exc))
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
        self._methods[msg_id] = method_name
        super()._handle_request(msg_id, method_name, params)

    def _handle_notification(self, method_name: str, params: Any) -> None:
        if not self.initialize_received and method_name not in _ALWAYS_ALLOWED:
            return  # the spec: notifications before initialize are dropped
        super()._handle_notification(method_name, params)

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        method = self._methods.pop(msg_id, "?")
        if not future.cancelled() and isinstance(future.exception(), JsonRpcException):
            exc = future.exception()
            assert isinstance(exc, JsonRpcException)
            self._request_futures.pop(msg_id, None)
            log.info("%s (id %r) refused: %s", method, msg_id, exc.message)
            self._send_response(msg_id, error=exc.to_response_error())
            return
        super()._send_handler_result(future, msg_id=msg_id)


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ if isinstance(exc, JsonRpcException) else exc
    if isinstance(cause, cattrs.ClassValidationError):
        details = "; ".join(cattrs.transform_error(cause))
        return f"invalid params: {details}"
    return f"invalid params: {cause or exc}"

"""The scripted model endpoint: a threaded HTTP server on 127.0.0.1 in the test process.

A test scripts the model's turns (`script`), points an agent at `url`, and afterwards
reads what was served (`log`, `totals`). Each request to a dialect's model path consumes
the next turn: a dialect renders an ordinary turn; the core itself handles an HTTP failure
(`{"error": STATUS}`) and a stall (`{"stall": true}`). When the script is exhausted the
endpoint answers FINAL_TEXT. Interface and token counting: README.md.
"""

from __future__ import annotations

import gzip
import json
import re
import select
import socket
import threading
import time
import traceback
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .dialects import NAMES, Dialect, Reply, load, request_json

FINAL_TEXT = "Done."
Turn = Mapping[str, Any]
_MODEL_IN_PATH = re.compile(r"/models/([^/:?]+)")


@dataclass
class RequestLog:
    """One request the endpoint answered."""

    method: str
    path: str
    dialect: str | None  # None: no dialect took the path (answered 404)
    kind: str  # turn | final | side | error | stall | unmatched | unimplemented | crash
    status: int
    model: str | None
    streamed: bool  # the answer was SSE (for a stall or failure: the request asked to stream)
    turn: int | None  # index of the scripted turn served, None for side/final/unmatched
    input: int = 0
    cached: int = 0
    output: int = 0
    reasoning: int = 0
    ms: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None  # why a request was not served (404, a dialect's crash)
    open: bool = False  # a stall still holding its connection

    def json(self) -> dict[str, Any]:
        """The request body as a JSON object ({} when it is not one)."""
        return request_json(self.body)


class ModelEndpoint:
    """A scripted model endpoint; `start()` binds 127.0.0.1:0, `stop()` ends it."""

    def __init__(self, dialects: Sequence[str | Any] = NAMES, final_text: str = FINAL_TEXT) -> None:
        """`dialects`: names of modules in `dialects/` (or dialect objects), tried in order."""
        self._dialect_names = tuple(dialects)
        self._dialects: dict[int, Dialect | Exception] = {}
        self.final_text = final_text
        self._turns: list[Turn] = []
        self._next = 0
        self._log: list[RequestLog] = []
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> ModelEndpoint:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.endpoint = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name="model-endpoint",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled responses end (their connections close)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ModelEndpoint:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the endpoint is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (no path: add `/v1` where an agent wants it)."""
        return f"http://127.0.0.1:{self.port}"

    # -- script ---------------------------------------------------------------------------
    def script(self, *turns: Turn | Iterable[Turn]) -> ModelEndpoint:
        """Append turns (dicts, or lists of dicts); `"times": N` repeats a turn N times."""
        with self._lock:
            for item in turns:
                for turn in [item] if isinstance(item, Mapping) else item:
                    copies = int(turn.get("times", 1))
                    plain = {k: v for k, v in turn.items() if k != "times"}
                    self._turns.extend(dict(plain) for _ in range(copies))
        return self

    def clear(self) -> int:
        """Drop the scripted turns not served yet; how many there were."""
        with self._lock:
            dropped = len(self._turns) - self._next
            del self._turns[self._next :]
            return dropped

    @property
    def remaining(self) -> int:
        """Scripted turns not served yet."""
        with self._lock:
            return len(self._turns) - self._next

    # -- what was served ------------------------------------------------------------------
    @property
    def log(self) -> list[RequestLog]:
        with self._lock:
            return list(self._log)

    def totals(self) -> dict[str, int]:
        """Tokens served (input, cached, output, reasoning) and request counts."""
        with self._lock:
            entries = list(self._log)
        total = {name: sum(getattr(e, name) for e in entries)
                 for name in ("input", "cached", "output", "reasoning")}  # fmt: skip
        total["requests"] = len(entries)
        total["served"] = sum(1 for e in entries if e.kind in ("turn", "final", "side"))
        total["refused"] = sum(1 for e in entries if e.kind == "error")
        total["stalled"] = sum(1 for e in entries if e.kind == "stall")
        total["unmatched"] = sum(1 for e in entries if e.kind in ("unmatched", "unimplemented"))
        return total

    def wait_for_requests(self, count: int, timeout: float = 120.0) -> list[RequestLog]:
        """Block until `count` requests were logged (a guard against hangs, not a timing)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._log) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._log)} of {count} requests after {timeout} s")
                self._lock.wait(left)
            return list(self._log)

    # -- serving (handler threads) --------------------------------------------------------
    def dialect_for(self, method: str, path: str) -> tuple[Dialect | None, list[str]]:
        """The dialect taking `path`, and the names of dialects not written yet."""
        missing: list[str] = []
        for slot, name in enumerate(self._dialect_names):
            dialect = self._dialects.get(slot)
            if dialect is None:
                try:
                    dialect = load(name)
                except Exception as exc:
                    dialect = exc
                self._dialects[slot] = dialect
            if isinstance(dialect, Exception):
                missing.append(f"{name}: {dialect}")
                continue
            try:
                if dialect.matches(method, path):
                    return dialect, missing
            except NotImplementedError as exc:
                missing.append(str(exc))
        return None, missing

    def take_turn(self) -> tuple[int | None, Turn]:
        with self._lock:
            if self._next < len(self._turns):
                index = self._next
                self._next += 1
                return index, self._turns[index]
        return None, {"text": self.final_text}

    def closed(self, entry: RequestLog) -> None:
        """A stall ended (its client gave up, or the endpoint stopped)."""
        with self._lock:
            entry.open = False
            self._lock.notify_all()

    def wait_stalls_ended(self, timeout: float = 120.0) -> None:
        """Block until no stalled response holds its connection (a guard against hangs)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(e.open for e in self._log):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"a stalled response still open after {timeout} s")
                self._lock.wait(left)

    def record(self, entry: RequestLog) -> None:
        with self._lock:
            self._log.append(entry)
            self._lock.notify_all()

    @property
    def stopping(self) -> threading.Event:
        return self._stopping


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive connections must not hold up stop()
    endpoint: ModelEndpoint


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the endpoint's own log is the record."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        started = time.monotonic()
        endpoint = self.server.endpoint
        body = self._read_body()
        request = request_json(body)
        entry = RequestLog(
            method=method, path=self.path, dialect=None, kind="unmatched", status=404,
            model=_model(self.path, request), streamed=_asks_stream(self.path, request),
            turn=None, headers={k.lower(): v for k, v in self.headers.items()}, body=body,
        )  # fmt: skip
        stall = False
        try:
            status, payload, headers = self._plan(method, body, entry)
            stall = entry.open = entry.kind == "stall"
        except Exception as exc:  # a dialect's bug: answered 500, named in the log
            entry.kind, entry.status = "crash", 500
            entry.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
            status, payload, headers = 500, entry.error.encode(), {"Content-Type": "text/plain"}
        entry.ms = (time.monotonic() - started) * 1000
        # Logged before the client gets the answer: a test that saw the answer sees the entry.
        endpoint.record(entry)
        if stall:
            try:
                self._stall(entry.streamed)
            finally:
                endpoint.closed(entry)
        else:
            self._send(status, payload, headers)

    def _plan(self, method: str, body: bytes, entry: RequestLog) -> tuple[int, bytes, _Headers]:
        """The answer to a request (status, payload, headers), with `entry` filled in."""
        endpoint = self.server.endpoint
        dialect, missing = endpoint.dialect_for(method, self.path)
        if dialect is None:
            entry.kind = "unimplemented" if missing else "unmatched"
            reason = f"no dialect serves {method} {self.path}"
            if missing:
                reason += f" ({'; '.join(missing)})"
            entry.error = reason
            return 404, json.dumps({"error": {"message": reason}}).encode(), _JSON
        entry.dialect = dialect.name
        side = dialect.side_reply(method, self.path, body)
        if side is not None:
            entry.kind = "side"
            return self._answer(entry, side)
        index, turn = endpoint.take_turn()
        entry.turn = index
        if "error" in turn:
            return self._fail(entry, dialect, turn)
        if turn.get("stall"):
            entry.kind, entry.status = "stall", 200
            return 200, b"", {}
        entry.kind = "turn" if index is not None else "final"
        return self._answer(entry, dialect.reply(turn, body, self.path))

    def _answer(self, entry: RequestLog, reply: Reply) -> tuple[int, bytes, _Headers]:
        payload, content_type, served = reply
        entry.status = 200
        entry.streamed = content_type.startswith("text/event-stream")
        entry.input = int(served.get("input", 0))
        entry.cached = int(served.get("cached", 0))
        entry.output = int(served.get("output", 0))
        entry.reasoning = int(served.get("reasoning", 0))
        return 200, payload, {"Content-Type": content_type}

    def _fail(self, entry: RequestLog, dialect: Dialect, turn: Turn) -> tuple[int, bytes, _Headers]:
        status = int(turn["error"])
        message = str(turn.get("message") or _DEFAULT_MESSAGES.get(status, "scripted failure"))
        entry.kind = "error"
        entry.status = status
        headers = dict(_JSON)
        headers.update({str(k): str(v) for k, v in (turn.get("headers") or {}).items()})
        return status, dialect.error_body(status, message), headers

    def _stall(self, streamed: bool) -> None:
        """Headers, then nothing until the client gives up or the endpoint stops."""
        self.send_response(200)
        kind = "text/event-stream" if streamed else "application/json"
        self.send_header("Content-Type", kind)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        stopping = self.server.endpoint.stopping
        conn: socket.socket = self.connection
        while not stopping.is_set():
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable:
                try:
                    if not conn.recv(4096, socket.MSG_PEEK):
                        return  # the client closed the connection
                    conn.recv(4096)  # a client sending more: read and keep stalling
                except OSError:
                    return

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            self.wfile.write(payload)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "").lower()
        if encoding == "gzip":
            return gzip.decompress(body)
        if encoding == "deflate":
            return zlib.decompress(body)
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()


_Headers = Mapping[str, str]
_JSON: _Headers = {"Content-Type": "application/json"}
_DEFAULT_MESSAGES = {
    400: "This request would exceed your budget (scripted 400).",
    401: "Invalid API key (scripted 401).",
    402: "Payment required: budget exhausted (scripted 402).",
    429: "Rate limit reached, retry later (scripted 429).",
    500: "Internal server error (scripted 500).",
}


def _model(path: str, request: Mapping[str, Any]) -> str | None:
    model = request.get("model")
    if isinstance(model, str):
        return model
    found = _MODEL_IN_PATH.search(path.split("?", 1)[0])
    return found.group(1) if found else None


def _asks_stream(path: str, request: Mapping[str, Any]) -> bool:
    return request.get("stream") is True or "stream" in path.split("?", 1)[0].rsplit("/", 1)[-1]

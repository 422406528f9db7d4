"""A raw JSON-RPC client over stdio or TCP, able to send anything, even malformed messages."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, BinaryIO


class RawClient:
    """Frames messages with Content-Length, collects responses by id, answers the server's
    own requests with null, and keeps notifications.

    Over stdio (`argv`: the server is started here) or over a connected socket (`sock`)."""

    def __init__(
        self,
        argv: list[str] | None = None,
        env: dict[str, str] | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock = sock
        if sock is not None:
            self._in: BinaryIO = sock.makefile("rb")
        else:
            assert argv is not None
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )
            assert self.proc.stdout is not None
            self._in = self.proc.stdout
        self.responses: dict[Any, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        self.sent: dict[Any, dict[str, Any]] = {}
        # Results for the server's own requests, by method (default: null).
        self.answers: dict[str, Any] = {}
        self.unanswered: set[str] = set()  # the server's requests of these methods get no answer
        self.eof = threading.Event()  # the server closed the stream
        self.received: list[dict[str, Any]] = []  # every message, in order
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._next_id = 0
        self.stderr_tail: list[bytes] = []
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()
        if self.proc is not None:
            threading.Thread(target=self._drain_stderr, daemon=True).start()

    @classmethod
    def connect(cls, port: int, host: str = "127.0.0.1") -> RawClient:
        return cls(sock=socket.create_connection((host, port), timeout=None))

    def initialize(self, root: Path, token: str | None = None, **extra: Any) -> dict[str, Any]:
        """`initialize` (with `token` in initializationOptions) and `initialized`."""
        uri = root.resolve().as_uri()
        params: dict[str, Any] = {
            "processId": None,
            "rootUri": uri,
            "capabilities": {},
            "workspaceFolders": [{"uri": uri, "name": root.name}],
            **extra,
        }
        if token is not None:
            params["initializationOptions"] = {"token": token}
        answer = self.request("initialize", params)
        if "result" in answer:
            self.notify("initialized", {})
        return answer

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail = [*self.stderr_tail[-50:], line]

    def _read(self) -> None:
        try:
            self._read_messages()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.eof.set()
                self._cond.notify_all()

    def _read_messages(self) -> None:
        out = self._in
        while True:
            length = 0
            while True:
                header = out.readline()
                if not header:
                    return
                if header in (b"\r\n", b"\n"):
                    break
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":", 1)[1])
            message = json.loads(out.read(length))
            with self._cond:
                self.received.append(message)
            if "method" in message and "id" in message:
                with self._cond:
                    self.server_requests.append(message)
                    self._cond.notify_all()
                if message["method"] in self.unanswered:
                    continue
                result = self.answers.get(message["method"])
                reply = {"jsonrpc": "2.0", "id": message["id"], "result": result}
                self.send_raw(json.dumps(reply).encode())
            elif "method" in message:
                with self._cond:
                    self.notifications.append(message)
                    self._cond.notify_all()
            else:
                with self._cond:
                    self.responses[message.get("id")] = message
                    self._cond.notify_all()

    def send_raw(self, body: bytes) -> None:
        try:
            message = json.loads(body)
            if isinstance(message, dict) and "id" in message and "method" in message:
                self.sent[message["id"]] = message
        except ValueError:
            pass
        self.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def send_bytes(self, data: bytes) -> None:
        """Write `data` as is: no framing added."""
        with self._write_lock:
            if self.sock is not None:
                self.sock.sendall(data)
                return
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def request(self, method: str, params: Any, timeout: float = 30) -> dict[str, Any]:
        msg_id = self.new_id()
        self.send_raw(
            json.dumps(
                {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}
            ).encode()
        )
        return self.wait_response(msg_id, timeout)

    def notify(self, method: str, params: Any) -> None:
        self.send_raw(json.dumps({"jsonrpc": "2.0", "method": method, "params": params}).encode())

    def wait_response(self, msg_id: Any, timeout: float = 30) -> dict[str, Any]:
        with self._cond:
            self._cond.wait_for(lambda: msg_id in self.responses or self.eof.is_set(), timeout)
        if msg_id not in self.responses:
            tail = b"".join(self.stderr_tail[-10:]).decode(errors="replace")
            request = json.dumps(self.sent.get(msg_id))[:300]
            closed = " (the server closed the stream)" if self.eof.is_set() else ""
            raise AssertionError(
                f"no response within {timeout} s{closed} to {request}; stderr: {tail}"
            )
        return self.responses[msg_id]

    def wait_notification(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(predicate(n) for n in self.notifications), timeout)
        assert ok, "notification never arrived"
        return next(n for n in self.notifications if predicate(n))

    def wait_server_request(self, method: str, timeout: float = 30) -> dict[str, Any]:
        """Wait for the server to send us a request of `method`."""

        def found() -> dict[str, Any] | None:
            return next((r for r in self.server_requests if r["method"] == method), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None, timeout)
        request = found()
        assert request is not None, f"the server never sent {method}"
        return request

    def drop(self) -> None:
        """Break the connection off, as a crashed client would: no shutdown, no exit."""
        assert self.sock is not None
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()

    def wait_eof(self, timeout: float = 30) -> None:
        """Wait until the server closes the stream."""
        assert self.eof.wait(timeout), "the server never closed the connection"

    def close(self) -> None:
        """`shutdown` and `exit`, then wait for the end (once: a second call does nothing)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            if self.proc is not None:
                self.proc.wait(timeout=10)
            else:
                self.wait_eof(10)
        except Exception:
            if self.proc is not None:
                self.proc.kill()
                self.proc.wait()
        finally:
            if self.sock is not None:
                self.sock.close()

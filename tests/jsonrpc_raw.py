"""A raw JSON-RPC-over-stdio client, able to send anything, even malformed messages."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any


class RawClient:
    """Frames messages with Content-Length, collects responses by id, answers the server's
    own requests with null, and keeps notifications."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self.responses: dict[Any, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        self.sent: dict[Any, dict[str, Any]] = {}
        # Results for the server's own requests, by method (default: null).
        self.answers: dict[str, Any] = {}
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self.stderr_tail: list[bytes] = []

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_tail = [*self.stderr_tail[-50:], line]

    def _read(self) -> None:
        out = self.proc.stdout
        assert out is not None
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
            if "method" in message and "id" in message:
                self.server_requests.append(message)
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
        stdin = self.proc.stdin
        assert stdin is not None
        with self._write_lock:
            stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            stdin.flush()

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
            ok = self._cond.wait_for(lambda: msg_id in self.responses, timeout)
        if not ok:
            tail = b"".join(self.stderr_tail[-10:]).decode(errors="replace")
            request = json.dumps(self.sent.get(msg_id))[:300]
            raise AssertionError(f"no response within {timeout} s to {request}; stderr: {tail}")
        return self.responses[msg_id]

    def wait_notification(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(predicate(n) for n in self.notifications), timeout)
        assert ok, "notification never arrived"
        return next(n for n in self.notifications if predicate(n))

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()

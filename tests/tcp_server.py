"""A real `logist serve --tcp 127.0.0.1:0` process for tests: its port, token and stderr."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

LOGIST = str(Path(sys.executable).parent / "logist")
START_TIMEOUT_S = 60


class TcpServer:
    """Starts the server, reads `listening on HOST:PORT` and the announced token."""

    def __init__(
        self, runtime_dir: Path | None, *extra: str, env: dict[str, str] | None = None
    ) -> None:
        """`runtime_dir`: made and set as XDG_RUNTIME_DIR (None: `env` decides)."""
        self.env = dict(os.environ if env is None else env)
        if runtime_dir is not None:
            runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.env["XDG_RUNTIME_DIR"] = str(runtime_dir)
        self.proc = subprocess.Popen(
            [LOGIST, "serve", "--tcp", "127.0.0.1:0", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._drain, daemon=True).start()
        self.port = int(self._wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))
        self.token: str | None = None
        self.token_file: Path | None = None
        if not self.env.get("LOGIST_TOKEN") and "--token-file" not in extra:
            found = self._wait_for(r"token \(also in (.+)\): (\S+)")
            self.token_file, self.token = Path(found.group(1)), found.group(2)

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._cond:
                self.lines.append(raw.decode(errors="replace"))
                self._cond.notify_all()
        with self._cond:
            self.lines.append("")  # end of stderr
            self._cond.notify_all()

    def _wait_for(self, pattern: str) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            return next((m for line in self.lines if (m := re.search(pattern, line))), None)

        with self._cond:
            self._cond.wait_for(lambda: found() is not None or "" in self.lines, START_TIMEOUT_S)
            match = found()
        assert match is not None, f"the server did not say {pattern!r}: {self.stderr()}"
        return match

    def stderr(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        """SIGTERM, then the exit status (killed if it does not stop)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the server did not stop on SIGTERM") from None

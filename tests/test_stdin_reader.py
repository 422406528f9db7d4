"""The server's stdin: read by the event loop when it is a pipe, by a thread otherwise.

Every other LSP test drives the server over pipes (the loop's reader); these run the real
`logist-server` with stdin as a regular file and as a pipe sending messages split at
arbitrary bytes, and check every request is answered, in order, and the exit status.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

SERVER = str(Path(sys.executable).parent / "logist-server")


def frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def session(repo: Path) -> bytes:
    return b"".join(
        [
            frame(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "initialize",
                    "params": {"capabilities": {}, "rootUri": repo.as_uri()},
                }
            ),
            frame({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
            frame(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "textDocument/codeAction",  # answered at once (no task)
                    "params": {
                        "textDocument": {"uri": (repo / "nothing.py").as_uri()},
                        "range": {
                            "start": {"line": 0, "character": 0},
                            "end": {"line": 0, "character": 0},
                        },
                        "context": {"diagnostics": []},
                    },
                }
            ),
            b"Content-Length: x\r\n\r\n",  # a malformed header over stdio is skipped
            frame({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}),
            frame({"jsonrpc": "2.0", "method": "exit"}),
        ]
    )


def answered_ids(stdout: bytes) -> list[int]:
    ids = []
    while stdout:
        head, _, rest = stdout.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        message = json.loads(rest[:length])
        stdout = rest[length:]
        if "id" in message and "method" not in message:
            assert "error" not in message, message
            ids.append(message["id"])
    return ids


def test_stdin_from_a_regular_file(repo: Path, tmp_path: Path) -> None:
    messages = tmp_path / "messages.bin"
    messages.write_bytes(session(repo))
    with messages.open("rb") as stdin:
        proc = subprocess.run(
            [SERVER], stdin=stdin, capture_output=True, cwd=repo, timeout=120, check=False
        )
    assert proc.returncode == 0, proc.stderr.decode()
    assert answered_ids(proc.stdout) == [1, 2, 3]


def test_stdin_pipe_with_messages_split_anywhere(repo: Path, tmp_path: Path) -> None:
    data = session(repo)
    with (tmp_path / "stderr.log").open("w+b") as errors:
        proc = subprocess.Popen(
            [SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, cwd=repo
        )
        assert proc.stdin is not None and proc.stdout is not None
        stdin = proc.stdin

        def feed() -> None:
            for start in range(0, len(data), 7):  # headers and bodies cut mid-way
                stdin.write(data[start : start + 7])
                stdin.flush()
            stdin.close()

        writer = threading.Thread(target=feed)
        writer.start()
        stdout = proc.stdout.read()
        writer.join(timeout=120)
        assert proc.wait(timeout=120) == 0, (tmp_path / "stderr.log").read_text()
    assert answered_ids(stdout) == [1, 2, 3]

"""`logist serve --tcp` attacked the way another local process or a web page would: real
sockets against a real server process. Only a client holding the token gets in; each client
has its own state; one leaving does not stop the others; HTTP is refused unread."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_repo, wait_for
from jsonrpc_raw import RawClient
from tcp_server import TcpServer

LOGIST = str(Path(sys.executable).parent / "logist")
SERVER = str(Path(sys.executable).parent / "logist-server")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TcpServer]:
    started = TcpServer(tmp_path / "runtime")
    yield started
    started.stop()


def _status_event(job_id: str, status: str) -> object:
    def match(n: dict[str, object]) -> bool:
        params = n.get("params")
        return (
            n.get("method") == "logist/jobEvent"
            and isinstance(params, dict)
            and params.get("jobId") == job_id
            and params.get("status") == status
        )

    return match


def _job_in_review(client: RawClient, repo: Path, prompt: str) -> str:
    uri = (repo / "a.txt").resolve().as_uri()
    created = client.request("logist/createJob", {"prompt": prompt, "agent": "mock", "uri": uri})
    assert "result" in created, created
    job_id: str = created["result"]["jobId"]
    client.wait_notification(_status_event(job_id, "review"), timeout=60)
    return job_id


def _framed(message: object) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def _no_store(repo: Path) -> bool:
    return not (repo / ".logist" / "logist.db").exists()


def _recv_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(30)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_the_token_file_is_private_and_goes_away_with_the_server(tmp_path: Path) -> None:
    server = TcpServer(tmp_path / "runtime")
    assert server.token_file is not None and server.token
    assert server.token_file.name == f"serve-{server.port}.token"
    assert stat.S_IMODE(server.token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.token_file.parent.stat().st_mode) == 0o700
    assert server.token_file.read_text().strip() == server.token
    assert server.stderr().count(server.token) == 1  # printed once
    assert server.stop() == 0
    assert not server.token_file.exists()


@pytest.mark.parametrize("with_token", [False, True])
def test_an_http_post_of_json_rpc_is_refused_unread(
    server: TcpServer, tmp_path: Path, with_token: bool
) -> None:
    """What a web page can send with fetch(): a POST whose body is valid JSON-RPC (here even
    carrying the token). Nothing is executed: no answer, no job, the connection closed."""
    repo = make_repo(tmp_path / "repo")
    uri = repo.resolve().as_uri()
    init = {
        "processId": None,
        "rootUri": uri,
        "capabilities": {},
        "initializationOptions": {"token": server.token if with_token else "x"},
    }
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
    create = {"prompt": "from the browser", "agent": "mock", "uri": f"{uri}/a.txt"}
    body2 = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "logist/createJob", "params": create})
    for request_line in (b"POST / HTTP/1.1", b"GET /?x HTTP/1.1", b"OPTIONS * HTTP/1.1"):
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            payload = (
                request_line + b"\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body.encode())
            )
            sock.sendall(payload + b"Content-Length: %d\r\n\r\n%s" % (len(body2), body2.encode()))
            assert _recv_all(sock) == b"", request_line
    assert _no_store(repo)
    assert server.alive()


def test_anything_but_lsp_framing_is_refused_unread(server: TcpServer, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    listing = b'{"jsonrpc": "2.0", "id": 1, "method": "logist/listJobs", "params": {}}'
    attacks = [
        b"\r\n" + listing,  # no Content-Length header at all
        b"Host: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s" % (len(listing), listing),
        b"Content-Length: -5\r\n\r\n" + listing,
        b"Content-Length: 99999999999\r\n\r\n" + listing,  # over the limit
        listing + b"\r\n\r\n",  # a bare body
        b"Content-Length: 70" + b" " * 5000 + b"\r\n\r\n" + listing,  # a header line too long
        b"X" * 100_000,  # a line longer than the server buffers, never ended
    ]
    for attack in attacks:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(attack)
            assert _recv_all(sock) == b"", attack
    assert _no_store(repo)
    # the server still serves a real client
    client = RawClient.connect(server.port)
    assert "result" in client.initialize(repo, server.token)
    assert client.request("logist/listJobs", {})["result"] == []
    client.close()


@pytest.mark.parametrize(
    "options",
    [None, {}, {"token": None}, {"token": ""}, {"token": "wrong-token-of-some-length"}, "text"],
)
def test_initialize_without_the_token_is_refused_and_closed(
    server: TcpServer, tmp_path: Path, options: object
) -> None:
    repo = make_repo(tmp_path / "repo")
    client = RawClient.connect(server.port)
    params = {"processId": None, "rootUri": repo.as_uri(), "capabilities": {}}
    if options is not None:
        params["initializationOptions"] = options
    answer = client.request("initialize", params)
    assert answer["error"]["code"] == -32001, answer
    assert "token" in answer["error"]["message"]
    assert server.token not in json.dumps(answer)
    client.wait_eof()
    assert len(client.received) == 1  # nothing but the refusal


def test_before_a_good_initialize_nothing_is_answered(server: TcpServer, tmp_path: Path) -> None:
    """A second process without the token, trying what it could before: list the prompts,
    create a job, answer the server's requests, or send the right initialize only after a
    first message. The first message that is not a good initialize ends the connection."""
    repo = make_repo(tmp_path / "repo")
    uri = repo.resolve().as_uri()
    for first in (
        {"jsonrpc": "2.0", "id": 7, "method": "logist/listJobs", "params": {}},
        {"jsonrpc": "2.0", "id": 7, "method": "logist/createJob", "params": {"prompt": "p"}},
        {"jsonrpc": "2.0", "id": 7, "result": {"applied": True}},  # a forged editor answer
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "method": "exit"},
    ):
        init = {"processId": None, "rootUri": uri, "capabilities": {},
                "initializationOptions": {"token": server.token}}  # fmt: skip
        late = {"jsonrpc": "2.0", "id": 8, "method": "initialize", "params": init}
        client = RawClient.connect(server.port)
        with contextlib.suppress(OSError):  # the right initialize, too late: the same packet
            client.send_bytes(_framed(first) + _framed(late))
        client.wait_eof()
        for message in client.received:
            assert message.get("error", {}).get("code") == -32001, message
            assert message.get("id") == 7, message
    client = RawClient.connect(server.port)
    client.send_bytes(b"Content-Length: 5\r\n\r\n{oops")  # not JSON, before initialize
    client.wait_eof()
    assert [m["error"]["code"] for m in client.received] == [-32700]
    assert _no_store(repo)
    assert server.alive()
    # and a real client sees no job from any of this
    good = RawClient.connect(server.port)
    assert "result" in good.initialize(repo, server.token)
    assert good.request("logist/listJobs", {})["result"] == []
    good.close()


def test_each_client_has_its_own_state_and_outlives_the_others(
    server: TcpServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    editor = RawClient.connect(server.port)
    assert "result" in editor.initialize(repo, server.token)
    uri = (repo / "a.txt").resolve().as_uri()
    text = (repo / "a.txt").read_text()
    editor.answers["workspace/applyEdit"] = {"applied": True}
    editor.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1, "text": text}},
    )
    # another authenticated client opens the same file with other text, then leaves rudely
    other = RawClient.connect(server.port)
    assert "result" in other.initialize(repo, server.token)
    other.answers["workspace/applyEdit"] = {"applied": True}
    other.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1, "text": "x\n"}},
    )
    watcher = RawClient.connect(server.port)  # a third editor on the same repository
    assert "result" in watcher.initialize(repo, server.token)
    job_id = _job_in_review(editor, repo, "mine")
    other.notify("exit", None)  # exit without shutdown: ends that connection only
    other.wait_eof()
    third = RawClient.connect(server.port)
    assert "result" in third.initialize(repo, server.token)
    third.drop()  # a crash: no shutdown, no exit

    # the editor's accept asks the editor (not another client) to apply the edit to its text
    accepted = editor.request("logist/acceptJob", {"jobId": job_id})
    assert [h.split("/")[0] for h in accepted["result"]["applied"]] == [job_id], accepted
    (apply,) = [r for r in editor.server_requests if r["method"] == "workspace/applyEdit"]
    edit = apply["params"]["edit"]["documentChanges"][0]["edits"][0]
    assert edit["range"]["start"]["line"] == len(text.splitlines())  # the editor's buffer
    assert not [r for r in other.server_requests if r["method"] == "workspace/applyEdit"]
    assert not [r for r in watcher.server_requests if r["method"] == "workspace/applyEdit"]
    # every client following the repository sees the job's events, whoever drove it
    watcher.wait_notification(_status_event(job_id, "review"))
    watcher.wait_notification(_status_event(job_id, "accepted"))
    watcher.close()
    assert server.alive()
    editor.close()
    # after every client left, the server still takes new ones
    again = RawClient.connect(server.port)
    assert "result" in again.initialize(repo, server.token)
    assert job_id in {j["id"] for j in again.request("logist/listJobs", {})["result"]}
    again.close()
    assert server.alive()


def test_a_token_passed_by_the_editor(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    token = "editor-chosen-secret-0123456789"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    for how, extra, env in (
        ("env", (), dict(os.environ, LOGIST_TOKEN=token)),
        ("file", ("--token-file", str(token_file)), None),
    ):
        server = TcpServer(tmp_path / f"runtime-{how}", *extra, env=env)
        try:
            assert token not in server.stderr()
            assert not list((tmp_path / f"runtime-{how}").rglob("*.token"))
            bad = RawClient.connect(server.port)
            assert bad.initialize(repo, "some-other-token-000000")["error"]["code"] == -32001
            good = RawClient.connect(server.port)
            assert "result" in good.initialize(repo, token), how
            good.close()
        finally:
            server.stop()


@pytest.mark.parametrize(
    "args",
    [
        ["--tcp", "127.0.0.1:99999"],
        ["--tcp", "127.0.0.1:http"],
        ["--tcp", "nonsense"],
        ["--tcp", "127.0.0.1:-1"],
        ["--tcp", ""],
        ["--tcp", "no-such-host.invalid:0"],
        ["--tcp", "192.0.2.1:0"],  # not an address of this machine
        ["--token-file", "/nonexistent"],  # without --tcp
        ["--stdio", "--tcp", "127.0.0.1:0"],
        ["--tcp", "127.0.0.1:0", "--token-file", "/nonexistent/token"],
    ],
)
def test_bad_serve_arguments_are_one_line_exit_2(args: list[str], tmp_path: Path) -> None:
    for program in ([LOGIST, "serve"], [SERVER]):
        proc = subprocess.run(
            [*program, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
        assert proc.returncode == 2, (program, args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr and "error" in proc.stderr


def test_bad_tokens_and_a_busy_port_are_one_line_exit_2(tmp_path: Path) -> None:
    readable = tmp_path / "token"
    readable.write_text("a-long-enough-token-but-world-readable")
    readable.chmod(0o644)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [
            (["--tcp", f"127.0.0.1:{port}"], {}),
            (["--tcp", "127.0.0.1:0", "--token-file", str(readable)], {}),
            (["--tcp", "127.0.0.1:0"], {"LOGIST_TOKEN": "short"}),
        ]
        for args, env in cases:
            proc = subprocess.run(
                [LOGIST, "serve", *args],
                capture_output=True,
                text=True,
                timeout=60,
                env=dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path), **env),
                stdin=subprocess.DEVNULL,
            )
            assert proc.returncode == 2, (args, proc.stderr)
            assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert "Traceback" not in proc.stderr
            if "LOGIST_TOKEN" not in env and "--token-file" not in args:
                assert proc.stderr.endswith(": Address already in use\n"), proc.stderr
    assert (
        "chmod 600"
        in subprocess.run(
            [LOGIST, "serve", "--tcp", "127.0.0.1:0", "--token-file", str(readable)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        ).stderr
    )


def test_a_client_leaving_mid_accept_does_not_hold_the_repository(
    server: TcpServer, tmp_path: Path
) -> None:
    """An editor disconnects while the server waits for its `workspace/applyEdit` answer: the
    accept ends (a conflict: nothing applied), the working-tree lock is released, and another
    client accepts the job."""
    repo = make_repo(tmp_path / "repo")
    original = (repo / "a.txt").read_text()
    leaving = RawClient.connect(server.port)
    assert "result" in leaving.initialize(repo, server.token)
    uri = (repo / "a.txt").resolve().as_uri()
    leaving.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1, "text": original}},
    )
    job_id = _job_in_review(leaving, repo, "half accepted")
    leaving.unanswered.add("workspace/applyEdit")
    leaving.send_raw(
        json.dumps(
            {"jsonrpc": "2.0", "id": 99, "method": "logist/acceptJob", "params": {"jobId": job_id}}
        ).encode()
    )
    leaving.wait_server_request("workspace/applyEdit")
    leaving.drop()
    other = RawClient.connect(server.port)
    assert "result" in other.initialize(repo, server.token)
    accepted = other.request("logist/acceptJob", {"jobId": job_id}, timeout=60)
    assert accepted["result"]["status"] == "accepted", accepted
    assert (repo / "a.txt").read_text() == original + "logist-mock: half accepted\n"
    other.close()


def test_the_token_file_never_goes_through_a_symlink_or_into_an_open_directory(
    tmp_path: Path,
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (runtime / "logist").symlink_to(elsewhere)
    proc = subprocess.run(
        [LOGIST, "serve", "--tcp", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, XDG_RUNTIME_DIR=str(runtime)),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "not a directory of yours" in proc.stderr
    assert list(elsewhere.iterdir()) == []

    # a directory others can enter is closed first; without XDG_RUNTIME_DIR, XDG_STATE_HOME
    state = tmp_path / "state"
    (state / "logist").mkdir(parents=True, mode=0o755)
    (state / "logist").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}
    server = TcpServer(None, env=dict(env, XDG_STATE_HOME=str(state)))
    try:
        assert server.token_file is not None
        assert server.token_file.parent == state / "logist"
        assert stat.S_IMODE(server.token_file.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(server.token_file.stat().st_mode) == 0o600
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TcpServer]:
    started = TcpServer(tmp_path_factory.mktemp("runtime") / "run")
    yield started
    started.stop()


def _replies(data: bytes) -> list[dict[str, object]]:
    """The LSP messages in `data` (what the server sent before it closed)."""
    messages = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data[:200]
        headers = dict(line.split(b":", 1) for line in head.split(b"\r\n"))
        length = int(headers[b"Content-Length"])
        messages.append(json.loads(rest[:length]))
        data = rest[length:]
    return messages


LISTING = b'{"jsonrpc": "2.0", "id": 1, "method": "logist/listJobs", "params": {}}'
PIECES = st.sampled_from(
    [
        b"Content-Length: %d\r\n" % len(LISTING),
        b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n",
        b"\r\n",
        LISTING,
        b"POST / HTTP/1.1\r\n",
        b"Host: 127.0.0.1\r\n",
        b"Content-Length: 0\r\n",
        b'{"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {}}',
        b"\n",
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(PIECES | st.binary(max_size=40), max_size=8))
def test_whatever_a_stranger_sends_it_gets_at_most_one_error(
    shared_server: TcpServer, chunks: list[bytes]
) -> None:
    """Any bytes from a client without the token: the server answers with at most one error
    (never a result), then closes; it stays up and never executes anything."""
    with socket.create_connection(("127.0.0.1", shared_server.port)) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(b"".join(chunks))
            sock.shutdown(socket.SHUT_WR)  # the end of what it sends
        replies = _replies(_recv_all(sock))
    assert len(replies) <= 1, replies
    for reply in replies:
        assert "result" not in reply and reply["error"]["code"] in (-32001, -32700, -32600)  # type: ignore[index]
    assert shared_server.alive()


def test_strangers_holding_connections_do_not_block_the_editor(
    shared_server: TcpServer, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo")
    idle = [socket.create_connection(("127.0.0.1", shared_server.port)) for _ in range(20)]
    try:
        for number, sock in enumerate(idle):
            sock.sendall(b"Content-Length: 100\r\n" if number % 2 else b"Content-Le")
        client = RawClient.connect(shared_server.port)
        assert "result" in client.initialize(repo, shared_server.token)
        assert client.request("logist/listJobs", {})["result"] == []
        client.close()
    finally:
        for sock in idle:
            sock.close()


def test_a_stranger_with_an_object_id_is_refused_with_a_null_id(
    server: TcpServer, tmp_path: Path
) -> None:
    """Even with the right token, an `initialize` whose id is an object is InvalidRequest
    with id null, the connection closes, and the server logs no traceback."""
    params = {"processId": None, "rootUri": None, "capabilities": {},
              "initializationOptions": {"token": server.token}}  # fmt: skip
    message = {"jsonrpc": "2.0", "id": {"a": 1}, "method": "initialize", "params": params}
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(_framed(message))
        replies = _replies(_recv_all(sock))
    assert [(r["id"], r["error"]["code"]) for r in replies] == [(None, -32600)]  # type: ignore[index]
    assert server.alive()
    assert "Traceback" not in server.stderr() and "ERROR" not in server.stderr()


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed `sock` (without waiting: no data means still open)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset: it closed with our unread bytes in its buffer
        return True
    finally:
        sock.settimeout(timeout)


def test_unauthenticated_connections_are_capped_and_the_editor_still_gets_in(
    server: TcpServer, tmp_path: Path
) -> None:
    """A local process opening connections that each announce a 1 MiB body and send half of
    it: at most 16 wait at once (the oldest are closed), so memory stays bounded, and the
    editor connecting after them still gets in."""

    half = b"Content-Length: 1048576\r\n\r\n" + b"x" * (512 * 1024)
    strangers = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
    for sock in strangers:
        sock.settimeout(60)  # guards a hang only
    try:
        for sock in strangers:
            with contextlib.suppress(OSError):  # an early one may be closed already
                sock.sendall(half)
        assert wait_for(lambda: sum(map(_closed_by_server, strangers)) == 40 - 16, timeout=60)
        open_ones = [sock for sock in strangers if not _closed_by_server(sock)]
        assert open_ones == strangers[-16:]  # the oldest went first
        client = RawClient.connect(server.port)
        assert "result" in client.initialize(make_repo(tmp_path / "repo"), server.token)
        assert client.request("logist/listJobs", {})["result"] == []
        # The editor took a waiting place while it authenticated: one more stranger went.
        assert wait_for(lambda: sum(map(_closed_by_server, strangers)) == 40 - 15, timeout=60)
        client.close()
    finally:
        for sock in strangers:
            sock.close()
    assert server.alive()


def test_sigterm_with_open_connections_ends_quietly(server: TcpServer, tmp_path: Path) -> None:
    """Stopping the server with an editor connected, a stranger half-way through a body and
    an idle socket: exit 0, and no traceback (CancelledError) in the log."""
    client = RawClient.connect(server.port)
    assert "result" in client.initialize(make_repo(tmp_path / "repo"), server.token)
    half = socket.create_connection(("127.0.0.1", server.port))
    half.sendall(b"Content-Length: 1000\r\n\r\n{")
    idle = socket.create_connection(("127.0.0.1", server.port))
    try:
        assert client.request("logist/listJobs", {})["result"] == []
        assert server.stop() == 0
    finally:
        client.close()
        half.close()
        idle.close()

    assert wait_for(lambda: server.stderr() is not None and "" in server.lines, timeout=30)
    log = server.stderr()
    assert "Traceback" not in log and "ERROR" not in log and "CancelledError" not in log, log

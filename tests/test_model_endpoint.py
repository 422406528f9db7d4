"""The scripted model endpoint's core, through a real HTTP client (urllib, http.client) and a
tiny dialect defined here: turns in order, failures, stalls, the final text, the log and the
token totals, keep-alive, concurrency, side calls and dialects not written yet."""

from __future__ import annotations

import gzip
import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from model_endpoint import FINAL_TEXT, ModelEndpoint, tokens


class TinyDialect:
    """`POST /tiny/chat`: a reply is {"text", "calls", "usage"}; SSE when `stream` is true.
    Served tokens: input = request body / 4, output = the reply's text + calls JSON / 4."""

    NAME = "tiny"

    @staticmethod
    def matches(method: str, path: str) -> bool:
        return method == "POST" and path.split("?", 1)[0] in ("/tiny/chat", "/tiny/count")

    @staticmethod
    def side_reply(method: str, path: str, body: bytes) -> tuple[bytes, str, dict[str, int]] | None:
        if path != "/tiny/count":
            return None
        return json.dumps({"count": tokens(body)}).encode(), "application/json", {}

    @staticmethod
    def reply(turn: Mapping[str, Any], body: bytes, path: str) -> tuple[bytes, str, dict[str, int]]:
        request = json.loads(body)
        calls = [{"id": c.get("id", f"call_{i}"), "name": c["name"], "arguments": c["arguments"]}
                 for i, c in enumerate(turn.get("tools", []))]  # fmt: skip
        content = {"text": turn.get("text"), "calls": calls}
        served = {"input": tokens(body), "output": tokens(json.dumps(content))}
        answer = dict(content, usage=served, model=request.get("model"))
        if request.get("stream"):
            return f"data: {json.dumps(answer)}\n\n".encode(), "text/event-stream", served
        return json.dumps(answer).encode(), "application/json", served

    @staticmethod
    def error_body(status: int, message: str) -> bytes:
        return json.dumps({"error": {"status": status, "message": message}}).encode()


class StubDialect:
    """A dialect not written yet, like the stubs in `dialects/`."""

    NAME = "stub"

    @staticmethod
    def matches(method: str, path: str) -> bool:
        raise NotImplementedError("the stub dialect is not written yet: owned by nobody")


@pytest.fixture
def endpoint() -> Iterator[ModelEndpoint]:
    with ModelEndpoint(dialects=[StubDialect, TinyDialect]) as served:
        yield served


def post(
    endpoint: ModelEndpoint, body: dict[str, Any], path: str = "/tiny/chat"
) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        endpoint.url + path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as failed:
        return failed.code, dict(failed.headers), failed.read()


def test_turns_are_served_in_order_then_the_final_text(endpoint: ModelEndpoint) -> None:
    endpoint.script(
        {"text": "first"},
        {"tools": [{"name": "edit", "arguments": {"path": "a.txt"}, "id": "c1"}]},
    )
    answers = [json.loads(post(endpoint, {"model": "m1", "n": i})[2]) for i in range(3)]
    assert [a["text"] for a in answers] == ["first", None, FINAL_TEXT]
    assert answers[1]["calls"] == [{"id": "c1", "name": "edit", "arguments": {"path": "a.txt"}}]
    assert [(e.kind, e.turn, e.model, e.status) for e in endpoint.log] == [
        ("turn", 0, "m1", 200), ("turn", 1, "m1", 200), ("final", None, "m1", 200),
    ]  # fmt: skip
    assert endpoint.remaining == 0


def test_tokens_are_what_was_served_and_add_up(endpoint: ModelEndpoint) -> None:
    endpoint.script({"text": "x" * 401}, {"text": "short"})
    bodies = [{"model": "m", "stream": False, "pad": "p" * 999}, {"model": "m", "stream": True}]
    usages = []
    for body in bodies:
        status, _, raw = post(endpoint, body)
        assert status == 200
        text = raw.decode()
        payload = json.loads(text[len("data: ") :] if text.startswith("data: ") else text)
        usages.append(payload["usage"])
    log = endpoint.log
    assert [e.streamed for e in log] == [False, True]
    for entry, body, usage in zip(log, bodies, usages, strict=True):
        assert entry.input == tokens(json.dumps(body)) == usage["input"]
        assert entry.output == usage["output"]
        assert entry.json() == body
    totals = endpoint.totals()
    assert totals["input"] == sum(u["input"] for u in usages)
    assert totals["output"] == sum(u["output"] for u in usages)
    assert (totals["requests"], totals["served"], totals["refused"]) == (2, 2, 0)


@pytest.mark.parametrize("status", [400, 401, 402, 429, 500])
def test_failures_answer_the_status_with_the_dialects_error_body(
    endpoint: ModelEndpoint, status: int
) -> None:
    endpoint.script({"error": status, "times": 2, "headers": {"Retry-After": "0"}})
    endpoint.script({"text": "after"})
    for _ in range(2):
        code, headers, raw = post(endpoint, {"model": "m"})
        assert code == status
        assert headers["Retry-After"] == "0"
        error = json.loads(raw)["error"]
        assert error["status"] == status and error["message"]
    assert json.loads(post(endpoint, {"model": "m"})[2])["text"] == "after"
    assert [(e.kind, e.status, e.input, e.output) for e in endpoint.log][:2] == [
        ("error", status, 0, 0)
    ] * 2
    totals = endpoint.totals()
    assert (totals["refused"], totals["served"]) == (2, 1)
    assert totals["input"] == endpoint.log[2].input


def test_a_stall_sends_headers_then_nothing_until_the_client_gives_up(
    endpoint: ModelEndpoint,
) -> None:
    endpoint.script({"stall": True}, {"text": "after the stall"})
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=1.0)
    conn.request("POST", "/tiny/chat", body=json.dumps({"model": "m", "stream": True}))
    response = conn.getresponse()
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    with pytest.raises(socket.timeout):
        response.read(1)
    (entry,) = endpoint.wait_for_requests(1, timeout=30)
    assert (entry.kind, entry.streamed, entry.turn, entry.open) == ("stall", True, 0, True)
    response.close()
    conn.close()
    endpoint.wait_stalls_ended(timeout=30)  # the endpoint saw the client give up
    assert not entry.open
    # The stall consumed its turn; the next request gets the next one.
    assert json.loads(post(endpoint, {"model": "m"})[2])["text"] == "after the stall"
    assert endpoint.totals()["stalled"] == 1


def test_stop_ends_a_stalled_response() -> None:
    endpoint = ModelEndpoint(dialects=[TinyDialect]).start()
    endpoint.script({"stall": True})
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=60)
    conn.request("POST", "/tiny/chat", body=b"{}")
    response = conn.getresponse()
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(response.read()))
    reader.start()
    endpoint.stop()
    reader.join(timeout=60)
    assert not reader.is_alive() and got == [b""]
    assert [(e.kind, e.open) for e in endpoint.log] == [("stall", False)]


def test_unknown_paths_and_unwritten_dialects_get_404_and_consume_no_turn(
    endpoint: ModelEndpoint,
) -> None:
    endpoint.script({"text": "kept"})
    code, _, raw = post(endpoint, {"model": "m"}, path="/v1/unknown")
    assert code == 404
    assert "no dialect serves POST /v1/unknown" in raw.decode()
    assert "the stub dialect is not written yet" in raw.decode()
    assert json.loads(post(endpoint, {})[2])["text"] == "kept"
    assert [e.kind for e in endpoint.log] == ["unimplemented", "turn"]
    assert endpoint.totals()["unmatched"] == 1


def test_a_side_call_is_answered_without_consuming_a_turn(endpoint: ModelEndpoint) -> None:
    endpoint.script({"text": "scripted"})
    code, _, raw = post(endpoint, {"model": "m", "q": "abcd"}, path="/tiny/count")
    assert code == 200 and json.loads(raw)["count"] == tokens(
        json.dumps({"model": "m", "q": "abcd"})
    )
    assert json.loads(post(endpoint, {"model": "m"})[2])["text"] == "scripted"
    assert (endpoint.log[0].kind, endpoint.log[0].turn, endpoint.log[0].input) == ("side", None, 0)


def test_keep_alive_and_gzip_bodies(endpoint: ModelEndpoint) -> None:
    endpoint.script({"text": "one"}, {"text": "two"})
    conn = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
    body = json.dumps({"model": "gz"}).encode()
    texts = []
    for encoded, headers in ((body, {}), (gzip.compress(body), {"Content-Encoding": "gzip"})):
        conn.request("POST", "/tiny/chat", body=encoded, headers=headers)
        texts.append(json.loads(conn.getresponse().read())["text"])
    conn.close()
    assert texts == ["one", "two"]
    assert [e.model for e in endpoint.log] == ["gz", "gz"]
    assert endpoint.log[1].input == tokens(body)


def test_concurrent_requests_each_take_a_distinct_turn(endpoint: ModelEndpoint) -> None:
    count = 12
    endpoint.script([{"text": f"t{i}"} for i in range(count)])
    texts: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        text = json.loads(post(endpoint, {"model": "m"})[2])["text"]
        with lock:
            texts.append(text)

    workers = [threading.Thread(target=one) for _ in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert sorted(texts) == sorted(f"t{i}" for i in range(count))
    assert sorted(e.turn for e in endpoint.log if e.turn is not None) == list(range(count))


def test_clear_drops_the_unserved_turns_only(endpoint: ModelEndpoint) -> None:
    endpoint.script({"text": "one"}, {"text": "two"}, {"text": "three"})
    assert json.loads(post(endpoint, {})[2])["text"] == "one"
    assert endpoint.clear() == 2 and endpoint.remaining == 0
    endpoint.script({"text": "fresh"})
    assert json.loads(post(endpoint, {})[2])["text"] == "fresh"
    assert [e.turn for e in endpoint.log] == [0, 1]

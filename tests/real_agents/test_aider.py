"""The real aider CLI (0.86.2) through Logist, against the scripted endpoint on 127.0.0.1
(OpenAI chat completions; aider edits with a SEARCH/REPLACE block in the model's text): an
edit through `logist run` and through the language server, 401 and a 400 budget refusal
(aider exits 0 after both: the job fails all the same, with the reason), 429, a stalled
stream, a rework round (aider keeps no session: the step says so), `--max-cost`.

aider's token figures are its own rounded estimates (`2.4k sent`): the record is checked
against what the endpoint served within that rounding, not for equality.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import job_events, make_repo, show_job
from logist_server.providers.agents.aider_parser import usage_of
from model_endpoint import ModelEndpoint
from real_agents.chat_agents import (
    BEFORE,
    EDIT,
    agent_options,
    argv_of,
    assert_edit_in_review,
    assert_key_kept,
    isolate,
    kinds,
    lsp_options,
    result_text,
    run_job,
    serve,
    supervise_with,
)
from review_harness import lsp_session

MODEL = "gpt-4o"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    isolate(monkeypatch, home, "aider")
    caches = home / ".aider" / "caches"
    # Else aider fetches litellm's price list from GitHub at start; `{}` is not enough (aider
    # takes an empty table for a missing one): one entry that names no real model.
    caches.mkdir(parents=True)
    (caches / "model_prices_and_context_window.json").write_text('{"logist-test-none": {}}')
    yield make_repo(tmp_path / "repo", {"a.txt": f"{BEFORE}\n".encode()})


def options(endpoint: ModelEndpoint, *extra: str) -> list[str]:
    return agent_options("aider", endpoint, MODEL, *extra)


def printed_usage(repo: Path, job_id: str) -> tuple[int, int]:
    """The tokens aider printed (`Tokens: 2.0k sent, 25 received.`), added up over steps."""
    sent = received = 0
    for output in sorted((repo / ".logist" / "jobs" / job_id).glob("step-*/output.log")):
        for line in output.read_text().splitlines():
            usage = usage_of(line)
            if usage is not None:
                sent, received = sent + usage.input_tokens, received + usage.output_tokens
    return sent, received


def test_edit_job_through_logist_run(repo: Path) -> None:
    with serve(EDIT) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet")
        totals = endpoint.totals()
    assert_edit_in_review(repo, record)
    usage = record["result"]["usage"]
    assert totals["served"] == 1
    # aider reports its own estimate (its tokenizer's count, rounded to 0.1k), not the API's
    # usage: the record holds exactly what aider printed, which is near what was served.
    assert (usage["input_tokens"], usage["output_tokens"]) == printed_usage(repo, record["id"])
    assert 0.7 * totals["input"] <= usage["input_tokens"] <= 1.3 * totals["input"], totals
    assert 0 < usage["output_tokens"] <= totals["output"], totals
    # aider prices gpt-4o itself (litellm's table): its own figure, labelled reported.
    assert usage["cost_usd"] > 0 and usage["cost_source"] == "reported", usage
    argv = argv_of(repo, record["id"], 1)
    assert "--yes-always" in argv and "--no-auto-commits" in argv and "--no-gitignore" in argv
    assert argv[-2:] == ["--", "a.txt"] and f"--model=openai/{MODEL}" in argv
    assert_key_kept(endpoint, repo, record["id"])
    assert {"file_change", "usage"} <= set(kinds(repo, record["id"]))
    # aider's chat history went to the step's directory, not into the change.
    assert record["result"]["diff"]["paths"] == ["a.txt"]


async def test_edit_job_through_the_language_server(repo: Path) -> None:
    with serve(EDIT) as endpoint:
        async with lsp_session([repo]) as editor:
            created = await editor.request("logist/createJob", {
                "prompt": "greet", "uri": (repo / "a.txt").as_uri(), "agent": "aider",
                "model": MODEL, "agentOptions": lsp_options(endpoint)})  # fmt: skip
            job_id = str(created["jobId"])
            await editor.wait_status(job_id, {"review", "failed", "stuck", "halted"}, 300)
    assert_edit_in_review(repo, show_job(repo, job_id))


def test_401_fails_with_an_authentication_reason_although_aider_exits_0(repo: Path) -> None:
    with serve({"error": 401, "message": "Incorrect API key provided", "times": 3}) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         "--retries", "2", expect=1)  # fmt: skip
    assert record["status"] == "failed"
    assert "authentication failed" in record["status_reason"], record["status_reason"]
    assert len(record["steps"]) == 1  # not retried
    assert record["steps"][0]["exit_code"] == 1  # aider's 0, made honest by the launcher


def test_a_400_budget_refusal_fails_with_the_reason_although_aider_exits_0(repo: Path) -> None:
    refusal = {"error": 400, "message": "Logist budget of 100 tokens exhausted (2300 used)"}
    with serve(refusal) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         expect=1)  # fmt: skip
    assert record["status"] in ("failed", "halted")
    assert "Logist budget of 100 tokens exhausted" in record["status_reason"]
    assert "made no edit" in record["status_reason"]


def test_429_is_retried(repo: Path) -> None:
    # aider (litellm) retries a rate limit itself, silently: a 429 never reaches Logist's
    # policy (which would see `litellm.RateLimitError` only once aider gave up, after about
    # a minute of its own retries); the job ends in review with the edit, in one step.
    script = [{"error": 429, "message": "Rate limit reached"}, EDIT]
    with serve(*script) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet")
        assert endpoint.totals()["refused"] == 1
    assert_edit_in_review(repo, record)
    assert len(record["steps"]) == 1


def test_a_stalled_stream_ends_stuck(repo: Path) -> None:
    with serve({"stall": True}) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         "--hang-timeout", "30", expect=1)  # fmt: skip
        assert endpoint.totals()["stalled"] == 1
    assert record["status"] == "stuck", record["status_reason"]


def test_a_rework_round_says_aider_cannot_resume(repo: Path) -> None:
    again = {"edit": {"path": "a.txt", "old": "greeting = hello world",
                      "new": "greeting = hello, world"}}  # fmt: skip
    script = [EDIT, {"text": "VERDICT: CHANGES\n- add a comma"}, again,
              {"text": "VERDICT: APPROVE"}]  # fmt: skip
    with serve(*script) as endpoint:
        supervise_with(endpoint)
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         "--supervisor", timeout=900)  # fmt: skip
    assert record["status"] == "review", record["status_reason"]
    steps = record["steps"]
    assert [(s["role"], s["why"]) for s in steps] == [
        ("worker", "start"), ("supervisor", "review"),
        ("worker", "rework"), ("supervisor", "review"),
    ]  # fmt: skip
    notes = [e["data"].get("text", "") for e in job_events(repo, record["id"])
             if e["kind"] == "message"]  # fmt: skip
    assert any("aider keeps no session to resume: step 3 (rework)" in str(n) for n in notes)
    assert result_text(repo, record) == "greeting = hello, world\n"


def test_max_cost_halts_it(repo: Path) -> None:
    # One long reply: aider's own cost for it passes the limit.
    with serve({"text": "x " * 20_000}, EDIT) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         "--max-cost", "0.01", expect=1)  # fmt: skip
    assert record["status"] == "halted", record["status_reason"]
    assert "cost" in record["status_reason"]
    assert record["result"]["usage"]["cost_usd"] > 0.01

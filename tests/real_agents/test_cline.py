"""The real cline CLI (3.0.65) through Logist, against the scripted endpoint on 127.0.0.1
(OpenAI chat completions): an edit through `logist run` (tools approved: `--allow execute`)
and through the language server, the headless approval refusal as a question answered with
`allow`, 401, 429, a stalled stream, a 400 budget refusal, a rework round (cline cannot
resume in JSON mode: the step says so), `--max-cost`, and no process outliving the job.

Each test has its own HOME; the job's `base_url` gives cline a configuration directory of its
own in the job's directory, without the key (cline reads it from OPENAI_API_KEY, set by
Logist's launcher from the variable `api_key_env` names).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    job_events,
    list_jobs,
    logist_running,
    make_repo,
    run_logist,
    show_job,
    wait_for,
)
from model_endpoint import ModelEndpoint
from real_agents.chat_agents import (
    BEFORE,
    DONE,
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
    survivors,
)
from real_agents.conftest import agent_env
from review_harness import lsp_session

MODEL = "gpt-4o"
ALLOW = ("--allow", "execute")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    isolate(monkeypatch, tmp_path / "home", "cline")
    yield make_repo(tmp_path / "repo", {"a.txt": f"{BEFORE}\n".encode()})


def options(endpoint: ModelEndpoint, *extra: str) -> list[str]:
    return agent_options("cline", endpoint, MODEL, *extra)


def test_edit_job_through_logist_run(repo: Path) -> None:
    with serve(EDIT, DONE) as endpoint:
        record = run_job(repo, *options(endpoint), *ALLOW, "--file", "a.txt", "--prompt", "greet")
        totals = endpoint.totals()
    assert_edit_in_review(repo, record)
    usage = record["result"]["usage"]
    # cline reports each call's exact usage (its per-call `usage` events).
    assert (usage["input_tokens"], usage["output_tokens"]) == (totals["input"], totals["output"])
    # openai-compatible prices nothing (totalCost 0): Logist computes the cost.
    assert usage["cost_usd"] > 0 and usage["cost_source"] == "computed", usage
    assert record["steps"][0]["session_id"].startswith("conv_")
    argv = argv_of(repo, record["id"], 1)
    assert "--json" in argv and argv[argv.index("--auto-approve") + 1] == "true"
    assert "--config" in argv  # the job's own configuration, not the user's ~/.cline
    assert not (Path(os.environ["HOME"]) / ".cline" / "data" / "settings").exists()
    assert_key_kept(endpoint, repo, record["id"])
    assert {"tool_call", "tool_result", "file_change", "usage", "session"} <= set(
        kinds(repo, record["id"])
    )
    # CLINE_SESSION_BACKEND_MODE=local: no hub daemon outlives the job.
    assert survivors(Path(os.environ["HOME"])) == []


async def test_edit_job_through_the_language_server(repo: Path) -> None:
    with serve(EDIT, DONE) as endpoint:
        async with lsp_session([repo]) as editor:
            created = await editor.request("logist/createJob", {
                "prompt": "greet", "uri": (repo / "a.txt").as_uri(), "agent": "cline",
                "model": MODEL, "agentOptions": lsp_options(endpoint),
                "permissions": {"execute": "allow"}})  # fmt: skip
            job_id = str(created["jobId"])
            await editor.wait_status(job_id, {"review", "failed", "stuck", "halted"}, 300)
    assert_edit_in_review(repo, show_job(repo, job_id))


def waiting_job(repo: Path) -> dict[str, Any] | None:
    for job in list_jobs(repo):
        if job["status"] == "needs_input":
            record = show_job(repo, job["id"])
            if record["steps"] and record["steps"][-1]["outcome"] == "asked":
                return record
    return None


def test_a_refused_tool_asks_and_allow_runs_it_approved(repo: Path) -> None:
    # `execute: ask` (the default): cline runs without auto-approval, refuses the edit
    # headless, and the job asks; `allow` reruns the task with tools approved.
    with serve(EDIT, DONE, EDIT, DONE) as endpoint:
        env = agent_env(Path(os.environ["HOME"]))
        with logist_running("run", "--json", *options(endpoint), "--file", "a.txt",
                            "--prompt", "greet", cwd=repo, env=env) as runner:  # fmt: skip
            job = wait_for(lambda: waiting_job(repo), timeout=300, interval=1)
            question = job["question"]
            assert question["kind"] == "permission" and question["options"] == ["allow", "deny"]
            assert (
                question["text"].startswith("cline asks leave to use")
                and "a.txt" in question["text"]
            )
            first = argv_of(repo, job["id"], 1)
            assert first[first.index("--auto-approve") + 1] == "false"
            run_logist("job", "answer", job["id"], "allow", cwd=repo, env=env)
            runner.communicate(timeout=300)
    record = show_job(repo, job["id"])
    assert_edit_in_review(repo, record)
    argv = argv_of(repo, record["id"], 2)
    assert argv[argv.index("--auto-approve") + 1] == "true"


def test_401_fails_with_an_authentication_reason(repo: Path) -> None:
    with serve({"error": 401, "message": "Incorrect API key provided", "times": 5}) as endpoint:
        record = run_job(repo, *options(endpoint), *ALLOW, "--file", "a.txt", "--prompt", "greet",
                         "--retries", "2", expect=1)  # fmt: skip
    assert record["status"] == "failed"
    assert "authentication failed" in record["status_reason"], record["status_reason"]
    assert len(record["steps"]) == 1  # not retried


def test_429_is_retried_by_logist(repo: Path) -> None:
    # cline retries a 429 itself (6 attempts in all) and then reports only the server's
    # message, without the status: OpenAI's own wording is what the observer recognises.
    limited = {"error": 429, "times": 6, "headers": {"Retry-After": "0"},
               "message": "Rate limit reached for gpt-4o in organization org-test on "
                          "requests per min (RPM): Limit 3, Used 3, Requested 1."}  # fmt: skip
    with serve(limited, EDIT, DONE) as endpoint:
        record = run_job(repo, *options(endpoint), *ALLOW, "--file", "a.txt", "--prompt", "greet",
                         "--retries", "2")  # fmt: skip
        assert endpoint.totals()["refused"] == 6
    assert record["status"] == "review", record["status_reason"]
    assert record["steps"][0]["outcome"] == "retry" and record["steps"][1]["why"] == "retry"
    assert "rate limit" in (record["steps"][0]["failure"] or "")
    assert result_text(repo, record) == "greeting = hello world\n"


def test_a_stalled_stream_ends_stuck(repo: Path) -> None:
    with serve({"stall": True}) as endpoint:
        record = run_job(repo, *options(endpoint), *ALLOW, "--file", "a.txt", "--prompt", "greet",
                         "--hang-timeout", "30", expect=1)  # fmt: skip
        assert endpoint.totals()["stalled"] == 1
    assert record["status"] == "stuck", record["status_reason"]


def test_a_400_budget_refusal_fails_with_the_reason(repo: Path) -> None:
    refusal = {"error": 400, "message": "Logist budget of 100 tokens exhausted (2300 used)"}
    with serve(refusal) as endpoint:
        record = run_job(repo, *options(endpoint), *ALLOW, "--file", "a.txt", "--prompt", "greet",
                         expect=1)  # fmt: skip
    assert record["status"] in ("failed", "halted")
    assert "Logist budget of 100 tokens exhausted" in record["status_reason"]


def test_a_rework_round_says_it_cannot_resume(repo: Path) -> None:
    again = {"edit": {"path": "a.txt", "old": "greeting = hello world",
                      "new": "greeting = hello, world"}}  # fmt: skip
    script = [EDIT, DONE, {"text": "VERDICT: CHANGES\n- add a comma"}, again, DONE,
              {"text": "VERDICT: APPROVE"}]  # fmt: skip
    with serve(*script) as endpoint:
        supervise_with(endpoint)
        record = run_job(repo, *options(endpoint), *ALLOW, "--file", "a.txt", "--prompt", "greet",
                         "--supervisor", timeout=900)  # fmt: skip
    assert record["status"] == "review", record["status_reason"]
    steps = record["steps"]
    assert [(s["role"], s["why"]) for s in steps] == [
        ("worker", "start"), ("supervisor", "review"),
        ("worker", "rework"), ("supervisor", "review"),
    ]  # fmt: skip
    assert steps[2]["resumed_session"] is None
    resumes = [e["data"] for e in job_events(repo, record["id"]) if e["kind"] == "resume"]
    assert any(r["step"] == 3 and r["resumed"] is False and "cannot resume" in r["reason"]
               for r in resumes), resumes  # fmt: skip
    assert result_text(repo, record) == "greeting = hello, world\n"


def test_max_cost_halts_it(repo: Path) -> None:
    # The first call costs about $0.015; a long reply then makes the second one large: its
    # computed cost passes the limit and the job halts mid-run.
    script = [EDIT, {"text": "x" * 400_000}, DONE]
    with serve(*script) as endpoint:
        record = run_job(repo, *options(endpoint), *ALLOW, "--file", "a.txt", "--prompt", "greet",
                         "--max-cost", "0.05", expect=1)  # fmt: skip
        assert endpoint.totals()["served"] >= 2
    assert record["status"] == "halted", record["status_reason"]
    assert "cost" in record["status_reason"]
    assert record["result"]["usage"]["cost_usd"] > 0.05

"""The real opencode CLI (1.18.33) through Logist, against the scripted endpoint on 127.0.0.1
(OpenAI chat completions): an edit through `logist run` and through the language server, 401,
429, a stalled stream, a 400 budget refusal, the `ask` rule's refusal as a question, a
supervisor's rework round resuming the worker's session (`-s`), and `--max-cost`.

Each test has its own HOME; opencode gets its provider from `OPENCODE_CONFIG_CONTENT` (the
job's `base_url`), never from a file of the user's or the repository's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import list_jobs, logist_running, make_repo, run_logist, show_job, wait_for
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
)
from real_agents.conftest import agent_env
from review_harness import lsp_session

MODEL = "gpt-4o"
#: opencode prints nothing for its first seconds (start-up, more on a loaded machine).
HANG_S = "45"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    isolate(monkeypatch, tmp_path / "home", "opencode")
    yield make_repo(tmp_path / "repo", {"a.txt": f"{BEFORE}\n".encode()})


def options(endpoint: ModelEndpoint, *extra: str) -> list[str]:
    return agent_options("opencode", endpoint, MODEL, *extra)


def waiting_job(repo: Path) -> dict[str, Any] | None:
    """The job once its asking step ended and it waits for the answer."""
    for job in list_jobs(repo):
        if job["status"] == "needs_input":
            record = show_job(repo, job["id"])
            if record["steps"] and record["steps"][-1]["outcome"] == "asked":
                return record
    return None


def test_edit_job_through_logist_run(repo: Path) -> None:
    with serve(EDIT, DONE) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet")
        totals = endpoint.totals()
        seen = [(e.kind, e.input, e.output, len(e.body), e.headers) for e in endpoint.log]
    assert_edit_in_review(repo, record)
    usage = record["result"]["usage"]
    # opencode reports each call's exact usage: the record holds what the endpoint served.
    assert (usage["input_tokens"], usage["output_tokens"]) == (
        totals["input"], totals["output"]), seen  # fmt: skip
    assert totals["served"] == 2 and totals["unmatched"] == 0  # no title call, nothing else
    assert usage["cost_usd"] > 0 and usage["cost_source"] == "computed", usage
    assert record["steps"][0]["session_id"].startswith("ses_")
    argv = argv_of(repo, record["id"], 1)
    start = next(i for i, arg in enumerate(argv) if arg.endswith("/opencode"))  # after launchers
    assert argv[start + 1 : start + 4] == ["run", "--format", "json"] and "-s" not in argv
    assert argv[argv.index("-m") + 1] == f"logist/{MODEL}"
    assert_key_kept(endpoint, repo, record["id"])
    assert {"tool_call", "tool_result", "file_change", "usage", "session"} <= set(
        kinds(repo, record["id"])
    )


async def test_edit_job_through_the_language_server(repo: Path) -> None:
    with serve(EDIT, DONE) as endpoint:
        async with lsp_session([repo]) as editor:
            created = await editor.request("logist/createJob", {
                "prompt": "greet", "uri": (repo / "a.txt").as_uri(), "agent": "opencode",
                "model": MODEL, "agentOptions": lsp_options(endpoint)})  # fmt: skip
            job_id = str(created["jobId"])
            await editor.wait_status(job_id, {"review", "failed", "stuck", "halted"}, 300)
    assert_edit_in_review(repo, show_job(repo, job_id))


def test_401_fails_with_an_authentication_reason(repo: Path) -> None:
    with serve({"error": 401, "message": "Incorrect API key provided"}) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         "--retries", "2", expect=1)  # fmt: skip
    assert record["status"] == "failed"
    assert "authentication failed" in record["status_reason"]
    assert len(record["steps"]) == 1  # not retried


def test_429_is_retried_by_logist(repo: Path) -> None:
    # opencode retries a 429 itself a few times: the script refuses more often than that.
    script = [{"error": 429, "message": "Rate limit reached", "times": 6}, EDIT, DONE]
    with serve(*script) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         "--retries", "2")  # fmt: skip
    assert record["status"] == "review", record["status_reason"]
    first, second = record["steps"][:2]
    assert first["outcome"] == "retry" and second["why"] == "retry"
    assert "rate limit" in (first["failure"] or "")
    assert result_text(repo, record) == "greeting = hello world\n"


def test_a_stalled_stream_ends_stuck(repo: Path) -> None:
    with serve({"stall": True}) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         "--hang-timeout", HANG_S, expect=1)  # fmt: skip
        assert endpoint.totals()["stalled"] == 1
    assert record["status"] == "stuck", record["status_reason"]


def test_a_400_budget_refusal_fails_with_the_reason(repo: Path) -> None:
    refusal = {"error": 400, "message": "Logist budget of 100 tokens exhausted (2300 used)"}
    with serve(refusal) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         expect=1)  # fmt: skip
    assert record["status"] in ("failed", "halted")
    assert "Logist budget of 100 tokens exhausted" in record["status_reason"]


def test_a_rework_round_resumes_the_workers_session(repo: Path) -> None:
    again = {"edit": {"path": "a.txt", "old": "greeting = hello world",
                      "new": "greeting = hello, world"}}  # fmt: skip
    script = [EDIT, DONE, {"text": "VERDICT: CHANGES\n- add a comma"}, again, DONE,
              {"text": "VERDICT: APPROVE"}]  # fmt: skip
    with serve(*script) as endpoint:
        supervise_with(endpoint)
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         "--supervisor", timeout=900)  # fmt: skip
    assert record["status"] == "review", record["status_reason"]
    steps = record["steps"]
    assert [(s["role"], s["why"], s["verdict"]) for s in steps] == [
        ("worker", "start", None), ("supervisor", "review", "changes"),
        ("worker", "rework", None), ("supervisor", "review", "approve"),
    ]  # fmt: skip
    worker = steps[0]["session_id"]
    assert steps[2]["resumed_session"] == worker and steps[2]["session_id"] == worker
    argv = argv_of(repo, record["id"], 3)
    assert argv[argv.index("-s") + 1] == worker
    assert "-s" not in argv_of(repo, record["id"], 1)
    assert result_text(repo, record) == "greeting = hello, world\n"


def test_max_cost_halts_it(repo: Path) -> None:
    # The first call costs about $0.02; a long reply then makes the second one large: its
    # computed cost passes the limit and the job halts mid-run.
    script = [EDIT, {"text": "x" * 400_000}, DONE]
    with serve(*script) as endpoint:
        record = run_job(repo, *options(endpoint), "--file", "a.txt", "--prompt", "greet",
                         "--max-cost", "0.05", expect=1)  # fmt: skip
        assert endpoint.totals()["served"] >= 2
    assert record["status"] == "halted", record["status_reason"]
    assert "cost" in record["status_reason"]
    usage = record["result"]["usage"]
    assert usage["cost_source"] == "computed" and usage["cost_usd"] > 0.05


def test_the_ask_rule_refusal_asks_and_the_answer_resumes(repo: Path) -> None:
    # `execute: ask` (the default): headless opencode rejects the bash call and stops; the
    # job asks the user; `allow` resumes the session with bash allowed for that run.
    run = {"tool": "bash", "arguments": {"command": "echo hi > b.txt", "description": "write"}}
    with serve(run, run, DONE) as endpoint:  # the refused run makes one call and stops
        env = agent_env(Path(os.environ["HOME"]))
        with logist_running("run", "--json", *options(endpoint), "--file", "a.txt",
                            "--prompt", "greet", cwd=repo, env=env) as runner:  # fmt: skip
            job = wait_for(lambda: waiting_job(repo), timeout=300, interval=1)
            question = job["question"]
            assert question["kind"] == "permission" and question["options"] == ["allow", "deny"]
            assert "echo hi" in question["text"]
            assert not (Path(job["workspace"]["path"]) / "b.txt").exists()
            run_logist("job", "answer", job["id"], "allow", cwd=repo, env=env)
            runner.communicate(timeout=300)
    record = show_job(repo, job["id"])
    assert record["status"] == "review", record["status_reason"]
    asked, resumed = record["steps"][:2]
    assert resumed["why"] == "answer" and resumed["resumed_session"] == asked["session_id"]
    argv = argv_of(repo, record["id"], 2)
    assert argv[argv.index("-s") + 1] == asked["session_id"]
    assert "b.txt" in record["result"]["diff"]["paths"]

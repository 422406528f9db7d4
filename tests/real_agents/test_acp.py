"""Real agents over ACP through Logist (`--agent acp`), against the scripted endpoint on
127.0.0.1: codex-acp (OpenAI responses), claude-agent-acp (Anthropic messages) and
gemini --acp (Gemini) each end in review with the right diff; codex-acp's run is also the
permission round trip (a shell command is `execute: ask` by default: the job goes to
needs_input, `job answer` reaches the same live process, review follows); one job through
the language server; claude-agent-acp's 401 fails with the authentication reason.

Every test has its own HOME outside the temporary directories (codex refuses to create its
helpers under one) and nothing but 127.0.0.1 is reachable (proxies point at a closed port).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from conftest import job_events, logist_running, review_record, run_logist, show_job, wait_for
from model_endpoint import ModelEndpoint
from real_agents.acp_harness import (
    ACP_PROGRAMS,
    AFTER,
    CLAUDE_ENV,
    DONE,
    EDIT,
    agent_opts,
    assert_edit_in_review,
    edit_repo,
    events_text,
    isolated_home,
    lsp_job,
    result_text,
    set_env,
    write_gemini_settings,
)
from real_agents.acp_harness import run_job as _run_job

KEY_ENV = "LOGIST_TEST_ACP_KEY"
KEY = "sk-acp-test-7e2b91d04c"
#: `logist run` here has run_logist's 60 s before it counts as hung.
run_job = partial(_run_job, timeout=60)


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated HOME outside the temporary directories; the agents on PATH; a key."""
    with isolated_home(monkeypatch, "acp", KEY_ENV, KEY, programs=ACP_PROGRAMS) as path:
        yield path


@pytest.fixture
def endpoint(model_endpoint: ModelEndpoint) -> ModelEndpoint:
    return model_endpoint


@pytest.fixture
def repo(home: Path) -> Path:
    return edit_repo(home)


def codex_acp(endpoint: ModelEndpoint, *extra: str) -> list[str]:
    args = ["--agent", "acp", "--model", "gpt-5", "--agent-opt", "preset=codex-acp",
            "--agent-opt", f"base_url={endpoint.url}/v1",
            "--agent-opt", f"api_key_env={KEY_ENV}"]  # fmt: skip
    return args + agent_opts(*extra)


def kinds(repo: Path, job_id: str) -> list[str]:
    return [e["kind"] for e in job_events(repo, job_id)]


def test_codex_acp_permission_request_waits_for_the_answer(
    repo: Path, endpoint: ModelEndpoint
) -> None:
    """A shell command is `ask` by default: codex-acp's request becomes the job's question;
    the answer reaches the same bridge process, which lets codex-acp run it."""
    # codex-acp starts read-only: a command that asks to leave the sandbox is escalated.
    shell = {"tool": "exec_command", "arguments": {
        "cmd": "touch pwned.txt", "sandbox_permissions": "require_escalated",
        "justification": "need to write outside the sandbox"}}  # fmt: skip
    endpoint.script(shell, EDIT, DONE)
    with logist_running(
        "run", "--json", *codex_acp(endpoint), "--file", "a.txt", "--prompt", "greet", cwd=repo
    ) as runner:

        def waiting() -> dict[str, Any] | None:
            jobs = json.loads(run_logist("job", "list", "--json", cwd=repo).stdout or "[]")
            return next((j for j in jobs if j["status"] == "needs_input"), None)

        try:
            job = wait_for(waiting, timeout=120)
        except BaseException:
            (job,) = json.loads(run_logist("job", "list", "--json", cwd=repo).stdout)
            raise AssertionError(events_text(repo, job["id"])) from None
        record = show_job(repo, job["id"])
        question = record["question"]
        assert question["kind"] == "permission", question
        assert "touch pwned.txt" in question["text"]
        assert question["options"], question
        pid_before = record["steps"][0].get("runtime", {})
        run_logist("job", "answer", job["id"], "allow", cwd=repo)
        out, err = runner.communicate(timeout=180)
    record = review_record(runner.returncode, out, err)
    assert len(record["steps"]) == 1, "the same process went on after the answer"
    assert record["steps"][0].get("runtime", {}) == pid_before
    # The right diff: the approved command's file and the edit (`logist run --agent acp
    # --agent-opt preset=codex-acp --file a.txt` ends in review with it).
    assert record["result"]["diff"]["paths"] == ["a.txt", "pwned.txt"]
    assert result_text(repo, record) == AFTER
    assert record["steps"][0]["session_id"]
    events = job_events(repo, record["id"])
    assert {"path": "a.txt", "action": "modify"} in [
        e["data"] for e in events if e["kind"] == "file_change"
    ]
    assert all(e["data"]["id"] for e in events if e["kind"] == "tool_call")
    assert endpoint.totals()["served"] >= 2  # the key reached codex-acp; it is written nowhere
    for path in (repo / ".logist").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


async def test_codex_acp_edit_through_the_language_server(
    repo: Path, endpoint: ModelEndpoint
) -> None:
    endpoint.script(EDIT, DONE)
    record = await lsp_job(repo, {"model": "gpt-5", "agentOptions": {
        "preset": "codex-acp", "base_url": f"{endpoint.url}/v1",
        "api_key_env": KEY_ENV}}, timeout=180)  # fmt: skip
    assert_edit_in_review(repo, record)


def test_claude_agent_acp_edit_ends_in_review(
    repo: Path, endpoint: ModelEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, CLAUDE_ENV)
    endpoint.script({"read": "a.txt"}, EDIT, DONE)
    record = run_job(repo, "--agent", "acp", "--agent-opt", "preset=claude-agent-acp",
                     "--agent-opt", f"base_url={endpoint.url}",
                     "--agent-opt", f"api_key_env={KEY_ENV}",
                     "--file", "a.txt", "--prompt", "greet")  # fmt: skip
    assert_edit_in_review(repo, record)
    usage = record["result"]["usage"]
    served = endpoint.totals()
    assert served["served"] > 0 and served["unmatched"] == 0, served
    got = (usage["input_tokens"], usage["cache_read_tokens"], usage["output_tokens"])
    assert got == (served["input"], served["cached"], served["output"]), (usage, served)
    assert usage["cost_usd"] > 0 and usage["cost_source"] == "reported", usage


def test_gemini_acp_edit_ends_in_review(repo: Path, endpoint: ModelEndpoint, home: Path) -> None:
    write_gemini_settings(home)
    endpoint.script(EDIT, DONE)
    record = run_job(repo, "--agent", "acp", "--agent-opt", "preset=gemini",
                     "--model", "gemini-2.5-flash",
                     "--agent-opt", f"base_url={endpoint.url}",
                     "--agent-opt", f"api_key_env={KEY_ENV}",
                     "--file", "a.txt", "--prompt", "greet")  # fmt: skip
    assert_edit_in_review(repo, record)
    changes = [e["data"] for e in job_events(repo, record["id"]) if e["kind"] == "file_change"]
    assert {"path": "a.txt", "action": "modify"} in changes  # written through fs/write_text_file
    usage, served = record["result"]["usage"], endpoint.totals()
    calls = [(r.kind, r.model, r.input, r.output) for r in endpoint.log]
    assert all(model == "gemini-2.5-flash" for _, model, _, _ in calls), calls  # --model
    assert usage["input_tokens"] + usage["cache_read_tokens"] == served["input"], (usage, calls)
    assert usage["output_tokens"] + usage["reasoning_tokens"] == served["output"], (usage, calls)
    assert usage["cost_usd"] > 0 and usage["cost_source"] == "computed", usage


def test_claude_agent_acp_401_fails_with_an_authentication_reason(
    repo: Path, endpoint: ModelEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                          "DISABLE_TELEMETRY": "1", "CLAUDE_CODE_MAX_RETRIES": "0",
                          "IS_SANDBOX": "1"})  # fmt: skip
    # Every call is refused (claude-agent-acp makes side calls besides the main one).
    endpoint.script({"error": 401, "message": "invalid x-api-key", "times": 20})
    record = run_job(repo, "--agent", "acp", "--agent-opt", "preset=claude-agent-acp",
                     "--agent-opt", f"base_url={endpoint.url}",
                     "--agent-opt", f"api_key_env={KEY_ENV}", "--retries", "2",
                     "--file", "a.txt", "--prompt", "greet", expect=1)  # fmt: skip
    assert record["status"] == "failed", record["status_reason"]
    assert "authentication" in record["status_reason"], record["status_reason"]
    assert len(record["steps"]) == 1  # not retried: a key does not get better by waiting


def test_max_cost_halts_claude_agent_acp(
    repo: Path, endpoint: ModelEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """claude-agent-acp reports its cost (`usage_update`) once, at the end of the prompt
    turn: over `--max-cost` the job halts on the cost limit then, not mid-turn."""
    monkeypatch.setenv("IS_SANDBOX", "1")
    endpoint.script({"read": "a.txt"}, {"read": "a.txt"}, {"read": "a.txt"}, EDIT, DONE)
    record = run_job(repo, "--agent", "acp", "--agent-opt", "preset=claude-agent-acp",
                     "--agent-opt", f"base_url={endpoint.url}",
                     "--agent-opt", f"api_key_env={KEY_ENV}", "--max-cost", "0.01",
                     "--file", "a.txt", "--prompt", "greet", expect=1)  # fmt: skip
    assert record["status"] == "halted", record["status_reason"]
    assert "cost" in record["status_reason"]
    assert record["result"]["usage"]["cost_usd"] > 0.01

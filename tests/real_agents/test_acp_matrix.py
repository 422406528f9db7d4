"""The failure and session cells of issue 11's matrix for real agents over ACP (`--agent
acp`): claude-agent-acp (Anthropic messages), codex-acp (OpenAI responses) and `gemini
--acp` (Gemini) against the scripted endpoint on 127.0.0.1.

- the endpoint answering 401 ends failed with an authentication reason, not retried;
- a 429 is retried by Logist's policy: the next step ends in review with the edit, having
  continued the first step's session or said why it could not;
- a stalled stream ends stuck (the hang timeout);
- a 400 budget refusal ends failed with the endpoint's reason, read as a person reads it;
- a supervisor's rework round continues the worker's ACP session (the agent's next model
  call carries the first step's conversation), and where the agent cannot continue it the
  step's events say so;
- through the language server: a 429 retried, then a stalled stream ending stuck.

Every agent gets no retries of its own (claude `CLAUDE_CODE_MAX_RETRIES=0`, codex's model
provider `request_max_retries=0`, gemini `maxAttempts: 1`), so a failure reaches Logist's
policy at once. Every test has its own HOME outside the temporary directories (codex
refuses to create its helpers under one); nothing but 127.0.0.1 is reachable.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import job_events, run_logist
from model_endpoint import ModelEndpoint
from real_agents.acp_harness import (
    ACP_PROGRAMS,
    AFTER,
    CLAUDE_ENV,
    DONE,
    EDIT,
    READ,
    Turn,
    agent_opts,
    edit_repo,
    events_text,
    isolated_home,
    lsp_job,
    result_text,
    run_job,
)

KEY_ENV = "LOGIST_TEST_ACP_KEY"
KEY = "sk-acp-matrix-3f9c1e7a52"
BUDGET = "Logist budget of 100 tokens exhausted (2300 used)"
# codex retries a failed call by itself (5 times, with pauses): none here.
CODEX_NO_RETRIES = (
    "-c model_providers.logist.request_max_retries=0 -c model_providers.logist.stream_max_retries=0"
)


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated HOME outside the temporary directories, the agents on PATH, the key set
    (the network guard has scrubbed the machine's own), the agents' own retries off."""
    with isolated_home(
        monkeypatch,
        "acpm",
        KEY_ENV,
        KEY,
        programs=ACP_PROGRAMS,
        gemini_settings=True,
        env={**CLAUDE_ENV, "CLAUDE_CODE_MAX_RETRIES": "0"},
    ) as path:
        yield path


@pytest.fixture
def repo(home: Path) -> Path:
    return edit_repo(home)


def codex_acp(endpoint: ModelEndpoint) -> list[str]:
    options = ("preset=codex-acp", f"base_url={endpoint.url}/v1", f"api_key_env={KEY_ENV}",
               f"args={CODEX_NO_RETRIES}")  # fmt: skip
    return ["--agent", "acp", "--model", "gpt-5", *agent_opts(*options)]


def claude_acp(endpoint: ModelEndpoint) -> list[str]:
    options = ("preset=claude-agent-acp", f"base_url={endpoint.url}", f"api_key_env={KEY_ENV}")
    return ["--agent", "acp", *agent_opts(*options)]


def gemini_acp(endpoint: ModelEndpoint) -> list[str]:
    options = ("preset=gemini", f"base_url={endpoint.url}", f"api_key_env={KEY_ENV}")
    return ["--agent", "acp", "--model", "gemini-2.5-flash", *agent_opts(*options)]


AGENTS = {"codex-acp": codex_acp, "claude-agent-acp": claude_acp, "gemini": gemini_acp}


def errors(repo: Path, job_id: str) -> list[str]:
    return [e["data"]["message"] for e in job_events(repo, job_id) if e["kind"] == "error"]


# -- 401 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("agent", ["codex-acp", "gemini"])
def test_401_fails_with_an_authentication_reason(
    agent: str, repo: Path, model_endpoint: ModelEndpoint
) -> None:
    # Every call refused (an agent may make side calls besides the main one).
    model_endpoint.script({"error": 401, "message": "Incorrect API key provided", "times": 20})
    record = run_job(repo, *AGENTS[agent](model_endpoint), "--retries", "2",
                     "--file", "a.txt", "--prompt", "greet", expect=1)  # fmt: skip
    log = events_text(repo, record["id"])
    assert record["status"] == "failed", (record["status_reason"], log)
    assert "authentication" in record["status_reason"], (record["status_reason"], log)
    assert len(record["steps"]) == 1, log  # not retried: a key does not get better by waiting
    assert model_endpoint.totals()["refused"] >= 1
    # The agent's own log lines reach the job without terminal escapes (codex-acp colours
    # them even into a pipe).
    texts = [json.dumps(e["data"]) for e in job_events(repo, record["id"])]
    assert not any("\\u001b" in text for text in texts), log  # ESC, as JSON writes it


# -- 429 ----------------------------------------------------------------------------------
@pytest.mark.parametrize("agent", ["claude-agent-acp", "codex-acp", "gemini"])
def test_429_is_retried_by_logist(agent: str, repo: Path, model_endpoint: ModelEndpoint) -> None:
    limited: Turn = {"error": 429, "message": "Rate limit reached for requests",
                     "headers": {"Retry-After": "0"}}  # fmt: skip
    # claude's Edit refuses a file it has not read in the session.
    model_endpoint.script(limited, *([READ] if agent == "claude-agent-acp" else []), EDIT, DONE)
    record = run_job(repo, *AGENTS[agent](model_endpoint), "--retries", "1",
                     "--file", "a.txt", "--prompt", "greet", expect=0)  # fmt: skip
    log = events_text(repo, record["id"])
    assert record["status"] == "review", (record["status_reason"], log)
    first, second = record["steps"]
    assert first["outcome"] == "retry" and second["why"] == "retry", log
    assert "rate limit" in (first["failure"] or ""), (first["failure"], log)
    assert model_endpoint.log[0].kind == "error" and model_endpoint.log[0].status == 429
    # The retry continues the first step's session, or its events say why it cannot.
    retry = step_events(repo, record["id"], 2)
    sessions = [e["data"] for e in retry if e["kind"] == "session"]
    said = [e["data"]["text"] for e in retry if e["kind"] == "message"]
    assert sessions == [{"id": first["session_id"], "resumed": True}] or any(
        text.startswith(f"cannot resume session {first['session_id']}: ") for text in said
    ), log
    assert record["result"]["diff"]["paths"] == ["a.txt"], log
    assert result_text(repo, record) == AFTER


# -- a stalled stream ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("agent", "hang_timeout"), [("claude-agent-acp", 20), ("codex-acp", 20), ("gemini", 90)]
)
def test_a_stalled_stream_ends_stuck(
    agent: str, hang_timeout: int, repo: Path, model_endpoint: ModelEndpoint
) -> None:
    # Long enough for a start on a loaded machine (the bridge prints nothing until the
    # agent's session is open): the job must go stuck on the stall, not before it (gemini
    # --acp took over 20 s to start under load).
    model_endpoint.script({"stall": True, "times": 5})
    record = run_job(repo, *AGENTS[agent](model_endpoint), "--hang-timeout", str(hang_timeout),
                     "--file", "a.txt", "--prompt", "greet", expect=1)  # fmt: skip
    log = events_text(repo, record["id"])
    assert record["status"] == "stuck", (record["status_reason"], log)
    assert model_endpoint.totals()["stalled"] >= 1, log
    # The agent's whole process tree is gone (the network guard fails the test otherwise)
    # and its stalled connection with it.
    model_endpoint.wait_stalls_ended(60)


# -- 400 over budget ----------------------------------------------------------------------
@pytest.mark.parametrize("agent", ["claude-agent-acp", "codex-acp", "gemini"])
def test_a_400_budget_refusal_fails_with_the_reason(
    agent: str, repo: Path, model_endpoint: ModelEndpoint
) -> None:
    model_endpoint.script({"error": 400, "message": BUDGET, "times": 20})
    record = run_job(repo, *AGENTS[agent](model_endpoint), "--retries", "2",
                     "--file", "a.txt", "--prompt", "greet", expect=1)  # fmt: skip
    log = events_text(repo, record["id"])
    assert record["status"] in ("failed", "halted"), (record["status_reason"], log)
    assert BUDGET in record["status_reason"], (record["status_reason"], log)
    # A person's reason: the API's message, not the JSON the agent wrapped it in.
    assert "{" not in record["status_reason"], record["status_reason"]
    assert "Internal error" not in record["status_reason"], record["status_reason"]
    assert len(record["steps"]) == 1, log  # not retried: the budget does not come back
    assert any(BUDGET in message for message in errors(repo, record["id"])), log


# -- sessions: a rework round continues the worker's ACP session --------------------------
def user_roles(args: list[str]) -> None:
    """The user's own configuration gives the supervisor role the worker's agent options
    (`--agent-opt K=V` in `args`: a supervisor runs with its role's options, not the
    worker's)."""
    pairs = dict(word.split("=", 1) for i, word in enumerate(args) if args[i - 1] == "--agent-opt")
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "logist" / "config.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"roles": {"supervisor": {"agent_options": pairs}}}))


def step_events(repo: Path, job_id: str, number: int) -> list[dict[str, Any]]:
    """The events of step `number`: from its `step` (or first `status`) event to the next."""
    found: list[dict[str, Any]] = []
    current = 0
    for event in job_events(repo, job_id):
        step = event["data"].get("step")
        if (
            event["kind"] in ("step", "status")
            and isinstance(step, int)
            and "argv" in event["data"]
        ):
            current = step
        if current == number:
            found.append(event)
    return found


# A marker only the worker's first run says: seen again only in a continued conversation.
MARKER = "worker-note-5c2e"
AGAIN: Turn = {"edit": {"path": "a.txt", "old": "greeting = hello world",
                        "new": "greeting = hello, world"}}  # fmt: skip


@pytest.mark.parametrize("agent", ["codex-acp", "claude-agent-acp", "gemini"])
def test_a_rework_round_resumes_the_workers_acp_session(
    agent: str, repo: Path, model_endpoint: ModelEndpoint
) -> None:
    args = AGENTS[agent](model_endpoint)
    user_roles(args)
    read = [READ] if agent == "claude-agent-acp" else []
    model_endpoint.script(*read, EDIT, {"text": f"Done ({MARKER})."},
                          {"text": "VERDICT: CHANGES\n- add a comma"},
                          AGAIN, DONE, {"text": "VERDICT: APPROVE"})  # fmt: skip
    record = run_job(repo, *args, "--file", "a.txt", "--prompt", "greet", "--supervisor",
                     expect=0)  # fmt: skip
    log = events_text(repo, record["id"])
    assert record["status"] == "review", (record["status_reason"], log)
    steps = record["steps"]
    assert [(s["role"], s["why"], s["verdict"]) for s in steps] == [
        ("worker", "start", None), ("supervisor", "review", "changes"),
        ("worker", "rework", None), ("supervisor", "review", "approve"),
    ], log  # fmt: skip
    worker = steps[0]["session_id"]
    assert worker and steps[1]["session_id"] != worker, log  # the supervisor's own session
    assert steps[2]["resumed_session"] == worker and steps[2]["session_id"] == worker, log
    sessions = [e["data"] for e in step_events(repo, record["id"], 3) if e["kind"] == "session"]
    assert sessions == [{"id": worker, "resumed": True}], log
    assert not any("cannot resume" in e["data"].get("text", "")
                   for e in step_events(repo, record["id"], 3)), log  # fmt: skip
    # What the real agent did with it: its first model call of the rework round carries the
    # worker's first conversation (its own words, which no prompt of Logist's holds).
    prompt = (repo / ".logist" / "jobs" / record["id"] / "step-3" / "prompt.txt").read_text()
    assert MARKER not in prompt
    rework = next(e for e in model_endpoint.log if e.turn == len(read) + 3)
    assert MARKER.encode() in rework.body, log
    first = next(e for e in model_endpoint.log if e.turn == 0)
    assert MARKER.encode() not in first.body
    assert result_text(repo, record) == "greeting = hello, world\n"


def test_a_session_the_agent_cannot_continue_is_said_in_the_steps_events(
    repo: Path, home: Path, model_endpoint: ModelEndpoint
) -> None:
    """The worker's session is gone from codex's store when the user asks for changes:
    codex-acp refuses session/resume, the step's events say so, a new session does the
    rework and the job ends in review with it."""
    model_endpoint.script(EDIT, DONE)
    record = run_job(repo, *codex_acp(model_endpoint), "--file", "a.txt", "--prompt", "greet",
                     expect=0)  # fmt: skip
    assert record["status"] == "review", events_text(repo, record["id"])
    worker = record["steps"][0]["session_id"]
    assert worker
    shutil.rmtree(home / ".codex" / "sessions")  # the agent's own record of the session
    model_endpoint.script(AGAIN, DONE)
    proc = run_logist("job", "request-changes", record["id"], "--comment", "add a comma",
                      "--json", cwd=repo, check=False, timeout=300)  # fmt: skip
    log = events_text(repo, record["id"])
    assert proc.returncode == 0, (proc.stdout, proc.stderr, log)
    record = json.loads(proc.stdout)
    assert record["status"] == "review", (record["status_reason"], log)
    second = record["steps"][-1]
    assert second["why"] == "changes" and second["resumed_session"] is None, log
    assert second["session_id"] and second["session_id"] != worker, log
    events = step_events(repo, record["id"], len(record["steps"]))
    said = [e["data"]["text"] for e in events if e["kind"] == "message"]
    assert any(text.startswith(f"cannot resume session {worker}: ") for text in said), log
    resumes = [e["data"] for e in events if e["kind"] == "resume"]
    assert [r["resumed"] for r in resumes] == [True, False], log  # tried, then not so
    assert resumes[-1]["reason"] == (
        f"the agent started a new session instead of continuing {worker}"
    ), log
    sessions = [e["data"] for e in events if e["kind"] == "session"]
    assert sessions == [{"id": second["session_id"]}], log  # a new one, not `resumed`
    assert result_text(repo, record) == "greeting = hello, world\n"


# -- the same through the language server -------------------------------------------------
async def test_429_then_a_stall_through_the_language_server(
    repo: Path, model_endpoint: ModelEndpoint
) -> None:
    """createJob with codex-acp: the 429 is retried by Logist's policy (the server drives the
    job), and the retry's stalled stream ends the job stuck."""
    model_endpoint.script({"error": 429, "message": "Rate limit reached for requests"},
                          {"stall": True, "times": 5})  # fmt: skip
    options = {"preset": "codex-acp", "base_url": f"{model_endpoint.url}/v1",
               "api_key_env": KEY_ENV, "args": CODEX_NO_RETRIES}  # fmt: skip
    record = await lsp_job(repo, {"model": "gpt-5", "agentOptions": options, "retries": 1,
                                  "limits": {"hangTimeoutS": 20}}, timeout=240)  # fmt: skip
    log = events_text(repo, record["id"])
    assert record["status"] == "stuck", (record["status_reason"], log)
    first, second = record["steps"]
    assert first["outcome"] == "retry" and "rate limit" in (first["failure"] or ""), log
    assert second["why"] == "retry", log
    assert model_endpoint.totals()["stalled"] >= 1, log
    model_endpoint.wait_stalls_ended(60)

"""Helpers for the real aider, cline and opencode tests: the scripted endpoint speaking OpenAI
chat completions (tests/model_endpoint, dialect `openai_chat`), an isolated HOME per test
with nothing reaching past 127.0.0.1, and the checks the three test modules share.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import git, job_events
from logist_server.providers.agents import stdin_feed
from model_endpoint import ModelEndpoint
from real_agents.conftest import run_agent_job

AGENTS_DIR = Path(os.environ.get("LOGIST_AGENTS_DIR", Path.home() / ".cache/logist-ci/agents"))
AGENTS_BIN = AGENTS_DIR / "bin"
KEY_ENV = "LOGIST_TEST_CHAT_KEY"
KEY = "sk-chat-test-8e2f61c0d4"
BEFORE = "greeting = hello"
AFTER = "greeting = hello world"
EDIT = {"edit": {"path": "a.txt", "old": BEFORE, "new": AFTER}}
DONE = {"text": "Done: changed the greeting in a.txt."}
#: Variables of the machine's user that must not reach an agent under test.
FOREIGN = ("OPENAI_API_KEY", "OPENAI_API_BASE", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY",
           "GEMINI_API_KEY", "OPENCODE_CONFIG", "OPENCODE_CONFIG_DIR", "XDG_CONFIG_HOME",
           "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")  # fmt: skip


def isolate(monkeypatch: pytest.MonkeyPatch, home: Path, program: str) -> None:
    """HOME at `home`, the agents' bin on PATH, the test key set, npm's registry closed
    (the autouse network guard of this directory's conftest closes the other routes)."""
    assert (AGENTS_BIN / program).exists(), f"run scripts/ci/install-agents.sh {program}"
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PATH", f"{AGENTS_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")
    for name in FOREIGN:
        monkeypatch.delenv(name, raising=False)


@contextmanager
def serve(*turns: Any, final: str = "Done.") -> Iterator[ModelEndpoint]:
    endpoint = ModelEndpoint(dialects=("openai_chat",), final_text=final).start()
    try:
        endpoint.script(*turns)
        yield endpoint
    finally:
        endpoint.stop()


def agent_options(agent: str, endpoint: ModelEndpoint, model: str, *extra: str) -> list[str]:
    args = ["--agent", agent, "--model", model, "--agent-opt", f"base_url={endpoint.url}/v1",
            "--agent-opt", f"api_key_env={KEY_ENV}"]  # fmt: skip
    return args + [a for opt in extra for a in ("--agent-opt", opt)]


def run_job(repo: Path, *args: str, expect: int = 0, timeout: float = 300) -> dict[str, Any]:
    """`logist run --json ARGS` in `repo` with this test's HOME (a loaded machine runs these
    CLIs slowly: the timeout only guards hangs); the job record it printed."""
    proc, record = run_agent_job(repo, *args, home=Path(os.environ["HOME"]), timeout=timeout)
    assert proc.returncode == expect and record is not None, (
        f"logist run exited {proc.returncode}, wanted {expect}\n"
        f"stdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
    )
    return record


def supervise_with(endpoint: ModelEndpoint) -> None:
    """The user's configuration gives the supervisor role the endpoint too (a role runs with
    its own agent options, not the worker's)."""
    config = Path(os.environ["HOME"]) / ".config" / "logist" / "config.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "roles:\n  supervisor:\n    agent_options:\n"
        f"      base_url: {endpoint.url}/v1\n      api_key_env: {KEY_ENV}\n"
    )


def lsp_options(endpoint: ModelEndpoint) -> dict[str, str]:
    return {"base_url": f"{endpoint.url}/v1", "api_key_env": KEY_ENV}


def argv_of(repo: Path, job_id: str, number: int) -> list[str]:
    for event in job_events(repo, job_id):
        if event["data"].get("step") == number and "argv" in event["data"]:
            return stdin_feed.unwrap(event["data"]["argv"])[2]  # the agent's own argv
    raise AssertionError(f"no command line recorded for step {number}")


def kinds(repo: Path, job_id: str) -> list[str]:
    return [str(e["kind"]) for e in job_events(repo, job_id)]


def result_text(repo: Path, record: dict[str, Any]) -> str:
    return git(repo, "show", f"{record['result']['result_commit']}:a.txt")


def survivors(home: Path) -> list[str]:
    """Processes still running with `home` as HOME or working directory (a leaked agent)."""
    import psutil

    root = str(home.resolve()) + os.sep
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("HOME", "") + os.sep == root or proc.cwd().startswith(root):
                found.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
        except psutil.Error:
            continue
    return found


def assert_key_kept(endpoint: ModelEndpoint, repo: Path, job_id: str) -> None:
    """The key reached the endpoint (the agent used it) and no file of the job holds it."""
    assert any(e.headers.get("authorization") == f"Bearer {KEY}" for e in endpoint.log)
    job_dir = repo / ".logist" / "jobs" / job_id
    for path in job_dir.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def assert_edit_in_review(repo: Path, record: dict[str, Any]) -> None:
    assert record["status"] == "review", record.get("status_reason")
    assert record["result"]["diff"]["paths"] == ["a.txt"], record["result"]["diff"]
    assert result_text(repo, record) == AFTER + "\n"

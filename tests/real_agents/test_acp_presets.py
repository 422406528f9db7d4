"""The `acp` provider's presets against the real programs and the scripted endpoint on
127.0.0.1 (issue 11, "any ACP agent" and the language-server column):

- through the language server (the real `logist-server` over stdio): an edit job with
  claude-agent-acp (Anthropic messages) and with `gemini --acp` (Gemini) ends in review with
  the right diff, the record's tokens are what the endpoint served and the cost is labelled
  (claude-agent-acp reports it, gemini's is computed from the tokens);
- `logist run --agent acp --agent-opt preset=opencode` and `preset=cline` (OpenAI chat
  completions): the job's `base_url`, `api_key_env` and model become a provider in the
  agent's own configuration for this job only (opencode: `OPENCODE_CONFIG_CONTENT`; cline:
  a configuration directory in the job's directory, `CLINE_PROVIDER`, the key in
  `CLINE_API_KEY`), the user's files untouched; the edit ends in review;
- `logist agent list --json` shows, per preset, whether its program is installed.

Each test has its own HOME outside the temporary directories; nothing but 127.0.0.1 is
reachable (the network guard of this directory's conftest).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import list_jobs, logist_running, review_record, run_logist, show_job, wait_for
from model_endpoint import ModelEndpoint
from real_agents import acp_harness
from real_agents.acp_harness import (
    BEFORE,
    CLAUDE_ENV,
    DONE,
    EDIT,
    ENDED,
    events_text,
    result_text,
    run_job,
    set_env,
    write_gemini_settings,
)
from real_agents.conftest import agent_program
from review_harness import lsp_session

KEY_ENV = "LOGIST_TEST_ACP_PRESET_KEY"
KEY = "sk-acp-preset-5c19ae2d77"
SETTLED = ENDED | {"needs_input"}


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated HOME outside the temporary directories, the agents on PATH, the test
    key set, npm's registry closed (opencode fetches a package on a first start)."""
    with acp_harness.isolated_home(
        monkeypatch,
        "acpp",
        KEY_ENV,
        KEY,
        env={"npm_config_registry": "http://127.0.0.1:9/"},
        unset=("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"),
    ) as path:
        yield path


@pytest.fixture
def repo(home: Path) -> Path:
    return acp_harness.edit_repo(home)


def assert_edit_in_review(repo: Path, record: dict[str, Any], endpoint: ModelEndpoint) -> None:
    acp_harness.assert_edit_in_review(repo, record, endpoint)
    assert (repo / "a.txt").read_text() == BEFORE  # the user's tree is untouched until accepted


def assert_key_kept(endpoint: ModelEndpoint, repo: Path, job_id: str) -> None:
    """The key reached the endpoint and no file of the job holds it."""
    assert any(KEY in str(e.headers) for e in endpoint.log), [e.headers for e in endpoint.log]
    for path in (repo / ".logist" / "jobs" / job_id).rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def asking(repo: Path) -> dict[str, Any] | None:
    """The job's record once it waits for an answer."""
    for job in list_jobs(repo):
        if job["status"] == "needs_input":
            return show_job(repo, job["id"])
        if job["status"] in ("failed", "stuck", "halted", "review"):
            raise AssertionError(f"{job['status']} without asking\n{events_text(repo, job['id'])}")
    return None


# -- through the language server ----------------------------------------------------------
async def test_claude_agent_acp_edit_through_the_language_server(
    repo: Path, model_endpoint: ModelEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("claude-agent-acp", "claude"):
        agent_program(name)
    set_env(monkeypatch, CLAUDE_ENV)
    model_endpoint.script({"read": "a.txt"}, EDIT, DONE)
    record = await acp_harness.lsp_job(repo, {"agentOptions": {
        "preset": "claude-agent-acp", "base_url": model_endpoint.url,
        "api_key_env": KEY_ENV}}, timeout=300, settled=SETTLED)  # fmt: skip
    assert_edit_in_review(repo, record, model_endpoint)
    usage, served = record["result"]["usage"], model_endpoint.totals()
    assert served["served"] > 0 and served["unmatched"] == 0, served
    got = (usage["input_tokens"], usage["cache_read_tokens"], usage["output_tokens"])
    assert got == (served["input"], served["cached"], served["output"]), (usage, served)
    assert usage["cost_usd"] > 0 and usage["cost_source"] == "reported", usage
    assert_key_kept(model_endpoint, repo, record["id"])


async def test_gemini_acp_edit_through_the_language_server(
    repo: Path, model_endpoint: ModelEndpoint, home: Path
) -> None:
    agent_program("gemini")
    write_gemini_settings(home)
    model_endpoint.script(EDIT, DONE)
    record = await acp_harness.lsp_job(repo, {"model": "gemini-2.5-flash", "agentOptions": {
        "preset": "gemini", "base_url": model_endpoint.url,
        "api_key_env": KEY_ENV}}, timeout=300, settled=SETTLED)  # fmt: skip
    assert_edit_in_review(repo, record, model_endpoint)
    usage, served = record["result"]["usage"], model_endpoint.totals()
    calls = [(r.kind, r.model, r.input, r.output) for r in model_endpoint.log]
    assert served["served"] > 0 and served["unmatched"] == 0, calls
    assert all(model == "gemini-2.5-flash" for _, model, _, _ in calls), calls  # the job's model
    # gemini counts a cached prompt inside its input and thoughts inside its output.
    assert usage["input_tokens"] + usage["cache_read_tokens"] == served["input"], (usage, calls)
    assert usage["output_tokens"] + usage["reasoning_tokens"] == served["output"], (usage, calls)
    assert usage["cost_usd"] > 0 and usage["cost_source"] == "computed", usage
    assert_key_kept(model_endpoint, repo, record["id"])


# -- opencode acp and cline --acp through `logist run` ------------------------------------
@pytest.fixture
def chat_endpoint() -> Iterator[ModelEndpoint]:
    with ModelEndpoint(dialects=("openai_chat",)) as endpoint:
        yield endpoint


def preset_args(preset: str, endpoint: ModelEndpoint, *extra: str) -> list[str]:
    return ["--agent", "acp", "--model", "gpt-4o", "--agent-opt", f"preset={preset}",
            "--agent-opt", f"base_url={endpoint.url}/v1",
            "--agent-opt", f"api_key_env={KEY_ENV}", *extra,
            "--file", "a.txt", "--prompt", "change the greeting to hello world"]  # fmt: skip


def test_opencode_acp_preset_edit_ends_in_review(
    repo: Path, chat_endpoint: ModelEndpoint, home: Path
) -> None:
    agent_program("opencode")
    chat_endpoint.script(EDIT, DONE)
    record = run_job(repo, *preset_args("opencode", chat_endpoint))
    assert_edit_in_review(repo, record, chat_endpoint)
    calls = [(r.kind, r.model, r.status) for r in chat_endpoint.log]
    assert calls and all(model == "gpt-4o" for _, model, _ in calls), calls
    assert chat_endpoint.totals()["unmatched"] == 0, calls
    # opencode acp 1.18.33 reports the usage of the turn's LAST model call only (in the
    # prompt's response): the record has exactly that, and a cost computed from it.
    usage, last = record["result"]["usage"], chat_endpoint.log[-1]
    assert (usage["input_tokens"], usage["output_tokens"]) == (last.input, last.output), usage
    assert usage["cost_usd"] > 0 and usage["cost_source"] == "computed", usage
    assert_key_kept(chat_endpoint, repo, record["id"])
    assert not (home / ".config" / "opencode" / "opencode.json").exists()  # no file of the user's


def test_opencode_acp_asks_for_a_shell_command_by_the_jobs_permissions(
    repo: Path, chat_endpoint: ModelEndpoint
) -> None:
    """`execute: ask` (the default) becomes opencode's `bash: ask` rule: opencode's
    `session/request_permission` is the job's question; `allow` lets the same process run
    the command, and the job ends in review with its file."""
    agent_program("opencode")
    run = {"tool": "bash", "arguments": {"command": "echo hi > b.txt", "description": "write"}}
    chat_endpoint.script(run, DONE)
    with logist_running(
        "run", "--json", *preset_args("opencode", chat_endpoint), cwd=repo
    ) as runner:
        job = wait_for(lambda: asking(repo), timeout=240, interval=1)
        question = job["question"]
        assert question["kind"] == "permission", question
        assert "echo hi" in question["text"] or "bash" in question["text"], question
        assert not (Path(job["workspace"]["path"]) / "b.txt").exists()
        run_logist("job", "answer", job["id"], "allow", cwd=repo)
        out, err = runner.communicate(timeout=240)
    record = review_record(runner.returncode, out, err)
    assert record["result"]["diff"]["paths"] == ["b.txt"], events_text(repo, record["id"])
    assert result_text(repo, record, "b.txt") == "hi\n"
    assert len(record["steps"]) == 1, "the same process went on after the answer"


def test_cline_acp_preset_edit_ends_in_review(
    repo: Path, chat_endpoint: ModelEndpoint, home: Path
) -> None:
    agent_program("cline")
    chat_endpoint.script(EDIT, DONE)
    # cline labels its patch tool "other": the envelope's headers make it an edit inside
    # the workspace, allowed by the default permissions (a question: the next test).
    record = run_job(repo, *preset_args("cline", chat_endpoint))
    assert_edit_in_review(repo, record, chat_endpoint)
    calls = [(r.kind, r.model, r.status) for r in chat_endpoint.log]
    assert calls and all(model == "gpt-4o" for _, model, _ in calls), calls
    assert_key_kept(chat_endpoint, repo, record["id"])
    assert not (home / ".cline").exists()  # the job's own configuration, not the user's
    # cline --acp reports no usage at all: no tokens, and no cost claimed.
    usage = record["result"]["usage"]
    assert usage["input_tokens"] == 0 and usage["cost_source"] == "", usage


def test_cline_acp_permission_request_waits_for_the_answer(
    repo: Path, chat_endpoint: ModelEndpoint
) -> None:
    """Edits asked (`--ask edit`; cline labels its patch tool "other", asked by default
    too): cline's request becomes the job's question, the answer reaches the same live
    process, the patch is applied and the job ends in review."""
    agent_program("cline")
    chat_endpoint.script(EDIT, DONE)
    args = preset_args("cline", chat_endpoint, "--ask", "edit")
    with logist_running("run", "--json", *args, cwd=repo) as runner:
        job = wait_for(lambda: asking(repo), timeout=240, interval=1)
        question = job["question"]
        assert question["kind"] == "permission", question
        assert "a.txt" in question["text"], question
        assert "Allow once" in question["options"], question
        assert (Path(job["workspace"]["path"]) / "a.txt").read_text() == BEFORE  # not yet
        run_logist("job", "answer", job["id"], "Allow once", cwd=repo)
        out, err = runner.communicate(timeout=240)
    record = review_record(runner.returncode, out, err)
    assert_edit_in_review(repo, record, chat_endpoint)
    assert len(record["steps"]) == 1, "the same process went on after the answer"


def test_cline_acp_without_a_login_fails_at_once_with_the_reason(repo: Path) -> None:
    """No `base_url`, no login, no CLINE_API_KEY: the user's own configuration has no
    provider, and cline says so (Logist sets no placeholder key, which would send the job
    to cline's own service under a made-up key); one step, not retried."""
    agent_program("cline")
    record = run_job(repo, "--agent", "acp", "--agent-opt", "preset=cline", "--retries", "2",
                     "--file", "a.txt", "--prompt", "greet", expect=1)  # fmt: skip
    assert record["status"] == "failed", record["status_reason"]
    assert "Authentication required" in record["status_reason"], record["status_reason"]
    assert len(record["steps"]) == 1


async def test_agent_list_shows_each_presets_program(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`logist agent list --json` and `logist/listAgents`: the acp row lists each preset's
    program, installed or not, with its version (here: only opencode and cline on PATH)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("opencode", "cline"):
        (bin_dir / name).symlink_to(agent_program(name))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    rows = json.loads(run_logist("agent", "list", "--json", cwd=repo).stdout)
    async with lsp_session([repo]) as editor:
        listed = await editor.request("logist/listAgents", {})
    for found in (rows, listed):
        by_name = {row["name"]: row for row in found}
        acp = by_name["acp"]
        presets = {p["name"]: (p["program"], p["installed"], p["version"]) for p in acp["presets"]}
        # the version of each installed one is its own agent row's (its npm package.json)
        versions = {name: by_name[name]["version"] for name in ("opencode", "cline")}
        assert all(versions.values()), versions
        assert presets == {
            "claude-agent-acp": ("claude-agent-acp", False, None),
            "codex-acp": ("codex-acp", False, None),
            "gemini": ("gemini", False, None),
            "opencode": ("opencode", True, versions["opencode"]),
            "cline": ("cline", True, versions["cline"]),
        }, acp
        assert acp["installed"] is False  # its program is the default preset's

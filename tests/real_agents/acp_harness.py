"""What the real-agent ACP tests share (test_acp.py, test_acp_presets.py, test_acp_matrix.py):
the file a job edits and the scripted endpoint's turns that edit it, the agents' own
settings (gemini's `~/.gemini/settings.json`, which test_gemini.py uses too; claude's
environment), an isolated HOME, and `logist run` / `logist/createJob` with the job's events
in a failure's message.

A test module keeps its own key (`KEY_ENV`, `KEY`) and its fixtures; they call these.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import git, job_events, make_repo, run_logist, show_job
from model_endpoint import ModelEndpoint
from real_agents.conftest import AGENTS_BIN, agent_program
from review_harness import lsp_session

Turn = dict[str, Any]
BEFORE = "greeting = hello\n"
AFTER = "greeting = hello world\n"
READ: Turn = {"read": "a.txt"}
EDIT: Turn = {"edit": {"path": "a.txt", "old": "greeting = hello", "new": "greeting = hello world"}}
DONE: Turn = {"text": "Done: changed the greeting in a.txt."}
#: The statuses a job ends in.
ENDED = frozenset({"review", "failed", "stuck", "halted"})
#: The user's own gemini settings: API-key auth, no telemetry or update check, and
#: `maxAttempts: 1` (gemini gives up on a failed call at once: Logist's policy retries).
GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "telemetry": {"enabled": False},
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True, "maxAttempts": 1,
                # gemini's startup cleanup deletes every session file that holds no message
                # yet, and on a loaded machine its scan can come after the new session opened:
                # the worker's session was lost and a rework could not resume it (a CI run).
                "sessionRetention": {"enabled": False}},
}  # fmt: skip
#: claude-agent-acp starts claude with --allow-dangerously-skip-permissions, which claude
#: refuses as root unless told it runs in a sandbox; no calls besides the model's.
CLAUDE_ENV = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
              "DISABLE_AUTOUPDATER": "1", "IS_SANDBOX": "1"}  # fmt: skip
#: The programs of the codex-acp, claude-agent-acp and gemini presets.
ACP_PROGRAMS = ("codex-acp", "claude-agent-acp", "claude", "gemini")


def set_env(monkeypatch: pytest.MonkeyPatch, values: Mapping[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def write_gemini_settings(home: Path) -> None:
    """GEMINI_SETTINGS as the user's own `~/.gemini/settings.json` in `home`."""
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(GEMINI_SETTINGS))


@contextmanager
def isolated_home(
    monkeypatch: pytest.MonkeyPatch,
    prefix: str,
    key_env: str,
    key: str,
    *,
    programs: Collection[str] = (),
    gemini_settings: bool = False,
    env: Mapping[str, str] | None = None,
    unset: Collection[str] = (),
) -> Iterator[Path]:
    """An isolated HOME for one test, `~/.cache/logist-ci/homes/PREFIX-ID` (outside the
    temporary directories: codex refuses to create its helpers under one), removed after.

    Each of `programs` must be installed (the test fails naming the install script); the
    agents are first on PATH; `key_env` holds `key` (the network guard of
    real_agents/conftest.py has already scrubbed the machine's own); then `env` is set and
    `unset` removed; with `gemini_settings` the user's gemini settings are GEMINI_SETTINGS.
    The job's worktrees are under it too: codex-acp works in a bwrap sandbox that mounts a
    fresh /dev, so a workspace under /dev/shm (where the test suite keeps its temporary
    directories) is not there.
    """
    for name in programs:
        agent_program(name)
    path = Path.home() / ".cache" / "logist-ci" / "homes" / f"{prefix}-{uuid.uuid4().hex[:10]}"
    path.mkdir(parents=True)
    if gemini_settings:
        write_gemini_settings(path)
    monkeypatch.setenv("HOME", str(path))
    monkeypatch.setenv("PATH", f"{AGENTS_BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(key_env, key)
    set_env(monkeypatch, env or {})
    for name in unset:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOGIST_WORKSPACE_ROOT", str(path / "worktrees"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def edit_repo(home: Path) -> Path:
    """A git repository in `home` with a.txt (BEFORE) committed."""
    return make_repo(home / "repo", {"a.txt": BEFORE.encode()})


def agent_opts(*pairs: str) -> list[str]:
    """`--agent-opt K=V` for each pair."""
    return [word for pair in pairs for word in ("--agent-opt", pair)]


def events_text(repo: Path, job_id: str) -> str:
    """The job's events, one `(kind, data)` a line: a failure's message."""
    return "\n".join(str((e["kind"], e["data"])) for e in job_events(repo, job_id))


def run_job(repo: Path, *args: str, expect: int = 0, timeout: float = 300) -> dict[str, Any]:
    """`logist run --json ARGS` (the timeout only guards a hang); the job record, the job's
    events in the message when the exit status is not `expect`."""
    proc = run_logist("run", "--json", *args, cwd=repo, check=False, timeout=timeout)
    assert proc.stdout.strip(), proc.stderr
    record: dict[str, Any] = json.loads(proc.stdout)
    if proc.returncode != expect:
        raise AssertionError(f"exit {proc.returncode}\n{events_text(repo, record['id'])}")
    return record


def result_text(repo: Path, record: dict[str, Any], path: str = "a.txt") -> str:
    """`path` as the job's result commit has it."""
    return git(repo, "show", f"{record['result']['result_commit']}:{path}")


def assert_edit_in_review(
    repo: Path, record: dict[str, Any], endpoint: ModelEndpoint | None = None
) -> None:
    """The job is in review with EDIT made to a.txt and its ACP session id on its step (the
    events, and what `endpoint` served when given, in the message)."""
    why = events_text(repo, record["id"])
    if endpoint is not None:
        seen = [(e.kind, e.model, e.status, e.body[:300]) for e in endpoint.log]
        why += f"\nendpoint: {seen}"
    assert record["status"] == "review", (record.get("status_reason"), why)
    assert record["result"]["diff"]["paths"] == ["a.txt"], why
    assert result_text(repo, record) == AFTER
    assert record["steps"][0]["session_id"], "the ACP session id is on the step"


async def lsp_job(
    repo: Path, params: dict[str, Any], *, timeout: float, settled: Collection[str] = ENDED
) -> dict[str, Any]:
    """`logist/createJob` on a.txt with the prompt "greet", agent `acp` and `params`
    through the real language server, waited for until one of `settled`; its record."""
    async with lsp_session([repo]) as editor:
        created = await editor.request(
            "logist/createJob",
            {"prompt": "greet", "uri": (repo / "a.txt").as_uri(), "agent": "acp", **params},
        )
        job_id = str(created["jobId"])
        await editor.wait_status(job_id, set(settled), timeout)
    return show_job(repo, job_id)

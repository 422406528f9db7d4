"""The ACP client boundary against a hostile ACP agent (`acp_hostile_agent.py`, a real agent
program written with the SDK): files outside the workspace are neither read nor written,
terminals obey the job's policy and stay bounded, oversized and malformed messages, an
agent that never answers or dies mid-prompt end the run with the reason, SIGTERM takes the
agent's whole process tree down; and through `logist run`: an edit ends in review, a
permission request waits for `job answer` on the same live process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from conftest import (
    git,
    job_events,
    logist_running,
    make_repo,
    review_record,
    run_logist,
    show_job,
    wait_for,
)

HOSTILE = Path(__file__).resolve().parent / "acp_hostile_agent.py"
BRIDGE = [sys.executable, "-I", "-m", "logist_server.providers.agents.acp_bridge"]
ALL_ALLOWED = dict.fromkeys(
    ("read", "search", "think", "edit", "delete", "move", "execute", "fetch", "other"), "allow"
)


def config(workspace: Path, prompt: Path, scenario: str, *args: str, **extra: Any) -> str:
    data = {"agent": [sys.executable, str(HOSTILE), scenario, *args],
            "workspace": str(workspace), "prompt_file": str(prompt), "init_timeout": 60,
            **extra}  # fmt: skip
    return "--config=" + json.dumps(data)


def bridge(
    tmp_path: Path, workspace: Path, scenario: str, *args: str, **extra: Any
) -> tuple[int, list[dict[str, Any]], str]:
    """Run the bridge on the hostile agent: its exit status, its events, its stderr."""
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("do your worst")
    proc = subprocess.run(
        [*BRIDGE, config(workspace, prompt, scenario, *args, **extra)],
        cwd=workspace, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
        env={k: v for k, v in os.environ.items() if k != "LOGIST_ANSWER_FILE"},
    )  # fmt: skip
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, events, proc.stderr


def said(events: list[dict[str, Any]]) -> list[str]:
    return [line for e in events if e["type"] == "message" for line in e["text"].splitlines()]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "ws", {"a.txt": b"hello\n"})


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret.txt").write_text("top secret\n")
    return path


def snapshot(*roots: Path) -> dict[str, bytes]:
    return {
        str(p): p.read_bytes() if p.is_file() and not p.is_symlink() else b"<dir-or-link>"
        for root in roots for p in sorted(root.rglob("*"))
    }  # fmt: skip


def test_files_outside_the_workspace_are_never_read_or_written(
    tmp_path: Path, workspace: Path, outside: Path
) -> None:
    before = snapshot(outside, workspace / ".git")
    code, events, _ = bridge(tmp_path, workspace, "escape", str(outside))
    lines = said(events)
    attempts = [line for line in lines if line.startswith(("READ ", "WRITE "))]
    assert len(attempts) == 16, lines
    assert "WRITE inside/ok.txt -> written" in attempts
    for line in attempts:
        if line != "WRITE inside/ok.txt -> written":
            assert line.endswith("-> refused"), line
    assert not any("top secret" in line for line in lines)
    assert snapshot(outside, workspace / ".git") == before
    assert (workspace / "inside" / "ok.txt").read_text() == "fine\n"
    assert {"type": "file_change", "path": "inside/ok.txt", "action": "create"} in events
    assert code == 0 and events[-1] == {"type": "done", "success": True, "summary": None}


def test_terminals_run_in_the_workspace_bounded_and_die_on_release(
    tmp_path: Path, workspace: Path, outside: Path
) -> None:
    code, events, _ = bridge(tmp_path, workspace, "terminal", str(outside), permissions=ALL_ALLOWED)
    lines = said(events)
    assert code == 0, events
    assert "HUGE 1048576 truncated=True" in lines  # 30 MB of output, 1 MiB kept
    assert "CWD outside -> refused" in lines and not (outside / "escaped.txt").exists()
    assert f"PWD {workspace.resolve()}" in lines
    (sleeper,) = [int(line.split()[1]) for line in lines if line.startswith("SLEEPER ")]
    wait_for(lambda: not psutil.pid_exists(sleeper) or
             psutil.Process(sleeper).status() == psutil.STATUS_ZOMBIE, timeout=30)  # fmt: skip


def test_a_policy_that_denies_execute_refuses_every_terminal(
    tmp_path: Path, workspace: Path, outside: Path
) -> None:
    policy = dict(ALL_ALLOWED, execute="deny")
    code, events, _ = bridge(tmp_path, workspace, "terminal", str(outside), permissions=policy)
    assert code == 1 and events[-1]["type"] == "error", events
    assert not any(line.startswith("HUGE") for line in said(events))


def test_permission_requests_are_answered_from_the_policy(
    tmp_path: Path, workspace: Path, outside: Path
) -> None:
    code, events, _ = bridge(tmp_path, workspace, "edit", "a.txt")
    assert code == 0 and "PERMISSION allow" in said(events)
    assert (workspace / "a.txt").read_text() == "hello\nedited by the hostile acp agent\n"
    usage = [e for e in events if e["type"] == "usage"]
    assert usage[-1]["cost_usd"] == pytest.approx(0.0123)
    # The policy denies edits: the agent is refused and nothing changes.
    git(workspace, "checkout", "-q", "--", "a.txt")
    denied = dict(ALL_ALLOWED, edit="deny")
    code, events, _ = bridge(tmp_path, workspace, "edit", "a.txt", permissions=denied)
    assert "PERMISSION reject" in said(events)
    assert (workspace / "a.txt").read_text() == "hello\n"
    assert not [e for e in events if e["type"] == "file_change"]
    # An edit aimed outside the workspace is refused whatever the policy says.
    target = os.path.relpath(outside / "secret.txt", workspace)
    code, events, _ = bridge(tmp_path, workspace, "edit", target, permissions=ALL_ALLOWED)
    assert "PERMISSION reject" in said(events)
    assert (outside / "secret.txt").read_text() == "top secret\n"


def test_a_message_over_the_size_limit_ends_the_run_with_the_reason(
    tmp_path: Path, workspace: Path
) -> None:
    code, events, _ = bridge(tmp_path, workspace, "huge")
    assert code == 1
    assert events[-1]["type"] == "error" and "larger than" in events[-1]["message"], events


def test_malformed_json_rpc_is_skipped_and_the_run_goes_on(tmp_path: Path, workspace: Path) -> None:
    code, events, stderr = bridge(tmp_path, workspace, "garbage", "a.txt")
    assert code == 0, (events, stderr)
    assert events[-1] == {"type": "done", "success": True, "summary": None}
    assert (workspace / "a.txt").read_text().endswith("edited by the hostile acp agent\n")
    assert "Traceback" not in stderr


def test_an_agent_that_never_answers_initialize_ends_with_the_reason(
    tmp_path: Path, workspace: Path
) -> None:
    code, events, _ = bridge(tmp_path, workspace, "hang", init_timeout=8)
    assert code == 1
    assert events == [{"type": "error", "detail": None,
                       "message": "the agent did not answer initialize within 8 s"}]  # fmt: skip


def test_an_agent_that_dies_mid_prompt_ends_with_its_status_and_last_words(
    tmp_path: Path, workspace: Path
) -> None:
    code, events, _ = bridge(tmp_path, workspace, "die")
    assert code == 1
    error = events[-1]
    assert error["type"] == "error", events
    assert "exited with status 3" in error["message"] and "fatal: boom" in error["message"]
    assert "during the prompt" in error["message"]


def test_sigterm_to_the_bridge_kills_the_agents_whole_tree(tmp_path: Path, workspace: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("spawn")
    proc = subprocess.Popen(
        [*BRIDGE, config(workspace, prompt, "spawn", str(pidfile))],
        cwd=workspace, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=90)
        grandchild = psutil.Process(int(pidfile.read_text()))
        agent = [
            p for p in psutil.Process(proc.pid).children() if "acp_hostile" in " ".join(p.cmdline())
        ]
        assert agent, "the agent runs"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
        _, alive = psutil.wait_procs([grandchild, *agent], timeout=30)
        assert not alive, alive
    finally:
        proc.kill()
        proc.wait()
        if pidfile.exists() and pidfile.read_text().strip():  # a failed run leaks nothing
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)


# -- through logist run ---------------------------------------------------------------------
def hostile_command(scenario: str, *args: str) -> str:
    return " ".join([sys.executable, str(HOSTILE), scenario, *args])


def test_an_acp_edit_through_logist_run_ends_in_review(repo: Path) -> None:
    (repo / "a.txt").write_text("hello\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "a")
    proc = run_logist("run", "--json", "--agent", "acp", "--agent-opt",
                      f"command={hostile_command('edit', 'a.txt')}", "--prompt", "edit",
                      cwd=repo, check=False)  # fmt: skip
    record = json.loads(proc.stdout)
    assert record["status"] == "review", record["status_reason"]
    assert record["steps"][0]["session_id"] == "hostile-session-1"
    assert record["result"]["diff"]["paths"] == ["a.txt"]
    assert record["result"]["usage"]["cost_usd"] == pytest.approx(0.0123)


def test_a_permission_question_waits_and_the_same_process_goes_on(repo: Path) -> None:
    with logist_running("run", "--json", "--agent", "acp", "--agent-opt",
                        f"command={hostile_command('ask')}", "--prompt", "ask",
                        cwd=repo) as runner:  # fmt: skip

        def waiting() -> dict[str, Any] | None:
            jobs = json.loads(run_logist("job", "list", "--json", cwd=repo).stdout or "[]")
            return next((j for j in jobs if j["status"] == "needs_input"), None)

        job = wait_for(waiting, timeout=90)
        question = show_job(repo, job["id"])["question"]
        assert question["kind"] == "permission" and question["id"] == "call-x"
        assert "touch pwned.txt" in question["text"]
        assert question["options"] == ["Allow", "Always Allow", "Reject"]
        run_logist("job", "answer", job["id"], "Always Allow", cwd=repo)
        out, err = runner.communicate(timeout=90)
    record = review_record(runner.returncode, out, err)
    assert len(record["steps"]) == 1
    assert git(repo, "show", f"{record['result']['result_commit']}:ANSWERED.txt") == (
        "chosen: always\n"
    )
    kinds = [e["kind"] for e in job_events(repo, record["id"])]
    assert kinds.count("started") == 1  # one process: the answer reached it live


def test_bad_acp_options_are_one_line_usage_errors(repo: Path) -> None:
    (repo / "agent").write_text("#!/bin/sh\n")
    (repo / "agent").chmod(0o755)
    for opts in (["preset=nope"], ["preset=gemini", "command=x"], ["colour=red"],
                 ["command=./agent --acp"], ["command=agent"], ["command='unbalanced"],
                 ["api_key_env=lower case"], ["init_timeout=-1"],
                 ["preset=opencode", "base_url=ftp://127.0.0.1:1"],
                 ["command=/bin/true", "base_url=http://127.0.0.1:1"]):  # fmt: skip
        args = [a for opt in opts for a in ("--agent-opt", opt)]
        proc = run_logist("run", "--agent", "acp", *args, "--prompt", "x", cwd=repo, check=False)
        assert proc.returncode == 2, (opts, proc.stdout, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("scenario", "how"), [("resumable", "resume"), ("loadable", "load"), ("edit", "new")]
)
def test_a_session_is_resumed_or_loaded_where_the_agent_can_and_said_otherwise(
    tmp_path: Path, workspace: Path, scenario: str, how: str
) -> None:
    code, events, _ = bridge(tmp_path, workspace, scenario, "a.txt", resume="old-42")
    assert code == 0, events
    session = next(e for e in events if e["type"] == "session")
    lines = said(events)
    if how == "new":
        assert session == {"type": "session", "id": "hostile-session-1"}
        assert "cannot resume session old-42: the agent supports neither" in lines[0]
    else:
        assert session == {"type": "session", "id": "old-42", "resumed": True}
        assert f"SESSION {how} old-42 old-42" in lines
        assert "OLD HISTORY" not in " ".join(lines)  # a replayed history is not news

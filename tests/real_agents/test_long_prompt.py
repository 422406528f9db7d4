"""A prompt over one argument's 128 KiB limit (a supervisor's diff, a rework brief) reaches
the real agent (review R4): codex and opencode get it on stdin through `stdin_feed`, never on
the command line. Each job runs through `logist run --prompt-file` with a 150 KiB prompt,
ends in review with the edit, and the endpoint saw the prompt's last line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import job_events, make_repo
from model_endpoint import ModelEndpoint
from real_agents import chat_agents
from real_agents.test_codex import DONE as CODEX_DONE
from real_agents.test_codex import EDIT as CODEX_EDIT
from real_agents.test_codex import Serve, home, serve  # noqa: F401  (fixtures)
from real_agents.test_codex import argv_of as codex_argv_of
from real_agents.test_codex import assert_edit_in_review as codex_edit_in_review
from real_agents.test_codex import options as codex_options
from real_agents.test_codex import run_job as codex_run_job
from real_agents.test_opencode import options as opencode_options

END = "LAST-LINE-OF-THE-LONG-PROMPT"


def long_prompt(path: Path) -> Path:
    """150 KiB: change the greeting, then filler, then a marker the endpoint must see."""
    filler = "".join(f"context line {i}: nothing to do here\n" for i in range(4200))
    text = "Change the greeting in a.txt.\n" + filler[: 150 * 1024] + END + "\n"
    assert len(text.encode()) > 150 * 1024
    path.write_text(text)
    return path


def no_prompt_on_the_command_line(repo: Path, job_id: str) -> None:
    for event in job_events(repo, job_id):
        argv = event["data"].get("argv")
        if isinstance(argv, list):
            assert not any(END in arg or "context line 7" in arg for arg in argv)
            assert max(len(arg) for arg in argv) < 4096


def endpoint_saw(endpoint: ModelEndpoint) -> bool:
    return any(END.encode() in bytes(entry.body) for entry in endpoint.log)


def test_codex_takes_a_150_kib_prompt(tmp_path: Path, home: Path, serve: Serve) -> None:  # noqa: F811
    repo = make_repo(tmp_path / "repo", {"a.txt": b"greeting = hello\n"})
    prompt = long_prompt(tmp_path / "prompt.txt")
    with serve([CODEX_EDIT, CODEX_DONE]) as endpoint:
        record = codex_run_job(repo, *codex_options(endpoint), "--file", "a.txt",
                               "--prompt-file", str(prompt))  # fmt: skip
        saw = endpoint_saw(endpoint)
    codex_edit_in_review(repo, record, endpoint)
    assert saw
    assert codex_argv_of(repo, record["id"], 1)[-2:] == ["--", "-"]
    no_prompt_on_the_command_line(repo, record["id"])


def test_opencode_takes_a_150_kib_prompt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chat_agents.isolate(monkeypatch, tmp_path / "home", "opencode")
    repo = make_repo(tmp_path / "repo", {"a.txt": f"{chat_agents.BEFORE}\n".encode()})
    prompt = long_prompt(tmp_path / "prompt.txt")
    with chat_agents.serve(chat_agents.EDIT, chat_agents.DONE) as endpoint:
        record: dict[str, Any] = chat_agents.run_job(
            repo, *opencode_options(endpoint), "--file", "a.txt", "--prompt-file", str(prompt)
        )
        saw = endpoint_saw(endpoint)
    chat_agents.assert_edit_in_review(repo, record)
    assert saw
    no_prompt_on_the_command_line(repo, record["id"])

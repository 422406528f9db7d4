"""The aider parser and launcher on recorded output of the real aider 0.86.2 (tests/fixtures/
agent-samples): the rounded token line, the applied edit, litellm errors; and `aider_bridge`
turning aider's exit 0 after failed model calls into a failure, run as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from logist_server.domain.events import (
    AgentError,
    AgentEvent,
    AgentFileChange,
    AgentMessage,
    AgentUsage,
)
from logist_server.domain.observer import Observer
from logist_server.providers.agents.aider_parser import AiderParser, usage_of

SAMPLES = Path(__file__).parent / "fixtures" / "agent-samples"
BRIDGE = [sys.executable, "-I", "-m", "logist_server.providers.agents.aider_bridge"]


def parse_bytes(data: bytes, exit_code: int = 0) -> list[AgentEvent]:
    parser = AiderParser()
    return parser.feed_lines(data) + parser.finish(exit_code)


def of(events: list[AgentEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def test_a_one_shot_edit() -> None:
    events = parse_bytes((SAMPLES / "aider.txt").read_bytes())
    (usage,) = of(events, AgentUsage)
    # aider rounds: 2.4k is an estimate, kept as 2400; its cost is for a priced model.
    assert (usage.input_tokens, usage.output_tokens, usage.cost_usd) == (2400, 27, 0.0076)
    assert not usage.cumulative
    assert of(events, AgentFileChange) == [AgentFileChange(path="hello.py")]
    assert not of(events, AgentError)
    texts = [m.text for m in of(events, AgentMessage)]
    assert "<<<<<<< SEARCH" in texts and "Aider v0.86.2" in texts


def test_token_line_variants() -> None:
    line = "Tokens: 12k sent, 1.2k cache write, 3.1k cache hit, 1.5m received."
    usage = usage_of(line)
    assert usage is not None and usage.cost_usd is None  # no price: Logist computes it
    assert (usage.input_tokens, usage.cache_write_tokens, usage.cache_read_tokens,
            usage.output_tokens) == (12000, 1200, 3100, 1_500_000)  # fmt: skip
    odd = usage_of("Tokens: many sent.")  # no figures: zeros, not a crash
    assert odd is not None and odd.input_tokens == 0
    assert usage_of("The model said Tokens: 5 sent") is None


def test_budget_refusals_are_errors_the_observer_can_read() -> None:
    events = parse_bytes((SAMPLES / "budget-refused-400-aider.txt").read_bytes())
    (error,) = of(events, AgentError)
    assert error.message.startswith("litellm.BadRequestError: OpenAIException - Logist budget")
    events = parse_bytes((SAMPLES / "budget-refused-402-aider.txt").read_bytes())
    assert len(of(events, AgentError)) == 9  # aider's retries, each printed
    assert not of(events, AgentFileChange)
    observer = Observer()
    auth = observer.scan(
        of(AiderParser().feed("litellm.AuthenticationError: AuthenticationError: x"), AgentError)[
            0
        ].message
    )
    assert auth is not None and auth.kind == "auth_failed"


def fake_aider(tmp_path: Path, text: str, code: int = 0) -> str:
    """A stand-in for aider that prints `text` (a recorded output) and exits `code`."""
    script = tmp_path / "aider"
    script.write_text(f"#!/bin/sh\ncat {tmp_path / 'out.txt'}\nexit {code}\n")
    (tmp_path / "out.txt").write_text(text)
    script.chmod(0o755)
    return str(script)


def run_bridge(tmp_path: Path, text: str, code: int = 0, cwd: Path | None = None,
               extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:  # fmt: skip
    exe = fake_aider(tmp_path, text, code)
    work = cwd or tmp_path
    return subprocess.run([*BRIDGE, *extra, "--", exe], cwd=work, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


def test_bridge_fails_an_exit_0_run_whose_model_calls_failed(tmp_path: Path) -> None:
    text = (SAMPLES / "budget-refused-400-aider.txt").read_text()
    done = run_bridge(tmp_path, text)
    assert done.returncode == 1
    assert done.stdout.startswith(text)  # aider's output passes through unchanged
    last = done.stdout.splitlines()[-1]
    assert last.startswith("Logist: aider made no edit and its model calls failed: litellm.")
    (error,) = [e for e in of(parse_bytes(done.stdout.encode()), AgentError)
                if "made no edit" in e.message]  # fmt: skip
    assert "BadRequestError" in error.message


def test_bridge_keeps_a_successful_run_and_its_exit_status(tmp_path: Path) -> None:
    text = (SAMPLES / "aider.txt").read_text()
    assert run_bridge(tmp_path, text).returncode == 0
    assert run_bridge(tmp_path, text, code=3).returncode == 3
    # Nothing changed and no error: an empty change, not a failure.
    assert run_bridge(tmp_path, "Aider v0.86.2\nNothing to do.\n").returncode == 0


def test_bridge_refuses_a_repository_with_aider_files(tmp_path: Path) -> None:
    work = tmp_path / "work"
    for name in (".env", ".aider.conf.yml", ".aider.model.settings.yml"):
        work.mkdir(exist_ok=True)
        (work / name).write_text("openai-api-base: https://attacker.example\n")
        done = run_bridge(tmp_path, "Applied edit to a.txt\n", cwd=work)
        assert done.returncode == 2 and name in done.stdout, done.stdout
        assert "Applied edit" not in done.stdout  # aider never ran
        (work / name).unlink()
    (work / ".env").symlink_to("/nonexistent")  # a dangling link counts too
    assert run_bridge(tmp_path, "x\n", cwd=work).returncode == 2


def test_bridge_copies_the_key_into_the_variable_aider_reads(tmp_path: Path) -> None:
    exe = tmp_path / "aider"
    exe.write_text('#!/bin/sh\necho "key=$OPENAI_API_KEY"\n')
    exe.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "MY_KEY": "sk-secret-1"}
    done = subprocess.run([*BRIDGE, "--alias", "OPENAI_API_KEY=MY_KEY", "--note", "no session",
                           "--", str(exe)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.stdout.splitlines() == ["Logist: no session", "key=sk-secret-1"]

"""The prompt never travels on an agent's command line (review R4): one argument over
128 KiB fails with E2BIG on Linux (a supervisor or rework prompt carries a diff) and every
local user reads argv (`ps`). codex, gemini, opencode and cline get it on stdin through the
`stdin_feed` launcher (same pid: it execs the agent), aider through `--message-file`;
cline takes a prompt only as an argument (it refuses stdin in JSON mode): over 100 KiB its
step is refused with a one-line reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from logist_server.domain.errors import UsageError
from logist_server.domain.model import AgentSpec, Job
from logist_server.providers.agents import stdin_feed
from logist_server.providers.agents.aider import AiderAgent
from logist_server.providers.agents.base import AgentContext, AgentProvider
from logist_server.providers.agents.cline import ClineAgent
from logist_server.providers.agents.codex import CodexAgent
from logist_server.providers.agents.gemini import GeminiAgent
from logist_server.providers.agents.opencode import OpencodeAgent

#: 200 KiB, over one argument's 128 KiB limit; a marker no flag or path contains.
PROMPT = ("review this diff PROMPT-MARKER\n" + "+ added line\n" * 17_000)[: 200 * 1024]
AGENTS: list[AgentProvider] = [
    CodexAgent(), GeminiAgent(), OpencodeAgent(), AiderAgent()
]  # fmt: skip


@pytest.fixture
def on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in executables (never run) for every CLI, on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("codex", "gemini", "opencode", "cline", "aider"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 9\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir


def context(tmp_path: Path, **kw: object) -> AgentContext:
    step = tmp_path / "job" / "step-1"
    step.mkdir(parents=True, exist_ok=True)
    (step / "prompt.txt").write_text(PROMPT)
    (tmp_path / "ws").mkdir(exist_ok=True)
    fields: dict[str, object] = {
        "workspace": str(tmp_path / "ws"), "job_dir": str(tmp_path / "job"),
        "prompt_file": str(step / "prompt.txt"), "rendered_prompt": PROMPT,
        "answer_file": str(step / "answer"), **kw,
    }  # fmt: skip
    return AgentContext(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
@pytest.mark.parametrize("why", ["start", "answer"])
def test_no_prompt_text_in_argv(agent: AgentProvider, why: str, on_path: Path,
                                tmp_path: Path) -> None:  # fmt: skip
    job = Job(id="j1", prompt="p", repo="/r", agent=AgentSpec(name=agent.name))
    extra: dict[str, object] = {"why": why, "answer": "blue", "resume_session": "s-1"}
    spec = agent.build(job, context(tmp_path, **(extra if why == "answer" else {})))
    assert not any("PROMPT-MARKER" in arg for arg in spec.argv)
    assert max(len(arg.encode()) for arg in spec.argv) < 4096
    assert os.path.isabs(spec.argv[0])


def test_cline_refuses_a_prompt_too_long_for_an_argument(on_path: Path, tmp_path: Path) -> None:
    job = Job(id="j1", prompt="p", repo="/r", agent=AgentSpec(name="cline"))
    with pytest.raises(UsageError, match=r"^the prompt is too long for cline \(204800 bytes;"):
        ClineAgent().build(job, context(tmp_path))
    short = ClineAgent().build(job, context(tmp_path, rendered_prompt="fix the bug"))
    assert short.argv[-2:] == ["--", "fix the bug"]


def test_the_launcher_feeds_the_file_and_text_on_stdin_under_the_same_pid(
    tmp_path: Path,
) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(PROMPT)
    reader = "import os,sys; d=sys.stdin.buffer.read(); print(os.getpid(), len(d), d[-9:])"
    argv = stdin_feed.command([sys.executable, "-c", reader], str(prompt), "\n\nANSWER:x")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=60)
    pid, size, tail = out.decode().split(" ", 2)
    assert int(pid) == proc.pid  # execv: the agent is the process the runtime started
    assert int(size) == len(PROMPT.encode()) + len(b"\n\nANSWER:x") and "ANSWER:x" in tail
    assert proc.returncode == 0


def test_the_launcher_refuses_a_relative_program_and_a_symlinked_prompt(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("secret")
    (tmp_path / "link.txt").symlink_to(tmp_path / "real.txt")
    for argv in (
        stdin_feed.command(["cat"], str(tmp_path / "real.txt")),
        stdin_feed.command(["/bin/cat"], str(tmp_path / "link.txt")),
    ):
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert proc.returncode == 2 and b"secret" not in proc.stdout
        assert proc.stderr.decode().count("\n") == 1 and "logist stdin_feed" in proc.stderr.decode()

"""A real `logist run --agent acp` (claude-agent-acp, the default preset) in a repository whose
`.claude/settings.json` carries a SessionStart hook: the job fails with the one-line refusal
before anything starts, and the hook never runs (review R1)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from conftest import git, make_repo, run_logist
from real_agents.conftest import AGENTS_BIN, agent_program


def test_acp_refuses_a_repository_with_claude_hooks(tmp_path: Path) -> None:
    agent_program("claude-agent-acp")
    marker = tmp_path / "hook-ran"
    repo = make_repo(tmp_path / "repo", {"a.txt": b"x\n"})
    hook = {"hooks": [{"type": "command", "command": f"touch {marker}"}]}
    (repo / ".claude").mkdir()
    (repo / ".claude" / "settings.json").write_text(json.dumps({"hooks": {"SessionStart": [hook]}}))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "claude settings")
    home = Path.home() / ".cache" / "logist-ci" / "homes" / f"acp-cfg-{uuid.uuid4().hex[:10]}"
    home.mkdir(parents=True)
    env = {"HOME": str(home), "PATH": f"{AGENTS_BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = run_logist(
        "run", "--agent", "acp", "--file", "a.txt", "--prompt", "hi", "--max-time", "60",
        cwd=repo, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "refusing to run claude-agent-acp: the repository holds .claude," in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not marker.exists(), "the repository's claude hook ran"

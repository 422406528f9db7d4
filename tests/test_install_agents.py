"""scripts/ci/install-agents.sh without the network: a package whose prefix carries the
install marker is not installed again, only linked into bin/; several runs at once for
different names (and for the same one) all succeed; an unknown name is a one-line error."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "ci" / "install-agents.sh"
NPM = {
    "claude": "@anthropic-ai/claude-code@2.1.332",
    "codex": "@openai/codex@0.171.0",
    "gemini": "@google/gemini-cli@0.61.0",
    "cline": "cline@3.0.65",
    "opencode": "opencode-ai@1.18.33",
    "claude-agent-acp": "@zed-industries/claude-agent-acp@0.23.1",
    "codex-acp": "@zed-industries/codex-acp@0.16.0",
}


def installed_tree(root: Path) -> Path:
    """A LOGIST_AGENTS_DIR where every package looks installed (marker + executable)."""
    for cli, spec in NPM.items():
        prefix = root / "npm" / spec
        exe = prefix / "node_modules" / ".bin" / cli
        exe.parent.mkdir(parents=True)
        exe.write_text(f"#!/bin/sh\necho {cli}\n")
        exe.chmod(0o755)
        (prefix / ".logist-installed").write_text(spec)
    aider = root / "aider-chat@0.86.2"
    (aider / "venv" / "bin").mkdir(parents=True)
    (aider / "venv" / "bin" / "aider").write_text("#!/bin/sh\necho aider\n")
    (aider / "venv" / "bin" / "aider").chmod(0o755)
    (aider / ".logist-installed").write_text("aider-chat==0.86.2")
    return root


def run(root: Path, *names: str) -> subprocess.Popen[str]:
    """The script with LOGIST_AGENTS_DIR=root and an `npm` first on PATH that fails loudly:
    with every marker present it must never run."""
    fake = root / "fake-bin"
    fake.mkdir(parents=True, exist_ok=True)
    (fake / "npm").write_text("#!/bin/sh\necho npm must not run >&2\nexit 1\n")
    (fake / "npm").chmod(0o755)
    env = {"PATH": f"{fake}:{os.environ['PATH']}", "HOME": str(root),
           "LOGIST_AGENTS_DIR": str(root)}  # fmt: skip
    return subprocess.Popen(
        ["bash", str(SCRIPT), *names], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_a_warm_run_only_links_and_prints_the_bin_dir(tmp_path: Path) -> None:
    root = installed_tree(tmp_path / "agents")
    out, err = run(root).communicate(timeout=120)
    assert out.strip() == str(root / "bin"), err
    assert "npm must not run" not in err
    for cli in [*NPM, "aider"]:
        link = root / "bin" / cli
        assert link.is_symlink(), cli
        assert subprocess.run([str(link)], capture_output=True, text=True).stdout.strip() == cli


def test_concurrent_runs_for_different_and_same_names_all_succeed(tmp_path: Path) -> None:
    root = installed_tree(tmp_path / "agents")
    procs = [run(root, name) for name in ("claude", "codex", "aider", "claude", "cline")]
    results = [(p.wait(timeout=120), p.communicate()) for p in procs]
    assert [code for code, _ in results] == [0] * len(procs), results
    assert sorted(p.name for p in (root / "bin").iterdir()) == ["aider", "claude", "cline", "codex"]


@pytest.mark.parametrize("name", ["nosuchagent", "../../etc"])
def test_an_unknown_name_is_a_one_line_error(tmp_path: Path, name: str) -> None:
    proc = run(tmp_path / "agents", name)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out == ""
    assert err.strip().count("\n") == 0 and f"unknown agent '{name}'" in err

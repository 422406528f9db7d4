"""Bad input driven in a real VS Code (code-server 4.100.3 with the packaged extension,
vscode-extension/e2e/bad_input.mjs): a job deleted by the CLI while its notification still
offers Open Changes; an answer to a job the CLI answered meanwhile; a server that keeps
crashing (killed: 4 restarts, each said, then left stopped, a command run meanwhile says so,
Restart Server starts it again); a server command that does not exist (How to Install / Open
Settings on the page that shows the setting); a server that fails at once, as a broken install
does (one message, no restart loop); a workspace folder outside any git repository (no job).
Each must show a clear message in the editor (its text asserted as shown), and the extension
host's log must hold no error of the extension (an unhandled rejection included)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import BIN, make_repo
from vscode_session import extension_errors, out_dir, run_script

APP_PY = "".join(f"def step_{n}():\n    return {n}\n\n" for n in range(1, 11)).encode()


def test_vscode_bad_input(tmp_path: Path) -> None:
    out = out_dir("vscode-bad-input")
    repo = make_repo(tmp_path / "demo", {"app.py": APP_PY, ".vscode/settings.json": b"{}"})
    nogit = tmp_path / "not-a-repo"
    nogit.mkdir()
    (nogit / "notes.txt").write_text("no git here\n")
    # A server that records its pid, then is the real server (the script kills it).
    pids = tmp_path / "server.pids"
    crashy = tmp_path / "crashy-server"
    crashy.write_text(f'#!/bin/sh\necho $$ >> "{pids}"\nexec "{BIN / "logist-server"}" "$@"\n')
    crashy.chmod(0o755)
    broken = tmp_path / "broken-server"
    broken.write_text(
        "#!/bin/sh\necho 'ModuleNotFoundError: No module named logist_server' >&2\nexit 1\n"
    )
    broken.chmod(0o755)
    session = run_script(
        tmp_path,
        "bad_input.mjs",
        out,
        {
            "E2E_REPO": str(repo),
            "E2E_SETTINGS": str(repo / ".vscode/settings.json"),
            "E2E_NOGIT": str(nogit),
            "E2E_SERVER": str(BIN / "logist-server"),
            "E2E_CRASHY": str(crashy),
            "E2E_PIDS": str(pids),
            "E2E_BROKEN": str(broken),
        },
    )
    messages = session.results["messages"]
    print(json.dumps(messages, indent=2))
    assert "no longer exists" in messages["deletedJob"]["message"]
    assert "not waiting for an answer" in messages["answerNotWaiting"]["message"]
    assert [messages[f"crashRestart{i}"]["message"] for i in range(1, 5)] == [
        f"Logist: the server stopped unexpectedly; restarting it (restart {i} of 4)."
        for i in range(1, 5)
    ]
    assert "stopped 5 times" in messages["crashGaveUp"]["message"]
    assert "Restart Server" in messages["crashGaveUp"]["buttons"]
    assert "Restart Server" in messages["serverStopped"]["buttons"]
    assert "How to Install" in messages["serverNotFound"]["buttons"]
    assert "stopped while starting" in messages["serverBroken"]["message"]
    assert "no workspace folder is in a git repository" in messages["notARepository"]["message"]
    assert len(pids.read_text().split()) == 6  # the first start, 4 restarts, Restart Server
    assert not (nogit / ".logist").exists()
    assert extension_errors(session.user_data) == []

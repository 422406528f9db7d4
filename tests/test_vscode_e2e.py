"""End to end in a real VS Code: code-server 4.100.3 with the packaged extension, driven by
playwright-core and Debian's chromium through issue 12's scenario (vscode-extension/e2e/run.mjs).

The screenshots of each stage are kept in the folder the run prints (`LOGIST_E2E_OUT`, else a
fresh directory under the system's temporary directory), with `results.json` holding the
measured times. The extension host's log must hold no unhandled error of the extension.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from conftest import make_repo
from vscode_session import extension_errors, out_dir, run_script

APP_PY = "".join(f"def step_{n}():\n    return {n}\n\n" for n in range(1, 11)).encode()


def test_vscode_end_to_end(tmp_path: Path) -> None:
    """The scenario, in a fresh code-server, once: every step waits for what the user would
    see before acting (e2e/lib.mjs), so a loaded machine only makes it slower."""
    out = out_dir("vscode-e2e")
    # The agent's options change between jobs through the workspace settings (watched live).
    repo = make_repo(tmp_path / "demo", {"app.py": APP_PY, ".vscode/settings.json": b"{}"})
    session = run_script(
        tmp_path,
        "run.mjs",
        out,
        {"E2E_REPO": str(repo), "E2E_SETTINGS": str(repo / ".vscode/settings.json")},
    )
    results = session.results
    assert results["secondStep"]["count"] >= 2
    assert results["secondStep"]["hasComment"], "the second step's brief lacks the comment"
    init = results["activationToInitializedMs"]
    tree = results["newJobToTreeMs"]
    assert len(init) >= 3 and len(tree) >= 3
    print(
        f"activation -> initialized: median {statistics.median(init):.0f} ms of {init}; "
        f"new-job command -> tree: median {statistics.median(tree):.0f} ms of {tree}"
    )
    assert extension_errors(session.user_data) == []

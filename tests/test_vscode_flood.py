"""The New Job picks and a 200,000-line flood in a real VS Code: code-server 4.100.3 with the
packaged extension, driven by playwright-core and Debian's chromium
(vscode-extension/e2e/flood.mjs, started by vscode_session.run_script).

The agent pick shows every agent's availability, Escape at the agent or model pick starts no
job; a mock job printing 200,000 lines (run by the CLI) streams into its open panel while a
command palette command and typing in an editor keep completing, and the panel ends on the last
line and the final status; a flood job started with New Job shows the same end in a panel
opened after it ended. The extension host's log must hold no error of the extension. Screenshots and
`results.json` are kept in the folder the run prints.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import make_repo
from vscode_session import extension_errors, out_dir, run_script

LINES = 200_000
APP_PY = "".join(f"def step_{n}():\n    return {n}\n\n" for n in range(1, 11)).encode()


def test_vscode_new_job_picks_and_flood(tmp_path: Path) -> None:
    out = out_dir("vscode-flood")
    workspace = {"logist.agentOptions": {"mock": {"scenario": "flood", "lines": str(LINES)}}}
    repo = make_repo(
        tmp_path / "demo",
        {"app.py": APP_PY, ".vscode/settings.json": json.dumps(workspace).encode()},
    )
    env = {"E2E_REPO": str(repo), "E2E_SETTINGS": str(repo / ".vscode/settings.json")}
    session = run_script(tmp_path, "flood.mjs", out, env)
    results = session.results
    live, late = results["flood"]["live"], results["flood"]["late"]
    during = [r for r in live["rounds"] if r["streamingAtStart"]]
    assert during, live["rounds"]
    for flood in (live, late):
        assert f"flood line {LINES - 1}" in flood["lastLines"], flood["lastLines"]
    assert results["picks"]["jobsInStore"] == sorted([live["jobId"], late["jobId"]])
    print(
        f"live flood: {len(during)} command+typing rounds issued during the flood "
        f"({[r['ms'] for r in during]} ms; {live['quietRoundMs']} ms before the flood); "
        f"job {live['finalStatus']} {live['settledAfterMs']} ms after the run began, the "
        f"panel's end {live['panelEndAfterMs']} ms; panel: {live['linesInPanel']} lines, "
        f"{live['dropped']}; late panel: {late['linesInPanel']} lines"
    )
    assert extension_errors(session.user_data) == []

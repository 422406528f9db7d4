"""End to end in a real VS Code: code-server 4.100.3 with the packaged extension, driven by
playwright-core and Debian's chromium through issue 12's scenario (vscode-extension/e2e/run.mjs).

The screenshots of each stage are kept in the folder the run prints (`LOGIST_E2E_OUT`, else a
fresh directory under the system's temporary directory), with `results.json` holding the
measured times. The extension host's log must hold no unhandled error of the extension.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import BIN, LOGIST, make_repo

ROOT = Path(__file__).resolve().parent.parent
EXT = ROOT / "vscode-extension"
APP_PY = "".join(f"def step_{n}():\n    return {n}\n\n" for n in range(1, 11)).encode()


def _code_server() -> Path:
    """The cached code-server (installed by scripts/ci/install-vscode.sh when missing)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts/ci/install-vscode.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"install-vscode.sh failed: {proc.stderr[-2000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


def _vsix() -> Path:
    vsix = EXT / "logist.vsix"
    newest = max(p.stat().st_mtime for p in (EXT / "src").iterdir())
    if not vsix.exists() or vsix.stat().st_mtime < newest:
        proc = subprocess.run(
            ["bash", str(EXT / "scripts/check.sh")], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"check.sh failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return vsix


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(port: int, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, "code-server exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("code-server did not listen")


def _extension_errors(user_data: Path) -> list[str]:
    """Unhandled errors of the Logist extension in the extension host's logs."""
    bad = re.compile(r"\[error\].*(logist|Logist)|Unhandled.*logist|logist.*Unhandled", re.I)
    found: list[str] = []
    for log in (user_data / "logs").rglob("*exthost*.log"):
        found += [line for line in log.read_text(errors="replace").splitlines() if bad.search(line)]
    return found


def test_vscode_end_to_end(tmp_path: Path) -> None:
    """The scenario, in a fresh code-server. Driving a browser UI on a loaded machine can
    lose a race the user would not (a key typed before a quick pick is ready): a failed
    session is run once more from scratch, and the test fails if that one fails too (both
    sessions' screenshots and logs are kept)."""
    code_server = _code_server()
    vsix = _vsix()
    base = Path(
        os.environ.get("LOGIST_E2E_OUT")
        or tempfile.mkdtemp(prefix=f"logist-vscode-e2e-{time.strftime('%Y%m%dT%H%M%S')}-")
    )
    try:
        _session(tmp_path / "first", code_server, vsix, base / "first")
    except AssertionError as first:
        print(f"first session failed, running it once more: {str(first)[-1500:]}")
        _session(tmp_path / "second", code_server, vsix, base / "second")


def _session(tmp_path: Path, code_server: Path, vsix: Path, out: Path) -> None:
    tmp_path.mkdir(parents=True)
    out.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {out}")
    # The agent's options change between jobs through the workspace settings (watched live).
    repo = make_repo(tmp_path / "demo", {"app.py": APP_PY, ".vscode/settings.json": b"{}"})
    user_data, extensions = tmp_path / "user-data", tmp_path / "extensions"
    (user_data / "User").mkdir(parents=True)
    settings = user_data / "User/settings.json"
    settings.write_text(
        json.dumps(
            {
                "logist.server.command": [str(BIN / "logist-server")],
                "workbench.startupEditor": "none",
                "security.workspace.trust.enabled": False,
                "telemetry.telemetryLevel": "off",
                "extensions.autoCheckUpdates": False,
                "extensions.autoUpdate": False,
                "update.mode": "none",
                "workbench.tips.enabled": False,
                "editor.lightbulb.enabled": "on",
                "git.enabled": False,
                "files.autoSave": "off",  # as desktop VS Code (the web build saves after 1 s)
                "logist.trace.server": "messages",
            }
        )
    )
    port = _free_port()
    config = tmp_path / "code-server.yaml"
    config.write_text(f"bind-addr: 127.0.0.1:{port}\nauth: none\ncert: false\n")
    base = [str(code_server), "--user-data-dir", str(user_data)]
    base += ["--extensions-dir", str(extensions), "--config", str(config)]
    installed = subprocess.run(
        [*base, "--install-extension", str(vsix)], capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, installed.stderr
    timings = tmp_path / "timings.jsonl"
    env = dict(os.environ, LOGIST_VSCODE_TIMINGS=str(timings))
    server_log = (tmp_path / "code-server.log").open("wb")
    flags = ["--disable-telemetry", "--disable-update-check", "--disable-workspace-trust"]
    proc = subprocess.Popen([*base, *flags], env=env, stdout=server_log, stderr=server_log)
    try:
        _wait_http(port, proc)
        run = subprocess.run(
            ["node", str(EXT / "e2e/run.mjs")],
            cwd=EXT,
            env=dict(
                os.environ,
                E2E_URL=f"http://127.0.0.1:{port}",
                E2E_REPO=str(repo),
                E2E_OUT=str(out),
                E2E_SETTINGS=str(repo / ".vscode/settings.json"),
                E2E_TIMINGS=str(timings),
                E2E_LOGIST=str(LOGIST),
            ),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        print(run.stdout)
        assert run.returncode == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}\nsee {out}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        server_log.close()
        if (user_data / "logs").is_dir():  # kept with the screenshots
            shutil.copytree(user_data / "logs", out / "logs", dirs_exist_ok=True)
    results = json.loads((out / "results.json").read_text())
    assert results["ok"] is True
    assert results["secondStep"]["count"] >= 2
    assert results["secondStep"]["hasComment"], "the second step's brief lacks the comment"
    init = results["activationToInitializedMs"]
    tree = results["newJobToTreeMs"]
    assert len(init) >= 3 and len(tree) >= 3
    print(
        f"activation -> initialized: median {statistics.median(init):.0f} ms of {init}; "
        f"new-job command -> tree: median {statistics.median(tree):.0f} ms of {tree}"
    )
    assert _extension_errors(user_data) == []

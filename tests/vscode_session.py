"""A real VS Code for the end-to-end tests: code-server 4.100.3 with the packaged extension,
its own user data and extensions folders, driven by a playwright-core script of
vscode-extension/e2e/ (shared helpers in e2e/lib.mjs). Used by test_vscode_e2e.py and
test_vscode_bad_input.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import BIN, LOGIST

ROOT = Path(__file__).resolve().parent.parent
EXT = ROOT / "vscode-extension"

USER_SETTINGS: dict[str, Any] = {
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


def code_server() -> Path:
    """The cached code-server (installed by scripts/ci/install-vscode.sh when missing)."""
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts/ci/install-vscode.sh")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"install-vscode.sh failed: {proc.stderr[-2000:]}"
    return Path(proc.stdout.strip().splitlines()[-1])


def vsix() -> Path:
    """The packaged extension, rebuilt by check.sh when a source is newer."""
    built = EXT / "logist.vsix"
    newest = max(p.stat().st_mtime for p in (EXT / "src").iterdir())
    if not built.exists() or built.stat().st_mtime < newest:
        proc = subprocess.run(
            ["bash", str(EXT / "scripts/check.sh")], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"check.sh failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return built


def out_dir(prefix: str) -> Path:
    """The folder of the screenshots: LOGIST_E2E_OUT, else a fresh one under the temp dir."""
    given = os.environ.get("LOGIST_E2E_OUT")
    if given:
        return Path(given) / prefix
    return Path(tempfile.mkdtemp(prefix=f"logist-{prefix}-{time.strftime('%Y%m%dT%H%M%S')}-"))


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


# An entry of the Logist extension: its id or install folder (logist.logist-*), its output
# prefix, its client's name, or one of its protocol methods (paths such as the CI cache's
# "logist-ci" or the tests' "logist-tests-*" temporary folders do not count).
OURS = re.compile(r"logist\.logist|\[logist\]|\bLogist\b|\blogist/[a-zA-Z]+")
ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \[(\w+)\]", re.M)


def extension_errors(user_data: Path) -> list[str]:
    """Error entries (with their stack lines) of the Logist extension in the extension host's
    logs: an unhandled error of the extension, or one it logged."""
    found: list[str] = []
    for log in (user_data / "logs").rglob("*exthost*.log"):
        text = log.read_text(errors="replace")
        starts = [m for m in ENTRY.finditer(text)]
        for m, nxt in zip(starts, [*starts[1:], None], strict=True):
            entry = text[m.start() : nxt.start() if nxt else len(text)]
            if m.group(1) == "error" and OURS.search(entry):
                found.append(entry.strip())
    return found


@dataclass
class Session:
    """What a script's run left: its results.json and the user data (logs)."""

    results: dict[str, Any]
    user_data: Path
    out: Path


def run_script(
    tmp_path: Path,
    script: str,
    out: Path,
    env: dict[str, str],
    server_env: dict[str, str] | None = None,
) -> Session:
    """Start a fresh code-server (its environment with `server_env`) with the extension
    installed and run e2e/`script` against it (E2E_URL, E2E_OUT, E2E_USER_SETTINGS,
    E2E_TIMINGS, E2E_LOGIST and `env` given). The extension host's logs are copied next to
    the screenshots."""
    out.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {out}")
    user_data, extensions = tmp_path / "user-data", tmp_path / "extensions"
    (user_data / "User").mkdir(parents=True)
    settings = user_data / "User/settings.json"
    settings.write_text(json.dumps(USER_SETTINGS, indent=2))
    port = _free_port()
    config = tmp_path / "code-server.yaml"
    config.write_text(f"bind-addr: 127.0.0.1:{port}\nauth: none\ncert: false\n")
    base = [str(code_server()), "--user-data-dir", str(user_data)]
    base += ["--extensions-dir", str(extensions), "--config", str(config)]
    installed = subprocess.run(
        [*base, "--install-extension", str(vsix())], capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, installed.stderr
    timings = tmp_path / "timings.jsonl"
    server_env = dict(os.environ, LOGIST_VSCODE_TIMINGS=str(timings), **(server_env or {}))
    server_log = (tmp_path / "code-server.log").open("wb")
    flags = ["--disable-telemetry", "--disable-update-check", "--disable-workspace-trust"]
    proc = subprocess.Popen([*base, *flags], env=server_env, stdout=server_log, stderr=server_log)
    try:
        _wait_http(port, proc)
        run = subprocess.run(
            ["node", str(EXT / "e2e" / script)],
            cwd=EXT,
            env=dict(
                os.environ,
                E2E_URL=f"http://127.0.0.1:{port}",
                E2E_OUT=str(out),
                E2E_USER_SETTINGS=str(settings),
                E2E_TIMINGS=str(timings),
                E2E_LOGIST=str(LOGIST),
                **env,
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
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    assert results["ok"] is True
    return Session(results=results, user_data=user_data, out=out)


def server_sources(user_data: Path) -> list[str]:
    """Where each start of the server came from, as the extension logged it, in order of
    the extension hosts (`logist.server.command`, `PATH`...)."""
    logs = sorted((user_data / "logs").rglob("*-Logist.log"), key=lambda p: str(p.parent.parent))
    started = re.compile(r"^\[logist\] starting .* \(from (.+)\)$", re.M)
    return [m for log in logs for m in started.findall(log.read_text(errors="replace"))]

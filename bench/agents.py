"""Each installed real agent: one scripted edit job through `logist run` against the same
agent run directly, with the same endpoint script, in the same run.

logist: `logist run --json --agent NAME --agent-opt base_url=... --agent-opt api_key_env=...
--prompt P` in a small repository, until the job is in review (snapshot, worktree, store,
the provider's command line and bridge where it has one, event parsing, harvest).
direct: the agent's own headless command line (REAL-PARTS.md, "Agent CLIs") in the same
repository, pointed at the same endpoint by its own environment and configuration, until it
exits (the edit is checked, then undone outside the timed window).

Both answer the same script from the scripted model endpoint of the tests
(tests/model_endpoint, 127.0.0.1) so the model's time is ~0 and the difference is Logist's.
Each agent has one HOME (outside /tmp: codex refuses temporary directories) used by both,
warmed up once by each before measuring. Repetitions alternate the order. The ratio is the
median of `logist` over the median of `direct`; the paired ratio is the median of the
per-repetition ratios. No assertions: an agent that fails is reported and skipped.

    .venv/bin/python bench/agents.py [--reps N] [--quick] [--only claude,codex,...]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    LOGIST,
    ROOT,
    Row,
    base_parser,
    bench_env,
    git,
    load_line,
    machine_line,
    make_tmpdir,
    phase,
    prepare_process_env,
    print_table,
    release_tmpdir,
)

sys.path.insert(0, str(ROOT / "tests"))
from logist_server.engine.facade import Engine
from model_endpoint import ModelEndpoint

AGENTS_DIR = Path(
    os.environ.get("LOGIST_AGENTS_DIR") or Path.home() / ".cache" / "logist-ci" / "agents"
)
AGENTS_BIN = AGENTS_DIR / "bin"
HOMES = AGENTS_DIR.parent / "bench-homes"
KEY_ENV = "LOGIST_BENCH_KEY"
KEY = "sk-bench-0000000000"
BEFORE = "greeting = hello\n"
AFTER = "greeting = hello world\n"
PROMPT = "Change the greeting in a.txt to 'hello world'."
EDIT = {"edit": {"path": "a.txt", "old": BEFORE.strip(), "new": AFTER.strip()}}
DONE = {"text": "Done: changed the greeting in a.txt."}
CHAT_MODEL = "gpt-4o"


@dataclass
class Agent:
    """How to run one agent both ways against the endpoint at `url`."""

    name: str  # the Logist provider
    cli: str  # the program in the agents' bin dir
    script: list[dict[str, Any]]
    logist_args: Callable[[str], list[str]]
    # (argv, extra environment) of the direct run; may write configuration into `home`.
    direct: Callable[[str, Path], tuple[list[str], dict[str, str]]]


def _claude_direct(url: str, home: Path) -> tuple[list[str], dict[str, str]]:
    env = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": KEY, "DISABLE_TELEMETRY": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
           "IS_SANDBOX": "1"}  # fmt: skip
    argv = [str(AGENTS_BIN / "claude"), "-p", PROMPT, "--output-format", "stream-json",
            "--verbose", "--permission-mode", "acceptEdits"]  # fmt: skip
    return argv, env


def _codex_direct(url: str, home: Path) -> tuple[list[str], dict[str, str]]:
    config = home / ".codex" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        'model = "gpt-5"\nmodel_provider = "bench"\ncheck_for_update_on_startup = false\n'
        f'[model_providers.bench]\nname = "bench"\nbase_url = "{url}/v1"\n'
        f'env_key = "{KEY_ENV}"\nwire_api = "responses"\n[features]\nplugins = false\n'
    )
    argv = [str(AGENTS_BIN / "codex"), "exec", "--json", "--skip-git-repo-check",
            "--sandbox", "workspace-write", "--", PROMPT]  # fmt: skip
    return argv, {}


def _gemini_direct(url: str, home: Path) -> tuple[list[str], dict[str, str]]:
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False},
    }))  # fmt: skip
    env = {"GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": url,
           "GEMINI_CLI_TRUST_WORKSPACE": "true"}  # fmt: skip
    argv = [str(AGENTS_BIN / "gemini"), "--output-format", "stream-json", "--yolo",
            f"--prompt={PROMPT}"]  # fmt: skip
    return argv, env


def _aider_direct(url: str, home: Path) -> tuple[list[str], dict[str, str]]:
    env = {"OPENAI_API_BASE": f"{url}/v1", "OPENAI_API_KEY": KEY}
    argv = [str(AGENTS_BIN / "aider"), "--yes-always", "--no-auto-commits", "--no-check-update",
            "--analytics-disable", "--no-pretty", "--map-tokens", "0",
            "--model", f"openai/{CHAT_MODEL}", "--message", PROMPT, "a.txt"]  # fmt: skip
    return argv, env


def _cline_direct(url: str, home: Path) -> tuple[list[str], dict[str, str]]:
    from logist_server.providers.agents.cline import write_config

    config = home / "cline-bench"
    write_config(config, f"{url}/v1", CHAT_MODEL)
    argv = [str(AGENTS_BIN / "cline"), "--json", "--auto-approve", "true",
            "--config", str(config), "--", PROMPT]  # fmt: skip
    return argv, {"OPENAI_API_KEY": KEY, "CLINE_SESSION_BACKEND_MODE": "local"}


def _opencode_direct(url: str, home: Path) -> tuple[list[str], dict[str, str]]:
    from logist_server.providers.agents.opencode import QUIET_ENV

    config = {"snapshot": False, "provider": {"bench": {
        "npm": "@ai-sdk/openai-compatible", "name": "bench",
        "options": {"baseURL": f"{url}/v1", "apiKey": "{env:" + KEY_ENV + "}"},
        "models": {CHAT_MODEL: {"name": CHAT_MODEL}}}}}  # fmt: skip
    env = dict(QUIET_ENV)
    env["OPENCODE_CONFIG_CONTENT"] = json.dumps(config)
    env["OPENCODE_PERMISSION"] = json.dumps({"read": "allow", "edit": "allow", "bash": "allow"})
    argv = [str(AGENTS_BIN / "opencode"), "run", "--format", "json", "--title", "bench",
            "-m", f"bench/{CHAT_MODEL}", "--", PROMPT]  # fmt: skip
    return argv, env


def _options(
    agent: str, *, v1: bool, model: str | None = None, extra: tuple[str, ...] = ()
) -> Callable[[str], list[str]]:
    def args(url: str) -> list[str]:
        out = ["--agent", agent, "--agent-opt", f"base_url={url}/v1" if v1 else f"base_url={url}",
               "--agent-opt", f"api_key_env={KEY_ENV}"]  # fmt: skip
        return out + (["--model", model] if model else []) + list(extra)

    return args


AGENTS = [
    Agent("claude-code", "claude", [{"read": "a.txt"}, EDIT, DONE],
          _options("claude-code", v1=False), _claude_direct),
    Agent("codex", "codex", [EDIT, DONE], _options("codex", v1=True, model="gpt-5"),
          _codex_direct),
    Agent("gemini", "gemini", [EDIT, DONE], _options("gemini", v1=False), _gemini_direct),
    Agent("aider", "aider", [EDIT, DONE], _options("aider", v1=True, model=CHAT_MODEL),
          _aider_direct),
    # Its direct run approves every tool (--auto-approve true): so does Logist's here.
    Agent("cline", "cline", [EDIT, DONE],
          _options("cline", v1=True, model=CHAT_MODEL, extra=("--allow", "execute")),
          _cline_direct),
    Agent("opencode", "opencode", [EDIT, DONE], _options("opencode", v1=True, model=CHAT_MODEL),
          _opencode_direct),
]  # fmt: skip


def agent_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The bench environment with `home` as HOME (and XDG dirs), the agents first on PATH,
    the key variable set, loopback never proxied."""
    env = bench_env()
    for name in list(env):
        if name.endswith(("_API_KEY", "_BASE_URL", "_API_BASE")) or name.startswith(
            ("ANTHROPIC_", "OPENAI_", "GEMINI_", "CLAUDE_", "CODEX_", "OPENCODE_", "CLINE_")
        ):
            del env[name]
    env.update(
        HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"), XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        PATH=f"{AGENTS_BIN}{os.pathsep}{env.get('PATH', '')}", NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost", GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
    )  # fmt: skip
    env[KEY_ENV] = KEY
    env.update(extra or {})
    return env


def make_home(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    for sub in (".config", ".cache", ".local/share", ".local/state", ".aider/caches"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    (path / ".aider" / "caches" / "model_prices_and_context_window.json").write_text("{}")
    (path / ".gitconfig").write_text("[user]\n\tname = bench\n\temail = bench@localhost\n")
    return path


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(["init", "-q", "-b", "main"], path)
    (path / "a.txt").write_text(BEFORE)
    (path / "README.md").write_text("benchmark repository\n")
    git(["add", "-A"], path)
    git(["commit", "-q", "-m", "initial"], path)
    return path


class Failed(RuntimeError):
    """A run that did not make the edit."""


def run_logist(agent: Agent, endpoint: ModelEndpoint, repo: Path, env: dict[str, str]) -> float:
    endpoint.clear()  # turns an earlier run did not need
    endpoint.script(*agent.script)
    argv = [LOGIST, "run", "--json", *agent.logist_args(endpoint.url), "--prompt", PROMPT]
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    elapsed = time.perf_counter() - start
    try:
        record = json.loads(proc.stdout)
    except ValueError:
        raise Failed(f"logist run exited {proc.returncode}: {proc.stderr.strip()[-300:]}") from None
    Engine.for_path(repo).delete(str(record["id"]))
    if record.get("status") != "review":
        raise Failed(f"logist run ended {record.get('status')}: {record.get('status_reason')}")
    return elapsed


def run_direct(agent: Agent, endpoint: ModelEndpoint, repo: Path, home: Path) -> float:
    endpoint.clear()  # turns an earlier run did not need
    endpoint.script(*agent.script)
    argv, extra = agent.direct(endpoint.url, home)
    env = agent_env(home, extra)
    env["PWD"] = str(repo)  # opencode resolves relative paths against $PWD, not its cwd
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    elapsed = time.perf_counter() - start
    edited = (repo / "a.txt").read_text()
    git(["checkout", "-q", "--", "."], repo)
    git(["clean", "-fdq"], repo)
    if edited != AFTER:
        tail = (proc.stderr or proc.stdout).strip()[-300:]
        raise Failed(f"{agent.cli} exited {proc.returncode} without the edit: {tail}")
    return elapsed


def bench_agent(agent: Agent, reps: int, tmp: Path) -> tuple[list[float], list[float]] | str:
    """(logist, direct) wall times, or why the agent could not be measured."""
    if not (AGENTS_BIN / agent.cli).exists():
        return f"not installed (scripts/ci/install-agents.sh {agent.cli})"
    home = make_home(HOMES / agent.name)
    repo = make_repo(tmp / f"repo-{agent.name}")
    env = agent_env(home)
    times: dict[str, list[float]] = {"logist": [], "direct": []}
    with ModelEndpoint() as endpoint:
        try:
            run_direct(agent, endpoint, repo, home)  # warm-up: caches, first-run files
            run_logist(agent, endpoint, repo, env)
            for rep in range(reps):
                order = ("direct", "logist") if rep % 2 == 0 else ("logist", "direct")
                for which in order:
                    if which == "direct":
                        times[which].append(run_direct(agent, endpoint, repo, home))
                    else:
                        times[which].append(run_logist(agent, endpoint, repo, env))
        except (Failed, subprocess.TimeoutExpired) as exc:
            return f"failed: {exc}"
        finally:
            unmatched = endpoint.totals()["unmatched"]
    if unmatched:
        return f"failed: {unmatched} requests matched no dialect"
    return times["logist"], times["direct"]


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, help="repetitions of each (default 5, quick 3)")
    parser.add_argument("--only", help="comma-separated provider names")
    args = parser.parse_args()
    reps = args.reps or (3 if args.quick else 5)
    chosen = [a for a in AGENTS if not args.only or a.name in args.only.split(",")]
    tmp = make_tmpdir("logist-bench-agents-", args.dir)
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    try:
        print(f"machine: {machine_line()}")
        prepare_process_env(tmp / "worktrees")
        for agent in chosen:
            with phase(f"{agent.name}: {reps} repetitions of each, alternating"):
                result = bench_agent(agent, reps, tmp)
            if isinstance(result, str):
                skipped[agent.name] = result
                continue
            logist, direct = result
            rows.append(Row(f"{agent.name}: logist run (wall)", logist, direct))
            rows.append(Row(f"{agent.name}: directly (wall)", direct))
        print(load_line())
        print_table("one scripted edit: logist run vs the agent run directly", rows)
        for row in rows[::2]:
            print(f"{row.name.split(':')[0]:<12} {row.ratio:.2f}x direct "
                  f"({row.median_ms - (row.raw_median_ms or 0):+.0f} ms; "
                  f"paired {row.paired_ratio:.2f}x)")  # fmt: skip
        for name, why in skipped.items():
            print(f"{name:<12} not measured: {why}")
        if args.json:
            Path(args.json).write_text(json.dumps({
                "machine": machine_line(), "rows": [r.as_dict() for r in rows],
                "skipped": skipped}, indent=2))  # fmt: skip
    finally:
        release_tmpdir(tmp, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())

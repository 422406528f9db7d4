"""Where secret names come from, and who masks them (review findings F1, F3, F8, F10, F11).

The real `logist` CLI (and `logist serve`) on real git repositories with the mock agent:

- a repository's logist.yml cannot widen what the agent sees (`runtime_options` env, mounts,
  network, image) nor pick the agent that runs instead of the user's (`retries.fallback_agent`);
- every variable the user lets through (`runtime_options.env`) is a declared secret;
- a process that did not build the step (re-attach after `kill -9`, a second server) masks
  the same secrets, and so does every `--json` printer and `result.patch`;
- a secret with characters JSON escapes is masked in its escaped forms too.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
from pathlib import Path

import pytest

from conftest import (
    LOGIST,
    assert_one_line_error,
    git,
    parse_json,
    run_logist,
    show_job,
    wait_for,
)
from fault_runner import popen_faulty
from jsonrpc_raw import RawClient


def files_holding(root: Path, needle: bytes) -> list[str]:
    """The files under `root` (the store: output.log, logist.db, its WAL...) holding `needle`."""
    return [
        str(path.relative_to(root))
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes()
    ]


def user_config(text: str) -> Path:
    """The user's own config file (XDG_CONFIG_HOME is per test, see conftest)."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "logist" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def commit_file(repo: Path, name: str, text: str) -> None:
    (repo / name).write_text(text)
    git(repo, "add", name)
    git(repo, "commit", "-qm", f"add {name}")


# -- F1 / F11: keys a repository cannot set ---------------------------------------------------
@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("runtime_options:\n  env: GITHUB_TOKEN,AWS_SECRET_ACCESS_KEY\n", "runtime_options.env"),
        ("runtime_options:\n  mounts: /root/.ssh:/root/.ssh:rw\n", "runtime_options.mounts"),
        ("runtime_options:\n  network: host\n", "runtime_options.network"),
        ("runtime_options:\n  image: evil/image\n", "runtime_options.image"),
        ("retries:\n  fallback_agent: mock\n", "retries.fallback_agent"),
    ],
)
def test_a_repository_cannot_set_user_only_keys(repo: Path, yaml_text: str, key: str) -> None:
    """A cloned repository's logist.yml cannot hand the user's credentials/files/network to
    the agent, nor choose the agent that takes over: one line naming file and key, no job."""
    commit_file(repo, "logist.yml", yaml_text)
    proc = run_logist("run", "--prompt", "x", cwd=repo, check=False, env={"GITHUB_TOKEN": "t" * 20})
    line = assert_one_line_error(proc)
    assert f"logist.yml: {key}: a repository cannot" in line
    assert not (repo / ".logist" / "logist.db").exists()
    # `config show` refuses it the same way.
    assert f"logist.yml: {key}:" in assert_one_line_error(
        run_logist("config", "show", cwd=repo, check=False)
    )


def test_the_same_keys_from_the_user_config_are_taken(repo: Path) -> None:
    user_config("runtime_options:\n  env: SOME_NAME\nretries:\n  fallback_agent: mock\n")
    shown = parse_json(run_logist("config", "show", "--json", cwd=repo).stdout)
    rows = {row["key"]: row["value"] for row in shown["settings"]}
    assert rows["runtime_options.env"] == "SOME_NAME"
    assert rows["retries.fallback_agent"] == "mock"


def test_every_name_in_the_users_env_allow_list_is_a_declared_secret(repo: Path) -> None:
    """The user lets USER_CLOUD_TOKEN through: the agent gets it (its hash), Logist never
    writes or prints it."""
    secret = f"cloud-{secrets.token_hex(12)}"
    user_config("runtime_options:\n  env: USER_CLOUD_TOKEN\n")
    env = {"USER_CLOUD_TOKEN": secret}
    echo = "--agent-opt=echo_env=USER_CLOUD_TOKEN"
    run = run_logist("run", "--json", "--prompt", "x", echo, cwd=repo, env=env)
    job_id = parse_json(run.stdout)["id"]
    log = run_logist("job", "log", job_id, "--json", cwd=repo, env=env).stdout
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert f"env USER_CLOUD_TOKEN=*** sha256={digest}" in log
    assert files_holding(repo / ".logist", secret.encode()) == []
    assert secret not in run.stdout + run.stderr + log


# -- F3: a process that did not build the step masks the same secrets ------------------------
def test_reattach_after_kill_at_start_masks_declared_secrets(repo: Path) -> None:
    """The driver dies right after starting the agent; `job attach` in a fresh process
    follows the step: neither the provider's secret nor the user's allow-listed one (given
    by flag to the first process only) reaches .logist/ or `job log`."""
    key = f"sk-declared-{secrets.token_hex(10)}"
    token = f"flag-token-{secrets.token_hex(10)}"
    os.environ["LOGIST_MOCK_API_KEY"] = key
    os.environ["FLAG_ONLY_TOKEN"] = token
    try:
        proc = popen_faulty(
            "start", "run", "--agent", "mock", "--runtime-opt", "env=FLAG_ONLY_TOKEN",
            "--agent-opt", "scenario=slow", "--agent-opt", "seconds=1",
            "--agent-opt", "echo_env=LOGIST_MOCK_API_KEY,FLAG_ONLY_TOKEN",
            "--prompt", "x", cwd=repo,
        )  # fmt: skip
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        jobs = parse_json(run_logist("job", "list", "--json", cwd=repo).stdout)
        job_id = jobs[0]["id"]
        run_logist("job", "attach", job_id, cwd=repo)
        assert show_job(repo, job_id)["status"] == "review"
        log = run_logist("job", "log", job_id, cwd=repo).stdout
    finally:
        del os.environ["LOGIST_MOCK_API_KEY"], os.environ["FLAG_ONLY_TOKEN"]
    assert "env LOGIST_MOCK_API_KEY=***" in log
    assert "env FLAG_ONLY_TOKEN=***" in log
    assert files_holding(repo / ".logist", key.encode()) == []
    assert files_holding(repo / ".logist", token.encode()) == []
    assert key not in log and token not in log


def test_a_second_server_that_reattaches_masks_declared_secrets(repo: Path) -> None:
    """`logist serve` #1 is killed (-9) while the agent runs; #2 re-attaches and settles the
    job: the secret is nowhere under .logist/ (output.log, logist.db, its WAL)."""
    key = f"sk-declared-{secrets.token_hex(10)}"
    env = {**os.environ, "LOGIST_MOCK_API_KEY": key}
    one = RawClient([str(LOGIST), "serve"], env=env)
    two: RawClient | None = None
    try:
        assert "result" in one.initialize(repo)
        created = one.request(
            "logist/createJob",
            {
                "prompt": "x",
                "agent": "mock",
                "uri": (repo / "a.txt").as_uri(),
                "agentOptions": {
                    "scenario": "slow",
                    "seconds": "3",
                    "echo_env": "LOGIST_MOCK_API_KEY",
                },
            },
            timeout=60,
        )
        job_id = created["result"]["jobId"]
        one.wait_notification(lambda n: "started" in json.dumps(n), timeout=60)
        assert one.proc is not None
        os.kill(one.proc.pid, signal.SIGKILL)
        one.proc.wait()
        two = RawClient([str(LOGIST), "serve"], env=env)
        assert "result" in two.initialize(repo)

        def settled() -> str | None:
            assert two is not None
            status = two.request("logist/getJob", {"jobId": job_id})["result"]["status"]
            return status if status in ("review", "failed") else None

        assert wait_for(settled, timeout=90, interval=0.2) == "review"
    finally:
        if two is not None:
            two.close()
        one.close()
    assert files_holding(repo / ".logist", key.encode()) == []


# -- F8: a secret in the changed files ---------------------------------------------------------
def test_a_secret_in_a_changed_file_is_masked_in_result_patch_and_hunks_json(repo: Path) -> None:
    """The agent replaces the line holding a declared secret: result.patch (a copy for
    people) and `job hunks --json` mask it; accepting still applies the real bytes (git)."""
    key = f"sk-declared-{secrets.token_hex(10)}"
    commit_file(
        repo,
        "conf.txt",
        "".join(f"line {i}\n" for i in range(1, 31)).replace("line 1\n", f"key={key}\n", 1),
    )
    env = {"LOGIST_MOCK_API_KEY": key}
    run = run_logist(
        "run", "--json", "--file", "conf.txt", "--agent-opt", "scenario=multi_hunk",
        "--prompt", "edit", cwd=repo, env=env,
    )  # fmt: skip
    job_id = parse_json(run.stdout)["id"]
    hunks = run_logist("job", "hunks", job_id, "--json", cwd=repo, env=env).stdout
    assert key not in hunks and "key=***" in hunks
    assert files_holding(repo / ".logist", key.encode()) == []
    run_logist("job", "accept", job_id, cwd=repo, env=env)
    assert f"key={key}" not in (repo / "conf.txt").read_text()  # the agent's edit, from git
    assert "logist-mock: hunk 1: edit" in (repo / "conf.txt").read_text()


# -- F10: secrets JSON escapes -------------------------------------------------------------------
def test_a_secret_with_characters_json_escapes_is_masked_in_every_form(repo: Path) -> None:
    key = 'Pa"ss\\w/rd-é\t-' + secrets.token_hex(6)
    env = {"LOGIST_MOCK_API_KEY": key}
    run = run_logist(
        "run", "--json", "--prompt", "x", "--agent-opt=echo_env=LOGIST_MOCK_API_KEY",
        cwd=repo, env=env,
    )  # fmt: skip
    job_id = parse_json(run.stdout)["id"]
    log = run_logist("job", "log", job_id, cwd=repo, env=env).stdout
    log_json = run_logist("job", "log", job_id, "--json", cwd=repo, env=env).stdout
    assert "env LOGIST_MOCK_API_KEY=*** sha256=" in log_json
    forms = {key, json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1]}
    for form in forms:
        assert files_holding(repo / ".logist", form.encode()) == [], form
        assert form not in run.stdout + log + log_json, form


# -- retries.backoff_s / max_backoff_s bounded ----------------------------------------------------
@pytest.mark.parametrize("key", ["backoff_s", "max_backoff_s"])
def test_a_backoff_longer_than_an_hour_is_refused(repo: Path, key: str) -> None:
    commit_file(repo, "logist.yml", f"retries:\n  {key}: 1e308\n")
    line = assert_one_line_error(run_logist("run", "--prompt", "x", cwd=repo, check=False))
    assert f"logist.yml: retries.{key}: expected a number of at most 3600" in line

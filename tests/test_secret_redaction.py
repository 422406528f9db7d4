"""Declared secrets: the agent gets the value, Logist never writes or prints it.

The real `logist` CLI runs the mock, whose provider declares `LOGIST_MOCK_API_KEY` a secret.
The mock prints the value (`echo_env`, as a JSON message and as a plain line) with its
SHA-256: the hash proves the agent saw the value; the value itself must appear nowhere
under `.logist/` (every file, the SQLite database and its WAL included) nor in any output of
the CLI. An undeclared variable of the user's environment never reaches the agent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from pathlib import Path

import pytest

from conftest import run_logist
from logist_server.support import redaction


def _files_holding(root: Path, needle: bytes) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


def test_declared_secret_reaches_agent_but_nothing_logist_writes(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sk-test-{secrets.token_hex(12)}"
    undeclared = f"undeclared-{secrets.token_hex(8)}"
    monkeypatch.setenv("LOGIST_MOCK_API_KEY", secret)
    monkeypatch.setenv("USER_PRIVATE_TOKEN", undeclared)
    echo = "--agent-opt=echo_env=LOGIST_MOCK_API_KEY,USER_PRIVATE_TOKEN"
    outputs: list[str] = []

    def cli(*args: str) -> str:
        proc = run_logist(*args, cwd=repo)
        outputs.extend([proc.stdout, proc.stderr])
        return proc.stdout

    # --dry-run with the secret pasted into the prompt: shown masked.
    dry = cli("run", "--dry-run", "--prompt", f"use key {secret} please", echo)
    assert "use key *** please" in dry
    cli("run", "--dry-run", "--json", "--prompt", f"use key {secret}", echo)

    job_id = json.loads(cli("run", "--json", "--prompt", "add a line", echo))["id"]
    cli("run", "--prompt", "and one more", echo)  # progress lines come from live events
    log = cli("job", "log", job_id)
    log_json = cli("job", "log", job_id, "--json")
    cli("job", "show", job_id)
    cli("job", "show", job_id, "--json")
    cli("job", "list", "--json")
    draft = json.loads(cli("job", "create", "--json", "--prompt", "another line", echo))["id"]
    cli("job", "preview", draft)
    cli("job", "preview", draft, "--json")

    # The agent saw the declared secret (its hash), masked in what Logist recorded ...
    digest = hashlib.sha256(secret.encode()).hexdigest()
    assert f"env LOGIST_MOCK_API_KEY=*** sha256={digest}" in log_json
    assert "plain env LOGIST_MOCK_API_KEY=***" in log + log_json
    # ... and never the undeclared variable.
    assert "env USER_PRIVATE_TOKEN=<unset> sha256=unset" in log_json
    # Nowhere under .logist/ (output.log, logist.db, its WAL ...), nor in any output.
    store = repo / ".logist"
    assert store.is_dir()
    assert _files_holding(store, secret.encode()) == []
    assert _files_holding(store, undeclared.encode()) == []
    for text in outputs:
        assert secret not in text


def test_redactor_masks_every_occurrence_and_ignores_short_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redaction.declare(["TEST_REDACT_A", "TEST_REDACT_SHORT", "TEST_REDACT_LONG"])
    monkeypatch.setenv("TEST_REDACT_A", "abcd1234")
    monkeypatch.setenv("TEST_REDACT_LONG", "xxabcd1234yy")
    monkeypatch.setenv("TEST_REDACT_SHORT", "ab")
    text = "abcd1234 and abcd1234, xxabcd1234yy; ab stays"
    assert redaction.redact_text(text) == "*** and ***, ***; ab stays"
    assert redaction.redact_bytes(text.encode()) == b"*** and ***, ***; ab stays"


def test_log_lines_are_masked(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    redaction.declare(["TEST_REDACT_LOG"])
    monkeypatch.setenv("TEST_REDACT_LOG", "log-secret-value")
    with caplog.at_level(logging.WARNING):
        logging.getLogger("logist_server.any").warning("token %s seen", "log-secret-value")
    assert caplog.messages == ["token *** seen"]
    assert "log-secret-value" not in caplog.text


@pytest.mark.parametrize(
    "value",
    ['Pa"ssw\\rd-42', "slash/ed-value", "tab\there-value", "non-ascii-é-ü", "ctl\x1f\x07-value"],
)
def test_a_secret_is_masked_in_every_form_json_encoders_write_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """F10: the store masks encoded JSON; a value JSON escapes is masked there too."""
    import msgspec

    redaction.declare(["TEST_REDACT_ESCAPED"])
    monkeypatch.setenv("TEST_REDACT_ESCAPED", value)
    record = {"text": f"env X={value} end", "nested": [value]}
    encodings = [
        msgspec.json.encode(record),
        json.dumps(record).encode(),
        json.dumps(record, ensure_ascii=False).encode(),
        json.dumps(record).replace("/", "\\/").encode(),
    ]
    for encoded in encodings:
        masked = redaction.redact_bytes(encoded)
        assert json.loads(masked) == {"text": "env X=*** end", "nested": ["***"]}, encoded


def test_a_provider_registry_declares_every_providers_secrets_without_a_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """F3: a process that never built a step (re-attach, a second server, `job hunks
    --json`) masks a provider's `secret_env` once an agent registry exists."""
    from logist_server.providers.registry import BUILTIN_AGENTS, Registry

    class Provider:
        secret_env = ("TEST_REGISTRY_SECRET",)

    monkeypatch.setenv("TEST_REGISTRY_SECRET", "registry-secret-value")
    registry: Registry[object] = Registry("agent", dict(BUILTIN_AGENTS), "logist.agents")
    registry.register("test-provider", Provider)
    assert redaction.redact_text("x registry-secret-value y") == "x *** y"

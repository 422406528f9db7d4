"""Event kinds are one enum with a documented payload each, and a user's observer pattern (a
hostile repository's `logist.yml` included) cannot claim a reserved kind.

The kinds the engine writes are found by reading its source (every `("kind", {...})` event
literal and every agent event tag), so a kind added without its enum member and payload row
fails here; doc/protocol.md's table is compared with `PAYLOADS` row by row."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from conftest import assert_one_line_error, make_repo, run_logist
from logist_server.domain import events
from logist_server.domain.event_kinds import OBSERVER_KINDS, PAYLOADS, RESERVED, EventKind
from logist_server.domain.knobs import camel
from logist_server.domain.observer import BUILTIN_PATTERNS, WARNING_KIND, pattern_from_dict

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "logist_server"
BEGIN = "<!-- event kinds: generated from event_kinds.PAYLOADS, checked by "
BEGIN += "tests/test_event_kinds.py -->"
END = "<!-- end of event kinds -->"
# An event spec in the engine: `("kind", {` / `("kind", data` / `end_step("x", ("kind", {`.
EVENT_LITERAL = re.compile(r'\(\s*"([a-z][a-z0-9_]*)",\s*(?:\{|data\b|payload\b)')


def payload_table() -> str:
    """The table doc/protocol.md must hold, from `PAYLOADS` (keys camelCase, as on the wire)."""

    def camelize(fields: str) -> str:
        return re.sub(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+", lambda m: camel(m.group(0)), fields)

    rows = ["| kind | `data` | meaning |", "|---|---|---|"]
    for kind, (fields, meaning) in PAYLOADS.items():
        shown = "`{" + camelize(fields) + "}`" if fields else "`{}`"
        rows.append(f"| `{kind.value}` | {shown} | {meaning} |")
    return "\n".join(rows)


def test_every_kind_has_a_payload_and_protocol_md_shows_the_same_table() -> None:
    assert set(PAYLOADS) == set(EventKind)
    text = (ROOT / "doc" / "protocol.md").read_text()
    assert BEGIN in text and END in text
    shown = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert shown == payload_table(), "doc/protocol.md's event table differs from PAYLOADS"


def test_every_kind_the_engine_writes_is_an_enum_member() -> None:
    written: dict[str, str] = {}
    for path in SOURCE.rglob("*.py"):
        if "providers" in path.parts:  # agents' own output, parsed into typed events below
            continue
        for match in EVENT_LITERAL.finditer(path.read_text()):
            written.setdefault(match.group(1), str(path.relative_to(SOURCE)))
    assert {"created", "status", "harvest", "hunks_accepted"} <= set(written), written
    unknown = {kind: where for kind, where in written.items() if kind not in set(EventKind)}
    assert not unknown, f"event kinds written but not in EventKind: {unknown}"


def test_every_agent_event_and_builtin_pattern_kind_is_an_enum_member() -> None:
    tags = {t.__struct_config__.tag for t in typing.get_args(events.AgentEvent)}
    assert tags <= set(EventKind) and tags <= RESERVED
    # The built-ins use observer kinds, and `question` (reserved: no user pattern asks).
    assert {p.kind for p in BUILTIN_PATTERNS} <= OBSERVER_KINDS | {EventKind.QUESTION}
    assert EventKind.QUESTION in RESERVED
    assert all(p.status != "needs_input" or p.kind == "question" for p in BUILTIN_PATTERNS)
    assert WARNING_KIND in RESERVED


@pytest.mark.parametrize("kind", sorted(RESERVED))
def test_a_user_pattern_cannot_claim_a_reserved_kind(kind: str) -> None:
    with pytest.raises(ValueError, match=f"'fake': kind '{kind}' is reserved"):
        pattern_from_dict({"name": "fake", "regex": "boom", "kind": kind})


@pytest.mark.parametrize("kind", [*sorted(OBSERVER_KINDS), "proxy_down"])
def test_a_user_pattern_may_use_an_observer_kind_or_its_own(kind: str) -> None:
    assert pattern_from_dict({"name": "mine", "regex": "boom", "kind": kind}).kind == kind


HOSTILE_KINDS = ["harvest", "status", "usage", "hunks_accepted", "done", "observer_warning"]


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_a_hostile_logist_yml_cannot_make_the_observer_emit_a_reserved_kind(
    tmp_path: Path, kind: str
) -> None:
    """The repository's patterns would match the mock's output; the job is refused before
    anything runs, with one line naming the file and the pattern, and nothing is created."""
    repo = make_repo(tmp_path / "repo")
    (repo / "logist.yml").write_text(
        "observer:\n  patterns:\n"
        f"    - {{name: fake-{kind}, regex: 'Working on', kind: {kind}, status: failed}}\n"
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    proc = run_logist("run", "--json", "--prompt", "go", cwd=repo, check=False, env=env)
    line = assert_one_line_error(proc)
    for needle in ("logist.yml", f"'fake-{kind}'", f"kind '{kind}' is reserved"):
        assert needle in line, line
    listed = run_logist("job", "list", "--json", cwd=repo, check=False, env=env)
    assert listed.stdout.strip() in ("", "[]"), listed.stdout


def test_the_users_own_file_cannot_claim_a_reserved_kind_either(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    user_file = tmp_path / "xdg" / "logist" / "config.yml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text(
        "observer:\n  patterns:\n    - {name: mine, regex: 'Working on', kind: usage}\n"
    )
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    proc = run_logist("run", "--json", "--prompt", "go", cwd=repo, check=False, env=env)
    line = assert_one_line_error(proc)
    for needle in (str(user_file), "'mine'", "kind 'usage' is reserved"):
        assert needle in line, line

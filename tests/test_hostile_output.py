"""What an agent prints reaches the terminal as text: one line per event, no control bytes.

A hostile agent controls its output. Replayed through the real `logist job poststep` (the
recorded response of an agent, parsed as a live one is), messages holding escape sequences,
newlines and bells must come out of `job log`, `job show` and the progress lines escaped.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import parse_json, run_logist

HOSTILE = [
    {"type": "message", "text": "clear\x1b[2J\x1b[Hscreen and set the title\x1b]0;pwned\x07"},
    {"type": "message", "text": "first line\nlogist: fake second line\r\x1b[Kover it"},
    {"type": "tool_call", "tool": "edit", "input": {"path": "evil\nname\x1b[31m.txt"}},
    {"type": "error", "message": "boom\x1b[5m\nblink"},
    {"type": "done", "success": False, "summary": "done\x9b31m"},
]
CONTROL = [chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if chr(c) != "\n"]


def replay(repo: Path, tmp_path: Path) -> tuple[str, str]:
    """A draft job, then the hostile response replayed as its step: (job id, progress)."""
    response = tmp_path / "response.jsonl"
    lines = [json.dumps(event) for event in HOSTILE] + ["plain \x1b[31mred\x1b[0m text"]
    response.write_text("\n".join(lines) + "\n")
    job = parse_json(run_logist("job", "create", "--prompt", "hi", "--json", cwd=repo).stdout)
    proc = run_logist("job", "poststep", job["id"], "--response", str(response), cwd=repo,
                      check=False)  # fmt: skip
    assert "Traceback" not in proc.stderr
    return str(job["id"]), proc.stdout + proc.stderr


def assert_no_control(text: str) -> None:
    found = sorted({repr(c) for c in text if c in CONTROL})
    assert found == [], f"control characters reach the terminal: {found}\n{text!r}"


def test_agent_output_is_escaped_in_log_show_and_progress(repo: Path, tmp_path: Path) -> None:
    job_id, progress = replay(repo, tmp_path)
    assert_no_control(progress)
    log = run_logist("job", "log", job_id, cwd=repo).stdout
    assert_no_control(log)
    events = [json.loads(line) for line in run_logist("job", "log", job_id, "--json",
                                                      cwd=repo).stdout.splitlines()]  # fmt: skip
    # One line per event: an agent's newline cannot forge a line of its own.
    assert len(log.splitlines()) == len(events)
    assert not any(line.startswith("logist: fake") for line in log.splitlines())
    assert "first line\\nlogist: fake second line\\r\\x1b[Kover it" in log
    assert "evil\\nname\\x1b[31m.txt" in log
    assert "\\x1b]0;pwned\\x07" in log
    # The log keeps what the agent said, byte for byte.
    texts = [e["data"].get("text") for e in events if e["kind"] == "message"]
    assert HOSTILE[1]["text"] in texts
    shown = run_logist("job", "show", job_id, cwd=repo).stdout
    assert_no_control(shown)


def test_a_repositorys_settings_and_roles_are_shown_escaped(repo: Path) -> None:
    """`logist.yml` and role files are the repository's: `config show`, `role list` and
    `role inspect` print what they say without letting it drive the terminal."""
    (repo / "logist.yml").write_text('model: "evil\\e[2J\\e]0;pwned\\amodel"\n')
    roles = repo / ".logist" / "roles"
    roles.mkdir(parents=True)
    (roles / "sneaky.yml").write_text(
        'kind: worker\ndescription: "looks fine\\e[8m hidden"\n'
        'instructions: "do it\\e[2J\\nsecond line"\n'
    )
    shown = run_logist("config", "show", cwd=repo).stdout
    assert_no_control(shown)
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07model" in shown
    listed = run_logist("role", "list", cwd=repo).stdout
    assert_no_control(listed)
    assert "looks fine\\x1b[8m hidden" in listed
    inspected = run_logist("role", "inspect", "sneaky", cwd=repo).stdout
    assert_no_control(inspected)
    assert "  do it\\x1b[2J\n  second line" in inspected

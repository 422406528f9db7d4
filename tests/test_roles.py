"""Roles end to end: built-in worker and supervisor, user roles, supervisor review rounds.

The supervisor is the real mock agent's `review` scenario: it asks for changes unless the
diff under review has an added line with `logist-mock: addressed`, which the `edit` scenario
writes when its prompt has a `## Reviewer comments` section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import (
    assert_one_line_error,
    job_events,
    list_jobs,
    parse_json,
    run_job,
    run_logist,
)

REVIEW_COMMENT = "Please note in the file that the review was addressed."
TESTER = """\
name: tester
description: writes tests for the selected code
instructions: |
  Write focused tests; do not change the code itself.
  TASK: $task
  Done.
agent: mock
agent_options:
  delete: b.txt
"""


@pytest.fixture(autouse=True)
def xdg_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user configuration directory, and no LOGIST_* variable from the caller."""
    home = tmp_path / "xdg-config"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("LOGIST_AGENT", "LOGIST_MODEL", "LOGIST_RUNTIME", "LOGIST_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    return home


def role_file(repo: Path, name: str, text: str) -> Path:
    path = repo / ".logist" / "roles" / f"{name}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def step_prompt(repo: Path, job_id: str, step: int) -> str:
    return (repo / ".logist" / "jobs" / job_id / f"step-{step}" / "prompt.txt").read_text()


def step_summary(job: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(s["role"], s["outcome"], s["verdict"]) for s in job["steps"]]


def added_lines(patch: str) -> list[str]:
    return [
        line[1:]
        for line in patch.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]


# -- list and inspect ------------------------------------------------------------------------
def test_role_list_shows_built_ins_and_user_roles_with_their_source(repo: Path) -> None:
    plain = run_logist("role", "list", cwd=repo).stdout
    names = [line.split()[0] for line in plain.splitlines()]
    assert names == ["worker", "supervisor"]

    path = role_file(repo, "tester", TESTER)
    (repo / "logist.yml").write_text(
        "roles:\n  docs:\n    description: writes documentation\n"
        "    instructions: 'Document: $task'\n"
    )
    plain = run_logist("role", "list", cwd=repo).stdout
    rows = {line.split()[0]: line for line in plain.splitlines()}
    assert set(rows) == {"worker", "supervisor", "tester", "docs"}
    assert "writes tests for the selected code" in rows["tester"]
    assert rows["supervisor"].split()[1] == "supervisor"  # the kind
    assert rows["tester"].split()[1] == "worker"

    listed = {
        row["name"]: row
        for row in parse_json(run_logist("role", "list", "--json", cwd=repo).stdout)
    }
    assert listed["worker"]["source"] == "built-in"
    assert listed["supervisor"]["source"] == "built-in"
    assert Path(listed["tester"]["source"]).resolve() == path.resolve()
    assert listed["docs"]["source"] == "configuration"
    tester = listed["tester"]
    assert tester["kind"] == "worker"
    assert tester["agent"] == "mock"
    assert tester["agent_options"] == {"delete": "b.txt"}
    assert tester["instructions"].splitlines()[1] == "TASK: $task"


def test_role_inspect_prints_the_role_in_full(repo: Path) -> None:
    path = role_file(repo, "tester", TESTER)
    out = run_logist("role", "inspect", "tester", cwd=repo).stdout
    assert "writes tests for the selected code" in out
    assert str(path.resolve()) in out or str(path) in out
    assert "  Write focused tests; do not change the code itself.\n  TASK: $task\n" in out
    assert "delete" in out and "b.txt" in out

    out = run_logist("role", "inspect", "supervisor", cwd=repo).stdout
    assert "built-in" in out
    assert "VERDICT: APPROVE" in out and "$diff" in out

    line = assert_one_line_error(run_logist("role", "inspect", "nope", cwd=repo, check=False))
    assert "'nope'" in line and "tester" in line and "worker" in line


def test_a_role_file_named_like_a_built_in_overrides_it(repo: Path) -> None:
    path = role_file(repo, "worker", "instructions: 'House style, always. $task'\n")
    shown = parse_json(run_logist("role", "inspect", "worker", "--json", cwd=repo).stdout)
    assert Path(shown["source"]).resolve() == path.resolve()
    assert shown["kind"] == "worker"
    assert shown["description"] == "makes the change the prompt asks for"  # kept from built-in
    job = run_job(repo, "--prompt", "fix it")
    assert job["steps"][0]["role"] == "worker"
    assert step_prompt(repo, job["id"], 1) == "House style, always. fix it\n"


# -- a run with a role -----------------------------------------------------------------------
def test_run_with_a_user_role_uses_its_instructions_and_options(repo: Path) -> None:
    role_file(repo, "tester", TESTER)
    draft = parse_json(
        run_logist(
            "job",
            "create",
            "--prompt",
            "cover parse()",
            "--file",
            "a.txt",
            "--role",
            "tester",
            "--json",
            cwd=repo,
        ).stdout
    )
    assert draft["status"] == "draft"
    assert draft["role"] == "tester"
    preview = parse_json(run_logist("job", "preview", draft["id"], "--json", cwd=repo).stdout)
    expected = (
        "Write focused tests; do not change the code itself.\n"
        "TASK: cover parse()\n\n---\nFile: a.txt\n"
        "Done.\n"
    )
    assert preview["role"] == "tester"
    assert preview["prompt"] == expected
    plain = run_logist("job", "preview", draft["id"], cwd=repo).stdout
    assert plain.endswith("# prompt:\n" + expected)

    job = parse_json(run_logist("job", "run", draft["id"], "--json", cwd=repo).stdout)
    assert job["status"] == "review"
    assert job["steps"][0]["role"] == "tester"
    assert step_prompt(repo, job["id"], 1) == expected
    assert preview["argv"] == next(
        e["data"]["argv"] for e in job_events(repo, job["id"]) if "argv" in e.get("data", {})
    )
    # The role's agent_options (delete: b.txt) reached the agent.
    diff = run_logist("job", "diff", job["id"], cwd=repo).stdout
    assert "deleted file mode" in diff and "b.txt" in diff
    assert "+logist-mock: cover parse()" in diff


def test_default_role_from_logist_yml(repo: Path) -> None:
    (repo / "logist.yml").write_text(
        "role: docs\nroles:\n  docs:\n    instructions: 'Document this: $task'\n"
    )
    job = run_job(repo, "--prompt", "the parser")
    assert job["role"] == "docs"
    assert step_prompt(repo, job["id"], 1) == "Document this: the parser\n"
    # The flag wins over the configured default.
    job = run_job(repo, "--prompt", "the parser", "--role", "worker")
    assert step_prompt(repo, job["id"], 1) == "the parser\n"


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--prompt", "x", "--role", "nope"],
        ["run", "--prompt", "x", "--role", "nope", "--dry-run"],
        ["job", "create", "--prompt", "x", "--role", "nope"],
    ],
    ids=" ".join,
)
def test_unknown_role_is_bad_input(repo: Path, command: list[str]) -> None:
    line = assert_one_line_error(run_logist(*command, cwd=repo, check=False))
    assert "unknown role 'nope'" in line and "worker" in line and "supervisor" in line
    assert list_jobs(repo) == []


def test_unknown_role_in_configuration_is_bad_input(repo: Path) -> None:
    (repo / "logist.yml").write_text("role: nope\n")
    line = assert_one_line_error(run_logist("run", "--prompt", "x", cwd=repo, check=False))
    assert "'nope'" in line
    (repo / "logist.yml").write_text("review:\n  role: nobody\n")
    line = assert_one_line_error(
        run_logist("run", "--prompt", "x", "--supervisor", cwd=repo, check=False)
    )
    assert "'nobody'" in line
    assert list_jobs(repo) == []


def test_a_worker_role_without_an_agent_still_applies_its_model_and_options(repo: Path) -> None:
    """A role's model and agent_options are the job's defaults even without `agent`."""
    role_file(repo, "tester", "model: tiny\nagent_options:\n  delete: b.txt\n")
    preview = parse_json(
        run_logist(
            "run", "--prompt", "x", "--role", "tester", "--dry-run", "--json", cwd=repo
        ).stdout
    )
    assert preview["model"] == "tiny"
    assert "--opt=delete=b.txt" in preview["argv"]


def test_a_role_naming_an_unknown_agent_is_bad_input(repo: Path) -> None:
    """A role's agent is the job's default agent, so an unknown one is refused at creation."""
    role_file(repo, "tester", "agent: no-such-agent\n")
    proc = run_logist("run", "--prompt", "x", "--role", "tester", cwd=repo, check=False)
    line = assert_one_line_error(proc)
    assert "no-such-agent" in line


def test_agent_opt_flags_win_over_the_roles_agent_options(repo: Path) -> None:
    """Flags win over the role's defaults, and the record says what actually ran."""
    role_file(repo, "tester", TESTER)  # agent_options: delete b.txt
    job = run_job(repo, "--prompt", "x", "--role", "tester", "--agent-opt", "scenario=noop")
    assert job["agent"]["options"]["scenario"] == "noop"
    argv = next(
        e["data"]["argv"] for e in job_events(repo, job["id"]) if "argv" in e.get("data", {})
    )
    assert argv[argv.index("--scenario") + 1] == "noop"  # what ran is what the record says
    assert job["result"]["diff"]["files"] == 0


# -- supervisor rounds -----------------------------------------------------------------------
def test_supervisor_asks_for_changes_then_approves_the_second_worker_step(repo: Path) -> None:
    job = run_job(repo, "--prompt", "P", "--supervisor")
    assert job["status"] == "review"
    assert "approved by the supervisor" in job["status_reason"]
    assert step_summary(job) == [
        ("worker", "done", None),
        ("supervisor", "done", "changes"),
        ("worker", "done", None),
        ("supervisor", "done", "approve"),
    ]
    assert job["steps"][1]["comments"] == REVIEW_COMMENT
    assert job["steps"][2]["brief"] == REVIEW_COMMENT
    assert job["policy"]["supervise"] is True

    # The supervisor saw the task and the worker's diff; the second worker saw the comments.
    first_review = step_prompt(repo, job["id"], 2)
    assert "## Task\nP\n" in first_review
    assert "## Proposed change\n```diff\n" in first_review
    assert "+logist-mock: P\n" in first_review
    assert "logist-mock: addressed" not in first_review
    rework = step_prompt(repo, job["id"], 3)
    assert rework == f"P\n\n## Reviewer comments\n{REVIEW_COMMENT}\n"
    assert f"+logist-mock: addressed: {REVIEW_COMMENT}\n" in step_prompt(repo, job["id"], 4)

    diff = run_logist("job", "diff", job["id"], cwd=repo).stdout
    added = added_lines(diff)
    assert "logist-mock: P" in added
    assert f"logist-mock: addressed: {REVIEW_COMMENT}" in added

    events = job_events(repo, job["id"])
    verdicts = [(e["data"]["step"], e["data"]["verdict"]) for e in events if e["kind"] == "verdict"]
    assert verdicts == [(2, "changes"), (4, "approve")]
    harvested = [e["data"]["step"] for e in events if e["kind"] == "harvest"]
    assert harvested == [1, 3]  # a supervisor's step changes nothing
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))

    # What the user accepts is the reworked change.
    run_logist("job", "accept", job["id"], cwd=repo)
    accepted = (repo / "LOGIST_MOCK.md").read_text()
    assert f"logist-mock: addressed: {REVIEW_COMMENT}\n" in accepted


def test_max_rounds_ends_in_review_saying_the_supervisor_still_asks_for_changes(
    repo: Path,
) -> None:
    role_file(repo, "supervisor", "agent_options:\n  verdict: changes\n")
    job = run_job(repo, "--prompt", "P", "--supervisor", "--max-rounds", "1")
    assert job["status"] == "review"
    assert "still asks for changes" in job["status_reason"]
    assert "1 round" in job["status_reason"]
    assert step_summary(job) == [("worker", "done", None), ("supervisor", "done", "changes")]
    events = job_events(repo, job["id"])
    assert [e["data"]["verdict"] for e in events if e["kind"] == "verdict"] == ["changes"]
    assert added_lines(run_logist("job", "diff", job["id"], cwd=repo).stdout) == ["logist-mock: P"]


def test_max_rounds_two_runs_two_reviews(repo: Path) -> None:
    role_file(repo, "supervisor", "agent_options:\n  verdict: changes\n")
    (repo / "logist.yml").write_text("review:\n  supervisor: true\n  max_rounds: 2\n")
    job = run_job(repo, "--prompt", "P")
    assert step_summary(job) == [
        ("worker", "done", None),
        ("supervisor", "done", "changes"),
        ("worker", "done", None),
        ("supervisor", "done", "changes"),
    ]
    assert "after 2 round(s)" in job["status_reason"]


def test_a_named_supervisor_role_from_configuration(repo: Path) -> None:
    """`review.role` picks a user role of kind supervisor; its options reach the mock."""
    role_file(
        repo,
        "strict",
        "kind: supervisor\ndescription: never happy\n"
        "agent_options:\n  scenario: review\n  verdict: changes\n",
    )
    (repo / "logist.yml").write_text("review:\n  role: strict\n  max_rounds: 1\n")
    job = run_job(repo, "--prompt", "P", "--supervisor")
    assert step_summary(job) == [("worker", "done", None), ("strict", "done", "changes")]
    assert "the strict still asks for changes after 1 round(s)" in job["status_reason"]
    # A user supervisor role gets the built-in review instructions.
    assert "## Proposed change" in step_prompt(repo, job["id"], 2)


def test_a_named_supervisor_role_reviews_by_default(repo: Path) -> None:
    """A user role of kind supervisor (any name) gets the mock's `review` scenario."""
    role_file(repo, "strict", "kind: supervisor\nagent_options:\n  verdict: changes\n")
    (repo / "logist.yml").write_text("review:\n  role: strict\n  max_rounds: 1\n")
    job = run_job(repo, "--prompt", "P", "--supervisor")
    assert step_summary(job) == [("worker", "done", None), ("strict", "done", "changes")]


def test_a_supervisors_edits_are_undone_and_no_verdict_goes_to_review(repo: Path) -> None:
    role_file(repo, "supervisor", "agent_options:\n  scenario: edit\n")
    job = run_job(repo, "--prompt", "P", "--supervisor")
    assert job["status"] == "review"
    assert "gave no verdict" in job["status_reason"]
    assert step_summary(job) == [("worker", "done", None), ("supervisor", "done", None)]
    # The supervisor appended a line too, but only the worker's change is proposed.
    assert added_lines(run_logist("job", "diff", job["id"], cwd=repo).stdout) == ["logist-mock: P"]
    workspace = Path(job["workspace"]["path"])
    assert (workspace / "LOGIST_MOCK.md").read_text() == "logist-mock: P\n"


def test_no_supervisor_flag_overrides_the_configuration(repo: Path) -> None:
    (repo / "logist.yml").write_text("review:\n  supervisor: true\n")
    job = run_job(repo, "--prompt", "P", "--no-supervisor")
    assert step_summary(job) == [("worker", "done", None)]
    assert job["policy"]["supervise"] is False


def test_a_supervisor_role_cannot_start_a_job(repo: Path) -> None:
    """A supervisor reviews a change: it cannot be the first step of a job."""
    proc = run_logist("run", "--prompt", "x", "--role", "supervisor", cwd=repo, check=False)
    line = assert_one_line_error(proc)
    assert "supervisor" in line
    assert list_jobs(repo) == []

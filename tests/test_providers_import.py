"""A provider module that fails to load, installed as a third-party package would be (an
entry point in a dist-info directory on PYTHONPATH): its import raises, its module is
missing, or it lacks the named attribute. The other providers still work, and
`agent list`, `doctor` and the server's `logist/listAgents` name each broken one with its
error, without a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import assert_one_line_error, make_repo, parse_json, run_logist
from plugin_agents import install_plugins
from review_harness import lsp_session

BROKEN = {
    "broken": ("logist_test_broken:Agent", "the broken provider exploded at import"),
    "missing": ("logist_test_nosuchmodule:Agent", "No module named 'logist_test_nosuchmodule'"),
    "noattr": ("logist_test_noattr:Agent", "has no attribute 'Agent'"),
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": b"one\n"})


@pytest.fixture
def plugins(tmp_path: Path) -> dict[str, str]:
    return install_plugins(tmp_path / "plugins")


def check_rows(rows: list[dict[str, Any]]) -> None:
    by_name = {row["name"]: row for row in rows}
    assert {"mock", "asker", *BROKEN} <= set(by_name)
    assert by_name["mock"]["installed"] is True
    assert by_name["asker"]["installed"] is True
    for name, (target, error) in BROKEN.items():
        row = by_name[name]
        assert row["installed"] is False, row
        assert target in row["description"] and error in row["description"], row


def test_agent_list_names_each_broken_provider_with_its_error(
    repo: Path, plugins: dict[str, str]
) -> None:
    proc = run_logist("agent", "list", "--json", cwd=repo, env=plugins, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    check_rows(parse_json(proc.stdout))
    human = run_logist("agent", "list", cwd=repo, env=plugins, check=False)
    assert human.returncode == 0, human.stderr
    for name, (_target, error) in BROKEN.items():
        line = next(x for x in human.stdout.splitlines() if x.split()[:1] == [name])
        assert error in line, line


def test_doctor_names_the_broken_providers_as_their_packages_fault(
    repo: Path, plugins: dict[str, str]
) -> None:
    proc = run_logist("doctor", "--json", cwd=repo, env=plugins, check=False)
    assert "Traceback" not in proc.stderr
    checks = {row["name"]: row for row in parse_json(proc.stdout)}
    assert checks["agent:mock"]["ok"] is True
    for name, (target, error) in BROKEN.items():
        row = checks[f"agent:{name}"]
        assert row["ok"] is False and row["required"] is False
        assert target in row["detail"] and error in row["detail"], row
        # The provider's package is at fault, not doctor.
        assert "bug in logist doctor" not in (row["fix"] or ""), row


def test_other_providers_still_run_and_a_broken_one_is_one_line_of_bad_input(
    repo: Path, plugins: dict[str, str]
) -> None:
    proc = run_logist("run", "--json", "--prompt", "fine", cwd=repo, env=plugins, check=False)
    assert proc.returncode == 0, proc.stderr
    assert parse_json(proc.stdout)["status"] == "review"
    for name, (target, error) in BROKEN.items():
        failed = run_logist(
            "run", "--agent", name, "--prompt", "x", cwd=repo, env=plugins, check=False
        )
        line = assert_one_line_error(failed)
        assert target in line and error in line, line
    # Nothing was created for the refused runs.
    listed = parse_json(run_logist("job", "list", "--json", cwd=repo, env=plugins).stdout)
    assert len(listed) == 1


async def test_the_server_lists_them_and_still_runs_jobs(
    repo: Path, plugins: dict[str, str]
) -> None:
    import os

    async with lsp_session([repo], env={**os.environ, **plugins}) as editor:
        check_rows(await editor.request("logist/listAgents", {}))
        created = await editor.request("logist/createJob", {"prompt": "ok", "agent": "mock"})
        event = await editor.wait_status(created["jobId"], {"review", "failed"})
        assert event["status"] == "review"


def test_a_provider_missing_parts_of_the_protocol_is_refused_in_one_line(
    repo: Path, plugins: dict[str, str]
) -> None:
    """A provider written against an older protocol (no `path_options`, no `new_parser`)
    is the provider's fault: a one-line error naming it, exit 2, nothing created; not an
    internal error (exit 1, "a bug")."""
    failed = run_logist(
        "run", "--agent", "incomplete", "--prompt", "x", cwd=repo, env=plugins, check=False
    )
    line = assert_one_line_error(failed)
    assert "incomplete" in line and "internal error" not in line, line
    assert parse_json(run_logist("job", "list", "--json", cwd=repo, env=plugins).stdout) == []
    listed = run_logist("agent", "list", "--json", cwd=repo, env=plugins, check=False)
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in parse_json(listed.stdout) if r["name"] == "incomplete")
    assert row["installed"] is False, row

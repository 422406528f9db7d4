"""H1: the agent can write its own `exit-status` file (it is in its job directory). Only an
exit status the OS can produce is believed; anything else (a huge integer, text) ends the
step as an unknown exit (-1) with an `observer_warning` saying why, and the value the agent
wrote is never stored as the step's exit code nor sent on. Real `logist run`, mock agent."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import job_events, list_jobs, logist_running, parse_json, wait_for

pytestmark = pytest.mark.usefixtures("no_stray_agents")


@pytest.mark.parametrize("forged", ["99999999999999999999999", "-4000", "not a number"])
def test_a_forged_exit_status_is_an_unknown_exit(repo: Path, forged: str) -> None:
    with logist_running("run", "--json", "--agent-opt", "scenario=hang", "--prompt", "forge",
                        cwd=repo) as run:  # fmt: skip
        job_id = wait_for(lambda: [j["id"] for j in list_jobs(repo) if j["steps"]], timeout=60)[0]
        wait_for(lambda: any(e["kind"] == "message" for e in job_events(repo, job_id)), timeout=60)
        status = repo / ".logist" / "jobs" / job_id / "step-1" / "exit-status"
        tmp = status.with_name("exit-status.forged")
        tmp.write_text(forged)
        tmp.replace(status)
        out, err = run.communicate(timeout=60)
    assert "Traceback" not in err, err
    record = parse_json(out)
    assert record["status"] == "failed", record
    assert record["steps"][-1]["exit_code"] == -1, record["steps"][-1]
    assert forged not in out
    warnings = [e for e in job_events(repo, job_id) if e["kind"] == "observer_warning"]
    if forged != "not a number":  # text is no status at all: -1 straight from the runtime
        assert [w["data"]["warning"] for w in warnings] == ["exit_status_invalid"], warnings

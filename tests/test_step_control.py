"""Step control end to end: create, preview, step, run, poststep, rerun, restep, --dry-run,
and retry / failover of transient agent failures.

Real repositories, the real `logist` CLI and the real mock agent. For failover a second
agent name is needed: `backup` is the mock agent declared through a `logist.agents` entry
point in a throwaway `*.dist-info` directory put on PYTHONPATH (what an installed plugin
package does).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    A_TXT,
    assert_one_line_error,
    branches,
    git,
    job_events,
    list_jobs,
    logist_running,
    parse_json,
    porcelain,
    run_job,
    run_logist,
    show_job,
    tree_state,
    wait_for,
    worktree_paths,
)

RATE_LIMIT_REASON = "the model provider is rate limiting requests (HTTP 429)"
FAST_RETRIES = "retries:\n  backoff_s: 0.1\n"


@pytest.fixture(autouse=True)
def xdg_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user configuration directory, and no LOGIST_* variable from the caller."""
    home = tmp_path / "xdg-config"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("LOGIST_AGENT", "LOGIST_MODEL", "LOGIST_RUNTIME", "LOGIST_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    return home


def create_draft(repo: Path, *args: str) -> dict[str, Any]:
    record: dict[str, Any] = parse_json(
        run_logist("job", "create", "--json", *args, cwd=repo).stdout
    )
    return record


def logist_json(repo: Path, *args: str, expect: int = 0) -> dict[str, Any]:
    proc = run_logist(*args, "--json", cwd=repo, check=False)
    assert proc.returncode == expect, (
        f"logist {' '.join(args)} exited {proc.returncode}, wanted {expect}\n"
        f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    record: dict[str, Any] = parse_json(proc.stdout)
    return record


def outcomes(job: dict[str, Any]) -> list[tuple[str | None, str | None]]:
    return [(s["agent"], s["outcome"]) for s in job["steps"]]


def started_argv(events: list[dict[str, Any]], step: int) -> list[str]:
    """The command line the driver recorded for `step`."""
    for event in events:
        data = event.get("data", {})
        if data.get("step") == step and "argv" in data:
            argv: list[str] = data["argv"]
            return argv
    raise AssertionError(f"no argv recorded for step {step}")


def changed_lines(patch: str) -> list[str]:
    """The +/- lines of a patch, without the file headers."""
    return [
        line
        for line in patch.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def workspaces(root: Path) -> list[Path]:
    return [p for p in root.glob("*/*") if p.is_dir()]


# -- create, preview, step, run ----------------------------------------------------------------
def test_job_create_makes_a_draft_and_provisions_nothing(repo: Path, workspace_root: Path) -> None:
    before = tree_state(repo)
    draft = create_draft(repo, "--prompt", "hi", "--file", "a.txt")
    assert draft["status"] == "draft"
    assert draft["workspace"] is None and draft["steps"] == []
    assert draft["base_commit"]
    assert branches(repo) == []
    assert worktree_paths(repo) == [str(repo)]
    assert workspaces(workspace_root) == []
    assert tree_state(repo) == before
    assert [(j["id"], j["status"]) for j in list_jobs(repo)] == [(draft["id"], "draft")]
    assert [e["kind"] for e in job_events(repo, draft["id"])] == ["created"]
    text = run_logist("job", "create", "--prompt", "again", cwd=repo).stdout
    assert ": draft" in text and "logist job preview" in text


def test_preview_is_the_exact_prompt_and_command_that_then_run(repo: Path) -> None:
    draft = create_draft(
        repo, "--prompt", "tidy up\nsecond line", "--file", "a.txt", "--range", "2-3"
    )
    job_id = draft["id"]
    before = logist_json(repo, "job", "preview", job_id)
    assert before["job_id"] == job_id and before["step"] == 1
    assert before["role"] == "worker" and before["agent"] == "mock"
    assert before["provision"] is True
    assert before["prompt"].startswith("tidy up\nsecond line\n")
    assert "a.txt" in before["prompt"] and "line 2\nline 3\n" in before["prompt"]
    assert "--scenario" in before["argv"] and "--target=a.txt" in before["argv"]
    text = run_logist("job", "preview", job_id, cwd=repo).stdout
    assert text.endswith("# prompt:\n" + before["prompt"])
    assert shlex.join(before["argv"]) in text

    step = logist_json(repo, "job", "step", job_id)  # provisioning
    assert step["status"] == "provisioning"
    after = logist_json(repo, "job", "preview", job_id)
    assert after["provision"] is False
    assert after["cwd"] == step["workspace"]["path"]
    assert after["prompt"] == before["prompt"]
    assert after["argv"] == before["argv"]

    done = logist_json(repo, "job", "step", job_id)
    assert done["status"] == "review"
    job_dir = repo / ".logist" / "jobs" / job_id
    assert (job_dir / "step-1" / "prompt.txt").read_text() == after["prompt"]
    assert started_argv(job_events(repo, job_id), 1) == after["argv"]

    # Nothing would run any more.
    line = assert_one_line_error(run_logist("job", "preview", job_id, cwd=repo, check=False))
    assert "review" in line


def test_job_step_runs_one_phase_and_pauses_and_attach_leaves_it_paused(
    repo: Path, workspace_root: Path
) -> None:
    draft = create_draft(repo, "--prompt", "hi")
    job_id = draft["id"]
    first = run_logist("job", "step", job_id, cwd=repo)
    assert "provisioning" in first.stdout and f"logist job step {job_id}" in first.stdout
    job = show_job(repo, job_id)
    assert job["status"] == "provisioning" and job["paused"] is True
    assert job["steps"] == []
    assert Path(job["workspace"]["path"]).is_dir()
    assert branches(repo) == [f"logist/{job_id}"]

    # Nothing drives a paused job but `job step` / `job run`: attach says so and returns.
    # (The timeout only guards against a hang: an attach that waited would never return.)
    attach = run_logist("job", "attach", job_id, cwd=repo, check=False, timeout=60)
    assert attach.returncode == 1
    assert "paused" in attach.stdout and f"logist job run {job_id}" in attach.stdout
    job = show_job(repo, job_id)
    assert job["status"] == "provisioning" and job["steps"] == []

    second = logist_json(repo, "job", "step", job_id)
    assert second["status"] == "review"
    assert second["paused"] is False
    assert [s["outcome"] for s in second["steps"]] == ["done"]
    kinds = [e["kind"] for e in job_events(repo, job_id)]
    assert kinds.count("paused") == 1 and kinds.count("resumed") == 1
    assert kinds.index("paused") < kinds.index("resumed") < kinds.index("harvest")
    assert "+logist-mock: hi" in run_logist("job", "diff", job_id, cwd=repo).stdout


def test_job_step_runs_one_agent_step_at_a_time_through_supervisor_rounds(repo: Path) -> None:
    job_id = create_draft(repo, "--prompt", "P", "--supervisor")["id"]
    seen = []
    for _ in range(5):
        job = logist_json(repo, "job", "step", job_id)
        seen.append(
            (job["status"], job["paused"], [(s["role"], s["verdict"]) for s in job["steps"]])
        )
    worker, changes, approve = (
        ("worker", None),
        ("supervisor", "changes"),
        ("supervisor", "approve"),
    )
    assert seen == [
        ("provisioning", True, []),
        ("running", True, [worker]),
        ("running", True, [worker, changes]),
        ("running", True, [worker, changes, worker]),
        ("review", False, [worker, changes, worker, approve]),
    ]
    paused = [e for e in job_events(repo, job_id) if e["kind"] == "paused"]
    assert len(paused) == 4


def test_job_run_takes_a_draft_to_review(repo: Path) -> None:
    draft = create_draft(repo, "--prompt", "hi", "--file", "b.txt")
    job = logist_json(repo, "job", "run", draft["id"])
    assert job["id"] == draft["id"] and job["status"] == "review"
    statuses = [e["data"]["to"] for e in job_events(repo, draft["id"]) if e["kind"] == "status"]
    assert statuses == ["pending", "provisioning", "running", "review"]
    assert "+logist-mock: hi" in run_logist("job", "diff", draft["id"], cwd=repo).stdout


def test_job_run_continues_a_paused_job(repo: Path) -> None:
    job_id = create_draft(repo, "--prompt", "hi")["id"]
    run_logist("job", "step", job_id, cwd=repo)
    job = logist_json(repo, "job", "run", job_id)
    assert job["status"] == "review" and job["paused"] is False


def test_run_dry_run_creates_nothing(repo: Path, workspace_root: Path) -> None:
    before = tree_state(repo)
    proc = run_logist("run", "--prompt", "hello", "--file", "a.txt", "--dry-run", cwd=repo)
    assert proc.stdout.endswith("# prompt:\nhello\n\n---\nFile: a.txt\n")
    assert "logist_server.providers.agents.mock_program" in proc.stdout
    preview = logist_json(repo, "run", "--prompt", "hello", "--dry-run")
    assert preview["job_id"] is None and preview["provision"] is True
    assert preview["prompt"] == "hello\n"
    assert not (repo / ".logist").exists()
    assert list_jobs(repo) == []
    assert branches(repo) == [] and worktree_paths(repo) == [str(repo)]
    assert workspaces(workspace_root) == []
    assert tree_state(repo) == before and porcelain(repo) == ""


def test_dry_run_still_validates(repo: Path) -> None:
    line = assert_one_line_error(
        run_logist("run", "--prompt", "x", "--agent", "nope", "--dry-run", cwd=repo, check=False)
    )
    assert "nope" in line
    assert not (repo / ".logist").exists()


@pytest.mark.parametrize("action", ["step", "run"])
def test_step_and_run_dry_run_change_nothing(repo: Path, workspace_root: Path, action: str) -> None:
    job_id = create_draft(repo, "--prompt", "hi")["id"]
    record = show_job(repo, job_id)
    events = job_events(repo, job_id)
    proc = run_logist("job", action, job_id, "--dry-run", cwd=repo)
    assert proc.stdout.endswith("# prompt:\nhi\n")
    assert show_job(repo, job_id) == record
    assert job_events(repo, job_id) == events
    assert branches(repo) == [] and workspaces(workspace_root) == []
    assert not (repo / ".logist" / "jobs" / job_id / "step-1").exists()


# -- poststep --------------------------------------------------------------------------------
def record_mock_response(tmp_path: Path, prompt: str, *extra: str) -> Path:
    """Run the mock agent program itself in a scratch directory; its stdout, saved."""
    scratch = tmp_path / "recording"
    scratch.mkdir(exist_ok=True)
    (scratch / "prompt.txt").write_text(prompt)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "logist_server.providers.agents.mock_program",
            "--prompt-file",
            "prompt.txt",
            "--scenario",
            "edit",
            *extra,
        ],
        cwd=scratch,
        capture_output=True,
        text=True,
        check=True,
    )
    response = tmp_path / "response.jsonl"
    response.write_text(proc.stdout)
    return response


def make_patch(repo: Path, tmp_path: Path, name: str, edit: dict[str, bytes]) -> Path:
    """A patch (`git diff`) of `edit` against the repository's HEAD, made in a clone."""
    clone = tmp_path / f"clone-{name}"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    for file, content in edit.items():
        (clone / file).write_bytes(content)
    git(clone, "add", "-A")
    patch = tmp_path / f"{name}.patch"
    patch.write_text(git(clone, "diff", "--cached"))
    return patch


def test_poststep_replays_a_recorded_response(repo: Path, tmp_path: Path) -> None:
    response = record_mock_response(tmp_path, "recorded work")
    job_id = create_draft(repo, "--prompt", "hi")["id"]
    job = logist_json(repo, "job", "poststep", job_id, "--response", str(response))
    assert job["status"] == "review"
    events = job_events(repo, job_id)
    messages = [e["data"]["text"] for e in events if e["kind"] == "message"]
    assert messages == ["Working on: recorded work"]
    assert [e["data"]["tool"] for e in events if e["kind"] == "tool_call"] == ["read", "edit"]
    assert [e["kind"] for e in events if e["kind"] in ("usage", "done")] == ["usage", "done"]
    assert job["result"]["usage"]["cost_usd"] == pytest.approx(0.0012)
    # No agent ran and no patch was given: the workspace is as it was.
    assert job["result"]["diff"]["files"] == 0
    assert not (Path(job["workspace"]["path"]) / "LOGIST_MOCK.md").exists()


def test_poststep_with_a_patch_proposes_exactly_that_change(repo: Path, tmp_path: Path) -> None:
    response = record_mock_response(tmp_path, "patched work")
    patch = make_patch(
        repo,
        tmp_path,
        "good",
        {"a.txt": A_TXT.replace(b"line 3\n", b"line three\n") + b"line 11\n"},
    )
    job_id = create_draft(repo, "--prompt", "hi", "--file", "a.txt")["id"]
    proc = run_logist(
        "job", "poststep", job_id, "--response", str(response), "--patch", str(patch), cwd=repo
    )
    assert "review" in proc.stdout
    diff = run_logist("job", "diff", job_id, cwd=repo).stdout
    assert changed_lines(diff) == changed_lines(patch.read_text())
    assert changed_lines(diff) == ["-line 3", "+line three", "+line 11"]
    job = show_job(repo, job_id)
    assert job["result"]["diff"]["paths"] == ["a.txt"]
    # The user's working tree is not touched until accept.
    assert (repo / "a.txt").read_bytes() == A_TXT
    run_logist("job", "accept", job_id, cwd=repo)
    assert b"line three\n" in (repo / "a.txt").read_bytes()


def test_poststep_with_a_patch_that_does_not_apply_fails_the_job(
    repo: Path, tmp_path: Path
) -> None:
    response = record_mock_response(tmp_path, "work")
    patch = make_patch(repo, tmp_path, "stale", {"a.txt": b"something else\n"})
    (repo / "a.txt").write_bytes(b"the user rewrote it\n")  # the job's base differs now
    job_id = create_draft(repo, "--prompt", "hi")["id"]
    proc = run_logist(
        "job",
        "poststep",
        job_id,
        "--response",
        str(response),
        "--patch",
        str(patch),
        cwd=repo,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    job = show_job(repo, job_id)
    assert job["status"] == "failed"
    assert str(patch) in job["status_reason"] and "does not apply" in job["status_reason"]
    assert str(patch) in proc.stdout


def test_poststep_missing_files_are_bad_input(repo: Path, tmp_path: Path) -> None:
    job_id = create_draft(repo, "--prompt", "hi")["id"]
    line = assert_one_line_error(
        run_logist("job", "poststep", job_id, "--response", "nope.jsonl", cwd=repo, check=False)
    )
    assert "--response" in line and "nope.jsonl" in line
    response = record_mock_response(tmp_path, "work")
    line = assert_one_line_error(
        run_logist(
            "job",
            "poststep",
            job_id,
            "--response",
            str(response),
            "--patch",
            "nope.patch",
            cwd=repo,
            check=False,
        )
    )
    assert "--patch" in line and "nope.patch" in line
    line = assert_one_line_error(run_logist("job", "poststep", job_id, cwd=repo, check=False))
    assert "--response" in line
    job = show_job(repo, job_id)
    assert job["status"] == "draft" and job["workspace"] is None


def test_poststep_feeds_worker_and_supervisor_steps_then_live_agents_finish(
    repo: Path, tmp_path: Path
) -> None:
    """A supervised job: a replayed worker step, a replayed `VERDICT: CHANGES`, then the
    preview shows the rework prompt with the comments and live agents finish the job."""
    worker = record_mock_response(tmp_path, "first try")
    patch = make_patch(repo, tmp_path, "first", {"b.txt": b"alpha\nbeta\ngamma\ndelta\n"})
    verdict = tmp_path / "verdict.jsonl"
    verdict.write_text(
        '{"type": "message", "text": "Looks incomplete."}\n'
        '{"type": "message", "text": "VERDICT: CHANGES"}\n'
        '{"type": "message", "text": "Also add epsilon."}\n'
        '{"type": "done", "success": true}\n'
    )
    job_id = create_draft(repo, "--prompt", "extend b", "--supervisor", "--max-rounds", "2")["id"]
    job = logist_json(
        repo, "job", "poststep", job_id, "--response", str(worker), "--patch", str(patch)
    )
    assert job["status"] == "running" and job["paused"] is True
    assert outcomes(job) == [("mock", "done")]

    preview = logist_json(repo, "job", "preview", job_id)
    assert preview["role"] == "supervisor" and preview["step"] == 2
    assert "+delta" in preview["prompt"]

    job = logist_json(repo, "job", "poststep", job_id, "--response", str(verdict))
    assert [(s["role"], s["verdict"]) for s in job["steps"]] == [
        ("worker", None),
        ("supervisor", "changes"),
    ]
    assert job["steps"][1]["comments"] == "Also add epsilon."

    preview = logist_json(repo, "job", "preview", job_id)
    assert preview["role"] == "worker" and preview["step"] == 3
    assert preview["prompt"] == "extend b\n\n## Reviewer comments\nAlso add epsilon.\n"

    job = logist_json(repo, "job", "run", job_id)
    assert job["status"] == "review"
    assert [(s["role"], s["verdict"]) for s in job["steps"]] == [
        ("worker", None),
        ("supervisor", "changes"),
        ("worker", None),
        ("supervisor", "approve"),
    ]
    added = [line for line in changed_lines(run_logist("job", "diff", job_id, cwd=repo).stdout)]
    assert "+delta" in added
    assert "+logist-mock: addressed: Also add epsilon." in added


# -- rerun and restep ------------------------------------------------------------------------
def test_rerun_starts_fresh_from_the_same_base(repo: Path) -> None:
    old = run_job(repo, "--prompt", "hi", "--file", "a.txt")
    old_diff = run_logist("job", "diff", old["id"], cwd=repo).stdout
    # The user moves on: edits and commits; the rerun must not see any of it.
    (repo / "a.txt").write_bytes(b"rewritten by the user\n")
    git(repo, "commit", "-qam", "user work")
    (repo / "b.txt").write_bytes(b"uncommitted\n")

    new = logist_json(repo, "job", "rerun", old["id"])
    assert new["id"] != old["id"]
    assert new["rerun_of"] == old["id"]
    assert new["status"] == "review"
    assert new["base_commit"] == old["base_commit"]
    assert new["workspace"]["base_commit"] == old["workspace"]["base_commit"]
    assert new["prompt"] == old["prompt"] and new["target"] == old["target"]
    assert new["workspace"]["path"] != old["workspace"]["path"]
    workspace = Path(new["workspace"]["path"])
    assert (workspace / "a.txt").read_bytes() == A_TXT + b"logist-mock: hi\n"
    assert run_logist("job", "diff", new["id"], cwd=repo).stdout == old_diff
    # The old job is kept as it was, and points at its rerun in its log.
    assert show_job(repo, old["id"])["status"] == "review"
    assert any(
        e["kind"] == "rerun" and e["data"]["job"] == new["id"] for e in job_events(repo, old["id"])
    )
    assert sorted(j["id"] for j in list_jobs(repo)) == sorted([old["id"], new["id"]])


def test_rerun_of_a_failed_job_and_of_an_unsettled_one(repo: Path) -> None:
    failed = run_job(repo, "--prompt", "hi", "--agent-opt", "scenario=crash", expect=1)
    assert failed["status"] == "failed"
    again = logist_json(repo, "job", "rerun", failed["id"], expect=1)
    assert again["status"] == "failed" and again["rerun_of"] == failed["id"]

    draft = create_draft(repo, "--prompt", "hi")
    line = assert_one_line_error(run_logist("job", "rerun", draft["id"], cwd=repo, check=False))
    assert "draft" in line
    line = assert_one_line_error(run_logist("job", "rerun", "zzzzzz", cwd=repo, check=False))
    assert "zzzzzz" in line


def test_restep_goes_back_to_the_checkpoint_and_runs_the_step_again(repo: Path) -> None:
    job = run_job(repo, "--prompt", "hi", "--file", "a.txt")
    job_id = job["id"]
    diff = run_logist("job", "diff", job_id, cwd=repo).stdout
    workspace = Path(job["workspace"]["path"])
    (workspace / "a.txt").write_bytes(b"scribbled on by someone\n")  # undone by the restep

    again = logist_json(repo, "job", "restep", job_id)
    assert again["id"] == job_id and again["status"] == "review"
    assert [(s["number"], s["outcome"]) for s in again["steps"]] == [(1, "discarded"), (2, "done")]
    # Back at the checkpoint, the mock appended its line once: had the workspace not been
    # reset, the diff would differ.
    assert run_logist("job", "diff", job_id, cwd=repo).stdout == diff
    assert (workspace / "a.txt").read_bytes() == A_TXT + b"logist-mock: hi\n"
    events = job_events(repo, job_id)
    resteps = [e["data"] for e in events if e["kind"] == "restep"]
    assert resteps == [{"step": 1, "checkpoint": job["base_commit"]}]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert show_job(repo, job_id)["steps"][0]["outcome"] == "discarded"


def test_restep_of_a_supervised_job_reruns_only_the_last_step(repo: Path) -> None:
    job = run_job(repo, "--prompt", "P", "--supervisor")
    assert [s["verdict"] for s in job["steps"]] == [None, "changes", None, "approve"]
    diff = run_logist("job", "diff", job["id"], cwd=repo).stdout
    again = logist_json(repo, "job", "restep", job["id"])
    assert again["status"] == "review"
    assert [(s["role"], s["outcome"], s["verdict"]) for s in again["steps"]] == [
        ("worker", "done", None),
        ("supervisor", "done", "changes"),
        ("worker", "done", None),
        ("supervisor", "discarded", "approve"),
        ("supervisor", "done", "approve"),
    ]
    assert run_logist("job", "diff", job["id"], cwd=repo).stdout == diff


def test_restep_of_an_accepted_or_rejected_job_is_refused(repo: Path) -> None:
    accepted = run_job(repo, "--prompt", "hi")
    run_logist("job", "accept", accepted["id"], cwd=repo)
    line = assert_one_line_error(run_logist("job", "restep", accepted["id"], cwd=repo, check=False))
    assert "accepted" in line and "rerun" in line
    rejected = run_job(repo, "--prompt", "hi")
    run_logist("job", "reject", rejected["id"], cwd=repo)
    line = assert_one_line_error(run_logist("job", "restep", rejected["id"], cwd=repo, check=False))
    assert "rejected" in line
    draft = create_draft(repo, "--prompt", "hi")
    line = assert_one_line_error(run_logist("job", "restep", draft["id"], cwd=repo, check=False))
    assert "no step" in line


# -- retry and failover ----------------------------------------------------------------------
def fail_args(kind: str, times: int | None = None) -> list[str]:
    args = ["--agent-opt", "scenario=fail", "--agent-opt", f"kind={kind}"]
    if times is not None:
        args += ["--agent-opt", f"times={times}"]
    return args


def test_a_rate_limit_is_retried_and_the_job_reaches_review(repo: Path) -> None:
    (repo / "logist.yml").write_text(FAST_RETRIES)
    job = run_job(repo, "--prompt", "hi", *fail_args("rate_limit", 1), "--retries", "2")
    assert job["status"] == "review"
    assert outcomes(job) == [("mock", "retry"), ("mock", "done")]
    assert job["steps"][0]["failure"] == RATE_LIMIT_REASON
    assert job["steps"][0]["transient"] is True
    events = job_events(repo, job["id"])
    kinds = [e["kind"] for e in events]
    assert kinds.count("rate_limited") == 1 and kinds.count("retry") == 1
    assert kinds.index("rate_limited") < kinds.index("retry") < kinds.index("harvest")
    retry = next(e["data"] for e in events if e["kind"] == "retry")
    assert retry["attempt"] == 1 and retry["of"] == 2 and retry["delay_s"] == 0.1
    assert RATE_LIMIT_REASON in retry["reason"]
    assert "+logist-mock: hi" in run_logist("job", "diff", job["id"], cwd=repo).stdout


def test_backoff_doubles_up_to_its_maximum(repo: Path) -> None:
    """Each retry records its delay, min(max_backoff_s, backoff_s * 2^n) for the n-th retry
    in a row, and the retried step is recorded no sooner than that delay after it."""
    backoff_s, max_backoff_s, retries = 0.3, 0.6, 3
    (repo / "logist.yml").write_text(
        f"retries:\n  backoff_s: {backoff_s}\n  max_backoff_s: {max_backoff_s}\n"
    )
    job = run_job(repo, "--prompt", "hi", *fail_args("network", retries), "--retries", "3")
    assert job["status"] == "review"
    assert outcomes(job) == [("mock", "retry")] * retries + [("mock", "done")]
    events = job_events(repo, job["id"])
    recorded = [e for e in events if e["kind"] == "retry"]
    wanted = [min(max_backoff_s, backoff_s * 2**n) for n in range(retries)]
    assert [(r["data"]["attempt"], r["data"]["delay_s"]) for r in recorded] == [
        (n + 1, pytest.approx(delay)) for n, delay in enumerate(wanted)
    ]
    # The wait happened where it is recorded: between a retry and the step it starts.
    # (A lower bound the driver guarantees, from the log's own timestamps; no wall clock.)
    for retry in recorded:
        step = next(
            e
            for e in events
            if e["kind"] == "step" and e["data"]["step"] == retry["data"]["step"] + 1
        )
        assert step["seq"] > retry["seq"]
        waited = step["time"] - retry["time"]
        assert waited >= retry["data"]["delay_s"], (retry["data"], waited)


def test_a_cancel_cuts_the_backoff_short(repo: Path) -> None:
    """A retry due in an hour: the job waits without starting the next step, and a cancel
    ends the wait at once (the run returns long before the hour)."""
    (repo / "logist.yml").write_text("retries:\n  backoff_s: 3600\n  max_backoff_s: 3600\n")
    with logist_running(
        "run", "--json", "--prompt", "hi", *fail_args("network", 1), "--retries", "1", cwd=repo
    ) as runner:  # fmt: skip

        def retry_recorded() -> list[dict[str, Any]]:
            jobs = list_jobs(repo)
            if not jobs:
                return []
            return [e for e in job_events(repo, jobs[0]["id"]) if e["kind"] == "retry"]

        (retry,) = wait_for(retry_recorded, timeout=60)
        assert retry["data"]["delay_s"] == 3600
        job_id = retry["job_id"]
        cancelled = run_logist("job", "cancel", job_id, "--json", cwd=repo, timeout=60)
        assert parse_json(cancelled.stdout)["status"] == "cancelled"
        out, err = runner.communicate(timeout=60)  # a guard against hanging, not a speed
    assert runner.returncode == 1, err
    job = parse_json(out)
    assert job["status"] == "cancelled"
    # The retried step never started: the driver was waiting when the cancel came.
    assert outcomes(job) == [("mock", "retry")]
    events = job_events(repo, job_id)
    assert not [e for e in events if e.get("data", {}).get("step") == 2]
    assert [e["data"]["step"] for e in events if e["kind"] == "started"] == [1]


def test_a_rate_limit_that_persists_fails_with_the_observers_reason(repo: Path) -> None:
    (repo / "logist.yml").write_text(FAST_RETRIES)
    job = run_job(repo, "--prompt", "hi", *fail_args("rate_limit", 5), "--retries", "1", expect=1)
    assert job["status"] == "failed"
    assert outcomes(job) == [("mock", "retry"), ("mock", "failed")]
    assert job["status_reason"].startswith(RATE_LIMIT_REASON)
    assert "API Error" not in job["status_reason"]  # a person's words, not the raw line
    assert job["result"]["error"] == job["status_reason"]
    kinds = [e["kind"] for e in job_events(repo, job["id"])]
    assert kinds.count("retry") == 1 and kinds.count("rate_limited") == 2
    text = run_logist("job", "show", job["id"], cwd=repo).stdout
    assert RATE_LIMIT_REASON in text


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("auth", "authentication failed"), ("overflow", "context window")],
)
def test_a_permanent_failure_is_not_retried(repo: Path, kind: str, reason: str) -> None:
    (repo / "logist.yml").write_text(FAST_RETRIES)
    job = run_job(repo, "--prompt", "hi", *fail_args(kind), "--retries", "3", expect=1)
    assert job["status"] == "failed"
    assert outcomes(job) == [("mock", "failed")]
    assert reason in job["status_reason"]
    assert job["steps"][0]["transient"] is False
    assert "retry" not in [e["kind"] for e in job_events(repo, job["id"])]


def test_zero_retries_fails_at_once(repo: Path) -> None:
    job = run_job(repo, "--prompt", "hi", *fail_args("rate_limit", 1), "--retries", "0", expect=1)
    assert outcomes(job) == [("mock", "failed")]


def user_config(text: str) -> None:
    """The user's own configuration file (`$XDG_CONFIG_HOME/logist/config.yml`)."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "logist" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_fallback_agent_that_is_not_registered_is_bad_input(repo: Path) -> None:
    line = assert_one_line_error(
        run_logist("run", "--prompt", "hi", "--fallback-agent", "nope", cwd=repo, check=False)
    )
    assert "nope" in line
    user_config("retries:\n  fallback_agent: nope\n")  # a repository may not choose it
    line = assert_one_line_error(run_logist("run", "--prompt", "hi", cwd=repo, check=False))
    assert "nope" in line
    assert list_jobs(repo) == []


def test_the_agent_itself_as_fallback_is_accepted_and_never_takes_over(repo: Path) -> None:
    (repo / "logist.yml").write_text(FAST_RETRIES)
    job = run_job(
        repo,
        "--prompt",
        "hi",
        *fail_args("rate_limit", 5),
        "--retries",
        "1",
        "--fallback-agent",
        "mock",
        expect=1,
    )
    assert job["policy"]["fallback_agent"] == "mock"
    assert outcomes(job) == [("mock", "retry"), ("mock", "failed")]
    assert "failover" not in [e["kind"] for e in job_events(repo, job["id"])]


@pytest.fixture
def backup_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A second agent, `backup` (the mock program), declared by an entry point."""
    site = tmp_path / "plugin-site"
    info = site / "logist_backup_agent-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: logist-backup-agent\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[logist.agents]\nbackup = logist_server.providers.agents.mock:MockAgent\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(site))
    return "backup"


def test_failover_to_the_fallback_agent_after_retries(repo: Path, backup_agent: str) -> None:
    listed = run_logist("agent", "list", cwd=repo).stdout
    assert backup_agent in listed
    (repo / "logist.yml").write_text(FAST_RETRIES)
    job = run_job(
        repo,
        "--prompt",
        "hi",
        *fail_args("rate_limit", 99),
        "--retries",
        "1",
        "--fallback-agent",
        backup_agent,
    )
    assert job["status"] == "review"
    assert outcomes(job) == [("mock", "retry"), ("mock", "failover"), (backup_agent, "done")]
    events = job_events(repo, job["id"])
    failover = [e["data"] for e in events if e["kind"] == "failover"]
    assert len(failover) == 1
    assert failover[0]["from"] == "mock" and failover[0]["to"] == backup_agent
    assert RATE_LIMIT_REASON in failover[0]["reason"]
    kinds = [e["kind"] for e in events]
    assert kinds.index("retry") < kinds.index("failover") < kinds.index("harvest")
    # The fallback runs with its own defaults, not the failing agent's options.
    argv = started_argv(events, 3)
    assert argv[argv.index("--scenario") + 1] == "edit"
    assert "kind=rate_limit" not in argv
    assert "+logist-mock: hi" in run_logist("job", "diff", job["id"], cwd=repo).stdout


def test_a_permanent_failure_fails_over_without_retrying(repo: Path, backup_agent: str) -> None:
    (repo / "logist.yml").write_text(FAST_RETRIES)
    user_config(f"retries:\n  fallback_agent: {backup_agent}\n")  # the user's own choice
    job = run_job(repo, "--prompt", "hi", *fail_args("auth"), "--retries", "3")
    assert job["status"] == "review"
    assert job["policy"]["fallback_agent"] == backup_agent
    assert outcomes(job) == [("mock", "failover"), (backup_agent, "done")]
    kinds = [e["kind"] for e in job_events(repo, job["id"])]
    assert "retry" not in kinds and kinds.count("failover") == 1


def test_supervisor_rounds_after_a_failover_keep_the_fallback_agent(
    repo: Path, backup_agent: str
) -> None:
    (repo / "logist.yml").write_text(FAST_RETRIES)
    job = run_job(
        repo, "--prompt", "hi", *fail_args("auth"), "--fallback-agent", backup_agent, "--supervisor"
    )
    assert job["status"] == "review"
    assert [(s["role"], s["agent"], s["outcome"], s["verdict"]) for s in job["steps"]] == [
        ("worker", "mock", "failover", None),
        ("worker", backup_agent, "done", None),
        ("supervisor", backup_agent, "done", "changes"),
        ("worker", backup_agent, "done", None),
        ("supervisor", backup_agent, "done", "approve"),
    ]


# -- bugs found and fixed --------------------------------------------------------------------
def test_poststep_on_a_settled_job_is_bad_input(repo: Path, tmp_path: Path) -> None:
    job = run_job(repo, "--prompt", "hi")
    response = record_mock_response(tmp_path, "late")
    proc = run_logist(
        "job", "poststep", job["id"], "--response", str(response), cwd=repo, check=False
    )
    line = assert_one_line_error(proc)
    assert "review" in line


def test_attach_does_not_start_a_draft(repo: Path) -> None:
    job_id = create_draft(repo, "--prompt", "hi")["id"]
    run_logist("job", "attach", job_id, cwd=repo, check=False)
    job = show_job(repo, job_id)
    assert job["status"] == "draft" and job["workspace"] is None


def test_rerun_after_git_gc_of_a_snapshot_base(repo: Path) -> None:
    (repo / "a.txt").write_bytes(A_TXT + b"uncommitted\n")  # the base is a snapshot commit
    old = run_job(repo, "--prompt", "hi")
    assert old["base_commit"] != git(repo, "rev-parse", "HEAD").strip()
    run_logist("job", "reject", old["id"], cwd=repo)
    git(repo, "gc", "-q", "--prune=now")
    new = logist_json(repo, "job", "rerun", old["id"])
    assert new["status"] == "review"

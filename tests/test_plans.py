"""`domain/plans.py`: what a job does next, decided from its record alone.

Pure unit tests on hand-built `Job` records (no git, no processes): every branch of
`plan_next`, and `worker_agent`, `consecutive_retries`, `current_checkpoint`, `live_steps`.
The end-to-end counterparts are in test_roles.py and test_step_control.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from logist_server.domain.model import (
    AgentSpec,
    Job,
    JobPolicy,
    JobResult,
    JobStatus,
    Step,
    Workspace,
)
from logist_server.domain.plans import (
    Settle,
    StartStep,
    consecutive_retries,
    current_checkpoint,
    live_steps,
    plan_next,
    worker_agent,
)
from logist_server.domain.roles import BUILTIN_ROLES, SUPERVISOR, Role

BASE = "b" * 40
ROLES = dict(BUILTIN_ROLES)
COMMENTS = "Please add a test."


def job(
    *steps: Step,
    supervise: bool = False,
    max_rounds: int = 3,
    fallback: str | None = None,
    role: str = "worker",
    error: str | None = None,
    workspace: bool = True,
    supervisor_role: str = "supervisor",
) -> Job:
    return Job(
        id="j1",
        prompt="do it",
        repo="/repo",
        agent=AgentSpec("mock"),
        policy=JobPolicy(
            max_retries=2,
            fallback_agent=fallback,
            supervise=supervise,
            max_rounds=max_rounds,
            supervisor_role=supervisor_role,
        ),
        role=role,
        status=JobStatus.RUNNING,
        base_commit="a" * 40,
        workspace=Workspace("/ws", "logist/j1", BASE) if workspace else None,
        steps=list(steps),
        result=JobResult(error=error),
    )


def numbered(*specs: dict[str, Any]) -> list[Step]:
    return [Step(number=i, **spec) for i, spec in enumerate(specs, start=1)]


def work(agent: str = "mock", commit: str | None = "c1", **more: Any) -> dict[str, Any]:
    return {"role": "worker", "agent": agent, "outcome": "done", "result_commit": commit, **more}


def review(verdict: str | None, agent: str = "mock", **more: Any) -> dict[str, Any]:
    comments = COMMENTS if verdict == "changes" else None
    return {
        "role": "supervisor",
        "agent": agent,
        "outcome": "done",
        "verdict": verdict,
        "comments": comments,
        **more,
    }


# -- plan_next -------------------------------------------------------------------------------
def test_a_new_job_starts_its_role_with_its_agent() -> None:
    assert plan_next(job(), ROLES) == StartStep("worker", "mock")
    assert plan_next(job(role="tester"), ROLES) == StartStep("tester", "mock")


def test_a_done_worker_goes_to_review_unless_supervised() -> None:
    assert plan_next(job(*numbered(work())), ROLES) == Settle(JobStatus.REVIEW)
    supervised = job(*numbered(work()), supervise=True)
    assert plan_next(supervised, ROLES) == StartStep("supervisor", "mock")


def test_the_supervisor_runs_its_own_agent_when_its_role_names_one() -> None:
    roles = {**ROLES, "supervisor": Role("supervisor", SUPERVISOR, agent="reviewer-agent")}
    assert plan_next(job(*numbered(work()), supervise=True), roles) == StartStep(
        "supervisor", "reviewer-agent"
    )


def test_approval_settles_in_review() -> None:
    plan = plan_next(job(*numbered(work(), review("approve")), supervise=True), ROLES)
    assert plan == Settle(JobStatus.REVIEW, "approved by the supervisor")


def test_changes_start_a_worker_step_carrying_the_comments() -> None:
    plan = plan_next(job(*numbered(work(), review("changes")), supervise=True), ROLES)
    assert plan == StartStep("worker", "mock", COMMENTS)


def test_changes_after_the_last_round_settle_in_review_saying_so() -> None:
    steps = numbered(work(), review("changes"), work(), review("changes"))
    plan = plan_next(job(*steps, supervise=True, max_rounds=2), ROLES)
    assert plan == Settle(
        JobStatus.REVIEW, "the supervisor still asks for changes after 2 round(s)"
    )
    # One round fewer counted: another worker step.
    assert isinstance(plan_next(job(*steps, supervise=True, max_rounds=3), ROLES), StartStep)


def test_max_rounds_one_means_one_review() -> None:
    plan = plan_next(job(*numbered(work(), review("changes")), supervise=True, max_rounds=1), ROLES)
    assert isinstance(plan, Settle) and plan.status == JobStatus.REVIEW
    assert "1 round(s)" in (plan.reason or "")


def test_no_verdict_settles_in_review_saying_so() -> None:
    plan = plan_next(job(*numbered(work(), review(None)), supervise=True), ROLES)
    assert plan == Settle(JobStatus.REVIEW, "the supervisor gave no verdict")


def test_a_user_supervisor_role_counts_its_own_rounds() -> None:
    roles = {**ROLES, "strict": Role("strict", SUPERVISOR)}
    steps = numbered(work(), {**review("changes"), "role": "strict"})
    j = job(*steps, supervise=True, supervisor_role="strict", max_rounds=1)
    assert plan_next(j, roles) == Settle(
        JobStatus.REVIEW, "the strict still asks for changes after 1 round(s)"
    )
    j = job(*numbered(work()), supervise=True, supervisor_role="strict")
    assert plan_next(j, roles) == StartStep("strict", "mock")


def test_a_retry_runs_the_same_step_again_with_the_same_agent_and_brief() -> None:
    steps = numbered(
        work(),
        review("changes"),
        {"role": "worker", "agent": "mock", "outcome": "retry", "brief": COMMENTS},
    )
    assert plan_next(job(*steps, supervise=True), ROLES) == StartStep("worker", "mock", COMMENTS)
    retry_review = numbered(work(), {"role": "supervisor", "agent": "mock", "outcome": "retry"})
    assert plan_next(job(*retry_review, supervise=True), ROLES) == StartStep("supervisor", "mock")


def test_a_failover_runs_the_step_again_with_the_fallback_agent() -> None:
    steps = numbered({"role": "worker", "agent": "mock", "outcome": "failover"})
    assert plan_next(job(*steps, fallback="backup"), ROLES) == StartStep("worker", "backup")
    # Without a fallback (it cannot happen, but the record decides): the job's agent.
    assert plan_next(job(*steps), ROLES) == StartStep("worker", "mock")


def test_a_failed_step_fails_the_job_with_its_error() -> None:
    steps = numbered({"role": "worker", "agent": "mock", "outcome": "failed"})
    assert plan_next(job(*steps, error="rate limited"), ROLES) == Settle(
        JobStatus.FAILED, "rate limited"
    )
    assert plan_next(job(*steps), ROLES) == Settle(JobStatus.FAILED, "the agent failed")


def test_discarded_steps_do_not_count() -> None:
    steps = numbered({**work(), "outcome": "discarded"})
    assert plan_next(job(*steps), ROLES) == StartStep("worker", "mock")
    # A restep over the supervisor's approval reviews again.
    steps = numbered(work(), {**review("approve"), "outcome": "discarded"})
    assert plan_next(job(*steps, supervise=True), ROLES) == StartStep("supervisor", "mock")
    # A discarded round is not counted against max_rounds.
    steps = numbered(work(), {**review("changes"), "outcome": "discarded"}, review("changes"))
    assert plan_next(job(*steps, supervise=True, max_rounds=2), ROLES) == StartStep(
        "worker", "mock", COMMENTS
    )


# -- worker_agent ----------------------------------------------------------------------------
def test_worker_agent_is_the_fallback_after_a_failover() -> None:
    steps = numbered(
        {"role": "worker", "agent": "mock", "outcome": "failover"},
        work(agent="backup"),
        review("changes", agent="backup"),
    )
    j = job(*steps, supervise=True, fallback="backup")
    assert worker_agent(j) == "backup"
    assert plan_next(j, ROLES) == StartStep("worker", "backup", COMMENTS)


def test_worker_agent_is_the_jobs_agent_without_a_failover() -> None:
    assert worker_agent(job()) == "mock"
    assert (
        worker_agent(job(*numbered(work(), review("changes", agent="other")), supervise=True))
        == "mock"
    )


def test_the_supervisor_follows_the_worker_to_the_fallback() -> None:
    steps = numbered(
        {"role": "worker", "agent": "mock", "outcome": "failover"}, work(agent="backup")
    )
    assert plan_next(job(*steps, supervise=True, fallback="backup"), ROLES) == StartStep(
        "supervisor", "backup"
    )


# -- consecutive_retries ---------------------------------------------------------------------
def retry() -> dict[str, Any]:
    return {"role": "worker", "agent": "mock", "outcome": "retry"}


def current() -> dict[str, Any]:
    return {"role": "worker", "agent": "mock"}


@pytest.mark.parametrize(
    ("specs", "count"),
    [
        ([], 0),
        ([current()], 0),
        ([retry(), current()], 1),
        ([retry(), retry(), current()], 2),
        ([retry(), {**retry(), "outcome": "failover"}, retry(), current()], 1),
        ([work(), retry(), retry(), current()], 2),
        ([retry(), {**work(), "outcome": "discarded"}, current()], 1),
    ],
    ids=[
        "none",
        "first try",
        "one",
        "two",
        "failover resets",
        "after a done step",
        "discarded skipped",
    ],
)
def test_consecutive_retries(specs: list[dict[str, Any]], count: int) -> None:
    assert consecutive_retries(job(*numbered(*specs))) == count


# -- current_checkpoint ----------------------------------------------------------------------
def test_checkpoint_is_the_workspace_base_before_any_change() -> None:
    assert current_checkpoint(job()) == BASE
    assert current_checkpoint(job(*numbered(retry()))) == BASE
    assert current_checkpoint(job(workspace=False)) == "a" * 40  # the job's own base


def test_checkpoint_is_the_last_harvested_change() -> None:
    steps = numbered(work(commit="c1"), review("changes"), work(commit="c2"), retry())
    assert current_checkpoint(job(*steps)) == "c2"


def test_checkpoint_ignores_discarded_steps_and_supervisor_steps() -> None:
    steps = numbered(work(commit="c1"), {**work(commit="c2"), "outcome": "discarded"})
    assert current_checkpoint(job(*steps)) == "c1"
    steps = numbered(work(commit="c1"), review("changes"))
    assert current_checkpoint(job(*steps)) == "c1"


def test_live_steps() -> None:
    steps = numbered(work(), {**work(), "outcome": "discarded"}, current())
    assert [s.number for s in live_steps(job(*steps))] == [1, 3]

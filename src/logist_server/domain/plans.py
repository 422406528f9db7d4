"""What a job does next, decided from its record alone (so any process decides the same).

After each step: a worker's change goes to the supervisor when the job is supervised, else
to review; a step the user asked changes after (in review) is followed by a worker step
carrying them; a supervisor's approval goes to review, its request for changes to another
worker step carrying the comments, up to the job's maximum of rounds. A step that ended in
`retry` or `failover` is run again (by the fallback agent for a failover).
"""

from __future__ import annotations

import msgspec

from logist_server.domain.model import Job, JobStatus, Step
from logist_server.domain.roles import SUPERVISOR, Role


class StartStep(msgspec.Struct, frozen=True):
    """Run a step of `role` with `agent`, given `brief` (reviewer comments) if any."""

    role: str
    agent: str
    brief: str | None = None


class Settle(msgspec.Struct, frozen=True):
    """End the job's run in `status` (review, or failed) for `reason`."""

    status: JobStatus
    reason: str | None = None


def live_steps(job: Job) -> list[Step]:
    """Steps that count (a restep discards the step it goes back over)."""
    return [s for s in job.steps if s.outcome != "discarded"]


def worker_agent(job: Job) -> str:
    """The agent doing the work now: the job's, or the fallback after a failover."""
    for step in reversed(live_steps(job)):
        if step.outcome == "failover" and job.policy.fallback_agent:
            return job.policy.fallback_agent
        if step.outcome == "done" and step.agent and step.role != job.policy.supervisor_role:
            return step.agent
    return job.agent.name


def plan_next(job: Job, roles: dict[str, Role]) -> StartStep | Settle:
    steps = live_steps(job)
    if not steps:
        return StartStep(job.role, job.agent.name)
    last = steps[-1]
    if last.outcome in ("retry", "asked"):  # asked: the answer resumes its session
        return StartStep(last.role, last.agent or job.agent.name, last.brief)
    if last.outcome == "failover":
        return StartStep(last.role, job.policy.fallback_agent or job.agent.name, last.brief)
    if last.outcome == "failed":
        return Settle(JobStatus.FAILED, job.result.error or "the agent failed")
    if last.changes_requested is not None:  # the user asked for changes in review
        return StartStep(job.role, worker_agent(job), last.changes_requested)
    role = roles.get(last.role)
    policy = job.policy
    if role is not None and role.kind == SUPERVISOR:
        reviews = sum(1 for s in steps if s.role == last.role and s.outcome == "done")
        if last.verdict == "approve":
            return Settle(JobStatus.REVIEW, f"approved by the {last.role}")
        if last.verdict is None:
            return Settle(JobStatus.REVIEW, f"the {last.role} gave no verdict")
        if reviews < policy.max_rounds:
            return StartStep(job.role, worker_agent(job), last.comments or "")
        return Settle(
            JobStatus.REVIEW,
            f"the {last.role} still asks for changes after {reviews} round(s)",
        )
    if policy.supervise:
        supervisor = roles.get(policy.supervisor_role)
        agent = (supervisor.agent if supervisor else None) or worker_agent(job)
        return StartStep(policy.supervisor_role, agent)
    return Settle(JobStatus.REVIEW)


def current_checkpoint(job: Job) -> str | None:
    """The workspace commit the next step starts from: the last harvested change, or base."""
    for step in reversed(live_steps(job)):
        if step.outcome == "done" and step.result_commit:
            return step.result_commit
    return job.workspace.base_commit if job.workspace else job.base_commit


def consecutive_retries(job: Job) -> int:
    """How many times in a row the current step has been retried."""
    count = 0
    for step in reversed(live_steps(job)[:-1]):
        if step.outcome != "retry":
            break
        count += 1
    return count

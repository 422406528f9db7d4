"""Why a step runs and which of the agent's sessions it continues (from the job's record).

A real agent keeps a conversation (claude's session, codex's thread) that a later run can
resume. Before a step starts, `continuation` looks at the job's earlier steps: a retry, a
supervisor's rework round, an answer to a question or a second review continues the most
recent session of the same role and agent, when the agent's provider `supports_resume`.
When it cannot, `Continuation.note` says why, and the engine records that as an event.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from logist_server.domain.agent_output import session_problem
from logist_server.domain.model import Job, Step
from logist_server.domain.plans import live_steps

#: start: the job's first step; retry / failover: the step before failed; review: a
#: supervisor looks at a worker's change; rework: a worker addresses the supervisor's
#: comments; answer: the agent asked a question and the user answered it; changes: a
#: worker addresses the user's comments on the job in review (`request_changes`).
Why = Literal["start", "retry", "failover", "review", "rework", "answer", "changes"]


class PriorStep(msgspec.Struct, frozen=True):
    """One earlier step of the job, as a provider may use it to build the next."""

    number: int
    role: str
    agent: str | None
    outcome: str | None
    why: str | None = None
    session_id: str | None = None
    verdict: str | None = None
    finished_at: float | None = None


class Continuation(msgspec.Struct, frozen=True):
    """What the next step continues: its reason, the job's history, the session to resume
    (None: a new one), why an earlier session is not resumed, and the user's answer."""

    why: Why
    history: tuple[PriorStep, ...] = ()
    session: str | None = None
    note: str | None = None
    answer: str | None = None


def why_next(job: Job) -> Why:
    """Why the job's next step runs, from its last live step."""
    steps = live_steps(job)
    if not steps:
        return "start"
    last = steps[-1]
    if last.outcome in ("retry", "failover"):
        return "retry" if last.outcome == "retry" else "failover"
    if last.outcome == "asked":
        return "answer"
    if last.changes_requested is not None:
        return "changes"
    if last.verdict == "changes":
        return "rework"
    return "review"


def prior_step(step: Step) -> PriorStep:
    return PriorStep(
        number=step.number,
        role=step.role,
        agent=step.agent,
        outcome=step.outcome,
        why=step.why,
        session_id=step.session_id,
        verdict=step.verdict,
        finished_at=step.finished_at,
    )


def continuation(job: Job, role: str, agent: str, supports_resume: bool) -> Continuation:
    """The next step's `Continuation` for a step of `role` run by `agent`."""
    why = why_next(job)
    steps = live_steps(job)
    history = tuple(prior_step(s) for s in steps)
    question = job.question
    answer = question.answer if why == "answer" and question is not None else None
    same_role = [s for s in reversed(steps) if s.role == role and s.session_id]
    earlier = next((s for s in same_role if s.agent == agent), None)
    if earlier is None:
        other = same_role[0] if same_role else None
        note = None
        if other is not None:
            note = (
                f"step {other.number}'s session belongs to agent '{other.agent}': "
                f"agent '{agent}' starts a new session"
            )
        elif why == "answer":
            note = f"the agent reported no session: agent '{agent}' starts a new one"
        return Continuation(why, history, None, note, answer)
    if not supports_resume:
        note = (
            f"agent '{agent}' cannot resume a session: step {earlier.number}'s session "
            "is not continued, a new one starts"
        )
        return Continuation(why, history, None, note, answer)
    problem = session_problem(earlier.session_id or "")
    if problem is not None:  # a record from before the id was screened: never on a command line
        note = f"step {earlier.number}'s session id is refused ({problem}): a new one starts"
        return Continuation(why, history, None, note, answer)
    return Continuation(why, history, earlier.session_id, None, answer)


def resume_event(number: int, plan: Continuation) -> dict[str, object] | None:
    """The data of the `resume` job event for step `number`: which session it resumes, or
    why an earlier one is not resumed; None when there was none to resume (a first step)."""
    if plan.session is None and plan.note is None:
        return None
    data: dict[str, object] = {"step": number, "why": plan.why, "resumed": plan.session is not None}
    if plan.session is not None:
        data["session"] = plan.session
    else:
        data["reason"] = plan.note or "no earlier session of this role and agent"
    return data

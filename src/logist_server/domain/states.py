"""The job state machine. An illegal transition is an error, never silently applied."""

from __future__ import annotations

from logist_server.domain.errors import IllegalTransitionError
from logist_server.domain.model import JobStatus

S = JobStatus

# Terminal for a run: nothing drives the job any more until a rerun.
SETTLED: frozenset[JobStatus] = frozenset(
    {S.REVIEW, S.ACCEPTED, S.REJECTED, S.STUCK, S.HALTED, S.FAILED, S.CANCELLED}
)
# The job is being driven (or should be): an agent may be alive.
ACTIVE: frozenset[JobStatus] = frozenset({S.PENDING, S.PROVISIONING, S.RUNNING, S.NEEDS_INPUT})
# Can be started over from the base.
RERUNNABLE: frozenset[JobStatus] = frozenset(
    {S.REVIEW, S.STUCK, S.HALTED, S.FAILED, S.CANCELLED, S.REJECTED}
)

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.DRAFT: frozenset({S.PENDING, S.CANCELLED}),
    S.PENDING: frozenset({S.PROVISIONING, S.FAILED, S.CANCELLED}),
    S.PROVISIONING: frozenset({S.RUNNING, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset(
        {S.REVIEW, S.NEEDS_INPUT, S.STUCK, S.HALTED, S.FAILED, S.CANCELLED, S.PENDING}
    ),
    S.NEEDS_INPUT: frozenset({S.RUNNING, S.STUCK, S.HALTED, S.FAILED, S.CANCELLED}),
    S.REVIEW: frozenset({S.ACCEPTED, S.REJECTED, S.PENDING}),
    S.STUCK: frozenset({S.PENDING, S.CANCELLED}),
    S.HALTED: frozenset({S.PENDING, S.CANCELLED}),
    S.FAILED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset({S.PENDING}),
    S.REJECTED: frozenset({S.PENDING}),
    S.ACCEPTED: frozenset(),
}


def can_transition(src: JobStatus, dst: JobStatus) -> bool:
    """True when the state machine allows `src` -> `dst`."""
    return dst in TRANSITIONS[src]


def check_transition(src: JobStatus, dst: JobStatus) -> None:
    """Raise IllegalTransitionError unless `src` -> `dst` is allowed."""
    if not can_transition(src, dst):
        allowed = ", ".join(sorted(TRANSITIONS[src])) or "nothing (final)"
        raise IllegalTransitionError(
            f"a job in '{src}' cannot become '{dst}' (allowed from '{src}': {allowed})"
        )

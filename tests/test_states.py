"""The job state machine against its specification, not against its own table.

`SPEC` is the table of doc/architecture.md ("State machine"), written out here by hand: a
change to `states.TRANSITIONS` that the design does not make fails here. The properties
below hold for any table the design could grow into: settled jobs are moved only by a person
(accept, reject, restep, cancel), and every active job can always fail or be cancelled.
"""

from __future__ import annotations

import itertools
from collections import deque

import pytest

from logist_server.domain.errors import IllegalTransitionError, UsageError
from logist_server.domain.model import JobStatus
from logist_server.domain.states import (
    ACTIVE,
    RERUNNABLE,
    SETTLED,
    TRANSITIONS,
    can_transition,
    check_transition,
)

S = JobStatus

# doc/architecture.md, "State machine": From -> Allowed to.
SPEC: dict[str, set[str]] = {
    "draft": {"pending", "cancelled"},
    "pending": {"provisioning", "failed", "cancelled"},
    "provisioning": {"running", "failed", "cancelled"},
    "running": {"review", "needs_input", "stuck", "halted", "failed", "cancelled", "pending"},
    "needs_input": {"running", "stuck", "halted", "failed", "cancelled"},
    "review": {"accepted", "rejected", "pending"},
    "stuck": {"pending", "cancelled"},
    "halted": {"pending", "cancelled"},
    "failed": {"pending"},
    "cancelled": {"pending"},
    "rejected": {"pending"},
    "accepted": set(),
}
# doc/architecture.md: "`SETTLED` is review, accepted, rejected, stuck, halted, failed and
# cancelled ... `ACTIVE` is pending, provisioning, running and needs_input".
SPEC_SETTLED = {"review", "accepted", "rejected", "stuck", "halted", "failed", "cancelled"}
SPEC_ACTIVE = {"pending", "provisioning", "running", "needs_input"}
# How a job is born: `logist run` / the editor insert `pending`, `job create` a `draft`.
BIRTH = {"draft", "pending"}
# A person's decisions on a settled job (the driver never makes these moves).
DECISIONS = {"accepted", "rejected", "cancelled"}
# Restep: the one way back from a settled job into the driven states.
RESTEP = "pending"

PAIRS = [(src, dst) for src in SPEC for dst in SPEC]


def test_the_statuses_are_those_of_the_specification() -> None:
    assert {s.value for s in JobStatus} == set(SPEC)
    assert {s.value for s in TRANSITIONS} == set(SPEC)


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_each_move_is_allowed_exactly_when_the_specification_allows_it(src: str, dst: str) -> None:
    allowed = dst in SPEC[src]
    assert can_transition(S(src), S(dst)) is allowed
    if allowed:
        check_transition(S(src), S(dst))  # does not raise
        return
    with pytest.raises(IllegalTransitionError) as info:
        check_transition(S(src), S(dst))
    message = str(info.value)
    assert f"'{src}'" in message and f"'{dst}'" in message
    # The message lists what is allowed instead, so the user knows the way on.
    for target in SPEC[src]:
        assert target in message
    if not SPEC[src]:
        assert "nothing (final)" in message


def test_the_status_groups_are_those_of_the_specification() -> None:
    assert {s.value for s in SETTLED} == SPEC_SETTLED
    assert {s.value for s in ACTIVE} == SPEC_ACTIVE
    # Every status is settled, active, or a draft, and never two of these.
    assert SPEC_SETTLED.isdisjoint(SPEC_ACTIVE)
    assert SPEC_SETTLED | SPEC_ACTIVE | {"draft"} == set(SPEC)
    # Rerun starts a new job from a settled one; the final `accepted` is not restarted.
    assert {s.value for s in RERUNNABLE} <= SPEC_SETTLED - {"accepted"}


def test_an_illegal_transition_is_a_usage_error() -> None:
    # Shown to the user as one line with exit status 2.
    assert issubclass(IllegalTransitionError, UsageError)
    assert IllegalTransitionError.exit_status == 2


# -- properties, over the implementation's own table ----------------------------------------
def reachable(src: str) -> set[str]:
    """Every status a job in `src` can reach through allowed moves (itself excluded)."""
    seen: set[str] = set()
    queue = deque([src])
    while queue:
        for nxt in TRANSITIONS[S(queue.popleft())]:
            if nxt.value not in seen:
                seen.add(nxt.value)
                queue.append(nxt.value)
    seen.discard(src)
    return seen


def test_no_status_moves_to_itself() -> None:
    for status in JobStatus:
        assert not can_transition(status, status), status


@pytest.mark.parametrize("status", sorted(SPEC_SETTLED))
def test_a_settled_job_is_moved_only_by_a_person(status: str) -> None:
    """Nothing drives a settled job: it leaves its status only by a decision (accept,
    reject, cancel) or by restep back to `pending`; rerun and delete make no move."""
    targets = {t.value for t in TRANSITIONS[S(status)]}
    assert targets <= DECISIONS | {RESTEP}, targets
    # Never straight back into a driven state other than through restep's `pending`.
    assert not targets & (SPEC_ACTIVE - {RESTEP})
    # A decision is final or leads only to restep: no chain of decisions.
    for target in targets & DECISIONS:
        assert {t.value for t in TRANSITIONS[S(target)]} <= {RESTEP}, target


def test_accepted_is_final() -> None:
    assert reachable("accepted") == set()
    for dst in JobStatus:
        with pytest.raises(IllegalTransitionError, match="final"):
            check_transition(S.ACCEPTED, dst)


def test_only_review_leads_to_accepted_or_rejected() -> None:
    for status in JobStatus:
        for decision in (S.ACCEPTED, S.REJECTED):
            assert can_transition(status, decision) is (status == S.REVIEW), (status, decision)


@pytest.mark.parametrize("status", sorted(SPEC_ACTIVE))
def test_an_active_job_can_always_fail_or_be_cancelled_at_once(status: str) -> None:
    # Directly: a driver that raises, or a `job cancel`, must never need a detour.
    assert can_transition(S(status), S.FAILED)
    assert can_transition(S(status), S.CANCELLED)


def test_every_status_is_reachable_from_a_birth_status() -> None:
    born = set(BIRTH)
    for status in BIRTH:
        born |= reachable(status)
    assert born == set(SPEC)


@pytest.mark.parametrize("status", sorted(set(SPEC) - {"accepted"}))
def test_every_job_but_an_accepted_one_can_still_end(status: str) -> None:
    """No trap: from anywhere but `accepted` some settled status is reachable."""
    assert reachable(status) & SPEC_SETTLED


def test_the_happy_path_and_the_restep_loop() -> None:
    happy = ["draft", "pending", "provisioning", "running", "review", "accepted"]
    for src, dst in itertools.pairwise(happy):
        check_transition(S(src), S(dst))
    # review -> restep -> driven again -> review
    for src, dst in itertools.pairwise(["review", "pending", "provisioning", "running", "review"]):
        check_transition(S(src), S(dst))
    # A question and its answer.
    for src, dst in itertools.pairwise(["running", "needs_input", "running", "review"]):
        check_transition(S(src), S(dst))

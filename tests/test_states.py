"""The job state machine: allowed moves pass, illegal ones raise, `accepted` is final."""

from __future__ import annotations

import itertools

import pytest

from logist_server.errors import IllegalTransitionError, UsageError
from logist_server.model import JobStatus
from logist_server.states import (
    ACTIVE,
    RERUNNABLE,
    SETTLED,
    TRANSITIONS,
    can_transition,
    check_transition,
)

S = JobStatus
ALLOWED = [(src, dst) for src, targets in TRANSITIONS.items() for dst in sorted(targets)]
ILLEGAL = [
    (src, dst)
    for src, dst in itertools.product(JobStatus, JobStatus)
    if dst not in TRANSITIONS[src]
]


def test_every_status_of_the_issue_exists_and_has_a_rule() -> None:
    assert {s.value for s in JobStatus} == {
        "draft",
        "pending",
        "provisioning",
        "running",
        "review",
        "accepted",
        "rejected",
        "needs_input",
        "stuck",
        "halted",
        "failed",
        "cancelled",
    }
    assert set(TRANSITIONS) == set(JobStatus)


@pytest.mark.parametrize(("src", "dst"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_allowed_transition_passes(src: JobStatus, dst: JobStatus) -> None:
    assert can_transition(src, dst)
    check_transition(src, dst)  # does not raise


@pytest.mark.parametrize(("src", "dst"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_illegal_transition_raises(src: JobStatus, dst: JobStatus) -> None:
    assert not can_transition(src, dst)
    with pytest.raises(IllegalTransitionError) as info:
        check_transition(src, dst)
    message = str(info.value)
    assert f"'{src}'" in message and f"'{dst}'" in message


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (S.PENDING, S.REVIEW),  # skipping the run
        (S.PROVISIONING, S.REVIEW),
        (S.REVIEW, S.RUNNING),
        (S.FAILED, S.REVIEW),
        (S.CANCELLED, S.RUNNING),
        (S.DRAFT, S.RUNNING),
        (S.REJECTED, S.ACCEPTED),
        (S.RUNNING, S.ACCEPTED),
        (S.RUNNING, S.RUNNING),
        (S.REVIEW, S.REVIEW),
    ],
)
def test_sample_of_illegal_moves(src: JobStatus, dst: JobStatus) -> None:
    with pytest.raises(IllegalTransitionError):
        check_transition(src, dst)


def test_illegal_transition_is_a_usage_error() -> None:
    # Shown to the user as one line with exit status 2.
    assert issubclass(IllegalTransitionError, UsageError)
    assert IllegalTransitionError.exit_status == 2


@pytest.mark.parametrize("dst", list(JobStatus))
def test_accepted_is_final(dst: JobStatus) -> None:
    assert not can_transition(S.ACCEPTED, dst)
    with pytest.raises(IllegalTransitionError, match="final"):
        check_transition(S.ACCEPTED, dst)


def test_happy_path_is_allowed() -> None:
    path = [S.DRAFT, S.PENDING, S.PROVISIONING, S.RUNNING, S.REVIEW, S.ACCEPTED]
    for src, dst in itertools.pairwise(path):
        check_transition(src, dst)


def test_status_groups_are_consistent() -> None:
    assert S.ACCEPTED in SETTLED and S.REVIEW in SETTLED
    assert not (SETTLED & ACTIVE)
    # Every rerunnable status can go back to pending; nothing active is settled.
    for status in RERUNNABLE:
        assert can_transition(status, S.PENDING), status
    # Every active status can be cancelled or fail.
    for status in ACTIVE:
        assert can_transition(status, S.CANCELLED) or can_transition(status, S.FAILED)

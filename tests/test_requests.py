"""Validating a job request before anything is created: ranges, targets, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Limits, LineRange
from logist_server.domain.requests import JobRequest, parse_range, resolve_target, validate_limits


@pytest.mark.parametrize(
    "text",
    ["", "x", "1-", "-3", "0", "0-2", "5-3", "1-2-3", "a-b", "1.5-2", "3-x", "--", "1 2"],
)
def test_parse_range_rejects_bad_input(text: str) -> None:
    with pytest.raises(UsageError, match="bad range"):
        parse_range(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", LineRange(3, 3)), ("2-4", LineRange(2, 4)), ("1-1", LineRange(1, 1))],
)
def test_parse_range_accepts_good_input(text: str, expected: LineRange) -> None:
    assert parse_range(text) == expected


def test_resolve_target_relative_to_cwd_with_selected_text(repo: Path) -> None:
    (repo / "sub").mkdir()
    (repo / "sub" / "x.txt").write_text("one\ntwo\nthree\n")
    request = JobRequest(prompt="p", file="x.txt", range=LineRange(2, 3), cwd=str(repo / "sub"))
    target = resolve_target(request, repo)
    assert target is not None
    assert target.file == "sub/x.txt"
    assert target.text == "two\nthree\n"


@pytest.mark.parametrize(
    ("file", "message"),
    [
        ("../elsewhere.txt", "outside the repository"),
        ("/etc/hostname", "outside the repository"),
        (".git/config", "git's or logist's own data"),
        ("missing.txt", "no such file"),
    ],
)
def test_resolve_target_rejects_bad_files(repo: Path, file: str, message: str) -> None:
    (repo.parent / "elsewhere.txt").write_text("x\n")
    with pytest.raises(UsageError, match=message):
        resolve_target(JobRequest(prompt="p", file=file, cwd=str(repo)), repo)


def test_resolve_target_rejects_range_problems(repo: Path) -> None:
    with pytest.raises(UsageError, match="--range needs --file"):
        resolve_target(JobRequest(prompt="p", range=LineRange(1, 2), cwd=str(repo)), repo)
    with pytest.raises(UsageError, match="past the end"):
        resolve_target(
            JobRequest(prompt="p", file="b.txt", range=LineRange(50, 60), cwd=str(repo)), repo
        )


@pytest.mark.parametrize(
    "limits",
    [Limits(max_cost_usd=0), Limits(max_time_s=-1), Limits(max_turns=0), Limits(hang_timeout_s=0)],
)
def test_validate_limits_rejects_non_positive(limits: Limits) -> None:
    with pytest.raises(UsageError, match="must be a positive finite number"):
        validate_limits(limits)


def test_validate_limits_accepts_positive_and_unset() -> None:
    validate_limits(Limits())
    validate_limits(Limits(max_cost_usd=0.5, max_time_s=3, max_turns=2, hang_timeout_s=1))

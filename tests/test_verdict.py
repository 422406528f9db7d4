"""A supervisor's verdict read from its reply, as the real agents deliver it."""

from __future__ import annotations

import pytest

from logist_server.domain.roles import parse_verdict

# codex-acp 0.16.0 (recorded through Logist against the tests' model endpoint): its
# warning and the reply's chunks reach the client as one message, with no line break.
GLUED = (
    "Model metadata for `gpt-5` not found. Defaulting to fallback metadata; this can "
    "degrade performance and cause issues.VERDICT: CHANGES\n- add a comma"
)


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("Looks right.\nVERDICT: APPROVE", ("approve", "")),
        ("VERDICT: CHANGES\n- add a comma", ("changes", "add a comma")),
        (GLUED, ("changes", "add a comma")),
        ("**VERDICT: changes** - the name is wrong", ("changes", "** - the name is wrong")),
        ("VERDICT: CHANGES\n- x\nthen after all:\nVERDICT: APPROVE", ("approve", "")),
    ],
)
def test_the_last_verdict_of_the_reply_counts(reply: str, verdict: tuple[str, str]) -> None:
    assert parse_verdict(reply) == verdict


@pytest.mark.parametrize(
    "reply",
    [
        "I will end with a VERDICT: APPROVE line once I have read it.",  # mid-sentence
        "The diff looks fine.",
        "VERDICT: MAYBE",
    ],
)
def test_no_verdict_line_is_no_verdict(reply: str) -> None:
    assert parse_verdict(reply) is None

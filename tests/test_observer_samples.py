"""The observer's table checked against the real CLIs' recorded headless output.

Every sample in tests/fixtures/agent-samples/ (recorded from the real programs: see
the shared README, CLAUDE-RECORDINGS.md and CODEX-GEMINI-RECORDINGS.md) goes through its
agent's own parser and the observer, as `AgentEventRecorder.commit` does, and must land in
its outcome class:

- success (a one-shot edit): no failure, no agent error;
- authentication failure: the `auth` pattern, failed, not retried;
- rate limit: a transient hit (Logist's retry policy applies);
- budget refusal (HTTP 400/402 from the endpoint): an error with its reason and no
  transient hit (retrying cannot help), and the `quota` pattern wherever the agent prints
  the status code;
- permission denial: no failure from the observer (claude's own refusals are an error
  naming the tool; the others leave no structured event or ask a question).

A misclassified sample (gemini's 400/402 `RESOURCE_EXHAUSTED` was read as a rate limit and
retried) fails here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from logist_server.domain.agent_output import screen
from logist_server.domain.events import AgentError, AgentEvent, AgentQuestion
from logist_server.domain.observer import Observer, ObserverHit
from logist_server.engine.agent_events import AgentEventRecorder
from logist_server.engine.facade import default_agents
from logist_server.providers.agents.acp_events import UpdateMapper

SAMPLES = Path(__file__).parent / "fixtures" / "agent-samples"
FILES = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".jsonl", ".txt"))


def agent_of(name: str) -> str:
    stem = (
        name.split(".")[0].removeprefix("budget-refused-400-").removeprefix("budget-refused-402-")
    )
    if stem.startswith("acp-"):
        return "acp"
    first = stem.split("-")[0]
    return "claude-code" if first == "claude" else first


def outcome_class(name: str) -> str:
    stem = name.split(".")[0]
    if stem.startswith("budget-refused-"):
        return "budget"
    if stem.endswith("-401"):
        return "auth"
    if stem.endswith("-429"):
        return "rate_limit"
    if "-deny" in stem or stem in ("codex-ask", "codex-escalate", "acp-codex-escalate"):
        return "permission"
    return "success"


def acp_events(raw: bytes) -> list[AgentEvent]:
    """The events Logist's ACP client makes of a recorded session: every incoming
    `session/update`, through the provider's mapper."""
    mapper = UpdateMapper(lambda path: path.rsplit("/repo/", 1)[-1])
    events: list[AgentEvent] = []
    for line in raw.splitlines():
        msg = json.loads(line).get("msg", {})
        if msg.get("method") == "session/update":
            events += mapper.update(msg["params"]["update"])
    return events + mapper.flush()


def observed(name: str) -> tuple[list[AgentEvent], list[ObserverHit]]:
    """The sample's events (screened) and the observer's hits, as the recorder sees them."""
    raw = (SAMPLES / name).read_bytes()
    agent = agent_of(name)
    if agent == "acp":
        events, plain = screen(acp_events(raw)), b""
    else:
        parser = default_agents().get(agent).new_parser()
        events = screen(parser.feed_lines(raw) + parser.finish(0))
        plain = b"" if parser.only_events else raw
    recorder = AgentEventRecorder(None, Observer.from_config({}))  # type: ignore[arg-type]
    return events, recorder.observe(plain, events)


def failures(hits: list[ObserverHit]) -> list[tuple[str, Any, bool]]:
    return [(h.pattern.name, h.status, h.transient) for h in hits if h.status or h.transient]


def test_every_sample_is_checked_and_every_agent_has_samples() -> None:
    agents = {agent_of(name) for name in FILES}
    assert agents >= {"claude-code", "codex", "gemini", "aider", "cline", "opencode", "acp"}
    classes = {outcome_class(name) for name in FILES}
    assert classes == {"success", "auth", "rate_limit", "budget", "permission"}


@pytest.mark.parametrize("name", FILES)
def test_the_sample_lands_in_its_outcome_class(name: str) -> None:
    events, hits = observed(name)
    errors = [e.message for e in events if type(e) is AgentError]
    found = failures(hits)
    kind = outcome_class(name)
    if kind == "success":
        assert found == [] and errors == [], (found, errors)
    elif kind == "auth":
        assert found == [("auth", "failed", False)], found
    elif kind == "rate_limit":
        assert [f for f in found if f[2]], found  # transient: retried by Logist's policy
        assert not [f for f in found if f[1] == "failed"], found
    elif kind == "budget":
        assert errors, "a budget refusal reaches the job as an error with its reason"
        assert not [f for f in found if f[2]], f"a budget refusal retried as transient: {found}"
        printed = " ".join(errors)
        if any(code in printed for code in ("400", "402")):
            assert ("quota", "failed", False) in found, (found, errors)
    else:  # permission
        assert found == [], found
        if name.startswith("claude-"):
            assert any("refused" in e and "permission" in e for e in errors), errors
        questions = [e for e in events if type(e) is AgentQuestion]
        assert all(q.text for q in questions)


def test_a_real_429_is_still_a_rate_limit_and_a_budget_400_is_not() -> None:
    observer = Observer.from_config({})
    real_429 = '[API Error: {"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}]'
    hit = observer.scan(real_429)
    assert hit is not None and hit.pattern.name == "rate_limit" and hit.transient
    budget = (
        '[API Error: {"error":{"code":400,"message":"over budget","status":"RESOURCE_EXHAUSTED"}}]'
    )
    hit = observer.scan(budget)
    assert hit is not None and hit.pattern.name == "quota" and not hit.transient
    hit = observer.scan("unexpected status 402 Payment Required: credits exhausted")
    assert hit is not None and hit.pattern.name == "quota"

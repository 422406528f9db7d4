"""Within one step a cumulative usage report is a running total: no figure ever goes down.

A hostile or buggy agent must not lower a step's spend under `--max-cost` (an ACP
`usage_update` with `cost.amount` 0 after a real one) nor wipe the tokens counted so far
(a cost-only report). Run through the real mapping of ACP updates (`UpdateMapper`, the
recorded claude-agent-acp sample's shape) and the real `apply_usage`."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_job
from logist_server.domain.events import AgentUsage
from logist_server.domain.model import Usage
from logist_server.domain.pricing import BUILTIN
from logist_server.engine.agent_events import apply_usage
from logist_server.providers.agents.acp_events import UpdateMapper

GPT5 = BUILTIN["gpt-5"]


def usage_update(amount: float) -> dict[str, object]:
    """A `usage_update` as claude-agent-acp sends it (tests/fixtures/agent-samples)."""
    return {"sessionUpdate": "usage_update", "used": 23892, "size": 200000,
            "cost": {"amount": amount, "currency": "USD"}}  # fmt: skip


def test_a_lower_cumulative_report_leaves_the_higher_figures() -> None:
    usage = Usage()
    apply_usage(usage, AgentUsage(input_tokens=900_000, output_tokens=5000, cache_read_tokens=70,
                                  cache_write_tokens=60, reasoning_tokens=50, cost_usd=4.2,
                                  turns=7))  # fmt: skip
    apply_usage(usage, AgentUsage(input_tokens=10, cost_usd=0.0, turns=1, cumulative=True))
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (900_000, 5000, 70)
    assert (usage.cache_write_tokens, usage.reasoning_tokens) == (60, 50)
    assert (usage.cost_usd, usage.cost_source, usage.turns) == (4.2, "reported", 7)


def test_a_lower_computed_total_does_not_undercut_a_higher_priced_one() -> None:
    usage = Usage()
    apply_usage(usage, AgentUsage(input_tokens=100_000, output_tokens=10_000), GPT5)
    high = usage.cost_usd
    apply_usage(usage, AgentUsage(input_tokens=1, output_tokens=1), GPT5)
    assert usage.cost_usd == high and usage.input_tokens == 100_000


def test_a_higher_cumulative_report_still_raises_every_figure() -> None:
    usage = Usage()
    apply_usage(usage, AgentUsage(input_tokens=10, cost_usd=0.01, cumulative=False), GPT5)
    apply_usage(usage, AgentUsage(input_tokens=500, output_tokens=9, cost_usd=0.5, turns=3))
    assert (usage.input_tokens, usage.output_tokens, usage.cost_usd) == (500, 9, 0.5)
    assert (usage.cost_source, usage.turns) == ("reported", 3)


def test_an_acp_cost_reset_to_zero_keeps_the_spend_and_the_tokens() -> None:
    mapper = UpdateMapper(lambda path: path)
    usage = Usage()
    for event in mapper.update(usage_update(0.143847)):
        assert isinstance(event, AgentUsage)
        apply_usage(usage, event)
    # the prompt turn's tokens (the prompt response's `usage`), then a hostile reset
    (turn,) = mapper.usage({"usage": {"inputTokens": 23892, "outputTokens": 400}})
    assert isinstance(turn, AgentUsage)
    apply_usage(usage, turn)
    events = mapper.update(usage_update(0))
    assert events, "an amount of 0 is a valid report (mapped, then held by apply_usage)"
    for event in events:
        assert isinstance(event, AgentUsage)
        apply_usage(usage, event)
    assert usage.cost_usd == pytest.approx(0.143847)
    assert (usage.input_tokens, usage.output_tokens) == (23892, 400)


@pytest.mark.parametrize("amount", [-1, "0.5", None])
def test_an_acp_cost_that_is_not_a_usd_amount_is_not_a_report(amount: object) -> None:
    update = usage_update(0)
    update["cost"] = {"amount": amount, "currency": "USD"}
    assert UpdateMapper(lambda path: path).update(update) == []


def test_max_cost_still_halts_on_climbing_totals(repo: Path) -> None:
    job = run_job(repo, "--agent", "mock", "--agent-opt", "scenario=cost", "--agent-opt",
                  "interval=0.05", "--max-cost", "0.02", "--prompt", "hi",
                  expect=1)  # fmt: skip
    assert job["status"] == "halted" and "cost limit" in job["status_reason"]
    assert job["result"]["usage"]["cost_source"] == "reported"

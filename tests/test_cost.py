"""Cost for every agent: the agent's own figure where it reports one, else computed from
the exact tokens and the price table (domain/pricing.py), `mixed` over both, and no cost
(said in an `observer_warning`) for a model without a price; `--max-cost` holds for all of
them, and halts a job whose cost it cannot know.

The end-to-end cases run the real CLI with the real mock agent, reporting usage as codex
and gemini do (tokens, no USD: `report_cost=false`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import job_events, run_job
from logist_server.domain.events import AgentUsage
from logist_server.domain.model import Step, Usage
from logist_server.domain.pricing import BUILTIN, PRICES_AS_OF, SOURCE, canonical, cost, price_of
from logist_server.engine.agent_events import UNNAMED_MODEL, apply_usage, total_usage


# -- the table -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic/claude-opus-4-5", "claude-opus-4-5"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("claude-opus-5[1m]", "claude-opus-5"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("codex-mini-latest", "codex-mini"),
        ("models/gemini-3-pro-preview", "gemini-3-pro"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("GPT-5", "gpt-5"),
    ],
)
def test_model_names_as_agents_print_them_find_their_price(name: str, key: str) -> None:
    assert canonical(name) == key
    assert price_of(name, {}) == BUILTIN[key]


@pytest.mark.parametrize("name", ["claude-sonnet-9", "gpt-5.9-turbo", "my-local-model", "", None])
def test_an_unknown_model_has_no_price_never_a_familys_guess(name: str | None) -> None:
    assert price_of(name, {}) is None


def test_the_table_covers_the_common_families_and_says_when_and_where_from() -> None:
    for family in ("claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5",
                   "gpt-5-codex", "gpt-4.1", "o3", "o4-mini", "gemini-2.5-pro",
                   "gemini-2.5-flash", "gemini-3-pro", "gemini-3-flash"):  # fmt: skip
        assert family in BUILTIN
    assert (PRICES_AS_OF[:4].isdigit() and "anthropic" in SOURCE) or "claude" in SOURCE
    for price in BUILTIN.values():  # cache reads are never dearer than input, output is
        assert 0 < price.cached_input <= price.input < price.output


def test_cost_bills_reasoning_as_output_and_each_cache_at_its_price() -> None:
    price = BUILTIN["claude-sonnet-4-5"]  # 3 in, 15 out, 0.30 read, 3.75 write
    got = cost(price, input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=2_000_000,
               cache_write_tokens=400_000, reasoning_tokens=100_000)  # fmt: skip
    assert got == pytest.approx(3 + 0.6 + 1.5 + 3.0)


def test_an_override_wins_over_the_table_and_adds_models() -> None:
    overrides = {"gpt-5": {"input": 2.0, "output": 20.0}, "my-local-model": {"input": 0.0,
                 "output": 0.0}}  # fmt: skip
    gpt5 = price_of("gpt-5-2025-08-07", overrides)
    assert gpt5 is not None and (gpt5.input, gpt5.cached_input, gpt5.output) == (2.0, 2.0, 20.0)
    assert price_of("my-local-model", overrides) is not None


# -- apply_usage / total_usage -----------------------------------------------------------------
GPT5 = BUILTIN["gpt-5"]


def test_a_reported_cost_is_taken_as_reported() -> None:
    usage = Usage()
    apply_usage(usage, AgentUsage(input_tokens=10, output_tokens=5, cost_usd=0.5), GPT5)
    assert (usage.cost_usd, usage.cost_source, usage.unpriced) == (0.5, "reported", "")


def test_tokens_without_cost_are_priced_and_deltas_add_up() -> None:
    usage = Usage()
    for _ in range(3):
        apply_usage(usage, AgentUsage(input_tokens=1000, cache_read_tokens=4000,
                                      output_tokens=100, reasoning_tokens=50, cumulative=False),
                    GPT5)  # fmt: skip
    each = (1000 * 1.25 + 4000 * 0.125 + 150 * 10) / 1_000_000
    assert usage.cost_usd == pytest.approx(3 * each)
    assert usage.cost_source == "computed" and usage.turns == 3
    assert (usage.input_tokens, usage.reasoning_tokens) == (3000, 150)


def test_deltas_priced_then_a_cumulative_reported_total_replaces_them() -> None:
    usage = Usage()
    apply_usage(usage, AgentUsage(input_tokens=1000, output_tokens=10, cumulative=False), GPT5)
    apply_usage(usage, AgentUsage(input_tokens=900, output_tokens=8, cumulative=False), GPT5)
    assert usage.cost_source == "computed"
    apply_usage(usage, AgentUsage(input_tokens=1900, output_tokens=18, cost_usd=0.02), GPT5)
    assert (usage.cost_usd, usage.cost_source, usage.input_tokens) == (0.02, "reported", 1900)


def test_reported_and_computed_in_one_step_or_over_steps_is_mixed() -> None:
    usage = Usage()
    apply_usage(usage, AgentUsage(input_tokens=1000, cost_usd=0.01, cumulative=False), GPT5)
    apply_usage(usage, AgentUsage(input_tokens=1000, cumulative=False), GPT5)
    assert usage.cost_source == "mixed"
    reported, computed = (
        Usage(cost_usd=1.0, cost_source="reported"),
        Usage(cost_usd=0.5, cost_source="computed"),
    )
    steps = [Step(number=1, usage=reported), Step(number=2), Step(number=3, usage=computed)]
    total = total_usage(steps)
    assert (total.cost_usd, total.cost_source) == (1.5, "mixed")
    assert total_usage(steps[:2]).cost_source == "reported"


def test_an_unknown_model_counts_tokens_and_no_cost_and_says_which() -> None:
    usage = Usage()
    apply_usage(usage, AgentUsage(input_tokens=1000, output_tokens=10), None, "mystery-1")
    assert (usage.cost_usd, usage.cost_source, usage.unpriced) == (0.0, "", "mystery-1")
    assert usage.input_tokens == 1000
    later = Usage()
    apply_usage(later, AgentUsage(input_tokens=5), None)
    assert later.unpriced == UNNAMED_MODEL
    assert total_usage([Step(number=1, usage=usage)]).unpriced == "mystery-1"


def test_a_usage_without_tokens_or_cost_is_not_unpriced() -> None:
    usage = Usage()
    apply_usage(usage, AgentUsage(turns=3), None, "mystery-1")
    assert usage.unpriced == "" and usage.turns == 3


# -- through the real CLI ----------------------------------------------------------------------
TOKENS_ONLY = ("--agent", "mock", "--agent-opt", "report_cost=false")


def test_a_job_whose_agent_reports_no_cost_gets_the_computed_cost(repo: Path) -> None:
    job = run_job(repo, *TOKENS_ONLY, "--model", "gpt-5", "--prompt", "hi")
    usage = job["result"]["usage"]
    # The mock's edit scenario reports 120 input and 40 output tokens, no USD.
    assert (usage["input_tokens"], usage["output_tokens"]) == (120, 40)
    assert usage["cost_source"] == "computed"
    assert usage["cost_usd"] == pytest.approx((120 * 1.25 + 40 * 10) / 1_000_000)
    assert job["steps"][0]["model"] == "gpt-5"


def test_a_job_whose_agent_reports_its_cost_says_reported(repo: Path) -> None:
    job = run_job(repo, "--agent", "mock", "--model", "gpt-5", "--prompt", "hi")
    usage = job["result"]["usage"]
    assert (usage["cost_usd"], usage["cost_source"]) == (0.0012, "reported")


def test_the_users_pricing_overrides_the_table(repo: Path) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "logist" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("pricing:\n  gpt-5:\n    input: 1000\n    output: 2000\n")
    job = run_job(repo, *TOKENS_ONLY, "--model", "gpt-5", "--prompt", "hi")
    assert job["result"]["usage"]["cost_usd"] == pytest.approx((120 * 1000 + 40 * 2000) / 1e6)
    assert job["pricing"] == {"gpt-5": {"input": 1000.0, "output": 2000.0}}


def test_an_unpriced_model_has_no_cost_and_a_warning_saying_so(repo: Path) -> None:
    job = run_job(repo, *TOKENS_ONLY, "--model", "mystery-1", "--prompt", "hi")
    usage = job["result"]["usage"]
    assert (usage["cost_usd"], usage["cost_source"], usage["unpriced"]) == (0, "", "mystery-1")
    warnings = [e["data"] for e in job_events(repo, job["id"]) if e["kind"] == "observer_warning"]
    assert [w["warning"] for w in warnings] == ["unpriced"]
    assert "mystery-1" in warnings[0]["reason"] and "pricing:" in warnings[0]["reason"]


def test_max_cost_halts_an_agent_that_reports_only_tokens(repo: Path) -> None:
    # 1000 input and 200 output tokens more per turn: $0.00325 a turn for gpt-5, 40 turns.
    job = run_job(repo, *TOKENS_ONLY, "--agent-opt", "scenario=cost", "--agent-opt",
                  "interval=0.05", "--model", "gpt-5", "--max-cost", "0.02",
                  "--prompt", "hi", expect=1)  # fmt: skip
    assert job["status"] == "halted" and "cost limit" in job["status_reason"]
    usage = job["result"]["usage"]
    assert usage["cost_source"] == "computed"
    assert 0.02 < usage["cost_usd"] < 40 * 0.00325  # stopped well before its end


def test_max_cost_halts_a_job_whose_cost_it_cannot_know(repo: Path) -> None:
    job = run_job(repo, *TOKENS_ONLY, "--agent-opt", "scenario=cost", "--agent-opt",
                  "interval=0.05", "--model", "mystery-1", "--max-cost", "5",
                  "--prompt", "hi", expect=1)  # fmt: skip
    assert job["status"] == "halted"
    assert "mystery-1" in job["status_reason"] and "pricing:" in job["status_reason"]


def test_max_turns_holds_for_an_agent_that_counts_no_turns(repo: Path) -> None:
    job = run_job(repo, *TOKENS_ONLY, "--agent-opt", "scenario=cost", "--agent-opt",
                  "interval=0.05", "--model", "gpt-5", "--max-turns", "5",
                  "--prompt", "hi", expect=1)  # fmt: skip
    assert job["status"] == "halted" and "turn limit" in job["status_reason"]

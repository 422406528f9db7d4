"""What a model's tokens cost: the built-in price table and the user's overrides.

Used when an agent reports tokens but no USD (codex, gemini, cline, most ACP agents): the
cost is then computed from the exact tokens and this table, and the job record says so
(`Usage.cost_source = "computed"`). An agent's own figure always wins (`"reported"`).

Prices are USD per million tokens, standard tier (no batch, priority or flex discount), for
prompts within each model's base context tier: the long-context surcharges (Gemini 2.5
Pro and 3 Pro above 200k tokens, Claude Haiku 5.5 above 100k) are not modelled, nor are
1-hour cache writes (billed at the 5-minute rate here). Reasoning tokens are billed as
output. A cache write with no price of its own (OpenAI, Google) costs the input price.

Source: the vendors' published list prices, https://platform.claude.com/docs/en/about-claude/pricing,
https://developers.openai.com/api/docs/pricing and https://ai.google.dev/gemini-api/docs/pricing,
as compiled on PRICES_AS_OF (cross-checked against price lists that cite those pages).
Prices change: `pricing:` in the user's own configuration overrides or adds a model, e.g.

    pricing:
      gpt-5.5: {input: 5, cached_input: 0.5, output: 30}

A repository's `logist.yml` cannot set `pricing` (refused): it could make a job look
cheaper than it is and slip under `--max-cost`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec

PRICES_AS_OF = "2026-11-30"
SOURCE = (
    "https://platform.claude.com/docs/en/about-claude/pricing, "
    "https://developers.openai.com/api/docs/pricing, "
    "https://ai.google.dev/gemini-api/docs/pricing"
)
MILLION = 1_000_000


class Price(msgspec.Struct, frozen=True):
    """USD per million tokens. `cached_input`: a cache read; `cache_write`: a cache write."""

    input: float
    output: float
    cached_input: float
    cache_write: float


def _anthropic(input: float, output: float, cache_read: float) -> Price:
    return Price(input, output, cache_read, input * 1.25)  # 5-minute cache writes


def _openai(input: float, cached: float, output: float) -> Price:
    return Price(input, output, cached, input)  # no separate cache-write charge


_GOOGLE = _openai

#: The built-in table, by canonical model id (see `canonical`).
BUILTIN: dict[str, Price] = {
    # Anthropic
    "claude-fable-5-1": _anthropic(10, 50, 0.25),
    "claude-fable-5": _anthropic(10, 50, 1),
    "claude-opus-5-5": _anthropic(4, 20, 0.20),
    "claude-opus-5": _anthropic(5, 25, 0.50),
    "claude-opus-4-8": _anthropic(5, 25, 0.50),
    "claude-opus-4-7": _anthropic(5, 25, 0.50),
    "claude-opus-4-6": _anthropic(5, 25, 0.50),
    "claude-opus-4-5": _anthropic(5, 25, 0.50),
    "claude-opus-4-1": _anthropic(15, 75, 1.50),
    "claude-opus-4": _anthropic(15, 75, 1.50),
    "claude-sonnet-5-5": _anthropic(2, 10, 0.10),
    "claude-sonnet-5": _anthropic(2, 10, 0.20),
    "claude-sonnet-4-5": _anthropic(3, 15, 0.30),
    "claude-sonnet-4": _anthropic(3, 15, 0.30),
    "claude-3-7-sonnet": _anthropic(3, 15, 0.30),
    "claude-haiku-4-5": _anthropic(1, 5, 0.10),
    "claude-3-5-haiku": _anthropic(0.80, 4, 0.08),
    # OpenAI
    "gpt-5.5": _openai(5, 0.50, 30),
    "gpt-5.4": _openai(2.50, 0.25, 15),
    "gpt-5.4-mini": _openai(0.75, 0.075, 4.50),
    "gpt-5.4-nano": _openai(0.20, 0.02, 1.25),
    "gpt-5.3-codex": _openai(1.75, 0.175, 14),
    "gpt-5.2": _openai(1.75, 0.175, 14),
    "gpt-5.2-codex": _openai(1.75, 0.175, 14),
    "gpt-5.1": _openai(1.25, 0.125, 10),
    "gpt-5.1-codex": _openai(1.25, 0.125, 10),
    "gpt-5.1-codex-max": _openai(1.25, 0.125, 10),
    "gpt-5.1-codex-mini": _openai(0.25, 0.025, 2),
    "gpt-5": _openai(1.25, 0.125, 10),
    "gpt-5-codex": _openai(1.25, 0.125, 10),
    "gpt-5-mini": _openai(0.25, 0.025, 2),
    "gpt-5-nano": _openai(0.05, 0.005, 0.40),
    "codex-mini": _openai(1.50, 0.375, 6),
    "gpt-4.1": _openai(2, 0.50, 8),
    "gpt-4.1-mini": _openai(0.40, 0.10, 1.60),
    "gpt-4.1-nano": _openai(0.10, 0.025, 0.40),
    "gpt-4o": _openai(2.50, 1.25, 10),
    "gpt-4o-mini": _openai(0.15, 0.075, 0.60),
    "o1": _openai(15, 7.50, 60),
    "o3": _openai(2, 0.50, 8),
    "o3-mini": _openai(1.10, 0.55, 4.40),
    "o4-mini": _openai(1.10, 0.275, 4.40),
    # Google
    "gemini-3-pro": _GOOGLE(2, 0.20, 12),
    "gemini-3-flash": _GOOGLE(0.50, 0.05, 3),
    "gemini-2.5-pro": _GOOGLE(1.25, 0.125, 10),
    "gemini-2.5-flash": _GOOGLE(0.30, 0.03, 2.50),
    "gemini-2.5-flash-lite": _GOOGLE(0.10, 0.01, 0.40),
}

# A provider prefix (`anthropic/`, `models/`), a bracketed variant (`[1m]`), a snapshot date
# (`-20250929`, `-2025-04-14`, `@20250929`), `-latest`, `-preview` with its date (`-preview-06-05`).
_PREFIX = re.compile(r"^.*/")
_SUFFIXES = re.compile(
    r"(\[[^\]]*\]|[-@]\d{8}|-\d{4}-\d{2}-\d{2}|-latest|-preview(-\d{2}-\d{2})?|-v\d+(:\d+)?)$"
)


def canonical(model: str) -> str:
    """The table's id of a model name as agents print it: `anthropic/claude-sonnet-4-5-20250929`
    and `claude-sonnet-4-5@20250929` are `claude-sonnet-4-5`; `models/gemini-3-pro-preview`
    is `gemini-3-pro`. Never a guess at a family: an unknown name stays unknown."""
    name = _PREFIX.sub("", model.strip().lower())
    while True:
        shorter = _SUFFIXES.sub("", name)
        if shorter == name:
            return name
        name = shorter


def price_of(model: str | None, overrides: Mapping[str, Mapping[str, float]]) -> Price | None:
    """The price of `model`: the user's override (by its exact name, then canonically),
    else the built-in table; None when it has none."""
    if not model:
        return None
    key = canonical(model)
    for name, entry in overrides.items():
        if name == model or canonical(name) == key:
            return price_from(entry)
    return BUILTIN.get(key)


def price_from(entry: Mapping[str, float]) -> Price:
    """A configured price: `input` and `output` given, the cache prices default to input."""
    return Price(
        input=entry["input"],
        output=entry["output"],
        cached_input=entry.get("cached_input", entry["input"]),
        cache_write=entry.get("cache_write", entry["input"]),
    )


def cost(
    price: Price,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> float:
    """USD for these tokens (`input_tokens` uncached; reasoning billed as output)."""
    return (
        input_tokens * price.input
        + cache_read_tokens * price.cached_input
        + cache_write_tokens * price.cache_write
        + (output_tokens + reasoning_tokens) * price.output
    ) / MILLION

"""Model prices (USD per million tokens) and the cost of one model request.

One table for every place that prices tokens. Source: Anthropic's pricing page as quoted
in shared/CLAUDE_CODE.md. Cache writes come in two lifetimes: 5-minute writes cost 1.25x
input, 1-hour writes 2x input; cache reads 0.1x input.

OpenAI's models (what the Codex CLI runs) name their cached-input price. Sources: OpenAI's
API pricing page (platform.openai.com/docs/pricing, standard tier, as of 2025) for gpt-4o,
gpt-4.1, o3, o4-mini, codex-mini, gpt-5 and gpt-5.1; OpenAI's Codex rate card (Help Center,
checked 2026-05-13, credits per million tokens at 25 credits = $1) for gpt-5.2 to gpt-5.5.
Reasoning tokens are output tokens and priced as output; OpenAI's cached tokens are part
of its input count, which the adapters split off before pricing (ingest/adapters/codex.py).

Google's models (what the Gemini CLI runs): Google's Gemini API pricing page
(https://ai.google.dev/gemini-api/docs/pricing, paid tier, standard — not batch — prices),
where cached input has its own price per model and the Pro models cost more per token for
a request whose prompt is longer than 200k tokens (`long_context`).
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

MILLION = Decimal(1_000_000)


@dataclasses.dataclass(frozen=True)
class Price:
    input: Decimal
    output: Decimal
    # Providers price cached input differently (Anthropic 0.1x input, OpenAI and Google per
    # model); None means Anthropic's rule.
    cached_input: Decimal | None = None
    # The price of a request whose prompt (input, cached and cache-written tokens) is longer
    # than `long_context_from` tokens, for models priced by prompt length (Gemini Pro).
    long_context: Price | None = None
    long_context_from: int = 0

    @property
    def cache_write_5m(self) -> Decimal:
        return self.input * Decimal("1.25")

    @property
    def cache_write_1h(self) -> Decimal:
        return self.input * 2

    @property
    def cache_read(self) -> Decimal:
        if self.cached_input is not None:
            return self.cached_input
        return self.input / 10


def _p(inp: str, out: str, cached: str | None = None) -> Price:
    return Price(Decimal(inp), Decimal(out), None if cached is None else Decimal(cached))


def _tiered(short: Price, long: Price, above: int = 200_000) -> Price:
    return dataclasses.replace(short, long_context=long, long_context_from=above)


# Ordered most specific first: the first pattern that matches the model id wins.
PRICES: list[tuple[re.Pattern[str], Price]] = [
    (re.compile(r"opus-4-(?:[5-9]|\d\d)(?!\d)|opus-[5-9]"), _p("5", "25")),
    (re.compile(r"opus-4(?:-1)?(?:-\d{8})?$|opus-4-1|opus-4-2025|claude-3-opus|opus-3"),
     _p("15", "75")),
    (re.compile(r"sonnet-[5-9]"), _p("2", "10")),
    (re.compile(r"sonnet-4|3-7-sonnet|3-5-sonnet|sonnet-3"), _p("3", "15")),
    (re.compile(r"haiku-4|haiku-[5-9]"), _p("1", "5")),
    (re.compile(r"3-5-haiku|haiku-3-5"), _p("0.80", "4")),
    (re.compile(r"3-haiku|haiku-3"), _p("0.25", "1.25")),
    (re.compile(r"fable|mythos"), _p("10", "50")),
    # Google (the Gemini CLI's models). Output includes thinking tokens. The 3.1 Pro preview
    # is priced as 3 Pro. Models the page does not price yet (the CLI's gemini-3.5-flash and
    # -flash-lite, gemini-3.8-flash) have no price: their requests keep their tokens, cost 0.
    (re.compile(r"gemini-2\.5-pro"), _tiered(_p("1.25", "10", "0.125"), _p("2.50", "15", "0.25"))),
    (re.compile(r"gemini-2\.5-flash-lite"), _p("0.10", "0.40", "0.01")),
    (re.compile(r"gemini-2\.5-flash(?!-image|-lite)"), _p("0.30", "2.50", "0.03")),
    (re.compile(r"gemini-3(?:\.1)?-pro"), _tiered(_p("2", "12", "0.20"), _p("4", "18", "0.40"))),
    (re.compile(r"gemini-3-flash(?!-lite)"), _p("0.50", "3", "0.05")),
    # OpenAI, most specific first ("gpt-5.4-mini" before "gpt-5.4", "-mini" before "gpt-5").
    (re.compile(r"gpt-5\.5"), _p("5", "30", "0.50")),
    (re.compile(r"gpt-5\.4-mini"), _p("0.75", "4.50", "0.075")),
    (re.compile(r"gpt-5\.4"), _p("2.50", "15", "0.25")),
    (re.compile(r"gpt-5\.[23](?!\d)"), _p("1.75", "14", "0.175")),
    (re.compile(r"gpt-5(?:\.1)?-pro"), _p("15", "120", "15")),
    (re.compile(r"gpt-5(?:\.1)?(?:-codex)?-mini"), _p("0.25", "2", "0.025")),
    (re.compile(r"gpt-5(?:\.1)?-nano"), _p("0.05", "0.40", "0.005")),
    (re.compile(r"gpt-5(?:\.1)?(?![.\d])"), _p("1.25", "10", "0.125")),
    (re.compile(r"codex-mini"), _p("1.50", "6", "0.375")),
    (re.compile(r"gpt-4\.1-mini"), _p("0.40", "1.60", "0.10")),
    (re.compile(r"gpt-4\.1-nano"), _p("0.10", "0.40", "0.025")),
    (re.compile(r"gpt-4\.1"), _p("2", "8", "0.50")),
    (re.compile(r"gpt-4o-mini"), _p("0.15", "0.60", "0.075")),
    (re.compile(r"gpt-4o"), _p("2.50", "10", "1.25")),
    (re.compile(r"(?:^|/)o4-mini"), _p("1.10", "4.40", "0.275")),
    (re.compile(r"(?:^|/)o3-mini"), _p("1.10", "4.40", "0.55")),
    (re.compile(r"(?:^|/)o3(?:-20\d\d-\d\d-\d\d)?$"), _p("2", "8", "0.50")),
]


def price_for(model: str) -> Price | None:
    """The price of a model id (`claude-sonnet-4-6`, `claude-opus-4-5-20251101`, ...)."""
    name = (model or "").lower()
    for pattern, price in PRICES:
        if pattern.search(name):
            return price
    return None


def request_cost(
    model: str,
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    cache_write_1h_tokens: int = 0,
) -> Decimal | None:
    """Cost of one request, or None for a model with no known price.

    `cache_write_tokens` is all cache writes; `cache_write_1h_tokens` the part of them that
    were 1-hour writes (the rest are 5-minute writes).
    """
    price = price_for(model)
    if price is None:
        return None
    prompt = max(input_tokens, 0) + max(cache_read_tokens, 0) + max(cache_write_tokens, 0)
    if price.long_context is not None and prompt > price.long_context_from:
        price = price.long_context
    one_hour = min(max(cache_write_1h_tokens, 0), max(cache_write_tokens, 0))
    five_min = max(cache_write_tokens, 0) - one_hour
    total = (
        input_tokens * price.input
        + output_tokens * price.output
        + cache_read_tokens * price.cache_read
        + five_min * price.cache_write_5m
        + one_hour * price.cache_write_1h
    ) / MILLION
    return total.quantize(Decimal("0.000001"))

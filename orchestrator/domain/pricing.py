"""A call's cost: its model's row of the price table, at the tier its prompt falls in."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.domain.catalog import Price, longest_prefix
from orchestrator.domain.models import Tokens

__all__ = ["BATCH_FACTOR", "cost_usd", "longest_prefix", "price_for"]

# A call made through the Message Batches API costs half of every rate (input, output, cache
# reads and writes), at whatever tier its prompt falls in: "All usage is charged at 50% of the
# standard API prices" (https://platform.claude.com/docs/en/build-with-claude/batch-processing,
# whose table halves a long-context tier's rates too).
BATCH_FACTOR = 0.5


def price_for(prices: Mapping[str, Price], model: str) -> Price | None:
    """The model's row (the longest model-id prefix), or None when the table has none."""
    name = longest_prefix(prices, model)
    return None if name is None else prices[name]


def cost_usd(prices: Mapping[str, Price], model: str, tokens: Tokens,
             batch: bool = False) -> float:
    """Price a call from a table of USD per million tokens. A prompt (input, cache reads and
    writes) above the row's long-context threshold prices every token of the call at the long
    tier; a batched call (`batch`) costs BATCH_FACTOR of that, every rate alike. A model the
    table does not name costs nothing here: settings refuse such a model
    before any call is made (`Settings` checks both models)."""
    price = price_for(prices, model)
    if price is None:
        return 0.0
    prompt = tokens.input + tokens.cache_read + tokens.cache_write
    factor = (price.long_factor if price.long_context is not None and prompt > price.long_context
              else 1.0)
    short_write = max(tokens.cache_write - tokens.cache_write_1h, 0)
    usd = (tokens.input * price.input + tokens.output * price.output
           + tokens.cache_read * price.cache_read + short_write * price.cache_write
           + tokens.cache_write_1h * price.cache_write_1h)
    if batch:
        factor *= BATCH_FACTOR
    return usd * factor / 1_000_000

"""Model-id tables and prices: the longest model-id prefix picks a model's row; a call's cost."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.domain.models import Tokens
from orchestrator.domain.settings import Price


def longest_prefix(table: Mapping[str, object], model: str) -> str | None:
    """The key of `table` that is the longest prefix of the model id; None when none is."""
    names = [n for n in table if model.startswith(n)]
    return max(names, key=len) if names else None


def cost_usd(prices: Mapping[str, Price], model: str, tokens: Tokens) -> float:
    """Price a call from a table of USD per million tokens; a model it does not name is free."""
    name = longest_prefix(prices, model)
    if name is None:
        return 0.0
    price = prices[name]
    return (tokens.input * price[0] + tokens.output * price[1] + tokens.cache_read * price[2]
            + tokens.cache_write * price[3]) / 1_000_000

"""The Claude models Agency knows: what each can do, and what it costs.

One row per model-id prefix; the longest prefix of a model id picks its row (so a dated id
such as `claude-haiku-4-5-20251001` reads its alias's row). Figures are the API's documented
ones (docs/claude.md cites them): context window, output cap, how it thinks, the shortest
prompt its cache takes, and whether it counts text with the newer tokenizer (about 30% more
tokens for the same text).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Thinking(StrEnum):
    """How a model thinks."""

    ALWAYS = "always"  # adaptive thinking that cannot be turned off
    ADAPTIVE = "adaptive"  # adaptive thinking with an effort, or off
    EXTENDED = "extended"  # the older manual thinking (budget_tokens); Agency leaves it off
    NONE = "none"


@dataclass(frozen=True)
class ModelSpec:
    context_window: int
    max_output: int
    thinking: Thinking
    cache_minimum: int  # the shortest prompt prefix the cache takes, in tokens
    new_tokenizer: bool  # counts the same text as about 30% more tokens
    legacy: bool = False
    default_effort: str | None = None


K = 1000
M = 1_000_000

MODELS: dict[str, ModelSpec] = {
    # Current (December 2026)
    "claude-fable-5-1": ModelSpec(M, 128 * K, Thinking.ALWAYS, 512, True, default_effort="high"),
    "claude-opus-5-5": ModelSpec(M, 128 * K, Thinking.ALWAYS, 512, True,
                                 default_effort="medium"),
    "claude-sonnet-5-5": ModelSpec(M, 128 * K, Thinking.ALWAYS, 512, True,
                                   default_effort="high"),
    "claude-haiku-5-5": ModelSpec(M, 128 * K, Thinking.ADAPTIVE, 4096, True,
                                  default_effort="medium"),
    # Legacy
    "claude-fable-5": ModelSpec(M, 128 * K, Thinking.ALWAYS, 512, True, True, "high"),
    "claude-opus-5": ModelSpec(M, 128 * K, Thinking.ADAPTIVE, 512, True, True, "high"),
    "claude-sonnet-5": ModelSpec(M, 128 * K, Thinking.ADAPTIVE, 1024, True, True, "high"),
    "claude-opus-4-8": ModelSpec(M, 128 * K, Thinking.ADAPTIVE, 1024, True, True),
    "claude-opus-4-7": ModelSpec(M, 128 * K, Thinking.ALWAYS, 4096, True, True),
    "claude-opus-4-6": ModelSpec(M, 128 * K, Thinking.ADAPTIVE, 4096, False, True),
    "claude-sonnet-4-6": ModelSpec(M, 128 * K, Thinking.ADAPTIVE, 2048, False, True),
    "claude-opus-4-5": ModelSpec(200 * K, 64 * K, Thinking.EXTENDED, 4096, False, True),
    "claude-sonnet-4-5": ModelSpec(200 * K, 64 * K, Thinking.EXTENDED, 1024, False, True),
    "claude-haiku-4-5": ModelSpec(200 * K, 64 * K, Thinking.EXTENDED, 4096, False, True),
    "claude-opus-4-1": ModelSpec(200 * K, 32 * K, Thinking.EXTENDED, 1024, False, True),
    "claude-opus-4": ModelSpec(200 * K, 32 * K, Thinking.EXTENDED, 1024, False, True),
    "claude-sonnet-4": ModelSpec(200 * K, 64 * K, Thinking.EXTENDED, 1024, False, True),
}
# The offline model: no thinking, a window as large as any, its cache as Haiku 4.5's.
OFFLINE = ModelSpec(M, 128 * K, Thinking.NONE, 4096, False)
# A model missing from the table (a priced one, AGENCY_PRICES): assumed to be a 5.x model.
UNKNOWN = ModelSpec(200 * K, 32 * K, Thinking.ADAPTIVE, 4096, True)

# How much more the newer tokenizer counts for the same text.
NEW_TOKENIZER_RATIO = 1.3


class Price(BaseModel):
    """USD per million tokens. Above `long_context` prompt tokens (input, cache reads and
    writes together) every token of the call is priced `long_factor` times."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float = Field(ge=0)
    cache_write: float = Field(ge=0)  # 5-minute life
    cache_write_1h: float = Field(ge=0)
    long_context: int | None = Field(default=None, ge=1)
    long_factor: float = Field(default=1.0, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: object) -> object:
        """AGENCY_PRICES may give a row as [input, output, cache read, cache write] (a 1-hour
        write then costs twice input) or [..., 1-hour write]."""
        if not isinstance(value, list | tuple):
            return value
        if len(value) not in (4, 5):
            raise ValueError("a price is [input, output, cache read, cache write(, 1-hour "
                             "write)] in USD per million tokens, or an object")
        names = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
        row = dict(zip(names, value, strict=False))
        if len(value) == 4 and isinstance(value[0], int | float):
            row["cache_write_1h"] = value[0] * 2
        return row


def _price(input_: float, output: float, read: float, *, long_context: int | None = None,
           long_factor: float = 1.0) -> Price:
    """A row priced as the API prices caches: a 5-minute write 1.25 times input, a 1-hour
    write twice input."""
    return Price(input=input_, output=output, cache_read=read, cache_write=input_ * 1.25,
                 cache_write_1h=input_ * 2, long_context=long_context, long_factor=long_factor)


DEFAULT_PRICES: dict[str, Price] = {
    "claude-fable-5-1": _price(10.0, 50.0, 0.25),
    "claude-opus-5-5": _price(4.0, 20.0, 0.2),
    "claude-sonnet-5-5": _price(2.0, 10.0, 0.1),
    # A prompt over 100K tokens (input, cache reads and writes) pays five times every rate.
    "claude-haiku-5-5": _price(0.1, 0.5, 0.01, long_context=100 * K, long_factor=5.0),
    "claude-fable-5": _price(10.0, 50.0, 1.0),
    "claude-opus-5": _price(5.0, 25.0, 0.5),
    "claude-sonnet-5": _price(2.0, 10.0, 0.2),
    "claude-opus-4-8": _price(5.0, 25.0, 0.5),
    "claude-opus-4-7": _price(5.0, 25.0, 0.5),
    "claude-opus-4-6": _price(5.0, 25.0, 0.5),
    "claude-opus-4-5": _price(5.0, 25.0, 0.5),
    "claude-sonnet-4-6": _price(3.0, 15.0, 0.3),
    "claude-sonnet-4-5": _price(3.0, 15.0, 0.3),
    "claude-haiku-4-5": _price(1.0, 5.0, 0.1),
    "claude-opus-4-1": _price(15.0, 75.0, 1.5),
    "claude-opus-4": _price(15.0, 75.0, 1.5),
    "claude-sonnet-4": _price(3.0, 15.0, 0.3),
    "offline": Price(input=0, output=0, cache_read=0, cache_write=0, cache_write_1h=0),
}


def longest_prefix(table: Mapping[str, object], model: str) -> str | None:
    """The key of `table` that is the longest prefix of the model id; None when none is."""
    names = [n for n in table if model.startswith(n)]
    return max(names, key=len) if names else None


def spec(model: str) -> ModelSpec:
    """What the model can do (the offline model's row for "offline")."""
    if model == "offline":
        return OFFLINE
    name = longest_prefix(MODELS, model)
    return UNKNOWN if name is None else MODELS[name]


def tokens_for(model: str, chars_as_tokens: int) -> int:
    """A count made with the older tokenizer, as the model would count the same text."""
    if spec(model).new_tokenizer:
        return int(chars_as_tokens * NEW_TOKENIZER_RATIO)
    return chars_as_tokens

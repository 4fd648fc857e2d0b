"""The ledger's prices: by tier, by cache life, by the model id's longest prefix; and the
price table a person can change with AGENCY_PRICES."""

from __future__ import annotations

import json

import pytest

from orchestrator.domain.catalog import DEFAULT_PRICES, MODELS, Price
from orchestrator.domain.constants import Role
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.models import Tokens
from orchestrator.domain.pricing import cost_usd, price_for
from orchestrator.domain.settings import DEFAULT_EFFORT, Settings, get_settings

M = 1_000_000
HAIKU = "claude-haiku-5-5"
SONNET = "claude-sonnet-5-5"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AGENCY_PRICES", "AGENCY_EFFORT", "AGENCY_ORCHESTRATOR_MODEL",
                 "AGENCY_AGENT_MODEL"):
        monkeypatch.delenv(name, raising=False)


def _cost(model: str, **tokens: int) -> float:
    return cost_usd(DEFAULT_PRICES, model, Tokens(**tokens))


def test_the_current_models_cost_what_is_published() -> None:
    for model, (input_, output) in {"claude-haiku-5-5": (0.1, 0.5),
                                    "claude-sonnet-5-5": (2.0, 10.0),
                                    "claude-opus-5-5": (4.0, 20.0),
                                    "claude-fable-5-1": (10.0, 50.0)}.items():
        # 100K tokens: within every model's first tier.
        assert _cost(model, input=100_000) == pytest.approx(input_ / 10, rel=1e-12), model
        assert _cost(model, output=100_000) == pytest.approx(output / 10, rel=1e-12), model


def test_every_row_prices_cache_writes_as_the_api_does() -> None:
    for model, price in DEFAULT_PRICES.items():
        assert price.cache_write == pytest.approx(price.input * 1.25), model
        assert price.cache_write_1h == pytest.approx(price.input * 2), model
        assert price.cache_read <= price.input, model


def test_a_haiku_prompt_over_100k_tokens_pays_five_times_every_rate() -> None:
    assert _cost(HAIKU, input=100_000) == pytest.approx(0.01, rel=1e-12)
    assert _cost(HAIKU, input=100_001) == pytest.approx(100_001 * 0.1 * 5 / M, rel=1e-12)
    # The prompt is input, cache reads and cache writes together; output follows its tier.
    short = dict(input=40_000, cache_read=50_000, cache_write=10_000, output=1000)
    assert _cost(HAIKU, **short) == pytest.approx(
        (40_000 * 0.1 + 50_000 * 0.01 + 10_000 * 0.125 + 1000 * 0.5) / M, rel=1e-12)
    long = {**short, "cache_read": 50_001}
    assert _cost(HAIKU, **long) == pytest.approx(
        5 * (40_000 * 0.1 + 50_001 * 0.01 + 10_000 * 0.125 + 1000 * 0.5) / M, rel=1e-12)


def test_a_model_without_a_long_tier_pays_one_rate_at_any_length() -> None:
    assert _cost(SONNET, input=900_000) == pytest.approx(1.8, rel=1e-12)


def test_an_hour_long_cache_write_costs_twice_input_and_a_5_minute_one_1_25() -> None:
    assert _cost(SONNET, cache_write=M) == pytest.approx(2.5, rel=1e-12)
    assert _cost(SONNET, cache_write=M, cache_write_1h=M) == pytest.approx(4.0, rel=1e-12)
    # 600K written, 200K of them for an hour: 400K at 2.50 and 200K at 4.00.
    assert _cost(SONNET, cache_write=600_000, cache_write_1h=200_000) == pytest.approx(
        1.8, rel=1e-12)


def test_thinking_is_output_and_is_not_paid_twice() -> None:
    assert _cost(SONNET, output=M, thinking=600_000) == pytest.approx(10.0, rel=1e-12)


def test_a_dated_model_id_reads_its_alias_row() -> None:
    assert price_for(DEFAULT_PRICES, "claude-haiku-5-5-20261001") is DEFAULT_PRICES[HAIKU]
    # The longest prefix wins: Sonnet 5.5's row, not the legacy Sonnet 5's.
    assert price_for(DEFAULT_PRICES, "claude-sonnet-5-5-20261101") is DEFAULT_PRICES[SONNET]
    assert price_for(DEFAULT_PRICES, "claude-opus-4-1-20250805") is DEFAULT_PRICES[
        "claude-opus-4-1"]
    assert _cost("claude-haiku-5-5-20261001", input=100_001) == _cost(HAIKU, input=100_001)


def test_an_unknown_model_has_no_row() -> None:
    assert price_for(DEFAULT_PRICES, "claude-unknown-9") is None


def test_every_model_of_the_catalog_has_a_price_and_every_price_a_model() -> None:
    assert set(MODELS) == set(DEFAULT_PRICES) - {"offline"}


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        get_settings.cache_clear()


def _refused(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    with pytest.raises(ConfigError) as info:
        _settings(monkeypatch, **env)
    assert "\n" not in info.value.message
    return info.value.message


def test_a_four_number_row_prices_the_hour_long_write_at_twice_input(
        monkeypatch: pytest.MonkeyPatch) -> None:
    prices = _settings(monkeypatch, AGENCY_PRICES=json.dumps({"my-model": [1, 5, 0.1, 1.25]})
                       ).prices
    assert prices["my-model"] == Price(input=1, output=5, cache_read=0.1, cache_write=1.25,
                                       cache_write_1h=2)
    assert prices[HAIKU] == DEFAULT_PRICES[HAIKU]  # the others keep their defaults


def test_a_five_number_row_names_the_hour_long_write(monkeypatch: pytest.MonkeyPatch) -> None:
    prices = _settings(monkeypatch, AGENCY_PRICES=json.dumps({HAIKU: [1, 5, 0.1, 1.25, 3]})
                       ).prices
    assert prices[HAIKU] == Price(input=1, output=5, cache_read=0.1, cache_write=1.25,
                                  cache_write_1h=3)
    assert prices[HAIKU].long_context is None  # a row replaces the default row whole


def test_an_object_row_may_have_a_long_tier(monkeypatch: pytest.MonkeyPatch) -> None:
    row = {"input": 1, "output": 5, "cache_read": 0.1, "cache_write": 1.25,
           "cache_write_1h": 2, "long_context": 1000, "long_factor": 2}
    prices = _settings(monkeypatch, AGENCY_PRICES=json.dumps({"my-model": row})).prices
    assert prices["my-model"] == Price(**row)
    assert cost_usd(prices, "my-model", Tokens(input=1001)) == pytest.approx(
        1001 * 2 / M, rel=1e-12)


@pytest.mark.parametrize(("value", "message"), [
    ("{nope", "AGENCY_PRICES: not valid JSON"),
    ("[1, 2]", "AGENCY_PRICES: Input should be a valid dictionary"),
    ('{"m": [1, 2, 3]}', "AGENCY_PRICES (m): a price is [input, output, cache read, cache "
     "write(, 1-hour write)] in USD per million tokens, or an object"),
    ('{"m": [1, 2, 3, 4, 5, 6]}', "AGENCY_PRICES (m): a price is [input, output,"),
    ('{"m": [-1, 1, 1, 1]}', "AGENCY_PRICES (m.input): Input should be greater than or equal"),
    ('{"m": "cheap"}', "AGENCY_PRICES (m): Input should be a valid dictionary"),
    ('{"m": {"input": 1}}', "AGENCY_PRICES (m.output): Field required"),
    ('{"m": {"input": 1, "output": 1, "cache_read": 1, "cache_write": 1, '
     '"cache_write_1h": 1, "per_call": 1}}', "AGENCY_PRICES (m.per_call): Extra inputs"),
])
def test_a_bad_price_row_is_one_line_naming_agency_prices(
        monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    assert _refused(monkeypatch, AGENCY_PRICES=value).startswith(message)


def test_an_unpriced_model_is_refused_naming_its_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AGENCY_ORCHESTRATOR_MODEL", "AGENCY_AGENT_MODEL"):
        with monkeypatch.context() as env:
            assert _refused(env, **{variable: "claude-unknown-9"}) == (
                f"{variable}: model 'claude-unknown-9' has no price; use a model the price "
                "table knows (docs/claude.md) or give its price in AGENCY_PRICES")
    priced = json.dumps({"claude-unknown-9": [1, 5, 0.1, 1.25]})
    assert _settings(monkeypatch, AGENCY_AGENT_MODEL="claude-unknown-9",
                     AGENCY_PRICES=priced).agent_model == "claude-unknown-9"


def test_the_default_models_are_the_current_ones() -> None:
    s = Settings(_env_file=None)
    assert (s.orchestrator_model, s.agent_model) == (SONNET, HAIKU)
    assert not any(MODELS[m].legacy for m in (s.orchestrator_model, s.agent_model))


def test_agency_effort_overrides_the_roles_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    effort = _settings(monkeypatch, AGENCY_EFFORT='{"agent": "high", "review": "off"}').effort
    assert effort == {**DEFAULT_EFFORT, Role.AGENT: "high", Role.REVIEW: "off"}


@pytest.mark.parametrize(("value", "message"), [
    ("high", "AGENCY_EFFORT: not valid JSON"),
    ('["high"]', "AGENCY_EFFORT: Input should be a valid dictionary"),
    ('{"agent": "huge"}', "AGENCY_EFFORT (agent): Input should be 'off', 'low', 'medium', "
     "'high', 'xhigh' or 'max'"),
    ('{"agent": 3}', "AGENCY_EFFORT (agent): Input should be 'off', 'low',"),
    ('{"nobody": "low"}', "AGENCY_EFFORT (nobody): Input should be 'analyze', 'decompose',"),
])
def test_a_bad_effort_is_one_line_naming_agency_effort(
        monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    assert _refused(monkeypatch, AGENCY_EFFORT=value).startswith(message)


def _batch(model: str, **tokens: int) -> float:
    return cost_usd(DEFAULT_PRICES, model, Tokens(**tokens), batch=True)


def test_a_batched_call_costs_half_of_every_rate() -> None:
    # Sonnet 5.5 at 2 / 10 per million; cache reads 0.1, writes 2.5 (5m) and 4 (1h).
    tokens = dict(input=10_000, output=2000, cache_read=30_000, cache_write=8000,
                  cache_write_1h=3000)
    live = (10_000 * 2.0 + 2000 * 10.0 + 30_000 * 0.1 + 5000 * 2.5 + 3000 * 4.0) / M
    assert _cost(SONNET, **tokens) == pytest.approx(live, rel=1e-12)
    assert _batch(SONNET, **tokens) == pytest.approx(live / 2, rel=1e-12)
    assert _batch(SONNET, output=1_000_000) == pytest.approx(5.0, rel=1e-12)
    assert _batch(SONNET, cache_read=1_000_000) == pytest.approx(0.05, rel=1e-12)


def test_a_batched_long_prompt_keeps_its_long_tier_at_half() -> None:
    # Haiku 5.5 over 100K prompt tokens: 0.50 / 2.50 live, 0.25 / 1.25 batched (the docs).
    assert _batch(HAIKU, input=200_000, output=10_000) == pytest.approx(
        (200_000 * 0.25 + 10_000 * 1.25) / M, rel=1e-12)
    assert _batch(HAIKU, input=100_000) == pytest.approx(100_000 * 0.05 / M, rel=1e-12)


def test_a_batched_call_of_an_unpriced_model_costs_nothing() -> None:
    assert cost_usd({}, SONNET, Tokens(input=1000), batch=True) == 0.0

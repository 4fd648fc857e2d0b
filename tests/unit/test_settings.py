"""One settings object reads the environment, with sane defaults."""

from __future__ import annotations

import pytest

from orchestrator.domain.constants import LLMKind
from orchestrator.domain.errors import ConfigError
from orchestrator.domain.models import Tokens
from orchestrator.domain.pricing import cost_usd, longest_prefix
from orchestrator.domain.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AGENCY_BROKER_URL",
                 "AGENCY_RESULT_BACKEND", "AGENCY_DATABASE_URL", "AGENCY_LLM",
                 "AGENCY_CONCURRENCY", "AGENCY_PRICES"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_embedded_and_offline() -> None:
    s = Settings()
    assert s.embedded and s.effective_broker_url == "memory://"
    assert s.effective_result_backend == "cache+memory://"
    assert s.effective_database_url == "sqlite:///.agency/agency.db"
    assert s.llm_kind is LLMKind.OFFLINE


def test_a_key_selects_anthropic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-x")
    assert Settings().llm_kind is LLMKind.ANTHROPIC
    monkeypatch.setenv("AGENCY_LLM", "offline")
    assert Settings().llm_kind is LLMKind.OFFLINE


def test_redis_broker_is_also_the_result_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENCY_BROKER_URL", "redis://broker.example:6379/3")
    s = Settings()
    assert not s.embedded and s.effective_result_backend == "redis://broker.example:6379/3"


def test_the_key_never_shows_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-very-secret")
    assert "sk-very-secret" not in repr(Settings())


def test_cost_uses_the_longest_matching_price() -> None:
    tokens = Tokens(input=1_000_000, output=1_000_000, cache_read=1_000_000,
                    cache_write=1_000_000)
    prices = Settings().prices
    assert cost_usd(prices, "claude-haiku-4-5-20251001", tokens) == pytest.approx(
        1.0 + 5.0 + 0.1 + 1.25)
    assert cost_usd(prices, "somebody-else", tokens) == 0.0


def test_the_longest_model_id_prefix_names_the_row() -> None:
    table = {"claude": 1, "claude-haiku": 2, "claude-haiku-4-5": 3}
    assert longest_prefix(table, "claude-haiku-4-5-20251001") == "claude-haiku-4-5"
    assert longest_prefix(table, "claude-haiku-3") == "claude-haiku"
    assert longest_prefix(table, "gpt") is None


@pytest.mark.parametrize(("name", "value", "message"), [
    ("AGENCY_LLM", "gpt", "AGENCY_LLM: Input should be 'anthropic', 'offline' or 'auto'"),
    ("AGENCY_CONCURRENCY", "{bad", "AGENCY_CONCURRENCY: not valid JSON"),
    ("AGENCY_CONCURRENCY", '{"nosuchqueue": 2}',
     "AGENCY_CONCURRENCY: unknown queue 'nosuchqueue'; the queues are orchestrator, marketing,"),
    ("AGENCY_CONCURRENCY", '{"marketing": 0}',
     "AGENCY_CONCURRENCY (marketing): Input should be greater than or equal to 1"),
    ("AGENCY_CONCURRENCY", "[4]", "AGENCY_CONCURRENCY: Input should be a valid dictionary"),
    ("AGENCY_PRICES", "{nope", "AGENCY_PRICES: not valid JSON"),
    ("FLOWER_PORT", "http", "FLOWER_PORT: Input should be a valid integer"),
    ("AGENCY_OFFLINE_LATENCY", "-1", "AGENCY_OFFLINE_LATENCY: Input should be greater than"),
])
def test_a_bad_variable_is_a_config_error_naming_it(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    error = _config_error(monkeypatch, name, value)
    assert error.message.startswith(message)
    assert "\n" not in error.message


def _config_error(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> ConfigError:
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError) as info:
            get_settings()
    finally:
        get_settings.cache_clear()
    return info.value


def test_a_secret_is_never_echoed_in_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    error = _config_error(monkeypatch, "AGENCY_LLM", "sk-very-secret")
    assert "sk-very-secret" not in error.message


def test_a_partial_concurrency_table_keeps_the_other_defaults(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENCY_CONCURRENCY", '{"frontend_developer": 8}')
    table = Settings().concurrency
    assert table["frontend_developer"] == 8 and table["orchestrator"] == 4
    assert table["marketing"] == 16

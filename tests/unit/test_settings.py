"""One settings object reads the environment, with sane defaults."""

from __future__ import annotations

import pytest

from orchestrator.constants import LLMKind
from orchestrator.llm.base import CompletionResponse
from orchestrator.models import Tokens
from orchestrator.runtime import cost_usd
from orchestrator.settings import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "AGENCY_BROKER_URL",
                 "AGENCY_RESULT_BACKEND", "AGENCY_DATABASE_URL", "AGENCY_LLM"):
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
    monkeypatch.setenv("AGENCY_BROKER_URL", "redis://127.0.0.1:6379/3")
    s = Settings()
    assert not s.embedded and s.effective_result_backend == "redis://127.0.0.1:6379/3"


def test_the_key_never_shows_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-very-secret")
    assert "sk-very-secret" not in repr(Settings())


def test_cost_uses_the_longest_matching_price() -> None:
    response = CompletionResponse(text="", model="claude-haiku-4-5-20251001", latency_ms=1,
                                  tokens=Tokens(input=1_000_000, output=1_000_000,
                                                cache_read=1_000_000, cache_write=1_000_000))
    assert cost_usd(Settings(), response) == pytest.approx(1.0 + 5.0 + 0.1 + 1.25)
    unknown = response.model_copy(update={"model": "somebody-else"})
    assert cost_usd(Settings(), unknown) == 0.0

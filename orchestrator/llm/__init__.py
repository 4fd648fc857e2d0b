"""Model providers behind one seam."""

from __future__ import annotations

from orchestrator.constants import LLMKind
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Provider
from orchestrator.settings import Settings

__all__ = ["CompletionRequest", "CompletionResponse", "Provider", "make_provider"]


def make_provider(settings: Settings) -> Provider:
    """The provider the settings select (`auto`: Anthropic when an API key is set)."""
    kind = settings.llm_kind
    if kind is LLMKind.OFFLINE:
        from orchestrator.llm.offline_model import OfflineProvider

        return OfflineProvider(latency=settings.offline_latency,
                               spread=settings.offline_latency_spread)
    from orchestrator.llm.anthropic import AnthropicProvider

    return AnthropicProvider(settings)

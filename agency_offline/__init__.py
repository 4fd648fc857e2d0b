"""The offline model: a deterministic stand-in for Claude, as a provider plugin.

It imports only the model seam (`orchestrator.llm.base`, and the seam's cache accounting and
wire form) and the domain, and is loaded by name (`AGENCY_LLM=offline`, entry point
`agency.providers`) only where it is the configured provider: loading the entry point loads
the model, so a worker fleet that preloads its provider before forking shares it.
"""

from __future__ import annotations

from agency_offline.model import OfflineProvider
from orchestrator.domain.settings import Settings
from orchestrator.llm.base import Provider

__all__ = ["OfflineProvider", "make_provider"]


def make_provider(settings: Settings) -> Provider:
    """The offline provider, with the settings' simulated latency (agency_offline/latency.py)."""
    return OfflineProvider(latency=settings.offline_latency,
                           spread=settings.offline_latency_spread)

"""Model providers behind one seam, found as plugins.

A provider is a factory `(Settings) -> Provider` registered under the entry-point group
`agency.providers` with its `AGENCY_LLM` name (pyproject.toml): `anthropic` here, `offline` in
the `agency_offline` package. Only the configured one is imported, so a worker that talks to
Claude never loads the offline model.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.settings import Settings
from orchestrator.llm.base import (
    BatchItem,
    BatchProvider,
    BatchResult,
    CompletionRequest,
    CompletionResponse,
    Provider,
    batches,
)

__all__ = ["PROVIDER_GROUP", "BatchItem", "BatchProvider", "BatchResult", "CompletionRequest",
           "CompletionResponse", "Provider", "batches", "make_provider"]

PROVIDER_GROUP = "agency.providers"


def provider_factory(name: str) -> Callable[[Settings], Provider]:
    """The factory registered as `name`; ConfigError when no installed package offers it."""
    found = entry_points(group=PROVIDER_GROUP, name=name)
    if not found:
        raise ConfigError(f"no model provider named {name!r} is installed (entry points "
                          f"{PROVIDER_GROUP}); reinstall with pip install -e .")
    factory: Callable[[Settings], Provider] = next(iter(found)).load()
    return factory


def make_provider(settings: Settings) -> Provider:
    """The provider the settings select (`auto`: Anthropic when an API key is set)."""
    return provider_factory(settings.llm_kind.value)(settings)

"""The one seam between Agency and a model: `complete(request) -> response`."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.constants import Role
from orchestrator.models import Tokens


class CompletionRequest(BaseModel):
    """One model call. `hints` is structured context for the offline model; never sent to an API."""

    model_config = ConfigDict(frozen=True)

    role: Role
    model: str
    system: str
    messages: list[dict[str, str]]
    schema_name: str | None = None
    json_schema: dict[str, Any] | None = None
    max_tokens: int = 8000
    hints: dict[str, Any] = Field(default_factory=dict)


class CompletionResponse(BaseModel):
    """What the model said, and what it cost."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    tokens: Tokens
    latency_ms: int
    stop_reason: str | None = None


class Provider(Protocol):
    """A model backend: the Anthropic API or the offline stand-in."""

    name: str

    def complete(self, request: CompletionRequest) -> CompletionResponse: ...

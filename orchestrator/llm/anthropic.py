"""Claude through the official `anthropic` SDK: structured outputs, tools, prompt caching."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anthropic

from orchestrator.domain.constants import Dimension
from orchestrator.domain.errors import ModelRefused, TransientModelError
from orchestrator.domain.models import Tokens
from orchestrator.domain.settings import Settings
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Progress,
    ServerLimits,
    Window,
)
from orchestrator.llm.wire import content_from_json, request_json


def retry_after(exc: anthropic.APIStatusError) -> float | None:
    """The server's `retry-after` (seconds), when it sent one."""
    value = exc.response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def server_limits(headers: Mapping[str, str]) -> ServerLimits | None:
    """The `anthropic-ratelimit-<dimension>-limit/-remaining/-reset` headers, when sent
    (reset: an RFC 3339 time). The combined `-tokens-` family is left out: it repeats the
    most restrictive of the two token limits."""
    windows: dict[Dimension, Window] = {}
    for dimension in Dimension:
        name = f"anthropic-ratelimit-{dimension.value}"
        try:
            limit, remaining = int(headers[f"{name}-limit"]), int(headers[f"{name}-remaining"])
        except (KeyError, ValueError):
            continue
        windows[dimension] = Window(limit=limit, remaining=remaining,
                                    reset=_timestamp(headers.get(f"{name}-reset")))
    return ServerLimits(windows=windows) if windows else None


def _timestamp(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def classify(exc: Exception) -> tuple[bool, str, float | None]:
    """(retryable, reason, server-requested delay) for an SDK error."""
    if isinstance(exc, anthropic.APITimeoutError):
        return True, "timeout", None
    if isinstance(exc, anthropic.APIConnectionError):
        return True, "connection error", None
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        reason = f"HTTP {status}: {_api_message(exc)}"
        if status in (408, 409, 429) or status >= 500:
            return True, reason, retry_after(exc)
        return False, reason, None
    return False, f"{type(exc).__name__}: {exc}", None


def _transient(exc: Exception, reason: str, requested: float | None) -> TransientModelError:
    """A retryable failure, with what a status response said of the rate limits."""
    if not isinstance(exc, anthropic.APIStatusError):
        return TransientModelError(reason, requested)
    return TransientModelError(reason, requested, rate_limited=exc.status_code == 429,
                               limits=server_limits(exc.response.headers))


def _api_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return exc.message


class AnthropicProvider:
    """One sync client per process, made on first use (after any fork)."""

    name = "anthropic"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: anthropic.Anthropic | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> anthropic.Anthropic:
        with self._lock:
            if self._client is None:
                key = self.settings.anthropic_api_key
                self._client = anthropic.Anthropic(
                    api_key=key.get_secret_value() if key else None,
                    base_url=self.settings.anthropic_base_url,
                    timeout=self.settings.anthropic_timeout,
                    max_retries=0,  # retries are ours: bounded, recorded, honour retry-after
                )
            return self._client

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        schema = (anthropic.transform_schema(request.json_schema)
                  if request.json_schema is not None else None)
        return request_json(request, schema)

    def count_tokens(self, request: CompletionRequest) -> int:
        """`POST /v1/messages/count_tokens`: the prompt's input tokens (free, not cached)."""
        params = self._params(request)
        params.pop("max_tokens", None)
        try:
            counted = self.client.messages.count_tokens(**params)
        except anthropic.AnthropicError as exc:
            retryable, reason, requested = classify(exc)
            if retryable:
                raise _transient(exc, reason, requested) from exc
            raise ModelRefused(f"Anthropic API refused the request: {reason}") from exc
        return int(counted.input_tokens)

    def complete(self, request: CompletionRequest,
                 progress: Progress | None = None) -> CompletionResponse:
        """One attempt; retries are the caller's policy (`orchestrator.llm.structured.call`)."""
        started = time.monotonic()
        try:
            raw = self.client.messages.with_raw_response.create(**self._params(request))
            message = raw.parse()
        except anthropic.AnthropicError as exc:
            retryable, reason, requested = classify(exc)
            if retryable:
                raise _transient(exc, reason, requested) from exc
            raise ModelRefused(f"Anthropic API refused the request: {reason}") from exc
        return self._response(message, started, server_limits(raw.headers))

    def _response(self, message: Any, started: float,
                  limits: ServerLimits | None) -> CompletionResponse:
        if message.stop_reason == "refusal":
            raise ModelRefused("the model refused to answer")
        content = content_from_json([b.model_dump() for b in message.content])
        usage = message.usage
        tokens = Tokens(input=usage.input_tokens, output=usage.output_tokens,
                        cache_read=usage.cache_read_input_tokens or 0,
                        cache_write=usage.cache_creation_input_tokens or 0)
        return CompletionResponse(content=content, model=message.model, tokens=tokens,
                                  latency_ms=int((time.monotonic() - started) * 1000),
                                  stop_reason=message.stop_reason, limits=limits)


def make_provider(settings: Settings) -> AnthropicProvider:
    """The Anthropic provider (entry point `agency.providers`: `anthropic`)."""
    return AnthropicProvider(settings)

"""Claude through the official `anthropic` SDK: structured outputs, tools, thinking, prompt
caching, streaming.

Requests with slack may instead go as one Message Batch (half price): `submit_batch` sends
each request's params exactly as a live call sends them, `collect_batch` reads the results
once the batch ended, each as the live call's answer (`batch=True`) or its error.

A long call (`request.stream`) is streamed and the SDK assembles the final message from the
events; the output so far feeds the caller's progress. Every answer keeps its `request-id`
and message id, and every error a person sees names the request id. A call that timed out or
lost its connection after it was sent may have been billed: its error says so
(`TransientModelError.lost`), and the caller records it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import anthropic
import httpx2

from orchestrator.domain.constants import Dimension
from orchestrator.domain.errors import ContextOverflow, ModelRefused, TransientModelError
from orchestrator.domain.models import Tokens
from orchestrator.domain.settings import Settings
from orchestrator.llm.base import (
    CUSTOM_ID,
    BatchItem,
    BatchResult,
    CompletionRequest,
    CompletionResponse,
    Progress,
    ServerLimits,
    Window,
)
from orchestrator.llm.wire import content_from_json, request_json

# The most requests one Message Batch takes (the API's limit).
BATCH_LIMIT = 100_000

# How often a streamed call reports its output so far, in seconds.
PROGRESS_EVERY = 1.0


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The server's `retry-after-ms` or `retry-after` (seconds), when it sent one."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        try:
            if value is not None and float(value) >= 0:
                return float(value) / scale
        except ValueError:
            continue
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


def _request_id(exc: Exception) -> str | None:
    if isinstance(exc, anthropic.APIStatusError):
        return exc.request_id or exc.response.headers.get("request-id")
    return None


def _named(reason: str, request_id: str | None) -> str:
    return f"{reason} (request {request_id})" if request_id else reason


def _sent(exc: BaseException) -> bool:
    """Whether a failed call reached the API (so the model may have generated, and billed):
    everything but a failure to connect."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, httpx2.ConnectError | httpx2.ConnectTimeout):
            return False
        cause = cause.__cause__
    return True


def classify(exc: Exception) -> tuple[bool, str, float | None]:
    """(retryable, reason, server-requested delay) for an SDK error. `x-should-retry` from the
    server wins over the status code, as the SDK's own retries read it."""
    if isinstance(exc, anthropic.APITimeoutError):
        return True, "timeout", None
    if isinstance(exc, anthropic.APIConnectionError):
        return True, "connection error", None
    if isinstance(exc, anthropic.APIStatusError):
        status, headers = exc.status_code, exc.response.headers
        reason = _named(f"HTTP {status}: {_api_message(exc)}", _request_id(exc))
        should = headers.get("x-should-retry")
        retryable = (should == "true" if should in ("true", "false")
                     else status in (408, 409, 429) or status >= 500)
        return retryable, reason, retry_after(headers) if retryable else None
    return False, f"{type(exc).__name__}: {exc}", None


def _api_message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return exc.message


def _too_long(exc: Exception) -> bool:
    """The API's 400 for a prompt over the model's context window."""
    return (isinstance(exc, anthropic.BadRequestError)
            and "prompt is too long" in _api_message(exc).lower())


def failure(exc: Exception) -> Exception:
    """What the rest of Agency sees of an SDK error."""
    retryable, reason, requested = classify(exc)
    request_id = _request_id(exc)
    if _too_long(exc):
        return ContextOverflow(reason, request_id=request_id)
    if not retryable:
        return ModelRefused(f"Anthropic API refused the request: {reason}",
                            request_id=request_id)
    if not isinstance(exc, anthropic.APIStatusError):
        return TransientModelError(reason, requested, lost=_sent(exc))
    return TransientModelError(reason, requested, rate_limited=exc.status_code == 429,
                               limits=server_limits(exc.response.headers),
                               request_id=request_id)


def batch_failure(kind: str, message: str, request_id: str | None) -> Exception:
    """What a live call would have raised for an errored batch result of this error type: a
    prompt over the window is ContextOverflow, a request the API would refuse ModelRefused,
    anything else (an `api_error`, `overloaded_error`...) is transient: send it again."""
    reason = _named(f"{kind}: {message}", request_id)
    if kind == "invalid_request_error" and "prompt is too long" in message.lower():
        return ContextOverflow(reason, request_id=request_id)
    if kind in ("invalid_request_error", "authentication_error", "permission_error",
                "not_found_error", "billing_error"):
        return ModelRefused(f"Anthropic API refused the request: {reason}",
                            request_id=request_id)
    return TransientModelError(reason, request_id=request_id)


class AnthropicProvider:
    """One sync client per process, made on first use (after any fork)."""

    name = "anthropic"
    supports_batches = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: anthropic.Anthropic | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> anthropic.Anthropic:
        with self._lock:
            if self._client is None:
                key = self.settings.anthropic_api_key
                s = self.settings
                self._client = anthropic.Anthropic(
                    api_key=key.get_secret_value() if key else None,
                    base_url=s.anthropic_base_url,
                    # read: a non-streamed answer's wait, or the gap between two events
                    timeout=anthropic.Timeout(s.anthropic_timeout,
                                              connect=s.anthropic_connect_timeout),
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
            raise failure(exc) from exc
        return int(counted.input_tokens)

    def complete(self, request: CompletionRequest,
                 progress: Progress | None = None) -> CompletionResponse:
        """One attempt; retries are the caller's policy (`orchestrator.llm.structured.call`)."""
        started = time.monotonic()
        params = self._params(request)
        try:
            if request.stream:
                message, headers = self._stream(params, progress)
            else:
                raw = self.client.messages.with_raw_response.create(**params)
                message, headers = raw.parse(), raw.headers
        except anthropic.AnthropicError as exc:
            raise failure(exc) from exc
        except httpx2.TransportError as exc:  # a stream broken mid-answer
            raise TransientModelError(f"the stream broke: {type(exc).__name__}",
                                      lost=True) from exc
        return self._response(message, started, headers)

    def submit_batch(self, items: list[BatchItem]) -> str:
        """`POST /v1/messages/batches`: every request with the params a live call sends (a
        batched request is never streamed). The batch's id."""
        ids = [custom_id for custom_id, _ in items]
        if not 1 <= len(ids) <= BATCH_LIMIT or len(set(ids)) != len(ids) \
                or not all(CUSTOM_ID.match(i) for i in ids):
            raise ValueError(f"a batch takes 1 to {BATCH_LIMIT:,} requests with unique custom "
                             f"ids matching {CUSTOM_ID.pattern}")
        requests: list[Any] = [{"custom_id": custom_id, "params": self._params(request)}
                               for custom_id, request in items]
        try:
            batch = self.client.messages.batches.create(requests=requests)
        except anthropic.AnthropicError as exc:
            raise failure(exc) from exc
        return batch.id

    def collect_batch(self, batch_id: str) -> dict[str, BatchResult] | None:
        """`GET /v1/messages/batches/{id}`, and once it ended its results: each custom id's
        answer (as a live call's, `batch=True`, request id "<batch id>/<custom id>") or the
        error a live call would have raised (expired and canceled requests: transient)."""
        try:
            batch = self.client.messages.batches.retrieve(batch_id)
            if batch.processing_status != "ended":
                return None
            results = list(self.client.messages.batches.results(batch_id))
        except anthropic.AnthropicError as exc:
            raise failure(exc) from exc
        took = (int((batch.ended_at - batch.created_at).total_seconds() * 1000)
                if batch.ended_at else 0)
        out: dict[str, BatchResult] = {}
        for item in results:
            request_id = f"{batch_id}/{item.custom_id}"
            result = item.result
            if result.type == "succeeded":
                try:
                    out[item.custom_id] = self._response(
                        result.message, time.monotonic(), {}, request_id=request_id,
                        batch=True, latency_ms=max(took, 0))
                except ModelRefused as exc:  # the model refused to answer
                    out[item.custom_id] = exc
            elif result.type == "errored":
                error = result.error.error
                out[item.custom_id] = batch_failure(error.type, error.message, request_id)
            else:  # expired (24 hours passed) or canceled: it never ran
                out[item.custom_id] = TransientModelError(
                    _named(f"the batched request was {result.type}", request_id),
                    request_id=request_id)
        return out

    def cancel_batch(self, batch_id: str) -> None:
        """`POST /v1/messages/batches/{id}/cancel`: the requests not yet processed end
        canceled (collected as TransientModelError, to send live)."""
        try:
            self.client.messages.batches.cancel(batch_id)
        except anthropic.AnthropicError as exc:
            raise failure(exc) from exc

    def _stream(self, params: dict[str, Any], progress: Progress | None
                ) -> tuple[Any, Mapping[str, str]]:
        """The answer streamed; the SDK assembles the message. `progress` hears the output
        tokens so far (about four characters a token) at most every PROGRESS_EVERY s."""
        with self.client.messages.stream(**params) as stream:
            headers = stream.response.headers
            chars, reported = 0, time.monotonic()
            for event in stream:
                if event.type == "content_block_delta":
                    delta = event.delta
                    chars += len(getattr(delta, "text", "") or getattr(delta, "thinking", "")
                                 or getattr(delta, "partial_json", "") or "")
                    if progress is not None and time.monotonic() - reported >= PROGRESS_EVERY:
                        reported = time.monotonic()
                        progress(chars // 4)
            return stream.get_final_message(), headers

    def _response(self, message: Any, started: float, headers: Mapping[str, str], *,
                  request_id: str | None = None, batch: bool = False,
                  latency_ms: int | None = None) -> CompletionResponse:
        request_id = (request_id or headers.get("request-id")
                      or getattr(message, "_request_id", None))
        if message.stop_reason == "refusal":
            details = message.stop_details
            why = ""
            if details is not None:
                why = ": " + ", ".join(str(v) for v in (details.category, details.explanation)
                                       if v)
            raise ModelRefused(_named(f"the model refused to answer{why}", request_id),
                               request_id=request_id)
        content = content_from_json([b.model_dump() for b in message.content])
        usage = message.usage
        creation = getattr(usage, "cache_creation", None)
        details_out = getattr(usage, "output_tokens_details", None)
        tokens = Tokens(input=usage.input_tokens, output=usage.output_tokens,
                        cache_read=usage.cache_read_input_tokens or 0,
                        cache_write=usage.cache_creation_input_tokens or 0,
                        cache_write_1h=creation.ephemeral_1h_input_tokens if creation else 0,
                        thinking=details_out.thinking_tokens if details_out else 0)
        if latency_ms is None:
            latency_ms = int((time.monotonic() - started) * 1000)
        return CompletionResponse(content=content, model=message.model, tokens=tokens,
                                  latency_ms=latency_ms, stop_reason=message.stop_reason,
                                  limits=server_limits(headers), request_id=request_id,
                                  message_id=message.id, batch=batch)


def make_provider(settings: Settings) -> AnthropicProvider:
    """The Anthropic provider (entry point `agency.providers`: `anthropic`)."""
    return AnthropicProvider(settings)

"""Model calls with policy: budget admission, bounded retries, the ledger, and structured answers.

A structured answer is validated against a schema (and an optional check); a bad one gets
`REPAIR_ROUNDS` rounds that show the model its error, then `InvalidAnswer`. Transient API
errors are retried here, for every provider, with backoff that honours `retry-after`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.constants import Role
from orchestrator.errors import InvalidAnswer, PlanError, TransientModelError
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Provider

T = TypeVar("T", bound=BaseModel)
Check = Callable[[Any], object]  # raises when the value breaks a rule

# An invalid answer is shown its error this many times; then it fails for good (InvalidAnswer).
REPAIR_ROUNDS = 2


class Meter(Protocol):
    """What a model call reports to, and asks permission of."""

    def admit(self) -> None:
        """Raise BudgetExhausted when the project may make no more calls."""

    def record(self, request: CompletionRequest, response: CompletionResponse,
               attempt: int) -> None:
        """One ledger row per answered call."""

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        """A call failed transiently and will be retried after `delay` seconds."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0

    def delay(self, attempt: int, requested: float | None) -> float:
        """The server's `retry-after` when given, else jittered exponential backoff."""
        if requested is not None:
            return float(min(requested, self.max_backoff))
        base = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        return base * (0.5 + random.random() / 2)


def call(provider: Provider, request: CompletionRequest, policy: RetryPolicy,
         meter: Meter | None) -> CompletionResponse:
    """One answered call: admitted by the budget, transient failures retried with backoff."""
    for attempt in range(1, policy.attempts + 1):
        if meter is not None:
            meter.admit()
        try:
            return provider.complete(request)
        except TransientModelError as exc:
            if attempt == policy.attempts:
                raise TransientModelError(
                    f"model API unavailable after {attempt} attempts: {exc.message}",
                    exc.retry_after) from exc
            delay = policy.delay(attempt, exc.retry_after)
            if meter is not None:
                meter.retrying(attempt, exc.message, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _strip_fence(text: str) -> str:
    """Models sometimes wrap JSON in a Markdown fence despite being asked not to."""
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    return body.strip()


def _parse(text: str, schema: type[T], check: Check | None) -> T:
    value = schema.model_validate_json(_strip_fence(text))
    if check is not None:
        check(value)
    return value


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        more = exc.error_count() - 1
        return f"{where}: {first['msg']}" + (f" (and {more} more)" if more else "")
    if isinstance(exc, PlanError):
        return exc.message
    return str(exc)


def ask_structured(provider: Provider, *, role: Role, model: str, system: str, prompt: str,
                   schema: type[T], schema_name: str, hints: dict[str, Any] | None = None,
                   check: Check | None = None, meter: Meter | None = None,
                   policy: RetryPolicy | None = None, max_tokens: int = 8000) -> T:
    """One structured answer validated by `schema` (and `check`), with bounded repair rounds."""
    messages = [{"role": "user", "content": prompt}]
    for attempt in range(1, REPAIR_ROUNDS + 2):
        request = CompletionRequest(
            role=role, model=model, system=system, messages=messages, schema_name=schema_name,
            json_schema=schema.model_json_schema(), hints={**(hints or {}), "attempt": attempt},
            max_tokens=max_tokens)
        response = call(provider, request, policy or RetryPolicy(), meter)
        if meter is not None:
            meter.record(request, response, attempt)
        try:
            return _parse(response.text, schema, check)
        except (ValidationError, ValueError, PlanError) as exc:
            error = _describe(exc)
            if attempt > REPAIR_ROUNDS:
                raise InvalidAnswer(f"the model's {schema_name} was not valid after "
                                    f"{attempt} attempts: {error}") from exc
            messages = [*messages, {"role": "assistant", "content": response.text},
                        {"role": "user", "content": repair_prompt(error)}]
    raise AssertionError("unreachable")


def repair_prompt(error: str) -> str:
    return ("Your previous answer was not valid: " + error + "\n"
            "Answer again with only the corrected JSON object, matching the schema exactly.")

"""Structured answers: ask, validate against a schema, repair once with the error, or fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from orchestrator.constants import Role
from orchestrator.errors import ModelError, PlanError
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Provider

T = TypeVar("T", bound=BaseModel)
UsageSink = Callable[[CompletionRequest, CompletionResponse, int], None]
Check = Callable[[Any], None]

REPAIR_ROUNDS = 1


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
        return f"{where}: {first['msg']}" + (f" ({exc.error_count()} errors)"
                                             if exc.error_count() > 1 else "")
    return str(exc)


def ask_structured(provider: Provider, *, role: Role, model: str, system: str, prompt: str,
                   schema: type[T], schema_name: str, hints: dict[str, Any] | None = None,
                   check: Check | None = None, on_usage: UsageSink | None = None,
                   max_tokens: int = 8000) -> T:
    """One structured answer validated by `schema` (and `check`), with bounded repair rounds."""
    messages = [{"role": "user", "content": prompt}]
    for attempt in range(1, REPAIR_ROUNDS + 2):
        request = CompletionRequest(
            role=role, model=model, system=system, messages=messages, schema_name=schema_name,
            json_schema=schema.model_json_schema(), hints={**(hints or {}), "attempt": attempt},
            max_tokens=max_tokens)
        response = provider.complete(request)
        if on_usage is not None:
            on_usage(request, response, attempt)
        try:
            return _parse(response.text, schema, check)
        except (ValidationError, ValueError, PlanError) as exc:
            error = _describe(exc)
            if attempt > REPAIR_ROUNDS:
                raise ModelError(f"the model's {schema_name} was not valid after "
                                 f"{attempt} attempts: {error}") from exc
            messages = [*messages, {"role": "assistant", "content": response.text},
                        {"role": "user", "content": repair_prompt(error)}]
    raise AssertionError("unreachable")


def repair_prompt(error: str) -> str:
    return ("Your previous answer was not valid: " + error + "\n"
            "Answer again with only the corrected JSON object, matching the schema exactly.")


def schema_text(schema: type[BaseModel]) -> str:
    return json.dumps(schema.model_json_schema(), separators=(",", ":"))

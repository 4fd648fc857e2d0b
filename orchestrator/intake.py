"""Checks on what a person gives the CLI, before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from orchestrator import dag
from orchestrator.constants import MAX_REQUEST_CHARS
from orchestrator.errors import BadInput, PlanError
from orchestrator.models import PlanFile

MAX_PLAN_BYTES = 1_000_000


def check_request(request: str | None) -> str:
    """The request, trimmed; empty or oversized requests are refused."""
    text = (request or "").strip()
    if not text:
        raise BadInput("the request is empty: say what the agency should deliver")
    if len(text) > MAX_REQUEST_CHARS:
        raise BadInput(f"the request has {len(text)} characters; the limit is "
                       f"{MAX_REQUEST_CHARS}")
    return text


def pydantic_line(exc: ValidationError) -> str:
    """A validation error as one line: where, what, and how many more."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = exc.error_count() - 1
    return f"{where}: {first['msg']}" + (f" (and {more} more)" if more else "")


def load_plan_file(path: Path) -> PlanFile:
    """Read and fully validate a plan file (contract and graph rules)."""
    if not path.is_file():
        raise PlanError(f"plan file {path} does not exist")
    if path.stat().st_size > MAX_PLAN_BYTES:
        raise PlanError(f"plan file {path} is larger than {MAX_PLAN_BYTES} bytes")
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PlanError(f"plan file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PlanError(f"plan file {path} must hold a JSON object with a 'tasks' list")
    try:
        plan = PlanFile.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"plan file {path}: {pydantic_line(exc)}") from exc
    try:
        dag.validate_plan(plan)
    except PlanError as exc:
        raise PlanError(f"plan file {path}: {exc.message}") from exc
    return plan

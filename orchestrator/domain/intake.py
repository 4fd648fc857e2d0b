"""Checks on what a person gives the CLI, before anything is written."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.domain import dag
from orchestrator.domain.constants import MAX_REQUEST_CHARS
from orchestrator.domain.errors import BadInput, PlanError
from orchestrator.domain.models import PlanFile

MAX_PLAN_BYTES = 1_000_000


def storable(text: str) -> str:
    """Text any database takes: no NUL, no lone surrogates (a model's text is untrusted)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def is_utf8(text: str) -> bool:
    """False for lone surrogates (bytes that were not UTF-8 in argv, or `\\udcff` in JSON):
    text the database cannot take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_request(request: str | None, what: str = "request",
                  empty: str = ": say what the agency should deliver") -> str:
    """A person's text (the request, or `what` else it is), trimmed; empty, oversized or
    non-UTF-8 text is refused (`empty` ends the message for empty text)."""
    text = (request or "").strip()
    if not is_utf8(text):
        raise BadInput(f"the {what} is not valid UTF-8 text")
    if not text:
        raise BadInput(f"the {what} is empty{empty}")
    if len(text) > MAX_REQUEST_CHARS:
        raise BadInput(f"the {what} has {len(text)} characters; the limit is "
                       f"{MAX_REQUEST_CHARS}")
    return text


def pydantic_line(exc: ValidationError) -> str:
    """A validation error as one line: where, what, and how many more."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    more = exc.error_count() - 1
    return f"{where}: {first['msg']}" + (f" (and {more} more)" if more else "")


def read_text_file(path: Path, what: str = "plan file",
                   error: type[BadInput] = PlanError) -> str:
    """A file's text (a plan file, unless `what` says): an existing, readable, UTF-8 regular
    file of reasonable size, or `error` with one line saying what is wrong."""
    try:
        mode, size = path.stat().st_mode, path.stat().st_size
        if stat.S_ISDIR(mode):
            raise error(f"{what} {path} is a directory, not a file")
        if not stat.S_ISREG(mode):
            raise error(f"{what} {path} is not a regular file")
        if size > MAX_PLAN_BYTES:
            raise error(f"{what} {path} is larger than {MAX_PLAN_BYTES} bytes")
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise error(f"{what} {path} does not exist") from exc
    except OSError as exc:
        raise error(f"{what} {path} cannot be read: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start})") from exc


def read_json_file(path: Path) -> Any:
    """A plan-like file's JSON, or PlanError with one line saying what is wrong."""
    try:
        data = json.loads(read_text_file(path))
    except json.JSONDecodeError as exc:
        raise PlanError(f"plan file {path} is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PlanError(f"plan file {path} is nested too deeply") from exc
    if not is_utf8(json.dumps(data, ensure_ascii=False)):
        raise PlanError(f"plan file {path} holds a \\u escape that is not valid UTF-8 text")
    return data


# What `agency plan --json` shows beside a plan file's fields: its numbers, not the plan.
_SHOWN = frozenset({"id", "status", "estimate"})
_SHOWN_PER_TASK = frozenset({"index", "id", "expected_tokens", "estimated_cost_usd",
                             "on_critical_path"})


def from_plan_json(data: dict[str, Any]) -> dict[str, Any]:
    """A plan file from `agency plan --json` output: its task ids (dependencies) become indices
    and what it shows besides the plan (ids, status, estimates in dollars) is left out."""
    tasks = data.get("tasks")
    if "estimate" not in data or not isinstance(tasks, list):
        return data  # a plan file as written
    index = {t.get("id"): n for n, t in enumerate(tasks) if isinstance(t, dict)}
    plan_tasks: list[object] = []
    for task in tasks:
        if not isinstance(task, dict):
            plan_tasks.append(task)  # the contract's check says what is wrong with it
            continue
        deps = task.get("dependencies", [])
        if isinstance(deps, list):
            deps = [index.get(d, d) if isinstance(d, str) else d for d in deps]
        plan_tasks.append({**{k: v for k, v in task.items() if k not in _SHOWN_PER_TASK},
                           "dependencies": deps})
    return {**{k: v for k, v in data.items() if k not in _SHOWN}, "tasks": plan_tasks}


def load_plan_file(path: Path) -> PlanFile:
    """Read and fully validate a plan file (contract and graph rules); `agency plan --json`
    output is one too."""
    data = read_json_file(path)
    if not isinstance(data, dict):
        raise PlanError(f"plan file {path} must hold a JSON object with a 'tasks' list")
    data = from_plan_json(data)
    try:
        plan = PlanFile.model_validate(data)
    except ValidationError as exc:
        raise PlanError(f"plan file {path}: {pydantic_line(exc)}") from exc
    try:
        dag.validate_plan(plan)
    except PlanError as exc:
        raise PlanError(f"plan file {path}: {exc.message}") from exc
    return plan

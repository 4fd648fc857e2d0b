"""Before agents start: their shared prefix checked against the model's minimum, and warmed.

At a project's first dispatch the prefix is counted once (`count_tokens`): a prefix below the
agent model's minimum cacheable length is never cached, which the log and the project's
history say. When a dispatch starts two or more agents at once, one short call first writes
the prefix, so that they read it instead of each writing it (AGENCY_CACHE_WARMUP): at the
first fan-out, and at a later one only when the prefix may have expired since an agent (or a
warm-up) last read it. Neither may fail the project: a failure is a warning and a note.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from orchestrator.agent.prefix import count_prefix, warm_up
from orchestrator.agent.runtime import Runtime
from orchestrator.domain import caching, catalog
from orchestrator.domain.constants import Role
from orchestrator.domain.models import ProjectRecord, TaskRecord

log = logging.getLogger(__name__)

WARMUP_NOTE = "warmup"
PREFIX_NOTE = "prompt_prefix"


def before_start(rt: Runtime, project_id: str, tasks: list[TaskRecord], starting: int,
                 first: bool) -> None:
    """Called by a dispatch before it sends work; `starting`: the agents it starts at once,
    `first`: no task of the project has started yet."""
    if not first and (starting < 2 or not rt.settings.cache_warmup):
        return
    try:
        project = rt.store.project(project_id, usage=False)
        if first and not _long_enough(rt, project):
            return
        if rt.settings.cache_warmup and _due(rt, project, tasks, starting):
            _warm(rt, project, starting)
    except Exception as exc:  # a lever, never a cause of failure
        log.warning("project %s: no warm-up of the prompt prefix: %s", project_id, exc)
        _note(rt, project_id, WARMUP_NOTE, f"no warm-up of the agents' prompt prefix: {exc}")


def _long_enough(rt: Runtime, project: ProjectRecord) -> bool:
    """Whether the prefix reaches the agent model's minimum (True when it cannot be told)."""
    model = _cache_model(rt)
    try:
        tokens = count_prefix(rt, project)
    except Exception as exc:
        log.warning("project %s: could not count the prompt prefix: %s", project.id, exc)
        return True
    short = caching.short_prefix(tokens, catalog.spec(model).cache_minimum, model)
    if short is None:
        return True
    log.warning("project %s: %s", project.id, short)
    _note(rt, project.id, PREFIX_NOTE, short)
    return False


def _cache_model(rt: Runtime) -> str:
    """The model whose cache the agents use (the offline provider answers as its own)."""
    return "offline" if rt.provider.name == "offline" else rt.model_for(Role.AGENT)


def _due(rt: Runtime, project: ProjectRecord, tasks: list[TaskRecord], starting: int) -> bool:
    """Due unless an agent or a warm-up read the prefix recently enough (an agent reads it
    on the first turn of its attempt, right after its task started)."""
    life, now = rt.cache_ttl(project), rt.store.clock()
    reads = [_utc(t.started_at) for t in tasks if t.started_at is not None]
    if not caching.warmup_due(starting, max(reads, default=None), now, life):
        return False
    warmed = [_utc(row["at"]) for row in rt.store.notes(project.id, [WARMUP_NOTE])]
    return caching.warmup_due(starting, max((*reads, *warmed), default=None), now, life)


def _warm(rt: Runtime, project: ProjectRecord, starting: int) -> None:
    response = warm_up(rt, project)
    tokens = response.tokens
    written = tokens.cache_write + tokens.cache_read
    detail = (f"warmed the agents' prompt prefix ({written:,} tokens cached, "
              f"{rt.cache_ttl(project)}) before {starting} agents start at once")
    if not written:
        detail = (f"warm-up before {starting} agents start: the model cached nothing "
                  f"({tokens.input:,} tokens, below its minimum?)")
    log.info("project %s: %s", project.id, detail)
    _note(rt, project.id, WARMUP_NOTE, detail)


def _utc(value: Any) -> datetime:
    found = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _note(rt: Runtime, project_id: str, kind: str, detail: str) -> None:
    try:
        rt.store.note(project_id, None, kind, detail)
    except Exception as exc:  # a note is not worth failing a dispatch for
        log.warning("could not note %s: %s", kind, exc)

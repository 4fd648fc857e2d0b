"""Before agents start: their shared prefix checked against the model's minimum, and warmed.

When a dispatch starts two or more agents at once, one short call first writes the prefix, so
that they read it instead of each writing it (AGENCY_CACHE_WARMUP): at the first fan-out, and
at a later one only when the prefix may have expired since an agent (or a warm-up) last read
it. After a project's first dispatch the prefix is counted once (`count_tokens`, off the path
of the first messages): a prefix below the agent model's minimum cacheable length is never
cached, which the log and the project's history say (and no later warm-up is tried). Neither
may fail the project: a failure is a warning and a note.
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


def before_start(rt: Runtime, project_id: str, tasks: list[TaskRecord],
                 starting: list[str]) -> None:
    """Called by a dispatch before it sends work: warm the prefix when the tasks `starting`
    (that start at once) are two or more and the prefix is not known to be warm."""
    if len(starting) < 2 or not rt.settings.cache_warmup:
        return
    try:
        project = rt.store.project(project_id, usage=False)
        if not _due(rt, project, tasks, len(starting)):
            return
        # Their messages wait for the warm-up: they count as ready from now, so that the
        # reconciler does not take them for lost meanwhile. The note is the warm-up's mark:
        # a dispatch that runs meanwhile does not warm the prefix again.
        rt.store.touch_ready(starting)
        _note(rt, project_id, WARMUP_NOTE, f"warming the agents' prompt prefix (cache life "
              f"{rt.cache_ttl(project)}) before {len(starting)} agents start at once")
        tokens = warm_up(rt, project).tokens
        log.info("project %s: warm-up wrote %d and read %d prefix tokens", project_id,
                 tokens.cache_write, tokens.cache_read)
    except Exception as exc:  # a lever, never a cause of failure
        log.warning("project %s: no warm-up of the prompt prefix: %s", project_id, exc)
        _note(rt, project_id, WARMUP_NOTE, f"no warm-up of the agents' prompt prefix: {exc}")


def check_prefix(rt: Runtime, project_id: str) -> None:
    """Once per project, after its first dispatch: count the prefix (one free call) and say
    so when it is below the agent model's minimum cacheable length. Never raises."""
    try:
        project = rt.store.project(project_id, usage=False)
        tokens = count_prefix(rt, project)
    except Exception as exc:
        log.warning("project %s: could not count the prompt prefix: %s", project_id, exc)
        return
    model = _cache_model(rt)
    short = caching.short_prefix(tokens, catalog.spec(model).cache_minimum, model)
    if short is not None:
        log.warning("project %s: %s", project_id, short)
        _note(rt, project_id, PREFIX_NOTE, short)


def _cache_model(rt: Runtime) -> str:
    """The model whose cache the agents use (the offline provider answers as its own)."""
    return "offline" if rt.provider.name == "offline" else rt.model_for(Role.AGENT)


def _due(rt: Runtime, project: ProjectRecord, tasks: list[TaskRecord], starting: int) -> bool:
    """Due unless an agent or a warm-up read the prefix recently enough (an agent reads it
    on the first turn of its attempt, right after its task started), or it is too short to
    be cached at all."""
    life, now = rt.cache_ttl(project), rt.store.clock()
    reads = [_utc(t.started_at) for t in tasks if t.started_at is not None]
    if not caching.warmup_due(starting, max(reads, default=None), now, life):
        return False
    notes = rt.store.notes(project.id, [WARMUP_NOTE, PREFIX_NOTE])
    if any(row["kind"] == PREFIX_NOTE for row in notes):
        return False
    warmed = [_utc(row["at"]) for row in notes]
    return caching.warmup_due(starting, max((*reads, *warmed), default=None), now, life)


def _utc(value: Any) -> datetime:
    found = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _note(rt: Runtime, project_id: str, kind: str, detail: str) -> None:
    try:
        rt.store.note(project_id, None, kind, detail)
    except Exception as exc:  # a note is not worth failing a dispatch for
        log.warning("could not note %s: %s", kind, exc)

"""The JSON that `--json` prints, one function per shape (`status --json` is
`views.project_json`): what other programs read, so it is written down once."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from orchestrator.domain.estimates import Estimate
from orchestrator.domain.models import CallRecord, ProjectRecord, TaskRecord
from orchestrator.services.queues import QueueInfo
from orchestrator.state.knowledge import Hit


def projects_json(projects: Iterable[ProjectRecord]) -> list[dict[str, Any]]:
    """`agency list --json`."""
    return [{"id": p.id, "status": p.status.value, "request": p.request,
             "project_type": p.project_type.value if p.project_type else None,
             "created_at": p.created_at.isoformat(), "tokens": p.tokens.model_dump(),
             "cost_usd": round(p.cost_usd, 6)} for p in projects]


def hits_json(hits: Iterable[Hit]) -> list[dict[str, Any]]:
    """`agency search --json`."""
    return [dataclasses.asdict(hit) for hit in hits]


def questions_json(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`agency questions --json`."""
    return [{"project_id": r["project_id"], "task_id": r["task_id"], "task": int(r["idx"]),
             "title": r["title"], "question": r["question"], "assumption": r["assumption"],
             "asked_at": str(r["asked_at"])} for r in rows]


def plan_json(project: ProjectRecord, tasks: list[TaskRecord], found: Estimate) -> dict[str, Any]:
    """`agency plan --json`: the plan with its estimate, and a plan file as it stands (`plan
    --edit` and `run --plan` read it back: the ids become indices again)."""
    return {
        "id": project.id, "status": project.status.value, "request": project.request,
        "project_type": project.project_type.value if project.project_type else None,
        "estimate": {"tokens": found.tokens, "expected_tokens": found.expected,
                     "spend_ratio": found.calibration.ratio,
                     "calibrated_on_projects": found.calibration.projects,
                     "counted_tokens": found.counted,
                     "cost_usd": round(found.cost_usd, 4),
                     "batch_cost_usd": round(found.batch_cost_usd, 4),
                     "economy": project.economy,
                     "model": found.model, "budget_tokens": project.budget_tokens},
        "tasks": [{"index": t.index, "id": t.id, "title": t.title,
                   "agent_type": t.agent_type.value, "dependencies": t.dependencies,
                   "estimated_tokens": t.estimated_tokens,
                   "expected_tokens": found.per_task[t.index][0],
                   "estimated_cost_usd": round(found.per_task[t.index][1], 4),
                   "on_critical_path": t.on_critical_path, "description": t.description,
                   "deliverables": t.deliverables,
                   "acceptance_criteria": t.acceptance_criteria} for t in tasks]}


def log_json(rows: Iterable[dict[str, Any]], index: dict[str, int]) -> list[dict[str, Any]]:
    """`agency log --json`: events, oldest first, with their task's index."""
    return [{"at": str(r["at"]), "kind": r["kind"],
             "task": index.get(r["task_id"]) if r["task_id"] else None,
             "task_id": r["task_id"], "from": r["from_status"], "to": r["to_status"],
             "detail": r["detail"]} for r in rows]


def queues_json(queues: Iterable[QueueInfo]) -> list[dict[str, Any]]:
    """`agency workers --json`."""
    return [{"queue": q.name, "depth": q.depth, "workers": [
        {"name": w.name, "concurrency": w.concurrency, "active": w.active, "store": w.store}
        for w in q.workers]} for q in queues]


def calls_json(calls: Iterable[CallRecord]) -> list[dict[str, Any]]:
    """`agency calls --json`: the project's ledger, one object per model call, in order. `task`
    is the task's index (null for the project's own calls); a `lost` call gave no answer and
    may have been billed for tokens nobody knows; a `stale` one was made by an attempt that no
    longer held its task (paid, but not the task's usage); a `batch` one was answered through
    the Message Batches API (priced at half)."""
    return [{"at": c.at.isoformat(), "task": c.task_index, "task_id": c.task_id,
             "title": c.task_title, "role": c.entry.role.value, "model": c.entry.model,
             "attempt": c.entry.attempt, "stop_reason": c.entry.stop_reason,
             "outcome": c.entry.outcome.value, "stale": c.stale, "batch": c.entry.batch,
             "tokens": c.entry.tokens.model_dump(), "cost_usd": round(c.entry.cost_usd, 6),
             "latency_ms": c.entry.latency_ms, "request_id": c.entry.request_id,
             "message_id": c.entry.message_id} for c in calls]

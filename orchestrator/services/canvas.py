"""Compile a plan's series-parallel shape into Celery canvas: chains, groups and chords."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from celery import Celery, chain, group
from celery.canvas import Signature

from orchestrator.agent.review import reviewer_for
from orchestrator.domain.constants import (
    INTEGRATE_TASK,
    MESSAGE_PRIORITY,
    PLAN_TASK,
    AgentType,
    agent_task_name,
    review_task_name,
)
from orchestrator.domain.dag import Leaf, Parallel, Series, Shape
from orchestrator.domain.models import TaskRecord


def compile_shape(shape: Shape, leaf: Callable[[int], Signature]) -> Signature:
    """Series become chains, parallel parts groups; a group followed by work becomes a chord."""
    match shape:
        case Leaf(node=node):
            return leaf(node)
        case Series(parts=parts):
            return chain(*(compile_shape(p, leaf) for p in parts))
        case Parallel(parts=parts):
            return group(*(compile_shape(p, leaf) for p in parts))


def native_joins(app: Celery) -> bool:
    """Whether the result backend joins a flat chord as its last task ends (Redis and the
    embedded in-memory cache do; a backend that would poll with `chord_unlock` does not):
    see `dag.cheap_joins`."""
    return bool(getattr(app.backend, "supports_native_join", False))


def agent_signature(app: Celery, project_id: str, task: TaskRecord) -> Signature:
    """One agent task: ids and the title only (Flower shows and searches them), sent with
    its priority so that the critical path goes first where workers are scarce."""
    return app.signature(agent_task_name(task.agent_type), immutable=True,
                         kwargs={"project_id": project_id, "task_id": task.id,
                                 "title": task.title},
                         priority=MESSAGE_PRIORITY[task.priority])


def unit_canvas(app: Celery, project_id: str, tasks: Sequence[TaskRecord],
                shape: Shape) -> Signature:
    """One launch unit's tasks (indexed as in `shape`) as canvas."""
    return compile_shape(shape, lambda node: agent_signature(app, project_id, tasks[node]))


def review_signature(app: Celery, project_id: str, task_id: str, round_: int,
                     agent: AgentType) -> Signature:
    """One review round of a task, on its reviewer's queue."""
    return app.signature(review_task_name(reviewer_for(agent)), immutable=True,
                         kwargs={"project_id": project_id, "task_id": task_id,
                                 "round": round_})


def integration_signature(app: Celery, project_id: str) -> Signature:
    """Integration, on the orchestrator queue; the store sends it when the last task is done."""
    return app.signature(INTEGRATE_TASK, kwargs={"project_id": project_id}, immutable=True)


def plan_signature(app: Celery, project_id: str) -> Signature:
    """Planning, on the orchestrator queue."""
    return app.signature(PLAN_TASK, kwargs={"project_id": project_id}, immutable=True)

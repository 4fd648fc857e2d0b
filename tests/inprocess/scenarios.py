"""What several in-process tests share: a plan the offline reviewer sends back once, the
ordering check, and services that raise in place of the real ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery

from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import ProjectStatus
from orchestrator.domain.models import Plan, TaskRecord
from orchestrator.state.transitions import ProjectClaim
from tests.harness import Agency

Start = Callable[..., Agency]  # the `start` fixture: an agency configured by AGENCY_* values

# A plan whose first task the offline reviewer sends back once: its criterion names words no
# draft contains until it is revised with the reviewer's notes.
ODD = Plan.model_validate({"tasks": [
    {"title": "Brief", "agent_type": "project_manager", "deliverables": ["brief"],
     "acceptance_criteria": ["Mentions quantum xylophone zebra unicorn teleportation"]},
    {"title": "Copy", "agent_type": "content_writer", "dependencies": [0],
     "deliverables": ["home page copy"], "acceptance_criteria": ["Home page copy is complete"]}]})


def started_after_dependencies(tasks: list[TaskRecord]) -> bool:
    """Every task started no earlier than the last of its dependencies finished."""
    by_id = {t.id: t for t in tasks}
    for task in tasks:
        for dep in task.dependencies:
            finished = by_id[dep].finished_at
            if task.started_at is None or finished is None or task.started_at < finished:
                return False
    return True


Planner = Callable[[Runtime, Celery, str], None]


def planner_raising(exc: Exception) -> Planner:
    """A planning service that raises before it claims anything."""
    def plan(rt: Runtime, app: Celery, project_id: str) -> None:
        raise exc
    return plan


def planner_failing(cause: Exception) -> Planner:
    """A planning service whose claimed attempt fails with `cause`."""
    def plan(rt: Runtime, app: Celery, project_id: str) -> None:
        def work(claim: ProjectClaim) -> None:
            raise cause
        rt.holding_project(project_id, ProjectStatus.PLANNING, work)
    return plan


def work_raising(exc: Exception) -> Callable[..., Any]:
    def work(*_: Any) -> Any:
        raise exc
    return work

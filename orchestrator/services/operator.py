"""Operator actions as services: the CLI parses and prints; these change the store and send."""

from __future__ import annotations

from pathlib import Path

from celery import Celery
from pydantic import ValidationError

from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import ProjectStatus, TaskStatus
from orchestrator.domain.errors import BadInput
from orchestrator.domain.models import Plan, TaskRecord
from orchestrator.services.approval import operator
from orchestrator.services.budget import added_budget
from orchestrator.services.dispatch import dispatch, send_plan
from orchestrator.services.reconciler import reconcile

ENDED = (ProjectStatus.FAILED, ProjectStatus.BUDGET_EXHAUSTED, ProjectStatus.NEEDS_ATTENTION)
IN_FLIGHT = (ProjectStatus.PENDING, ProjectStatus.PLANNING, ProjectStatus.RUNNING,
             ProjectStatus.INTEGRATING)


def pause_project(rt: Runtime, project_id: str) -> None:
    """No new task of the project starts; the running ones finish (`resume_project` goes on)."""
    if not rt.scheduler.operator_move(project_id, ProjectStatus.PAUSED, ProjectStatus.RUNNING,
                                      f"paused by {operator()}"):
        status = rt.store.project(project_id).status.value
        raise BadInput(f"project {project_id} is {status}; only a running project can be "
                       "paused")


def resume_project(rt: Runtime, app: Celery, project_id: str) -> str:
    """Carry on from the store; return what was done, in words."""
    project = rt.store.project(project_id)
    if project.status is ProjectStatus.PAUSED:
        if not rt.scheduler.operator_move(project_id, ProjectStatus.RUNNING,
                                          ProjectStatus.PAUSED, f"resumed by {operator()}"):
            raise BadInput(f"project {project_id} is no longer paused")
        # What became ready while paused was refused by the workers: send it again (a task
        # still queued from before gets a second message, which its claim makes harmless).
        dispatch(rt, app, project_id)
        return "resumed after a pause"
    if project.status in IN_FLIGHT:
        # Nothing to revive: what a dead worker held comes back when its lease expires.
        done = reconcile(rt, app)
        return (f"is {project.status.value}; the reconciler re-sent {len(done.resent)} and "
                f"requeued {len(done.requeued)} task(s); a dead worker's task runs again once "
                f"its lease expires (within {rt.settings.lease_seconds:.0f}s)")
    if project.status not in ENDED:
        raise BadInput(f"project {project_id} is {project.status.value}; there is nothing "
                       "to resume")
    target, revived = rt.scheduler.revive(project_id)
    rt.store.note(project_id, None, "operator",
                  f"resumed by {operator()}: {len(revived)} failed task(s) queued again")
    if target is ProjectStatus.PENDING:
        send_plan(rt, app, project_id)
    else:
        dispatch(rt, app, project_id)
    return f"resumed; {len(revived)} failed task(s) back in the queue"


def retry_task(rt: Runtime, app: Celery, task_id: str) -> str:
    """Run a failed task again, then its descendants; return the project id."""
    task = rt.store.task(task_id)
    rt.scheduler.revive(task.project_id, task_id)
    rt.store.note(task.project_id, task_id, "operator",
                  f"task {task.index} retried by {operator()}")
    dispatch(rt, app, task.project_id, [task_id])
    return task.project_id


def add_tasks(rt: Runtime, app: Celery, project_id: str, path: Path) -> list[TaskRecord]:
    """Add a file's tasks to a running (or paused) project without restarting anything.

    The file holds {"tasks": [...]}, each task as in a plan file; a dependency is an index in
    the project's numbering (its tasks 0 to n-1, then the file's tasks n, n+1, ... in order) or
    an existing task's id (or a unique prefix). The whole plan, old and new, must pass every
    graph rule; no new task may depend on a cancelled one. The new tasks are sent at once;
    those that wait on unfinished work are released by the store as it completes.
    """
    from orchestrator.domain import dag
    from orchestrator.domain.errors import PlanError
    from orchestrator.domain.intake import read_json_file

    project = rt.store.project(project_id, usage=False)
    if project.status not in (ProjectStatus.RUNNING, ProjectStatus.PAUSED) or project.plan is None:
        raise BadInput(f"project {project_id} is {project.status.value}; tasks can be added "
                       "to a running or paused project")
    data = read_json_file(path)
    new = data.get("tasks") if isinstance(data, dict) else None
    if not isinstance(new, list) or not new:
        raise PlanError(f"{path} must hold a JSON object with a non-empty 'tasks' list")
    existing = rt.store.tasks(project_id)
    ids = {t.id: t.index for t in existing}
    for n, task in enumerate(new):
        if not isinstance(task, dict):
            raise PlanError(f"{path}: task {len(existing) + n} must be an object")
        deps = task.get("dependencies", [])
        if not isinstance(deps, list):
            raise PlanError(f"{path}: task {len(existing) + n}: dependencies must be a list")
        resolved: list[object] = []
        for dep in deps:
            if isinstance(dep, str):
                found = rt.store.resolve_task_id(dep)
                if found not in ids:
                    raise PlanError(f"{path}: task {len(existing) + n} depends on {dep!r}, "
                                    f"which is not a task of project {project_id}")
                resolved.append(ids[found])
            else:
                resolved.append(dep)
        task["dependencies"] = resolved
    try:
        plan = Plan.model_validate({"tasks": [*(t.model_dump() for t in project.plan.tasks),
                                              *new]})
    except ValidationError as exc:
        from orchestrator.domain.intake import pydantic_line

        raise PlanError(f"{path}: {pydantic_line(exc)}") from exc
    try:
        graph = dag.validate_plan(plan)
    except PlanError as exc:
        raise PlanError(f"{path}: {exc.message}") from exc
    cancelled = {t.index for t in existing if t.status is TaskStatus.CANCELLED}
    # A failed task, or one that waits on a failure, would leave the new task waiting for ever.
    stuck = {t.index for t in existing if t.status is TaskStatus.FAILED
             or (t.status is TaskStatus.BLOCKED and t.error)}
    for index in range(len(existing), len(plan.tasks)):
        bad = sorted(cancelled & set(graph.deps[index]))
        if bad:
            raise BadInput(f"{path}: task {index} depends on task {bad[0]}, which was cancelled")
        bad = sorted(stuck & set(graph.deps[index]))
        if bad:
            raise BadInput(f"{path}: task {index} depends on task {bad[0]}, which failed or "
                           "waits on a failure; retry it first (agency retry)")
    added = rt.scheduler.add_tasks(project_id, plan, graph, dag.schedule(graph),
                                   len(existing), f"{len(new)} task(s) added by {operator()} "
                                   f"from {path.name}",
                                   added_budget(project.budget_tokens, plan, len(existing)))
    if added is None:
        status = rt.store.project(project_id).status.value
        raise BadInput(f"project {project_id} is {status}; tasks can be added to a running "
                       "or paused project")
    dispatch(rt, app, project_id, added)
    return [rt.store.task(task_id) for task_id in added]

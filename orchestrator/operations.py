"""Operator actions as services: the CLI parses and prints; these change the store and send."""

from __future__ import annotations

from celery import Celery

from orchestrator.approval import operator
from orchestrator.constants import ProjectStatus
from orchestrator.dispatch import dispatch, send_plan
from orchestrator.errors import BadInput
from orchestrator.reconciler import reconcile
from orchestrator.runtime import Runtime

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

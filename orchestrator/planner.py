"""Planning: analyze the request, decompose it, validate the graph, persist and dispatch."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Celery

from orchestrator import dag
from orchestrator.canvas import integration_signature, unit_canvas
from orchestrator.constants import (
    COMPLEXITY_BUDGETS,
    DEFAULT_BUDGET,
    PLAN_TASK,
    Complexity,
    ProjectStatus,
    ProjectType,
    Role,
    TaskPriority,
    TaskStatus,
)
from orchestrator.errors import BudgetExhausted, InvalidAnswer, TransientModelError
from orchestrator.llm.structured import ask_structured
from orchestrator.models import Analysis, Plan, ProjectContext, ProjectRecord, TaskRecord
from orchestrator.prompts import ORCHESTRATOR_SYSTEM, analysis_prompt, decomposition_prompt
from orchestrator.runtime import Runtime
from orchestrator.scheduler import Completion
from orchestrator.store import now

log = logging.getLogger(__name__)


def analyze(rt: Runtime, project: ProjectRecord) -> Analysis:
    return ask_structured(
        rt.provider, role=Role.ANALYZE, model=rt.model_for(Role.ANALYZE),
        system=ORCHESTRATOR_SYSTEM, prompt=analysis_prompt(project.request), schema=Analysis,
        schema_name="analysis", hints={"request": project.request},
        meter=rt.meter(project.id, None), policy=rt.policy, max_tokens=4000)


def project_context(project: ProjectRecord, analysis: Analysis, budget: int) -> ProjectContext:
    """The seed's project context: requirements, constraints, deadline, budget and priority."""
    priority = (TaskPriority.HIGH if analysis.complexity is Complexity.ENTERPRISE
                else TaskPriority.NORMAL)
    return ProjectContext(
        project_id=project.id, project_type=analysis.project_type, description=project.request,
        requirements=analysis.key_requirements,
        constraints={"complexity": analysis.complexity.value,
                     "estimated_hours": analysis.estimated_hours},
        deadline=now() + timedelta(hours=analysis.estimated_hours * 1.5),
        budget_tokens=budget, priority=priority, metadata=analysis.model_dump(mode="json"))


def decompose(rt: Runtime, context: ProjectContext) -> Plan:
    prompt = decomposition_prompt(context.description, context.project_type.value,
                                  context.requirements, context.constraints)
    return ask_structured(
        rt.provider, role=Role.DECOMPOSE, model=rt.model_for(Role.DECOMPOSE),
        system=ORCHESTRATOR_SYSTEM, prompt=prompt, schema=Plan, schema_name="plan",
        hints={"request": context.description, "project_type": context.project_type.value},
        check=dag.validate_plan, meter=rt.meter(context.project_id, None), policy=rt.policy,
        max_tokens=16000)


def plan_project(rt: Runtime, app: Celery, project_id: str) -> None:
    """Turn a pending project into persisted tasks and dispatched canvas."""
    if not rt.scheduler.move_project(project_id, ProjectStatus.PLANNING):
        log.info("project %s is not pending; planning skipped", project_id)
        return
    try:
        _plan(rt, app, project_id)
    except BudgetExhausted as exc:
        rt.scheduler.pause_for_budget(project_id, None, exc.message)
    except (TransientModelError, InvalidAnswer):
        # Back to pending, so the task's retry plans again from the start.
        rt.scheduler.move_project(project_id, ProjectStatus.PENDING)
        raise


def _plan(rt: Runtime, app: Celery, project_id: str) -> None:
    project = rt.store.project(project_id)
    budget = project.budget_tokens
    if project.plan is None:
        analysis = analyze(rt, project)
        budget = budget or COMPLEXITY_BUDGETS.get(analysis.complexity, DEFAULT_BUDGET)
        rt.scheduler.save_analysis(project_id, analysis, budget)
        plan = decompose(rt, project_context(project, analysis, budget))
        kind = analysis.project_type
    else:
        plan, kind = project.plan, project.project_type or ProjectType.CUSTOM
    graph = dag.validate_plan(plan)
    rt.scheduler.save_plan(project_id, plan, graph, dag.schedule(graph), kind.value,
                           budget or DEFAULT_BUDGET)
    rt.scheduler.move_project(project_id, ProjectStatus.RUNNING)
    dispatch(rt, app, project_id)


ROOT_UNIT = "root"


def _graph(tasks: list[TaskRecord]) -> dag.Graph:
    """The graph among these tasks only (dependencies outside them are done or counted)."""
    index = {t.id: i for i, t in enumerate(tasks)}
    return dag.Graph(deps=tuple(tuple(index[d] for d in t.dependencies if d in index)
                                for t in tasks),
                     weights=tuple(t.estimated_tokens for t in tasks))


def dispatch(rt: Runtime, app: Celery, project_id: str) -> None:
    """Split what is left into exact launch units, record them, and send the root unit."""
    todo = [t for t in rt.store.tasks(project_id) if t.status is not TaskStatus.COMPLETED]
    if not todo:
        integration_signature(app, project_id).apply_async()
        return
    found = dag.units(_graph(todo))
    rt.store.assign_units({ROOT_UNIT if u.head is None else todo[u.head].id:
                           [todo[m].id for m in u.members] for u in found})
    if len(found) > 1:
        log.info("project %s: %d launch units (the graph is not series-parallel)",
                 project_id, len(found))
    root = next(u for u in found if u.head is None)
    launch(rt, app, project_id, [todo[m] for m in root.members])


def launch(rt: Runtime, app: Celery, project_id: str, members: list[TaskRecord]) -> None:
    """Send one unit's tasks as chains, groups and chords."""
    rt.scheduler.mark_queued([t.id for t in members])
    shape = dag.series_parallel(_graph(members))
    unit_canvas(app, project_id, members, shape).apply_async()


def release(rt: Runtime, app: Celery, project_id: str, completion: Completion) -> None:
    """After a completion: send the units whose head it made ready, or integration."""
    for task_id in completion.ready:
        head = rt.store.task(task_id)
        if head.unit == head.id:
            members = [t for t in rt.store.tasks(project_id)
                       if t.unit == head.id and t.status is not TaskStatus.COMPLETED]
            launch(rt, app, project_id, members)
    if completion.project_done:
        integration_signature(app, project_id).apply_async()


def recover(rt: Runtime, app: Celery, project_id: str, live: set[str]) -> int:
    """Carry on with a project whose workers died; return how many stalled tasks were requeued.

    Tasks in progress that no live worker is running go back to pending. Then every task left
    is released by the store, one by one, so that no chord of an earlier canvas is waited on;
    duplicate messages are harmless, since a task starts only once and never after completing.
    """
    project = rt.store.project(project_id)
    if project.status in (ProjectStatus.PENDING, ProjectStatus.PLANNING):
        rt.scheduler.move_project(project_id, ProjectStatus.PENDING)
        app.signature(PLAN_TASK, kwargs={"project_id": project_id}).apply_async()
        return 0
    tasks = rt.store.tasks(project_id)
    stale = [t.id for t in tasks if t.status is TaskStatus.IN_PROGRESS and t.id not in live]
    for task_id in stale:
        rt.scheduler.requeue_task(task_id, "recovered: no live worker was running it")
    todo = [t for t in tasks if t.status is not TaskStatus.COMPLETED]
    if project.status is ProjectStatus.INTEGRATING or not todo:
        integration_signature(app, project_id).apply_async()
        return len(stale)
    rt.store.assign_units({t.id: [t.id] for t in todo})
    for task in rt.store.tasks(project_id):
        if task.status is TaskStatus.PENDING:
            launch(rt, app, project_id, [task])
    return len(stale)

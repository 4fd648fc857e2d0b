"""Planning: analyze the request, decompose it, validate the graph, persist and dispatch."""

from __future__ import annotations

import logging

from celery import Celery

from orchestrator.agent.runtime import Runtime
from orchestrator.domain import dag, deadlines, estimates
from orchestrator.domain.constants import (
    ProjectStatus,
    ProjectType,
    Role,
)
from orchestrator.domain.models import Analysis, Plan, ProjectContext, ProjectRecord
from orchestrator.domain.prompts import ORCHESTRATOR_SYSTEM, analysis_prompt, decomposition_prompt
from orchestrator.llm.structured import ask_structured
from orchestrator.services.dispatch import dispatch
from orchestrator.state.transitions import ProjectClaim

log = logging.getLogger(__name__)


def analyze(rt: Runtime, project: ProjectRecord) -> Analysis:
    return ask_structured(
        rt.provider, role=Role.ANALYZE, model=rt.model_for(Role.ANALYZE),
        system=ORCHESTRATOR_SYSTEM, prompt=analysis_prompt(project.request), schema=Analysis,
        schema_name="analysis",
        meter=rt.meter(project.id, None), policy=rt.policy, max_tokens=4000,
        effort=rt.effort_for(Role.ANALYZE),
        journal=rt.journal(project.id, None, project_conversation(project, "analyze")))


def project_context(project: ProjectRecord, analysis: Analysis) -> ProjectContext:
    """What decomposition is told about the project: its request and the analysis's findings."""
    return ProjectContext(
        project_id=project.id, project_type=analysis.project_type, description=project.request,
        requirements=analysis.key_requirements,
        constraints={"complexity": analysis.complexity.value,
                     "estimated_hours": analysis.estimated_hours})


def project_conversation(project: ProjectRecord, part: str) -> str:
    """The journal's name for one of a project's own conversations (analyze, decompose,
    integrate) in its current run (a project resumed after failing for good starts anew)."""
    return f"p/{project.id}/{project.conversation_from}/{part}"


def decompose(rt: Runtime, context: ProjectContext, conv: str) -> Plan:
    prompt = decomposition_prompt(context.description, context.project_type.value,
                                  context.requirements, context.constraints)
    return ask_structured(
        rt.provider, role=Role.DECOMPOSE, model=rt.model_for(Role.DECOMPOSE),
        system=ORCHESTRATOR_SYSTEM, prompt=prompt, schema=Plan, schema_name="plan",
        check=dag.validate_plan, meter=rt.meter(context.project_id, None), policy=rt.policy,
        max_tokens=16000, effort=rt.effort_for(Role.DECOMPOSE),
        progress=rt.activity(context.project_id, None),
        journal=rt.journal(context.project_id, None, conv))


def plan_project(rt: Runtime, app: Celery, project_id: str) -> None:
    """Turn a pending project into persisted tasks and dispatched canvas.

    Raises NotRunnable when the project is not waiting to be planned (a duplicate message), and
    AttemptFailed with the cause when a claimed attempt fails.
    """
    rt.holding_project(project_id, ProjectStatus.PLANNING, lambda c: _plan(rt, c))
    status = rt.store.project(project_id, usage=False).status
    if status is not ProjectStatus.RUNNING:  # waiting for approval, or already rejected
        log.info("project %s: planned; %s", project_id, status.value)
        return
    dispatch(rt, app, project_id)


def _spent(rt: Runtime, project_id: str) -> int:
    return rt.store.project(project_id, usage=False).tokens_used


def _plan(rt: Runtime, claim: ProjectClaim) -> None:
    """What an earlier attempt stored (analysis, plan, tasks) is not paid for again."""
    project = rt.store.project(claim.project_id)
    if rt.store.tasks(project.id):  # an earlier attempt saved the plan, then died
        waits = project.plan is not None and estimates.needs_approval(
            rt.settings, project, project.plan, rt.store.calibration())
        rt.scheduler.move_claimed(claim, ProjectStatus.AWAITING_APPROVAL if waits
                                  else ProjectStatus.RUNNING)
        return
    floor = estimates.budget_floor(None)
    if project.plan is None:
        analysis = project.analysis
        if analysis is None:
            analysis = analyze(rt, project)
            # Planning spends within the complexity's budget until the plan says what it needs.
            rt.scheduler.save_analysis(claim, analysis, estimates.budget_floor(
                analysis.complexity) + _spent(rt, project.id))
        floor = estimates.budget_floor(analysis.complexity)
        plan = decompose(rt, project_context(project, analysis),
                         project_conversation(project, "decompose"))
        kind = analysis.project_type
    else:
        plan, kind = project.plan, project.project_type or ProjectType.CUSTOM
    graph = dag.validate_plan(plan)
    calibration = rt.store.calibration()
    # A person's --budget stands (the store keeps it); else what the plan needs, planning's
    # spending included (it is spent).
    budget = estimates.plan_budget(plan, calibration, _spent(rt, project.id), floor)
    ids = rt.scheduler.save_plan(claim, plan, graph, dag.schedule(graph), kind.value, budget)
    analysis = rt.store.project(project.id, usage=False).analysis
    deadline = deadlines.project_deadline(project, analysis)
    if deadline is not None:
        spread = deadlines.task_deadlines(graph, deadline, project.created_at)
        rt.scheduler.set_deadlines(project.id, deadline, dict(zip(ids, spread, strict=True)))
    waits = estimates.needs_approval(rt.settings, project, plan, calibration)
    if waits and not project.needs_approval:  # held by the threshold: say so in its log
        rt.store.note(project.id, None, "approval",
                      estimates.threshold_reason(rt.settings, plan, calibration))
    rt.scheduler.move_claimed(claim, ProjectStatus.AWAITING_APPROVAL if waits
                              else ProjectStatus.RUNNING)

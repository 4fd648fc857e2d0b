"""Integration: merge every task's result into one deliverable and write it to disk."""

from __future__ import annotations

import logging

from orchestrator.constants import ProjectStatus, Role, TaskStatus
from orchestrator.deliverable import write_outputs
from orchestrator.errors import BudgetExhausted, TaskNotReady
from orchestrator.llm.structured import ask_structured
from orchestrator.models import Deliverable
from orchestrator.prompts import ORCHESTRATOR_SYSTEM, integration_prompt
from orchestrator.runtime import Runtime

log = logging.getLogger(__name__)


def integrate_project(rt: Runtime, project_id: str) -> None:
    """Write the deliverable once every task completed; idempotent on redelivery."""
    moved = rt.scheduler.move_project(project_id, ProjectStatus.INTEGRATING)
    project = rt.store.project(project_id)
    if not moved and project.status is not ProjectStatus.INTEGRATING:
        log.info("project %s is %s; integration skipped", project_id, project.status)
        return
    tasks = rt.store.tasks(project_id)
    waiting = [t.title for t in tasks if t.status is not TaskStatus.COMPLETED]
    if waiting:
        raise TaskNotReady(f"integration waits for: {', '.join(waiting)}")
    results = [{"task": t.title, "agent": t.agent_type.value,
                "result": (t.output.summary + "\n\n" + t.output.content[:3000])
                if t.output else ""} for t in tasks]
    hints = {"request": project.request,
             "success_criteria": project.analysis.success_criteria if project.analysis else [],
             "results": [{"title": t.title, "agent_type": t.agent_type.value,
                          "summary": t.output.summary if t.output else ""} for t in tasks]}
    try:
        deliverable = ask_structured(
            rt.provider, role=Role.INTEGRATE, model=rt.model_for(Role.INTEGRATE),
            system=ORCHESTRATOR_SYSTEM,
            prompt=integration_prompt(project.request, str(project.project_type), results),
            schema=Deliverable, schema_name="deliverable", hints=hints,
            meter=rt.meter(project_id, None), policy=rt.policy, max_tokens=16000)
    except BudgetExhausted as exc:
        rt.scheduler.pause_for_budget(project_id, None, exc.message)
        return
    rt.store.save_deliverable(project_id, deliverable)
    write_outputs(project, deliverable, tasks)
    rt.scheduler.move_project(project_id, ProjectStatus.COMPLETED)

"""Integration: merge every task's result into one deliverable and write it to disk."""

from __future__ import annotations

import logging

from orchestrator.constants import ProjectStatus, Role, TaskStatus
from orchestrator.deliverable import write_outputs
from orchestrator.errors import TaskNotReady
from orchestrator.llm.structured import ask_structured
from orchestrator.models import Deliverable
from orchestrator.prompts import ORCHESTRATOR_SYSTEM, integration_prompt
from orchestrator.runtime import Runtime
from orchestrator.scheduler import ProjectClaim

log = logging.getLogger(__name__)


def integrate_project(rt: Runtime, project_id: str) -> None:
    """Write the deliverable once every task completed; a duplicate message is NotRunnable."""
    rt.holding_project(project_id, ProjectStatus.INTEGRATING, lambda c: _integrate(rt, c))


def _integrate(rt: Runtime, claim: ProjectClaim) -> None:
    project = rt.store.project(claim.project_id)
    tasks = rt.store.tasks(project.id)
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
    deliverable = ask_structured(
        rt.provider, role=Role.INTEGRATE, model=rt.model_for(Role.INTEGRATE),
        system=ORCHESTRATOR_SYSTEM,
        prompt=integration_prompt(project.request, str(project.project_type), results),
        schema=Deliverable, schema_name="deliverable", hints=hints,
        meter=rt.meter(project.id), policy=rt.policy, max_tokens=16000)
    # Saved (fenced) before the files are written: a stale attempt writes nothing.
    rt.durably("deliverable", lambda: rt.scheduler.save_deliverable(claim, deliverable))
    write_outputs(project, deliverable, tasks)
    rt.durably("completion", lambda: rt.scheduler.move_claimed(claim, ProjectStatus.COMPLETED))

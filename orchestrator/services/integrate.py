"""Integration: merge every task's result into one deliverable and write it to disk.

The orchestrator reads a summary of each task (with its files and review verdicts) in its
prompt and the rest through its tools (the knowledge base, any task's whole output).
"""

from __future__ import annotations

import logging

from orchestrator.agent.prompts import shared_prefix
from orchestrator.agent.runtime import Runtime
from orchestrator.agent.tools import READ_ONLY_TOOLS, ProjectTools
from orchestrator.domain import prompt_labels as L
from orchestrator.domain.constants import ProjectStatus, Role, TaskStatus
from orchestrator.domain.errors import TaskNotReady
from orchestrator.domain.models import (
    CheckResult,
    Deliverable,
    ProjectRecord,
    ReviewRecord,
    TaskRecord,
)
from orchestrator.domain.prompts import ORCHESTRATOR_SYSTEM, integration_prompt
from orchestrator.llm.base import TextBlock
from orchestrator.llm.structured import Conversation, Limits
from orchestrator.services.deliverable import UnwrittenOutputs, write_outputs
from orchestrator.services.planner import project_conversation
from orchestrator.services.report import collect, write_report
from orchestrator.state.transitions import ProjectClaim

log = logging.getLogger(__name__)

INTEGRATION_TURNS = 4


def integrate_project(rt: Runtime, project_id: str) -> None:
    """Write the deliverable once every task completed; a duplicate message is NotRunnable."""
    rt.holding_project(project_id, ProjectStatus.INTEGRATING, lambda c: _integrate(rt, c))


def _result(task: TaskRecord, reviews: list[ReviewRecord]) -> dict[str, object]:
    output = task.output
    last = reviews[-1] if reviews else None
    return {"task": task.index, "title": task.title, "agent": task.agent_type.value,
            "summary": output.summary if output else "",
            "files": [a.path for a in output.artifacts] if output else [],
            "review": (f"{last.verdict} by {last.reviewer} after {len(reviews)} round(s)"
                       f"{checks_said(last.checks)}") if last else "not reviewed"}


def checks_said(checks: list[CheckResult]) -> str:
    failed = [c for c in checks if c.ok is False]
    if not checks:
        return ""
    said = f"; checks: {sum(c.ok is True for c in checks)} of {len(checks)} passed"
    return said + (f", failing: {', '.join(f'{c.check} of {c.path}' for c in failed)}"
                   if failed else "")


def _integrate(rt: Runtime, claim: ProjectClaim) -> None:
    project = rt.store.project(claim.project_id)
    tasks = rt.store.tasks(project.id)
    waiting = [t.title for t in tasks if t.status is not TaskStatus.COMPLETED]
    if waiting:
        raise TaskNotReady(f"integration waits for: {', '.join(waiting)}")
    reviews = rt.store.reviews(project.id)
    deliverable = Conversation(
        rt.provider, role=Role.INTEGRATE, model=rt.model_for(Role.INTEGRATE),
        system=[shared_prefix(project), TextBlock(text=ORCHESTRATOR_SYSTEM)],
        prompt=[TextBlock(text=integration_request(project, tasks, reviews))], schema=Deliverable,
        schema_name="deliverable", meter=rt.meter(project.id), policy=rt.policy,
        max_tokens=16000, tools=ProjectTools(rt.store, project.id, None, list(READ_ONLY_TOOLS)),
        limits=Limits(turns=INTEGRATION_TURNS, tokens=rt.settings.agent_max_tokens),
        effort=rt.effort_for(Role.INTEGRATE), progress=rt.activity(project.id, None),
        journal=rt.journal(project.id, None, project_conversation(project, "integrate"))
    ).answer()
    # Saved (fenced) before the files are written: a stale attempt writes nothing.
    rt.durably("deliverable", lambda: rt.scheduler.save_deliverable(claim, deliverable))
    try:
        write_outputs(project, deliverable, tasks, reviews, rt.store.screenshots(project.id))
    except UnwrittenOutputs as exc:
        # The deliverable is stored: nothing is paid again. The reconciler writes it out once
        # there is room (`write_stored`), or `agency resume ID --output DIR` elsewhere.
        reason = unwritten_reason(project.id, exc)
        log.warning("project %s: %s", project.id, reason)
        rt.durably("needs attention", lambda: rt.scheduler.move_claimed(
            claim, ProjectStatus.NEEDS_ATTENTION, reason))
        return
    _write_report(rt, project.id, deliverable)
    rt.durably("completion", lambda: rt.scheduler.move_claimed(claim, ProjectStatus.COMPLETED))


def unwritten_reason(project_id: str, exc: UnwrittenOutputs) -> str:
    """What a person reads in `status`: the path, the space, and what to do."""
    return (f"the deliverable is stored, but its folder {exc.describe()}; it is written out "
            "by itself once there is room, while an orchestrator worker runs (embedded: "
            f"agency resume {project_id}), with no model call; or elsewhere now with: agency "
            f"resume {project_id} --output DIR")


def write_stored(rt: Runtime, project_id: str) -> bool:
    """Write out the stored deliverable of a project whose folder could not be written, and
    complete it; False while the folder still cannot be written (its reason is updated
    with the space there now). No model call."""
    project = rt.store.project(project_id, usage=False)
    if project.status is not ProjectStatus.NEEDS_ATTENTION or project.deliverable is None:
        return False
    try:
        write_outputs(project, project.deliverable, rt.store.tasks(project_id),
                      rt.store.reviews(project_id), rt.store.screenshots(project_id),
                      only_if_room=True)
    except UnwrittenOutputs as exc:
        reason = unwritten_reason(project_id, exc)
        if reason != project.error:
            rt.store.set_error(project_id, reason)
        return False
    _write_report(rt, project_id, project.deliverable)
    moved = rt.scheduler.written_out(project_id, f"deliverable written to {project.output_dir}")
    if moved:
        log.info("project %s: deliverable written to %s; completed", project_id,
                 project.output_dir)
    return bool(moved)


def _write_report(rt: Runtime, project_id: str, deliverable: Deliverable) -> None:
    """report.html beside the deliverable, showing the project as completed: the completion is
    recorded next, and an embedded `agency run` stops its workers as soon as it sees it. A
    report that cannot be written costs a log line, never the deliverable."""
    try:
        project = rt.store.project(project_id).model_copy(update={
            "deliverable": deliverable, "status": ProjectStatus.COMPLETED,
            "finished_at": rt.store.clock()})
        write_report(collect(rt.store, project))
    except Exception:
        log.exception("project %s: could not write report.html", project_id)


def integration_request(project: ProjectRecord, tasks: list[TaskRecord],
                        reviews: dict[str, list[ReviewRecord]]) -> str:
    """The integration prompt, with the success criteria and how to read the rest."""
    criteria = project.analysis.success_criteria if project.analysis else []
    return (integration_prompt(project.request, str(project.project_type),
                               [_result(t, reviews.get(t.id, [])) for t in tasks])
            + "\n\n" + L.SUCCESS_CRITERIA + "\n".join(L.BULLET + c for c in criteria)
            + "\n\nEach task's whole output: read_task_output(index); anything else in the "
            "project: search_knowledge(query).")

"""Plan approval: a project that waits after planning until a person approves or rejects it.

A project waits in `awaiting_approval` when it was submitted with `agency run --approve-plan`,
or when its plan's estimated cost is above AGENCY_APPROVAL_ABOVE_USD. Nothing of it is sent to
an agent queue until `approve`; `reject` cancels it. Both are compare-and-set transitions (a
second approval, or one racing a rejection, is refused with the project's status) and both are
recorded in the project's events with the operator's OS user.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path

from celery import Celery

from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import ProjectStatus
from orchestrator.domain.errors import BadInput
from orchestrator.domain.models import Plan, ProjectRecord
from orchestrator.domain.settings import Settings

# How a task's estimated tokens split between input and output, for the estimate: agents read
# far more (the brief, their inputs, tool results) than they write.
INPUT_SHARE = 0.75


@dataclass(frozen=True)
class Estimate:
    tokens: int
    cost_usd: float
    per_task: list[tuple[int, float]]  # (tokens, cost) by task index
    model: str


def price_per_token(settings: Settings, model: str) -> float:
    """Dollars per token of the model (longest model-id prefix of the price table), input and
    output mixed as INPUT_SHARE says."""
    names = [n for n in settings.prices if model.startswith(n)]
    if not names:
        return 0.0
    price = settings.prices[max(names, key=len)]
    return (INPUT_SHARE * price[0] + (1 - INPUT_SHARE) * price[1]) / 1_000_000


def estimate(settings: Settings, plan: Plan) -> Estimate:
    """What the plan's tasks are expected to cost: their estimated tokens at the agent model's
    prices (planning, reviews and integration come on top)."""
    rate = price_per_token(settings, settings.agent_model)
    per_task = [(t.estimated_tokens, t.estimated_tokens * rate) for t in plan.tasks]
    return Estimate(tokens=sum(t for t, _ in per_task), cost_usd=sum(c for _, c in per_task),
                    per_task=per_task, model=settings.agent_model)


def needs_approval(settings: Settings, project: ProjectRecord, plan: Plan) -> bool:
    """Whether a freshly planned project waits for a person."""
    limit = settings.approval_above_usd
    return project.needs_approval or (limit is not None
                                      and estimate(settings, plan).cost_usd > limit)


def threshold_reason(settings: Settings, plan: Plan) -> str:
    return (f"waits for approval: estimated ${estimate(settings, plan).cost_usd:.2f}, above "
            f"AGENCY_APPROVAL_ABOVE_USD=${settings.approval_above_usd:.2f}")


def operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container)
        return "unknown"


def approve(rt: Runtime, app: Celery, project_id: str) -> None:
    """Start a waiting project: its tasks go to their queues."""
    from orchestrator.services.dispatch import dispatch

    _move(rt, project_id, ProjectStatus.RUNNING, f"approved by {operator()}")
    dispatch(rt, app, project_id)


def reject(rt: Runtime, project_id: str, reason: str) -> None:
    """End a waiting project without running anything."""
    reason = reason.strip()
    if not reason:
        raise BadInput("--reason must say why the plan is rejected")
    _move(rt, project_id, ProjectStatus.CANCELLED, f"rejected by {operator()}: {reason}")


def edit(rt: Runtime, project_id: str, path: Path) -> Plan:
    """Replace a waiting plan with a plan file, validated like any plan: a bad file, a cycle, a
    dangling dependency or an unknown agent type is refused and the waiting plan stays."""
    from orchestrator.domain import dag
    from orchestrator.domain.intake import load_plan_file

    loaded = load_plan_file(path)
    plan = Plan.model_validate(loaded.model_dump(exclude={"request", "project_type"}))
    graph = dag.validate_plan(plan)
    detail = f"plan edited by {operator()}: {len(plan.tasks)} tasks from {path.name}"
    replaced = rt.scheduler.replace_plan(project_id, plan, graph, dag.schedule(graph), detail)
    if not replaced:
        status = replaced.found.value if replaced.found else "?"
        raise BadInput(f"project {project_id} is {status}; only a plan awaiting approval can "
                       "be edited")
    project = rt.store.project(project_id, usage=False)
    if project.deadline is not None:  # spread the project's deadline over the new tasks
        from orchestrator.domain.deadlines import task_deadlines

        tasks = rt.store.tasks(project_id)
        spread = task_deadlines(graph, project.deadline, project.created_at)
        rt.scheduler.set_deadlines(project_id, project.deadline,
                                   {t.id: spread[t.index] for t in tasks})
    return plan


def _move(rt: Runtime, project_id: str, to: ProjectStatus, detail: str) -> None:
    decided = rt.scheduler.decide_plan(project_id, to, detail)
    if not decided:
        status = decided.found.value if decided.found else "?"
        raise BadInput(f"project {project_id} is {status}, not awaiting approval")

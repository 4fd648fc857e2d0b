"""Thin Celery tasks: take ids, call a service."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from orchestrator.agent.review import REVIEWERS, run_review
from orchestrator.agent.runner import run_agent_task
from orchestrator.agent.runtime import Runtime, get_runtime
from orchestrator.domain.constants import (
    INTEGRATE_TASK,
    PLAN_TASK,
    AgentType,
    agent_task_name,
    review_task_name,
)
from orchestrator.domain.errors import AgencyError, Parked
from orchestrator.interfaces.celery_app import app
from orchestrator.services.dispatch import release, send_resume, send_review
from orchestrator.services.integrate import integrate_project
from orchestrator.services.planner import plan_project
from orchestrator.state.store import progress_text
from workers.base import AgencyTask, node_name, send_progress

log = logging.getLogger(__name__)


def _progress(rt: Runtime, project_id: str) -> str:
    """What Flower shows as a task's result: its project and how far it is (the work is done
    and saved: a store that is away now only costs the figures)."""
    try:
        return rt.store.progress(project_id)
    except AgencyError:
        return f"project {project_id[:8]}"


@app.task(name=PLAN_TASK, base=AgencyTask, bind=True)
def plan(self: Task, project_id: str) -> str:  # type: ignore[type-arg]
    """Analyze, decompose and dispatch a project."""
    rt = get_runtime()
    plan_project(rt, self.app, project_id)
    return f"{_progress(rt, project_id)}, planned"


@app.task(name=INTEGRATE_TASK, base=AgencyTask, bind=True)
def integrate(self: Task, project_id: str) -> str:  # type: ignore[type-arg]
    """Merge the results into the deliverable."""
    rt = get_runtime()
    integrate_project(rt, project_id)
    return f"{_progress(rt, project_id)}, deliverable written"


def _agent_task(agent: AgentType) -> Any:
    def run(self: Task, project_id: str, task_id: str, title: str) -> str:  # type: ignore[type-arg]
        agent_type = agent

        def progress(step: str) -> None:
            # Not a `task-*` event: Flower (and Celery's event state) would make every running
            # task's state PROGRESS; as `agency-progress` the task stays STARTED.
            try:
                send_progress(self, project_id=project_id, task_id=task_id, step=step)
            except Exception as exc:  # progress is a courtesy; the broker may be away
                log.debug("progress event not sent: %s", exc)

        rt = get_runtime()
        outcome = run_agent_task(rt, task_id, worker=node_name(self), progress=progress)
        if isinstance(outcome, Parked):
            # Its wait is in the store; the canvas goes no further (what the task releases
            # once it completes is sent by the store). A review is its reviewer's message.
            round_ = outcome.review_round
            if round_ is not None:
                rt.durably("review", lambda: send_review(
                    rt, self.app, project_id, task_id, round_, agent_type))
            assert isinstance(self, AgencyTask)
            self.ignore(f"parked: waits for {outcome.waits_for}")
        completion = outcome
        if completion is not None:
            # The completion is committed: what it released must be sent even if the
            # database blinks now (a retry of this message would find the task done).
            rt.durably("release", lambda: release(rt, self.app, project_id, completion))
            if completion.total is not None:
                return progress_text(project_id, completion.done or 0, completion.total)
        return _progress(rt, project_id)

    run.__name__ = f"run_{agent.value}"
    run.__doc__ = f"Run one {agent.value} task."
    return app.task(name=agent_task_name(agent), base=AgencyTask, bind=True)(run)


for _agent in AgentType:  # registered with the app as they are made
    _agent_task(_agent)


def _review_task(reviewer: str) -> Any:
    def run(self: Task, project_id: str, task_id: str, round: int) -> str:  # type: ignore[type-arg]
        rt = get_runtime()
        reviewed = run_review(rt, task_id, round, worker=node_name(self))
        if reviewed.completion is not None:
            completion = reviewed.completion
            rt.durably("release", lambda: release(rt, self.app, project_id, completion))
            return f"{_progress(rt, project_id)}, task {task_id[:8]} passed review round {round}"
        if reviewed.revise:
            rt.durably("revision", lambda: send_resume(rt, self.app, project_id, task_id))
        return f"{_progress(rt, project_id)}, task {task_id[:8]} sent back after round {round}"

    run.__name__ = f"review_by_{reviewer}"
    run.__doc__ = f"Review one task's output (on the {reviewer} queue)."
    return app.task(name=review_task_name(reviewer), base=AgencyTask, bind=True)(run)


for _reviewer in REVIEWERS:
    _review_task(_reviewer)

"""Every operator action, against a live in-process worker: approve, reject, edit the plan,
pause, resume, retry, cancel, answer a question, add tasks, set the budget.

Each is a method of `services.operator.Operator`, as the CLI calls it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from orchestrator.agent import runner
from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import (
    BUDGET_HEADROOM,
    PLAN_TASK,
    SPEND_RATIO,
    AgentType,
    ProjectStatus,
    TaskStatus,
    agent_task_name,
)
from orchestrator.domain.errors import BadInput, PlanError
from orchestrator.services.operator import Operator
from orchestrator.state.transitions import ProjectClaim
from tests.harness import Agency, Asking, wait_for
from tests.inprocess.scenarios import ODD, started_after_dependencies
from workers import tasks

WRITER = agent_task_name(AgentType.CONTENT_WRITER)


def plan_file(tmp_path: Path, tasks: list[dict[str, Any]], name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"tasks": tasks}))
    return path


def op(agency: Agency) -> Operator:
    return Operator(agency.rt, agency.app, "tester")


def titles(agency: Agency, project_id: str) -> list[str]:
    return [t.title for t in agency.rt.store.tasks(project_id)]


def test_reject_ends_a_waiting_plan_and_nothing_runs(agency: Agency) -> None:
    project_id = agency.submit(needs_approval=True)
    agency.wait(project_id, ProjectStatus.AWAITING_APPROVAL)
    with pytest.raises(BadInput, match="--reason"):
        op(agency).reject(project_id, "  ")
    op(agency).reject(project_id, "too dear")
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.CANCELLED
    assert {t.status for t in agency.rt.store.tasks(project_id)} == {TaskStatus.CANCELLED}
    with pytest.raises(BadInput, match="not awaiting approval"):
        op(agency).approve(project_id)
    agency.drain()
    assert [o.name for o in agency.outcomes.seen] == [PLAN_TASK]
    assert any("rejected by" in (e["detail"] or "") and "too dear" in e["detail"]
               for e in agency.rt.store.events(project_id))


def test_an_edited_plan_replaces_the_waiting_one_and_is_what_runs(agency: Agency,
                                                                   tmp_path: Path) -> None:
    project_id = agency.submit(needs_approval=True)
    agency.wait(project_id, ProjectStatus.AWAITING_APPROVAL)
    planned = titles(agency, project_id)
    cycle = plan_file(tmp_path, [{"title": "A", "agent_type": "marketing", "dependencies": [1]},
                                 {"title": "B", "agent_type": "marketing", "dependencies": [0]}],
                      "cycle.json")
    with pytest.raises(PlanError):
        op(agency).edit_plan(project_id, cycle)
    assert titles(agency, project_id) == planned
    # A bigger plan gets the budget it needs (no --budget was given).
    big = plan_file(tmp_path, [{"title": f"T{i}", "agent_type": "marketing",
                                "estimated_tokens": 100_000} for i in range(20)], "big.json")
    op(agency).edit_plan(project_id, big)
    spent = agency.rt.store.project(project_id).tokens_used
    assert agency.rt.store.project(project_id).budget_tokens == (
        spent + 20 * 100_000 * SPEND_RATIO * BUDGET_HEADROOM)
    edited = plan_file(tmp_path, [t.model_dump() for t in ODD.tasks])
    op(agency).edit_plan(project_id, edited)
    assert titles(agency, project_id) == ["Brief", "Copy"]
    assert agency.rt.store.project(project_id).budget_tokens < 20 * 100_000  # fits again
    op(agency).approve(project_id)
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    with pytest.raises(BadInput, match="only a plan awaiting approval"):
        op(agency).edit_plan(project_id, edited)


def test_a_paused_project_finishes_its_running_task_starts_nothing_and_resumes(
        agency: Agency) -> None:
    gate = agency.gate("Brief")
    project_id = agency.submit(plan=ODD, project_type="website")
    gate.held()
    op(agency).pause(project_id)
    with pytest.raises(BadInput, match="only a running project"):
        op(agency).pause(project_id)
    gate.open()
    # The brief finishes; the copy it released is refused by the worker while paused.
    wait_for("the copy's message to be refused",
             lambda: [o for o in agency.outcomes.seen if o.name == WRITER and o.state == "IGNORED"])
    project = agency.wait(project_id, ProjectStatus.PAUSED)
    brief, copy = agency.rt.store.tasks(project_id)
    assert (brief.status, copy.status) == (TaskStatus.COMPLETED, TaskStatus.PENDING)
    assert copy.attempts == 0
    assert op(agency).resume(project_id) == "resumed after a pause"
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    assert started_after_dependencies(agency.rt.store.tasks(project_id))


def test_retry_runs_a_failed_task_again_then_the_tasks_that_wait_on_it(
        agency: Agency, monkeypatch: pytest.MonkeyPatch) -> None:
    real = runner.work

    def fails_once(rt: Any, claim: Any, found: Any, progress: Any) -> Any:
        if found.task.title == "Brief" and claim.attempt == 1:
            raise RuntimeError("the agent fell over")
        return real(rt, claim, found, progress)

    monkeypatch.setattr(runner, "work", fails_once)
    project_id = agency.submit(plan=ODD, project_type="website")
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.NEEDS_ATTENTION
    brief, copy = agency.rt.store.tasks(project_id)
    assert brief.status is TaskStatus.FAILED and "the agent fell over" in (brief.error or "")
    assert copy.status is TaskStatus.BLOCKED and "waits on failed task 0" in (copy.error or "")
    with pytest.raises(BadInput, match="has not failed"):
        op(agency).retry(copy.id)
    assert op(agency).retry(brief.id) == project_id
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    brief, copy = agency.rt.store.tasks(project_id)
    assert (brief.attempts, copy.attempts) == (2, 1)


def test_resume_carries_on_a_project_whose_planning_failed(
        agency: Agency, monkeypatch: pytest.MonkeyPatch) -> None:
    real, failed = tasks.plan_project, []

    def fails_once(rt: Runtime, app: Celery, project_id: str) -> None:
        if not failed:
            failed.append(project_id)
            rt.holding_project(project_id, ProjectStatus.PLANNING, broken)
        real(rt, app, project_id)

    monkeypatch.setattr(tasks, "plan_project", fails_once)
    project_id = agency.submit()
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.FAILED and "the planner fell over" in (
        project.error or "")
    said = op(agency).resume(project_id)
    assert said == "resumed; 0 failed task(s) back in the queue"
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    assert [o.state for o in agency.outcomes.seen if o.name == PLAN_TASK] == [
        "FAILURE", "SUCCESS"]


def broken(claim: ProjectClaim) -> None:
    raise RuntimeError("the planner fell over")


def test_cancel_stops_what_has_not_started(agency: Agency) -> None:
    gate = agency.gate("Brief")
    project_id = agency.submit(plan=ODD, project_type="website")
    gate.held()
    op(agency).cancel(project_id)
    with pytest.raises(BadInput, match="already ended"):
        op(agency).cancel(project_id)
    gate.open()
    wait_for("the brief's attempt to end", lambda: [
        o for o in agency.outcomes.seen if o.name == agent_task_name(AgentType.PROJECT_MANAGER)])
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.CANCELLED
    _, copy = agency.rt.store.tasks(project_id)
    assert copy.status is TaskStatus.CANCELLED and copy.attempts == 0
    # Its message (the chain's next link) is refused: the task never ran.
    assert {o.state for o in agency.outcomes.seen if o.name == WRITER} <= {"IGNORED"}


def test_an_answered_question_reaches_the_agent(agency: Agency,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    asking = Asking(agency.rt.provider, "Copy", "Which tone?", "friendly")
    agency.rt.provider = asking
    project_id = agency.submit(plan=ODD, project_type="website")
    question = wait_for("the question", lambda: agency.rt.store.open_questions(project_id))[0]
    _, copy = agency.rt.store.tasks(project_id)
    assert question["task_id"] == copy.id and question["question"] == "Which tone?"
    assert copy.status is TaskStatus.NEEDS_INPUT
    with pytest.raises(BadInput, match="the answer is empty"):
        op(agency).answer(copy.id, "   ")
    op(agency).answer(copy.id, "Warm and local")
    with pytest.raises(BadInput, match="has no open question"):
        op(agency).answer(copy.id, "Again")
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    assert asking.replies == {"The person answered: Warm and local"}
    assert agency.rt.store.open_questions(project_id) == []


def test_tasks_added_to_a_running_project_run_after_what_they_depend_on(
        agency: Agency, tmp_path: Path) -> None:
    gate = agency.gate("Brief")
    project_id = agency.submit(plan=ODD, project_type="website")
    gate.held()
    brief_id = agency.rt.store.tasks(project_id)[0].id
    unknown = plan_file(tmp_path, [{"title": "X", "agent_type": "marketing",
                                    "dependencies": ["ffffffff"]}], "unknown.json")
    with pytest.raises(BadInput):
        op(agency).add_tasks(project_id, unknown)
    faq = plan_file(tmp_path, [{"title": "FAQ", "agent_type": "content_writer",
                                "dependencies": [brief_id[:8]], "deliverables": ["faq"]}])
    [added] = op(agency).add_tasks(project_id, faq)
    assert (added.index, added.status, added.dependencies) == (2, TaskStatus.BLOCKED, [brief_id])
    gate.open()
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    tasks = agency.rt.store.tasks(project_id)
    assert [t.title for t in tasks] == ["Brief", "Copy", "FAQ"]
    assert started_after_dependencies(tasks)


def test_a_spent_budget_pauses_the_project_until_a_bigger_one_is_set(agency: Agency) -> None:
    project_id = agency.submit(budget=1)
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.BUDGET_EXHAUSTED and project.tokens_used > 1
    with pytest.raises(BadInput, match="the budget is spent"):
        op(agency).set_budget(project_id, None)
    with pytest.raises(BadInput, match="is not above"):
        op(agency).set_budget(project_id, project.tokens_used)
    op(agency).set_budget(project_id, 10_000_000)
    assert agency.rt.store.project(project_id).budget_tokens == 10_000_000
    op(agency).resume(project_id)
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error

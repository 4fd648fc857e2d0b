"""The base task's one error policy (workers/base.py), as the worker applies it: each kind of
error a service raises ends the message as Celery's IGNORED, RETRY or FAILURE and moves the
store as the policy says. The thin tasks' services are replaced by ones that raise."""

from __future__ import annotations

import pytest
from celery import Celery
from celery.exceptions import Retry

from orchestrator.agent import runner
from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import PLAN_TASK, ProjectStatus, TaskStatus
from orchestrator.domain.errors import (
    AgencyError,
    BudgetExhausted,
    HeldElsewhere,
    NotFound,
    NotRunnable,
    PlanError,
    Stale,
    StoreUnavailable,
    TaskNotReady,
)
from orchestrator.services.canvas import agent_signature
from tests.harness import Agency
from tests.inprocess.scenarios import ODD, planner_failing, planner_raising, work_raising
from workers import tasks
from workers.base import AgencyTask


@pytest.mark.parametrize("exc", [NotRunnable("not now"), TaskNotReady("waits"),
                                 Stale("fenced out"), NotFound("no such project")],
                         ids=lambda e: type(e).__name__)
def test_a_message_that_must_not_run_is_ignored_and_changes_nothing(
        agency: Agency, monkeypatch: pytest.MonkeyPatch, exc: AgencyError) -> None:
    monkeypatch.setattr(tasks, "plan_project", planner_raising(exc))
    project_id = agency.submit()
    outcome = agency.outcomes.first(project_id)
    assert (outcome.state, outcome.exc) == ("IGNORED", None)
    assert agency.rt.store.project(project_id).status is ProjectStatus.PENDING


def test_a_duplicate_of_running_work_waits_a_quarter_lease_and_tries_again(
        agency: Agency, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "plan_project", planner_raising(HeldElsewhere("held")))
    project_id = agency.submit()
    outcome = agency.outcomes.first(project_id)
    assert outcome.state == "RETRY" and isinstance(outcome.exc, Retry)
    assert isinstance(outcome.exc.exc, HeldElsewhere)
    assert outcome.exc.when == agency.rt.settings.lease_seconds / 4


def test_an_unreachable_store_before_a_claim_is_retried_until_it_is_back(
        agency: Agency, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AgencyTask, "store_retry_delay", 0.0)
    real, calls = tasks.plan_project, []

    def away_once(rt: Runtime, app: Celery, project_id: str) -> None:
        calls.append(project_id)
        if len(calls) == 1:
            raise StoreUnavailable("the database is away")
        real(rt, app, project_id)

    monkeypatch.setattr(tasks, "plan_project", away_once)
    project_id = agency.submit()
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    # (Sorted: the retry may finish before the first run's end is signalled.)
    assert sorted(o.state for o in agency.outcomes.of(project_id)) == ["RETRY", "SUCCESS"]


@pytest.mark.parametrize(("cause", "status"), [
    (Stale("a newer attempt took over"), ProjectStatus.PLANNING),
    (StoreUnavailable("the database is away"), ProjectStatus.PLANNING),
    (BudgetExhausted("token budget spent"), ProjectStatus.BUDGET_EXHAUSTED),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.value)
def test_a_claimed_planning_attempt_that_stops_is_ignored_and_leaves_the_project(
        agency: Agency, monkeypatch: pytest.MonkeyPatch, cause: AgencyError,
        status: ProjectStatus) -> None:
    """Stale: a newer attempt owns it; the store away: its lease expires and the reconciler
    sends it again; the budget spent: the project waits for a bigger one."""
    monkeypatch.setattr(tasks, "plan_project", planner_failing(cause))
    project_id = agency.submit()
    outcome = agency.outcomes.first(project_id)
    assert (outcome.state, outcome.exc) == ("IGNORED", None)
    project = agency.rt.store.project(project_id)
    assert project.status is status and project.attempts == 1
    if status is ProjectStatus.BUDGET_EXHAUSTED:
        assert project.error == "token budget spent"


@pytest.mark.parametrize(("cause", "reason"), [
    (PlanError("the plan has a cycle"), "the plan has a cycle"),
    (ValueError("bad value"), "ValueError: bad value"),
], ids=["AgencyError", "other"])
def test_a_claimed_planning_attempt_that_fails_fails_the_project_and_the_message(
        agency: Agency, monkeypatch: pytest.MonkeyPatch, cause: Exception,
        reason: str) -> None:
    monkeypatch.setattr(tasks, "plan_project", planner_failing(cause))
    project_id = agency.submit()
    outcome = agency.outcomes.first(project_id)
    assert outcome.state == "FAILURE" and outcome.exc is cause  # the cause, not its wrapper
    project = agency.rt.store.project(project_id)
    assert (project.status, project.error) == (ProjectStatus.FAILED, reason)


def test_an_agent_whose_budget_ran_out_puts_its_task_back_and_pauses_the_project(
        agency: Agency, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "work", work_raising(BudgetExhausted("token budget spent")))
    project_id = agency.submit(plan=ODD, project_type="website")
    project = agency.wait(project_id)
    assert (project.status, project.error) == (ProjectStatus.BUDGET_EXHAUSTED,
                                               "token budget spent")
    brief, _ = agency.rt.store.tasks(project_id)
    assert (brief.status, brief.attempts) == (TaskStatus.PENDING, 1)
    assert [o.state for o in agency.outcomes.seen if o.name != PLAN_TASK] == ["IGNORED"]


def test_an_agent_that_fails_fails_its_task_and_the_message(
        agency: Agency, monkeypatch: pytest.MonkeyPatch) -> None:
    cause = RuntimeError("the agent fell over")
    monkeypatch.setattr(runner, "work", work_raising(cause))
    project_id = agency.submit(plan=ODD, project_type="website")
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.NEEDS_ATTENTION
    brief, _ = agency.rt.store.tasks(project_id)
    assert (brief.status, brief.error) == (TaskStatus.FAILED,
                                           "RuntimeError: the agent fell over")
    [failed] = [o for o in agency.outcomes.seen if o.name != PLAN_TASK]
    assert failed.state == "FAILURE" and failed.exc is cause


def test_a_completed_task_is_never_run_again_whatever_is_redelivered(agency: Agency) -> None:
    gate = agency.gate("Copy")
    project_id = agency.submit(plan=ODD, project_type="website")
    gate.held()  # the brief completed; the project runs on
    brief, _ = agency.rt.store.tasks(project_id)
    again = agent_signature(agency.app, project_id, brief).apply_async().id
    assert agency.outcomes.first(again).state == "SUCCESS"
    assert agency.rt.store.task(brief.id).attempts == 1
    gate.open()
    assert agency.wait(project_id).status is ProjectStatus.COMPLETED
    # Once the project ended, a late copy of any of its messages is refused.
    late = agent_signature(agency.app, project_id, brief).apply_async().id
    assert agency.outcomes.first(late).state == "IGNORED"
    assert agency.rt.store.task(brief.id).attempts == 1

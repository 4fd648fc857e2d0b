"""Deadlines: parsing `--deadline`, spreading a project's over its tasks, what is at risk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.domain import dag
from orchestrator.domain.constants import (
    AgentType,
    Complexity,
    ProjectStatus,
    ProjectType,
    TaskPriority,
    TaskStatus,
)
from orchestrator.domain.deadlines import at_risk, parse_deadline, project_deadline, task_deadlines
from orchestrator.domain.errors import BadInput
from orchestrator.domain.models import Analysis, ProjectRecord, TaskRecord

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_deadlines_parse_as_times_or_durations() -> None:
    assert parse_deadline("90m", NOW) == NOW + timedelta(minutes=90)
    assert parse_deadline("6h", NOW) == NOW + timedelta(hours=6)
    assert parse_deadline("2d", NOW) == NOW + timedelta(days=2)
    assert parse_deadline("2026-12-01T17:00", NOW) == datetime(2026, 12, 1, 17, tzinfo=UTC)
    for bad in ("yesterday", "", "-2h", "2026-11-25T00:00", "0m", "3000000d",
                "9999-12-31T23:59"):
        with pytest.raises(BadInput):
            parse_deadline(bad, NOW)


def test_a_project_without_a_deadline_gets_its_estimate_from_its_creation() -> None:
    project = ProjectRecord(
        id="p", request="r", project_type=None, complexity=None,
        status=ProjectStatus.PLANNING, budget_tokens=None, analysis=None, plan=None,
        output_dir="out", error=None, created_at=NOW, updated_at=NOW + timedelta(days=1),
        finished_at=None)
    analysis = Analysis(
        project_type=ProjectType.CUSTOM, complexity=Complexity.SIMPLE, estimated_hours=4,
        required_agents=[AgentType.MARKETING], key_requirements=[], potential_risks=[],
        success_criteria=[], recommended_approach="")
    assert project_deadline(project, analysis) == NOW + timedelta(hours=6)  # 4 h x 1.5
    assert project_deadline(project, None) is None
    given = project.model_copy(update={"deadline": NOW + timedelta(hours=1)})
    assert project_deadline(given, analysis) == NOW + timedelta(hours=1)


def _graph(deps: list[list[int]], weights: list[int]) -> dag.Graph:
    return dag.Graph(deps=tuple(tuple(d) for d in deps), weights=tuple(weights))


def test_a_project_deadline_spreads_along_what_must_follow() -> None:
    # 0 -> 1 -> 3, 0 -> 2 -> 3; the critical path 0, 1, 3 is 10 + 20 + 10 = 40 tokens long.
    graph = _graph([[], [0], [0], [1, 2]], [10, 20, 5, 10])
    due = NOW + timedelta(hours=4)  # 40 tokens in 4 h: 6 minutes a token
    found = task_deadlines(graph, due, NOW)
    assert found[3] == due
    assert found[1] == due - timedelta(minutes=60)  # 10 tokens follow it
    assert found[2] == due - timedelta(minutes=60)
    assert found[0] == due - timedelta(minutes=180)  # 30 tokens follow it


def _task(index: int, deps: list[str], status: TaskStatus, tokens: int,
          deadline: datetime) -> TaskRecord:
    return TaskRecord(
        id=f"t{index}", project_id="p", index=index, title=f"T{index}", description="",
        agent_type=AgentType.MARKETING, priority=TaskPriority.NORMAL, estimated_tokens=tokens,
        deliverables=[], acceptance_criteria=[], on_critical_path=False, status=status,
        attempts=0, pending_deps=0, worker=None, output=None, error=None, queued_at=NOW,
        started_at=None, finished_at=None, dependencies=deps, deadline=deadline)


def test_tasks_are_at_risk_when_their_earliest_finish_is_late() -> None:
    graph = _graph([[], [0], [1]], [10, 10, 10])
    due = NOW + timedelta(minutes=30)  # a minute a token
    limits = task_deadlines(graph, due, NOW)
    tasks = [_task(0, [], TaskStatus.PENDING, 10, limits[0]),
             _task(1, ["t0"], TaskStatus.BLOCKED, 10, limits[1]),
             _task(2, ["t1"], TaskStatus.BLOCKED, 10, limits[2])]
    assert at_risk(tasks, due, NOW, NOW) == {}  # on time when nothing has slipped
    late = at_risk(tasks, due, NOW, NOW + timedelta(minutes=5))  # 5 minutes lost
    assert set(late) == {"t0", "t1", "t2"}
    assert late["t2"] == NOW + timedelta(minutes=35)
    done = [tasks[0].model_copy(update={"status": TaskStatus.COMPLETED}), *tasks[1:]]
    # Task 0 done after 8 minutes: 20 tokens left in 22 minutes, on time again.
    assert at_risk(done, due, NOW, NOW + timedelta(minutes=8)) == {}
    assert at_risk(tasks, None, NOW, NOW + timedelta(days=9)) == {}  # no deadline, no risk

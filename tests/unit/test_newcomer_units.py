"""The pieces behind the newcomer fixes (issue 16), without a process or a database."""

from __future__ import annotations

import pytest
from rich.console import Console

from orchestrator.domain.constants import MAX_BUDGET, AgentType, TaskPriority, TaskStatus
from orchestrator.domain.estimates import added_budget
from orchestrator.domain.intake import from_plan_json
from orchestrator.domain.models import Plan, PlanFile, TaskRecord
from orchestrator.interfaces.unserved import needed, warning
from orchestrator.interfaces.views import task_view


def _plan(*estimates: int) -> Plan:
    return Plan.model_validate({"tasks": [{"title": f"t{n}", "agent_type": "marketing",
                                           "estimated_tokens": e}
                                          for n, e in enumerate(estimates)]})


def test_added_tasks_get_budget_at_the_rate_the_plan_had() -> None:
    plan = _plan(1000, 3000, 2000)  # two planned (4000 estimated), one added
    assert added_budget(40_000, plan, 2) == 20_000
    assert added_budget(None, plan, 2) == 0  # no budget, nothing to grow
    assert added_budget(MAX_BUDGET - 5, plan, 2) == 5  # never past the largest budget


def test_plan_json_output_reads_back_as_the_plan_file_it_shows() -> None:
    shown = {"id": "p", "status": "awaiting_approval", "request": "r", "project_type": None,
             "estimate": {"tokens": 2, "cost_usd": 0.0, "model": "m"},
             "tasks": [{"index": 0, "id": "a1", "title": "A", "agent_type": "marketing",
                        "dependencies": [], "estimated_tokens": 1, "estimated_cost_usd": 0.0,
                        "on_critical_path": True, "description": "d", "deliverables": ["x"],
                        "acceptance_criteria": []},
                       {"index": 1, "id": "b2", "title": "B", "agent_type": "marketing",
                        "dependencies": ["a1"], "estimated_tokens": 1,
                        "estimated_cost_usd": 0.0, "on_critical_path": True}]}
    plan = PlanFile.model_validate(from_plan_json(shown))
    assert [t.dependencies for t in plan.tasks] == [[], [0]]
    assert plan.tasks[0].deliverables == ["x"] and plan.request == "r"
    written = {"tasks": [{"title": "A", "agent_type": "marketing"}]}
    assert from_plan_json(written) is written  # a plan file as written is left alone


def _task(index: int, title: str, status: TaskStatus) -> TaskRecord:
    return TaskRecord(id=f"{index:08d}-rest", project_id="p", index=index, title=title,
                      description="", agent_type=AgentType.FRONTEND_DEVELOPER,
                      priority=TaskPriority.NORMAL, estimated_tokens=1, deliverables=[],
                      acceptance_criteria=[], on_critical_path=False, status=status,
                      attempts=1, pending_deps=0, worker="frontend_developer@a-long-host",
                      output=None, error=None, queued_at=None, started_at=None,
                      finished_at=None)


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_the_task_view_fits_its_width_with_whole_statuses(width: int) -> None:
    tasks = [_task(0, "Sitemap, user flows and wireframes for every page", TaskStatus.COMPLETED),
             _task(1, "Checkout", TaskStatus.NEEDS_INPUT)]
    console = Console(width=width, record=True)
    console.print(task_view(tasks, width))
    lines = console.export_text().splitlines()
    assert max(len(line.rstrip()) for line in lines) <= width
    for task in tasks:
        row = next(line for line in lines if task.id[:8] in line)
        assert f" {task.status.value} " in row and task.title[:8] in row


def test_the_unserved_warning_names_the_queues_and_how_to_start_them() -> None:
    assert needed([]) == {"orchestrator"}
    assert needed([_task(0, "a", TaskStatus.COMPLETED), _task(1, "b", TaskStatus.PENDING)]) == {
        "frontend_developer"}
    assert needed([_task(0, "a", TaskStatus.COMPLETED)]) == {"orchestrator"}  # integration
    assert "python -m workers -Q orchestrator -n orchestrator@%h" in warning(["orchestrator"])
    assert "python -m workers fleet --queues marketing,qa_engineer" in warning(
        ["marketing", "qa_engineer"])

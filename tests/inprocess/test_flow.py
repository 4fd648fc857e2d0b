"""The core flow in one process: planning, agent tasks with their reviews, integration."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.agent.review import reviewer_for
from orchestrator.domain.constants import (
    INTEGRATE_TASK,
    PLAN_TASK,
    ProjectStatus,
    TaskStatus,
    agent_task_name,
    review_task_name,
)
from orchestrator.services.operator import Operator
from tests.harness import Agency
from tests.inprocess.scenarios import ODD, Start, started_after_dependencies


def test_planning_stores_the_tasks_and_their_edges_and_sends_no_agent_work(
        agency: Agency) -> None:
    project_id = agency.submit("Build a website for a bakery", needs_approval=True)
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.AWAITING_APPROVAL
    assert project.analysis is not None and project.plan is not None
    tasks = agency.rt.store.tasks(project_id)
    assert [t.index for t in tasks] == list(range(len(project.plan.tasks))) and len(tasks) >= 4
    ids = [t.id for t in tasks]
    for task, planned in zip(tasks, project.plan.tasks, strict=True):
        assert task.title == planned.title
        assert task.dependencies == [ids[i] for i in planned.dependencies]
    assert any(t.dependencies for t in tasks)
    # Roots are ready, the rest wait on their dependencies; nothing went to an agent queue.
    assert {t.status for t in tasks if not t.dependencies} == {TaskStatus.PENDING}
    assert {t.status for t in tasks if t.dependencies} == {TaskStatus.BLOCKED}
    assert [o.name for o in agency.outcomes.seen] == [PLAN_TASK]


def test_a_request_runs_to_its_deliverable_each_task_on_its_own_queue(agency: Agency) -> None:
    project_id = agency.submit("Build a website for a bakery")
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    tasks = agency.rt.store.tasks(project_id)
    assert all(t.status is TaskStatus.COMPLETED and t.attempts == 1 for t in tasks)
    assert started_after_dependencies(tasks)
    names = [o.name for o in agency.outcomes.seen]
    # One message each, in whatever order the worker's threads finished them: each task's
    # agent (which parks the task for its review) and its review, on the reviewer's queue.
    assert sorted(names) == sorted([PLAN_TASK, INTEGRATE_TASK,
                                    *(agent_task_name(t.agent_type) for t in tasks),
                                    *(review_task_name(reviewer_for(t.agent_type))
                                      for t in tasks)])
    agents = {agent_task_name(t.agent_type) for t in tasks}
    assert {o.state for o in agency.outcomes.seen if o.name in agents} == {"IGNORED"}
    assert {o.state for o in agency.outcomes.seen if o.name not in agents} == {"SUCCESS"}


def test_integration_writes_the_deliverable_beside_each_task_output(agency: Agency) -> None:
    project_id = agency.submit("Build a website for a bakery")
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    folder = Path(project.output_dir)
    payload = json.loads((folder / "deliverable.json").read_text())
    for key in ("executive_summary", "key_deliverables", "technical_details", "next_steps",
                "success_metrics", "appendix"):
        assert payload[key], key
    assert project.deliverable is not None
    assert payload["executive_summary"] == project.deliverable.executive_summary
    markdown = (folder / "deliverable.md").read_text()
    assert project.deliverable.executive_summary in markdown
    tasks = agency.rt.store.tasks(project_id)
    assert len(list((folder / "tasks").glob("*.md"))) == len(tasks)
    assert (folder / "report.html").is_file()


def test_a_reviewed_task_is_revised_and_passes_before_its_dependent_starts(
        agency: Agency) -> None:
    project_id = agency.submit(plan=ODD, project_type="website")
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    brief, copy = agency.rt.store.tasks(project_id)
    reviews = agency.rt.store.reviews(project_id)
    assert [r.verdict for r in reviews.get(brief.id, [])] == ["revise", "pass"]
    assert [r.reviewer for r in reviews.get(brief.id, [])] == ["orchestrator", "orchestrator"]
    assert [r.verdict for r in reviews.get(copy.id, [])] == ["pass"]
    assert reviews[copy.id][0].reviewer == "qa_engineer"
    assert brief.output is not None and "quantum" in brief.output.content.lower()
    # The dependent started once the brief had passed its last review.
    assert copy.started_at is not None and copy.started_at >= reviews[brief.id][-1].at
    assert started_after_dependencies([brief, copy])


def test_with_no_rounds_left_the_work_goes_on_with_its_notes(start: Start) -> None:
    agency = start(AGENCY_REVIEW_ROUNDS="0")
    project_id = agency.submit(plan=ODD, project_type="website")
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    brief, _ = agency.rt.store.tasks(project_id)
    assert [r.verdict for r in agency.rt.store.reviews(project_id).get(brief.id, [])] == ["revise"]
    deliverable = (Path(project.output_dir) / "deliverable.md").read_text()
    assert "accepted after the last round with open notes: Mentions quantum" in deliverable


def test_only_the_agent_types_the_settings_name_are_reviewed(start: Start) -> None:
    agency = start(AGENCY_REVIEWED_AGENTS="content_writer")
    project_id = agency.submit(plan=ODD, project_type="website")
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    site, copy = agency.rt.store.tasks(project_id)
    reviewers = {task_id: {r.reviewer for r in rounds}
                 for task_id, rounds in agency.rt.store.reviews(project_id).items()}
    # The unreviewed task's files are still checked, by the checks alone (no model review).
    assert reviewers[copy.id] == {"qa_engineer"}
    assert reviewers.get(site.id, {"checks"}) == {"checks"}


def test_a_project_waiting_for_approval_runs_once_approved(agency: Agency) -> None:
    project_id = agency.submit(needs_approval=True)
    agency.wait(project_id, ProjectStatus.AWAITING_APPROVAL)
    Operator(agency.rt, agency.app).approve(project_id)
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    assert started_after_dependencies(agency.rt.store.tasks(project_id))

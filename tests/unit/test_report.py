"""The report page, its pictures and the plan as text, on synthetic projects."""

from __future__ import annotations

import html.parser
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from celery import Celery

from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import AgentType, ProjectStatus, TaskPriority, TaskStatus
from orchestrator.domain.models import (
    AgentOutput,
    Artifact,
    CriterionCheck,
    Deliverable,
    DeliverableSection,
    ProjectRecord,
    ReviewRecord,
    TaskRecord,
    Tokens,
)
from orchestrator.interfaces.plan_text import canvas_text, mermaid, mermaid_label
from orchestrator.services.report import (
    REPORT_FILE,
    ReportData,
    Retry,
    collect,
    cost_by_agent,
    phases,
    render_report,
    write_report,
)
from orchestrator.services.report_svg import Bar, depths, lanes, layout, measured_chain, nice_step
from orchestrator.state.store import Store

T0 = datetime(2026, 1, 2, 9, 0, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def project(status: ProjectStatus = ProjectStatus.COMPLETED, **extra: Any) -> ProjectRecord:
    data: dict[str, Any] = {
        "id": "p-1234", "request": "Build a website for a bakery", "project_type": "website",
        "complexity": "simple", "status": status, "budget_tokens": 1000, "analysis": None,
        "plan": None, "output_dir": "/nonexistent", "error": None, "created_at": T0,
        "updated_at": T0, "finished_at": _at(10) if status is ProjectStatus.COMPLETED else None,
        "tokens": Tokens(input=100, output=50), "cost_usd": 0.25}
    return ProjectRecord.model_validate({**data, **extra})


def task(index: int, deps: list[int], start: float | None = None, end: float | None = None,
         status: TaskStatus = TaskStatus.COMPLETED, **extra: Any) -> TaskRecord:
    data: dict[str, Any] = {
        "id": f"t{index}", "project_id": "p-1234", "index": index, "title": f"Task {index}",
        "description": "", "agent_type": list(AgentType)[index % len(AgentType)],
        "priority": TaskPriority.NORMAL, "estimated_tokens": 1000, "deliverables": [],
        "acceptance_criteria": [], "on_critical_path": False, "status": status, "attempts": 1,
        "pending_deps": 0, "worker": "w1@host" if start is not None else None, "output": None,
        "error": None, "queued_at": None,
        "started_at": _at(start) if start is not None else None,
        "finished_at": _at(end) if end is not None else None,
        "dependencies": [f"t{d}" for d in deps], "tokens": Tokens(input=10, output=5),
        "cost_usd": 0.01}
    return TaskRecord.model_validate({**data, **extra})


def diamond() -> list[TaskRecord]:
    return [task(0, [], 0, 1, on_critical_path=True), task(1, [0], 1, 4, on_critical_path=True),
            task(2, [0], 1, 2, worker="w2@host"), task(3, [1, 2], 4, 5, on_critical_path=True)]


DELIVERABLE = Deliverable(
    executive_summary="All done.", key_deliverables=[DeliverableSection(title="Site",
                                                                       items=["Pages"])],
    technical_details=[], next_steps=[], success_metrics=[], appendix=[])


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def classes(page: str, name: str) -> list[dict[str, str | None]]:
    return [a for _, a in tags(page) if name in (a.get("class") or "").split()]


def test_a_project_with_no_tasks_yet_renders() -> None:
    page = render_report(ReportData(project=project(ProjectStatus.PLANNING), tasks=[]))
    assert "No tasks yet" in page and "No task has started yet" in page
    assert not classes(page, "node") and 'id="cost-by-agent"' in page
    assert "written at integration" in page


def test_a_finished_project_shows_graph_timeline_costs_and_links() -> None:
    tasks = [t.model_copy(update={"output": AgentOutput(summary="s", content="c", artifacts=[
        Artifact(path=f"site/page{t.index}.html", content="x")])}) for t in diamond()]
    page = render_report(ReportData(project=project(deliverable=DELIVERABLE), tasks=tasks))
    assert len(classes(page, "node")) == 4
    assert [a["data-index"] for a in classes(page, "critical") if "node" in
            (a["class"] or "")] == ["0", "1", "3"]
    assert {a["data-worker"] for a in classes(page, "gantt-row")} == {"w1@host", "w2@host"}
    assert len(classes(page, "edge")) == 4 and len(classes(page, "critical")) >= 5
    hrefs = {a["href"] for t, a in tags(page) if t == "a"}
    assert {f"artifacts/site/page{i}.html" for i in range(4)} <= hrefs
    assert {"tasks/00-task-0.md", "tasks/03-task-3.md", "deliverable.md"} <= hrefs
    assert not [h for h in hrefs if h and "://" in h]
    assert "All done." in page and 'id="cost-by-task"' in page
    assert "0 \u2192 1 \u2192 3 (5.00 s of run time)" in page


def test_failed_and_running_projects_render() -> None:
    failed = [task(0, [], 0, 1), task(1, [0], 1, 2, status=TaskStatus.FAILED, error="boom"),
              task(2, [1], status=TaskStatus.BLOCKED)]
    page = render_report(ReportData(project=project(ProjectStatus.NEEDS_ATTENTION,
                                                    error="task 1 failed"), tasks=failed))
    assert "task 1 failed" in page and len(classes(page, "status-failed")) >= 2
    assert 'id="failures"' in page and "boom" in page
    running = [task(0, [], 0, 1), task(1, [0], 1, status=TaskStatus.IN_PROGRESS)]
    page = render_report(ReportData(project=project(ProjectStatus.RUNNING), tasks=running,
                                    generated_at=_at(3)))
    bar = next(a for a in classes(page, "running") if "bar" in (a["class"] or "").split())
    assert bar["data-index"] == "1"


def test_hostile_strings_are_escaped_everywhere() -> None:
    evil = diamond()
    evil[0] = evil[0].model_copy(update={"title": HOSTILE, "worker": HOSTILE, "output":
                                         AgentOutput(summary="", content="", artifacts=[
                                             Artifact(path=f"{HOSTILE}.html", content="x")])})
    reviews = {"t0": [ReviewRecord(reviewer=HOSTILE, verdict="revise", round=1, attempt=1,
                                   notes=[CriterionCheck(criterion=HOSTILE, met=False,
                                                         note=HOSTILE)],
                                   summary="", at=T0)]}
    deliverable = DELIVERABLE.model_copy(update={"executive_summary": HOSTILE})
    page = render_report(ReportData(
        project=project(request=HOSTILE, error=HOSTILE, deliverable=deliverable), tasks=evil,
        reviews=reviews, retries=[Retry("t0", T0, HOSTILE)]))
    assert "<script" not in page.lower()
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 8
    assert mermaid_label(HOSTILE) == "#lt;script#gt;alert(1)#lt;/script#gt;"


def test_a_report_that_cannot_be_written_does_not_fail_integration(
        caplog: pytest.LogCaptureFixture) -> None:
    from orchestrator.services.integrate import _write_report

    class NoStore:
        @property
        def store(self) -> None:
            raise OSError("disk full")

    with caplog.at_level(logging.ERROR, logger="orchestrator.services.integrate"):
        _write_report(cast(Runtime, NoStore()), "p-1234", DELIVERABLE)
    assert "could not write report.html" in caplog.text


def test_write_report_creates_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "p-1234"
    path = write_report(ReportData(project=project(output_dir=str(folder)), tasks=diamond()))
    assert path == folder / REPORT_FILE and path.read_text().startswith("<!DOCTYPE html>")


def test_layout_columns_are_dependency_depth() -> None:
    tasks = [*diamond(), task(4, [0, 3])]
    assert depths(tasks) == {"t0": 0, "t1": 1, "t2": 1, "t3": 2, "t4": 3}
    place = layout(tasks)
    assert {place[f"t{i}"][0] for i in (1, 2)} == {1} and place["t1"] != place["t2"]


def test_measured_chain_follows_run_time() -> None:
    chain, took = measured_chain(diamond())
    assert chain == ["t0", "t1", "t3"] and took == 5.0
    assert measured_chain([task(0, [])]) == ([], 0.0)


def test_lanes_never_overlap_and_steps_are_round() -> None:
    bars = [Bar(0, 1, "a", "", ""), Bar(0.5, 2, "b", "", ""), Bar(3, 4, "c", "", "")]
    packed = lanes(bars, scale=100)
    assert [[b.label for b in lane] for lane in packed] == [["a", "c"], ["b"]]
    assert nice_step(3.7) == 0.5 and nice_step(120) == 20 and nice_step(0.01) == 0.002


def test_phases_come_from_project_status_events() -> None:
    def row(seconds: float, status: str | None, task_id: str | None = None) -> dict[str, Any]:
        return {"at": _at(seconds).isoformat(), "to_status": status, "task_id": task_id}

    events = [row(0, "pending"), row(0.1, "planning"), row(0.2, "planning"), row(1, "running"),
              row(2, "completed", "t0"), row(5, "integrating"), row(6, "completed")]
    found = phases(events)
    assert [(p.name, p.start, p.end) for p in found] == [
        ("planning", _at(0.1), _at(1)), ("integration", _at(5), _at(6))]
    assert phases(events[:-1])[-1].end is None


def test_mermaid_has_a_node_per_task_and_every_edge() -> None:
    tasks = diamond()
    tasks[2] = tasks[2].model_copy(update={"title": 'Say "hi" #1'})
    text = mermaid(tasks)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert len([x for x in lines if re.fullmatch(r'\s+t\d+\["[^"]*"\]', x)]) == 4
    assert '    t2["2: Say #quot;hi#quot; #35;1 (' in text
    assert {x.strip() for x in lines if "-->" in x} == {"t0 --> t1", "t0 --> t2",
                                                       "t1 --> t3", "t2 --> t3"}
    assert "    class t0,t1,t3 critical" in lines
    assert mermaid([]).startswith("flowchart LR\n")


def test_canvas_text_is_the_compiled_canvas() -> None:
    # Redis joins a flat chord natively (nothing connects until a result is read); so does
    # the embedded in-memory cache backend.
    app = Celery("report-test", set_as_current=False, backend="redis://127.0.0.1:1/0")
    assert canvas_text(app, "p-1", diamond()) == canvas_text(
        Celery("report-test", set_as_current=False, backend="cache+memory://"), "p-1", diamond())
    text = canvas_text(app, "p-1234", diamond())
    assert text.startswith("unit root (sent at dispatch):\n  chain(\n")
    assert "chord(" in text and "group(" in text and "#3 Task 3" in text
    assert text.rstrip().endswith("when the last task completes)")
    assert canvas_text(app, "p-1234", []).startswith("no tasks yet")
    # A backend that would poll a chord (`chord_unlock`): the store releases the join instead.
    polling = Celery("report-test", set_as_current=False)
    text = canvas_text(polling, "p-1234", diamond())
    assert "chord(" not in text and "unit headed by #3" in text


def test_collect_reads_retries_and_phases_from_the_store(sqlite_store: Store,
                                                         tmp_path: Path) -> None:
    sqlite_store.insert_project("p-5678", "A page", None, None, str(tmp_path / "out"))
    sqlite_store.note("p-5678", None, "retry", "rate limited; again in 2 s")
    data = collect(sqlite_store, sqlite_store.project("p-5678"))
    assert [(r.task_id, r.reason) for r in data.retries] == [(None, "rate limited; again in 2 s")]
    assert data.retries[0].at is not None and data.tasks == [] and data.phases == []
    page = render_report(data)
    assert "project (orchestrator calls)" in page and "rate limited; again in 2 s" in page


def test_the_cost_tables_show_thinking_as_part_of_output() -> None:
    thinking = Tokens(input=10, output=5, thinking=3)
    tasks = [task(0, [], 0, 1, tokens=thinking), task(1, [0], 1, 2, tokens=thinking)]
    data = ReportData(project=project(tokens=Tokens(input=30, output=12, thinking=7)),
                      tasks=tasks)
    agents = cost_by_agent(data)
    assert "<th class=num>output</th><th class=num>of it thinking</th>" in agents
    rows = [r for r in agents.split("<tr>") if r.startswith("<td>orchestrator")]
    # The orchestrator's own calls are the rest: 10 input, 2 output of which 1 thinking.
    assert rows and "<td class=num>10</td><td class=num>2</td><td class=num>1</td>" in rows[0]

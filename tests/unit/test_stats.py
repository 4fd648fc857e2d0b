"""Statistics and their suggestion rules on synthetic numbers; the offline model's advice;
the metrics families; the status table's short ids and errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.samples import Sample
from rich.console import Console

from agency_offline.ledger import NO_DATA, optimization
from agency_offline.model import OfflineProvider
from agency_offline.reading import read_metrics
from orchestrator.domain.constants import AgentType, Role, TaskPriority, TaskStatus
from orchestrator.domain.models import Optimization, TaskRecord
from orchestrator.domain.prompts import ORCHESTRATOR_SYSTEM, optimization_prompt
from orchestrator.interfaces.metrics import durations, ledger
from orchestrator.interfaces.stats import (
    QueueStats,
    Rate,
    TaskTiming,
    Usage,
    Window,
    costliest,
    percentile,
    queue_stats,
    rejections,
    retries,
    scale_out,
    timings,
    to_time,
    window,
)
from orchestrator.interfaces.views import task_table
from orchestrator.llm.base import CompletionRequest, Message, TextBlock
from orchestrator.llm.structured import ask_structured

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def queue(name: str = "frontend_developer", *, tasks: int = 10, mean: float = 10.0,
          wait: float = 0.0, concurrency: int = 4) -> QueueStats:
    return QueueStats(queue=name, tasks=tasks, busy_seconds=mean * tasks, mean_seconds=mean,
                      p95_seconds=mean, mean_wait_seconds=wait, wait_seconds=wait * tasks,
                      concurrency=concurrency, utilisation=0.5)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.95) == 0.0
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0


def test_times_from_either_database() -> None:
    assert to_time("2026-01-01T00:00:05.000000+00:00") == at(5)
    assert to_time(at(5)) == at(5)
    assert to_time("2026-01-01T00:00:05") == at(5)  # naive text is UTC
    assert to_time(None) is None


def test_a_task_is_ready_when_queued_and_its_dependencies_finished() -> None:
    rows = [
        {"id": "a", "project_id": "p", "idx": 0, "title": "A", "agent_type": "ux_designer",
         "status": "completed", "queued_at": at(0), "started_at": at(1), "finished_at": at(11)},
        # Queued with the chain at 0, but could only start when A finished at 11.
        {"id": "b", "project_id": "p", "idx": 1, "title": "B", "agent_type": "ux_designer",
         "status": "completed", "queued_at": at(0), "started_at": at(14), "finished_at": at(20)},
    ]
    a, b = timings(rows, [{"task_id": "b", "depends_on": "a"}])
    assert (a.wait, a.seconds) == (1.0, 10.0)
    assert (b.ready, b.wait, b.seconds) == (at(11), 3.0, 6.0)
    span = window([a, b])
    assert (span.start, span.end, span.seconds) == (at(0), at(20), 20.0)
    (ux,) = queue_stats([a, b], span, {"ux_designer": 2})
    assert (ux.tasks, ux.busy_seconds, ux.mean_seconds, ux.p95_seconds) == (2, 16.0, 8.0, 10.0)
    assert (ux.mean_wait_seconds, ux.wait_seconds) == (2.0, 4.0)
    assert ux.utilisation == pytest.approx(16.0 / (20.0 * 2))


def test_a_task_still_running_is_no_run_yet() -> None:
    task = TaskTiming(id="x", project_id="p", index=0, title="X", agent_type="marketing",
                      status="in_progress", ready=at(0), started=at(2), finished=None)
    (q,) = queue_stats([task], window([task]), {})
    assert (q.tasks, q.busy_seconds, q.mean_wait_seconds, q.concurrency) == (0, 0.0, 2.0, 1)


def test_scale_out_when_waits_are_long_relative_to_work() -> None:
    # 10 tasks waited 30 s each (300 task-seconds) over a 100 s window: 3 tasks waiting on
    # average; with 2 slots per worker that is 2 more workers.
    (s,) = scale_out([queue(wait=30.0, concurrency=2)], Window(at(0), at(100)))
    assert s.action == {"rule": "scale_out", "queue": "frontend_developer", "workers": 2,
                        "mean_wait_seconds": 30.0, "mean_seconds": 10.0,
                        "wait_seconds": 300.0, "window_seconds": 100.0, "concurrency": 2}
    assert s.text.startswith("scale out queue frontend_developer by 2 worker(s)")
    assert "ceil(300.0s waited / 100.0s window / 2 slots per worker)" in s.text


def test_scale_out_asks_for_at_least_one_worker_and_orders_by_need() -> None:
    found = scale_out([queue("a", wait=6.0, tasks=1), queue("b", wait=50.0, concurrency=1)],
                      Window(at(0), at(100)))
    assert [(s.action["queue"], s.action["workers"]) for s in found] == [("b", 5), ("a", 1)]


@pytest.mark.parametrize(("mean", "wait"), [(10.0, 4.9), (1.0, 0.9), (0.01, 0.2)])
def test_no_scale_out_for_short_waits(mean: float, wait: float) -> None:
    assert scale_out([queue(mean=mean, wait=wait)], Window(at(0), at(100))) == []


def test_the_costliest_prompt_per_task() -> None:
    agents = [Usage("marketing", calls=4, cost_usd=0.30, tasks=3),
              Usage("backend_developer", calls=4, cost_usd=0.25, tasks=1),
              Usage("orchestrator", calls=2, cost_usd=5.0, tasks=0)]
    (s,) = costliest(agents)
    assert s.action == {"rule": "costliest_prompt", "agent_type": "backend_developer",
                        "cost_per_task": 0.25, "tokens_per_task": 0.0, "tasks": 1}
    assert s.text.startswith("prompt of agent type backend_developer costs most: $0.2500 "
                             "per task")
    assert costliest([Usage("orchestrator", cost_usd=1.0)]) == []


def test_unpriced_calls_rank_by_tokens() -> None:
    from orchestrator.domain.models import Tokens

    agents = [Usage("ux_designer", tokens=Tokens(output=900), tasks=3),
              Usage("qa_engineer", tokens=Tokens(output=500), tasks=1)]
    (s,) = costliest(agents)
    assert s.action["agent_type"] == "qa_engineer" and s.action["tokens_per_task"] == 500.0


def test_review_rejections_above_the_threshold() -> None:
    found = rejections([Rate("content_writer", 1, 10), Rate("project_manager", 1, 2),
                        Rate("marketing", 1, 4), Rate("qa_engineer", 0, 0)])
    assert [s.action["agent_type"] for s in found] == ["project_manager", "marketing"]
    assert found[0].text == ("reviews of project_manager are rejected 50% of the time "
                             "(1 of 2): tighten its brief")
    assert found[0].action == {"rule": "review_rejections", "agent_type": "project_manager",
                               "rate": 0.5, "revise": 1, "reviews": 2}


def test_retries_above_the_threshold() -> None:
    found = retries([Rate("backend_developer", 3, 20), Rate("marketing", 1, 100),
                     Rate("ux_designer", 2, 0)])
    assert [s.action["agent_type"] for s in found] == ["backend_developer"]
    assert found[0].text.startswith("retries of backend_developer: 15% of calls (3 retries "
                                    "over 20 calls)")
    assert json.loads(json.dumps(found[0].action))["rate"] == 0.15


METRICS = {
    "utilisation": [{"queue": "frontend_developer", "tasks": 4, "busy_seconds": 80.0,
                     "utilisation": 0.8, "concurrency": 4, "mean_seconds": 20.0,
                     "p95_seconds": 30.0, "mean_wait_seconds": 12.0, "wait_seconds": 48.0}],
    "tokens_by_agent_type": [{"agent_type": "frontend_developer", "calls": 9,
                              "tokens": {"input": 100, "output": 200, "cache_read": 700,
                                         "cache_write": 0},
                              "total_tokens": 1000, "cost_usd": 0.4, "tasks": 4,
                              "cost_per_task": 0.1, "tokens_per_task": 250.0}],
    "review_rejection_rate": {"by_agent_type": [{"agent_type": "frontend_developer",
                                                 "revise": 1, "reviews": 4, "rate": 0.25}]},
    "slowest_queues": [{"queue": "frontend_developer", "tasks": 4, "busy_seconds": 80.0,
                        "utilisation": 0.8, "concurrency": 4, "mean_seconds": 20.0,
                        "p95_seconds": 30.0, "mean_wait_seconds": 12.0, "wait_seconds": 48.0}],
    "slowest_tasks": [{"index": 3, "title": "Page", "agent_type": "frontend_developer",
                       "seconds": 30.0}],
    "suggestions": [{"text": "scale out queue frontend_developer by 1 worker(s)",
                     "action": {"rule": "scale_out"}}],
}


def test_the_offline_model_advises_from_the_statistics_in_the_prompt() -> None:
    advice = optimization(read_metrics(optimization_prompt(METRICS)))
    assert advice == optimization(read_metrics(optimization_prompt(METRICS)))  # deterministic
    assert "Queue frontend_developer was busy 80%" in advice.agent_utilization[0]
    assert "add workers" in advice.agent_utilization[0]
    assert "250 tokens per task (70% cache reads" in advice.token_efficiency[0]
    assert "Task 3 'Page'" in advice.task_parallelization[0]
    assert "scale out queue frontend_developer by 1 worker(s)" in advice.bottlenecks
    assert "frontend_developer asked for revisions 25%" in advice.prompt_optimization[0]


def test_the_offline_model_answers_through_ask_structured() -> None:
    advice = ask_structured(OfflineProvider(), role=Role.OPTIMIZE, model="offline",
                            system=ORCHESTRATOR_SYSTEM, prompt=optimization_prompt({}),
                            schema=Optimization, schema_name="optimization")
    assert advice.bottlenecks == [NO_DATA] and advice.agent_utilization == [NO_DATA]


def test_the_offline_model_finds_the_schema_by_its_title() -> None:
    from agency_offline.model import respond

    request = CompletionRequest(role=Role.OPTIMIZE, model="offline",
                                system=[TextBlock(text=ORCHESTRATOR_SYSTEM)],
                                messages=[Message(role="user", content=[
                                    TextBlock(text=optimization_prompt(METRICS))])],
                                json_schema=Optimization.model_json_schema())
    (block,) = respond(request)
    assert isinstance(block, TextBlock)
    assert Optimization.model_validate_json(block.text).agent_utilization


def _samples(family_samples: list[Sample]) -> dict[tuple[str, tuple[tuple[str, str], ...]],
                                                    float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family_samples}


def test_duration_histogram_per_agent_type() -> None:
    tasks = [TaskTiming(id=str(n), project_id="p", index=n, title="t", agent_type="marketing",
                        status="completed", ready=at(0), started=at(0), finished=at(s))
             for n, s in enumerate([0.05, 3.0, 700.0])]
    samples = _samples(durations(tasks).samples)

    def bucket(bound: str) -> float:
        return samples[("agency_task_duration_seconds_bucket",
                        (("agent_type", "marketing"), ("le", bound)))]

    assert (bucket("0.1"), bucket("5.0"), bucket("600.0"), bucket("+Inf")) == (1, 2, 2, 3)
    assert samples[("agency_task_duration_seconds_count", (("agent_type", "marketing"),))] == 3
    assert samples[("agency_task_duration_seconds_sum", (("agent_type", "marketing"),))] == \
        pytest.approx(703.05)


def test_ledger_families_sum_rows_per_agent_type_and_model() -> None:
    rows = [{"agent_type": None, "role": "analyze", "model": "m", "calls": 1, "input": 10,
             "output": 5, "cache_read": 0, "cache_write": 0, "cost_usd": 0.5},
            {"agent_type": "qa_engineer", "role": "agent", "model": "m", "calls": 2,
             "input": 1, "output": 2, "cache_read": 3, "cache_write": 4, "cost_usd": 0.25},
            {"agent_type": "qa_engineer", "role": "review", "model": "m", "calls": 1,
             "input": 1, "output": 1, "cache_read": 1, "cache_write": 1, "cost_usd": 0.25}]
    tokens, cost, calls = ledger(rows)
    got = _samples([*tokens.samples, *cost.samples, *calls.samples])
    qa = (("agent_type", "qa_engineer"), ("model", "m"))
    assert got[("agency_tokens_total", (("agent_type", "qa_engineer"), ("kind", "cache_write"),
                                        ("model", "m")))] == 5
    assert got[("agency_tokens_total", (("agent_type", "orchestrator"), ("kind", "input"),
                                        ("model", "m")))] == 10
    assert got[("agency_cost_usd_total", qa)] == 0.5
    assert got[("agency_model_calls_total", qa)] == 3


def test_the_status_table_shows_short_ids_and_errors() -> None:
    task = TaskRecord(id="0123456789abcdef", project_id="p", index=2, title="API",
                      description="", agent_type=AgentType.BACKEND_DEVELOPER,
                      priority=TaskPriority.NORMAL, estimated_tokens=1, deliverables=[],
                      acceptance_criteria=[], on_critical_path=False,
                      status=TaskStatus.FAILED, attempts=1, pending_deps=0, worker=None,
                      output=None, error="model refused: HTTP 400", queued_at=None,
                      started_at=None, finished_at=None)
    console = Console(record=True, width=200)
    console.print(task_table([task]))
    text = console.export_text()
    assert "01234567 " in text and "0123456789" not in text
    assert "model refused: HTTP 400" in text


def test_a_store_outage_is_a_gauge_not_a_failed_scrape() -> None:
    from orchestrator.domain.errors import StoreUnavailable
    from orchestrator.interfaces.metrics import AgencyCollector

    class Down:
        def fetch_all(self, *_: object) -> list[dict[str, object]]:
            raise StoreUnavailable("the database is away")

    class Store:
        db = Down()

    collector = AgencyCollector.__new__(AgencyCollector)
    collector.store, collector.app = Store(), None  # type: ignore[assignment]
    families = {f.name: f for f in collector.collect()}
    assert list(families) == ["agency_store_up"]
    assert families["agency_store_up"].samples[0].value == 0

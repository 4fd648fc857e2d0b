"""Prometheus metrics for what Flower cannot know: projects, tasks, the ledger, queue depth.

A custom collector reads the store (and, with a broker, asks the workers) on every scrape, so
the exporter keeps no state of its own and any number of copies agree.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import make_wsgi_app
from prometheus_client.registry import Collector

from orchestrator.domain.constants import ORCHESTRATOR_QUEUE, AgentType, ProjectStatus, TaskStatus
from orchestrator.domain.errors import StoreError
from orchestrator.interfaces.stats import TaskTiming, timings
from orchestrator.services.queues import fleet
from orchestrator.state.store import Row, Store

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

# Task run time buckets, in seconds: an offline task takes milliseconds, a real one minutes.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


class AgencyCollector(Collector):
    """Reads the store (and the broker, when there is one) on each scrape."""

    def __init__(self, store: Store, app: Celery | None = None, timeout: float = 1.0) -> None:
        self.store, self.app, self.timeout = store, app, timeout

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("agency_store_up", "1 when the store answered this scrape")
        try:
            found = list(self._store_metrics())
        except StoreError as exc:  # a scrape reports a store outage, it does not fail
            log.warning("metrics: the store did not answer: %s", exc)
            found = []
        up.add_metric([], 1 if found else 0)
        yield up
        yield from found
        if self.app is not None:
            yield from self._queues(self.app)

    def _store_metrics(self) -> Iterator[Metric]:
        db = self.store.db
        yield from statuses(db.fetch_all("stats_project_statuses", {}),
                            db.fetch_all("stats_task_statuses", {}))
        yield from ledger(db.fetch_all("stats_usage", {"project_id": None}))
        scope = {"project_id": None}
        yield durations(timings(db.fetch_all("stats_tasks", scope),
                                db.fetch_all("stats_edges", scope)))

    def _queues(self, app: Celery) -> Iterator[Metric]:
        up = GaugeMetricFamily("agency_broker_up", "1 when the broker answered this scrape")
        try:
            found = fleet(app, self.timeout)
        except Exception as exc:  # a scrape reports a broker outage, it does not fail
            log.warning("metrics: the broker did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("agency_queue_depth", "Messages waiting on the queue",
                                  labels=["queue"])
        workers = GaugeMetricFamily("agency_queue_workers", "Live workers consuming the queue",
                                    labels=["queue"])
        slots = GaugeMetricFamily("agency_queue_concurrency",
                                  "Task slots of the live workers consuming the queue",
                                  labels=["queue"])
        active = GaugeMetricFamily("agency_queue_active",
                                   "Tasks the queue's live workers are running", labels=["queue"])
        waiting = GaugeMetricFamily("agency_store_waiting",
                                    "Threads of the queue's live workers waiting for a "
                                    "PostgreSQL connection", labels=["queue"])
        refused = GaugeMetricFamily("agency_store_refused",
                                    "Live workers of the queue whose new PostgreSQL "
                                    "connections the server refuses", labels=["queue"])
        for q in found:
            depth.add_metric([q.name], q.depth)
            workers.add_metric([q.name], len(q.workers))
            slots.add_metric([q.name], sum(w.concurrency for w in q.workers))
            active.add_metric([q.name], sum(w.active for w in q.workers))
            waiting.add_metric([q.name], sum(int(w.store.get("waiting") or 0)
                                             for w in q.workers))
            refused.add_metric([q.name], sum(bool(w.store.get("refused"))
                                             for w in q.workers))
        yield from (depth, workers, slots, active, waiting, refused)


def statuses(projects: Iterable[Row], tasks: Iterable[Row]) -> Iterator[Metric]:
    """Every status (and agent type) is a series, at 0 when nothing is in it, so that a
    query over it does not see a gap."""
    per_project = Counter({ProjectStatus(r["status"]): int(r["n"]) for r in projects})
    by_project = GaugeMetricFamily("agency_projects", "Projects by status", labels=["status"])
    for status in ProjectStatus:
        by_project.add_metric([status.value], per_project[status])
    per_task = Counter({(r["agent_type"], r["status"]): int(r["n"]) for r in tasks})
    by_task = GaugeMetricFamily("agency_tasks", "Tasks by agent type and status",
                                labels=["agent_type", "status"])
    for agent in AgentType:
        for task_status in TaskStatus:
            by_task.add_metric([agent.value, task_status.value],
                               per_task[(agent.value, task_status.value)])
    yield by_project
    yield by_task


def ledger(rows: Iterable[Row]) -> Iterator[Metric]:
    """Tokens, cost and calls per agent type (`orchestrator`: planning and integration) and
    model, from every ledger row."""
    tokens: Counter[tuple[str, str, str]] = Counter()
    cost: defaultdict[tuple[str, str], float] = defaultdict(float)
    calls: Counter[tuple[str, str]] = Counter()
    for row in rows:
        key = (str(row["agent_type"] or ORCHESTRATOR_QUEUE), str(row["model"]))
        for kind in TOKEN_KINDS:
            tokens[(*key, kind)] += int(row[kind] or 0)
        cost[key] += float(row["cost_usd"] or 0.0)
        calls[key] += int(row["calls"])
    token_family = CounterMetricFamily("agency_tokens", "Tokens the model API reported",
                                       labels=["agent_type", "model", "kind"])
    for labels, n in sorted(tokens.items()):
        token_family.add_metric(list(labels), n)
    cost_family = CounterMetricFamily("agency_cost_usd", "Cost of model calls in US dollars",
                                      labels=["agent_type", "model"])
    call_family = CounterMetricFamily("agency_model_calls", "Model calls answered",
                                      labels=["agent_type", "model"])
    for pair in sorted(calls):
        cost_family.add_metric(list(pair), cost[pair])
        call_family.add_metric(list(pair), calls[pair])
    yield from (token_family, cost_family, call_family)


def durations(tasks: Iterable[TaskTiming]) -> Metric:
    """A histogram of task run times (start to finish of the last attempt) per agent type."""
    per_agent: defaultdict[str, list[float]] = defaultdict(list)
    for task in tasks:
        if task.seconds is not None:
            per_agent[task.agent_type].append(task.seconds)
    family = HistogramMetricFamily("agency_task_duration_seconds",
                                   "Task run time, start to finish", labels=["agent_type"])
    for agent, seconds in sorted(per_agent.items()):
        buckets = [(str(le), sum(1 for s in seconds if s <= le)) for le in DURATION_BUCKETS]
        family.add_metric([agent], [*buckets, ("+Inf", len(seconds))], sum(seconds))
    return family


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """No line per scrape."""


def server(collector: Collector, address: str, port: int) -> WSGIServer:
    """An HTTP server for `/metrics` on the collector (call `serve_forever`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return make_server(address, port, make_wsgi_app(registry), handler_class=_QuietHandler)

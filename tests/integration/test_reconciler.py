"""The reconciler in-process, on the embedded broker: what it re-sends, and how often."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import signals

from orchestrator.agent.runtime import Runtime
from orchestrator.domain import dag
from orchestrator.domain.constants import ProjectStatus, TaskStatus
from orchestrator.domain.settings import Settings
from orchestrator.services.dispatch import broker_epoch
from orchestrator.services.reconciler import reconcile
from orchestrator.state.store import now
from tests.conftest import make_plan


def _purge() -> None:
    """The in-memory broker lives as long as this process: empty our queues of it."""
    from orchestrator.domain.constants import ALL_QUEUES
    from workers.app import app

    with app.connection_for_write() as conn:
        for queue in ALL_QUEUES:
            with contextlib.suppress(conn.channel_errors):
                conn.default_channel.queue_purge(queue)


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(Settings(database_url=f"sqlite:///{tmp_path / 'agency.db'}",
                               lease_seconds=1.0))
    _purge()
    yield runtime
    _purge()
    runtime.store.db.close()


@pytest.fixture
def sent() -> Iterator[list[dict[str, Any]]]:
    """What was published: the kwargs of every task message (canvas heads included)."""
    seen: list[dict[str, Any]] = []

    def record(body: Any = None, headers: Any = None, **_: Any) -> None:
        seen.append({"task": (headers or {}).get("task"), **(body[1] if body else {})})

    signals.before_task_publish.connect(record, weak=False)
    yield seen
    signals.before_task_publish.disconnect(record)


def _running(rt: Runtime, edges: dict[int, list[int]], size: int) -> list[str]:
    rt.store.insert_project("p1", "Build", None, None, "/tmp/out")
    claim = rt.scheduler.claim_project("p1", ProjectStatus.PLANNING, rt.leases.until())
    assert claim is not None
    plan = make_plan(edges, size)
    graph = dag.validate_plan(plan)
    ids = rt.scheduler.save_plan(claim, plan, graph, dag.schedule(graph), "website", 1000)
    rt.scheduler.move_claimed(claim, ProjectStatus.RUNNING)
    return ids


def test_a_task_never_sent_is_sent_with_what_follows_it(rt: Runtime,
                                                        sent: list[dict[str, Any]]) -> None:
    from workers.app import app

    ids = _running(rt, {1: [0]}, 2)  # planning died after RUNNING, before dispatching
    rt.store.db.execute("touch_ready", {"ids": ids, "now": now() - timedelta(seconds=5)})
    done = reconcile(rt, app)
    assert done.resent == [ids[0]]
    assert [m["task_id"] for m in sent] == [ids[0]]  # a chain: the second rides in the first
    assert rt.store.task(ids[1]).unit == "root"
    assert not reconcile(rt, app)  # sent now, in this broker's epoch


def test_a_task_ready_for_long_with_an_empty_queue_is_sent_once_per_period(
        rt: Runtime, sent: list[dict[str, Any]]) -> None:
    from workers.app import app

    ids = _running(rt, {}, 1)
    rt.scheduler.mark_sent(ids, broker_epoch(rt))  # as if sent, but its message was lost
    assert not reconcile(rt, app)  # ready only just now
    rt.store.db.execute("touch_ready", {"ids": ids, "now": now() - timedelta(seconds=5)})
    done = reconcile(rt, app)
    assert done.resent == ids and [m["task_id"] for m in sent] == ids
    assert not reconcile(rt, app)  # not again before another period


def test_an_expired_lease_is_requeued_and_sent(rt: Runtime,
                                               sent: list[dict[str, Any]]) -> None:
    from workers.app import app

    ids = _running(rt, {1: [0]}, 2)
    rt.scheduler.mark_sent(ids, broker_epoch(rt))
    claim = rt.scheduler.start_task(ids[0], "dead@h", now() - timedelta(seconds=1))
    assert claim is not None
    done = reconcile(rt, app)
    assert done.requeued == [ids[0]]
    assert rt.store.task(ids[0]).status is TaskStatus.PENDING
    assert [m["task_id"] for m in sent] == [ids[0]]


def test_a_project_whose_plan_message_was_lost_is_planned(rt: Runtime,
                                                          sent: list[dict[str, Any]]) -> None:
    from workers.app import app

    rt.store.insert_project("p2", "Build", None, None, "/tmp/out")
    rt.store.db.execute("mark_project_sent", {"id": "p2", "epoch": "an-older-redis"})
    rt.store.db.execute("set_budget", {"id": "p2", "budget_tokens": 10, "explicit": True,
                                       "now": now() - timedelta(seconds=5)})
    done = reconcile(rt, app)
    assert done.projects == ["p2"]
    assert sent == [{"task": "agency.orchestrator.plan", "project_id": "p2"}]

"""The store's shared behaviour, against SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator import dag
from orchestrator.constants import ProjectStatus, TaskStatus
from orchestrator.errors import BadInput, NotFound
from orchestrator.models import AgentOutput, Tokens
from orchestrator.scheduler import Scheduler
from orchestrator.store import Store, open_connector
from tests.conftest import make_plan

OUT = AgentOutput(summary="done", content="# work")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'agency.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    s = Store(open_connector(url))
    yield s
    s.db.close()


def _project(store: Store, edges: dict[int, list[int]], size: int) -> tuple[str, list[str]]:
    sched = Scheduler(store)
    store.insert_project("p1", "Build a site", None, None, "/tmp/out")
    assert sched.move_project("p1", ProjectStatus.PLANNING)
    plan = make_plan(edges, size)
    graph = dag.validate_plan(plan)
    ids = sched.save_plan("p1", plan, graph, dag.schedule(graph), "website", 1000)
    assert sched.move_project("p1", ProjectStatus.RUNNING)
    return "p1", ids


def test_migrations_are_idempotent(store: Store) -> None:
    assert store.db.migrate() == []


def test_plan_round_trip(store: Store) -> None:
    pid, ids = _project(store, {1: [0], 2: [0], 3: [1, 2]}, 4)
    tasks = store.tasks(pid)
    assert [t.index for t in tasks] == [0, 1, 2, 3]
    assert tasks[3].dependencies == [ids[1], ids[2]]
    assert [t.status for t in tasks] == [TaskStatus.PENDING] + [TaskStatus.BLOCKED] * 3
    assert tasks[3].pending_deps == 2
    project = store.project(pid)
    assert project.status is ProjectStatus.RUNNING and project.plan is not None
    assert store.resolve_project_id("p1") == "p1"


def test_start_is_compare_and_set(store: Store) -> None:
    _, ids = _project(store, {1: [0]}, 2)
    sched = Scheduler(store)
    assert sched.start_task(ids[1], "w@h") is None  # blocked: dependency not done
    started = sched.start_task(ids[0], "w@h")
    assert started is not None and started.attempt == 1
    assert sched.start_task(ids[0], "other@h") is None  # never claimed twice
    task = store.task(ids[0])
    assert task.worker == "w@h" and task.status is TaskStatus.IN_PROGRESS


def test_completion_counts_down_and_releases_the_join(store: Store) -> None:
    _, ids = _project(store, {1: [0], 2: [0], 3: [1, 2]}, 4)
    sched = Scheduler(store)
    for i in (0,):
        sched.start_task(ids[i], "w")
    first = sched.complete_task("p1", ids[0], OUT)
    assert sorted(first.ready) == sorted([ids[1], ids[2]]) and not first.project_done
    sched.start_task(ids[1], "w")
    assert sched.complete_task("p1", ids[1], OUT).ready == []  # 3 still waits for 2
    assert store.task(ids[3]).status is TaskStatus.BLOCKED
    sched.start_task(ids[2], "w")
    assert sched.complete_task("p1", ids[2], OUT).ready == [ids[3]]
    assert store.task(ids[3]).status is TaskStatus.PENDING
    assert sched.complete_task("p1", ids[2], OUT).ready == []  # twice changes nothing
    assert store.task(ids[0]).output == OUT
    sched.start_task(ids[3], "w")
    assert sched.complete_task("p1", ids[3], OUT).project_done


def test_exactly_one_completer_sees_the_project_done(store: Store) -> None:
    _, ids = _project(store, {}, 6)
    sched = Scheduler(store)
    for task_id in ids:
        sched.start_task(task_id, "w")
    done: list[bool] = []

    def complete(task_id: str) -> None:
        done.append(sched.complete_task("p1", task_id, OUT).project_done)

    threads = [threading.Thread(target=complete, args=(t,)) for t in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(done) == [False] * 5 + [True]


def test_concurrent_claims_have_one_winner(store: Store) -> None:
    _, ids = _project(store, {}, 1)
    sched = Scheduler(store)
    wins: list[object] = []

    def claim(n: int) -> None:
        wins.append(sched.start_task(ids[0], f"w{n}"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(w is not None for w in wins) == 1
    assert store.task(ids[0]).attempts == 1


def test_failure_fails_the_project_and_is_recorded(store: Store) -> None:
    pid, ids = _project(store, {1: [0]}, 2)
    sched = Scheduler(store)
    sched.start_task(ids[0], "w")
    assert sched.fail_task(ids[0], "model refused")
    project = store.project(pid)
    assert project.status is ProjectStatus.FAILED and "model refused" in (project.error or "")
    assert project.finished_at is not None
    assert not sched.move_project(pid, ProjectStatus.COMPLETED)  # no way back
    kinds = [(e["kind"], e["to_status"]) for e in store.events(pid)]
    assert ("task", "failed") in kinds and ("project", "failed") in kinds


def test_cancel_stops_unstarted_tasks(store: Store) -> None:
    pid, ids = _project(store, {1: [0]}, 2)
    sched = Scheduler(store)
    assert sched.cancel_project(pid)
    assert {t.status for t in store.tasks(pid)} == {TaskStatus.CANCELLED}
    assert sched.start_task(ids[0], "w") is None
    assert not sched.cancel_project(pid)


def test_usage_ledger_sums_per_task_and_project(store: Store) -> None:
    pid, ids = _project(store, {}, 2)
    store.record_usage(pid, ids[0], "agent", "m", Tokens(input=10, output=5, cache_read=2),
                       0.5, 100, 1)
    store.record_usage(pid, ids[0], "agent", "m", Tokens(input=1, output=1), 0.25, 100, 2)
    store.record_usage(pid, None, "analyze", "m", Tokens(input=7), 0.0, 100, 1)
    tasks = store.tasks(pid)
    assert tasks[0].tokens == Tokens(input=11, output=6, cache_read=2)
    assert tasks[0].cost_usd == pytest.approx(0.75)
    assert store.project(pid).tokens == Tokens(input=18, output=6, cache_read=2)


def test_unknown_ids(store: Store) -> None:
    with pytest.raises(NotFound):
        store.project("nope")
    with pytest.raises(NotFound):
        store.resolve_project_id("nope")


def test_ids_resolve_from_a_unique_prefix_of_at_least_four_characters(store: Store) -> None:
    _, ids = _project(store, {}, 1)  # one task: an unescaped wildcard would match it
    task = ids[0]
    assert store.resolve_task_id(task) == task
    assert store.resolve_task_id(task[:4]) == task
    with pytest.raises(BadInput, match="at least 4 characters; 'p' has 1"):
        store.resolve_project_id("p")
    with pytest.raises(BadInput, match="task id prefix needs at least 4 characters"):
        store.resolve_task_id(task[:3])
    with pytest.raises(NotFound, match="no task with id 'zzzz'"):
        store.resolve_task_id("zzzz")
    # LIKE wildcards are taken literally, and text the database cannot take is no id.
    with pytest.raises(NotFound):
        store.resolve_task_id("%%%%")
    with pytest.raises(NotFound):
        store.resolve_task_id("____")
    with pytest.raises(NotFound):
        store.resolve_project_id("\udcff\udcfe bad")


def test_an_ambiguous_prefix_is_refused(store: Store) -> None:
    store.insert_project("abcd-1", "one", None, None, "/tmp/out")
    store.insert_project("abcd-2", "two", None, None, "/tmp/out")
    assert store.resolve_project_id("abcd-2") == "abcd-2"
    with pytest.raises(BadInput, match="more than one project id starts with 'abcd'"):
        store.resolve_project_id("abcd")

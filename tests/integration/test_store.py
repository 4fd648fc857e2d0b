"""The store's shared behaviour, against SQLite and PostgreSQL alike."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from orchestrator.domain import dag
from orchestrator.domain.constants import (
    BUDGET_CEILING,
    BUDGET_FLOOR,
    BUDGET_HEADROOM,
    SPEND_RATIO,
    CallOutcome,
    ProjectStatus,
    Role,
    TaskStatus,
)
from orchestrator.domain.errors import BadInput, NotFound, Stale
from orchestrator.domain.models import AgentOutput, LedgerEntry, Tokens
from orchestrator.interfaces.shapes import calls_json
from orchestrator.state.store import Store, now
from orchestrator.state.transitions import Claim, ProjectClaim, Scheduler
from tests.conftest import make_plan

OUT = AgentOutput(summary="done", content="# work")




def lease(seconds: float = 60) -> datetime:
    return now() + timedelta(seconds=seconds)


def _project(store: Store, edges: dict[int, list[int]], size: int) -> tuple[str, list[str]]:
    sched = Scheduler(store)
    store.insert_project("p1", "Build a site", None, None, "/tmp/out")
    claim = sched.claim_project("p1", ProjectStatus.PLANNING, lease())
    assert claim is not None
    plan = make_plan(edges, size)
    graph = dag.validate_plan(plan)
    ids = sched.save_plan(claim, plan, graph, dag.schedule(graph), "website", 1000)
    sched.move_claimed(claim, ProjectStatus.RUNNING)
    return "p1", ids


def start(sched: Scheduler, task_id: str, worker: str = "w", seconds: float = 60) -> Claim:
    claim = sched.start_task(task_id, worker, lease(seconds))
    assert claim is not None
    return claim


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
    assert sched.start_task(ids[1], "w@h", lease()) is None
    started = start(sched, ids[0], "w@h")
    assert started.attempt == 1
    assert sched.start_task(ids[0], "other@h", lease()) is None
    task = store.task(ids[0])
    assert task.worker == "w@h" and task.status is TaskStatus.IN_PROGRESS


def test_completion_counts_down_and_releases_the_join(store: Store) -> None:
    _, ids = _project(store, {1: [0], 2: [0], 3: [1, 2]}, 4)
    sched = Scheduler(store)
    first = sched.complete_task(start(sched, ids[0]), OUT)
    assert sorted(first.ready) == sorted([ids[1], ids[2]]) and not first.project_done
    assert sched.complete_task(start(sched, ids[1]), OUT).ready == []  # 3 still waits for 2
    assert store.task(ids[3]).status is TaskStatus.BLOCKED
    third = start(sched, ids[2])
    assert sched.complete_task(third, OUT).ready == [ids[3]]
    assert store.task(ids[3]).status is TaskStatus.PENDING
    assert sched.complete_task(third, OUT).ready == [ids[3]]  # twice counts down nothing more
    assert store.task(ids[3]).pending_deps == 0
    assert store.task(ids[0]).output == OUT
    assert sched.complete_task(start(sched, ids[3]), OUT).project_done
    assert store.project("p1").status is ProjectStatus.INTEGRATING


def test_exactly_one_completer_sees_the_project_done(store: Store) -> None:
    _, ids = _project(store, {}, 6)
    sched = Scheduler(store)
    claims = [start(sched, task_id) for task_id in ids]
    done: list[bool] = []

    def complete(claim: Claim) -> None:
        done.append(sched.complete_task(claim, OUT).project_done)

    threads = [threading.Thread(target=complete, args=(c,)) for c in claims]
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
        wins.append(sched.start_task(ids[0], f"w{n}", lease()))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(w is not None for w in wins) == 1
    assert store.task(ids[0]).attempts == 1


def test_a_failure_stops_only_what_depends_on_it(store: Store) -> None:
    """0 -> 1 -> 2, and 3 independent: 0 fails; 3 still runs; then the project needs a person."""
    pid, ids = _project(store, {1: [0], 2: [1]}, 4)
    sched = Scheduler(store)
    independent = start(sched, ids[3])
    assert sched.fail_task(start(sched, ids[0]), "HTTP 400: bad request")
    tasks = store.tasks(pid)
    assert tasks[0].status is TaskStatus.FAILED and tasks[0].error == "HTTP 400: bad request"
    assert [t.status for t in tasks[1:3]] == [TaskStatus.BLOCKED] * 2
    assert all(t.error == "waits on failed task 0 ('Task 0')" for t in tasks[1:3])
    assert store.project(pid).status is ProjectStatus.RUNNING  # task 3 is still running
    sched.complete_task(independent, OUT)
    project = store.project(pid)
    assert project.status is ProjectStatus.NEEDS_ATTENTION
    assert f"agency retry {ids[0][:8]}" in (project.error or "")
    kinds = [(e["kind"], e["to_status"]) for e in store.events(pid)]
    assert ("task", "failed") in kinds and ("project", "needs_attention") in kinds
    target, revived = sched.revive(pid, ids[0])
    assert target is ProjectStatus.RUNNING and revived == [ids[0]]
    assert [t.error for t in store.tasks(pid)[1:3]] == [None, None]
    for task_id in ids[:3]:
        sched.complete_task(start(sched, task_id), OUT)
    project = store.project(pid)
    assert project.status is ProjectStatus.INTEGRATING and project.error is None


def test_a_stale_attempt_can_never_overwrite_a_newer_one(store: Store) -> None:
    pid, ids = _project(store, {}, 1)
    sched = Scheduler(store)
    old = start(sched, ids[0], "dead@h", seconds=-1)  # its lease has run out already
    expired = sched.expire_leases(now())
    assert [r["id"] for r in expired] == [ids[0]]
    assert store.task(ids[0]).status is TaskStatus.PENDING
    assert not sched.renew_task(old, lease())
    new = start(sched, ids[0], "live@h")
    assert new.attempt == old.attempt + 1
    for write in (lambda: sched.complete_task(old, OUT), lambda: sched.fail_task(old, "x"),
                  lambda: sched.count_call(old, 5)):
        with pytest.raises(Stale):
            write()
    assert not store.record_usage(pid, old, _entry(Tokens(input=5), 0.1))
    assert store.record_usage(pid, new, _entry(Tokens(input=7), 0.1))
    sched.complete_task(new, OUT)
    assert store.tasks(pid)[0].tokens == Tokens(input=7)  # the stale attempt's is not the task's
    project = store.project(pid)
    assert project.tokens_used == 12 and project.tokens == Tokens(input=12)  # but it was paid
    assert sched.start_task(ids[0], "again@h", lease()) is None
    assert store.task(ids[0]).attempts == 2  # a completed task is never executed again


def test_a_completion_whose_reply_was_lost_still_releases(store: Store) -> None:
    """The COMMIT went through but the worker never heard: its retry is not refused."""
    _, ids = _project(store, {1: [0]}, 2)
    sched = Scheduler(store)
    claim = start(sched, ids[0])
    first = sched.complete_task(claim, OUT)
    again = sched.complete_task(claim, OUT)
    assert first.ready == again.ready == [ids[1]]
    assert store.task(ids[1]).status is TaskStatus.PENDING
    with pytest.raises(Stale):
        sched.complete_task(Claim(claim.project_id, claim.task_id, claim.attempt + 1), OUT)


def test_a_stale_integration_cannot_overwrite_the_deliverable(store: Store) -> None:
    from agency_offline.classify import deliverable

    _, ids = _project(store, {}, 1)
    sched = Scheduler(store)
    sched.complete_task(start(sched, ids[0]), OUT)
    old = sched.claim_project("p1", ProjectStatus.INTEGRATING, lease(-1))
    assert old is not None
    sched.expire_project_leases(now())
    new = sched.claim_project("p1", ProjectStatus.INTEGRATING, lease())
    assert new is not None
    ours = deliverable({"request": "x", "results": []})
    sched.save_deliverable(new, ours)
    with pytest.raises(Stale):
        sched.save_deliverable(old, ours.model_copy(update={"executive_summary": "stale"}))
    assert store.project("p1").deliverable == ours


def test_live_leases_are_not_expired(store: Store) -> None:
    _, ids = _project(store, {}, 1)
    sched = Scheduler(store)
    claim = start(sched, ids[0], seconds=0.5)
    assert sched.renew_task(claim, lease())
    assert sched.expire_leases(now()) == []


def test_model_calls_are_capped_over_every_attempt(store: Store) -> None:
    _, ids = _project(store, {}, 1)
    sched = Scheduler(store)
    first = start(sched, ids[0], seconds=-1)
    assert sched.count_call(first, 3) and sched.count_call(first, 3)
    sched.expire_leases(now())
    second = start(sched, ids[0])
    assert sched.count_call(second, 3)
    assert not sched.count_call(second, 3)  # the cap counts the dead attempt's calls too
    assert store.task(ids[0]).model_calls == 3


def test_planning_is_fenced_and_its_lease_expires(store: Store) -> None:
    sched = Scheduler(store)
    store.insert_project("p2", "Build", None, None, "/tmp/out")
    dead = sched.claim_project("p2", ProjectStatus.PLANNING, lease(-1))
    assert dead is not None
    assert [r["id"] for r in sched.expire_project_leases(now())] == ["p2"]
    assert store.project("p2").status is ProjectStatus.PENDING
    live = sched.claim_project("p2", ProjectStatus.PLANNING, lease())
    assert live is not None and live.attempt == dead.attempt + 1
    with pytest.raises(Stale):
        sched.move_claimed(dead, ProjectStatus.RUNNING)
    plan = make_plan({}, 1)
    graph = dag.validate_plan(plan)
    with pytest.raises(Stale):
        sched.save_plan(dead, plan, graph, dag.schedule(graph), "website", 10)
    assert store.tasks("p2") == []
    assert sched.claim_project("p2", ProjectStatus.PLANNING, lease()) is None
    sched.move_claimed(live, ProjectStatus.RUNNING)
    assert isinstance(live, ProjectClaim)


def test_cancel_stops_unstarted_tasks(store: Store) -> None:
    pid, ids = _project(store, {1: [0]}, 2)
    sched = Scheduler(store)
    assert sched.cancel_project(pid)
    assert {t.status for t in store.tasks(pid)} == {TaskStatus.CANCELLED}
    assert sched.start_task(ids[0], "w", lease()) is None
    assert not sched.cancel_project(pid)


def _entry(tokens: Tokens, cost: float, role: Role = Role.AGENT, attempt: int = 1,
           **more: str) -> LedgerEntry:
    return LedgerEntry(role=role, model="m", tokens=tokens, cost_usd=cost, latency_ms=100,
                       attempt=attempt, **more)


def test_usage_ledger_sums_per_task_and_project(store: Store) -> None:
    pid, ids = _project(store, {}, 2)
    claim = start(Scheduler(store), ids[0])
    store.record_usage(pid, claim, _entry(
        Tokens(input=10, output=5, cache_read=2, cache_write=4, cache_write_1h=3, thinking=2),
        0.5))
    store.record_usage(pid, claim, _entry(Tokens(input=1, output=1), 0.25, attempt=2))
    store.record_usage(pid, None, _entry(Tokens(input=7), 0.0, Role.ANALYZE))
    tasks = store.tasks(pid)
    assert tasks[0].tokens == Tokens(input=11, output=6, cache_read=2, cache_write=4,
                                     cache_write_1h=3, thinking=2)
    assert tasks[0].cost_usd == pytest.approx(0.75)
    assert store.project(pid).tokens == Tokens(input=18, output=6, cache_read=2, cache_write=4,
                                               cache_write_1h=3, thinking=2)


def test_every_call_is_in_the_ledger_with_its_ids_and_outcome(store: Store) -> None:
    pid, ids = _project(store, {}, 1)
    claim = start(Scheduler(store), ids[0])
    answered = _entry(Tokens(input=9, output=4, thinking=3, cache_write=2, cache_write_1h=2),
                      0.5, request_id="req_01", message_id="msg_01", stop_reason="max_tokens")
    lost = LedgerEntry(role=Role.AGENT, model="m", attempt=2, request_id="req_02",
                       outcome=CallOutcome.LOST)
    store.record_usage(pid, None, _entry(Tokens(input=7), 0.1, Role.ANALYZE,
                                         request_id="req_00", stop_reason="end_turn"))
    store.record_usage(pid, claim, answered)
    store.record_usage(pid, claim, lost)
    calls = store.calls(pid)
    assert [c.entry for c in calls] == [
        _entry(Tokens(input=7), 0.1, Role.ANALYZE, request_id="req_00", stop_reason="end_turn"),
        answered, lost]
    assert [(c.task_id, c.task_index) for c in calls] == [(None, None), (ids[0], 0), (ids[0], 0)]
    assert calls[1].task_title == store.task(ids[0]).title and not calls[1].stale
    assert calls[0].at <= calls[1].at <= calls[2].at
    # A lost call is a row of its own, at no known tokens or cost.
    assert store.project(pid).tokens == Tokens(input=16, output=4, thinking=3, cache_write=2,
                                               cache_write_1h=2)
    assert store.project(pid).tokens_used == 7 + 15


def test_a_batched_call_says_so_in_the_ledger(store: Store) -> None:
    pid, ids = _project(store, {}, 1)
    claim = start(Scheduler(store), ids[0])
    batched = LedgerEntry(role=Role.AGENT, model="m", tokens=Tokens(input=10, output=2),
                          cost_usd=0.25, request_id="msgbatch_01/t-1", batch=True)
    store.record_usage(pid, claim, batched)
    store.record_usage(pid, None, _entry(Tokens(input=3), 0.5))
    calls = store.calls(pid)
    assert [c.entry.batch for c in calls] == [True, False]
    assert calls[0].entry == batched
    assert [c["batch"] for c in calls_json(calls)] == [True, False]  # agency calls --json


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


def _waiting(store: Store) -> Scheduler:
    sched = Scheduler(store)
    store.insert_project("p1", "Build a site", None, None, "/tmp/out", needs_approval=True)
    assert store.project("p1").needs_approval
    claim = sched.claim_project("p1", ProjectStatus.PLANNING, lease())
    assert claim is not None
    plan = make_plan({1: [0]}, 2)
    graph = dag.validate_plan(plan)
    sched.save_plan(claim, plan, graph, dag.schedule(graph), "website", 1000)
    sched.move_claimed(claim, ProjectStatus.AWAITING_APPROVAL)
    return sched


def test_a_waiting_plan_is_decided_once(store: Store) -> None:
    sched = _waiting(store)
    decisions: list[bool] = []

    def decide(to: ProjectStatus) -> None:
        decisions.append(bool(sched.decide_plan("p1", to, f"{to.value} by test")))

    racers = [threading.Thread(target=decide, args=(to,)) for to in
              (ProjectStatus.RUNNING, ProjectStatus.CANCELLED) * 4]
    for t in racers:
        t.start()
    for t in racers:
        t.join()
    assert decisions.count(True) == 1  # one approval or one rejection, never both
    status = store.project("p1").status
    assert status in (ProjectStatus.RUNNING, ProjectStatus.CANCELLED)
    assert not sched.decide_plan("p1", ProjectStatus.RUNNING, "again")


def test_approval_estimate_and_threshold() -> None:
    from orchestrator.domain.estimates import estimate, needs_approval, price_per_token
    from orchestrator.domain.models import ProjectRecord
    from orchestrator.domain.settings import Settings

    settings = Settings(agent_model="claude-haiku-4-5", approval_above_usd=None)
    plan = make_plan({1: [0]}, 2)
    found = estimate(settings, plan)
    assert found.tokens == sum(t.estimated_tokens for t in plan.tasks)
    # The cost is of what the tasks are expected to spend: the estimates times the ratio.
    assert found.expected == round(found.tokens * SPEND_RATIO)
    assert found.cost_usd == pytest.approx(found.expected * price_per_token(settings,
                                                                            "claude-haiku-4-5"))
    project = ProjectRecord.model_validate({
        "id": "p", "request": "r", "project_type": None, "complexity": None,
        "status": "planning", "budget_tokens": None, "analysis": None, "plan": None,
        "output_dir": "/tmp", "error": None, "created_at": now(), "updated_at": now(),
        "finished_at": None})
    assert not needs_approval(settings, project, plan)
    assert needs_approval(settings.model_copy(update={"approval_above_usd": 0.0}), project, plan)
    assert not needs_approval(settings.model_copy(update={"approval_above_usd": 1e6}), project,
                              plan)
    assert needs_approval(settings, project.model_copy(update={"needs_approval": True}), plan)


def test_a_paused_project_lets_no_task_start(store: Store) -> None:
    _, ids = _project(store, {}, 2)
    sched = Scheduler(store)
    assert sched.operator_move("p1", ProjectStatus.PAUSED, ProjectStatus.RUNNING, "paused")
    assert sched.start_task(ids[0], "w", lease()) is None  # even a message that slipped by
    assert not sched.operator_move("p1", ProjectStatus.PAUSED, ProjectStatus.RUNNING, "again")
    assert sched.operator_move("p1", ProjectStatus.RUNNING, ProjectStatus.PAUSED, "resumed")
    assert sched.start_task(ids[0], "w", lease()) is not None


def test_a_refused_project_move_says_the_status_the_statement_found(store: Store) -> None:
    sched = _waiting(store)
    plan = make_plan({}, 1)
    graph = dag.validate_plan(plan)
    assert sched.decide_plan("p1", ProjectStatus.RUNNING, "approved")
    refused = sched.decide_plan("p1", ProjectStatus.CANCELLED, "rejected late")
    assert not refused and refused.found is ProjectStatus.RUNNING
    edited = sched.replace_plan("p1", plan, graph, dag.schedule(graph), "edited late", 1000)
    assert not edited and edited.found is ProjectStatus.RUNNING
    assert sched.operator_move("p1", ProjectStatus.PAUSED, ProjectStatus.RUNNING, "paused")
    again = sched.operator_move("p1", ProjectStatus.PAUSED, ProjectStatus.RUNNING, "again")
    assert not again and again.found is ProjectStatus.PAUSED
    assert store.project("p1").status is ProjectStatus.PAUSED  # the refusals changed nothing
    missing = sched.move_project("nope", ProjectStatus.CANCELLED)
    assert not missing and missing.found is None
    assert sched.cancel_project("p1")
    ended = sched.cancel_project("p1")
    assert not ended and ended.found is ProjectStatus.CANCELLED
    with pytest.raises(BadInput, match="project p1 is cancelled; only failed"):
        sched.revive("p1")


def test_the_database_knows_exactly_the_legal_moves_of_the_table(store: Store) -> None:
    from orchestrator.domain import lifecycle

    table = {(entity, m.source.value, m.target.value)
             for entity, moves in (("project", lifecycle.PROJECT_MOVES),
                                   ("task", lifecycle.TASK_MOVES),
                                   ("question", lifecycle.QUESTION_MOVES))
             for m in moves if m.source is not m.target}
    rows = {(r["entity"], r["source"], r["target"])
            for r in store.db.fetch_all("lifecycle_moves", {})}
    assert rows == table


def test_the_database_refuses_an_illegal_move_the_scheduler_was_not_asked(store: Store) -> None:
    from orchestrator.domain.errors import IllegalMove

    _, ids = _project(store, {1: [0]}, 2)
    sched = Scheduler(store)
    claim = start(sched, ids[0])
    sched.complete_task(claim, OUT)
    # Around the scheduler: a compare-and-set whose own list lets an illegal move through.
    with pytest.raises(IllegalMove, match="illegal task move"):
        store.db.fetch_all("transition_task", {
            "id": ids[0], "to_status": TaskStatus.PENDING.value,
            "allowed": [TaskStatus.COMPLETED.value], "ready_at": None})
    with pytest.raises(IllegalMove, match="illegal project move"):
        store.db.fetch_one("transition_project", {
            "id": "p1", "to_status": ProjectStatus.PLANNING.value,
            "allowed": [ProjectStatus.RUNNING.value], "error": None, "clear_error": False,
            "now": now(), "finished_at": None, "failed": ProjectStatus.FAILED.value})
    assert store.task(ids[0]).status is TaskStatus.COMPLETED  # nothing was written
    assert store.project("p1").status is ProjectStatus.RUNNING
    # A legal move, and a write onto the status a row is already in, pass.
    assert sched.operator_move("p1", ProjectStatus.PAUSED, ProjectStatus.RUNNING, "paused")
    assert store.db.fetch_one("project_status_locked", {"id": "p1"}) == {"status": "paused"}


def test_activity_is_kept_per_task_and_per_project(store: Store) -> None:
    """A streamed call's output so far: what `status` and `watch` show while it runs."""
    pid, ids = _project(store, {0: []}, 1)
    store.set_activity(pid, ids[0], "calling model: 1,200 tokens so far")
    store.set_activity(pid, None, "calling model: 300 tokens so far")
    assert store.task(ids[0]).activity == "calling model: 1,200 tokens so far"
    assert store.project(pid).activity == "calling model: 300 tokens so far"
    store.set_activity(pid, ids[0], None)
    assert store.task(ids[0]).activity is None


def test_a_plan_budget_is_calibrated_on_the_latest_completed_projects(store: Store) -> None:
    from orchestrator.domain.estimates import Calibration, plan_budget

    assert store.calibration() == Calibration()  # no history: SPEND_RATIO
    sched = Scheduler(store)
    plan = make_plan({}, 2)  # two tasks, 2,100 tokens estimated
    estimated = sum(t.estimated_tokens for t in plan.tasks)
    for n, ratio in enumerate([1.5, 3, 5, 10**5]):
        spent = int(estimated * ratio)
        pid = f"c{n}"
        store.insert_project(pid, "Build a site", None, None, "/tmp/out")
        claim = sched.claim_project(pid, ProjectStatus.PLANNING, lease())
        assert claim is not None
        graph = dag.validate_plan(plan)
        sched.save_plan(claim, plan, graph, dag.schedule(graph), "website", 10**12)
        sched.move_claimed(claim, ProjectStatus.RUNNING)
        # Planning does not count (it is spent before the budget is set); a cache read a tenth.
        store.record_usage(pid, None, _entry(Tokens(input=10**6), 0.1, role=Role.DECOMPOSE))
        store.record_usage(pid, None, _entry(Tokens(output=spent - 1000, cache_read=10_000),
                                             0.1, role=Role.INTEGRATE))
        if n < 2:  # a project still running is not history yet
            assert store.calibration().projects == 0
        assert sched.move_project(pid, ProjectStatus.INTEGRATING)
        assert sched.move_project(pid, ProjectStatus.COMPLETED)
    found = store.calibration()
    # Ratios 1.5, 3 and 5, and one of 125,000 (outside SPEND_RATIO_BOUNDS: a broken ledger).
    assert found == Calibration(ratio=3.0, projects=3)
    assert "median of the last 3" in found.describe()
    assert plan_budget(plan, found) == BUDGET_FLOOR  # 2,100 x 3 x 2 is under the floor
    big = make_plan({}, 60)
    need = sum(t.estimated_tokens for t in big.tasks) * 3 * BUDGET_HEADROOM
    assert plan_budget(big, found, spent=5_000) == 5_000 + need
    assert plan_budget(make_plan({}, 60), Calibration(ratio=10**6)) == BUDGET_CEILING

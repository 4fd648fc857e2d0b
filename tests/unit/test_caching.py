"""The cost levers on the agents' shared prefix: its cache life, its warm-up, its minimum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.agent.prompts import agent_system
from orchestrator.agent.runtime import Runtime
from orchestrator.agent.tools import AGENT_TOOLS
from orchestrator.domain import caching, dag
from orchestrator.domain.constants import AgentType, ProjectStatus, Role
from orchestrator.domain.errors import ModelRefused
from orchestrator.domain.estimates import estimate
from orchestrator.domain.models import AgentOutput, Plan, ProjectRecord, Tokens
from orchestrator.domain.settings import Settings
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Progress, TextBlock
from orchestrator.services import warmup
from orchestrator.state.store import Store
from orchestrator.state.transitions import Scheduler
from tests.conftest import make_plan

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _chain(size: int, tokens: int = 4000) -> Plan:
    return Plan.model_validate({"tasks": [
        {"title": f"T{i}", "agent_type": "backend_developer", "estimated_tokens": tokens,
         "dependencies": [i - 1] if i else []} for i in range(size)]})


def test_a_task_takes_its_latencies_and_its_output_at_the_pace() -> None:
    assert caching.task_seconds(4000) == pytest.approx(15 + 1000 / 60)


def test_the_span_is_the_longest_chain_in_time() -> None:
    wide = make_plan({}, 12)  # twelve tasks side by side: the longest one
    assert caching.work_span(wide) == pytest.approx(caching.task_seconds(1000 + 100 * 11))
    assert caching.work_span(_chain(12)) == pytest.approx(12 * caching.task_seconds(4000))
    # Dependencies may point forward in a plan: the order is the graph's.
    backward = Plan.model_validate({"tasks": [
        {"title": "late", "agent_type": "qa_engineer", "dependencies": [1]},
        {"title": "early", "agent_type": "qa_engineer"}]})
    assert caching.work_span(backward) == pytest.approx(2 * caching.task_seconds(4000))


@pytest.mark.parametrize(("setting", "plan", "life"), [
    ("5m", _chain(40), "5m"), ("1h", _chain(1), "1h"),
    ("auto", None, "5m"), ("auto", _chain(3), "5m"), ("auto", make_plan({}, 30), "5m"),
    ("auto", _chain(12), "1h"), ("auto", _chain(1, tokens=100_000), "1h")])
def test_the_prefix_lives_an_hour_when_the_work_spans_more_than_five_minutes(
        setting: Any, plan: Plan | None, life: str) -> None:
    assert caching.prefix_life(setting, plan) == life


def test_the_runtime_gives_a_project_its_prefix_life() -> None:
    project = _record(_chain(12))
    assert Runtime(Settings(cache_ttl="auto")).cache_ttl(project) == "1h"
    assert Runtime(Settings(cache_ttl="auto")).cache_ttl(_record(_chain(2))) == "5m"
    assert Runtime(Settings(cache_ttl="5m")).cache_ttl(project) == "5m"


def test_a_warm_up_is_due_before_a_fan_out_on_a_cold_or_stale_prefix() -> None:
    assert not caching.warmup_due(1, None, NOW, "5m")  # one agent writes it itself
    assert caching.warmup_due(2, None, NOW, "5m")  # never written
    assert not caching.warmup_due(5, NOW - timedelta(minutes=2), NOW, "5m")
    assert caching.warmup_due(5, NOW - timedelta(minutes=4, seconds=40), NOW, "5m")
    assert not caching.warmup_due(5, NOW - timedelta(minutes=20), NOW, "1h")
    assert caching.warmup_due(5, NOW - timedelta(minutes=61), NOW, "1h")


def test_a_short_prefix_is_named_with_its_length_and_the_minimum() -> None:
    assert caching.short_prefix(4096, 4096, "claude-haiku-5-5") is None
    assert caching.short_prefix(3000, 4096, "claude-haiku-5-5") == (
        "the agents' shared prompt prefix is 3,000 tokens, below claude-haiku-5-5's minimum "
        "cacheable length of 4,096: agents will not read it from the cache")


def test_plan_estimates_count_as_the_agent_model_counts() -> None:
    plan = make_plan({1: [0]}, 2)
    old = estimate(Settings(agent_model="claude-haiku-4-5"), plan)
    new = estimate(Settings(agent_model="claude-haiku-5-5"), plan)
    assert old.tokens == new.tokens == 1000 + 1100  # the plan's own figures
    # What the tasks are expected to spend (x SPEND_RATIO), as each model counts it.
    assert old.counted == old.expected == new.expected == 4 * (1000 + 1100)
    assert new.counted == 4 * (1300 + 1430)  # as Haiku 5.5 counts them: what its cost is of
    rate = new.cost_usd / new.counted
    assert new.per_task == [(4000, pytest.approx(4 * 1300 * rate)),
                            (4400, pytest.approx(4 * 1430 * rate))]
    assert old.cost_usd / old.counted == pytest.approx(10 * rate)  # $1 against $0.10 input


# The warm-up and the prefix check, on a store with a fan-out plan -------------------------

class Stub:
    """A provider that counts `count` tokens and answers a warm-up as the API would."""

    name = "stub"

    def __init__(self, count: int, fail: bool = False) -> None:
        self.count, self.fail = count, fail
        self.counted: list[CompletionRequest] = []
        self.calls: list[CompletionRequest] = []

    def count_tokens(self, request: CompletionRequest) -> int:
        self.counted.append(request)
        return self.count

    def complete(self, request: CompletionRequest,
                 progress: Progress | None = None) -> CompletionResponse:
        self.calls.append(request)
        if self.fail:
            raise ModelRefused("HTTP 400: max_tokens: too small")
        return CompletionResponse(content=[TextBlock(text="{")], model=request.model,
                                  tokens=Tokens(input=12, output=1, cache_write=self.count),
                                  latency_ms=5, stop_reason="max_tokens")


def _runtime(store: Store, provider: Stub, **settings: Any) -> tuple[Runtime, str]:
    rt = Runtime(Settings(**settings))
    rt.__dict__.update(store=store, provider=provider)  # the cached properties, given
    sched = Scheduler(store)
    store.insert_project("p1", "Build a website for a bakery", None, None, "/tmp/out")
    claim = sched.claim_project("p1", ProjectStatus.PLANNING, NOW + timedelta(days=1))
    assert claim is not None
    plan = make_plan({3: [0, 1, 2]}, 4)
    graph = dag.validate_plan(plan)
    sched.save_plan(claim, plan, graph, dag.schedule(graph), "website", 10**6)
    sched.move_claimed(claim, ProjectStatus.RUNNING)
    return rt, "p1"


def _kinds(store: Store) -> list[str]:
    return [e["kind"] for e in store.events("p1")]


def _roots(store: Store) -> list[str]:
    return [t.id for t in store.tasks("p1") if not t.dependencies]


def test_a_prefix_below_the_minimum_is_noted_and_not_warmed(sqlite_store: Store) -> None:
    stub = Stub(count=1000)
    rt, pid = _runtime(sqlite_store, stub)
    warmup.check_prefix(rt, pid)
    assert len(stub.counted) == 1
    [note] = [e["detail"] for e in sqlite_store.events(pid) if e["kind"] == warmup.PREFIX_NOTE]
    assert "1,000 tokens, below claude-haiku-5-5's minimum cacheable length of 4,096" in note
    warmup.before_start(rt, pid, sqlite_store.tasks(pid), _roots(sqlite_store))
    assert stub.calls == []  # a prefix the cache does not take is not warmed


def test_a_prefix_at_the_minimum_is_not_noted(sqlite_store: Store) -> None:
    rt, pid = _runtime(sqlite_store, Stub(count=4096))
    warmup.check_prefix(rt, pid)
    assert warmup.PREFIX_NOTE not in _kinds(sqlite_store)


def test_a_fan_out_is_warmed_once_with_exactly_the_agents_prefix(sqlite_store: Store) -> None:
    stub = Stub(count=9000)
    rt, pid = _runtime(sqlite_store, stub, agent_model="claude-sonnet-5-5")
    tasks, roots = sqlite_store.tasks(pid), _roots(sqlite_store)
    warmup.before_start(rt, pid, tasks, roots)
    assert len(stub.calls) == 1
    [call] = stub.calls
    project = sqlite_store.project(pid, usage=False)
    agent = agent_system(project, AgentType.BACKEND_DEVELOPER)
    assert call.role is Role.WARMUP and call.max_tokens == 1
    assert call.model == "claude-sonnet-5-5" and call.tools == AGENT_TOOLS
    assert call.system == agent[:1] and call.system[0].cache
    assert call.json_schema == AgentOutput.model_json_schema()
    assert call.effort == rt.effort_for(Role.AGENT)
    assert call.cache_ttl == rt.cache_ttl(project)
    # The ledger has it, and the project's history says so.
    assert sqlite_store.project(pid).tokens.cache_write == 9000
    assert _kinds(sqlite_store).count(warmup.WARMUP_NOTE) == 1
    # Once per project: a later fan-out within the prefix's life is not warmed again, one
    # agent alone never is, and neither is anything with AGENCY_CACHE_WARMUP=false.
    warmup.before_start(rt, pid, tasks, roots[:2])
    warmup.before_start(rt, pid, tasks, roots[:1])
    off = Runtime(Settings(cache_warmup=False))
    off.__dict__.update(store=sqlite_store, provider=stub)
    warmup.before_start(off, pid, tasks, roots)
    assert len(stub.calls) == 1


@pytest.mark.parametrize(("life", "again"), [("5m", True), ("1h", False)])
def test_a_later_fan_out_is_warmed_again_once_the_prefix_may_have_expired(
        sqlite_store: Store, monkeypatch: pytest.MonkeyPatch, life: str, again: bool) -> None:
    stub = Stub(count=9000)
    rt, pid = _runtime(sqlite_store, stub, cache_ttl=life)
    roots = _roots(sqlite_store)
    warmup.before_start(rt, pid, sqlite_store.tasks(pid), roots)
    assert Scheduler(sqlite_store).start_task(roots[0], "w", NOW + timedelta(days=1))
    # Six minutes on, nothing has read the prefix since that task started.
    later = sqlite_store.clock() + timedelta(minutes=6)
    monkeypatch.setattr(sqlite_store, "clock", lambda: later)
    warmup.before_start(rt, pid, sqlite_store.tasks(pid), roots[1:])
    assert len(stub.calls) == (2 if again else 1)


def test_a_failed_warm_up_is_a_note_and_never_a_failure(sqlite_store: Store) -> None:
    stub = Stub(count=9000, fail=True)
    rt, pid = _runtime(sqlite_store, stub)
    warmup.before_start(rt, pid, sqlite_store.tasks(pid), _roots(sqlite_store))
    assert len(stub.calls) == 1
    notes = [e["detail"] for e in sqlite_store.events(pid) if e["kind"] == warmup.WARMUP_NOTE]
    assert notes[-1].startswith("no warm-up of the agents' prompt prefix")
    assert "too small" in notes[-1]


def _record(plan: Plan) -> ProjectRecord:
    return ProjectRecord.model_validate({
        "id": "p", "request": "r", "project_type": None, "complexity": None,
        "status": "running", "budget_tokens": None, "analysis": None, "plan": plan,
        "output_dir": "/tmp", "error": None, "created_at": NOW, "updated_at": NOW,
        "finished_at": None})

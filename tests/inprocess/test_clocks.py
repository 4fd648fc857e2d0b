"""Time, on a fake clock that moves only when the test says: leases and their renewal, the
reconciler's passes, and the rate limiter's waits. Nothing here waits for time to pass."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.domain.constants import PLAN_TASK, ProjectStatus, Role, TaskStatus
from orchestrator.domain.errors import Stale, StoreUnavailable
from orchestrator.domain.models import AgentOutput, Tokens
from orchestrator.domain.settings import RateLimit
from orchestrator.llm.base import CompletionRequest, CompletionResponse, Message, TextBlock
from orchestrator.llm.ratelimit import LocalLimiter, Throttle
from tests.harness import Agency, FakeClock
from tests.inprocess.scenarios import ODD, planner_failing
from workers import tasks


def approved_unsent(agency: Agency) -> str:
    """A planned project moved to running without sending anything (a lost message)."""
    project_id = agency.submit(plan=ODD, project_type="website", needs_approval=True)
    agency.wait(project_id, ProjectStatus.AWAITING_APPROVAL)
    assert agency.rt.scheduler.decide_plan(project_id, ProjectStatus.RUNNING, "approved")
    return project_id


def test_a_held_lease_is_renewed_from_the_clock_and_outlives_its_first_term(
        agency: Agency) -> None:
    clock = FakeClock()
    reconciler = agency.on_clock(clock)
    lease = timedelta(seconds=agency.rt.settings.lease_seconds)
    gate = agency.gate("Brief")
    project_id = agency.submit(plan=ODD, project_type="website")
    gate.held()
    brief, _ = agency.rt.store.tasks(project_id)
    assert brief.status is TaskStatus.IN_PROGRESS and brief.lease_until == clock() + lease
    clock.advance(15)
    agency.rt.leases.renew()
    assert agency.rt.store.task(brief.id).lease_until == clock() + lease
    clock.advance(15)  # past the first term, within the renewed one
    assert not reconciler.tick().requeued
    gate.open()
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    assert agency.rt.store.task(brief.id).attempts == 1


def test_a_dead_workers_lease_expires_and_the_reconciler_runs_its_task_again(
        agency: Agency) -> None:
    clock = FakeClock()
    reconciler = agency.on_clock(clock)
    project_id = approved_unsent(agency)
    brief, _ = agency.rt.store.tasks(project_id)
    # A worker claims the brief, then dies: nobody renews its lease.
    dead = agency.rt.scheduler.start_task(brief.id, "dead@host", agency.rt.leases.until())
    assert dead is not None
    clock.advance(agency.rt.settings.lease_seconds - 1)
    assert not reconciler.tick()
    assert agency.rt.store.task(brief.id).status is TaskStatus.IN_PROGRESS
    clock.advance(2)
    done = reconciler.tick()
    assert done.requeued == [brief.id]
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    brief = agency.rt.store.task(brief.id)
    assert brief.attempts == 2 and brief.worker != "dead@host"
    # The dead attempt's late answer is fenced out.
    with pytest.raises(Stale):
        agency.rt.scheduler.complete_task(dead, AgentOutput(summary="late", content="late"))


def test_a_message_the_broker_never_got_is_sent_again_once_settled(agency: Agency) -> None:
    clock = FakeClock()  # before anything is stamped: every row is from now on
    reconciler = agency.on_clock(clock)
    project_id = approved_unsent(agency)
    clock.advance(1)  # within the settle time: its sender may still be publishing
    assert not reconciler.tick()
    clock.catch_up()
    clock.advance(3)
    brief, _ = agency.rt.store.tasks(project_id)
    assert reconciler.tick().resent == [brief.id]
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error


def test_planning_whose_attempt_lost_the_store_is_sent_again_after_its_lease(
        agency: Agency, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    reconciler = agency.on_clock(clock)
    real = tasks.plan_project
    monkeypatch.setattr(tasks, "plan_project", planner_failing(StoreUnavailable("away")))
    project_id = agency.submit()
    assert agency.outcomes.first(project_id).state == "IGNORED"
    assert agency.rt.store.project(project_id).status is ProjectStatus.PLANNING
    monkeypatch.setattr(tasks, "plan_project", real)
    clock.advance(agency.rt.settings.lease_seconds - 1)
    assert not reconciler.tick()
    clock.catch_up()
    clock.advance(agency.rt.settings.lease_seconds + 1)
    assert reconciler.tick().projects == [project_id]
    project = agency.wait(project_id)
    assert project.status is ProjectStatus.COMPLETED, project.error
    assert [o.state for o in agency.outcomes.seen if o.name == PLAN_TASK] == [
        "IGNORED", "SUCCESS"]
    assert any(e["detail"] == "planning attempt's lease expired; sent again"
               for e in agency.rt.store.events(project_id))


REQUEST = CompletionRequest(role=Role.AGENT, model="claude-haiku-4-5", max_tokens=8000,
                            system=[TextBlock(text="s")],
                            messages=[Message(role="user", content=[TextBlock(text="hi")])])


def throttle(clock: FakeClock, limit: RateLimit, jitter: float = 0.0) -> Throttle:
    """The in-process buckets on the fake clock; a sleep moves the clock instead of waiting."""
    return Throttle(LocalLimiter({"claude-haiku": limit}, clock=clock.monotonic),
                    sleep=clock.sleep, jitter=lambda: jitter)


def answer(output: int) -> CompletionResponse:
    return CompletionResponse(content=[TextBlock(text="ok")], model=REQUEST.model,
                              tokens=Tokens(input=1, output=output), latency_ms=1)


@pytest.mark.parametrize(("jitter", "wait"), [(0.0, 30.0), (0.999, 32.997)])
def test_a_call_over_the_request_limit_waits_for_its_token_to_refill(
        jitter: float, wait: float) -> None:
    clock = FakeClock()
    limited = throttle(clock, RateLimit(rpm=2), jitter)
    start = clock.monotonic()
    assert [limited.admit(REQUEST).waited for _ in range(2)] == [0.0, 0.0]
    third = limited.admit(REQUEST)
    # Two a minute: the next one is 30 s away, stretched by at most a tenth as jitter.
    assert third.waited == pytest.approx(wait)
    assert clock.monotonic() - start == pytest.approx(wait)


def test_unused_output_tokens_given_back_shorten_the_next_wait() -> None:
    clock = FakeClock()
    limited = throttle(clock, RateLimit(otpm=16_000))
    first = limited.admit(REQUEST)  # admitted on max_tokens: 8000 of 16000
    limited.answered(first, answer(output=1000))  # 7000 come back
    assert limited.admit(REQUEST).waited == 0.0  # 15000 left, 8000 taken
    # 7000 left, 8000 needed: 1000 tokens at 16000 a minute.
    assert limited.admit(REQUEST).waited == pytest.approx(3.75)


def test_a_429s_retry_after_holds_the_next_call_back_that_long() -> None:
    clock = FakeClock()
    limiter = LocalLimiter({"claude-haiku": RateLimit(rpm=1000)}, clock=clock.monotonic)
    limited = Throttle(limiter, sleep=clock.sleep, jitter=lambda: 0.0)
    limiter.block(REQUEST.model, 12.5)
    assert limited.admit(REQUEST).waited == pytest.approx(12.5)
    assert limited.admit(REQUEST).waited == 0.0


def test_lease_lost_is_said_only_when_a_newer_attempt_holds_the_task(
        agency: Agency, caplog: pytest.LogCaptureFixture) -> None:
    """A renewal refused because this attempt just finished its task (between its last write
    and letting go of the lease) is not a lost lease; one refused because a newer attempt
    claimed the task is."""
    from orchestrator.state.claims import Claim
    from orchestrator.state.leases import LeaseKeeper

    project_id = agency.submit(plan=ODD, project_type="website")
    assert agency.wait(project_id).status is ProjectStatus.COMPLETED
    done = agency.rt.store.tasks(project_id)[0]
    keeper = LeaseKeeper(agency.rt.scheduler, 20, clock=FakeClock())
    with caplog.at_level("INFO", logger="orchestrator.state.leases"), \
            keeper.hold(Claim(project_id, done.id, done.attempts)):
        keeper.renew()
    assert "lease lost" not in caplog.text
    with caplog.at_level("INFO", logger="orchestrator.state.leases"), \
            keeper.hold(Claim(project_id, done.id, done.attempts - 1)):
        keeper.renew()
    assert "lease lost" in caplog.text and "a newer attempt took over" in caplog.text


def test_a_lease_that_expires_after_a_cancel_cancels_its_task(agency: Agency) -> None:
    """A worker that dies after the cancel: its task is not run again, it is cancelled."""
    clock = FakeClock()
    reconciler = agency.on_clock(clock)
    project_id = approved_unsent(agency)
    brief, _ = agency.rt.store.tasks(project_id)
    dead = agency.rt.scheduler.start_task(brief.id, "dead@host", agency.rt.leases.until())
    assert dead is not None
    assert agency.rt.scheduler.cancel_project(project_id, "tester")
    assert agency.rt.store.task(brief.id).status is TaskStatus.IN_PROGRESS  # it may still run
    clock.advance(agency.rt.settings.lease_seconds + 1)
    done = reconciler.tick()
    assert done.requeued == []
    brief = agency.rt.store.task(brief.id)
    assert brief.status is TaskStatus.CANCELLED and brief.attempts == 1
    said = [e["detail"] for e in agency.rt.store.events(project_id) if e["kind"] == "cancel"]
    assert said == ["its attempt's lease expired after the cancel: not run again"]

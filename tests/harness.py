"""An agency inside the test process: a real Celery worker on `memory://`, a SQLite store in
the test's folder, the offline model, and waits on conditions instead of sleeps.

The worker is Celery's own test worker (`celery.contrib.testing.worker.TestWorkController`):
it runs the real consumer, routing, canvas and the base task's error policy on a thread pool,
and says when its consumer is ready. Nothing is eager. It sends no `worker_ready`, so the
production reconciler does not start: a test runs reconciler passes itself, on its own clock.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from celery import Celery, signals
from celery.contrib.testing.worker import TestWorkController
from celery.worker import loops
from celery.worker import state as worker_state

import workers.app
from orchestrator.agent import runner
from orchestrator.agent import runtime as runtime_module
from orchestrator.agent.runtime import Runtime, get_runtime
from orchestrator.domain.constants import (
    ALL_QUEUES,
    TERMINAL_PROJECT_STATUSES,
    ProjectStatus,
    Role,
)
from orchestrator.domain.models import Plan, ProjectRecord, Tokens
from orchestrator.domain.settings import get_settings
from orchestrator.llm.base import (
    CompletionRequest,
    CompletionResponse,
    Provider,
    ToolResultBlock,
    ToolUseBlock,
)
from orchestrator.services.operator import Operator, Submission
from orchestrator.services.reconciler import Reconciler
from orchestrator.state import store as store_module
from orchestrator.state.leases import LeaseKeeper
from orchestrator.state.store import now

T = TypeVar("T")

# What a test may wait for at most. A wait returns as soon as its condition holds; the
# deadline only turns a hang into a failure that says what it waited for.
DEADLINE = 60.0
POLL = 0.005
DRAIN = 0.05  # seconds the worker's consumer waits for a message per turn
# A project that stops moving until an operator acts.
HELD = frozenset({ProjectStatus.AWAITING_APPROVAL, ProjectStatus.PAUSED})


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = DEADLINE) -> T:
    """Poll `probe` until it returns something true (not None, False or empty); fail after
    `timeout` seconds, naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)


class FakeClock:
    """A wall clock that moves only when told: `datetime`s for leases and the reconciler,
    floats for the rate limiter."""

    def __init__(self, start: datetime | None = None) -> None:
        # From the real time on: the store stamps rows (ready, sent) with it.
        self.at = start or now()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.at

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.at += timedelta(seconds=seconds)

    def catch_up(self) -> None:
        """Move to the real time if behind it: the store stamps some rows (ready, updated)
        with the real time, and a pass must see them as past."""
        with self._lock:
            self.at = max(self.at, now())

    def monotonic(self) -> float:
        """The same time as seconds, for clocks that count seconds."""
        return self().timestamp()

    def sleep(self, seconds: float) -> None:
        """A sleep that passes the time instead of waiting for it."""
        self.advance(seconds)


@dataclass(frozen=True)
class Outcome:
    """How the worker ended one task message: Celery's state and what was raised."""

    task_id: str
    name: str
    state: str
    exc: BaseException | None


@dataclass
class Outcomes:
    """Every message sent (`before_task_publish`, a retry's included) and every one the worker
    finished (`task_postrun`, with what `task_failure` or `task_retry` saw raised)."""

    seen: list[Outcome] = field(default_factory=list)
    sent: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _raised: dict[str, BaseException] = field(default_factory=dict)

    def published(self, sender: Any = None, **_: Any) -> None:
        with self._lock:
            self.sent += 1

    def settled(self) -> bool:
        """Every message sent so far has been run to its end."""
        with self._lock:
            return len(self.seen) >= self.sent

    @contextmanager
    def recording(self) -> Iterator[Outcomes]:
        hooks: list[tuple[Any, Callable[..., None]]] = [
            (signals.before_task_publish, self.published), (signals.task_failure, self.failed),
            (signals.task_retry, self.retried), (signals.task_postrun, self.ran)]
        for signal, hook in hooks:
            signal.connect(hook, weak=False)
        try:
            yield self
        finally:
            for signal, hook in hooks:
                signal.disconnect(hook)

    def failed(self, sender: Any = None, task_id: str = "", exception: BaseException | None = None,
               **_: Any) -> None:
        if exception is not None:
            with self._lock:
                self._raised[task_id] = exception

    def retried(self, sender: Any = None, request: Any = None, reason: Any = None,
                **_: Any) -> None:
        if request is not None and isinstance(reason, BaseException):
            with self._lock:
                self._raised[request.id] = reason

    def ran(self, sender: Any = None, task_id: str = "", state: str | None = None,
            **_: Any) -> None:
        with self._lock:
            self.seen.append(Outcome(task_id, getattr(sender, "name", "?"), state or "?",
                                     self._raised.pop(task_id, None)))

    def of(self, task_id: str) -> list[Outcome]:
        with self._lock:
            return [o for o in self.seen if o.task_id == task_id]

    def first(self, task_id: str) -> Outcome:
        """The first outcome of a message, once the worker has finished it."""
        return wait_for(f"message {task_id} to finish",
                        lambda: next(iter(self.of(task_id)), None))


class Gate:
    """Holds the named tasks' first attempts at the start of their work until opened: a task
    that is surely in progress while the test acts."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, titles: set[str]) -> None:
        self.titles, self.opened = titles, threading.Event()
        self.waiting: set[str] = set()
        real = runner.work

        def work(rt: Runtime, claim: Any, found: Any, progress: Any) -> Any:
            if found.task.title in self.titles and claim.attempt == 1:
                self.waiting.add(found.task.title)
                self.opened.wait(DEADLINE)
            return real(rt, claim, found, progress)

        monkeypatch.setattr(runner, "work", work)

    def held(self) -> set[str]:
        """Wait until every gated task is held here; return their titles."""
        return wait_for(f"{sorted(self.titles)} to reach the gate",
                        lambda: self.waiting >= self.titles and self.waiting)

    def open(self) -> None:
        self.opened.set()


class Asking:
    """A model that asks a person on the first turn of one task, then is `model` again (the
    offline model never asks: its briefs leave nothing open)."""

    name = "asking"

    def __init__(self, model: Provider, title: str, question: str, assumption: str) -> None:
        self.model, self.title = model, title
        self.ask = {"question": question, "assumption": assumption}
        self.replies: set[str] = set()  # what the tool call that asked a person returned

    def complete(self, request: CompletionRequest, progress: object = None) -> CompletionResponse:
        first = request.messages[0].text if request.messages else ""
        mine = request.role is Role.AGENT and f"Your task: {self.title}\n" in first
        if mine and len(request.messages) > 1:
            self.replies |= {b.content for m in request.messages for b in m.content
                             if isinstance(b, ToolResultBlock) and "person" in b.content}
        if mine and len(request.messages) == 1:
            use = ToolUseBlock(id=f"toolu_{uuid.uuid4().hex[:12]}", name="ask_person",
                               input=self.ask)
            return CompletionResponse(content=[use], model=request.model, tokens=Tokens(),
                                      latency_ms=0, stop_reason="tool_use")
        return self.model.complete(request)


@dataclass
class Agency:
    """The runtime, the app and the running worker of one test."""

    rt: Runtime
    app: Celery
    worker: TestWorkController
    outcomes: Outcomes
    output_dir: Path
    monkeypatch: pytest.MonkeyPatch
    gates: list[Gate] = field(default_factory=list)

    def gate(self, *titles: str) -> Gate:
        """A gate in front of these tasks' work (opened at the latest when the test ends)."""
        found = Gate(self.monkeypatch, set(titles))
        self.gates.append(found)
        return found

    def submit(self, request: str = "Build a website for a bakery", *,
               budget: int | None = None, plan: Plan | None = None, project_type: str | None = None,
               needs_approval: bool = False) -> str:
        """Insert a project and send its planning message, as `agency run` does."""
        return Operator(self.rt, self.app, "tester").submit(
            Submission(request, plan, project_type, budget, needs_approval))

    def wait(self, project_id: str, *statuses: ProjectStatus,
             timeout: float = DEADLINE) -> ProjectRecord:
        """The project once it is in one of `statuses` (default: it ended or waits for an
        operator), with the queues drained."""
        wanted = frozenset(statuses) or TERMINAL_PROJECT_STATUSES | HELD

        def probe() -> ProjectRecord | None:
            project = self.rt.store.project(project_id)
            return project if project.status in wanted else None

        wait_for(f"project {project_id[:8]} to be {', '.join(sorted(wanted))}", probe, timeout)
        self.drain(timeout)
        return self.rt.store.project(project_id)

    def on_clock(self, clock: FakeClock) -> Reconciler:
        """Take every lease on `clock` from now on; a reconciler whose passes run at its time
        (one per `tick()`: nothing runs on its own)."""
        self.rt.leases = LeaseKeeper(self.rt.scheduler, self.rt.settings.lease_seconds, clock)
        return Reconciler(self.rt, self.app, clock)

    def drain(self, timeout: float = DEADLINE) -> None:
        """Wait until every message sent has run, no queue holds one and the worker runs or
        holds none."""
        wait_for("the queues to drain", lambda: self.idle(), timeout)

    def idle(self) -> bool:
        # Counting first: a message the consumer has taken from its queue but not yet
        # reserved is in neither place for a moment, but it is sent and not finished.
        if not self.outcomes.settled():
            return False
        if worker_state.active_requests or worker_state.reserved_requests:
            return False
        with self.app.connection_for_write() as conn:
            channel: Any = conn.default_channel
            return all(channel._size(queue) == 0 for queue in ALL_QUEUES)


class _ShortDrain:
    """A broker connection whose waits for a message are short: Celery's blocking consumer
    loop waits up to 2 s per turn, and a stopped worker would finish its turn first."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def drain_events(self, timeout: float | None = None) -> Any:
        return self._connection.drain_events(timeout=min(timeout or DRAIN, DRAIN))


def _quick_loop(obj: Any, connection: Any, *args: Any, **kwargs: Any) -> Any:
    """Celery's own consumer loop (`synloop`), around a connection that waits briefly."""
    return loops.synloop(obj, _ShortDrain(connection), *args, **kwargs)


def _purge(app: Celery) -> None:
    """The in-memory broker is one per process: drop what an earlier test left in it."""
    with app.connection_for_write() as conn:
        channel: Any = conn.default_channel
        for queue in ALL_QUEUES:
            channel.queue_declare(queue=queue)
            channel.queue_purge(queue)


def configure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> Runtime:
    """A fresh runtime for this test, from AGENCY_* variables (the one settings object reads
    them): SQLite in `tmp_path`, the offline model, no broker. `env` adds or overrides."""
    for name in list(os.environ):
        if name.startswith(("AGENCY_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    defaults = {"AGENCY_DATABASE_URL": f"sqlite:///{tmp_path / 'agency.db'}",
                "AGENCY_LLM": "offline", "AGENCY_HOME": str(tmp_path / ".agency"),
                "AGENCY_OUTPUT_DIR": str(tmp_path / "out")}
    for name, value in {**defaults, **env}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    monkeypatch.setattr(runtime_module, "_runtimes", {})
    monkeypatch.setattr(store_module, "_stores", {})
    return get_runtime()


def _memory_app() -> Celery:
    """The product's app, on the in-memory broker whatever the environment said at import."""
    app = workers.app.app
    app.conf.update(broker_url="memory://", result_backend="cache+memory://",
                    broker_transport_options={"polling_interval": 0.005})
    # The producer pool is made once per process: one made for another broker stays on it.
    transport = app.producer_pool.connections.connection.transport_cls
    assert transport == "memory", f"this process's app already publishes to {transport}"
    return app


@contextmanager
def running_agency(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, concurrency: int = 4,
                   **env: str) -> Iterator[Agency]:
    """A runtime and a started worker consuming every queue; stopped and closed after."""
    rt = configure(monkeypatch, tmp_path, **env)
    app = _memory_app()
    _purge(app)
    agency: Agency | None = None
    worker = TestWorkController(
        app=app, hostname=f"inprocess-{uuid.uuid4().hex[:6]}@test", pool_cls="threads",
        concurrency=concurrency, queues=list(ALL_QUEUES), without_heartbeat=True,
        without_mingle=True, without_gossip=True, loglevel="WARNING", task_events=False,
        ready_callback=None)
    worker.consumer.loop = _quick_loop
    thread = threading.Thread(target=worker.start, name="inprocess-worker", daemon=True)
    with Outcomes().recording() as outcomes:
        try:
            thread.start()
            # TestWorkController.ensure_started, with a deadline: set once the consumer is
            # ready.
            if not worker._on_started.wait(DEADLINE):
                pytest.fail("the in-process worker did not start")
            agency = Agency(rt, app, worker, outcomes, tmp_path / "out", monkeypatch)
            yield agency
        finally:
            for gate in agency.gates if agency else []:
                gate.open()
            worker.stop(in_sighandler=False)
            thread.join(timeout=DEADLINE)
            _purge(app)
            rt.store.db.close()
            get_settings.cache_clear()
    assert not thread.is_alive(), "the in-process worker did not stop"

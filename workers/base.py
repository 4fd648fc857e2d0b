"""Base task classes: retry policy and failure handling live here, once."""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from celery import Task, signals
from celery.exceptions import Ignore
from celery.worker.control import inspect_command

from orchestrator.agent.runtime import get_runtime
from orchestrator.domain.constants import (
    ORCHESTRATOR_QUEUE,
    PROGRESS_EVENT,
    STORE_HEALTH_COMMAND,
    ProjectStatus,
)
from orchestrator.domain.errors import (
    AgencyError,
    AttemptFailed,
    BudgetExhausted,
    HeldElsewhere,
    NotFound,
    NotRunnable,
    ProjectCancelled,
    Stale,
    StoreUnavailable,
    TaskNotReady,
)
from orchestrator.services.reconciler import Reconciler
from orchestrator.state.transitions import Claim, ProjectClaim, Scheduler

log = logging.getLogger(__name__)

_node: dict[str, str] = {}
_consumer: dict[str, Any] = {}


@signals.worker_init.connect
def _remember_node(sender: Any = None, **_: Any) -> None:
    # Thread-pool requests carry the machine's hostname, not the worker's node name
    # (`name@host`), so remember it here for `status --json` and the events table.
    _node["name"] = str(getattr(sender, "hostname", "") or "")


@signals.worker_ready.connect
def _warm_up(sender: Any = None, **_: Any) -> None:
    """Make the model client and the store's pool before the first task, not inside it:
    importing the anthropic SDK costs about a second of CPU and psycopg a fraction of one,
    which a burst of first tasks would otherwise pay in every worker at once, before any of
    them could send a call."""
    rt = get_runtime()
    for part in ("provider", "store"):
        try:
            getattr(rt, part)  # cached properties: built here, once
        except Exception as exc:  # the first task fails or retries with the clear reason
            log.warning("could not make the %s yet: %s", part, exc)


@signals.worker_init.connect
def _per_queue_concurrency(sender: Any = None, **_: Any) -> None:
    """A worker serving one queue gets that queue's concurrency from the settings."""
    if sender is None or any(a in ("-c", "--concurrency") or a.startswith("--concurrency=")
                             for a in sys.argv):
        return
    queues = _consumed_queues(sender)
    table = get_runtime().settings.concurrency
    if len(queues) == 1 and queues[0] in table:
        sender.concurrency = table[queues[0]]


def _consumed_queues(sender: Any) -> list[str]:
    return list(getattr(sender.app.amqp.queues, "consume_from", None) or [])


@signals.worker_ready.connect
def _start_reconciler(sender: Any = None, **_: Any) -> None:
    """The orchestrator worker owns the reconciler (several copies are safe: one pass at a
    time holds an advisory lock)."""
    if sender is None or ORCHESTRATOR_QUEUE not in _consumed_queues(sender):
        return
    Reconciler(get_runtime(), sender.app).start()


@signals.worker_ready.connect
def _remember_consumer(sender: Any = None, **_: Any) -> None:
    _consumer["consumer"] = sender


def send_progress(task: Task, **fields: Any) -> None:  # type: ignore[type-arg]
    """Send an `agency-progress` event for the running task.

    Through the worker's own event dispatcher (thread-safe, and the one Celery's task events
    go through) rather than `Task.send_event`, which builds a dispatcher and takes a producer
    from the pool for every event: a tenth of an agent worker's CPU on short tasks. A worker
    started without `worker_ready` (embedded) falls back to `send_event`."""
    dispatcher = getattr(_consumer.get("consumer"), "event_dispatcher", None)
    if dispatcher is None or not dispatcher.enabled:
        task.send_event(PROGRESS_EVENT, **fields)
        return
    _progress_out.send(dispatcher, task.request.id, fields)


class _ProgressOut:
    """Progress events go out from a thread of their own, in order: the task does not wait
    for the broker's reply (a round trip per step, on a task's path, across machines). A
    courtesy: when the broker is slow and PROGRESS_BACKLOG wait, the newest is dropped."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Any, str | None, dict[str, Any]]] = queue.Queue(
            PROGRESS_BACKLOG)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def send(self, dispatcher: Any, task_id: str | None, fields: dict[str, Any]) -> None:
        with self._lock:  # started in the process that sends (a fleet's pools fork)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="agency-progress",
                                                daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait((dispatcher, task_id, fields))
        except queue.Full:
            log.debug("progress event dropped: %d waiting", PROGRESS_BACKLOG)

    def _run(self) -> None:
        while True:
            dispatcher, task_id, fields = self._queue.get()
            try:
                dispatcher.send(PROGRESS_EVENT, uuid=task_id, **fields)
            except Exception as exc:  # the broker may be away; progress is a courtesy
                log.debug("progress event not sent: %s", exc)


PROGRESS_BACKLOG = 1000
_progress_out = _ProgressOut()
# A forked child starts with an empty backlog and no sender (the parent's thread is not there).
os.register_at_fork(after_in_child=lambda: _progress_out.__init__())  # type: ignore[misc]


@inspect_command(name=STORE_HEALTH_COMMAND)
def _store_health(state: Any, **_: Any) -> dict[str, Any]:
    """`agency workers` asks every worker how its store connections are (a remote control
    command, answered by the worker's main thread)."""
    health = getattr(get_runtime().store.db, "health", None)
    try:
        return dict(health()) if health is not None else {}
    except Exception as exc:  # the store was never reached: say so, not a traceback
        return {"refused": str(exc)}


def node_name(task: Task) -> str:  # type: ignore[type-arg]
    """The node name (`queue@host`) of the worker running this task."""
    return _node.get("name") or task.request.hostname or "unknown"


class AgencyTask(Task):  # type: ignore[type-arg]
    """The one error policy: services raise; this maps each error to a store transition and to
    Celery's retry, `Ignore` or failure.

    - A message that must not run (its project is not running, its task is blocked, failed or
      cancelled, or its attempt was fenced out): `Ignore`, logged at INFO; Flower shows it as
      IGNORED, not as a failure.
    - A duplicate of a task another attempt is running: retried later, so that once the task
      completed it succeeds and any chord it belongs to still fires.
    - The store unreachable before anything was claimed: Celery retries the message later.
    - A claimed attempt that failed: budget spent -> the project pauses; the store unreachable
      -> nothing to write, the attempt's lease expires and the reconciler runs it again;
      anything else (a refusal, HTTP 400, an answer invalid after repair, the call cap) fails
      the work for good in the store, and the task FAILS in Celery with its traceback.
    """

    abstract = True
    acks_late = True
    max_retries = None  # only "the store is unreachable" is retried here, until it is back
    store_retry_delay = 2.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except AttemptFailed as failed:
            return self._settle(failed, kwargs)
        except (NotRunnable, TaskNotReady, Stale, NotFound) as exc:
            # NotFound: a message for a project this store does not hold (deleted, or sent
            # to a broker that another database's workers share).
            self.ignore(str(exc))
        except HeldElsewhere as exc:
            delay = max(1.0, get_runtime().settings.lease_seconds / 4)
            log.info("%s: %s; this duplicate waits %.0fs", self.name, exc, delay)
            raise self.retry(exc=exc, countdown=delay) from exc
        except StoreUnavailable as exc:
            log.warning("%s: %s; retrying in %.0fs", self.name, exc, self.store_retry_delay)
            raise self.retry(exc=exc, countdown=self.store_retry_delay) from exc

    def _settle(self, failed: AttemptFailed, kwargs: dict[str, Any]) -> Any:
        cause = failed.cause
        try:
            if isinstance(cause, Stale):
                self.ignore(str(cause))
            elif isinstance(cause, BudgetExhausted):
                self.pause(failed)
            elif isinstance(cause, ProjectCancelled):
                self.stop(failed)
            elif isinstance(cause, StoreUnavailable):
                log.warning("%s: %s; the lease will expire and the work will run again",
                            self.name, cause)
            else:
                reason = cause.message if isinstance(cause, AgencyError) else (
                    f"{type(cause).__name__}: {cause}")
                self.fail(failed, reason)
                raise cause
        except (Stale, StoreUnavailable) as exc:
            log.warning("%s: could not record the outcome (%s)", self.name, exc)
        self.ignore(str(cause))

    def ignore(self, reason: str) -> NoReturn:
        """End without a result: Flower shows the task IGNORED (Celery itself sends no event
        for `Ignore`, so the task would look started for ever)."""
        log.info("%s ignored: %s", self.name, reason)
        try:
            self.send_event("task-ignored", reason=reason)
        except Exception as exc:  # the broker may be away; the log line stands
            log.debug("task-ignored event not sent: %s", exc)
        raise Ignore()

    def pause(self, failed: AttemptFailed) -> None:
        """The budget is spent: the project is `budget_exhausted`; an agent's task waits
        (pending) for `agency resume`."""
        reason = str(failed.cause)
        self._record(failed, "budget pause", ProjectStatus.BUDGET_EXHAUSTED, reason,
                     lambda s, claim: s.pause_for_budget(failed.project_id, claim, reason))

    def stop(self, failed: AttemptFailed) -> None:
        """The project was cancelled: an agent's task ends `cancelled` before its next model
        call (a planning or integration attempt has nothing to record: its project is)."""
        rt, claim = get_runtime(), failed.claim
        if isinstance(claim, Claim):
            calls = rt.durably("cancel", lambda: rt.scheduler.stop_cancelled(claim))
            log.info("%s: project %s cancelled; the task stopped before its next model call "
                     "(%d call(s) in flight at the cancel finished)", self.name,
                     failed.project_id, calls)

    def fail(self, failed: AttemptFailed, reason: str) -> None:
        """Fail the work for good: an agent's task fails (its descendants wait, the rest goes
        on); a planning or integration attempt fails its project (`agency resume` carries
        on)."""
        self._record(failed, "failure", ProjectStatus.FAILED, reason,
                     lambda s, claim: s.fail_task(claim, reason))

    @staticmethod
    def _record(failed: AttemptFailed, what: str, project_to: ProjectStatus, reason: str,
                for_task: Callable[[Scheduler, Claim], object]) -> None:
        """Write the outcome the attempt's claim allows: a project's move, or `for_task`."""
        rt, claim = get_runtime(), failed.claim
        if isinstance(claim, ProjectClaim):
            rt.durably(what, lambda: rt.scheduler.move_claimed(claim, project_to, reason))
        else:
            assert isinstance(claim, Claim)
            rt.durably(what, lambda: for_task(rt.scheduler, claim))

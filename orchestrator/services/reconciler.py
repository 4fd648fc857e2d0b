"""The reconciler: rebuilds from the store whatever a fault left undone, with nobody acting.

Each pass re-runs the tasks whose attempt stopped renewing its lease (a dead or cut-off
worker), re-sends ready tasks and projects whose message the broker no longer holds (a Redis
that restarted empty has a new epoch), sends planning or integration again when its
attempt died, and writes out the stored deliverable of a project whose folder could not be
written (a full disk) once it can be; every few minutes it compacts the journals of projects
ended longer ago than AGENCY_JOURNAL_RETENTION. Every action is a compare-and-set in the
store, and one pass runs at a time across all machines (an advisory lock), so any number of
copies may run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from celery import Celery

from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import ProjectStatus
from orchestrator.services.batches import collect_batches
from orchestrator.services.dispatch import (
    broker_epoch,
    dispatch,
    send_integration,
    send_next,
    send_plan,
)
from orchestrator.services.integrate import write_stored
from orchestrator.services.queues import queue_depth
from orchestrator.services.retention import compact_when_due
from orchestrator.state.store import Row

log = logging.getLogger(__name__)

RECONCILER_LOCK = 0x41474552  # "AGER"
# A project message is "lost" only after its sender had time to publish and record it.
SETTLE_SECONDS = 2.0


@dataclass
class Pass:
    """What one pass did."""

    requeued: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    projects: list[str] = field(default_factory=list)
    woken: list[str] = field(default_factory=list)  # parked tasks whose message was sent
    compacted: int = 0  # journal rows of long-ended projects compacted (retention)
    written: list[str] = field(default_factory=list)  # stored deliverables written out

    def __bool__(self) -> bool:
        return bool(self.requeued or self.resent or self.projects or self.woken
                    or self.written)


Clock = Callable[[], datetime]


def reconcile(rt: Runtime, app: Celery, clock: Clock | None = None) -> Pass:
    """One pass, at `clock`'s time (default: the database's, which every lease is taken on);
    does nothing when another reconciler is in the middle of one."""
    done = Pass()
    with rt.store.db.exclusive(RECONCILER_LOCK) as mine:
        if not mine:
            return done
        epoch, at = broker_epoch(rt), (clock or rt.store.clock)()
        settled = at - timedelta(seconds=SETTLE_SECONDS)
        scopes: dict[str, set[str]] = {}
        for row in rt.scheduler.expire_leases(at):
            scopes.setdefault(row["project_id"], set()).add(row["id"])
            done.requeued.append(row["id"])
        lost = rt.store.lost_tasks(epoch, settled)
        known = {row["id"] for row in lost} | set(done.requeued)
        for row in [*lost, *(r for r in _stranded(rt, app, at) if r["id"] not in known)]:
            scopes.setdefault(row["project_id"], set()).add(row["id"])
            done.resent.append(row["id"])
        for project_id, scope in scopes.items():
            dispatch(rt, app, project_id, scope)
        done.woken = _wake_parked(rt, app, epoch, at, settled) + collect_batches(rt, app, at)
        rt.scheduler.expire_project_leases(at)
        for row in rt.store.lost_projects(epoch, settled):
            send = send_plan if row["status"] == ProjectStatus.PENDING.value else send_integration
            send(rt, app, row["id"])
            done.projects.append(row["id"])
        done.compacted = compact_when_due(rt, at)
        done.written = [p for p in rt.store.unwritten_projects() if _write_out(rt, p)]
    if done:
        log.info("reconciler: %d task(s) requeued after a lost lease, %d re-sent, %d project "
                 "message(s) re-sent, %d parked task message(s) sent, %d deliverable(s) "
                 "written out", len(done.requeued), len(done.resent), len(done.projects),
                 len(done.woken), len(done.written))
    return done


def _write_out(rt: Runtime, project_id: str) -> bool:
    """One project's stored deliverable written out; an error of its own stops only it."""
    try:
        return write_stored(rt, project_id)
    except Exception:
        log.exception("reconciler: project %s: the stored deliverable could not be written",
                      project_id)
        return False


def _wake_parked(rt: Runtime, app: Celery, epoch: str, at: datetime,
                 settled: datetime) -> list[str]:
    """Questions past their time are closed and their tasks woken; every parked task's next
    message that the broker does not hold (its review, or its agent's own once woken) is
    sent again."""
    for row in rt.store.due_questions(at):
        rt.scheduler.expire_question(int(row["id"]), row["task_id"], int(row["attempt"]))
    sent = []
    for row in rt.store.parked_unsent(epoch, settled):
        if send_next(rt, app, rt.store.task(row["id"])):
            sent.append(row["id"])
    return sent


def _stranded(rt: Runtime, app: Celery, clock: datetime) -> list[Row]:
    """Tasks ready for over two leases whose queue is empty: their message was lost some other
    way than a broker restart (a chain's next link never published, a worker that died between
    completing a task and sending what follows). Each is re-sent at most once per period."""
    before = clock - timedelta(seconds=2 * rt.settings.lease_seconds)
    rows = rt.store.long_ready_tasks(before)
    depths: dict[str, int] = {}
    for row in rows:
        if row["agent_type"] not in depths:
            depths[row["agent_type"]] = queue_depth(app, row["agent_type"])
    stranded = [r for r in rows if depths[r["agent_type"]] == 0]
    if stranded:
        rt.store.touch_ready([r["id"] for r in stranded])
    return stranded


class Reconciler:
    """Runs `reconcile` every AGENCY_RECONCILE_INTERVAL seconds in a daemon thread."""

    def __init__(self, rt: Runtime, app: Celery, clock: Clock | None = None) -> None:
        self.rt, self.app, self.clock = rt, app, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="agency-reconciler",
                                        daemon=True)

    def start(self) -> Reconciler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> Pass:
        """One pass now (the thread runs one every AGENCY_RECONCILE_INTERVAL seconds)."""
        return reconcile(self.rt, self.app, self.clock)

    def _loop(self) -> None:
        while not self._stop.wait(self.rt.settings.reconcile_interval):
            try:
                self.tick()
            except Exception as exc:  # the store or broker is away: the next pass tries again
                log.warning("reconciler pass failed: %s", exc)

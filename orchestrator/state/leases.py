"""Leases: a process keeps the leases of the attempts it runs alive, in one background thread."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from orchestrator.domain.constants import TaskStatus
from orchestrator.domain.errors import AgencyError
from orchestrator.state.store import now
from orchestrator.state.transitions import Claim, ProjectClaim, Scheduler

log = logging.getLogger(__name__)

Holder = Claim | ProjectClaim


class LeaseKeeper:
    """Renews every held lease a few times per lease period, while the attempts work.

    A renewal that the store refuses means a newer attempt took over: the lease is dropped and
    the attempt's own writes will be refused too (fencing), so nothing more is needed here.
    """

    def __init__(self, scheduler: Scheduler, seconds: float,
                 clock: Callable[[], datetime] | None = None) -> None:
        # `clock` tells the database's time (a test's fake one moves only when told); without
        # it, this machine's clock corrected by the skew measured against the database.
        self.scheduler, self.seconds, self.clock = scheduler, seconds, clock
        self._held: dict[int, Holder] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._skew: timedelta | None = None  # the database's clock minus this machine's

    def until(self) -> datetime:
        """The end of a lease taken or renewed now, on the database's clock (the reconciler
        on another machine compares it with the same clock)."""
        return self.database_time() + timedelta(seconds=self.seconds)

    def database_time(self) -> datetime:
        if self.clock is not None:
            return self.clock()
        if self._skew is None:
            self._measure_skew()
        return now() + (self._skew or timedelta())

    def _measure_skew(self) -> None:
        try:
            self._skew = self.scheduler.store.clock() - now()
        except AgencyError as exc:  # keep the last measure; the store is away for now
            log.warning("could not read the database clock: %s", exc)

    @contextmanager
    def hold(self, claim: Holder) -> Iterator[None]:
        """Keep `claim`'s lease alive for the body."""
        key = id(claim)
        with self._lock:
            self._held[key] = claim
            self._start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(key, None)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="agency-leases",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            time.sleep(self.seconds / 4)
            self.renew()

    def renew(self) -> None:
        """Renew every held lease once (the background thread does this a few times per
        lease period)."""
        with self._lock:
            held = list(self._held.items())
        if held and self.clock is None:
            self._measure_skew()
        for key, claim in held:
            try:
                self._renew(key, claim)
            except Exception:  # never let one bad renewal stop the thread
                log.exception("renewing the lease of %s failed", claim)

    def _taken_over(self, claim: Holder) -> bool:
        """Whether the claim is really lost: a newer attempt holds its task or project, or
        (a task) its lease expired and it is back in the queue. A renewal is refused too when
        this attempt has just finished its work, between its last write and its release."""
        store = self.scheduler.store
        try:
            if isinstance(claim, Claim):
                task = store.task(claim.task_id)
                return task.attempts > claim.attempt or task.status is TaskStatus.PENDING
            return store.project(claim.project_id, usage=False).attempts > claim.attempt
        except Exception:  # cannot tell (the store away, a row it cannot read): say it
            return True

    def _renew(self, key: int, claim: Holder) -> None:
        renew: Callable[[], bool] = (
            (lambda: self.scheduler.renew_task(claim, self.until()))
            if isinstance(claim, Claim)
            else (lambda: self.scheduler.renew_project(claim, self.until())))
        try:
            if not renew():
                with self._lock:
                    held = self._held.pop(key, None) is not None
                if held and self._taken_over(claim):  # not an attempt that just ended
                    log.warning("lease lost: %s (a newer attempt took over, or its lease "
                                "expired and it went back to the queue)", claim)
        except AgencyError as exc:  # the store is unreachable: try again at the next tick
            log.warning("could not renew the lease of %s: %s", claim, exc)

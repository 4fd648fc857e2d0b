"""Journal retention: once a project has completed or been cancelled for longer than
AGENCY_JOURNAL_RETENTION, each of its conversations keeps only its last turn.

Nothing replays an ended project (a completed or cancelled one never runs again), so what was
sent and answered on the way to each conversation's conclusion is only history; the last turn
(the answer it concluded with) stays, and so does every row's digest, kind and time, so the
log of what was asked, when and by whom is intact.
"""

from __future__ import annotations

import logging
import threading
import weakref
from datetime import datetime, timedelta

from orchestrator.agent.runtime import Runtime
from orchestrator.state.store import Store

log = logging.getLogger(__name__)

# The reconciler runs every few seconds; compaction is a sweep over ended projects, needed
# only as their retention runs out: once every few minutes is plenty.
COMPACT_EVERY = 300.0


def compact(rt: Runtime, at: datetime) -> int:
    """Compact the journals whose retention ran out by `at`; the rows compacted."""
    return rt.store.compact_journal(at - timedelta(seconds=rt.settings.journal_retention))


class Periodic:
    """Whether a store's compaction is due: at most once per `every` seconds of its clock
    (per process; any number of reconcilers may compact, the statement is idempotent)."""

    def __init__(self, every: float = COMPACT_EVERY) -> None:
        self.every = every
        self._last: weakref.WeakKeyDictionary[Store, datetime] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def due(self, store: Store, at: datetime) -> bool:
        """True (and the time noted) when the last compaction is `every` seconds old, or
        the clock went back past it."""
        with self._lock:
            last = self._last.get(store)
            if last is not None and timedelta(0) <= at - last < timedelta(seconds=self.every):
                return False
            self._last[store] = at
            return True


periodic = Periodic()


def compact_when_due(rt: Runtime, at: datetime) -> int:
    """The reconciler's step: compact when the last compaction is a few minutes old."""
    if not periodic.due(rt.store, at):
        return 0
    compacted = compact(rt, at)
    if compacted:
        log.info("journal retention: %d row(s) of ended projects compacted", compacted)
    return compacted

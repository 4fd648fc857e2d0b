"""Journal retention on SQLite: a long-ended project's conversations keep their last turn."""

from __future__ import annotations

from datetime import datetime, timedelta

from orchestrator.domain.constants import ProjectStatus
from orchestrator.services.retention import Periodic
from orchestrator.state.store import Store, now
from orchestrator.state.transitions import Scheduler

ROWS = [(0, "turn"), (1, "tools"), (2, "turn"), (3, "tools"), (4, "turn")]


def project(store: Store, project_id: str, end: ProjectStatus | None) -> None:
    """A project with an agent conversation of five rows and a one-turn review; ended as
    `end` (None: still running)."""
    sched = Scheduler(store)
    store.insert_project(project_id, "Build a site", None, None, "/tmp/out")
    claim = sched.claim_project(project_id, ProjectStatus.PLANNING, now() + timedelta(seconds=60))
    assert claim is not None
    sched.move_claimed(claim, ProjectStatus.RUNNING)
    for conv, rows in ((f"t/{project_id}/0/agent", ROWS),
                       (f"t/{project_id}/0/review/1", ROWS[:1])):
        for seq, kind in rows:
            body = f'{{"row": {seq}, "pad": "{"x" * 100}"}}'
            store.db.execute("insert_journal", {
                "project_id": project_id, "task_id": None, "conv": conv, "seq": seq,
                "kind": kind, "attempt": 1, "digest": f"d{seq}" if kind == "turn" else None,
                "sent": "[]" if kind == "turn" else None, "body": body,
                "bytes": len(body) + (2 if kind == "turn" else 0), "now": now()})
    if end is ProjectStatus.CANCELLED:
        assert sched.cancel_project(project_id)
    elif end is ProjectStatus.COMPLETED:
        assert sched.move_project(project_id, ProjectStatus.INTEGRATING)
        assert sched.move_project(project_id, ProjectStatus.COMPLETED)


def test_an_ended_project_keeps_each_conversations_last_turn(sqlite_store: Store) -> None:
    project(sqlite_store, "done", ProjectStatus.COMPLETED)
    project(sqlite_store, "stopped", ProjectStatus.CANCELLED)
    project(sqlite_store, "live", None)
    full = sqlite_store.journal_size()
    assert (full["rows"], full["conversations"], full["compacted_rows"]) == (18, 6, 0)

    assert sqlite_store.compact_journal(now() - timedelta(hours=1)) == 0  # not old enough
    assert sqlite_store.compact_journal(now() + timedelta(seconds=1)) == 8  # 4 per project
    for pid in ("done", "stopped"):
        agent = sqlite_store.journal(f"t/{pid}/0/agent")
        assert [e.seq for e in agent if e.body is not None] == [4]  # the last turn stays
        assert [e.digest for e in agent] == ["d0", None, "d2", None, "d4"]  # the log stays
        assert sqlite_store.journal(f"t/{pid}/0/review/1")[0].body is not None
    assert all(e.body is not None for e in sqlite_store.journal("t/live/0/agent"))

    size = sqlite_store.journal_size()
    assert (size["rows"], size["compacted_rows"], size["compacted_conversations"]) == (18, 8, 2)
    kept = full["bytes"] - size["bytes"]
    assert kept == 2 * (2 * (len('{"row": 0, "pad": ""}') + 100 + 2)
                        + 2 * (len('{"row": 1, "pad": ""}') + 100))
    assert sqlite_store.compact_journal(now() + timedelta(days=1)) == 0  # done once


def test_compaction_runs_once_per_period_of_the_stores_clock() -> None:
    class S:  # any object a weak reference can name
        pass

    one, other, at = S(), S(), datetime(2026, 12, 1, 12, 0)
    periodic = Periodic(every=300)
    assert periodic.due(one, at)  # type: ignore[arg-type]
    assert not periodic.due(one, at + timedelta(seconds=299))  # type: ignore[arg-type]
    assert periodic.due(other, at)  # type: ignore[arg-type]  # each store its own
    assert periodic.due(one, at + timedelta(seconds=300))  # type: ignore[arg-type]
    assert periodic.due(one, at)  # type: ignore[arg-type]  # the clock went back

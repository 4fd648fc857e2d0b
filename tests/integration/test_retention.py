"""Journal retention on both dialects: the statement, `agency db status|compact`, and the
reconciler's step."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import ProjectStatus
from orchestrator.domain.settings import Settings
from orchestrator.services.reconciler import reconcile
from orchestrator.state.store import Store, now, open_connector
from tests.integration.test_hostile_input import agency
from tests.unit.test_retention import project


def test_compaction_keeps_each_conversations_last_turn(store: Store) -> None:
    project(store, "done", ProjectStatus.COMPLETED)
    project(store, "live", None)
    before = store.journal_size()
    assert store.compact_journal(now() - timedelta(minutes=5)) == 0
    assert store.compact_journal(now() + timedelta(seconds=1)) == 4
    agent = store.journal("t/done/0/agent")
    assert [e.seq for e in agent if e.body is not None] == [4]
    assert all(e.body is not None for e in store.journal("t/live/0/agent"))
    after = store.journal_size()
    assert after["rows"] == before["rows"] and after["bytes"] < before["bytes"]
    assert (after["compacted_rows"], after["compacted_conversations"]) == (4, 1)


def test_agency_db_reports_and_compacts(tmp_path: Path, pg_url: str) -> None:
    store = Store(open_connector(pg_url))
    try:
        project(store, "done", ProjectStatus.COMPLETED)
    finally:
        store.db.close()

    def status() -> dict[str, int]:
        shown = agency(tmp_path, "db", "status", "--json", AGENCY_DATABASE_URL=pg_url)
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout)["journal"])

    full = status()
    assert (full["rows"], full["conversations"], full["compacted_rows"]) == (6, 2, 0)
    kept = agency(tmp_path, "db", "compact", AGENCY_DATABASE_URL=pg_url)  # 7 days: not yet
    assert kept.returncode == 0 and "0 rows compacted" in kept.stdout, kept.stderr
    done = agency(tmp_path, "db", "compact", AGENCY_DATABASE_URL=pg_url,
                  AGENCY_JOURNAL_RETENTION="0")
    assert done.returncode == 0 and "4 rows compacted" in done.stdout, done.stderr
    after = status()
    assert after["compacted_rows"] == 4 and after["bytes"] < full["bytes"]
    text = agency(tmp_path, "db", "status", AGENCY_DATABASE_URL=pg_url).stdout
    assert "6 rows" in text and "compacted: 4 rows of 1 conversations" in text
    assert "7 days" in text


def test_a_reconciler_pass_compacts_an_ended_projects_journal(pg_url: str) -> None:
    from workers.app import app

    rt = Runtime(Settings(database_url=pg_url, journal_retention=0.0))
    try:
        project(rt.store, "done", ProjectStatus.COMPLETED)
        reconcile(rt, app, lambda: now() + timedelta(seconds=1))
        assert rt.store.journal_size()["compacted_rows"] == 4
        project(rt.store, "next", ProjectStatus.CANCELLED)
        # A few seconds later: not due again (it runs at most once every few minutes).
        assert reconcile(rt, app, lambda: now() + timedelta(seconds=5)).compacted == 0
        assert reconcile(rt, app, lambda: now() + timedelta(minutes=6)).compacted == 4
    finally:
        rt.store.db.close()

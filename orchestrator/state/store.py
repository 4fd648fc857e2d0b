"""The store: the source of truth. Reads, and the writes that change no status (a new project,
events and notes, the ledger and the running token total, a budget, canvas units, ready times);
every status change is a fenced write of the Scheduler (transitions.py)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from orchestrator.domain.constants import (
    CALIBRATE_ON,
    HELD_STATUSES,
    MIN_ID_PREFIX,
    ProjectStatus,
    TaskStatus,
)
from orchestrator.domain.errors import BadInput, ConfigError, NotFound
from orchestrator.domain.estimates import Calibration
from orchestrator.domain.intake import is_utf8, storable
from orchestrator.domain.models import (
    AgentOutput,
    Analysis,
    CallRecord,
    Deliverable,
    JournalEntry,
    JournalTurn,
    LedgerEntry,
    Plan,
    ProjectRecord,
    ReviewRecord,
    TaskRecord,
    Tokens,
    Verdict,
)
from orchestrator.domain.settings import Settings, get_settings

if TYPE_CHECKING:
    from orchestrator.state.transitions import Claim
from orchestrator.state.connector import Connector, Params, Row, Session

__all__ = ["Connector", "Row", "Session", "Store", "connect", "display_url", "get_store",
           "ledger_sums", "now", "open_connector", "progress_text", "upgrade"]


def now() -> datetime:
    return datetime.now(UTC)


def display_url(url: str) -> str:
    """A database URL fit to print: no password, and no query string (it may hold one)."""
    if url.startswith("sqlite:///"):
        return url  # a path: nothing secret, and urlunsplit would drop its `//`
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    netloc = f"{user}@{hostport}" if at and user else hostport
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_connector(url: str, pool_size: int = 4, create_folder: bool = True,
                   pool_idle: float = 10.0, pgbouncer: bool = False) -> Connector:
    """An adapter for a database URL, migrated to the latest schema."""
    connector = connect(url, pool_size, create_folder, pool_idle, pgbouncer)
    connector.migrate()
    return connector


def upgrade(url: str) -> tuple[list[int], int, bool]:
    """Create the database if it does not exist, and apply the pending migrations: the
    versions applied, the version the database is at, and whether it was created."""
    created = False
    if url.startswith(("postgresql://", "postgres://")):
        from orchestrator.state.postgres import create_database

        created = create_database(url)
    connector = connect(url)
    try:
        applied = connector.migrate()
        rows = connector.fetch_all("applied_migrations", {})
    finally:
        connector.close()
    return applied, max((int(r["version"]) for r in rows), default=0), created


def connect(url: str, pool_size: int = 4, create_folder: bool = True,
            pool_idle: float = 10.0, pgbouncer: bool = False) -> Connector:
    """An adapter for a database URL, as the database is (no migration); `pool_size`: the most
    PostgreSQL connections this process opens; `create_folder`: make a SQLite file's folder
    (else a missing one is refused)."""
    connector: Connector
    if url.startswith("sqlite:///"):
        from orchestrator.state.sqlite import SQLiteConnector

        connector = SQLiteConnector(url, create_folder)
    elif url.startswith(("postgresql://", "postgres://")):
        from orchestrator.state.postgres import PostgresConnector

        connector = PostgresConnector(url, max_size=pool_size, idle=pool_idle,
                                      pgbouncer=pgbouncer)
    else:
        scheme = url.split(":", 1)[0]  # never echo the rest: it may hold a password
        raise ConfigError(
            f"AGENCY_DATABASE_URL must start with postgresql:// or sqlite:///, not {scheme}:"
        )
    return connector


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching ids that start with `prefix`, taken literally."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def _tokens(row: Row | None) -> tuple[Tokens, float]:
    if not row:
        return Tokens(), 0.0
    return ledger_sums(row), float(row["cost_usd"] or 0.0)


def ledger_sums(row: Row) -> Tokens:
    """Tokens from a row of ledger sums (`input`, `output`, ... as the usage queries name
    them; a sum over no rows is NULL)."""
    return Tokens(**{name: int(row[name] or 0) for name in (
        "input", "output", "cache_read", "cache_write", "cache_write_1h", "thinking")})


def _call(row: Row) -> CallRecord:
    tokens = Tokens(input=row["input_tokens"], output=row["output_tokens"],
                    cache_read=row["cache_read_tokens"], cache_write=row["cache_write_tokens"],
                    cache_write_1h=row["cache_write_1h_tokens"],
                    thinking=row["thinking_tokens"])
    entry = LedgerEntry(
        role=row["role"], model=row["model"], tokens=tokens, cost_usd=row["cost_usd"],
        latency_ms=row["latency_ms"], attempt=row["attempt"], request_id=row["request_id"],
        message_id=row["message_id"], stop_reason=row["stop_reason"], outcome=row["outcome"],
        batch=bool(row["batch"]))
    return CallRecord(at=row["at"], entry=entry, task_id=row["task_id"],
                      task_index=row["task_index"], task_title=row["task_title"],
                      stale=bool(row["stale"]))


def _project(row: Row, usage: Row | None) -> ProjectRecord:
    tokens, cost = _tokens(usage)
    data: dict[str, Any] = dict(row)
    data["analysis"] = Analysis.model_validate_json(row["analysis"]) if row["analysis"] else None
    data["plan"] = Plan.model_validate_json(row["plan"]) if row["plan"] else None
    data["deliverable"] = (Deliverable.model_validate_json(row["deliverable"])
                           if row.get("deliverable") else None)
    return ProjectRecord.model_validate({**data, "tokens": tokens, "cost_usd": cost})


def conversation_key(task_id: str, since: int, part: str) -> str:
    """The journal's name for one of a task's conversations (`agent`, `review/<round>`) in
    its current run, the one from attempt `since` on (a retry of a task that failed for good
    starts a new one)."""
    return f"t/{task_id}/{since}/{part}"


def _key_around(task_id: str, part: str) -> dict[str, str]:
    """The key's text before and after its run number, for a query that fills that in."""
    before, after = conversation_key(task_id, 0, part).split("/0/", 1)
    return {"before": f"{before}/", "after": f"/{after}"}


def _entry(row: Row) -> JournalEntry:
    return JournalEntry(seq=int(row["seq"]), kind=row["kind"], digest=row["digest"],
                        body=row["body"], attempt=row["attempt"])


def _verdicts(rows: Iterable[Row]) -> dict[int, Verdict]:
    found: dict[int, Verdict] = {}
    for row in rows:
        found.setdefault(int(row["round"]), Verdict(
            verdict=row["verdict"], criteria=json.loads(row["notes"]), summary=row["summary"]))
    return found


@dataclass(frozen=True)
class ToolsRow:
    """A round of tool results for the journal, with the calls' events (kind, detail)."""

    project_id: str
    claim: Claim | None
    conv: str
    seq: int
    body: str
    notes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Work:
    """What an attempt of a task works from (`Store.work_of`)."""

    task: TaskRecord
    project: ProjectRecord
    dependencies: list[TaskRecord]
    verdicts: dict[int, Verdict]
    journal: list[JournalEntry]  # of its agent's conversation (`conversation_key`)


def _task(row: Row, deps: list[str], usage: Row | None) -> TaskRecord:
    tokens, cost = _tokens(usage)
    data: dict[str, Any] = dict(row)
    data["index"] = data.pop("idx")
    data["deliverables"] = json.loads(row["deliverables"])
    data["acceptance_criteria"] = json.loads(row["acceptance_criteria"])
    data["output"] = AgentOutput.model_validate_json(row["output"]) if row["output"] else None
    return TaskRecord.model_validate({**data, "dependencies": deps, "tokens": tokens,
                                      "cost_usd": cost})


class Store:
    """Typed reads and inserts over the connector."""

    def __init__(self, db: Connector) -> None:
        self.db = db

    def insert_project(self, project_id: str, request: str, budget: int | None,
                       project_type: str | None, output_dir: str,
                       plan: Plan | None = None, needs_approval: bool = False,
                       deadline: datetime | None = None, economy: bool = False) -> None:
        with self.db.transaction() as tx:
            tx.send("insert_project", {
                "id": project_id, "request": request, "project_type": project_type,
                "status": ProjectStatus.PENDING.value, "budget_tokens": budget,
                "budget_explicit": budget is not None,
                "output_dir": output_dir, "now": now(),
                "plan": plan.model_dump_json() if plan else None,
                "needs_approval": needs_approval, "deadline": deadline, "economy": economy})
            self.event(tx, project_id, None, "created", None, ProjectStatus.PENDING, None)

    @staticmethod
    def event(tx: Session, project_id: str, task_id: str | None, kind: str,
              from_status: str | None, to_status: str | None, detail: str | None) -> None:
        tx.send("insert_event", {
            "project_id": project_id, "task_id": task_id, "kind": kind,
            "from_status": from_status, "to_status": to_status,
            "detail": storable(detail) if detail is not None else None, "now": now()})

    def assign_units(self, units: dict[str, list[str]]) -> None:
        """Record which launch unit each task belongs to (unit id -> task ids)."""
        with self.db.transaction() as tx:
            for unit, ids in units.items():
                tx.send("assign_unit", {"unit": unit, "ids": ids})

    def resolve_project_id(self, prefix: str) -> str:
        """A full project id from an id or a unique prefix of one (at least 4 characters)."""
        return self._resolve("project", "get_project", "find_projects_by_prefix", prefix)

    def resolve_task_id(self, prefix: str) -> str:
        """A full task id from an id or a unique prefix of one (at least 4 characters)."""
        return self._resolve("task", "get_task", "find_tasks_by_prefix", prefix)

    def _resolve(self, kind: str, by_id: str, by_prefix: str, prefix: str) -> str:
        if not is_utf8(prefix):
            raise NotFound(f"no {kind} with id {prefix!r}")
        if self.db.fetch_one(by_id, {"id": prefix}):
            return prefix
        if len(prefix) < MIN_ID_PREFIX:
            raise BadInput(f"a {kind} id prefix needs at least {MIN_ID_PREFIX} characters; "
                           f"{prefix!r} has {len(prefix)}")
        rows = self.db.fetch_all(by_prefix, {"prefix": _like_prefix(prefix)})
        if not rows:
            raise NotFound(f"no {kind} with id {prefix!r}")
        if len(rows) > 1:
            raise BadInput(f"more than one {kind} id starts with {prefix!r}: give more of it")
        return str(rows[0]["id"])

    def project(self, project_id: str, usage: bool = True) -> ProjectRecord:
        """A project with its ledger's sums; `usage=False` leaves them out (tokens and cost
        read zero) for one query less, for work that does not show them (an agent's project
        brief)."""
        row = self.db.fetch_one("get_project", {"id": project_id})
        if row is None:
            raise NotFound(f"no project with id {project_id!r}")
        sums = self.db.fetch_all("usage_by_project", {"ids": [project_id]}) if usage else []
        return _project(row, sums[0] if sums else None)

    def projects(self, limit: int = 50) -> list[ProjectRecord]:
        rows = self.db.fetch_all("list_projects", {"limit": limit})
        usage = {u["project_id"]: u for u in self.db.fetch_all(
            "usage_by_project", {"ids": [r["id"] for r in rows]})}
        return [_project(r, usage.get(r["id"])) for r in rows]

    def task(self, task_id: str) -> TaskRecord:
        row = self.db.fetch_one("get_task", {"id": task_id})
        if row is None:
            raise NotFound(f"no task with id {task_id!r}")
        deps = [d["id"] for d in self.db.fetch_all("dependency_statuses", {"id": task_id})]
        return _task(row, deps, None)

    def work_of(self, task_id: str) -> Work:
        """What an attempt of the task needs, in one round trip: the task, its project (no
        usage figures), the tasks it depends on (as `dependencies` reads them), its
        verdicts so far (as `verdicts` reads them: none arrives while an attempt runs, since
        a task waiting for its review parks) and its agent's journal."""
        return self.work_from(self.db.fetch_many(self.work_reads(task_id)), task_id)

    @staticmethod
    def work_reads(task_id: str) -> list[tuple[str, Params]]:
        """The reads of `work_of`, for a caller that sends more with them."""
        return [("get_task", {"id": task_id}), ("dependency_tasks", {"id": task_id}),
                ("project_of_task", {"id": task_id}),
                ("every_task_verdict", {"task_id": task_id}),
                ("task_journal_rows", {"id": task_id, **_key_around(task_id, "agent")})]

    @staticmethod
    def work_from(rows: Sequence[list[Row]], task_id: str) -> Work:
        """`work_of`'s answer from the rows of `work_reads`."""
        task_row, dep_rows, project_row, verdict_rows, journal_rows = rows[:5]
        if not task_row or not project_row:
            raise NotFound(f"no task with id {task_id!r}")
        task = _task(task_row[0], [d["id"] for d in dep_rows], None)
        return Work(task=task, project=_project(project_row[0], None),
                    dependencies=[_task(d, [], None) for d in dep_rows],
                    verdicts=_verdicts(r for r in verdict_rows
                                       if int(r["attempt"]) >= task.conversation_from),
                    journal=[_entry(r) for r in journal_rows])

    def unit_heads(self, task_ids: list[str]) -> set[str]:
        """Which of these tasks head their own launch unit."""
        if not task_ids:
            return set()
        return {str(r["id"]) for r in self.db.fetch_all("unit_heads", {"ids": task_ids})}

    def tasks(self, project_id: str) -> list[TaskRecord]:
        rows = self.db.fetch_all("project_tasks", {"project_id": project_id})
        deps: dict[str, list[str]] = {}
        for edge in self.db.fetch_all("project_edges", {"project_id": project_id}):
            deps.setdefault(edge["task_id"], []).append(edge["depends_on"])
        index = {r["id"]: r["idx"] for r in rows}
        usage = {u["task_id"]: u for u in self.db.fetch_all(
            "usage_by_task", {"project_id": project_id})}
        return [_task(r, sorted(deps.get(r["id"], []), key=index.__getitem__),
                      usage.get(r["id"])) for r in rows]

    def question(self, question_id: int) -> Row:
        row = self.db.fetch_one("get_question", {"id": question_id})
        if row is None:
            raise NotFound(f"no question {question_id}")
        return row

    def open_questions(self, project_id: str | None = None) -> list[Row]:
        return self.db.fetch_all("open_questions", {"project_id": project_id})

    def events(self, project_id: str) -> list[Row]:
        return self.db.fetch_all("project_events", {"project_id": project_id})

    def record_usage(self, project_id: str, claim: Claim | None, entry: LedgerEntry,
                     turn: JournalTurn | None = None) -> bool:
        """One ledger row, and the project's running total, in one transaction; with `turn`,
        the turn's journal row in the same transaction (nothing acts on an answer before its
        turn is journaled).

        A task attempt's row is fenced: when the attempt no longer holds its task, the row is
        kept as `stale` (the money was spent) but is not the task's usage, and its turn is not
        journaled; returns False then.
        """
        tokens = entry.tokens
        params = {"project_id": project_id, "task_id": claim.task_id if claim else None,
                  "role": entry.role.value, "model": entry.model, "input_tokens": tokens.input,
                  "output_tokens": tokens.output, "cache_read_tokens": tokens.cache_read,
                  "cache_write_tokens": tokens.cache_write, "thinking_tokens": tokens.thinking,
                  "cache_write_1h_tokens": tokens.cache_write_1h, "cost_usd": entry.cost_usd,
                  "latency_ms": entry.latency_ms, "attempt": entry.attempt,
                  "request_id": entry.request_id, "message_id": entry.message_id,
                  "stop_reason": entry.stop_reason, "outcome": entry.outcome.value,
                  "batch": entry.batch, "now": now()}
        held = HELD_STATUSES
        journal = _journal_params(project_id, claim, turn)
        if claim is not None and self.db.dialect == "postgresql":  # one statement, same effect
            row = self.db.fetch_one(
                "record_attempt_usage" if turn is None else "record_attempt_turn", {
                    **params, **journal, "holder": claim.attempt, "held": held,
                    "id": project_id, "tokens": tokens.budgeted})
            return not (row and row["stale"])
        fresh = True
        with self.db.transaction() as tx:
            if claim is None:
                tx.send("insert_usage", params)
            else:
                row = tx.fetch_one("insert_attempt_usage", {
                    **params, "holder": claim.attempt, "held": held})
                fresh = not (row and row["stale"])
            # Spent is spent: the project's total (and so its budget) counts every paid call.
            tx.send("add_tokens_used", {"id": project_id, "tokens": tokens.budgeted})
            if turn is not None and fresh:
                tx.send("insert_journal", {**journal, "now": params["now"],
                                              "attempt": claim.attempt if claim else None})
        return fresh

    def journal(self, conv: str) -> list[JournalEntry]:
        """A conversation's journal, in order."""
        return [_entry(r) for r in self.db.fetch_all("journal_rows", {"conv": conv})]

    def journal_tools(self, row: ToolsRow) -> None:
        """A round of tool results, journaled once the tools ran, with the calls' events
        in the same transaction: one round trip."""
        with self.db.transaction() as tx:
            self.put_tools(tx, row)

    def put_tools(self, tx: Session, row: ToolsRow) -> None:
        """`journal_tools` inside `tx`."""
        claim = row.claim
        task_id = claim.task_id if claim else None
        tx.send("insert_journal", {
            "project_id": row.project_id, "task_id": task_id, "conv": row.conv,
            "seq": row.seq, "kind": "tools", "attempt": claim.attempt if claim else None,
            "digest": None, "sent": None, "body": row.body, "bytes": len(row.body.encode()),
            "now": now()})
        for kind, detail in row.notes:
            self.event(tx, row.project_id, task_id, kind, None, None, detail)

    def drop_journal(self, conv: str, seq: int) -> None:
        """Forget a conversation's journal from `seq` on (it diverged there)."""
        self.db.execute("drop_journal_from", {"conv": conv, "seq": seq})

    def journal_size(self) -> Row:
        """The journal's rows, bytes and conversations, over every project, and how many of
        its rows and conversations retention compacted."""
        row = self.db.fetch_one("journal_size", {})
        assert row is not None
        return {key: int(value or 0) for key, value in row.items()}

    def compact_journal(self, before: datetime) -> int:
        """Compact the journal of every project completed or cancelled before `before` to
        each conversation's last turn; the number of rows compacted."""
        return self.db.execute("compact_journal", {
            "ended": [ProjectStatus.COMPLETED.value, ProjectStatus.CANCELLED.value],
            "before": before})

    def calls(self, project_id: str) -> list[CallRecord]:
        """The project's ledger, one row per model call, oldest first."""
        return [_call(r) for r in self.db.fetch_all("project_calls",
                                                   {"project_id": project_id})]

    def lost_tasks(self, epoch: str, settled: datetime) -> list[Row]:
        """Ready tasks of running projects (since before `settled`) that no message of the
        broker's epoch carries."""
        return self.db.fetch_all("lost_tasks", {
            "epoch": epoch, "running": ProjectStatus.RUNNING.value, "settled": settled,
            "pending": TaskStatus.PENDING.value})

    def lost_projects(self, epoch: str, settled: datetime) -> list[Row]:
        """Projects waiting for a planning or integration message the broker does not hold."""
        return self.db.fetch_all("lost_projects", {
            "epoch": epoch, "settled": settled,
            "statuses": [ProjectStatus.PENDING.value, ProjectStatus.INTEGRATING.value]})

    def long_ready_tasks(self, before: datetime) -> list[Row]:
        """Ready tasks of running projects that nobody claimed since `before`."""
        return self.db.fetch_all("long_ready_tasks", {
            "before": before, "running": ProjectStatus.RUNNING.value,
            "pending": TaskStatus.PENDING.value})

    def touch_ready(self, task_ids: list[str]) -> None:
        self.db.execute("touch_ready", {"ids": task_ids, "now": now()})

    def clock(self) -> datetime:
        """The database's time: leases are compared on one clock, whatever each machine's.
        (The embedded store lives on one machine: its clock is this one.)"""
        if self.db.dialect == "sqlite":
            return now()
        row = self.db.fetch_one("database_time", {})
        value = row["now"] if row else None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return now()

    def progress(self, project_id: str) -> str:
        """"project 45d03c20: 5/9 done": what a task's result says in Flower."""
        row = self.db.fetch_one("project_progress", {"project_id": project_id,
                                                     "completed": TaskStatus.COMPLETED.value})
        done, total = (int(row["done"]), int(row["total"])) if row else (0, 0)
        return progress_text(project_id, done, total)

    def descendants(self, task_id: str) -> list[str]:
        return [str(r["id"]) for r in self.db.fetch_all("descendants", {"id": task_id})]

    def calibration(self) -> Calibration:
        """What tasks really spent per token estimated, over the latest completed projects."""
        rows = self.db.fetch_all("recent_spend", {"limit": CALIBRATE_ON,
                                                   "completed": ProjectStatus.COMPLETED.value})
        return Calibration.of([(int(r["estimated"]), int(r["spent"])) for r in rows])

    def within_budget(self, project_id: str) -> bool:
        """True while the project has spent less than its budget (or has none)."""
        return self.db.fetch_one("within_budget", {"id": project_id}) is not None

    def unwritten_projects(self) -> list[str]:
        return [r["id"] for r in self.db.fetch_all(
            "unwritten_projects", {"needs_attention": ProjectStatus.NEEDS_ATTENTION.value})]

    def set_error(self, project_id: str, error: str) -> None:
        """The reason of a project that needs attention, said again with what is true now."""
        self.db.execute("set_unwritten_error", {
            "id": project_id, "error": error, "now": now(),
            "needs_attention": ProjectStatus.NEEDS_ATTENTION.value})

    def set_output_dir(self, project_id: str, output_dir: str) -> None:
        self.db.execute("set_output_dir", {"id": project_id, "output_dir": output_dir,
                                           "now": now()})

    def set_budget(self, project_id: str, budget: int) -> None:
        self.db.execute("set_budget", {"id": project_id, "budget_tokens": budget,
                                       "explicit": True, "now": now()})

    def set_activity(self, project_id: str, task_id: str | None, activity: str | None) -> None:
        """What the task (or, without one, the project's own step) is doing right now."""
        if task_id is None:
            self.db.execute("set_project_activity", {"id": project_id, "activity": activity})
        else:
            self.db.execute("set_task_activity", {"id": task_id, "activity": activity})

    def note(self, project_id: str, task_id: str | None, kind: str, detail: str) -> None:
        """An event that changes no status: a retry, a warning."""
        with self.db.transaction() as tx:
            self.event(tx, project_id, task_id, kind, None, None, detail)

    def notes(self, project_id: str, kinds: list[str]) -> list[Row]:
        """The project's events of these kinds (task_id, kind, detail, at), oldest first."""
        return self.db.fetch_all("task_events", {"project_id": project_id, "kinds": kinds})

    def reviews(self, project_id: str) -> dict[str, list[ReviewRecord]]:
        """Every verdict on the project's tasks, oldest first, per task id."""
        found: dict[str, list[ReviewRecord]] = {}
        for row in self.db.fetch_all("project_reviews", {"project_id": project_id}):
            found.setdefault(row["task_id"], []).append(ReviewRecord(
                reviewer=row["reviewer"], verdict=row["verdict"], round=row["round"],
                attempt=row["attempt"], notes=json.loads(row["notes"]),
                summary=row["summary"], at=row["at"], worker=row["worker"],
                checks=json.loads(row["checks"])))
        return found

    def screenshots(self, project_id: str) -> dict[str, bytes]:
        """The latest screenshot of each of the project's HTML pages, by artifact path."""
        return {row["path"]: bytes(row["png"])
                for row in self.db.fetch_all("project_screenshots", {"project_id": project_id})}

    def question_for_use(self, task_id: str, tool_use_id: str) -> Row | None:
        """The question a tool call asked, if it asked one."""
        return self.db.fetch_one("question_for_use", {"task_id": task_id,
                                                      "tool_use_id": tool_use_id})

    def parked_unsent(self, epoch: str, settled: datetime) -> list[Row]:
        """Parked or woken tasks whose next message the broker does not hold."""
        return self.db.fetch_all("parked_unsent", {
            "running": ProjectStatus.RUNNING.value, "held": HELD_STATUSES, "epoch": epoch,
            "settled": settled})

    def batch_call(self, conv: str, seq: int) -> Row | None:
        """The batched turn at (conv, seq), if one was sent."""
        return self.db.fetch_one("batch_call", {"conv": conv, "seq": seq})

    def open_batch_calls(self, before: datetime) -> list[Row]:
        """Batched turns sent before `before` whose results are not in."""
        return self.db.fetch_all("open_batch_calls", {"before": before})

    def finish_batch_call(self, call_id: int) -> bool:
        """The batched turn's result is in (or the batch gave none): True when this closed it."""
        return self.db.fetch_one("finish_batch_call", {"id": call_id, "now": now()}) is not None

    def due_questions(self, at: datetime) -> list[Row]:
        """Open questions past their time."""
        return self.db.fetch_all("due_questions", {"now": at})

    def retries(self, project_id: str) -> dict[str | None, list[Row]]:
        """Retry events per task id (None: the project's own calls)."""
        found: dict[str | None, list[Row]] = {}
        for row in self.db.fetch_all("task_events", {"project_id": project_id,
                                                     "kinds": ["retry"]}):
            found.setdefault(row["task_id"], []).append(row)
        return found


def _journal_params(project_id: str, claim: Claim | None, turn: JournalTurn | None
                    ) -> dict[str, object]:
    if turn is None:
        return {}
    return {"task_id": claim.task_id if claim else None, "conv": turn.conv, "seq": turn.seq,
            "kind": "turn", "digest": turn.digest,
            "sent": turn.sent, "body": turn.body,
            "bytes": len(turn.sent.encode()) + len(turn.body.encode()),
            "project_id": project_id}


def progress_text(project_id: str, done: int, total: int) -> str:
    """"project 45d03c20: 5/9 done": what a task's result says in Flower."""
    return f"project {project_id[:8]}: {done}/{total} done"


_lock = threading.Lock()
_stores: dict[tuple[int, str], Store] = {}


def get_store(settings: Settings | None = None) -> Store:
    """The process's store for the configured database (one pool per process, made after fork)."""
    settings = settings or get_settings()
    url = settings.effective_database_url
    key = (os.getpid(), url)
    with _lock:
        if key not in _stores:
            # The default home (.agency) is made; a folder named in AGENCY_DATABASE_URL must
            # exist: a mistyped path is refused rather than made into folders and a database.
            _stores[key] = Store(open_connector(url, settings.db_pool_size,
                                                create_folder=settings.database_url is None,
                                                pool_idle=settings.db_pool_idle,
                                                pgbouncer=settings.db_pgbouncer))
        return _stores[key]

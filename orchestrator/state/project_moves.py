"""A project's fenced status writes: compare-and-set from the lifecycle table, each with an event.

Claims give an attempt a token (the row's `attempts`) and a lease; every later write of that
attempt is fenced by the token, so a stale attempt can never overwrite a newer one.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

from orchestrator.domain import lifecycle
from orchestrator.domain.dag import Graph, Schedule
from orchestrator.domain.errors import IllegalMove, Stale
from orchestrator.domain.lifecycle import (
    HELD_STATUSES,
    PROJECT_EXPIRIES,
    PROJECT_FROM,
    PROJECT_MOVES,
    TERMINAL_PROJECT_STATUSES,
    By,
    ProjectStatus,
    TaskStatus,
)
from orchestrator.domain.models import Analysis, Deliverable, Plan
from orchestrator.state import knowledge
from orchestrator.state.claims import Moved, ProjectClaim
from orchestrator.state.store import Row, Session, Store, now

P, T = ProjectStatus, TaskStatus

# Moving to these clears the error of an earlier failure.
CLEARS_ERROR = frozenset({P.RUNNING, P.COMPLETED, P.PENDING})
# What a cancellation (or a rejected plan) does to the tasks: the ones not started never will.
CANCEL_TASKS = (T.CANCELLED, lifecycle.sources(lifecycle.TASK_MOVES, T.CANCELLED, By.CANCEL))


def values(statuses: frozenset[ProjectStatus] | frozenset[TaskStatus]) -> list[str]:
    """Status values for `= ANY(:allowed)`."""
    return sorted(s.value for s in statuses)


def _finished_at(to: ProjectStatus) -> datetime | None:
    return now() if to in TERMINAL_PROJECT_STATUSES else None


def task_row(project_id: str, task_id: str, index: int, plan: Plan, sched: Schedule,
             critical: set[int], waiting: int) -> dict[str, object]:
    """The `insert_task` parameters of a plan's task that waits on `waiting` dependencies."""
    task = plan.tasks[index]
    return {"id": task_id, "project_id": project_id, "idx": index, "title": task.title,
            "description": task.description, "agent_type": task.agent_type,
            "priority": sched.priority(index).value, "estimated_tokens": task.estimated_tokens,
            "deliverables": json.dumps(task.deliverables),
            "acceptance_criteria": json.dumps(task.acceptance_criteria),
            "on_critical_path": index in critical,
            "status": (T.BLOCKED if waiting else T.PENDING).value, "pending_deps": waiting,
            "ready_at": None if waiting else now()}


def _stale(claim: ProjectClaim) -> Stale:
    return Stale(f"project {claim.project_id}: attempt {claim.attempt} no longer holds "
                 f"its {claim.status.value}")


class ProjectMoves:
    """Moves projects through their lives, atomically, in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _transition(self, tx: Session, project_id: str, to: ProjectStatus,
                    allowed: frozenset[ProjectStatus], error: str | None,
                    clear_error: bool) -> Moved:
        """The compare-and-set of a project's status. Only a refusal reads the row, in the same
        transaction, to name the status that refused it: the moves that succeed (nearly all, on
        the hot path) stay one statement."""
        row = tx.fetch_one("transition_project", {
            "id": project_id, "to_status": to.value, "allowed": values(allowed),
            "error": error, "clear_error": clear_error, "now": now(),
            "finished_at": _finished_at(to), "failed": P.FAILED.value})
        if row is not None:
            return Moved(True, to)
        locked = tx.fetch_one("project_status_locked", {"id": project_id})
        return Moved(False, P(locked["status"]) if locked else None)

    def move_project(self, project_id: str, to: ProjectStatus, error: str | None = None,
                     tx: Session | None = None) -> Moved:
        """Compare-and-set a project's status; false when it was not in an allowed state."""
        allowed = PROJECT_FROM[to]
        if not allowed:
            raise IllegalMove(f"no legal move leads a project to {to.value}")
        if tx is None:
            with self.store.db.transaction() as own:
                return self.move_project(project_id, to, error, own)
        moved = self._transition(tx, project_id, to, allowed, error, to in CLEARS_ERROR)
        if moved:
            self.store.event(tx, project_id, None, "project", None, to.value, error)
        return moved

    def operator_move(self, project_id: str, to: ProjectStatus, allowed: ProjectStatus,
                      detail: str) -> Moved:
        """An operator's compare-and-set of a project's status (pause, resume), recorded as an
        `operator` event in the same transaction."""
        lifecycle.require(PROJECT_MOVES, allowed, to)
        with self.store.db.transaction() as tx:
            moved = self._transition(tx, project_id, to, frozenset({allowed}), None, False)
            if moved:
                self.store.event(tx, project_id, None, "operator", allowed.value, to.value,
                                 detail)
        return moved

    def written_out(self, project_id: str, detail: str) -> Moved:
        """A project whose output folder could not be written, completed once its stored
        deliverable is (compare-and-set from needs_attention)."""
        with self.store.db.transaction() as tx:
            moved = self._transition(tx, project_id, P.COMPLETED,
                                     frozenset({P.NEEDS_ATTENTION}), None, True)
            if moved:
                self.store.event(tx, project_id, None, "project", P.NEEDS_ATTENTION.value,
                                 P.COMPLETED.value, detail)
        return moved

    def decide_plan(self, project_id: str, to: ProjectStatus, detail: str) -> Moved:
        """A person's approval (to running) or rejection (to cancelled) of a waiting plan:
        compare-and-set from awaiting_approval only, recorded as an `operator` event."""
        lifecycle.require(PROJECT_MOVES, P.AWAITING_APPROVAL, to)
        with self.store.db.transaction() as tx:
            moved = self._transition(tx, project_id, to, frozenset({P.AWAITING_APPROVAL}),
                                     detail if to is P.CANCELLED else None, False)
            if not moved:
                return moved
            if to is P.CANCELLED:  # none of its tasks will run
                self._cancel_tasks(tx, project_id)
            self.store.event(tx, project_id, None, "operator", P.AWAITING_APPROVAL.value,
                             to.value, detail)
        return moved

    @staticmethod
    def _cancel_tasks(tx: Session, project_id: str) -> None:
        to, allowed = CANCEL_TASKS
        tx.fetch_all("transition_project_tasks", {
            "project_id": project_id, "to_status": to.value, "allowed": values(allowed)})

    def claim_project(self, project_id: str, to: ProjectStatus,
                      lease_until: datetime) -> ProjectClaim | None:
        """Take a project's planning (from pending) or integration (integrating, unleased)."""
        allowed = lifecycle.require_into(PROJECT_MOVES, to, By.CLAIM)
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("claim_project", {
                "id": project_id, "to_status": to.value, "allowed": values(allowed),
                "lease_until": lease_until, "now": now()})
            if row is None:
                return None
            self.store.event(tx, project_id, None, "project", None, to.value,
                             f"attempt {row['attempts']}")
        return ProjectClaim(project_id, to, int(row["attempts"]))

    def move_claimed(self, claim: ProjectClaim, to: ProjectStatus, error: str | None = None,
                     tx: Session | None = None) -> None:
        """Move a project its attempt holds; Stale when a newer attempt took it over."""
        lifecycle.require(PROJECT_MOVES, claim.status, to)
        if tx is None:
            with self.store.db.transaction() as own:
                return self.move_claimed(claim, to, error, own)
        row = tx.fetch_one("move_claimed_project", {
            "id": claim.project_id, "attempt": claim.attempt, "from_status": claim.status.value,
            "to_status": to.value, "error": error, "clear_error": to in CLEARS_ERROR,
            "now": now(), "finished_at": _finished_at(to)})
        if row is None:
            raise _stale(claim)
        self.store.event(tx, claim.project_id, None, "project", claim.status.value, to.value,
                         error)
        return None

    def _hold_project(self, tx: Session, claim: ProjectClaim) -> None:
        if tx.fetch_one("holds_project", {"id": claim.project_id, "attempt": claim.attempt,
                                          "status": claim.status.value, "now": now()}) is None:
            raise _stale(claim)

    def save_deliverable(self, claim: ProjectClaim, deliverable: Deliverable) -> None:
        """Fenced: a stale integration attempt cannot overwrite a newer one's deliverable."""
        row = self.store.db.fetch_one("set_project_deliverable", {
            "id": claim.project_id, "deliverable": deliverable.model_dump_json(), "now": now(),
            "attempt": claim.attempt, "status": claim.status.value})
        if row is None:
            raise _stale(claim)

    def save_analysis(self, claim: ProjectClaim, analysis: Analysis, budget: int) -> None:
        """The analysis, with `budget` as the project's budget while it is planned unless it
        has one (--budget); once planned, the plan's need replaces it (`save_plan`)."""
        with self.store.db.transaction() as tx:
            self._hold_project(tx, claim)
            tx.send("set_project_analysis", {
                "id": claim.project_id, "analysis": analysis.model_dump_json(),
                "project_type": analysis.project_type.value,
                "complexity": analysis.complexity.value, "budget_tokens": budget, "now": now()})
            knowledge.reindex_project(tx, claim.project_id)

    def save_plan(self, claim: ProjectClaim, plan: Plan, graph: Graph, sched: Schedule,
                  project_type: str, budget: int) -> list[str]:
        """Persist the plan's tasks and edges in one transaction, with `budget` as the
        project's unless a person set one; return task ids by index."""
        with self.store.db.transaction() as tx:
            self._hold_project(tx, claim)
            tx.send("set_project_plan", {"id": claim.project_id,
                                            "plan": plan.model_dump_json(),
                                            "project_type": project_type,
                                            "budget_tokens": budget, "now": now()})
            knowledge.reindex_project(tx, claim.project_id)
            ids = self._insert_tasks(tx, claim.project_id, plan, graph, sched)
            self.store.event(tx, claim.project_id, None, "planned", None, None,
                             f"{len(ids)} tasks, critical path {list(sched.critical_path)}")
        return ids

    def replace_plan(self, project_id: str, plan: Plan, graph: Graph, sched: Schedule,
                     detail: str, budget: int) -> Moved:
        """A person's edit of a plan that waits for approval: the new plan's tasks replace the
        old ones in one transaction; false (nothing changed) unless it is still waiting."""
        (waiting,) = lifecycle.PLAN_WAITS
        with self.store.db.transaction() as tx:
            locked = tx.fetch_one("project_status_locked", {"id": project_id})
            found = P(locked["status"]) if locked else None
            row = tx.fetch_one("replace_waiting_plan", {
                "id": project_id, "plan": plan.model_dump_json(), "now": now(),
                "status": waiting.value, "budget_tokens": budget})
            if row is None:
                return Moved(False, found)
            tx.send("delete_project_edges", {"project_id": project_id})
            tx.send("delete_project_tasks", {"project_id": project_id})
            knowledge.reindex_project(tx, project_id)
            self._insert_tasks(tx, project_id, plan, graph, sched)
            self.store.event(tx, project_id, None, "operator", None, None, detail)
        return Moved(True, found)

    def add_tasks(self, project_id: str, plan: Plan, graph: Graph, sched: Schedule, first: int,
                  detail: str, extra_budget: int = 0) -> list[str] | None:
        """Insert the plan's tasks from index `first` on into a running or paused project, in
        one transaction under the project's lock (a completion counting down at the same time
        waits for it, so each new task counts exactly its unfinished dependencies), and raise
        its budget (if it has one) by `extra_budget`; None (nothing added) when the project is
        neither."""
        ids: list[str] = []
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("lock_project", {"id": project_id, "now": now()})
            if row is None or P(row["status"]) not in lifecycle.TASKS_RUN:
                return None
            existing = {int(r["idx"]): r for r in tx.fetch_all(
                "project_tasks", {"project_id": project_id})}
            if sorted(existing) != list(range(first)):
                return None  # someone else added tasks meanwhile: numbering has moved
            by_index = {i: str(r["id"]) for i, r in existing.items()}
            critical = set(sched.critical_path)
            for index in range(first, len(plan.tasks)):
                by_index[index] = str(uuid.uuid4())
                ids.append(by_index[index])
            for index in range(first, len(plan.tasks)):
                waiting = sum(1 for d in graph.deps[index]
                              if d >= first or existing[d]["status"] != T.COMPLETED.value)
                tx.send("insert_task", task_row(project_id, by_index[index], index, plan,
                                                   sched, critical, waiting))
                for dep in graph.deps[index]:
                    tx.send("insert_edge", {"task_id": by_index[index],
                                               "depends_on": by_index[dep]})
            tx.send("set_plan_only", {"id": project_id, "plan": plan.model_dump_json(),
                                         "now": now()})
            grown = tx.fetch_one("grow_budget", {"id": project_id, "tokens": extra_budget,
                                                 "now": now()}) if extra_budget else None
            if grown is not None:
                detail += (f"; budget raised by {extra_budget} to {int(grown['budget_tokens'])} "
                           "tokens")
            knowledge.reindex_project(tx, project_id)
            self.store.event(tx, project_id, None, "operator", None, None, detail)
        return ids

    @staticmethod
    def _insert_tasks(tx: Session, project_id: str, plan: Plan, graph: Graph,
                      sched: Schedule) -> list[str]:
        ids = [str(uuid.uuid4()) for _ in plan.tasks]
        critical = set(sched.critical_path)
        for index in range(len(plan.tasks)):
            tx.send("insert_task", task_row(project_id, ids[index], index, plan, sched,
                                               critical, len(graph.deps[index])))
        for index, deps in enumerate(graph.deps):
            for dep in deps:
                tx.send("insert_edge", {"task_id": ids[index], "depends_on": ids[dep]})
        return ids

    def renew_project(self, claim: ProjectClaim, lease_until: datetime) -> bool:
        return self.store.db.fetch_one("renew_project_lease", {
            "id": claim.project_id, "attempt": claim.attempt, "allowed": [claim.status.value],
            "lease_until": lease_until}) is not None

    def mark_sent(self, task_ids: list[str], epoch: str) -> None:
        """These tasks travel in messages published in the broker's epoch `epoch`."""
        self.store.db.execute("mark_sent", {"ids": task_ids, "epoch": epoch, "now": now()})

    def mark_project_sent(self, project_id: str, epoch: str) -> None:
        self.store.db.execute("mark_project_sent", {"id": project_id, "epoch": epoch})

    def expire_project_leases(self, at: datetime) -> list[Row]:
        """Planning whose attempt died goes back to pending; integration is sent again."""
        expired: list[Row] = []
        with self.store.db.transaction() as tx:
            for from_status, to in PROJECT_EXPIRIES:
                for row in tx.fetch_all("expire_project_leases", {
                        "from_status": from_status.value, "to_status": to.value,
                        "now": at}):
                    self.store.event(tx, row["id"], None, "retry", from_status.value, to.value,
                                     f"{from_status.value} attempt's lease expired; "
                                     "sent again")
                    expired.append(row)
        return expired

    def cancel_project(self, project_id: str, by: str = "the user") -> Moved:
        """Cancel a project and every task that has not started."""
        with self.store.db.transaction() as tx:
            moved = self.move_project(project_id, P.CANCELLED, f"cancelled by {by}", tx)
            if not moved:
                return moved
            self.store.event(tx, project_id, None, "operator", None, P.CANCELLED.value,
                             f"cancelled by {by}")
            self._cancel_tasks(tx, project_id)
            tx.fetch_all("cancel_idle_held_tasks", {
                "project_id": project_id, "to_status": T.CANCELLED.value,
                "held": HELD_STATUSES, "error": "its project was cancelled", "now": now()})
        return moved

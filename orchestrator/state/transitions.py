"""The one owner of status changes: every transition is compare-and-set and leaves an event.

Claims give an attempt a token (the row's `attempts`) and a lease; every later write of that
attempt is fenced by the token, so a stale attempt can never overwrite a newer one.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from orchestrator.domain.constants import (
    HELD_STATUSES,
    TERMINAL_PROJECT_STATUSES,
    ProjectStatus,
    TaskStatus,
)
from orchestrator.domain.dag import Graph, Schedule
from orchestrator.domain.errors import BadInput, Stale
from orchestrator.domain.models import AgentOutput, Analysis, Deliverable, Plan, Verdict
from orchestrator.state import knowledge
from orchestrator.state.store import Row, Session, Store, now

P, T = ProjectStatus, TaskStatus

# Which statuses a project may move to each status from.
PROJECT_FROM: dict[ProjectStatus, frozenset[ProjectStatus]] = {
    P.PENDING: frozenset({P.PLANNING, P.BUDGET_EXHAUSTED, P.FAILED}),  # re-plan
    P.PLANNING: frozenset({P.PENDING}),
    P.RUNNING: frozenset({P.PLANNING, P.BUDGET_EXHAUSTED, P.FAILED, P.NEEDS_ATTENTION,
                          P.AWAITING_APPROVAL, P.PAUSED}),
    P.PAUSED: frozenset({P.RUNNING}),
    P.INTEGRATING: frozenset({P.RUNNING, P.BUDGET_EXHAUSTED, P.FAILED}),
    P.COMPLETED: frozenset({P.INTEGRATING}),
    P.FAILED: frozenset({P.PENDING, P.PLANNING, P.RUNNING, P.INTEGRATING}),
    P.CANCELLED: frozenset({P.PENDING, P.PLANNING, P.RUNNING, P.INTEGRATING,
                            P.BUDGET_EXHAUSTED, P.FAILED, P.NEEDS_ATTENTION,
                            P.AWAITING_APPROVAL, P.PAUSED}),
    P.AWAITING_APPROVAL: frozenset({P.PLANNING}),
    P.BUDGET_EXHAUSTED: frozenset({P.PLANNING, P.RUNNING, P.INTEGRATING, P.PAUSED}),
    P.NEEDS_ATTENTION: frozenset({P.RUNNING, P.PAUSED}),
}
# Moving to these clears the error of an earlier failure.
_CLEARS_ERROR = frozenset({P.RUNNING, P.COMPLETED, P.PENDING})
_LIVE_TASKS = frozenset({T.PENDING, T.IN_PROGRESS, T.REVIEW, T.NEEDS_INPUT})
# The statuses an attempt holds its task in: working on it, or having it reviewed.
HELD = HELD_STATUSES


def _task_row(project_id: str, task_id: str, index: int, plan: Plan, sched: Schedule,
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


@dataclass(frozen=True)
class Move:
    """A named task transition: compare-and-set from `allowed` to `to`."""

    to: TaskStatus
    allowed: frozenset[TaskStatus]


START = Move(T.IN_PROGRESS, frozenset({T.PENDING}))
CANCEL = Move(T.CANCELLED, frozenset({T.PENDING, T.BLOCKED}))
RELEASE = Move(T.PENDING, frozenset({T.BLOCKED}))  # the last dependency completed
REVIVE = Move(T.PENDING, frozenset({T.FAILED}))  # resume and retry


def _values(statuses: frozenset[ProjectStatus] | frozenset[TaskStatus]) -> list[str]:
    """Status values for `= ANY(:allowed)`."""
    return sorted(s.value for s in statuses)


@dataclass(frozen=True)
class Completion:
    """What a task's completion released: dependents now ready, and whether it was the last."""

    ready: list[str]
    project_done: bool
    # The project's tasks completed and in all, as the completion's transaction counted them
    # (None when not counted): what the task's result says in Flower, with no query more.
    done: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class Claim:
    """An attempt that holds a task: `attempt` is its fencing token."""

    project_id: str
    task_id: str
    attempt: int


@dataclass(frozen=True)
class ProjectClaim:
    """An attempt that holds a project's planning or integration."""

    project_id: str
    status: ProjectStatus
    attempt: int


class Scheduler:
    """Moves projects and tasks through their lives, atomically, in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # Projects ---------------------------------------------------------------------------------

    def move_project(self, project_id: str, to: ProjectStatus, error: str | None = None,
                     tx: Session | None = None) -> bool:
        """Compare-and-set a project's status; False when it was not in an allowed state."""
        if tx is None:
            with self.store.db.transaction() as own:
                return self.move_project(project_id, to, error, own)
        row = tx.fetch_one("transition_project", {
            "id": project_id, "to_status": to.value, "allowed": _values(PROJECT_FROM[to]),
            "error": error, "clear_error": to in _CLEARS_ERROR, "now": now(),
            "finished_at": now() if to in TERMINAL_PROJECT_STATUSES else None})
        if row is not None:
            self.store.event(tx, project_id, None, "project", None, to.value, error)
        return row is not None

    def operator_move(self, project_id: str, to: ProjectStatus, allowed: ProjectStatus,
                      detail: str) -> bool:
        """An operator's compare-and-set of a project's status (pause, resume), recorded as an
        `operator` event in the same transaction."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("transition_project", {
                "id": project_id, "to_status": to.value, "allowed": [allowed.value],
                "error": None, "clear_error": False, "now": now(), "finished_at": None})
            if row is None:
                return False
            self.store.event(tx, project_id, None, "operator", allowed.value, to.value, detail)
        return True

    def decide_plan(self, project_id: str, to: ProjectStatus, detail: str) -> bool:
        """A person's approval (to running) or rejection (to cancelled) of a waiting plan:
        compare-and-set from awaiting_approval only, recorded as an `operator` event."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("transition_project", {
                "id": project_id, "to_status": to.value,
                "allowed": [P.AWAITING_APPROVAL.value],
                "error": detail if to is P.CANCELLED else None, "clear_error": False,
                "now": now(), "finished_at": now() if to in TERMINAL_PROJECT_STATUSES else None})
            if row is None:
                return False
            if to is P.CANCELLED:  # none of its tasks will run
                tx.fetch_all("transition_project_tasks", {
                    "project_id": project_id, "to_status": CANCEL.to.value,
                    "allowed": _values(CANCEL.allowed)})
            self.store.event(tx, project_id, None, "operator", P.AWAITING_APPROVAL.value,
                             to.value, detail)
        return True

    def claim_project(self, project_id: str, to: ProjectStatus,
                      lease_until: datetime) -> ProjectClaim | None:
        """Take a project's planning (from pending) or integration (integrating, unleased)."""
        allowed = [P.PENDING.value] if to is P.PLANNING else [P.INTEGRATING.value]
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("claim_project", {
                "id": project_id, "to_status": to.value, "allowed": allowed,
                "lease_until": lease_until, "now": now()})
            if row is None:
                return None
            self.store.event(tx, project_id, None, "project", None, to.value,
                             f"attempt {row['attempts']}")
        return ProjectClaim(project_id, to, int(row["attempts"]))

    def move_claimed(self, claim: ProjectClaim, to: ProjectStatus, error: str | None = None,
                     tx: Session | None = None) -> None:
        """Move a project its attempt holds; Stale when a newer attempt took it over."""
        if tx is None:
            with self.store.db.transaction() as own:
                return self.move_claimed(claim, to, error, own)
        row = tx.fetch_one("move_claimed_project", {
            "id": claim.project_id, "attempt": claim.attempt, "from_status": claim.status.value,
            "to_status": to.value, "error": error, "clear_error": to in _CLEARS_ERROR,
            "now": now(), "finished_at": now() if to in TERMINAL_PROJECT_STATUSES else None})
        if row is None:
            raise Stale(f"project {claim.project_id}: attempt {claim.attempt} no longer holds "
                        f"its {claim.status.value}")
        self.store.event(tx, claim.project_id, None, "project", claim.status.value, to.value,
                         error)
        return None

    def _hold_project(self, tx: Session, claim: ProjectClaim) -> None:
        if tx.fetch_one("holds_project", {"id": claim.project_id, "attempt": claim.attempt,
                                          "status": claim.status.value, "now": now()}) is None:
            raise Stale(f"project {claim.project_id}: attempt {claim.attempt} no longer holds "
                        f"its {claim.status.value}")

    def save_deliverable(self, claim: ProjectClaim, deliverable: Deliverable) -> None:
        """Fenced: a stale integration attempt cannot overwrite a newer one's deliverable."""
        row = self.store.db.fetch_one("set_project_deliverable", {
            "id": claim.project_id, "deliverable": deliverable.model_dump_json(), "now": now(),
            "attempt": claim.attempt, "status": claim.status.value})
        if row is None:
            raise Stale(f"project {claim.project_id}: attempt {claim.attempt} no longer holds "
                        f"its {claim.status.value}")

    def save_analysis(self, claim: ProjectClaim, analysis: Analysis, budget: int) -> None:
        with self.store.db.transaction() as tx:
            self._hold_project(tx, claim)
            tx.execute("set_project_analysis", {
                "id": claim.project_id, "analysis": analysis.model_dump_json(),
                "project_type": analysis.project_type.value,
                "complexity": analysis.complexity.value, "budget_tokens": budget, "now": now()})
            knowledge.reindex_project(tx, claim.project_id)

    def save_plan(self, claim: ProjectClaim, plan: Plan, graph: Graph, sched: Schedule,
                  project_type: str, budget: int) -> list[str]:
        """Persist the plan's tasks and edges in one transaction; return task ids by index."""
        with self.store.db.transaction() as tx:
            self._hold_project(tx, claim)
            tx.execute("set_project_plan", {"id": claim.project_id,
                                            "plan": plan.model_dump_json(),
                                            "project_type": project_type,
                                            "budget_tokens": budget, "now": now()})
            knowledge.reindex_project(tx, claim.project_id)
            ids = self._insert_tasks(tx, claim.project_id, plan, graph, sched)
            self.store.event(tx, claim.project_id, None, "planned", None, None,
                             f"{len(ids)} tasks, critical path {list(sched.critical_path)}")
        return ids

    def replace_plan(self, project_id: str, plan: Plan, graph: Graph, sched: Schedule,
                     detail: str) -> bool:
        """A person's edit of a plan that waits for approval: the new plan's tasks replace the
        old ones in one transaction; False (nothing changed) unless it is still waiting."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("replace_waiting_plan", {
                "id": project_id, "plan": plan.model_dump_json(), "now": now(),
                "status": P.AWAITING_APPROVAL.value})
            if row is None:
                return False
            tx.execute("delete_project_edges", {"project_id": project_id})
            tx.execute("delete_project_tasks", {"project_id": project_id})
            knowledge.reindex_project(tx, project_id)
            self._insert_tasks(tx, project_id, plan, graph, sched)
            self.store.event(tx, project_id, None, "operator", None, None, detail)
        return True

    def add_tasks(self, project_id: str, plan: Plan, graph: Graph, sched: Schedule, first: int,
                  detail: str, extra_budget: int = 0) -> list[str] | None:
        """Insert the plan's tasks from index `first` on into a running or paused project, in
        one transaction under the project's lock (a completion counting down at the same time
        waits for it, so each new task counts exactly its unfinished dependencies), and raise
        its budget (if it has one) by `extra_budget`; None (nothing added) when the project is
        neither."""
        ids: list[str] = []
        with self.store.db.transaction() as tx:
            tx.execute("lock_project", {"id": project_id, "now": now()})
            row = tx.fetch_one("get_project", {"id": project_id})
            if row is None or row["status"] not in (P.RUNNING.value, P.PAUSED.value):
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
                tx.execute("insert_task", _task_row(project_id, by_index[index], index, plan,
                                                    sched, critical, waiting))
                for dep in graph.deps[index]:
                    tx.execute("insert_edge", {"task_id": by_index[index],
                                               "depends_on": by_index[dep]})
            tx.execute("set_plan_only", {"id": project_id, "plan": plan.model_dump_json(),
                                         "now": now()})
            if extra_budget and row["budget_tokens"] is not None:
                tx.execute("grow_budget", {"id": project_id, "tokens": extra_budget,
                                           "now": now()})
                detail += (f"; budget raised by {extra_budget} to "
                           f"{int(row['budget_tokens']) + extra_budget} tokens")
            knowledge.reindex_project(tx, project_id)
            self.store.event(tx, project_id, None, "operator", None, None, detail)
        return ids

    @staticmethod
    def _insert_tasks(tx: Session, project_id: str, plan: Plan, graph: Graph,
                      sched: Schedule) -> list[str]:
        ids = [str(uuid.uuid4()) for _ in plan.tasks]
        critical = set(sched.critical_path)
        for index in range(len(plan.tasks)):
            tx.execute("insert_task", _task_row(project_id, ids[index], index, plan, sched,
                                                critical, len(graph.deps[index])))
        for index, deps in enumerate(graph.deps):
            for dep in deps:
                tx.execute("insert_edge", {"task_id": ids[index], "depends_on": ids[dep]})
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

    # Tasks ------------------------------------------------------------------------------------

    def start_task(self, task_id: str, worker: str, lease_until: datetime) -> Claim | None:
        """Claim a ready task for this worker; None when it is not pending with all deps done."""
        params = {"id": task_id, "to_status": START.to.value, "allowed": _values(START.allowed),
                  "worker": worker, "now": now(), "lease_until": lease_until}
        if self.store.db.dialect == "postgresql":  # the claim and its event in one statement
            row = self.store.db.fetch_one("start_task_noted",
                                          {**params, "from_status": T.PENDING.value})
            if row is None:
                return None
            return Claim(project_id=row["project_id"], task_id=task_id,
                         attempt=int(row["attempts"]))
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("start_task", params)
            if row is None:
                return None
            self.store.event(tx, row["project_id"], task_id, "task", T.PENDING.value,
                             T.IN_PROGRESS.value, f"{worker}, attempt {row['attempts']}")
        return Claim(project_id=row["project_id"], task_id=task_id, attempt=int(row["attempts"]))

    def renew_task(self, claim: Claim, lease_until: datetime) -> bool:
        return self.store.db.fetch_one("renew_task_lease", {
            "id": claim.task_id, "attempt": claim.attempt, "held": HELD,
            "lease_until": lease_until}) is not None

    def count_call(self, claim: Claim, cap: int) -> bool:
        """Count one model call of this attempt; False when the task's cap is reached."""
        params = {"id": claim.task_id, "attempt": claim.attempt, "held": HELD}
        if self.store.db.fetch_one("count_model_call", {**params, "cap": cap}) is not None:
            return True
        if self.store.db.fetch_one("holds_task", params) is None:
            raise self._stale(claim)
        return False

    def _finish(self, tx: Session, claim: Claim, to: TaskStatus, output: str | None,
                error: str | None) -> Row:
        row = tx.fetch_one("finish_attempt", {
            "id": claim.task_id, "attempt": claim.attempt, "held": HELD,
            "to_status": to.value, "output": output, "error": error,
            "finished_at": now() if to is not T.PENDING else None,
            "ready_at": now() if to is T.PENDING else None})
        if row is None:
            raise self._stale(claim)
        self.store.event(tx, claim.project_id, claim.task_id, "task", None, to.value, error)
        return row

    @staticmethod
    def _stale(claim: Claim) -> Stale:
        return Stale(f"task {claim.task_id}: attempt {claim.attempt} no longer holds it")

    def complete_task(self, claim: Claim, output: AgentOutput) -> Completion:
        """Complete a task and count down its dependents, atomically; Stale if fenced out."""
        ready: list[str] = []
        with self.store.db.transaction() as tx:
            tx.execute("lock_project", {"id": claim.project_id, "now": now()})
            try:
                row = self._finish(tx, claim, T.COMPLETED, output.model_dump_json(), None)
            except Stale:
                if not self._completed_by(tx, claim):
                    raise
                # This attempt's own completion committed, but its reply was lost (the
                # database went away during COMMIT): carry on as the completer did.
                return Completion(ready=self._ready_dependents(tx, claim.task_id),
                                  project_done=False)
            knowledge.index_output(tx, claim.project_id, claim.task_id, row["idx"], row["title"],
                                   row["agent_type"], output)
            for dep in tx.fetch_all("count_down_dependents", {"id": claim.task_id}):
                if dep["pending_deps"] == 0 and self._move_task(tx, dep["id"], RELEASE):
                    ready.append(dep["id"])
            # Both counts in one pass: what is unfinished, and what can still progress.
            counts = tx.fetch_one("count_unfinished_and_live", {
                "project_id": claim.project_id, "completed": T.COMPLETED.value,
                "live": _values(_LIVE_TASKS), "blocked": T.BLOCKED.value})
            unfinished, live, total = (
                (int(counts["unfinished"]), int(counts["live"]), int(counts["total"]))
                if counts else (0, 0, 0))
            done = unfinished == 0
            if done:
                done = self.move_project(claim.project_id, P.INTEGRATING, None, tx)
            else:
                self._attention_if_stuck(tx, claim.project_id, live)
        return Completion(ready=ready, project_done=done, done=total - unfinished, total=total)

    @staticmethod
    def _completed_by(tx: Session, claim: Claim) -> bool:
        row = tx.fetch_one("get_task", {"id": claim.task_id})
        return bool(row and row["status"] == T.COMPLETED.value
                    and int(row["attempts"]) == claim.attempt)

    @staticmethod
    def _ready_dependents(tx: Session, task_id: str) -> list[str]:
        return [str(r["id"]) for r in tx.fetch_all("ready_dependents", {
            "id": task_id, "pending": T.PENDING.value})]

    def fail_task(self, claim: Claim, error: str) -> bool:
        """Fail a task for good: its descendants wait on it, the rest of the project goes on.

        When nothing else can progress, the project ends `needs_attention`.
        """
        with self.store.db.transaction() as tx:
            tx.execute("lock_project", {"id": claim.project_id, "now": now()})
            row = self._finish(tx, claim, T.FAILED, None, error)
            waiting = tx.fetch_all("mark_waiting_on", {
                "id": claim.task_id, "blocked": T.BLOCKED.value,
                "error": f"waits on failed task {row['idx']} ({row['title']!r})"})
            if waiting:
                self.store.event(tx, claim.project_id, claim.task_id, "blocked", None, None,
                                 f"{len(waiting)} task(s) wait on it")
            self._attention_if_stuck(tx, claim.project_id)
        return True

    def _count(self, tx: Session, query: str, project_id: str, params: dict[str, object]
               ) -> int:
        row = tx.fetch_one(query, {"project_id": project_id, **params})
        return int(row["n"]) if row else 0

    def _attention_if_stuck(self, tx: Session, project_id: str, live: int | None = None
                            ) -> None:
        """No task can progress while some failed: the project needs a person. `live`: the
        count of tasks that can still progress, when the caller read it inside `tx` already."""
        if live is None:
            live = self._count(tx, "count_live_tasks", project_id,
                               {"live": _values(_LIVE_TASKS), "blocked": T.BLOCKED.value})
        if live:
            return
        failed = tx.fetch_all("failed_tasks", {"project_id": project_id,
                                               "failed": T.FAILED.value})
        if failed:
            first = failed[0]
            reason = (f"{len(failed)} task(s) failed; task {first['idx']} "
                      f"({first['title']!r}): {first['error']}; carry on with: agency retry "
                      f"{str(first['id'])[:8]}")
            self.move_project(project_id, P.NEEDS_ATTENTION, reason, tx)

    def _move_task(self, tx: Session, task_id: str, move: Move,
                   detail: str | None = None) -> bool:
        row = tx.fetch_one("transition_task", {
            "id": task_id, "to_status": move.to.value, "allowed": _values(move.allowed),
            "ready_at": now() if move.to is T.PENDING else None})
        if row is not None:
            self.store.event(tx, row["project_id"], task_id, "task", None, move.to.value,
                             detail)
        return row is not None

    def hold_as(self, claim: Claim, to: TaskStatus, detail: str | None = None) -> None:
        """The attempt moves its task between in_progress and review; Stale if fenced out."""
        with self.store.db.transaction() as tx:
            if tx.fetch_one("move_held_task", {"id": claim.task_id, "attempt": claim.attempt,
                                               "held": HELD, "to_status": to.value}) is None:
                raise self._stale(claim)
            self.store.event(tx, claim.project_id, claim.task_id, "task", None, to.value,
                             detail)

    def set_deadlines(self, project_id: str, deadline: datetime,
                      tasks: dict[str, datetime]) -> None:
        with self.store.db.transaction() as tx:
            tx.execute("set_project_deadline", {"id": project_id, "deadline": deadline})
            for task_id, when in tasks.items():
                tx.execute("set_task_deadline", {"id": task_id, "deadline": when})

    def ask(self, claim: Claim, question: str, assumption: str) -> int:
        """The attempt's agent asks a person: its task waits in needs_input; the question's
        id. Stale if fenced out."""
        with self.store.db.transaction() as tx:
            if tx.fetch_one("move_held_task", {"id": claim.task_id, "attempt": claim.attempt,
                                               "held": HELD,
                                               "to_status": T.NEEDS_INPUT.value}) is None:
                raise self._stale(claim)
            row = tx.fetch_one("insert_question", {
                "project_id": claim.project_id, "task_id": claim.task_id,
                "attempt": claim.attempt, "question": question, "assumption": assumption,
                "held": HELD, "now": now()})
            if row is None:
                raise self._stale(claim)
            self.store.event(tx, claim.project_id, claim.task_id, "question", None,
                             T.NEEDS_INPUT.value, question)
        return int(row["id"])

    def answer(self, task_id: str, answer: str, by: str) -> str | None:
        """A person's answer to the task's open question; its project id, or None when the
        task has no open question."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("answer_question", {"task_id": task_id, "answer": answer,
                                                   "by": by, "now": now()})
            if row is None:
                return None
            self.store.event(tx, row["project_id"], task_id, "operator", None, None,
                             f"answered by {by}: {answer}")
        return str(row["project_id"])

    def expire_question(self, question_id: int) -> bool:
        """Nobody answered in time: True when this closed it (an answer did not win)."""
        return self.store.db.fetch_one("expire_question", {"id": question_id,
                                                           "now": now()}) is not None

    def record_review(self, claim: Claim, round_: int, reviewer: str, verdict: Verdict) -> None:
        """Keep a reviewer's verdict on this attempt's output; Stale if fenced out."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("insert_review", {
                "project_id": claim.project_id, "task_id": claim.task_id,
                "attempt": claim.attempt, "round": round_, "reviewer": reviewer,
                "verdict": verdict.verdict, "held": HELD, "now": now(),
                "notes": json.dumps([c.model_dump() for c in verdict.criteria]),
                "summary": verdict.summary})
            if row is None:
                raise self._stale(claim)
            self.store.event(tx, claim.project_id, claim.task_id, "review", None, None,
                             f"round {round_}: {verdict.verdict} ({reviewer})")

    def requeue_task(self, claim: Claim, reason: str) -> None:
        """Put a running attempt's task back to pending for a later attempt, noting why."""
        with self.store.db.transaction() as tx:
            self._finish(tx, claim, T.PENDING, None, None)
            self.store.event(tx, claim.project_id, claim.task_id, "retry", None, None, reason)

    def pause_for_budget(self, project_id: str, claim: Claim | None, reason: str) -> None:
        """The budget is spent: this task waits (pending) and the project stops starting work."""
        with self.store.db.transaction() as tx:
            if claim is not None:
                self._finish(tx, claim, T.PENDING, None, None)
            self.move_project(project_id, P.BUDGET_EXHAUSTED, reason, tx)

    def expire_leases(self, at: datetime) -> list[Row]:
        """Attempts whose lease ran out by `at` go back to pending (their worker died or was
        cut off)."""
        with self.store.db.transaction() as tx:
            rows = tx.fetch_all("expire_task_leases", {
                "to_status": T.PENDING.value, "held": HELD,
                "running": P.RUNNING.value, "now": at})
            for row in rows:
                self.store.event(tx, row["project_id"], row["id"], "retry", None,
                                 T.PENDING.value, f"attempt {row['attempts']}'s lease expired "
                                 "(its worker died or lost the store); queued again")
        return rows

    def expire_project_leases(self, at: datetime) -> list[Row]:
        """Planning whose attempt died goes back to pending; integration is sent again."""
        expired: list[Row] = []
        with self.store.db.transaction() as tx:
            for from_status, to in ((P.PLANNING, P.PENDING), (P.INTEGRATING, P.INTEGRATING)):
                for row in tx.fetch_all("expire_project_leases", {
                        "from_status": from_status.value, "to_status": to.value,
                        "now": at}):
                    self.store.event(tx, row["id"], None, "retry", from_status.value, to.value,
                                     f"{from_status.value} attempt's lease expired; "
                                     "sent again")
                    expired.append(row)
        return expired

    def revive(self, project_id: str, task_id: str | None = None
               ) -> tuple[ProjectStatus, list[str]]:
        """Make a project runnable again: its failed tasks (or just `task_id`) back to pending.

        Returns the status the project moved to (pending: it must be planned again;
        running: dispatch what is left) and the ids of the tasks put back.
        """
        with self.store.db.transaction() as tx:
            tx.execute("lock_project", {"id": project_id, "now": now()})
            revived = tx.fetch_all("revive_tasks", {
                "project_id": project_id, "id": task_id, "to_status": REVIVE.to.value,
                "from_status": T.FAILED.value, "now": now()})
            if task_id is not None and not revived:
                raise BadInput(f"task {task_id} has not failed; only failed tasks are retried")
            self._rewait(tx, project_id)
            planned = tx.fetch_one("count_project_tasks", {"project_id": project_id})
            target = P.RUNNING if planned and planned["tasks"] else P.PENDING
            project = tx.fetch_one("get_project", {"id": project_id})
            running = task_id is not None and project and project["status"] in (
                P.RUNNING.value, P.PAUSED.value)  # a retry does not un-pause
            if not running and not self.move_project(project_id, target, None, tx):
                raise BadInput(f"project {project_id} is "
                               f"{project['status'] if project else '?'}; only failed, "
                               "budget_exhausted or needs_attention projects resume")
            for row in revived:
                self.store.event(tx, project_id, row["id"], "task", T.FAILED.value,
                                 T.PENDING.value, "retried by the operator")
        return target, [str(r["id"]) for r in revived]

    def _rewait(self, tx: Session, project_id: str) -> None:
        """Blocked tasks wait on exactly the failed tasks that are still failed."""
        tx.execute("clear_waiting_errors", {"project_id": project_id,
                                            "blocked": T.BLOCKED.value})
        for row in tx.fetch_all("failed_tasks", {"project_id": project_id,
                                                 "failed": T.FAILED.value}):
            tx.fetch_all("mark_waiting_on", {
                "id": row["id"], "blocked": T.BLOCKED.value,
                "error": f"waits on failed task {row['idx']} ({row['title']!r})"})

    def cancel_project(self, project_id: str, by: str = "the user") -> bool:
        """Cancel a project and every task that has not started."""
        with self.store.db.transaction() as tx:
            if not self.move_project(project_id, P.CANCELLED, f"cancelled by {by}", tx):
                return False
            self.store.event(tx, project_id, None, "operator", None, P.CANCELLED.value,
                             f"cancelled by {by}")
            tx.fetch_all("transition_project_tasks", {
                "project_id": project_id, "to_status": CANCEL.to.value,
                "allowed": _values(CANCEL.allowed)})
        return True

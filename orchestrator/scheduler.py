"""The one owner of status changes: every transition is compare-and-set and leaves an event."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from orchestrator.constants import TERMINAL_PROJECT_STATUSES, ProjectStatus, TaskStatus
from orchestrator.dag import Graph, Schedule
from orchestrator.errors import BadInput
from orchestrator.models import AgentOutput, Analysis, Plan
from orchestrator.store import Session, Store, now

P, T = ProjectStatus, TaskStatus

# Which statuses a project may move to each status from.
PROJECT_FROM: dict[ProjectStatus, frozenset[ProjectStatus]] = {
    P.PENDING: frozenset({P.PLANNING, P.BUDGET_EXHAUSTED, P.FAILED}),  # re-plan
    P.PLANNING: frozenset({P.PENDING}),
    P.RUNNING: frozenset({P.PLANNING, P.BUDGET_EXHAUSTED, P.FAILED}),
    P.INTEGRATING: frozenset({P.RUNNING}),
    P.COMPLETED: frozenset({P.INTEGRATING}),
    P.FAILED: frozenset({P.PENDING, P.PLANNING, P.RUNNING, P.INTEGRATING}),
    P.CANCELLED: frozenset({P.PENDING, P.PLANNING, P.RUNNING, P.INTEGRATING,
                            P.BUDGET_EXHAUSTED, P.FAILED}),
    P.BUDGET_EXHAUSTED: frozenset({P.PLANNING, P.RUNNING, P.INTEGRATING}),
}


@dataclass(frozen=True)
class Move:
    """A named task transition: compare-and-set from `allowed` to `to`."""

    to: TaskStatus
    allowed: frozenset[TaskStatus]


START = Move(T.IN_PROGRESS, frozenset({T.PENDING}))
COMPLETE = Move(T.COMPLETED, frozenset({T.IN_PROGRESS}))
FAIL = Move(T.FAILED, frozenset({T.IN_PROGRESS, T.PENDING, T.BLOCKED}))
CANCEL = Move(T.CANCELLED, frozenset({T.PENDING, T.BLOCKED}))
RELEASE = Move(T.PENDING, frozenset({T.BLOCKED}))  # the last dependency completed
REQUEUE = Move(T.PENDING, frozenset({T.IN_PROGRESS}))  # a retry, or the budget ran out
REVIVE = Move(T.PENDING, frozenset({T.IN_PROGRESS, T.FAILED}))  # resume and retry


def _values(statuses: frozenset[ProjectStatus] | frozenset[TaskStatus]) -> list[str]:
    """Status values for `= ANY(:allowed)`."""
    return sorted(s.value for s in statuses)


@dataclass(frozen=True)
class Completion:
    """What a task's completion released: dependents now ready, and whether it was the last."""

    ready: list[str]
    project_done: bool


@dataclass(frozen=True)
class Started:
    """A task claimed by a worker."""

    project_id: str
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
            "error": error, "now": now(),
            "finished_at": now() if to in TERMINAL_PROJECT_STATUSES else None})
        if row is not None:
            self.store.event(tx, project_id, None, "project", None, to.value, error)
        return row is not None

    def save_analysis(self, project_id: str, analysis: Analysis, budget: int) -> None:
        self.store.db.execute("set_project_analysis", {
            "id": project_id, "analysis": analysis.model_dump_json(),
            "project_type": analysis.project_type.value,
            "complexity": analysis.complexity.value, "budget_tokens": budget, "now": now()})

    def save_plan(self, project_id: str, plan: Plan, graph: Graph, sched: Schedule,
                  project_type: str, budget: int) -> list[str]:
        """Persist the plan's tasks and edges in one transaction; return task ids by index."""
        ids = [str(uuid.uuid4()) for _ in plan.tasks]
        critical = set(sched.critical_path)
        with self.store.db.transaction() as tx:
            tx.execute("set_project_plan", {"id": project_id, "plan": plan.model_dump_json(),
                                            "project_type": project_type,
                                            "budget_tokens": budget, "now": now()})
            for index, task in enumerate(plan.tasks):
                tx.execute("insert_task", {
                    "id": ids[index], "project_id": project_id, "idx": index,
                    "title": task.title, "description": task.description,
                    "agent_type": task.agent_type, "priority": sched.priority(index).value,
                    "estimated_tokens": task.estimated_tokens,
                    "deliverables": json.dumps(task.deliverables),
                    "acceptance_criteria": json.dumps(task.acceptance_criteria),
                    "on_critical_path": index in critical,
                    "status": (T.BLOCKED if graph.deps[index] else T.PENDING).value,
                    "pending_deps": len(graph.deps[index])})
            for index, deps in enumerate(graph.deps):
                for dep in deps:
                    tx.execute("insert_edge", {"task_id": ids[index], "depends_on": ids[dep]})
            self.store.event(tx, project_id, None, "planned", None, None,
                             f"{len(ids)} tasks, critical path {list(sched.critical_path)}")
        return ids

    def mark_queued(self, task_ids: list[str]) -> None:
        self.store.db.execute("mark_queued", {"ids": task_ids, "now": now()})

    # Tasks ------------------------------------------------------------------------------------

    def start_task(self, task_id: str, worker: str) -> Started | None:
        """Claim a ready task for this worker; None when it is not pending with all deps done."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("start_task", {
                "id": task_id, "to_status": START.to.value, "allowed": _values(START.allowed),
                "worker": worker, "now": now()})
            if row is None:
                return None
            self.store.event(tx, row["project_id"], task_id, "task", T.PENDING.value,
                             T.IN_PROGRESS.value, worker)
        return Started(project_id=row["project_id"], attempt=int(row["attempts"]))

    def complete_task(self, project_id: str, task_id: str, output: AgentOutput) -> Completion:
        """Complete a task and count down its dependents, atomically."""
        ready: list[str] = []
        with self.store.db.transaction() as tx:
            tx.execute("lock_project", {"id": project_id, "now": now()})
            row = tx.fetch_one("finish_task", {
                "id": task_id, "to_status": COMPLETE.to.value,
                "allowed": _values(COMPLETE.allowed), "output": output.model_dump_json(),
                "error": None, "now": now()})
            if row is None:
                return Completion(ready=[], project_done=False)
            self.store.event(tx, project_id, task_id, "task", T.IN_PROGRESS.value,
                             T.COMPLETED.value, None)
            for dep in tx.fetch_all("count_down_dependents", {"id": task_id}):
                if dep["pending_deps"] == 0 and self._move_task(tx, dep["id"], RELEASE):
                    ready.append(dep["id"])
            left = tx.fetch_one("count_unfinished", {"project_id": project_id,
                                                     "completed": T.COMPLETED.value})
        return Completion(ready=ready, project_done=left is not None and left["n"] == 0)

    def fail_task(self, task_id: str, error: str) -> bool:
        """Fail a task and, with it, its project."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("finish_task", {
                "id": task_id, "to_status": FAIL.to.value, "allowed": _values(FAIL.allowed),
                "output": None, "error": error, "now": now()})
            if row is None:
                return False
            self.store.event(tx, row["project_id"], task_id, "task", None, T.FAILED.value, error)
            self.move_project(row["project_id"], P.FAILED, f"task failed: {error}", tx)
        return True

    def _move_task(self, tx: Session, task_id: str, move: Move,
                   detail: str | None = None) -> bool:
        row = tx.fetch_one("transition_task", {"id": task_id, "to_status": move.to.value,
                                               "allowed": _values(move.allowed)})
        if row is not None:
            self.store.event(tx, row["project_id"], task_id, "task", None, move.to.value,
                             detail)
        return row is not None

    def requeue_task(self, task_id: str, reason: str) -> bool:
        """Put a running task back to pending for a later attempt, noting why."""
        with self.store.db.transaction() as tx:
            return self._move_task(tx, task_id, REQUEUE, reason)

    def pause_for_budget(self, project_id: str, task_id: str | None, reason: str) -> None:
        """The budget is spent: this task waits (pending) and the project stops starting work."""
        with self.store.db.transaction() as tx:
            if task_id is not None:
                self._move_task(tx, task_id, REQUEUE, reason)
            self.move_project(project_id, P.BUDGET_EXHAUSTED, reason, tx)

    def revive(self, project_id: str) -> tuple[ProjectStatus, int]:
        """Make an ended project runnable again: unfinished tasks back to pending.

        Returns the status the project moved to (pending: it must be planned again;
        running: dispatch what is left) and how many tasks were put back.
        """
        with self.store.db.transaction() as tx:
            revived = tx.fetch_all("transition_project_tasks", {
                "project_id": project_id, "to_status": REVIVE.to.value,
                "allowed": _values(REVIVE.allowed)})
            planned = tx.fetch_one("count_project_tasks", {"project_id": project_id})
            target = P.RUNNING if planned and planned["tasks"] else P.PENDING
            if not self.move_project(project_id, target, None, tx):
                status = tx.fetch_one("get_project", {"id": project_id})
                raise BadInput(f"project {project_id} is {status['status'] if status else '?'}"
                               "; only failed, budget_exhausted or stuck projects resume")
            for row in revived:
                self.store.event(tx, project_id, row["id"], "task", None, T.PENDING.value,
                                 "resumed")
        return target, len(revived)

    def cancel_project(self, project_id: str) -> bool:
        """Cancel a project and every task that has not started."""
        with self.store.db.transaction() as tx:
            if not self.move_project(project_id, P.CANCELLED, "cancelled by the user", tx):
                return False
            tx.fetch_all("transition_project_tasks", {
                "project_id": project_id, "to_status": CANCEL.to.value,
                "allowed": _values(CANCEL.allowed)})
        return True

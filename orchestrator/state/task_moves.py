"""A task's fenced status writes: compare-and-set from the lifecycle table, each with an event.

An attempt's writes are fenced by its claim's token (the row's `attempts`) and by the statuses
an attempt holds its task in, so a stale attempt can never overwrite a newer one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from orchestrator.domain import lifecycle
from orchestrator.domain.errors import BadInput, IllegalMove, Stale
from orchestrator.domain.lifecycle import (
    HELD_STATUSES,
    LIVE_TASKS,
    TASK_MOVES,
    TASKS_RUN,
    TASKS_START,
    By,
    ProjectStatus,
    TaskStatus,
)
from orchestrator.domain.models import AgentOutput, CheckResult, Verdict
from orchestrator.state import knowledge
from orchestrator.state.claims import Claim, Completion
from orchestrator.state.project_moves import ProjectMoves, values
from orchestrator.state.store import Row, Session, ToolsRow, Work, now

P, T = ProjectStatus, TaskStatus
HELD = HELD_STATUSES


@dataclass(frozen=True)
class TaskMove:
    """A named task transition: compare-and-set from `allowed` to `to`, as the table says."""

    to: TaskStatus
    allowed: frozenset[TaskStatus]


def _move(to: TaskStatus, by: By) -> TaskMove:
    return TaskMove(to, lifecycle.require_into(TASK_MOVES, to, by))


START = _move(T.IN_PROGRESS, By.CLAIM)
RELEASE = _move(T.PENDING, By.WORK)  # the last dependency completed
REVIVE = _move(T.PENDING, By.RESUME)  # resume and retry
EXPIRE = _move(T.PENDING, By.EXPIRY)  # an attempt's lease ran out
# Where an attempt may end its task, and where it may move it while it holds it.
_FINISHES = frozenset(m.target for m in TASK_MOVES if m.by is By.FINISH)
_HOLDS = frozenset(m.target for m in TASK_MOVES if m.by is By.HOLD)
(_STARTS_IN,) = TASKS_START
(_START_FROM,) = START.allowed


def _require(to: TaskStatus, targets: frozenset[TaskStatus], what: str) -> None:
    if to not in targets:
        raise IllegalMove(f"an attempt cannot {what} its task to {to.value}")


class TaskMoves(ProjectMoves):
    """Moves tasks through their lives (and their projects as the tasks go), atomically."""

    # Tasks ------------------------------------------------------------------------------------

    def start_with_work(self, task_id: str, worker: str, lease_until: datetime
                        ) -> tuple[Work, Claim | None]:
        """The claim of `start_task` and then what the attempt works from (`Store.work_of`),
        in one round trip on PostgreSQL (one pipeline). The claim goes first: each later read
        sees at least what the claim saw (a dependency's output the claim counted done), and
        a claim that fails changes nothing the reads show. The claim is None when the task
        was not ready to start (held by an attempt, blocked, done) or its project not
        running."""
        if self.store.db.dialect != "postgresql":
            claim = self.start_task(task_id, worker, lease_until)
            return self.store.work_of(task_id), claim
        rows = self.store.db.fetch_many([
            ("start_task_noted", self._start_params(task_id, worker, lease_until)),
            *self.store.work_reads(task_id)])
        started, work = rows[0], self.store.work_from(rows[1:], task_id)
        claim = (Claim(project_id=started[0]["project_id"], task_id=task_id,
                       attempt=int(started[0]["attempts"])) if started else None)
        return work, claim

    @staticmethod
    def _start_params(task_id: str, worker: str, lease_until: datetime) -> dict[str, object]:
        return {"id": task_id, "to_status": START.to.value, "allowed": values(START.allowed),
                "running": _STARTS_IN.value, "worker": worker, "now": now(),
                "lease_until": lease_until, "from_status": _START_FROM.value}

    def start_task(self, task_id: str, worker: str, lease_until: datetime) -> Claim | None:
        """Claim a ready task for this worker; None when it is not pending with all deps done."""
        params = self._start_params(task_id, worker, lease_until)
        if self.store.db.dialect == "postgresql":  # the claim and its event in one statement
            row = self.store.db.fetch_one("start_task_noted", params)
            if row is None:
                return None
            return Claim(project_id=row["project_id"], task_id=task_id,
                         attempt=int(row["attempts"]))
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("start_task", params)
            if row is None:
                return None
            self.store.event(tx, row["project_id"], task_id, "task", _START_FROM.value,
                             START.to.value, f"{worker}, attempt {row['attempts']}")
        return Claim(project_id=row["project_id"], task_id=task_id, attempt=int(row["attempts"]))

    def renew_task(self, claim: Claim, lease_until: datetime) -> bool:
        return self.store.db.fetch_one("renew_task_lease", {
            "id": claim.task_id, "attempt": claim.attempt, "held": HELD,
            "lease_until": lease_until}) is not None

    def admit_call(self, claim: Claim, cap: int, journaled: Sequence[ToolsRow] = ()) -> bool:
        """Count one model call of this attempt if the project's budget has room and the
        task's cap is not reached (one statement); False when either stops it (the caller
        asks which). The `journaled` rounds of tool results that led to the call are written
        in the same round trip, whatever the answer."""
        params = {"id": claim.task_id, "attempt": claim.attempt, "held": HELD, "cap": cap,
                  "project_id": claim.project_id, "cancelled": P.CANCELLED.value}
        if not journaled:
            return self.store.db.fetch_one("admit_model_call", params) is not None
        with self.store.db.transaction() as tx:
            for row in journaled:
                self.store.put_tools(tx, row)
            admitted = tx.fetch_later("admit_model_call", params)
        # Read after the COMMIT: a pipeline's results are in once it is synced (so the
        # COMMIT travels with the rest instead of a round trip of its own).
        return bool(admitted())

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
        _require(to, _FINISHES, "end")
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
        """Complete a task and count down its dependents, atomically; Stale if fenced out.

        Two round trips: the fenced finish, the count-down, the release of what it left with
        nothing pending and both counts (what is unfinished, what can still progress)
        travel together and are read together (a fenced-out finish rolls the rest back);
        then the events and the output's index go with the COMMIT. A release moves a task
        from blocked (live while it waits on nothing failed) to pending (live), so it
        changes neither count."""
        done_as = T.COMPLETED
        _require(done_as, _FINISHES, "end")
        try:
            with self.store.db.transaction() as tx:
                tx.send("lock_project", {"id": claim.project_id, "now": now()})
                finished = tx.fetch_later("finish_attempt", {
                    "id": claim.task_id, "attempt": claim.attempt, "held": HELD,
                    "to_status": done_as.value, "output": output.model_dump_json(),
                    "error": None, "finished_at": now(), "ready_at": None})
                self.store.event(tx, claim.project_id, claim.task_id, "task", None,
                                 done_as.value, None)
                tx.send("count_down_dependents", {"id": claim.task_id})
                released = tx.fetch_later("release_dependents", {
                    "id": claim.task_id, "to_status": RELEASE.to.value,
                    "allowed": values(RELEASE.allowed), "ready_at": now()})
                counted = tx.fetch_later("count_unfinished_and_live", {
                    "project_id": claim.project_id, "completed": T.COMPLETED.value,
                    "live": values(LIVE_TASKS), "blocked": T.BLOCKED.value})
                rows = finished()
                if not rows:
                    raise self._stale(claim)  # rolls back the count-down with the rest
                row = rows[0]
                due = {str(d["id"]): d["unit"] for d in released()}
                ready = list(due)
                for task_id in ready:
                    self.store.event(tx, claim.project_id, task_id, "task", None,
                                     RELEASE.to.value, None)
                counts = next(iter(counted()), None)
                knowledge.index_output(tx, claim.project_id, claim.task_id, row["idx"],
                                       row["title"], row["agent_type"], output)
                unfinished, live, total = (
                    (int(counts["unfinished"]), int(counts["live"]), int(counts["total"]))
                    if counts else (0, 0, 0))
                done = unfinished == 0
                if done:
                    done = bool(self.move_project(claim.project_id, P.INTEGRATING, None, tx))
                else:
                    self._attention_if_stuck(tx, claim.project_id, live)
        except Stale:
            if not self._completed_by(self.store.db, claim):
                raise
            # This attempt's own completion committed, but its reply was lost (the database
            # went away during COMMIT): carry on as the completer did.
            return Completion(ready=self._ready_dependents(self.store.db, claim.task_id),
                              project_done=False, detached=True)
        return Completion(ready=ready, project_done=done, done=total - unfinished, total=total,
                          detached=bool(row["detached"]),
                          heads=[t for t in ready if due[t] == t])

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
            tx.send("lock_project", {"id": claim.project_id, "now": now()})
            row = self._finish(tx, claim, T.FAILED, None, error)
            waiting = self._wait_on(tx, claim.task_id, row)
            if waiting:
                self.store.event(tx, claim.project_id, claim.task_id, "blocked", None, None,
                                 f"{len(waiting)} task(s) wait on it")
            self._attention_if_stuck(tx, claim.project_id)
        return True

    def stop_cancelled(self, claim: Claim) -> int:
        """End an attempt whose project was cancelled before its next model call: the task is
        cancelled, and its log says how many of its calls finished after the cancel (those
        that were in flight then); that number."""
        with self.store.db.transaction() as tx:
            self._finish(tx, claim, T.CANCELLED, None, "its project was cancelled")
            calls = self._count(tx, "calls_since_cancel", claim.project_id,
                                {"task_id": claim.task_id, "cancelled": P.CANCELLED.value})
            self.store.event(tx, claim.project_id, claim.task_id, "cancel", None, None,
                             f"stopped before its next model call; {calls} call(s) of this "
                             "task were in flight at the cancel and finished (recorded)")
        return calls

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
                               {"live": values(LIVE_TASKS), "blocked": T.BLOCKED.value})
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

    def hold_as(self, claim: Claim, to: TaskStatus, detail: str | None = None) -> None:
        """The attempt moves its task between in_progress and review; Stale if fenced out."""
        _require(to, _HOLDS, "move")
        with self.store.db.transaction() as tx:
            if tx.fetch_one("move_held_task", {"id": claim.task_id, "attempt": claim.attempt,
                                               "held": HELD, "to_status": to.value}) is None:
                raise self._stale(claim)
            self.store.event(tx, claim.project_id, claim.task_id, "task", None, to.value,
                             detail)

    def set_deadlines(self, project_id: str, deadline: datetime,
                      tasks: dict[str, datetime]) -> None:
        with self.store.db.transaction() as tx:
            tx.send("set_project_deadline", {"id": project_id, "deadline": deadline})
            for task_id, when in tasks.items():
                tx.send("set_task_deadline", {"id": task_id, "deadline": when})

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
            # Its task, parked on the question, is woken: its agent's next message is due.
            tx.send("wake_task", {"id": task_id, "attempt": int(row["attempt"]),
                                     "held": HELD, "now": now()})
        return str(row["project_id"])

    def expire_question(self, question_id: int, task_id: str | None = None,
                        attempt: int | None = None) -> bool:
        """Nobody answered in time: True when this closed it (an answer did not win); with
        the task and the attempt that asked, the task parked on it is woken too."""
        with self.store.db.transaction() as tx:
            closed = tx.fetch_one("expire_question", {"id": question_id, "now": now()})
            if closed is not None and task_id is not None:
                tx.send("wake_task", {"id": task_id, "attempt": attempt, "held": HELD,
                                         "now": now()})
        return closed is not None

    def record_review(self, claim: Claim, round_: int, reviewer: str, verdict: Verdict,
                      worker: str | None = None, checks: Sequence[CheckResult] = (),
                      screenshots: Mapping[str, bytes] | None = None) -> None:
        """Keep a reviewer's verdict on this attempt's output, with the round's checks and the
        pages' screenshots; Stale if fenced out."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("insert_review", {
                "project_id": claim.project_id, "task_id": claim.task_id,
                "attempt": claim.attempt, "round": round_, "reviewer": reviewer,
                "verdict": verdict.verdict, "held": HELD, "now": now(), "worker": worker,
                "notes": json.dumps([c.model_dump() for c in verdict.criteria]),
                "summary": verdict.summary,
                "checks": json.dumps([c.model_dump() for c in checks])})
            if row is None:
                raise self._stale(claim)
            for path, png in (screenshots or {}).items():
                tx.send("upsert_screenshot", {"project_id": claim.project_id, "path": path,
                                                 "task_id": claim.task_id, "png": png,
                                                 "now": now()})
            failed = sum(c.ok is False for c in checks)
            said = f"; {failed} of {len(checks)} checks failed" if failed else ""
            self.store.event(tx, claim.project_id, claim.task_id, "review", None, None,
                             f"round {round_}: {verdict.verdict} ({reviewer}){said}")

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
                "to_status": EXPIRE.to.value, "held": values(EXPIRE.allowed),
                "running": P.RUNNING.value, "now": at})
            for row in rows:
                self.store.event(tx, row["project_id"], row["id"], "retry", None,
                                 EXPIRE.to.value, f"attempt {row['attempts']}'s lease expired "
                                 "(its worker died or lost the store); queued again")
            for row in tx.fetch_all("cancel_expired_tasks", {
                    "to_status": T.CANCELLED.value, "held": HELD, "cancelled": P.CANCELLED.value,
                    "error": "its project was cancelled", "now": at}):
                self.store.event(tx, row["project_id"], row["id"], "cancel", None,
                                 T.CANCELLED.value, "its attempt's lease expired after the "
                                 "cancel: not run again")
        return rows

    def revive(self, project_id: str, task_id: str | None = None
               ) -> tuple[ProjectStatus, list[str]]:
        """Make a project runnable again: its failed tasks (or just `task_id`) back to pending.

        Returns the status the project moved to (pending: it must be planned again;
        running: dispatch what is left) and the ids of the tasks put back.
        """
        (source,) = REVIVE.allowed
        with self.store.db.transaction() as tx:
            locked = tx.fetch_one("lock_project", {"id": project_id, "now": now()})
            revived = tx.fetch_all("revive_tasks", {
                "project_id": project_id, "id": task_id, "to_status": REVIVE.to.value,
                "from_status": source.value, "now": now()})
            if task_id is not None and not revived:
                raise BadInput(f"task {task_id} has not failed; only failed tasks are retried")
            self._rewait(tx, project_id)
            planned = tx.fetch_one("count_project_tasks", {"project_id": project_id})
            target = P.RUNNING if planned and planned["tasks"] else P.PENDING
            # The lock says the project's status; nothing else changes it in this transaction.
            running = task_id is not None and locked is not None and P(
                locked["status"]) in TASKS_RUN  # a retry does not un-pause
            if not running:
                moved = self.move_project(project_id, target, None, tx)
                if not moved:
                    raise BadInput(f"project {project_id} is "
                                   f"{moved.found.value if moved.found else '?'}; only "
                                   "failed, budget_exhausted or needs_attention projects "
                                   "resume")
            for row in revived:
                self.store.event(tx, project_id, row["id"], "task", source.value,
                                 REVIVE.to.value, "retried by the operator")
        return target, [str(r["id"]) for r in revived]

    def _rewait(self, tx: Session, project_id: str) -> None:
        """Blocked tasks wait on exactly the failed tasks that are still failed."""
        tx.send("clear_waiting_errors", {"project_id": project_id,
                                            "blocked": T.BLOCKED.value})
        for row in tx.fetch_all("failed_tasks", {"project_id": project_id,
                                                 "failed": T.FAILED.value}):
            self._wait_on(tx, str(row["id"]), row)

    @staticmethod
    def _wait_on(tx: Session, task_id: str, failed: Row) -> list[Row]:
        """Every task downstream of the failed task `task_id` waits on it (blocked, saying
        which); the tasks so marked."""
        return tx.fetch_all("mark_waiting_on", {
            "id": task_id, "blocked": T.BLOCKED.value,
            "error": f"waits on failed task {failed['idx']} ({failed['title']!r})"})

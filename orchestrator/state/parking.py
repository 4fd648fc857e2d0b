"""Parked tasks: a task that waits for something outside it (a person's answer, a review, a
batch) holds no thread and no lease. Its row says what it waits for (`parked`); the event that
ends the wait wakes it (`parked` cleared, no lease), and its agent's next message resumes it
as the same attempt, replaying its journal. Every write is fenced by the attempt's token, and
the statuses stay the users' (needs_input, review; in_progress while a batch runs).
"""

from __future__ import annotations

from datetime import datetime

from orchestrator.domain.lifecycle import HELD_STATUSES, TASKS_RUN, TaskStatus
from orchestrator.state.claims import Claim
from orchestrator.state.store import now
from orchestrator.state.task_moves import TaskMoves

T = TaskStatus
# Where a started task's work goes on (a pause stops new starts only).
_RUNS = sorted(s.value for s in TASKS_RUN)
QUESTION = "question"
BATCH = "batch"


def review_wait(round_: int) -> str:
    """What a task waiting for its review round `round_` is parked on."""
    return f"review:{round_}"


class ParkMoves(TaskMoves):
    """Parking, waking and resuming tasks."""

    def park(self, claim: Claim, to: TaskStatus, parked: str, detail: str,
             draft: str | None = None) -> None:
        """The attempt's task waits (in `to`) for `parked`; Stale if fenced out."""
        with self.store.db.transaction() as tx:
            if tx.fetch_one("park_task", {
                    "id": claim.task_id, "attempt": claim.attempt, "held": HELD_STATUSES,
                    "to_status": to.value, "parked": parked, "draft": draft,
                    "now": now()}) is None:
                raise self._stale(claim)
            self.store.event(tx, claim.project_id, claim.task_id, "parked", None, to.value,
                             detail)

    def take_review(self, task_id: str, round_: int, lease_until: datetime
                    ) -> tuple[Claim, str | None, int] | None:
        """A reviewer takes the task's review round `round_` under its own lease: the claim,
        the draft under review and where the conversation began; None when the task does not
        wait for that review (done already, or taken)."""
        row = self.store.db.fetch_one("take_review", {
            "id": task_id, "review": T.REVIEW.value, "parked": review_wait(round_),
            "lease_until": lease_until, "running": _RUNS})
        if row is None:
            return None
        claim = Claim(project_id=row["project_id"], task_id=task_id,
                      attempt=int(row["attempts"]))
        return claim, row["draft"], int(row["conversation_from"])

    def wake(self, claim: Claim, detail: str) -> bool:
        """The wait is over: the task's agent is due again. False when the attempt no longer
        holds the task (nothing to wake)."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("wake_task", {"id": claim.task_id, "attempt": claim.attempt,
                                             "held": HELD_STATUSES, "now": now()})
            if row is None:
                return False
            self.store.event(tx, claim.project_id, claim.task_id, "woken", None, None, detail)
        return True

    def resume_task(self, task_id: str, worker: str, lease_until: datetime) -> Claim | None:
        """A woken task's agent takes it back (in_progress, under a new lease), as the same
        attempt; None when it is not woken."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("resume_task", {
                "id": task_id, "to_status": T.IN_PROGRESS.value, "held": HELD_STATUSES,
                "worker": worker, "lease_until": lease_until, "running": _RUNS})
            if row is None:
                return None
            self.store.event(tx, row["project_id"], task_id, "task", None,
                             T.IN_PROGRESS.value, f"{worker}, attempt {row['attempts']} resumed")
        return Claim(project_id=row["project_id"], task_id=task_id, attempt=int(row["attempts"]))

    def ask_parked(self, claim: Claim, question: str, assumption: str, tool_use_id: str,
                   expires_at: datetime) -> int:
        """The attempt's agent asks a person: the question, and its task parked in
        needs_input until it is answered or expires; the question's id. Stale if fenced out."""
        with self.store.db.transaction() as tx:
            row = tx.fetch_one("insert_question", {
                "project_id": claim.project_id, "task_id": claim.task_id,
                "attempt": claim.attempt, "question": question, "assumption": assumption,
                "held": HELD_STATUSES, "now": now(), "tool_use_id": tool_use_id,
                "expires_at": expires_at})
            if row is None or tx.fetch_one("park_task", {
                    "id": claim.task_id, "attempt": claim.attempt, "held": HELD_STATUSES,
                    "to_status": T.NEEDS_INPUT.value, "parked": QUESTION, "draft": None,
                    "now": now()}) is None:
                raise self._stale(claim)
            self.store.event(tx, claim.project_id, claim.task_id, "question", None,
                             T.NEEDS_INPUT.value, question)
        return int(row["id"])

    def park_batch(self, claim: Claim, batch_id: str, custom_id: str, conv: str, seq: int,
                   digest: str, sent: str, role: str, model: str) -> None:
        """The attempt's turn went into a batch: it is kept, and the task waits (in_progress,
        parked on the batch) until the poller journals the batch's answer and wakes it."""
        with self.store.db.transaction() as tx:
            tx.send("insert_batch_call", {
                "batch_id": batch_id, "custom_id": custom_id, "project_id": claim.project_id,
                "task_id": claim.task_id, "attempt": claim.attempt, "conv": conv, "seq": seq,
                "digest": digest, "sent": sent, "role": role, "model": model, "now": now()})
            if tx.fetch_one("park_task", {
                    "id": claim.task_id, "attempt": claim.attempt, "held": HELD_STATUSES,
                    "to_status": T.IN_PROGRESS.value, "parked": BATCH, "draft": None,
                    "now": now()}) is None:
                raise self._stale(claim)
            tx.send("set_task_activity", {"id": claim.task_id,
                                             "activity": f"waiting for batch {batch_id}"})
            self.store.event(tx, claim.project_id, claim.task_id, "parked", None,
                             T.IN_PROGRESS.value, f"waits for batch {batch_id}")

    def repark_batch(self, claim: Claim, call_id: int, batch_id: str) -> None:
        """A new attempt of a task whose turn is still in a batch waits for it again."""
        self.store.db.execute("rebind_batch_call", {"id": call_id, "attempt": claim.attempt})
        self.park(claim, T.IN_PROGRESS, BATCH, f"waits for batch {batch_id}")

    def repark_question(self, claim: Claim, question_id: int) -> None:
        """A new attempt of a task whose question is still open waits for it again."""
        with self.store.db.transaction() as tx:
            tx.send("rebind_question", {"id": question_id, "attempt": claim.attempt})
            if tx.fetch_one("park_task", {
                    "id": claim.task_id, "attempt": claim.attempt, "held": HELD_STATUSES,
                    "to_status": T.NEEDS_INPUT.value, "parked": QUESTION, "draft": None,
                    "now": now()}) is None:
                raise self._stale(claim)

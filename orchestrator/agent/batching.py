"""Economy mode, the agent's side: a turn with slack goes into a Message Batches API batch and
its task parks until the batch's answer is in (services/batches.py collects it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from orchestrator.agent.runtime import ProjectMeter, Runtime
from orchestrator.domain.economy import by_batch
from orchestrator.domain.errors import AgencyError, Parked
from orchestrator.domain.models import JournalTurn, ProjectRecord, TaskRecord
from orchestrator.llm.base import CompletionRequest
from orchestrator.state.transitions import Claim

log = logging.getLogger(__name__)


@dataclass
class TaskBatcher:
    """Sends one task attempt's turns through the Batches API while its slack allows."""

    rt: Runtime
    project: ProjectRecord
    task: TaskRecord
    claim: Claim
    meter: ProjectMeter

    def submit(self, request: CompletionRequest, turn: JournalTurn) -> None:
        rt = self.rt
        row = rt.durably("batch", lambda: rt.store.batch_call(turn.conv, turn.seq))
        if row is not None:
            if row["collected_at"] is None:  # sent before this attempt: wait for it again
                rt.durably("batch", lambda: rt.scheduler.repark_batch(
                    self.claim, int(row["id"]), row["batch_id"]))
                raise Parked(f"batch {row['batch_id']}")
            return  # the batch gave this turn no answer: it goes live
        if not getattr(rt.provider, "supports_batches", False):
            return
        if not by_batch(self.project, self.task, rt.store.clock(), rt.settings.batch_turnaround):
            return
        self.meter.admit()
        custom_id = f"t{self.task.index}-s{turn.seq}-{turn.digest[:16]}"
        try:
            batch_id = rt.provider.submit_batch([(custom_id, request)])  # type: ignore[attr-defined]
        except AgencyError as exc:  # the turn goes live rather than wait for nothing
            log.warning("task %s: could not send a batch (%s); the turn goes live",
                        self.task.id, exc)
            return
        rt.durably("batch", lambda: rt.scheduler.park_batch(
            self.claim, batch_id, custom_id, turn.conv, turn.seq, turn.digest, turn.sent,
            request.role.value, request.model))
        raise Parked(f"batch {batch_id}")

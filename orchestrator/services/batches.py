"""Economy mode, the collector: one poller (the reconciler's pass) collects every ended batch,
journals each answer with its ledger row (priced as a batch call) and wakes its task, whose
next message replays the journal and carries on. A batch that gave a turn no answer (errored,
expired, cancelled) wakes its task too: the turn then goes live."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import Celery

from orchestrator.agent.runtime import Runtime
from orchestrator.domain.constants import Role
from orchestrator.domain.errors import AgencyError
from orchestrator.domain.models import JournalTurn
from orchestrator.llm.base import CompletionRequest, CompletionResponse
from orchestrator.services.dispatch import send_resume
from orchestrator.state.store import Row
from orchestrator.state.transitions import Claim

log = logging.getLogger(__name__)

# A batch is asked about once it had this long to be made.
SETTLE = timedelta(seconds=1)


def collect_batches(rt: Runtime, app: Celery, at: datetime) -> list[str]:
    """Collect what ended batches answered; the tasks woken."""
    calls: dict[str, list[Row]] = {}
    for row in rt.store.open_batch_calls(at - SETTLE):
        calls.setdefault(row["batch_id"], []).append(row)
    if not calls or not getattr(rt.provider, "supports_batches", False):
        return []
    woken = []
    for batch_id, rows in calls.items():
        try:
            results = rt.provider.collect_batch(batch_id)  # type: ignore[attr-defined]
        except AgencyError as exc:
            log.warning("batch %s: could not collect it (%s); trying again later", batch_id,
                        exc)
            continue
        if results is None:  # still processing
            continue
        for row in rows:
            _settle(rt, row, results.get(row["custom_id"]))
            if rt.store.finish_batch_call(int(row["id"])):
                claim = Claim(project_id=row["project_id"], task_id=row["task_id"],
                              attempt=int(row["attempt"]))
                if rt.scheduler.wake(claim, f"batch {batch_id} ended"):
                    send_resume(rt, app, row["project_id"], row["task_id"])
                    woken.append(row["task_id"])
    return woken


def _settle(rt: Runtime, row: Row, result: CompletionResponse | Exception | None) -> None:
    """Journal an answered turn with its ledger row, or note why the batch gave none."""
    claim = Claim(project_id=row["project_id"], task_id=row["task_id"],
                  attempt=int(row["attempt"]))
    if isinstance(result, CompletionResponse):
        request = CompletionRequest(role=Role(row["role"]), model=row["model"], system=[],
                                    messages=[])
        rt.meter(row["project_id"], claim).record(request, result, 1, JournalTurn(
            conv=row["conv"], seq=int(row["seq"]), digest=row["digest"], sent=row["sent"],
            body=result.model_dump_json(exclude={"limits"})))
        return
    reason = str(result) if result is not None else "no result for this request"
    rt.store.note(row["project_id"], row["task_id"], "batch",
                  f"batch {row['batch_id']} gave no answer ({reason}); the turn goes live")

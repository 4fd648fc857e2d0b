"""What a process needs to do work: settings, store, scheduler and model provider, made once."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Literal, TypeVar

from orchestrator.domain.caching import prefix_life
from orchestrator.domain.constants import CallOutcome, ProjectStatus, Role
from orchestrator.domain.errors import (
    AgencyError,
    AttemptFailed,
    BudgetExhausted,
    CallCapReached,
    NotRunnable,
    ProjectCancelled,
    StoreUnavailable,
)
from orchestrator.domain.models import JournalEntry, JournalTurn, LedgerEntry, ProjectRecord
from orchestrator.domain.pricing import cost_usd
from orchestrator.domain.settings import Settings, get_settings
from orchestrator.llm import CompletionRequest, CompletionResponse, Provider, make_provider
from orchestrator.llm.ratelimit import Throttle, make_throttle
from orchestrator.llm.structured import RetryPolicy
from orchestrator.state.leases import LeaseKeeper
from orchestrator.state.store import Store, ToolsRow, get_store
from orchestrator.state.transitions import Claim, ProjectClaim, Scheduler

log = logging.getLogger(__name__)
R = TypeVar("R")


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def store(self) -> Store:
        return get_store(self.settings)

    @cached_property
    def scheduler(self) -> Scheduler:
        return Scheduler(self.store)

    @cached_property
    def provider(self) -> Provider:
        return make_provider(self.settings)

    @cached_property
    def throttle(self) -> Throttle | None:
        return make_throttle(self.settings)

    @cached_property
    def leases(self) -> LeaseKeeper:
        return LeaseKeeper(self.scheduler, self.settings.lease_seconds)

    def holding_project(self, project_id: str, to: ProjectStatus,
                        work: Callable[[ProjectClaim], None]) -> None:
        """Claim a project's planning or integration and do `work` under a renewed lease.

        NotRunnable when the project is not waiting for it (a duplicate message); AttemptFailed,
        with the cause, when the claimed attempt fails.
        """
        claim = self.scheduler.claim_project(project_id, to, self.leases.until())
        if claim is None:
            raise NotRunnable(f"project {project_id} is not waiting for {to.value}")
        try:
            with self.leases.hold(claim):
                work(claim)
        except Exception as exc:
            raise AttemptFailed(project_id, claim, exc) from exc

    def durably(self, what: str, write: Callable[[], R]) -> R:
        """A write that must not be lost (a paid answer, a completion): retried while the
        database is unreachable, for up to AGENCY_STORE_RETRY_SECONDS, then raised."""
        deadline = time.monotonic() + self.settings.store_retry_seconds
        delay = 0.25
        while True:
            try:
                return write()
            except StoreUnavailable as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("saving %s: %s; retrying in %.1fs", what, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def model_for(self, role: Role) -> str:
        if role in (Role.AGENT, Role.WARMUP):  # a warm-up writes the agents' prefix
            return self.settings.agent_model
        return self.settings.orchestrator_model

    def activity(self, project_id: str, task_id: str | None,
                 forward: Callable[[str], None] | None = None) -> Callable[[str], None]:
        """A progress callback for a model call: every step goes to `forward` (Flower's
        progress events); a streamed call's output so far also goes to the store (what
        `status` and `watch` show), at most every ACTIVITY_EVERY seconds. A courtesy: a
        store that is away costs nothing but the line."""
        last = [0.0]

        def report(step: str) -> None:
            if forward is not None:
                forward(step)
            now = time.monotonic()
            if now - last[0] < ACTIVITY_EVERY:
                return
            last[0] = now
            try:
                self.store.set_activity(project_id, task_id, step)
            except AgencyError as exc:
                log.debug("activity not saved: %s", exc)

        return report

    def effort_for(self, role: Role) -> str | None:
        """The thinking effort of a role's calls (AGENCY_EFFORT); None: no thinking where the
        model allows it."""
        effort = self.settings.effort.get(role, "off")
        return None if effort == "off" else effort

    def cache_ttl(self, project: ProjectRecord) -> Literal["5m", "1h"]:
        """The life of the project prefix's cache entry for this project's agents: as
        AGENCY_CACHE_TTL says, or (auto) an hour when its plan's work spans more than five
        minutes (domain/caching.py)."""

        return prefix_life(self.settings.cache_ttl, project.plan)

    @property
    def policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(attempts=s.model_attempts, backoff=s.model_backoff,
                           max_backoff=s.model_max_backoff, throttle=self.throttle)

    def journal(self, project_id: str, claim: Claim | None, conv: str,
                notes: Callable[[], list[tuple[str, str]]] | None = None,
                entries: list[JournalEntry] | None = None,
                outbox: Outbox | None = None) -> StoreJournal:
        """The journal of one conversation of a project (or of a task attempt's); `notes`
        hands over the tool calls' events that go with each turn's results; `entries`, the
        journal as read already (with the task's other inputs); `outbox`, where a turn's
        tool results wait for the next call's admission (its meter's outbox)."""
        return StoreJournal(self, project_id, claim, conv, notes, entries, outbox)

    def meter(self, project_id: str, claim: Claim | None = None,
              outbox: Outbox | None = None) -> ProjectMeter:
        """Budget admission, the call cap, ledger and retry notes for one project's (or one
        task attempt's) calls; with `outbox`, the journal rows held there go out with the
        next call's admission."""
        return ProjectMeter(self, project_id, claim, outbox)


@dataclass
class Outbox:
    """Journal rows of tool results held for the next model call's admission, which always
    follows them: one round trip for both (`TaskMoves.admit_call`). What is held when the
    conversation stops another way is written by `flush`."""

    rt: Runtime
    held: list[ToolsRow] = field(default_factory=list)

    def take(self) -> list[ToolsRow]:
        taken, self.held = self.held, []
        return taken

    def flush(self) -> None:
        for row in self.take():
            self.rt.durably("tool results", partial(self.rt.store.journal_tools, row))


@dataclass(frozen=True)
class ProjectMeter:
    rt: Runtime
    project_id: str
    claim: Claim | None
    outbox: Outbox | None = None

    def admit(self) -> None:
        store = self.rt.store
        claim, cap = self.claim, self.rt.settings.max_model_calls
        held = self.outbox.take() if self.outbox is not None and claim is not None else []
        try:
            admitted = claim is not None and self.rt.durably(
                "call admission", lambda: self.rt.scheduler.admit_call(claim, cap, held))
        except BaseException:
            if self.outbox is not None:  # not written: the flush after the attempt tries
                self.outbox.held[:0] = held
            raise
        if admitted:
            return  # the usual case: budget and cap checked, and the call counted, at once
        project = self.rt.durably("budget check",
                                  lambda: store.project(self.project_id, usage=False))
        if project.status is ProjectStatus.CANCELLED:
            raise ProjectCancelled(f"project {self.project_id} was cancelled: no new model "
                                   "call starts")
        if project.budget_tokens is not None and project.tokens_used >= project.budget_tokens:
            raise BudgetExhausted(f"token budget spent: {project.tokens_used} of "
                                  f"{project.budget_tokens} tokens used")
        if claim is not None and not self.rt.durably(
                "call count", lambda: self.rt.scheduler.count_call(claim, cap)):
            raise CallCapReached(f"the task made its {cap} model calls "
                                 "(AGENCY_MAX_MODEL_CALLS) without a usable answer")

    def record(self, request: CompletionRequest, response: CompletionResponse,
               attempt: int, turn: JournalTurn | None = None) -> None:
        """The ledger row of a paid call, with its turn's journal row; kept through a database
        outage (see `durably`)."""
        self._ledger(LedgerEntry(
            role=request.role, model=response.model, tokens=response.tokens,
            cost_usd=cost_usd(self.rt.settings.prices, response.model, response.tokens,
                              batch=response.batch),
            latency_ms=response.latency_ms, attempt=attempt, request_id=response.request_id,
            message_id=response.message_id, stop_reason=response.stop_reason,
            batch=response.batch), turn)

    def lost(self, request: CompletionRequest, attempt: int, reason: str,
             request_id: str | None) -> None:
        """A possibly billed attempt without an answer: a ledger row of no known tokens or
        cost, and a note saying why."""
        self._ledger(LedgerEntry(role=request.role, model=request.model, attempt=attempt,
                                 request_id=request_id, outcome=CallOutcome.LOST))
        self._note("lost_call", f"model call attempt {attempt} gave no answer ({reason}); "
                   f"it may have been billed (request {request_id or 'unknown'})")

    def _ledger(self, entry: LedgerEntry, turn: JournalTurn | None = None) -> None:
        claim = self.claim
        self.rt.durably("usage", lambda: self.rt.store.record_usage(
            self.project_id, claim, entry, turn))

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        self._note("retry", f"model call attempt {attempt} failed ({reason}); "
                   f"retrying in {delay:.1f}s")

    def throttled(self, waited: float) -> None:
        self._note("rate_limited", f"rate limited: waited {waited:.1f}s for the shared "
                   "Anthropic rate limit")

    def _note(self, kind: str, detail: str) -> None:
        try:
            self.rt.store.note(self.project_id, self.claim.task_id if self.claim else None,
                               kind, detail)
        except AgencyError as exc:  # a note is not worth failing a call for
            log.warning("could not note %s: %s", kind, exc)


@dataclass
class StoreJournal:
    """A conversation's journal in the store (see `llm.structured.Journal`)."""

    rt: Runtime
    project_id: str
    claim: Claim | None
    conv: str
    notes: Callable[[], list[tuple[str, str]]] | None = None
    read: list[JournalEntry] | None = None  # the entries read already: handed out once
    outbox: Outbox | None = None

    def entries(self) -> list[JournalEntry]:
        if self.read is not None:
            found, self.read = self.read, None
            return found
        return self.rt.durably("journal", lambda: self.rt.store.journal(self.conv))

    def tools(self, seq: int, body: str) -> None:
        row = ToolsRow(self.project_id, self.claim, self.conv, seq, body,
                       tuple(self.notes() if self.notes is not None else ()))
        if self.outbox is not None:
            self.outbox.held.append(row)
            return
        self.rt.durably("tool results", lambda: self.rt.store.journal_tools(row))

    def diverged(self, seq: int) -> None:
        self.rt.durably("journal", lambda: self.rt.store.drop_journal(self.conv, seq))


ACTIVITY_EVERY = 5.0

_lock = threading.Lock()
_runtimes: dict[int, Runtime] = {}


def get_runtime() -> Runtime:
    """This process's runtime (a new one after fork, so pools and clients are never shared)."""
    with _lock:
        pid = os.getpid()
        if pid not in _runtimes:
            _runtimes[pid] = Runtime(get_settings())
        return _runtimes[pid]


@contextmanager
def runtime_on(settings: Settings) -> Iterator[Runtime]:
    """This process's runtime made on `settings` for the block, the one before it after:
    everything that asks for the runtime inside it (embedded workers, the reconciler) uses
    these settings (`agency eval` runs its projects in a store of its own)."""
    rt = Runtime(settings)
    with _lock:
        pid = os.getpid()
        before = _runtimes.get(pid)
        _runtimes[pid] = rt
    try:
        yield rt
    finally:
        with _lock:
            if before is None:
                _runtimes.pop(pid, None)
            else:
                _runtimes[pid] = before

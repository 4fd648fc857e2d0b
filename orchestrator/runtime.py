"""What a process needs to do work: settings, store, scheduler and model provider, made once."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cached_property

from orchestrator.constants import Role
from orchestrator.errors import BudgetExhausted
from orchestrator.llm import CompletionRequest, CompletionResponse, Provider, make_provider
from orchestrator.llm.structured import RetryPolicy
from orchestrator.scheduler import Scheduler
from orchestrator.settings import Settings, get_settings
from orchestrator.store import Store, get_store


def cost_usd(settings: Settings, response: CompletionResponse) -> float:
    """Price a call from the settings' table (longest model-id prefix wins)."""
    names = [n for n in settings.prices if response.model.startswith(n)]
    if not names:
        return 0.0
    price = settings.prices[max(names, key=len)]
    t = response.tokens
    return (t.input * price[0] + t.output * price[1] + t.cache_read * price[2]
            + t.cache_write * price[3]) / 1_000_000


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

    def model_for(self, role: Role) -> str:
        if role is Role.AGENT:
            return self.settings.agent_model
        return self.settings.orchestrator_model

    @property
    def policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(attempts=s.model_attempts, backoff=s.model_backoff,
                           max_backoff=s.model_max_backoff)

    def meter(self, project_id: str, task_id: str | None) -> ProjectMeter:
        """Budget admission, ledger and retry notes for one project's (or task's) calls."""
        return ProjectMeter(self, project_id, task_id)


@dataclass(frozen=True)
class ProjectMeter:
    rt: Runtime
    project_id: str
    task_id: str | None

    def admit(self) -> None:
        if not self.rt.store.within_budget(self.project_id):
            project = self.rt.store.project(self.project_id)
            raise BudgetExhausted(f"token budget spent: {project.tokens_used} of "
                                  f"{project.budget_tokens} tokens used")

    def record(self, request: CompletionRequest, response: CompletionResponse,
               attempt: int) -> None:
        self.rt.store.record_usage(self.project_id, self.task_id, request.role.value,
                                   response.model, response.tokens,
                                   cost_usd(self.rt.settings, response), response.latency_ms,
                                   attempt)

    def retrying(self, attempt: int, reason: str, delay: float) -> None:
        self.rt.store.note(self.project_id, self.task_id, "retry",
                           f"model call attempt {attempt} failed ({reason}); "
                           f"retrying in {delay:.1f}s")


_lock = threading.Lock()
_runtimes: dict[int, Runtime] = {}


def get_runtime() -> Runtime:
    """This process's runtime (a new one after fork, so pools and clients are never shared)."""
    with _lock:
        pid = os.getpid()
        if pid not in _runtimes:
            _runtimes[pid] = Runtime(get_settings())
        return _runtimes[pid]

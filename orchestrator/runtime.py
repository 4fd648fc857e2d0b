"""What a process needs to do work: settings, store, scheduler and model provider, made once."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cached_property

from orchestrator.constants import Role
from orchestrator.llm import CompletionRequest, CompletionResponse, Provider, make_provider
from orchestrator.llm.structured import UsageSink
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

    def ledger(self, project_id: str, task_id: str | None) -> UsageSink:
        """A sink that writes one usage row per model call."""

        def record(request: CompletionRequest, response: CompletionResponse, attempt: int) -> None:
            self.store.record_usage(project_id, task_id, request.role.value, response.model,
                                    response.tokens, cost_usd(self.settings, response),
                                    response.latency_ms, attempt)

        return record


_lock = threading.Lock()
_runtimes: dict[int, Runtime] = {}


def get_runtime() -> Runtime:
    """This process's runtime (a new one after fork, so pools and clients are never shared)."""
    with _lock:
        pid = os.getpid()
        if pid not in _runtimes:
            _runtimes[pid] = Runtime(get_settings())
        return _runtimes[pid]

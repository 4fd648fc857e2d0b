"""Base task classes: retry policy and failure handling live here, once."""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery import Task, signals

from orchestrator.errors import InvalidAnswer, TaskNotReady, TransientModelError
from orchestrator.runtime import get_runtime
from orchestrator.settings import get_settings
from workers.errors import Skipped

log = logging.getLogger(__name__)

_node: dict[str, str] = {}


@signals.worker_init.connect
def _remember_node(sender: Any = None, **_: Any) -> None:
    # Thread-pool requests carry the machine's hostname, not the worker's node name
    # (`name@host`), so remember it here for `status --json` and the events table.
    _node["name"] = str(getattr(sender, "hostname", "") or "")


@signals.worker_init.connect
def _per_queue_concurrency(sender: Any = None, **_: Any) -> None:
    """A worker serving one queue gets that queue's concurrency from the settings."""
    if sender is None or any(a in ("-c", "--concurrency") or a.startswith("--concurrency=")
                             for a in sys.argv):
        return
    queues = list(getattr(sender.app.amqp.queues, "consume_from", None) or [])
    table = get_runtime().settings.concurrency
    if len(queues) == 1 and queues[0] in table:
        sender.concurrency = table[queues[0]]


def node_name(task: Task) -> str:  # type: ignore[type-arg]
    """The node name (`queue@host`) of the worker running this task."""
    return _node.get("name") or task.request.hostname or "unknown"


class AgencyTask(Task):  # type: ignore[type-arg]
    """Retries what is worth retrying; anything else fails the task for good."""

    abstract = True
    autoretry_for = (TransientModelError, InvalidAnswer, TaskNotReady)
    retry_backoff = get_settings().task_retry_backoff
    default_retry_delay = get_settings().task_retry_backoff
    retry_backoff_max = 120
    retry_jitter = True
    max_retries = get_settings().task_max_retries
    acks_late = True

    def on_retry(self, exc: Exception, task_id: str, args: Any, kwargs: Any,
                 einfo: Any) -> None:
        """A retry is scheduled: say why, on the task (or the project's own work)."""
        what = self.name.rsplit(".", 1)[-1]
        get_runtime().store.note(kwargs["project_id"], kwargs.get("task_id"), "retry",
                                 f"{what}: {exc}; retrying")

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any,
                   einfo: Any) -> None:
        if isinstance(exc, Skipped):
            log.info("%s skipped: %s", self.name, exc)
            return
        self.record_failure(kwargs, f"{type(exc).__name__}: {exc}")

    def record_failure(self, kwargs: dict[str, Any], reason: str) -> None:
        raise NotImplementedError


class AgentTask(AgencyTask):
    """An agent task failed: the task (and so its project) is failed in the store."""

    abstract = True

    def record_failure(self, kwargs: dict[str, Any], reason: str) -> None:
        get_runtime().scheduler.fail_task(kwargs["task_id"], reason)


class OrchestratorTask(AgencyTask):
    """Planning or integration failed: the project is failed in the store."""

    abstract = True

    def record_failure(self, kwargs: dict[str, Any], reason: str) -> None:
        from orchestrator.constants import ProjectStatus

        get_runtime().scheduler.move_project(kwargs["project_id"], ProjectStatus.FAILED, reason)

"""The warning a command following a project gives when no live worker serves what it waits on."""

from __future__ import annotations

import threading
from collections.abc import Callable

from celery import Celery

from orchestrator.domain.constants import (
    ORCHESTRATOR_QUEUE,
    TERMINAL_PROJECT_STATUSES,
    TaskStatus,
)
from orchestrator.domain.models import ProjectRecord, TaskRecord
from orchestrator.services.queues import unserved


def warning(missing: list[str]) -> str:
    """The line for queues nobody serves, with how to start their workers."""
    start = (f"python -m workers -Q {missing[0]} -n {missing[0]}@%h" if len(missing) == 1
             else f"python -m workers fleet --queues {','.join(missing)}")
    return (f"agency: warning: no live worker on queue(s) {', '.join(missing)}; their tasks "
            f"will wait until one starts: `honcho start` starts every worker (the Procfile), "
            f"or: {start}")


def needed(tasks: list[TaskRecord]) -> set[str]:
    """The queues a project waits on: the orchestrator's until it is planned, then those of
    its unfinished tasks' agents, then the orchestrator's again (integration)."""
    agents = {t.agent_type.value for t in tasks if t.status is not TaskStatus.COMPLETED}
    return agents or {ORCHESTRATOR_QUEUE}


class UnservedWatch:
    """Asks the workers once before the plan exists (planning needs the orchestrator queue)
    and once after (its tasks need their agents'), each in a thread: asking takes a second,
    and the progress does not wait for it."""

    def __init__(self, app: Celery, say: Callable[[str], None]) -> None:
        self.app, self.say = app, say
        self.asked: set[bool] = set()

    def check(self, project: ProjectRecord, tasks: list[TaskRecord]) -> None:
        planned = bool(tasks)
        if planned in self.asked or project.status in TERMINAL_PROJECT_STATUSES:
            return
        self.asked.add(planned)
        threading.Thread(target=self._warn, args=(needed(tasks),), daemon=True,
                         name="agency-unserved").start()

    def _warn(self, queues: set[str]) -> None:
        try:
            missing = unserved(self.app, queues)
        except Exception:  # a warning is a courtesy: the broker may be away for a moment
            return
        if missing:
            self.say(warning(missing))

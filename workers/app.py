"""The Celery app with its tasks registered. `celery -A workers.app worker -Q <queue>` serves
one agent type."""

from __future__ import annotations

from workers import check_settings

check_settings()  # `celery -A workers.app worker` with a bad setting: one line, exit 2

import workers.tasks  # noqa: E402, F401  (registers the tasks in this process at once)
from orchestrator.interfaces.celery_app import app  # noqa: E402

__all__ = ["app"]

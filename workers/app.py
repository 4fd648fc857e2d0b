"""The Celery app with its tasks registered. `celery -A workers.app worker -Q <queue>` serves
one agent type."""

from __future__ import annotations

import workers.tasks  # noqa: F401  (registers the tasks in this process at once)
from orchestrator.interfaces.celery_app import app

__all__ = ["app"]

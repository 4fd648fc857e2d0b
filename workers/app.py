"""The Celery app. `celery -A workers.app worker -Q <queue>` serves one agent type."""

from __future__ import annotations

from celery import Celery

app = Celery("agency")
app.config_from_object("celeryconfig")
# Thread-pool workers and canvas callbacks must find this app, not Celery's default one.
app.set_default()

import workers.tasks  # noqa: E402,F401  (registers the tasks)

"""The Celery app. `celery -A workers.app worker -Q <queue>` serves one agent type."""

from __future__ import annotations

import logging

from celery import Celery

# The HTTP client logs every request's URL at INFO: keep the API's address out of the logs.
for _name in ("httpx", "httpx2", "httpcore", "anthropic"):
    logging.getLogger(_name).setLevel(logging.WARNING)

app = Celery("agency")
app.config_from_object("celeryconfig")
# Thread-pool workers and canvas callbacks must find this app, not Celery's default one.
app.set_default()

import workers.tasks  # noqa: E402,F401  (registers the tasks)

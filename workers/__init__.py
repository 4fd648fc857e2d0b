"""Agency workers: the Celery app, the specialist agents and the thin Celery tasks."""

from __future__ import annotations

import sys

from orchestrator.domain.errors import ConfigError
from orchestrator.domain.settings import get_settings

USAGE_ERROR = 2  # what a bad option exits with; the fleet does not restart such a pool


def check_settings() -> None:
    """A bad setting (an unpriced model, say) is one line and exit 2, before anything imports
    the settings (Celery's configuration does, while `celery worker` parses its options: a
    traceback through Click otherwise) and before any model call."""
    try:
        get_settings()
    except ConfigError as exc:
        print(f"agency: error: {exc.message}", file=sys.stderr)
        sys.exit(USAGE_ERROR)

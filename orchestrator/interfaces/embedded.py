"""Embedded mode: a real Celery worker on `memory://`, as threads inside this process."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from celery import Celery

from orchestrator.agent.runtime import get_runtime
from orchestrator.domain.constants import ALL_QUEUES
from orchestrator.domain.settings import Settings
from orchestrator.services.reconciler import Reconciler


def _quiet_logging(home: Path) -> None:
    """Worker logs go to a file so the terminal shows only the progress display."""
    home.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(home / "embedded-worker.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("celery", "kombu", "orchestrator", "workers"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)


@contextmanager
def embedded_workers(app: Celery, settings: Settings) -> Iterator[str]:
    """Run one worker consuming every queue on a thread pool; yield its hostname."""
    _quiet_logging(settings.home)
    hostname = f"embedded@{socket.gethostname()}"
    worker = app.WorkController(
        hostname=hostname, pool_cls="threads", concurrency=settings.embedded_concurrency,
        queues=list(ALL_QUEUES), without_mingle=True, without_gossip=True,
        without_heartbeat=True, loglevel="INFO", task_events=False,
    )
    thread = threading.Thread(target=worker.start, name="agency-embedded-worker", daemon=True)
    thread.start()
    # The production reconciler starts with the orchestrator worker (`worker_ready`, which a
    # bare WorkController does not send): here it lives as long as the embedded workers.
    reconciler = Reconciler(get_runtime(), app).start()
    try:
        yield hostname
    finally:
        reconciler.stop()
        worker.stop(in_sighandler=False)
        # The consumer's sync loop blocks up to 2 s in drain_events before it sees the stop;
        # by now the project has ended, so do not wait for it (the thread is a daemon).
        thread.join(timeout=0.3)

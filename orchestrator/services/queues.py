"""Who is serving which queue: live workers, their concurrency, and each queue's depth."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from kombu.utils.url import maybe_sanitize_url

from orchestrator.domain.constants import ALL_QUEUES, STORE_HEALTH_COMMAND
from orchestrator.domain.errors import Unavailable


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    concurrency: int
    active: int
    # Its store connections (PostgresConnector.health): open, idle, waiting, max, and the
    # server's reason while it refuses new ones; empty when the worker did not say.
    store: dict[str, Any] = field(default_factory=dict)

    @property
    def store_note(self) -> str | None:
        """A line's worth when the worker waits for the store, else None."""
        waiting, refused = int(self.store.get("waiting") or 0), self.store.get("refused")
        if not refused and not waiting:
            return None
        why = f": {refused}" if refused else ""
        since = self.store.get("refused_for_s")
        return (f"{waiting} waiting for the store{why}"
                + (f" (for {since:.0f} s)" if isinstance(since, int | float) else ""))


@dataclass(frozen=True)
class QueueInfo:
    name: str
    depth: int
    workers: list[WorkerInfo] = field(default_factory=list)


def check_broker(app: Celery, timeout: int = 3) -> None:
    """Fail fast, in one line, when the broker cannot be reached."""
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:
        url = maybe_sanitize_url(app.conf.broker_url)
        raise Unavailable(f"cannot reach the broker at {url}: {exc}") from exc


def queue_depth(app: Celery, queue: str) -> int:
    with app.connection_for_read() as conn:
        channel: Any = conn.default_channel
        try:
            declared = channel.queue_declare(queue=queue, passive=True)
        except conn.channel_errors:
            return 0  # the broker has not seen the queue yet: nothing waits on it
        return int(declared.message_count)


def _replies(app: Celery, timeout: float) -> tuple[dict[str, Any], ...]:
    """Which queues each live worker consumes, its stats, its active tasks and its store
    connections.

    Each broadcast waits out `timeout` (nobody knows how many workers will answer), so the
    four are asked at once: the whole costs one timeout, not four."""
    inspect = app.control.inspect(timeout=timeout)
    asks = (inspect.active_queues, inspect.stats, inspect.active,
            lambda: inspect._request(STORE_HEALTH_COMMAND))
    with ThreadPoolExecutor(max_workers=len(asks)) as pool:
        replies: list[Any] = [future.result() or {}
                              for future in [pool.submit(ask) for ask in asks]]
    return tuple(replies)


def fleet(app: Celery, timeout: float = 1.0) -> list[QueueInfo]:
    """Every Agency queue with the workers consuming it (ping-based: live ones only)."""
    queues, stats, active, stores = _replies(app, timeout)
    per_queue: dict[str, list[WorkerInfo]] = {q: [] for q in ALL_QUEUES}
    for node, consumed in sorted(queues.items()):
        pool = stats.get(node, {}).get("pool", {})
        store = stores.get(node)
        info = WorkerInfo(name=node, concurrency=int(pool.get("max-concurrency", 0)),
                          active=len(active.get(node, [])),
                          store=store if isinstance(store, dict) else {})
        for queue in consumed:
            per_queue.setdefault(queue["name"], []).append(info)
    return [QueueInfo(name=q, depth=queue_depth(app, q), workers=per_queue[q]) for q in ALL_QUEUES]


def unserved(app: Celery, needed: set[str], timeout: float = 1.0) -> list[str]:
    """The queues in `needed` that no live worker consumes."""
    queues = _replies(app, timeout)[0]
    served = {q["name"] for consumed in queues.values() for q in consumed}
    return sorted(needed - served)

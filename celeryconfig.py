"""Celery configuration for Agency, derived from the settings (AGENCY_* variables)."""

from __future__ import annotations

from typing import Any

from kombu import Queue

from orchestrator.domain.constants import (
    ALL_QUEUES,
    KEEPALIVE,
    ORCHESTRATOR_QUEUE,
    REDIS_HEALTH_CHECK,
    REDIS_SOCKET_TIMEOUT,
)
from orchestrator.domain.settings import get_settings

_settings = get_settings()

broker_url = _settings.effective_broker_url
result_backend = _settings.effective_result_backend

# JSON only: messages carry ids and titles, never pickles, secrets or outputs.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
result_accept_content = ["json"]

task_queues = [Queue(name, routing_key=name) for name in ALL_QUEUES]
task_default_queue = ORCHESTRATOR_QUEUE


def route_task(name: str, args: Any, kwargs: Any, options: Any, task: Any = None,
               **kw: Any) -> dict[str, str]:
    """`agency.agent.<type>` goes to queue `<type>`, a review `agency.review.<reviewer>` to
    the reviewer's queue; everything else to `orchestrator`."""
    queue = ORCHESTRATOR_QUEUE
    for prefix in ("agency.agent.", "agency.review."):
        if name.startswith(prefix):
            queue = name[len(prefix):]
    return {"queue": queue, "routing_key": queue}


task_routes = (route_task,)

# Model calls are long: acknowledge after the work is done and take one message at a time.
# A claimed task is guarded by its lease in the store, not by the broker: the reconciler re-runs
# a dead worker's task within seconds. Redis's visibility timeout only brings back messages a
# dead worker took but had not claimed. The threads pool enforces no time limit, so none is set:
# a task's time is bounded by its model calls (AGENCY_MAX_MODEL_CALLS x AGENCY_ANTHROPIC_TIMEOUT).
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# On a lost broker connection, let running tasks finish (explicitly: Celery 6 flips the default).
# A model call in flight is worth keeping: its lease and fencing make any second delivery harmless.
worker_cancel_long_running_tasks_on_connection_loss = False
# Connections that sat idle through a partition or a Redis restart are dead, and a socket does
# not know it until something is sent: the first command on one failed with "Broken pipe",
# and a task with it, before it ran. So every Redis connection here (the broker's, the
# publishers', the result backend's, the rate limit's) is health-checked: one idle longer than
# REDIS_HEALTH_CHECK seconds is PINGed before it is used, and a failed PING reconnects and
# retries at once (redis-py), so the command runs on a fresh connection. TCP keepalive finds a
# dead peer of an idle connection within 10 + 3 x 5 s even when nothing is sent (the result
# backend: redis-py's 30 + 3 x 5 s); a timeout on a read is retried once on a new connection.
broker_transport_options: dict[str, Any] = {
    "visibility_timeout": _settings.visibility_timeout,
    "health_check_interval": REDIS_HEALTH_CHECK, "socket_keepalive": True,
    "socket_keepalive_options": KEEPALIVE, "retry_on_timeout": True,
    # Without timeouts a command on a half-open connection (a PING, a publish) waits for the
    # kernel to give up, minutes: these make it fail over to a fresh connection instead.
    "socket_timeout": REDIS_SOCKET_TIMEOUT, "socket_connect_timeout": REDIS_SOCKET_TIMEOUT}
if _settings.embedded:
    # The in-memory transport polls; its default of one second would idle between steps.
    broker_transport_options["polling_interval"] = 0.02
# A task that reaches Redis while it is down (dispatching the next tasks, the result subscription
# a group or chord needs) waits up to a minute for it to come back instead of failing: Celery
# gives up on a publish after about a second and on the backend after 20 s. What still cannot be
# sent is re-sent by the reconciler (the store records what each message carried).
_OUTAGE_RETRY = {"max_retries": 60, "interval_start": 0, "interval_step": 1, "interval_max": 1}
task_publish_retry_policy = _OUTAGE_RETRY
result_backend_transport_options: dict[str, Any] = {
    "visibility_timeout": _settings.visibility_timeout, "retry_policy": _OUTAGE_RETRY}
redis_backend_health_check_interval = REDIS_HEALTH_CHECK
redis_socket_keepalive = True  # (with redis-py's own keepalive timings: Celery takes no options)
redis_retry_on_timeout = True
redis_socket_connect_timeout = REDIS_SOCKET_TIMEOUT
result_expires = 7 * 24 * 3600

# Flower reads events; tasks report progress through them.
worker_send_task_events = True
task_send_sent_event = True
# No "started" state in the result backend: nobody reads it (Flower shows a task started from
# its event; the store holds what a task is doing), and its write was a round trip per task
# and the first use, after a partition, of a connection that could be dead.
task_track_started = False

# Agents wait on model calls (I/O): threads, with per-queue concurrency from the settings
# (AGENCY_CONCURRENCY, applied when a worker starts; see workers/base.py).
worker_pool = "threads"
broker_connection_retry_on_startup = True
# Never give up on the broker: Celery's 100 retries would end with the worker exiting, and
# under honcho one exit stops every worker (attempts are 1 s apart: celery_app.BrokerConnection).
broker_connection_max_retries = None

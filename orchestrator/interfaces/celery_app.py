"""The Celery app. It names its task module (`workers.tasks`) instead of importing it: a
worker imports it when it starts (Celery's `include`), and the CLI, which only sends tasks by
name, never loads the worker side."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from celery import Celery, signals
from celery.app.amqp import AMQP
from kombu import Connection

from orchestrator.domain.display import visible

RECONNECT_EVERY = 1  # seconds between a worker's attempts to reach a lost broker

# The HTTP client logs every request's URL at INFO: keep the API's address out of the logs.
for _name in ("httpx", "httpx2", "httpcore", "anthropic"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class VisibleLog(logging.Filter):
    """A log line's control characters made visible: a request's or a model's text in a log
    (a task's title, an error's reason) cannot drive the terminal of whoever tails it. The
    formatter's own colours come after this and stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = visible(message)
        if shown != message:
            record.msg, record.args = shown, None
        return True


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _visible_logs(logger: logging.Logger, **_: object) -> None:
    for handler in logger.handlers:
        if not any(isinstance(f, VisibleLog) for f in handler.filters):
            handler.addFilter(VisibleLog())


class BrokerConnection(Connection):
    """A kombu connection that forgets its default channel once `collect()` tore it down.

    Celery 5.7's consumer handles a lost broker connection with `connection.collect()` and then
    `connection.close()` (celery/worker/consumer/consumer.py, on_connection_error_after_connected).
    `collect()` detaches the transport (`transport.client = None`) but keeps `_default_channel`,
    and a Redis channel whose close failed half-way (its pending BRPOP raised ConnectionError) is
    not marked closed. `close()` then closes it again; with a late-acked task in flight it tries
    to restore that message, builds a Redis pool from `transport.client`, and raises
    AttributeError ("'NoneType' object has no attribute 'hostname'"), which is not a connection
    error: the worker exits with "Unrecoverable error". kombu itself drops the default channel
    without closing it when it reconnects (`_connection_factory`); this does the same right after
    `collect()`. The in-flight task runs on, and its late ack goes through that channel's own
    Redis pool once Redis is back (or is logged as "Couldn't ack" while it is down).
    """

    def collect(self, socket_timeout: float | None = None) -> None:
        try:
            super().collect(socket_timeout)
        finally:
            self._default_channel = None

    def _ensure_connection(self, errback: Callable[[Exception, float], None] | None = None,
                           max_retries: int | None = None,
                           interval_start: int = RECONNECT_EVERY, interval_step: int = 0,
                           interval_max: int = RECONNECT_EVERY,
                           callback: Callable[[], None] | None = None,
                           reraise_as_library_errors: bool = True,
                           timeout: int | None = None) -> BrokerConnection:
        """Reconnect every RECONNECT_EVERY seconds, not kombu's 2, 4, … 30: after a partition
        or a Redis restart of a minute, a worker's consumer would otherwise sleep up to 30 s
        more before it takes work again (Celery's consumer passes no intervals of its own)."""
        return super()._ensure_connection(errback, max_retries, interval_start, interval_step,
                                          interval_max, callback, reraise_as_library_errors,
                                          timeout)


class AgencyAMQP(AMQP):
    """Celery's AMQP helpers, building broker connections with `BrokerConnection`."""

    Connection = BrokerConnection


app = Celery("agency", amqp=AgencyAMQP, include=["workers.tasks"])
app.config_from_object("celeryconfig")
# Thread-pool workers and canvas callbacks must find this app, not Celery's default one.
app.set_default()


@contextmanager
def results_released(client: Celery) -> Iterator[None]:
    """Send messages in the body; at its end, let go of their results while this process can.

    A process that sends tasks without waiting for them (the CLI) subscribes to each result on
    the Redis backend. A chord's or a group's results hold each other in reference cycles, so
    they may outlive the command; when the interpreter then collects them at shutdown, each
    one's `AsyncResult.__del__` unsubscribes, which opens a Redis connection after imports have
    stopped working: "Exception ignored in: AsyncResult.__del__" and a 17-line ImportError
    traceback, now and then, after a command that succeeded. Collecting the cycles here runs
    those unsubscribes while everything works; closing the subscription and forgetting its
    keys leaves nothing for a result that is still referenced to do at shutdown.
    """
    try:
        yield
    finally:
        gc.collect()
        consumer = getattr(client.backend, "result_consumer", None)
        subscribed = getattr(consumer, "subscribed_to", None)
        if consumer is not None and isinstance(subscribed, set):
            consumer.stop()
            subscribed.clear()

"""The plain-Celery baseline of the scheduling benchmarks: no-op tasks, none of our code.

A Celery app of its own (`-A bench.plain_celery`) on the broker `PLAIN_BROKER_URL` (default
`redis://127.0.0.1:6379/9`; the result backend is the same Redis database), with the Celery
settings of our `celeryconfig.py` that shape delivery (JSON only, acks late, prefetch 1,
task events, started state tracked, the threads pool), and one task, `plain.noop`, which
records `time.time()` as it starts and as it ends and returns both. Its workers are separate
processes, one per queue (`-P threads -c N -l INFO`, as the Procfile's), so consecutive
hops of a chain cross processes as ours do.

`bench/dispatch_gap.py` runs a `chain` of no-ops over the queues, `bench/throughput.py` a
`group`; both measure this beside our system in the same run, on the same Redis server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from celery import Celery, chain, group

REPO = Path(__file__).resolve().parent.parent
BROKER = os.environ.get("PLAIN_BROKER_URL", "redis://127.0.0.1:6379/9")

app = Celery("plain", broker=BROKER, backend=BROKER)
app.conf.update(
    task_serializer="json", result_serializer="json", accept_content=["json"],
    result_accept_content=["json"], task_acks_late=True, task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1, worker_send_task_events=True, task_send_sent_event=True,
    task_track_started=True, worker_pool="threads", broker_connection_retry_on_startup=True,
    result_expires=3600, worker_hijack_root_logger=True)


@app.task(name="plain.noop")
def noop() -> list[float]:
    """Nothing, between two clock readings: [start, end] (seconds since the epoch)."""
    start = time.time()
    return [start, time.time()]


def start_workers(concurrency: Mapping[str, int], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    """One `celery worker` process per queue, each in its own session (killed with its group)."""
    env = {**os.environ, "PLAIN_BROKER_URL": BROKER,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")]))}
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for queue, threads in concurrency.items():
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.plain_celery", "worker", "-Q", queue,
             "-n", f"plain-{queue}@%h", "-P", "threads", "-c", str(threads), "-l", "INFO"],
            cwd=REPO, env=env, stdout=(log_dir / f"plain-{queue}.log").open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True))
    return procs


def stop_workers(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def purge() -> None:
    """Drop messages a previous, interrupted run left in the baseline's queues."""
    app.control.purge()


def run_chain(queues: list[str], n: int, timeout: float = 120) -> list[tuple[float, float]]:
    """A chain of `n` no-ops, task i on queues[i % len(queues)]: each task's (start, end)."""
    sig = chain(*[noop.si().set(queue=queues[i % len(queues)]) for i in range(n)])
    result: Any = sig.apply_async()
    result.get(timeout=timeout)
    spans: list[tuple[float, float]] = []
    node = result
    while node is not None:
        start, end = node.get(timeout=timeout)
        spans.append((start, end))
        node = node.parent
    spans.reverse()
    if len(spans) != n:
        raise RuntimeError(f"the chain returned {len(spans)} results, not {n}")
    return spans


def run_group(queues: list[str], n: int, timeout: float = 300
              ) -> tuple[list[tuple[float, float]], float, float]:
    """A group of `n` no-ops spread round-robin over the queues: each task's (start, end), and
    when the group was sent (time.time() before and after `apply_async`)."""
    sig = group(noop.si().set(queue=queues[i % len(queues)]) for i in range(n))
    sent_from = time.time()
    result: Any = sig.apply_async()
    sent_to = time.time()
    values = result.get(timeout=timeout)
    result.forget()
    return [(float(s), float(e)) for s, e in values], sent_from, sent_to

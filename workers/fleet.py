"""Every worker pool of one machine as forked children of one process.

    python -m workers fleet [--queues q1,q2,...] [-l INFO]

starts one worker per queue (all eleven by default), each exactly what
`python -m workers -Q <queue> -n <queue>@%h` starts: its own process, node name, thread pool and
concurrency (AGENCY_CONCURRENCY). The parent imports the worker code once (Celery, kombu, the
Redis and PostgreSQL clients, pydantic, the agents, and the anthropic SDK when Claude is
configured), freezes it out of the garbage collector's reach, and forks: the children share
those pages instead of each holding a copy, so the pools of one machine take about half the
memory of eleven separate processes (docs/benchmarks.md). The parent holds no connection and
no thread; it restarts a child that dies (a second later, at most once a minute per queue
beyond that) and, on SIGTERM or SIGINT, passes the signal to every child and waits for them
(Celery's warm shutdown: running tasks finish).
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import signal
import sys
import time
from collections.abc import Sequence

RESTART_DELAY = 1.0
RESTART_WINDOW = 60.0


def _preload() -> None:
    """Import what every worker imports, before forking."""
    import celery.apps.worker
    import celery.backends.redis
    import celery.bin.worker
    import celery.concurrency.thread
    import celery.worker.consumer  # noqa: F401
    import kombu.transport.redis  # noqa: F401
    import psycopg  # noqa: F401
    import psycopg_pool  # noqa: F401

    import workers.tasks  # noqa: F401
    from orchestrator.constants import LLMKind
    from orchestrator.llm import offline_model  # noqa: F401
    from orchestrator.settings import get_settings

    if get_settings().llm_kind is LLMKind.ANTHROPIC:
        import anthropic  # noqa: F401


def _child(queue: str, extra: Sequence[str]) -> None:
    """In the forked child: become the queue's worker; never return."""
    random.seed()  # the parent's generator state is every child's otherwise
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    code = 0
    try:
        from workers.__main__ import main

        main(["-Q", queue, "-n", f"{queue}@%h", *extra])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


class Fleet:
    def __init__(self, queues: Sequence[str], extra: Sequence[str]) -> None:
        self.queues, self.extra = list(queues), list(extra)
        self.children: dict[int, str] = {}
        self.restarts: dict[str, list[float]] = {q: [] for q in self.queues}
        self.stopping = False

    def spawn(self, queue: str) -> int:
        pid = os.fork()
        if pid == 0:
            _child(queue, self.extra)
        self.children[pid] = queue
        return pid

    def stop(self, signum: int, _frame: object = None) -> None:
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def run(self) -> int:
        for queue in self.queues:
            self.spawn(queue)
        print(f"fleet: {len(self.queues)} worker pools started "
              f"({', '.join(f'{q}={p}' for p, q in self.children.items())})", flush=True)
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover (PEP 475 retries)
                continue
            if pid not in self.children:
                continue
            queue = self.children.pop(pid)
            if self.stopping:
                continue
            print(f"fleet: the {queue} worker (pid {pid}) exited with status "
                  f"{os.waitstatus_to_exitcode(status)}; restarting it", flush=True)
            recent = [t for t in self.restarts[queue] if time.monotonic() - t < RESTART_WINDOW]
            time.sleep(RESTART_DELAY if len(recent) < 3 else RESTART_WINDOW / 4)
            self.restarts[queue] = [*recent, time.monotonic()]
            if not self.stopping:
                new = self.spawn(queue)
                print(f"fleet: the {queue} worker (pid {pid}) restarted as {new}", flush=True)
        return 0


def main(argv: Sequence[str]) -> int:
    import argparse

    from orchestrator.constants import ALL_QUEUES

    parser = argparse.ArgumentParser(
        prog="python -m workers fleet", description=__doc__.split("\n\n")[0],
        epilog="Any other option (e.g. -l INFO) is passed to every worker.")
    parser.add_argument("--queues", default=",".join(ALL_QUEUES),
                        help="queues to serve, separated by commas (default: all eleven)")
    args, extra = parser.parse_known_args(list(argv))
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(ALL_QUEUES))
    if unknown or not queues:
        parser.exit(2, f"python -m workers fleet: unknown queue(s) {', '.join(unknown)} "
                       f"(known: {', '.join(ALL_QUEUES)})\n" if unknown else
                    "python -m workers fleet: no queue given\n")
    if "-Q" in extra or "--queues" in extra or "-n" in extra or "--hostname" in extra:
        parser.exit(2, "python -m workers fleet: the fleet names each worker and its queue; "
                       "use --queues to choose them\n")
    _preload()
    gc.collect()
    gc.freeze()  # what is imported now stays shared: the children's collector never touches it
    fleet = Fleet(queues, extra)
    signal.signal(signal.SIGTERM, fleet.stop)
    signal.signal(signal.SIGINT, fleet.stop)
    return fleet.run()

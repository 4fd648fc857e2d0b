"""Every worker pool of one machine as forked children of one process.

    python -m workers fleet [--queues q1,q2,...] [-n HOST] [-l INFO]

starts one worker per queue (all eleven by default), each exactly what `python -m workers -Q
<queue> -n <queue>@%h` starts (`<queue>@HOST` with `-n HOST`): its own process, node name,
thread pool and concurrency (AGENCY_CONCURRENCY). The parent imports the worker code once
(Celery, kombu, the Redis and PostgreSQL clients, pydantic, the agents, and the configured model
provider's plugin: the anthropic SDK or the offline model), freezes it out of the garbage
collector's reach, and forks: the children share those pages instead of each holding a copy, so
the pools of one machine take about half the memory of eleven separate processes
(docs/benchmarks.md). The parent holds no connection and no thread. It starts a pool that dies
again (a second later; 15 s later once it died three times within a minute), stops every pool
and exits 2 when a worker refuses its options, and on SIGTERM or SIGINT sends every pool SIGTERM
and waits for them (Celery's warm shutdown: running tasks finish). A pool gets SIGTERM too when
the fleet's process dies, however it died. """

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import time
from collections.abc import Sequence

RESTART_DELAY = 1.0  # a pool that died starts again this much later
RESTART_WINDOW = 60.0  # ... unless it died 3 times within this window: then a quarter later
USAGE_ERROR = 2  # a worker that exits with this (a bad option) would fail again: the fleet stops
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
_PR_SET_PDEATHSIG = 1


def _preload() -> None:
    """Import what every worker imports, before forking (nothing here opens a connection, a
    thread or a file): the worker code and the configured model provider's plugin only (the
    offline model is not loaded where Claude is configured, nor the SDK where it is not)."""

    import workers.tasks  # noqa: F401
    from orchestrator.domain.settings import get_settings
    from orchestrator.llm import provider_factory

    provider_factory(get_settings().llm_kind.value)


def _die_with_parent(parent: int) -> None:
    """Linux: the child gets SIGTERM (a warm shutdown) when the fleet's process dies, even by
    SIGKILL, rather than serving on as an orphan beside the next fleet's pools."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the parent's SIGTERM is all there is
        return
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(0)


def _child(queue: str, host: str, extra: Sequence[str], parent: int,
           mask: set[int | signal.Signals]) -> None:
    """In the forked child: become the queue's worker; never return."""
    for sig in (*_STOP_SIGNALS, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a stop sent meanwhile lands now
    _die_with_parent(parent)
    code = 0
    try:
        from workers.__main__ import main

        main(["-Q", queue, "-n", f"{queue}@{host}", *extra])
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
    def __init__(self, queues: Sequence[str], extra: Sequence[str], host: str = "%h") -> None:
        self.queues, self.extra, self.host = list(queues), list(extra), host
        self.children: dict[int, str] = {}
        self.deaths: dict[str, list[float]] = {q: [] for q in self.queues}
        self.due: dict[str, float] = {}  # queue -> when its pool starts again
        self.stopping = False
        self.code = 0

    def spawn(self, queue: str) -> int | None:
        """Fork the queue's worker; None once the fleet is stopping. Stop signals are held
        while forking, so that none is lost between the fork and the child's registration."""
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            if self.stopping:
                return None
            pid = os.fork()
            if pid == 0:
                _child(queue, self.host, self.extra, os.getppid(), mask)
            self.children[pid] = queue
            return pid
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)

    def stop(self, _signum: int = signal.SIGTERM, _frame: object = None) -> None:
        """Warm shutdown of every pool: SIGTERM, whatever stopped the fleet (a second SIGINT
        would make Celery cancel running tasks; Ctrl-C already sent one to every child)."""
        self.stopping = True
        self.due.clear()
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            queue = self.children.pop(pid, None)
            if queue is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == USAGE_ERROR:
                print(f"fleet: the {queue} worker (pid {pid}) refused its options (exit "
                      f"{code}); stopping every pool", flush=True)
                self.code = USAGE_ERROR
                self.stop()
                continue
            now = time.monotonic()
            recent = [t for t in self.deaths[queue] if now - t < RESTART_WINDOW]
            self.deaths[queue] = [*recent, now]
            delay = RESTART_DELAY if len(recent) < 3 else RESTART_WINDOW / 4
            self.due[queue] = now + delay
            print(f"fleet: the {queue} worker (pid {pid}) exited with status {code}; "
                  f"restarting it in {delay:.0f} s", flush=True)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for queue, when in list(self.due.items()):
            if when <= now:
                del self.due[queue]
                old = self.spawn(queue)
                if old is not None:
                    print(f"fleet: the {queue} worker restarted as {old}", flush=True)

    def run(self) -> int:
        for queue in self.queues:
            self.spawn(queue)
        print(f"fleet: {len(self.children)} worker pools started "
              f"({', '.join(f'{q}={p}' for p, q in self.children.items())})", flush=True)
        while self.children or self.due:
            self._reap()
            self._restart_due()
            time.sleep(0.2)
        return self.code


def main(argv: Sequence[str]) -> int:
    import argparse

    from orchestrator.domain.constants import ALL_QUEUES

    parser = argparse.ArgumentParser(
        prog="python -m workers fleet", description=__doc__.split("\n\n")[0],
        epilog="Any other option (e.g. -l INFO) is passed to every worker.")
    parser.add_argument("--queues", default=",".join(ALL_QUEUES),
                        help="queues to serve, separated by commas (default: all eleven)")
    parser.add_argument("-n", "--hostname", default="%h", metavar="NAME",
                        help="the host part of every pool's node name, <queue>@NAME (default "
                             "%%h, this host's name; Celery's %%h, %%n and %%d work): give each "
                             "host its own when hosts share a name (containers, namespaces)")
    args, extra = parser.parse_known_args(list(argv))
    queues = [q.strip() for q in args.queues.split(",") if q.strip()]
    unknown = sorted(set(queues) - set(ALL_QUEUES))
    if unknown or not queues:
        parser.exit(2, f"python -m workers fleet: unknown queue(s) {', '.join(unknown)} "
                       f"(known: {', '.join(ALL_QUEUES)})\n" if unknown else
                    "python -m workers fleet: no queue given\n")
    if "-Q" in extra or "--queues" in extra:
        parser.exit(2, "python -m workers fleet: the fleet gives each worker its queue; "
                       "use --queues to choose them\n")
    if not args.hostname.strip() or "@" in args.hostname or any(c.isspace()
                                                                 for c in args.hostname):
        parser.exit(2, f"python -m workers fleet: bad --hostname {args.hostname!r}: a host "
                       "name, without '@' or spaces\n")
    _preload()
    gc.collect()
    gc.freeze()  # what is imported now stays shared: the children's collector never touches it
    fleet = Fleet(queues, extra, args.hostname)
    signal.signal(signal.SIGTERM, fleet.stop)
    signal.signal(signal.SIGINT, fleet.stop)
    return fleet.run()

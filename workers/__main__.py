"""One worker, without the rest of Celery's command line.

    python -m workers -Q <queue> -n <queue>@%h -l INFO

is `celery -A workers.app worker -Q <queue> -n <queue>@%h -l INFO`: the same `worker` command
of Celery's (its options, defaults and `CELERY_WORKER_*` variables), on this app. `celery`
builds its whole umbrella command before it runs `worker`: every subcommand, the `amqp` REPL
(click_repl, prompt_toolkit, pygments) and the plugin Flower registers (tornado,
prometheus_client, humanize), about 22 MB resident in every worker process, none of it used.
The Procfile, docker-compose.yml and deploy/kubernetes start workers this way; `celery -A
workers.app worker` still works the same, only heavier. `--detach` is not supported (every
supervisor here keeps its workers in the foreground).

    python -m workers fleet [--queues q1,q2,...] [-n HOST]

starts every queue's worker of this machine as forked children of one process, which share the
imported code (workers/fleet.py).
"""

from __future__ import annotations

import os
import sys

from workers import check_settings


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    check_settings()
    if args[:1] == ["fleet"]:  # every pool of this machine, forked from one process
        from workers.fleet import main as fleet

        sys.exit(fleet(args[1:]))
    if "-D" in args or "--detach" in args:
        sys.exit("python -m workers runs in the foreground; use `celery -A workers.app worker "
                 "--detach` to detach")
    from celery.bin.base import CLIContext
    from celery.bin.worker import worker

    from workers.app import app

    worker.params.extend(app.user_options.get("worker", []))
    # No gossip and no mingle: a worker here needs nothing from the others (no revokes, no
    # elections), and gossip makes every worker consume every other's events: after a partition
    # the backlog arrives late and each worker warns "clocks are out of sync" about hosts that
    # share one clock. Heartbeats stay on (Flower and `agency workers` show who is alive).
    args = [*args, *(flag for flag in ("--without-gossip", "--without-mingle")
                     if flag not in args)]
    context = CLIContext(app=app, no_color=bool(os.environ.get("NO_COLOR")), workdir=None,
                         quiet=False)
    worker.main(args=args, prog_name="python -m workers", obj=context,
                auto_envvar_prefix="CELERY_WORKER")


if __name__ == "__main__":
    main()

"""Commands about the service around the projects: workers, Flower, metrics, statistics, and
database maintenance."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer
from pydantic import SecretStr

from orchestrator.agent.runtime import get_runtime
from orchestrator.domain.errors import BadInput
from orchestrator.interfaces.celery_app import app
from orchestrator.interfaces.cli.app import cli, db_cli, handle_errors, out, say
from orchestrator.interfaces.metrics import AgencyCollector, server
from orchestrator.interfaces.shapes import queues_json
from orchestrator.interfaces.stats import collect, optimize, slots
from orchestrator.interfaces.views import stats_view
from orchestrator.services.queues import check_broker, fleet
from orchestrator.services.retention import compact
from orchestrator.state.store import display_url, upgrade

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@cli.command()
@handle_errors
def stats(project_id: Annotated[str | None, typer.Argument(
              help="One project's id (or a unique prefix); all projects without it.")] = None,
          as_json: AsJson = False,
          llm: Annotated[bool, typer.Option("--llm", help="Also ask the orchestrator model "
                                            "for optimisations.")] = False) -> None:
    """Utilisation per queue, tokens and cost, retries, review rejections, the slowest work,
    and suggestions."""
    rt = get_runtime()
    scope = rt.store.resolve_project_id(project_id) if project_id is not None else None
    data = collect(rt.store, scope, slots(rt.settings)).to_json()
    if llm:
        data["optimization"] = optimize(rt, data)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    out.print(stats_view(data))


@cli.command()
@handle_errors
def metrics(port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                              help="Port to listen on.")] = 9808,
            address: Annotated[str, typer.Option("--address",
                                                 help="Address to bind.")] = "127.0.0.1",
            timeout: Annotated[float, typer.Option(
                min=0.05, max=60, help="Seconds to wait for workers' replies per scrape.")
            ] = 1.0) -> None:
    """Serve Prometheus metrics on /metrics: projects, tasks, tokens, cost, task durations,
    and (with a broker) each queue's depth and live workers."""
    rt = get_runtime()
    # Embedded, there is no broker to ask: the queue metrics are left out.
    collector = AgencyCollector(rt.store, None if rt.settings.embedded else app, timeout)
    try:
        httpd = server(collector, address, port)
    except OSError as exc:
        raise BadInput(f"cannot listen on {address}:{port}: {exc.strerror or exc}") from None
    say(f"Serving Prometheus metrics on http://{address}:{port}/metrics")
    with httpd:
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            return


@cli.command()
@handle_errors
def workers(as_json: AsJson = False,
            timeout: Annotated[float, typer.Option(
                min=0.05, max=60, help="Seconds to wait for replies.")] = 0.5
            ) -> None:
    """Every queue with its live workers, their concurrency, and the queue's depth."""
    rt = get_runtime()
    if rt.settings.embedded:
        raise BadInput("no broker configured (AGENCY_BROKER_URL): in embedded mode the workers "
                       "run inside `agency run`")
    check_broker(app)
    queues = fleet(app, timeout)
    if as_json:
        print(json.dumps(queues_json(queues), indent=2))
        return
    for q in queues:
        names = ", ".join(f"{w.name} (x{w.concurrency}, {w.active} busy"
                          + (f"; {w.store_note}" if w.store_note else "") + ")"
                          for w in q.workers)
        say(f"{q.name:<20} depth {q.depth:<4} {names or 'NO WORKERS'}")


def _check_basic_auth(auth: SecretStr | None) -> None:
    """Flower takes `user:password` pairs, comma-separated; never echo them."""
    if auth is None:
        return
    for pair in auth.get_secret_value().split(","):
        user, colon, password = pair.partition(":")
        if not (user and colon and password):
            raise BadInput("FLOWER_BASIC_AUTH must be user:password (several pairs separated "
                           "by commas); Flower refuses to start")


@cli.command()
@handle_errors
def flower(
    unauthenticated: Annotated[bool, typer.Option(
        "--unauthenticated", help="Run Flower without authentication (not recommended).")
    ] = False,
) -> None:
    """Start Flower on this agency's broker, with basic auth from FLOWER_BASIC_AUTH."""
    rt = get_runtime()
    if rt.settings.embedded:
        raise BadInput("Flower needs a broker: set AGENCY_BROKER_URL")
    if rt.settings.flower_basic_auth is None and not unauthenticated:
        raise BadInput("Flower refuses to start open: set FLOWER_BASIC_AUTH=user:password "
                       "(or pass --unauthenticated)")
    _check_basic_auth(rt.settings.flower_basic_auth)
    # Credentials stay in the environment (FLOWER_BASIC_AUTH), never on the command line.
    # Imported here: Flower's configuration reads the settings as it loads, and a bad setting
    # must reach `main` as one line, not as a traceback while the CLI's modules load.
    import flowerconfig

    argv = [sys.executable, "-m", "celery", "-A", "workers.app", "flower",
            f"--conf={flowerconfig.__file__}",
            f"--port={rt.settings.flower_port}", f"--address={rt.settings.flower_address}"]
    os.execv(sys.executable, argv)


@db_cli.command("upgrade")
@handle_errors
def db_upgrade() -> None:
    """Apply pending database migrations (they also apply automatically on first use)."""
    url = get_runtime().settings.effective_database_url
    applied, version, created = upgrade(url)
    said = ("created, " if created else "") + (
        f"applied migrations {', '.join(map(str, applied))}" if applied
        else f"already up to date at version {version}")
    say(f"Database {display_url(url)}: {said}.")


@db_cli.command("status")
@handle_errors
def db_status(as_json: AsJson = False) -> None:
    """The journal's size: rows, bytes, conversations, and how much retention compacted."""
    rt = get_runtime()
    size = rt.store.journal_size()
    if as_json:
        print(json.dumps({"database": display_url(rt.settings.effective_database_url),
                          "journal": size}, indent=2))
        return
    say(f"Database {display_url(rt.settings.effective_database_url)}")
    say(f"journal: {size['rows']:,} rows, {size['bytes']:,} bytes, "
        f"{size['conversations']:,} conversations; compacted: {size['compacted_rows']:,} rows "
        f"of {size['compacted_conversations']:,} conversations (projects ended over "
        f"{_duration(rt.settings.journal_retention)} ago: AGENCY_JOURNAL_RETENTION)")


@db_cli.command("compact")
@handle_errors
def db_compact() -> None:
    """Compact now the journals of projects completed or cancelled longer ago than
    AGENCY_JOURNAL_RETENTION to each conversation's last turn (the reconciler does it every
    few minutes)."""
    rt = get_runtime()
    before, compacted = rt.store.journal_size(), compact(rt, rt.store.clock())
    freed = before["bytes"] - rt.store.journal_size()["bytes"]
    say(f"journal: {compacted:,} rows compacted, {freed:,} bytes of turns dropped.")


def _duration(seconds: float) -> str:
    """7 days, 3 hours, 90 s: the retention as a person reads it."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit.rstrip('s') if count == 1 else unit}"
    return f"{seconds:g} s"

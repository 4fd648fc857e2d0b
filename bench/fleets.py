"""What the side-by-side benchmarks share: our production topology and the plain-Celery
baseline's, started together on the same Redis server, and plan projects submitted to ours.

Defaults (each overridable from the environment): our broker `AGENCY_BROKER_URL`
redis://127.0.0.1:6379/8, our store `AGENCY_DATABASE_URL`
postgresql://postgres@127.0.0.1:5432/agency_bench_c (created if missing), the baseline's broker
`PLAIN_BROKER_URL`: the same Redis server, database 9.

Tasks are "zero-latency" on our side: the offline model with `AGENCY_OFFLINE_LATENCY=0`,
`AGENCY_REVIEWED_AGENTS=none` (no review calls) and `AGENCY_AGENT_MAX_TURNS=1` (an agent answers
in one model call).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `bench.*` and the project, as when run from the repository

DEFAULT_BROKER = "redis://127.0.0.1:6379/8"
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/agency_bench_c"
ZERO_LATENCY = {"AGENCY_LLM": "offline", "AGENCY_OFFLINE_LATENCY": "0",
                "AGENCY_REVIEWED_AGENTS": "none", "AGENCY_AGENT_MAX_TURNS": "1"}


def configure(home: Path) -> dict[str, str]:
    """Set this process's environment for both systems (before the project is imported) and
    return the environment for our worker fleet."""
    os.environ.setdefault("AGENCY_BROKER_URL", DEFAULT_BROKER)
    os.environ.setdefault("AGENCY_DATABASE_URL", DEFAULT_DATABASE)
    ours = urlsplit(os.environ["AGENCY_BROKER_URL"])
    os.environ.setdefault("PLAIN_BROKER_URL", ours._replace(path="/9").geturl())
    plain = urlsplit(os.environ["PLAIN_BROKER_URL"])
    if (plain.hostname, plain.port) != (ours.hostname, ours.port):
        raise SystemExit("PLAIN_BROKER_URL must name the same Redis server as AGENCY_BROKER_URL")
    if plain.path.strip("/") == (ours.path.strip("/") or "0"):
        raise SystemExit("PLAIN_BROKER_URL must use another Redis database than ours")
    os.environ.update(ZERO_LATENCY)
    os.environ.update({"AGENCY_OUTPUT_DIR": str(home / "out"), "AGENCY_HOME": str(home)})
    os.environ.pop("ANTHROPIC_API_KEY", None)
    return {**os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def settings_line() -> str:
    return ("ours: " + ", ".join(f"{k}={os.environ[k]}" for k in ZERO_LATENCY)
            + f"; broker {os.environ['AGENCY_BROKER_URL']}, store "
            f"{os.environ['AGENCY_DATABASE_URL'].rsplit('/', 1)[-1]}; "
            f"plain: broker {os.environ['PLAIN_BROKER_URL']}")


@dataclass
class Fleets:
    rt: Any
    app: Any
    plain: Any
    fleet_pid: int
    plain_pids: list[int]
    home: Path
    concurrency: dict[str, int]
    logs: list[str] = field(default_factory=list)


def recreate_database(url: str) -> None:
    """Drop the store's database (`--fresh-db`): a run then starts from an empty store."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fleets(home: Path, env: dict[str, str], fresh_db: bool = False) -> Iterator[Fleets]:
    """Our eleven worker pools (the Procfile under honcho, no Flower) and the baseline's
    eleven (one process per queue, the same threads per process), both up and idle."""
    from bench import plain_celery
    from bench.load_run import ensure_database, start_fleet, wait_for_workers
    from orchestrator.domain.constants import ALL_QUEUES, TERMINAL_PROJECT_STATUSES

    if fresh_db:
        recreate_database(os.environ["AGENCY_DATABASE_URL"])
    ensure_database(os.environ["AGENCY_DATABASE_URL"])
    from orchestrator.agent.runtime import get_runtime
    from workers.app import app

    rt = get_runtime()
    # A run interrupted earlier must not add work to this one: the reconciler would resume it.
    for project in rt.store.projects(limit=10_000):
        if project.status not in TERMINAL_PROJECT_STATUSES:
            rt.scheduler.cancel_project(project.id)
    app.control.purge()
    plain_celery.purge()
    concurrency = {q: rt.settings.concurrency[q] for q in ALL_QUEUES}
    fleet = start_fleet(env, home / "honcho.log")
    plain = plain_celery.start_workers(concurrency, home / "plain")
    try:
        wait_for_workers(app, len(ALL_QUEUES), timeout=180)
        wait_for_workers(plain_celery.app, len(ALL_QUEUES), timeout=180)
        time.sleep(2)
        yield Fleets(rt, app, plain_celery, fleet.pid, [p.pid for p in plain], home,
                     concurrency)
    finally:
        import signal

        os.killpg(fleet.pid, signal.SIGTERM)
        plain_celery.stop_workers(plain)
        try:
            fleet.wait(timeout=60)
        except Exception:
            os.killpg(fleet.pid, signal.SIGKILL)


def write_plan(home: Path, plan: dict[str, Any]) -> Path:
    import json

    path = Path(tempfile.mkstemp(suffix=".json", dir=home)[1])
    path.write_text(json.dumps(plan))
    return path


def submit(fl: Fleets, plan_path: Path) -> str:
    """What `agency run --plan FILE --no-wait` does: store the project with its plan, and send
    its planning message (planning validates and dispatches the given plan; no model call)."""
    from orchestrator.domain.intake import check_request, load_plan_file
    from orchestrator.domain.models import Plan
    from orchestrator.services.dispatch import send_plan

    plan_file = load_plan_file(plan_path)
    text = check_request(plan_file.request)
    project_id = str(uuid.uuid4())
    stored = Plan.model_validate(plan_file.model_dump(exclude={"request", "project_type"}))
    fl.rt.store.insert_project(
        project_id, text, None, plan_file.project_type.value if plan_file.project_type else None,
        str(fl.home / "out" / project_id), stored)
    send_plan(fl.rt, fl.app, project_id)
    return project_id


def wait_ended(fl: Fleets, ids: list[str], timeout: float, poll: float = 0.25
               ) -> dict[str, str]:
    """Wait until every project is terminal (or the timeout): each one's final status."""
    import psycopg

    from orchestrator.domain.constants import TERMINAL_PROJECT_STATUSES

    terminal = [s.value for s in TERMINAL_PROJECT_STATUSES]
    ended: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    # One indexed query per poll on a connection of its own: the store's own reads (the
    # project list, usage totals) would load PostgreSQL more than the work measured.
    with psycopg.connect(os.environ["AGENCY_DATABASE_URL"], autocommit=True) as conn:
        while len(ended) < len(ids) and time.monotonic() < deadline:
            for project_id, status in conn.execute(
                    "SELECT id, status FROM projects WHERE id = ANY(%s) AND status = ANY(%s)",
                    (ids, terminal)).fetchall():
                ended[str(project_id)] = str(status)
            if len(ended) < len(ids):
                time.sleep(poll)
    return {p: ended.get(p, "unfinished") for p in ids}


def ts(value: datetime | None) -> float:
    """A store timestamp as seconds since the epoch (the workers' time.time() clock)."""
    if value is None:
        raise ValueError("a task has no timestamp: it did not run")
    return value.timestamp()


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": round(percentile(ms, 50), 2),
            "p99": round(percentile(ms, 99), 2), "mean": round(statistics.fmean(ms), 2),
            "min": round(min(ms), 2), "max": round(max(ms), 2)}


def new_home(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))

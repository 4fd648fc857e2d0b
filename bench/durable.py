"""Shared by the issue-18 benchmarks (journal_size, open_questions, review_scaling): the
Procfile's worker pools on Redis database 7 and PostgreSQL database `agency_bench18` (unless
AGENCY_BROKER_URL / AGENCY_DATABASE_URL say otherwise), projects submitted as plan files, and
the measures read from the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import shapes  # noqa: E402
from bench.load_run import ensure_database, start_fleet, wait_for_workers  # noqa: E402

BROKER = "redis://127.0.0.1:6379/7"
DATABASE = "postgresql://postgres@127.0.0.1:5432/agency_bench18"
BUDGET = 100_000_000  # tokens: what is measured is not the budget


def environment(home: Path, **extra: str) -> dict[str, str]:
    """The environment of this process and of the fleet: our broker and database, nothing
    from a .env, and `extra` (AGENCY_LLM, latency, reviews ...)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.setdefault("AGENCY_BROKER_URL", BROKER)
    env.setdefault("AGENCY_DATABASE_URL", DATABASE)
    env.update({"AGENCY_ENV_FILE": "", "AGENCY_HOME": str(home),
                "AGENCY_OUTPUT_DIR": str(home / "out"), "PYTHONUNBUFFERED": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                **extra})
    return env


def prepare(**extra: str) -> tuple[Path, dict[str, str]]:
    """A home folder, and this process's environment set for the store and broker (the
    settings are read once, so call this before importing the runtime)."""
    home = Path(tempfile.mkdtemp(prefix="agency-bench18-"))
    env = environment(home, **extra)
    os.environ.clear()
    os.environ.update(env)
    ensure_database(env["AGENCY_DATABASE_URL"])
    return home, env


@contextmanager
def fleet(env: dict[str, str], home: Path, extra_workers: int = 0) -> Iterator[Any]:
    """The Procfile's eleven pools under honcho (no Flower), up and answering pings."""
    from workers.app import app

    started = start_fleet(env, home / "honcho.log")
    try:
        wait_for_workers(app, 11)
        yield started
    finally:
        os.killpg(started.pid, signal.SIGTERM)
        started.wait(timeout=60)


@contextmanager
def workers(env: dict[str, str], home: Path, queue: str, count: int) -> Iterator[None]:
    """`count` more worker processes on `queue` (node names <queue>-<n>@host)."""
    procs = [subprocess.Popen(
        [sys.executable, "-m", "workers", "-Q", queue, "-n", f"{queue}-{n}@%h", "-l", "INFO"],
        cwd=REPO, env=env, stdout=(home / f"{queue}-{n}.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True) for n in range(2, 2 + count)]
    try:
        yield
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)


def submit(rt: Any, app: Any, home: Path, plan: dict[str, Any]) -> str:
    """A project from a plan (as `agency run --plan --no-wait` makes it); its id."""
    from orchestrator.domain.models import Plan
    from orchestrator.services.dispatch import send_plan

    project_id = str(uuid.uuid4())
    body = Plan.model_validate({k: v for k, v in plan.items()
                                if k not in ("request", "project_type")})
    rt.store.insert_project(project_id, plan.get("request", "Build a website for a bakery"),
                            BUDGET, plan.get("project_type", "website"),
                            str(home / "out" / project_id), body)
    send_plan(rt, app, project_id)
    return project_id


def wait_until(what: str, done: Any, timeout: float = 600, every: float = 0.1) -> float:
    """Poll `done()` until true; the seconds it took (SystemExit after `timeout`)."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)
    return time.monotonic() - started


def wait_ended(rt: Any, project_ids: list[str], timeout: float = 600) -> float:
    """Wait until every project ended; SystemExit unless all completed."""
    from orchestrator.domain.constants import TERMINAL_PROJECT_STATUSES

    def ended() -> bool:
        return all(rt.store.project(p, usage=False).status in TERMINAL_PROJECT_STATUSES
                   for p in project_ids)

    seconds = wait_until("the projects", ended, timeout, every=0.2)
    for p in project_ids:
        status = rt.store.project(p, usage=False).status.value
        if status != "completed":
            raise SystemExit(f"project {p} ended {status}")
    return seconds


def status(rt: Any, project_id: str) -> dict[str, Any]:
    from orchestrator.interfaces.views import project_json

    return project_json(rt.store.project(project_id), rt.store.tasks(project_id))


def task_span(status: dict[str, Any]) -> dict[str, Any]:
    """Makespan of the project's tasks (first claim to last completion) and the critical-path
    bound from each task's model calls at `latency` seconds each, done by the caller."""
    tasks = status["tasks"]
    start = [datetime.fromisoformat(t["started_at"]).timestamp() for t in tasks]
    end = [datetime.fromisoformat(t["finished_at"]).timestamp() for t in tasks]
    index = {t["id"]: n for n, t in enumerate(tasks)}
    deps = [[index[d] for d in t["dependencies"]] for t in tasks]
    return {"makespan_s": max(end) - min(start), "deps": deps,
            "calls": [t["model_calls"] for t in tasks]}


def bound_s(deps: list[list[int]], calls: list[int], latency: float) -> float:
    """What unlimited workers and free dispatch would take: the chain of most model calls."""
    return shapes.critical_path_s(deps, [c * latency for c in calls])

"""Benchmark: many projects submitted at once on the production topology.

    AGENCY_BROKER_URL=redis://127.0.0.1:6379/5 \\
    AGENCY_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/agency_bench \\
    python bench/load_run.py [--projects 100] [--latency 0.2] [--json bench/results/load.json]

It starts the Procfile's worker pools (no Flower) with `honcho`, on the offline model with every
call taking `--latency` seconds, submits the projects at once (the same store insert and planning
message as `agency run --no-wait`), and waits until every one has ended. It reports, beside
the critical-path bound of one project with unlimited workers (its model calls on the critical
path, each task's tool turns and review included, times the latency), the time until the
first, the median and the last project completed, the statuses, and the resident memory of
each worker process, idle (before the first project) and at its peak, and of the whole
topology (sampled from /proc every 0.5 s).
The database named by AGENCY_DATABASE_URL is created if it does not exist.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `bench.embedded_run`, as when run from the repository
REQUESTS = ["Build a website for a bakery", "An iOS and Android app for dog walkers",
            "Run a social media campaign for our new sneakers",
            "Analyze churn data and build a dashboard", "Write a blog series about sourdough"]


def ensure_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def ideal_project_s(rt: Any, project_ids: list[str], latency: float) -> float:
    """The critical-path bound of one project with unlimited workers: the model calls on its
    critical path (as the run counted them) times the latency; the largest over the runs."""
    from bench.embedded_run import critical_calls
    from orchestrator.interfaces.views import project_json

    calls = [critical_calls(project_json(rt.store.project(p), rt.store.tasks(p)))
             for p in project_ids]
    return max(calls, default=0) * latency


def worker_rss(root: int) -> dict[str, float]:
    """Resident memory (MB) of every process under `root` (honcho's children), by name: the
    queue a Celery worker consumes (its pool's processes or threads are one process here)."""
    totals: dict[str, float] = {}
    for pid in _descendants(root):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            rss = next(int(line.split()[1]) for line in
                       Path(f"/proc/{pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        args = [a.decode(errors="replace") for a in cmd]
        if "-Q" in args:
            name = args[args.index("-Q") + 1]
        elif "honcho" in args:
            name = "(honcho's supervisors)"
        else:
            name = f"({Path(args[0]).name} wrappers)"
        totals[name] = totals.get(name, 0.0) + rss / 1024
    return totals


def worker_rss_mb(root: int) -> float:
    return sum(worker_rss(root).values())


def _descendants(root: int) -> list[int]:
    """Every process under `root`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def start_fleet(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    names = [line.split(":", 1)[0] for line in (REPO / "Procfile").read_text().splitlines()
             if line and not line.startswith("#") and not line.startswith("flower")]
    empty = Path(tempfile.mkstemp(suffix=".env")[1])
    return subprocess.Popen(
        [sys.executable, "-m", "honcho", "-f", str(REPO / "Procfile"), "-d", str(REPO),
         "-e", str(empty), "start", *names], env=env, stdout=log.open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_workers(app: object, expected: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []  # type: ignore[attr-defined]
        if len(replies) >= expected:
            return
        time.sleep(1)
    raise SystemExit("the workers did not come up; see the honcho log")


def run_batch(rt: Any, app: Any, home: Path, fleet_pid: int, count: int, latency: float,
              timeout: float, fifo: bool) -> dict[str, Any]:
    """Submit `count` projects at once and wait until all ended; `fifo` sends planning at the
    same priority as integration (the baseline), otherwise as `agency run` does."""
    from orchestrator.domain.constants import TERMINAL_PROJECT_STATUSES, ProjectStatus
    from orchestrator.services.canvas import plan_signature
    from orchestrator.services.dispatch import broker_epoch, send_plan

    ids = [str(uuid.uuid4()) for _ in range(count)]
    started = time.monotonic()
    for n, project_id in enumerate(ids):
        rt.store.insert_project(project_id, REQUESTS[n % len(REQUESTS)], None, None,
                                str(home / "out" / project_id))
        if fifo:
            plan_signature(app, project_id).apply_async()
            rt.scheduler.mark_project_sent(project_id, broker_epoch(rt))
        else:
            send_plan(rt, app, project_id)
    submitted = time.monotonic() - started
    peak, first, ended = 0.0, None, {}
    peaks: dict[str, float] = {}
    while len(ended) < len(ids) and time.monotonic() - started < timeout:
        sample = worker_rss(fleet_pid)
        peak = max(peak, sum(sample.values()))
        for name, mb in sample.items():
            peaks[name] = max(peaks.get(name, 0.0), mb)
        for project in rt.store.projects(limit=2 * count + 10):
            if project.id in ids and project.status in TERMINAL_PROJECT_STATUSES \
                    and project.id not in ended:
                ended[project.id] = (project.status.value, time.monotonic() - started)
                if first is None and project.status is ProjectStatus.COMPLETED:
                    first = ended[project.id][1]
        time.sleep(0.5)
    spans = sorted(t for _, t in ended.values())
    return {
        "submit_s": round(submitted, 2), "first_completed_s": round(first or 0, 2),
        "median_completed_s": round(statistics.median(spans), 2) if spans else None,
        "all_ended_s": round(time.monotonic() - started, 2),
        "completed": sum(1 for v, _ in ended.values() if v == "completed"),
        "unfinished": len(ids) - len(ended), "peak_worker_rss_mb": round(peak, 1),
        "peak_rss_mb_by_process": {k: round(v, 1) for k, v in sorted(peaks.items())},
        "ideal_project_s": round(ideal_project_s(
            rt, [p for p, (s, _) in ended.items() if s == "completed"], latency), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", default=str(REPO / "bench/results/load_run.json"))
    args = parser.parse_args()
    if not os.environ.get("AGENCY_BROKER_URL") or not os.environ.get("AGENCY_DATABASE_URL"):
        raise SystemExit("set AGENCY_BROKER_URL and AGENCY_DATABASE_URL (Redis, PostgreSQL)")
    home = Path(tempfile.mkdtemp(prefix="agency-load-"))
    os.environ.update({"AGENCY_LLM": "offline", "AGENCY_OFFLINE_LATENCY": str(args.latency),
                       "AGENCY_OUTPUT_DIR": str(home / "out"), "AGENCY_HOME": str(home)})
    os.environ.pop("ANTHROPIC_API_KEY", None)
    ensure_database(os.environ["AGENCY_DATABASE_URL"])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}

    from orchestrator.agent.runtime import get_runtime
    from workers.app import app

    rt = get_runtime()
    fleet = start_fleet(env, home / "honcho.log")
    try:
        wait_for_workers(app, 11)
        time.sleep(2)
        idle = worker_rss(fleet.pid)
        runs = {mode: run_batch(rt, app, home, fleet.pid, args.projects, args.latency,
                                args.timeout, fifo=mode == "fifo planning (baseline)")
                for mode in ("agency", "fifo planning (baseline)")}
    finally:
        os.killpg(fleet.pid, signal.SIGTERM)
        fleet.wait(timeout=60)
    ideal = max(r["ideal_project_s"] for r in runs.values())
    print(f"{args.projects} projects at once, {args.latency} s per model call; one project's "
          f"critical-path bound (unlimited workers): {ideal} s")
    print(f"{'':<22}" + "".join(f"{mode:>28}" for mode in runs))
    for key in next(iter(runs.values())):
        if key != "peak_rss_mb_by_process":
            print(f"{key:<22}" + "".join(f"{r[key]!s:>28}" for r in runs.values()))
    peaks = runs["agency"]["peak_rss_mb_by_process"]
    print(f"\n{'process':<22}{'idle MB':>10}{'peak MB':>10}")
    for name in sorted(set(idle) | set(peaks)):
        print(f"{name:<22}{idle.get(name, 0):>10.1f}{peaks.get(name, 0):>10.1f}")
    print(f"{'topology':<22}{sum(idle.values()):>10.1f}"
          f"{runs['agency']['peak_worker_rss_mb']:>10.1f}")
    result = {"projects": args.projects, "latency_s": args.latency, "ideal_project_s": ideal,
              "idle_rss_mb_by_process": {k: round(v, 1) for k, v in sorted(idle.items())},
              "idle_rss_mb": round(sum(idle.values()), 1), "runs": runs}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

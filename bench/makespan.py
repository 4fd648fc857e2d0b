"""Benchmark: makespan against the critical-path bound, shape by shape.

    python bench/makespan.py [--mode production|embedded] [--latency 0.2] [--spread 0.5] \\
        [--runs 3] [--shape NAME ...] [--json bench/results/makespan.json]

Every shape of `bench/shapes.py` (chains, a wide fan-out/fan-in, diamonds, N-shapes, nested
parallel blocks with chains inside, random graphs of 20 and 60 tasks) runs as a plan file
(no planning calls) on the offline model, every call taking `--latency` seconds, reviews off.
`production` starts the Procfile's worker pools under honcho (Redis database 5 and PostgreSQL
database `agency_bench` unless AGENCY_BROKER_URL / AGENCY_DATABASE_URL say otherwise);
`embedded` runs `agency run --plan` with nothing but SQLite.

From the store, each task's duration is its claim to its completion. The makespan is the
first task's claim to the last task's completion. Beside it, from the same durations:
the critical-path bound (what unlimited workers and free dispatch would take), the
level-synchronous makespan (waves by depth, each waiting for its slowest task: how LangGraph
runs a graph) and the sequential one. `start delay` is, for each task with dependencies, its
claim minus its last dependency's completion (p50 and max). The median run of each shape is
reported and every run is saved.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import shapes  # noqa: E402

BUDGET = 100_000_000  # tokens: the scheduling is measured, not the budget


def measure(status: dict[str, Any]) -> dict[str, Any]:
    """Durations, makespan, bounds and start delays from a `status --json` object."""
    tasks = sorted(status["tasks"], key=lambda t: t["index"])
    index = {t["id"]: t["index"] for t in tasks}
    deps = [[index[d] for d in t["dependencies"]] for t in tasks]
    start = [datetime.fromisoformat(t["started_at"]).timestamp() for t in tasks]
    end = [datetime.fromisoformat(t["finished_at"]).timestamp() for t in tasks]
    durations = [e - s for s, e in zip(start, end, strict=True)]
    delays = [start[i] - max(end[p] for p in parents)
              for i, parents in enumerate(deps) if parents]
    makespan = max(end) - min(start)
    bound = shapes.critical_path_s(deps, durations)
    return {
        "tasks": len(tasks), "deps": deps, "durations": [round(d, 4) for d in durations],
        "makespan_s": round(makespan, 3), "bound_s": round(bound, 3),
        "level_synchronous_s": round(shapes.level_synchronous_s(deps, durations), 3),
        "sequential_s": round(shapes.sequential_s(durations), 3),
        "ratio": round(makespan / bound, 3),
        "start_delay_p50_ms": round(1000 * statistics.median(delays), 1) if delays else 0.0,
        "start_delay_max_ms": round(1000 * max(delays), 1) if delays else 0.0,
    }


def plan_file(name: str, directory: Path) -> Path:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(shapes.plan(name, shapes.SHAPES[name])))
    return path


def embedded_runs(names: list[str], runs: int, env: dict[str, str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for name in names:
        for _ in range(runs):
            home = Path(tempfile.mkdtemp(prefix="agency-makespan-"))
            run_env = {**env, "AGENCY_HOME": str(home), "AGENCY_OUTPUT_DIR": str(home / "out")}
            for key in ("AGENCY_BROKER_URL", "AGENCY_DATABASE_URL", "ANTHROPIC_API_KEY"):
                run_env.pop(key, None)
            done = subprocess.run(
                [sys.executable, "-m", "orchestrator", "run", "--plan",
                 str(plan_file(name, home)), "--budget", str(BUDGET)], env=run_env,
                capture_output=True, text=True, check=True)
            pid = next(x.split()[1] for x in done.stdout.splitlines()
                       if x.endswith("submitted."))
            status = json.loads(subprocess.run(
                [sys.executable, "-m", "orchestrator", "status", pid, "--json"], env=run_env,
                capture_output=True, text=True, check=True).stdout)
            found.setdefault(name, []).append(measure(status))
    return found


def production_runs(names: list[str], runs: int, env: dict[str, str],
                    rtt: float = 0.0) -> dict[str, list[Any]]:
    from bench.load_run import ensure_database, start_fleet, wait_for_workers

    env.setdefault("AGENCY_BROKER_URL", "redis://127.0.0.1:6379/5")
    env.setdefault("AGENCY_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/agency_bench")
    ensure_database(env["AGENCY_DATABASE_URL"])
    if rtt:  # every worker and this process reach the services through a delay line
        from bench.delay_proxy import DelayProxy
        from bench.round_trips import through

        for key, port in (("AGENCY_BROKER_URL", 6379), ("AGENCY_DATABASE_URL", 5432)):
            at = urlsplit(env[key])
            env[key] = through(env[key], DelayProxy(at.hostname or "127.0.0.1",
                                                    at.port or port, rtt=rtt))
    home = Path(tempfile.mkdtemp(prefix="agency-makespan-"))
    env.update({"AGENCY_HOME": str(home), "AGENCY_OUTPUT_DIR": str(home / "out")})
    os.environ.update(env)
    from orchestrator.agent.runtime import get_runtime
    from orchestrator.domain.constants import TERMINAL_PROJECT_STATUSES
    from orchestrator.domain.intake import load_plan_file
    from orchestrator.domain.models import Plan
    from orchestrator.interfaces.views import project_json
    from orchestrator.services.dispatch import send_plan
    from workers.app import app

    rt = get_runtime()
    fleet = start_fleet(env, home / "fleet.log")
    found: dict[str, list[Any]] = {}
    try:
        wait_for_workers(app, 11)
        for name in names:
            loaded = load_plan_file(plan_file(name, home))
            plan = Plan.model_validate(loaded.model_dump(exclude={"request", "project_type"}))
            for _ in range(runs):
                project_id = str(uuid.uuid4())
                rt.store.insert_project(project_id, "Build a website for a bakery", BUDGET,
                                        "website", str(home / "out" / project_id), plan)
                send_plan(rt, app, project_id)
                deadline = time.monotonic() + 300
                while rt.store.project(project_id).status not in TERMINAL_PROJECT_STATUSES:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{name}: the project did not end in 300 s")
                    time.sleep(0.2)
                status = project_json(rt.store.project(project_id), rt.store.tasks(project_id))
                if status["status"] != "completed":
                    raise SystemExit(f"{name}: the project ended {status['status']}")
                found.setdefault(name, []).append(measure(status))
    finally:
        os.killpg(fleet.pid, signal.SIGTERM)
        fleet.wait(timeout=60)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["production", "embedded"], default="production")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--spread", type=float, default=0.0,
                        help="each task's calls take the latency times a factor within "
                             "1 +- spread, fixed per task (AGENCY_OFFLINE_LATENCY_SPREAD)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rtt", type=float, default=0.0,
                        help="production: reach Redis and PostgreSQL through TCP delay "
                             "proxies of this round-trip time, seconds (bench/delay_proxy.py)")
    parser.add_argument("--shape", action="append", choices=sorted(shapes.SHAPES),
                        help="run only these shapes (repeatable)")
    parser.add_argument("--json", default=str(REPO / "bench/results/makespan.json"))
    args = parser.parse_args()
    names = args.shape or list(shapes.SHAPES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update({"AGENCY_LLM": "offline", "AGENCY_OFFLINE_LATENCY": str(args.latency),
                "AGENCY_OFFLINE_LATENCY_SPREAD": str(args.spread),
                "AGENCY_REVIEWED_AGENTS": "none", "PYTHONUNBUFFERED": "1"})
    if args.mode == "embedded":
        env["AGENCY_EMBEDDED_CONCURRENCY"] = "16"
        found = embedded_runs(names, args.runs, env)
    else:
        found = production_runs(names, args.runs, env, args.rtt)

    print(f"{args.mode}, every model call {args.latency} s"
          + (f", {args.rtt * 1000:.1f} ms round trip to the services" if args.rtt else "")
          + (f" x 1 +- {args.spread} per task" if args.spread else "")
          + f", median of {args.runs} runs")
    head = (f"{'shape':<15}{'tasks':>6}{'bound s':>9}{'makespan s':>12}{'ratio':>7}"
            f"{'level-sync s':>14}{'sequential s':>14}{'delay p50 ms':>14}{'max ms':>8}")
    print(head)
    summary = []
    for name in names:
        best = sorted(found[name], key=lambda r: r["ratio"])[len(found[name]) // 2]
        summary.append({"name": name, **best, "runs": found[name]})
        print(f"{name:<15}{best['tasks']:>6}{best['bound_s']:>9.2f}{best['makespan_s']:>12.2f}"
              f"{best['ratio']:>7.3f}{best['level_synchronous_s']:>14.2f}"
              f"{best['sequential_s']:>14.2f}{best['start_delay_p50_ms']:>14.1f}"
              f"{best['start_delay_max_ms']:>8.1f}")
    result = {"mode": args.mode, "latency_s": args.latency, "spread": args.spread,
              "runs": args.runs,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "shapes": summary}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()

"""Benchmark: sequential round trips per task (issue 20), through a delay line.

    python bench/round_trips.py [--tasks 20] [--rtt 0.004] [--runs 2]

Redis and PostgreSQL are reached through TCP delay proxies (bench/delay_proxy.py) by every
worker of a fleet (`python -m workers fleet`) and by the bench itself. A chain of `--tasks`
tasks (each depending on the one before, reviews off, model calls instant) runs at 0 ms and at
`--rtt` round-trip time, on the same fleet and connections. A chain's tasks run one after
another, so the time a task costs over the 0 ms baseline, divided by the round-trip time, is
the number of round trips on its path (its claim, reads, writes, completion, the next
message). Redis database 4 and PostgreSQL database `agency_bench_rtt` unless
AGENCY_BROKER_URL / AGENCY_DATABASE_URL say otherwise (the proxies go in front of them).
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
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.delay_proxy import DelayProxy  # noqa: E402
from bench.load_run import ensure_database, wait_for_workers  # noqa: E402

BUDGET = 100_000_000


def through(url: str, proxy: DelayProxy) -> str:
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{auth}127.0.0.1:{proxy.port}"))


def chain_plan(tasks: int) -> dict[str, Any]:
    from orchestrator.domain.constants import AgentType

    kinds = [a.value for a in AgentType]
    return {"tasks": [{"title": f"Step {i}", "description": f"Step {i} of the chain.",
                       "agent_type": kinds[i % len(kinds)],
                       "dependencies": [i - 1] if i else []} for i in range(tasks)]}


def per_task_seconds(rt: Any, app: Any, home: Path, plan: Any, tasks: int) -> float:
    from orchestrator.domain.constants import TERMINAL_PROJECT_STATUSES
    from orchestrator.interfaces.views import project_json
    from orchestrator.services.dispatch import send_plan

    project_id = str(uuid.uuid4())
    rt.store.insert_project(project_id, "Build a website for a bakery", BUDGET, "website",
                            str(home / "out" / project_id), plan)
    send_plan(rt, app, project_id)
    deadline = time.monotonic() + 600
    while rt.store.project(project_id).status not in TERMINAL_PROJECT_STATUSES:
        if time.monotonic() > deadline:
            raise SystemExit("the chain did not end in 600 s")
        time.sleep(0.2)
    status = project_json(rt.store.project(project_id), rt.store.tasks(project_id))
    if status["status"] != "completed":
        raise SystemExit(f"the chain ended {status['status']}: {status.get('error')}")
    start = [datetime.fromisoformat(t["started_at"]).timestamp() for t in status["tasks"]]
    end = [datetime.fromisoformat(t["finished_at"]).timestamp() for t in status["tasks"]]
    return (max(end) - min(start)) / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--rtt", type=float, default=0.004, help="round-trip time, seconds")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--json", default=str(REPO / "bench/results/round_trips.json"))
    args = parser.parse_args()

    broker = os.environ.get("AGENCY_BROKER_URL", "redis://127.0.0.1:6379/4")
    database = os.environ.get("AGENCY_DATABASE_URL",
                              "postgresql://postgres@127.0.0.1:5432/agency_bench_rtt")
    ensure_database(database)
    redis_at, pg_at = urlsplit(broker), urlsplit(database)
    redis_proxy = DelayProxy(redis_at.hostname or "127.0.0.1", redis_at.port or 6379)
    pg_proxy = DelayProxy(pg_at.hostname or "127.0.0.1", pg_at.port or 5432)
    home = Path(tempfile.mkdtemp(prefix="agency-rtt-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "AGENCY_"))}
    env.update({"AGENCY_LLM": "offline", "AGENCY_OFFLINE_LATENCY": "0",
                "AGENCY_REVIEWED_AGENTS": "none", "AGENCY_CHECKS": "false",
                "AGENCY_BROKER_URL": through(broker, redis_proxy),
                "AGENCY_DATABASE_URL": through(database, pg_proxy), "AGENCY_ENV_FILE": "",
                "AGENCY_HOME": str(home), "AGENCY_OUTPUT_DIR": str(home / "out"),
                "PYTHONUNBUFFERED": "1"})
    os.environ.update(env)
    from orchestrator.agent.runtime import get_runtime
    from orchestrator.domain.models import Plan
    from workers.app import app

    rt = get_runtime()
    plan = Plan.model_validate(chain_plan(args.tasks))
    log = home / "fleet.log"
    fleet = subprocess.Popen([sys.executable, "-m", "workers", "fleet", "-l", "INFO"],
                             cwd=REPO, env=env, stdout=log.open("wb"),
                             stderr=subprocess.STDOUT, start_new_session=True)
    found: dict[float, list[float]] = {0.0: [], args.rtt: []}
    try:
        wait_for_workers(app, 11)
        per_task_seconds(rt, app, home, plan, args.tasks)  # warm every pool and connection
        before = redis_proxy.sent, pg_proxy.sent
        per_task_seconds(rt, app, home, plan, args.tasks)
        requests = {"redis": (redis_proxy.sent - before[0]) / args.tasks,
                    "postgresql": (pg_proxy.sent - before[1]) / args.tasks}
        for _ in range(args.runs):
            for rtt in found:  # interleaved: the machine's noise falls on both alike
                redis_proxy.rtt = pg_proxy.rtt = rtt
                found[rtt].append(per_task_seconds(rt, app, home, plan, args.tasks))
    finally:
        os.killpg(fleet.pid, signal.SIGTERM)
        fleet.wait(timeout=60)
    base, slow = (statistics.median(found[r]) for r in (0.0, args.rtt))
    trips = (slow - base) / args.rtt
    print(f"chain of {args.tasks} tasks, reviews off, instant model, median of {args.runs}")
    print(f"{'round trip':>12}{'per task ms':>14}")
    for rtt, values in found.items():
        print(f"{rtt * 1000:>10.1f}ms{statistics.median(values) * 1000:>14.1f}")
    print(f"sequential round trips per task: {trips:.1f}")
    print("requests per task (all of them, sequential or not, with the bench's polling and "
          "the workers' heartbeats): " + ", ".join(f"{k} {v:.1f}" for k, v in requests.items()))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(
        {"tasks": args.tasks, "rtt_s": args.rtt, "per_task_s": {str(k): v
                                                               for k, v in found.items()},
         "round_trips_per_task": round(trips, 1), "requests_per_task": requests}, indent=2))


if __name__ == "__main__":
    main()

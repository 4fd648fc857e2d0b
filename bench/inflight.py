"""Benchmark: a thousand model calls of one second in flight on one machine.

    python bench/inflight.py [--calls 1000] [--latency 1.0] [--projects 20] \\
        [--json bench/results/inflight.json]

The production topology (the Procfile's worker pools under honcho, no Flower) talks to the
local Messages API server (`tests/fake_anthropic.py`, a process of its own, every answer taking
`--latency` seconds) through the anthropic SDK. `--projects` plans of `--calls / --projects`
independent tasks each (plan files: no planning calls), spread over the ten agent queues, are
submitted at once. Each agent answers in one call (`AGENCY_AGENT_MAX_TURNS=1`, reviews off),
so there are exactly `--calls` agent calls. Each agent queue's worker runs `--calls / 10`
threads (`AGENCY_CONCURRENCY`), the orchestrator's `--projects` (integration: two calls per
project). It reports, from the ledger (each call's end and latency): the agent calls' window
(first start to last end), the most calls in flight at once, the time from submission until
every project completed, the CPU time the workers spent per task, and their resident memory.
Uses Redis database 5 and PostgreSQL database `agency_bench` unless AGENCY_BROKER_URL /
AGENCY_DATABASE_URL say otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import shapes  # noqa: E402
from bench.load_run import (  # noqa: E402
    _descendants,
    ensure_database,
    start_fleet,
    wait_for_workers,
    worker_rss,
)

AGENT_QUEUES = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return total / CLK_TCK


def start_fake(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_anthropic", "--latency",
                             str(latency)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def in_flight_peak(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def agent_calls(database_url: str, project_ids: list[str]) -> list[tuple[float, float]]:
    """(start, end) of every agent call of these projects, in epoch seconds, from the ledger
    (a row's `at` is when the answer came back)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM at), latency_ms FROM usage"
            " WHERE project_id = ANY(%s) AND task_id IS NOT NULL", (project_ids,)).fetchall()
    return [(float(end) - ms / 1000, float(end)) for end, ms in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json", default=str(REPO / "bench/results/inflight.json"))
    args = parser.parse_args()
    per_project = args.calls // args.projects
    threads = -(-args.calls // AGENT_QUEUES)

    os.environ.setdefault("AGENCY_BROKER_URL", "redis://127.0.0.1:6379/5")
    os.environ.setdefault("AGENCY_DATABASE_URL",
                          "postgresql://postgres@127.0.0.1:5432/agency_bench")
    ensure_database(os.environ["AGENCY_DATABASE_URL"])
    fake, url = start_fake(args.latency)
    home = Path(tempfile.mkdtemp(prefix="agency-inflight-"))
    concurrency = {"orchestrator": max(2, args.projects),
                   **{a: threads for a in shapes.AGENTS}}
    env = {**os.environ, "AGENCY_HOME": str(home), "AGENCY_OUTPUT_DIR": str(home / "out"),
           "ANTHROPIC_API_KEY": "sk-test-fake", "ANTHROPIC_BASE_URL": url,
           "AGENCY_LLM": "anthropic", "AGENCY_REVIEWED_AGENTS": "none",
           "AGENCY_AGENT_MAX_TURNS": "1", "AGENCY_CONCURRENCY": json.dumps(concurrency),
           "PYTHONUNBUFFERED": "1"}
    os.environ.update(env)
    from orchestrator.agent.runtime import get_runtime
    from orchestrator.domain.constants import TERMINAL_PROJECT_STATUSES, ProjectStatus
    from orchestrator.domain.models import Plan
    from orchestrator.services.dispatch import send_plan
    from workers.app import app

    rt = get_runtime()
    fleet = start_fleet(env, home / "fleet.log")
    result: dict[str, Any] = {}
    try:
        wait_for_workers(app, 11)
        pids = _descendants(fleet.pid)
        idle_rss = worker_rss(fleet.pid)
        cpu_before = cpu_seconds(pids)
        fake_before = cpu_seconds([fake.pid])
        deps: shapes.Deps = [[] for _ in range(per_project)]
        plan = Plan.model_validate({k: v for k, v in shapes.plan("inflight", deps).items()
                                    if k not in ("request", "project_type")})
        ids = [str(uuid.uuid4()) for _ in range(args.projects)]
        print(f"{args.projects} projects of {per_project} tasks, {threads} threads per agent "
              f"queue, every call {args.latency}s; submitting", flush=True)
        submitted = time.time()
        for project_id in ids:
            rt.store.insert_project(project_id, "Build a website for a bakery", None, "website",
                                    str(home / "out" / project_id), plan)
            send_plan(rt, app, project_id)
        peak_rss: dict[str, float] = {}
        ended: dict[str, str] = {}
        while len(ended) < len(ids) and time.time() - submitted < args.timeout:
            for name, mb in worker_rss(fleet.pid).items():
                peak_rss[name] = max(peak_rss.get(name, 0.0), mb)
            for project_id in ids:
                if project_id not in ended:
                    status = rt.store.project(project_id).status
                    if status in TERMINAL_PROJECT_STATUSES:
                        ended[project_id] = status.value
            time.sleep(0.25)
        all_done = time.time() - submitted
        cpu = cpu_seconds(pids) - cpu_before
        fake_cpu = cpu_seconds([fake.pid]) - fake_before
        spans = agent_calls(os.environ["AGENCY_DATABASE_URL"], ids)
        first = min(s for s, _ in spans)
        last = max(e for _, e in spans)
        result = {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "calls_wanted": per_project * args.projects, "agent_calls": len(spans),
            "latency_s": args.latency, "projects": args.projects,
            "threads_per_agent_queue": threads,
            "calls_window_s": round(last - first, 2),
            "first_call_after_submit_s": round(first - submitted, 2),
            "peak_in_flight": in_flight_peak(spans),
            "all_projects_ended_s": round(all_done, 2),
            "completed": sum(1 for s in ended.values() if s == ProjectStatus.COMPLETED.value),
            "worker_cpu_s": round(cpu, 1),
            "worker_cpu_ms_per_task": round(1000 * cpu / max(1, len(spans)), 1),
            "test_server_cpu_s": round(fake_cpu, 1),
            "idle_rss_mb": round(sum(idle_rss.values()), 1),
            "peak_rss_mb_sum_of_peaks": round(sum(peak_rss.values()), 1),
            "peak_rss_mb_by_process": {k: round(v, 1) for k, v in sorted(peak_rss.items())},
        }
    finally:
        os.killpg(fleet.pid, signal.SIGTERM)
        fleet.wait(timeout=60)
        fake.terminate()
    rows = [("agent calls", f"{result['agent_calls']} of {result['calls_wanted']}"),
            ("calls window (first start to last end)", f"{result['calls_window_s']} s"),
            ("most calls in flight at once", str(result["peak_in_flight"])),
            ("first call after submission", f"{result['first_call_after_submit_s']} s"),
            ("every project ended", f"{result['all_projects_ended_s']} s "
             f"({result['completed']}/{args.projects} completed)"),
            ("worker CPU per task", f"{result['worker_cpu_ms_per_task']} ms"),
            ("workers' CPU / the test server's CPU",
             f"{result['worker_cpu_s']} / {result['test_server_cpu_s']} s"),
            ("worker RSS idle / sum of peaks", f"{result['idle_rss_mb']} / "
             f"{result['peak_rss_mb_sum_of_peaks']} MB")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()

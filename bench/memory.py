"""Benchmark: memory of the topology, idle and under load, started two ways.

    python bench/memory.py [--projects 20] [--latency 0.1] [--claude] \\
        [--json bench/results/memory.json]

`procfile` is `honcho start` of the Procfile's eleven worker lines (eleven processes that each
import everything, plus honcho's supervisor per line); `fleet` is `python -m workers fleet`
(the same eleven pools, forked from one process that imported the code once). For each, the
benchmark samples every process of the tree from /proc every 0.5 s: resident memory (RSS, which
counts a page shared by several processes once in each) and proportional memory (PSS, which
splits a shared page among its sharers: what the topology takes from the machine), idle and
at the peak of `--projects` projects submitted at once (offline model, `--latency` s per call;
with `--claude`, through the anthropic SDK against the local Messages API server, as in
production). Redis database 5 and PostgreSQL database `agency_bench` unless AGENCY_BROKER_URL /
AGENCY_DATABASE_URL say otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
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

from bench.inflight import start_fake  # noqa: E402
from bench.load_run import (  # noqa: E402
    REQUESTS,
    _descendants,
    ensure_database,
    start_fleet,
    wait_for_workers,
)


def rollup(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of one process in MB."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key == "Rss":
            rss = int(rest.split()[0])
        elif key == "Pss":
            pss = int(rest.split()[0])
    return rss / 1024, pss / 1024


def sample(root: int) -> dict[str, float]:
    rss = pss = 0.0
    for pid in [root, *_descendants(root)]:
        try:
            r, p = rollup(pid)
        except (OSError, ValueError):
            continue
        rss, pss = rss + r, pss + p
    return {"rss_mb": rss, "pss_mb": pss}


def start(kind: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if kind == "procfile":
        return start_fleet(env, log)
    return subprocess.Popen([sys.executable, "-m", "workers", "fleet", "-l", "INFO"], cwd=REPO,
                            env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def measure(kind: str, env: dict[str, str], home: Path, projects: int) -> dict[str, Any]:
    from orchestrator.agent.runtime import get_runtime
    from orchestrator.domain.constants import TERMINAL_PROJECT_STATUSES
    from orchestrator.services.dispatch import send_plan
    from workers.app import app

    rt = get_runtime()
    proc = start(kind, env, home / f"{kind}.log")
    try:
        wait_for_workers(app, 11)
        time.sleep(3)
        idle = sample(proc.pid)
        processes = 1 + len(_descendants(proc.pid))
        ids = [str(uuid.uuid4()) for _ in range(projects)]
        for n, project_id in enumerate(ids):
            rt.store.insert_project(project_id, REQUESTS[n % len(REQUESTS)], None, None,
                                    str(home / "out" / project_id))
            send_plan(rt, app, project_id)
        peak = {"rss_mb": 0.0, "pss_mb": 0.0}
        started = time.monotonic()
        ended: set[str] = set()
        while len(ended) < len(ids) and time.monotonic() - started < 600:
            now = sample(proc.pid)
            peak = {k: max(peak[k], now[k]) for k in peak}
            ended |= {p for p in ids if p not in ended
                      and rt.store.project(p).status in TERMINAL_PROJECT_STATUSES}
            time.sleep(0.5)
        completed = sum(1 for p in ids if rt.store.project(p).status.value == "completed")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    return {"processes": processes, "idle": {k: round(v, 1) for k, v in idle.items()},
            "peak": {k: round(v, 1) for k, v in peak.items()},
            "completed": completed, "projects": projects,
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--claude", action="store_true",
                        help="through the anthropic SDK against the local Messages API server")
    parser.add_argument("--json", default=str(REPO / "bench/results/memory.json"))
    args = parser.parse_args()
    os.environ.setdefault("AGENCY_BROKER_URL", "redis://127.0.0.1:6379/5")
    os.environ.setdefault("AGENCY_DATABASE_URL",
                          "postgresql://postgres@127.0.0.1:5432/agency_bench")
    ensure_database(os.environ["AGENCY_DATABASE_URL"])
    home = Path(tempfile.mkdtemp(prefix="agency-memory-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update({"AGENCY_HOME": str(home), "AGENCY_OUTPUT_DIR": str(home / "out"),
                "PYTHONUNBUFFERED": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    fake = None
    if args.claude:
        fake, url = start_fake(args.latency)
        env.update({"AGENCY_LLM": "anthropic", "ANTHROPIC_API_KEY": "sk-test-fake",
                    "ANTHROPIC_BASE_URL": url})
    else:
        env.update({"AGENCY_LLM": "offline", "AGENCY_OFFLINE_LATENCY": str(args.latency)})
    os.environ.clear()
    os.environ.update(env)
    try:
        results = {kind: measure(kind, env, home, args.projects)
                   for kind in ("procfile", "fleet")}
    finally:
        if fake is not None:
            fake.terminate()
    model = "Claude through the SDK (local server)" if args.claude else "offline model"
    print(f"{args.projects} projects at once, {model}, {args.latency} s per call")
    print(f"{'topology':<10}{'processes':>10}{'idle RSS':>10}{'idle PSS':>10}"
          f"{'peak RSS':>10}{'peak PSS':>10}  (MB)")
    for kind, r in results.items():
        print(f"{kind:<10}{r['processes']:>10}{r['idle']['rss_mb']:>10.0f}"
              f"{r['idle']['pss_mb']:>10.0f}{r['peak']['rss_mb']:>10.0f}"
              f"{r['peak']['pss_mb']:>10.0f}  {r['completed']}/{r['projects']} completed")
    result = {"projects": args.projects, "latency_s": args.latency, "claude": args.claude,
              "topologies": results}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()

"""Benchmark: wall time of whole projects against the critical-path ideal.

    python bench/embedded_run.py [--latency 0.2] [--runs 3]

Each project type runs through the CLI (a subprocess, embedded mode by default, or whatever
AGENCY_BROKER_URL / AGENCY_DATABASE_URL point at) with every offline model call taking
`--latency` seconds. The ideal is the calls on the critical path times the latency: analysis,
decomposition, the chain of tasks whose model calls (tool turns and reviews, as the run's
`model_calls` say) add up to most, and integration (search, then answer: two calls). That is
what perfect scheduling with unlimited workers would take.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from typing import Any

from agency_offline.classify import plan
from orchestrator.domain.constants import ProjectType

REQUESTS = {
    ProjectType.WEBSITE: "Build a website for a bakery",
    ProjectType.MOBILE_APP: "An iOS and Android app for dog walkers",
    ProjectType.MARKETING_CAMPAIGN: "Run a social media campaign for our new sneakers",
    ProjectType.DATA_ANALYSIS: "Analyze churn data and build a dashboard",
    ProjectType.CONTENT_CREATION: "Write a blog series about sourdough",
    ProjectType.CUSTOM: "Plan a company offsite",
}


PROJECT_CALLS = 4  # analysis, decomposition, and integration's two turns


def critical_calls(status: dict[str, Any]) -> int:
    """Model calls along the dependency chain that makes the most of them."""
    tasks = {t["id"]: t for t in status["tasks"]}
    longest: dict[str, int] = {}

    def chain(task_id: str) -> int:
        if task_id not in longest:
            task = tasks[task_id]
            longest[task_id] = task["model_calls"] + max(
                (chain(d) for d in task["dependencies"]), default=0)
        return longest[task_id]

    return max(chain(t) for t in tasks) + PROJECT_CALLS


def run_once(request: str, latency: float, home: str) -> tuple[float, float, int]:
    env = {**os.environ, "AGENCY_OFFLINE_LATENCY": str(latency), "AGENCY_HOME": home,
           "AGENCY_OUTPUT_DIR": os.path.join(home, "out"), "AGENCY_EMBEDDED_CONCURRENCY": "8"}
    env.pop("ANTHROPIC_API_KEY", None)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "orchestrator", "run", request], env=env,
                            capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    pid = next(x.split()[1] for x in result.stdout.splitlines() if x.endswith("submitted."))
    status = json.loads(subprocess.run(
        [sys.executable, "-m", "orchestrator", "status", pid, "--json"], env=env,
        capture_output=True, text=True, check=True).stdout)
    created = datetime.fromisoformat(status["created_at"])
    finished = datetime.fromisoformat(status["finished_at"])
    return wall, (finished - created).total_seconds(), critical_calls(status)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"latency per model call {args.latency}s, {args.runs} runs per type")
    print(f"{'type':<20}{'tasks':>6}{'ideal s':>9}{'project s':>11}{'overhead':>10}{'wall s':>8}")
    for kind, request in REQUESTS.items():
        walls, spans, calls = [], [], []
        with tempfile.TemporaryDirectory() as home:
            for _ in range(args.runs):
                wall, span, n = run_once(request, args.latency, home)
                walls.append(wall)
                spans.append(span)
                calls.append(n)
        span = statistics.median(spans)
        ideal = statistics.median(calls) * args.latency
        print(f"{kind.value:<20}{len(plan(kind).tasks):>6}{ideal:>9.2f}{span:>11.2f}"
              f"{span - ideal:>+10.2f}{statistics.median(walls):>8.2f}")


if __name__ == "__main__":
    main()

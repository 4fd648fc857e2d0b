"""Benchmark: reviews scale with the reviewers' workers, since a review is its own message.

    python bench/review_scaling.py [--tasks 30] [--latency 0.3] [--runs 1] \\
        [--json bench/results/review_scaling.json]

A project of `--tasks` independent work products (frontend, backend, mobile, devops, data,
content: each reviewed by `qa_engineer`) runs on the Procfile's worker pools (bench/durable.py:
Redis database 7, PostgreSQL database `agency_bench18`) with the offline model, every call
taking `--latency` seconds, first with one `qa_engineer` worker of concurrency 1
(AGENCY_CONCURRENCY), then, in the same run, with two more such workers started beside it.
Per configuration: the makespan (first task's claim to the last task's completion: a task
completes when its review passes), the critical-path bound from the same run (each task's
model calls, its review's included, times the latency: what unlimited workers would take),
what the reviews alone take on one thread (review calls x latency), the reviewers' own bound
(the quickest task's own calls, then every review call shared by the reviewer threads), and how many
reviews each worker ran (`reviews[].worker`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.durable import bound_s, fleet, prepare, status, submit, task_span, wait_ended, workers
from bench.load_run import wait_for_workers

WORK_PRODUCTS = ["frontend_developer", "backend_developer", "mobile_developer",
                 "devops_engineer", "data_analyst", "content_writer"]


def plan(size: int) -> dict[str, Any]:
    return {"request": "Build a website for a bakery", "project_type": "website", "tasks": [
        {"title": f"Part {i}: {WORK_PRODUCTS[i % 6].replace('_', ' ')} work",
         "agent_type": WORK_PRODUCTS[i % 6], "dependencies": [],
         "description": f"Part {i} of the bakery website launch.",
         "deliverables": [f"deliverable {i}"],
         "acceptance_criteria": [f"deliverable {i} is complete"]} for i in range(size)]}


def measure(rt: Any, app: Any, home: Path, size: int, latency: float,
            threads: int) -> dict[str, Any]:
    started = time.monotonic()
    project_id = submit(rt, app, home, plan(size))
    wait_ended(rt, [project_id])
    wall = time.monotonic() - started
    shown = status(rt, project_id)
    span = task_span(shown)
    reviews = [r for found in rt.store.reviews(project_id).values() for r in found]
    review_calls = _review_calls(rt, project_id)
    # The reviewers' own bound: the quickest agent's work, then every review on `threads`.
    agent_calls = min(c for c in span["calls"]) - review_calls // len(span["calls"])
    return {"makespan_s": round(span["makespan_s"], 2),
            "bound_s": round(bound_s(span["deps"], span["calls"], latency), 2),
            "reviews_serial_s": round(review_calls * latency, 2),
            "reviewer_bound_s": round((agent_calls + review_calls / threads) * latency, 2),
            "project_s": round(wall, 2), "reviews": len(reviews), "review_calls": review_calls,
            "task_calls": sum(span["calls"]),
            "by_worker": dict(Counter(str(r.worker).split("@")[0] for r in reviews))}


def _review_calls(rt: Any, project_id: str) -> int:
    return sum(1 for c in rt.store.calls(project_id) if c.entry.role.value == "review")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results"
                                             / "review_scaling.json"))
    args = parser.parse_args()
    home, env = prepare(AGENCY_LLM="offline", AGENCY_OFFLINE_LATENCY=str(args.latency),
                        AGENCY_CONCURRENCY=json.dumps({"qa_engineer": 1}))
    from orchestrator.agent.runtime import get_runtime
    from workers.app import app

    rt = get_runtime()
    found: dict[str, list[dict[str, Any]]] = {}
    with fleet(env, home):
        for _ in range(args.runs):
            found.setdefault("1 qa worker x 1 thread", []).append(
                measure(rt, app, home, args.tasks, args.latency, 1))
        with workers(env, home, "qa_engineer", 2):
            wait_for_workers(app, 13)
            for _ in range(args.runs):
                found.setdefault("3 qa workers x 1 thread", []).append(
                    measure(rt, app, home, args.tasks, args.latency, 3))

    print(f"{args.tasks} independent work products, each reviewed by qa_engineer; offline "
          f"model, {args.latency} s per call; median of {args.runs} run(s)")
    print(f"{'reviewers':<26}{'makespan s':>11}{'bound s':>9}{'ratio':>7}"
          f"{'reviewer bound s':>18}{'reviews 1 thread s':>20}{'reviews':>9}{'project s':>11}"
          "  reviews per worker")
    summary = {}
    for name, runs in found.items():
        best = sorted(runs, key=lambda r: r["makespan_s"])[len(runs) // 2]
        summary[name] = {**best, "runs": runs}
        print(f"{name:<26}{best['makespan_s']:>11.2f}{best['bound_s']:>9.2f}"
              f"{best['makespan_s'] / best['bound_s']:>7.2f}{best['reviewer_bound_s']:>18.2f}"
              f"{best['reviews_serial_s']:>20.2f}"
              f"{best['reviews']:>9}{best['project_s']:>11.2f}  {best['by_worker']}")
    one, three = (statistics.median(r["makespan_s"] for r in runs) for runs in found.values())
    print(f"speed-up with 3 reviewers: {one / three:.2f}x")
    result = {"tasks": args.tasks, "latency_s": args.latency, "runs": args.runs,
              "configurations": summary}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()

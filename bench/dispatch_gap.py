"""Benchmark: the dispatch gap, ours beside plain Celery, in the same run on the same Redis.

    python bench/dispatch_gap.py [--tasks 30] [--runs 3] [--json bench/results/dispatch_gap.json]

The dispatch gap is the time from a task's finish to the start of the task that depends on it.

Ours: a chain-shaped plan (`bench/shapes.py`: `chain(N)`, task i on agent queue i mod 10, so
every hop crosses worker processes) run `--runs` times on the production topology (the
Procfile's eleven worker pools under honcho, Redis, PostgreSQL), submitted as
`agency run --plan FILE --no-wait` does, zero-latency tasks (see bench/fleets.py). A chain is
series-parallel, so the whole plan is one Celery `chain`: the next task's message is published
by Celery when the previous task's Celery task returns. Per edge, gap = child.started_at -
parent.finished_at, read from the task rows (`orchestrator/state/sql/queries.sql`):

- `started_at` is written by `start_task`, the claim: the worker's Python clock
  (`datetime.now(UTC)`) inside the claim transaction, after the Celery task began and loaded the
  task and project rows, before the claim commits. It is the start of the task's own work.
- `finished_at` is written by `finish_attempt` inside `complete_task`'s transaction: the worker's
  clock after the project row lock, *before* the output is indexed in the knowledge base, the
  dependents are counted down and the transaction commits. So the gap includes that commit
  work, the release step, the progress read, Celery's result write and the publish of the next
  message, its delivery, and the next task's pre-claim reads.

The gap is split with Celery's own task events (which our configuration sends): parent
finished -> child `task-received` (the worker's consumer got the message), -> child
`task-started` (a pool thread began it), -> child claim (started_at). Event timestamps are
time.time() of the workers on this machine, the clock the store's timestamps come from.

Plain: a Celery app of its own (bench/plain_celery.py) with one worker process per queue (the
same eleven queues and threads per process), a `chain` of N no-op tasks over the same ten
agent queues in the same order; each no-op returns time.time() at its start and end, and
gap = next start - previous end. Our runs and the baseline's alternate.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fleets as fx
from bench import shapes

TASK_ID = re.compile(r"""['"]task_id['"]: ['"]([0-9a-f-]{36})['"]""")


class EventRecorder:
    """Celery task events of one app, by our task id (the `task_id` of the message's kwargs,
    as the `task-received` event shows them)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.by_task: dict[str, dict[str, float]] = {}
        self._celery_to_task: dict[str, str] = {}
        self._receiver: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> EventRecorder:
        self._thread.start()
        self._ready.wait(10)
        time.sleep(0.3)  # the event queue is bound before anything is sent
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)  # the last events in flight
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with self.app.connection_for_read() as conn:
            self._receiver = self.app.events.Receiver(conn, handlers={"*": self._on_event})
            self._ready.set()
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = str(event.get("type", ""))
        if not kind.startswith("task-") or "uuid" not in event:
            return
        if kind == "task-received":
            found = TASK_ID.search(str(event.get("kwargs", "")))
            if found:
                self._celery_to_task[event["uuid"]] = found.group(1)
        task_id = self._celery_to_task.get(event["uuid"])
        if task_id is not None:
            self.by_task.setdefault(task_id, {})[kind[5:]] = float(event["timestamp"])


def ours_once(fl: fx.Fleets, n: int, timeout: float) -> dict[str, Any]:
    plan_path = fx.write_plan(fl.home, shapes.plan(f"chain-{n}", shapes.chain(n)))
    with EventRecorder(fl.app) as events:
        started = time.monotonic()
        project_id = fx.submit(fl, plan_path)
        status = fx.wait_ended(fl, [project_id], timeout, poll=0.1)[project_id]
        wall = time.monotonic() - started
    tasks = {t.id: t for t in fl.rt.store.tasks(project_id)}
    gaps: list[float] = []
    parts: dict[str, list[float]] = {"finish_to_received": [], "received_to_started": [],
                                     "started_to_claim": []}
    retried = 0
    for task in sorted(tasks.values(), key=lambda t: t.index):
        retried += task.attempts > 1
        for dep in task.dependencies:
            if task.started_at is None or tasks[dep].finished_at is None:
                continue
            finish, claim = fx.ts(tasks[dep].finished_at), fx.ts(task.started_at)
            gaps.append(claim - finish)
            ev = events.by_task.get(task.id, {})
            if "received" in ev and "started" in ev:
                parts["finish_to_received"].append(ev["received"] - finish)
                parts["received_to_started"].append(ev["started"] - ev["received"])
                parts["started_to_claim"].append(claim - ev["started"])
    in_task = [fx.ts(t.finished_at) - fx.ts(t.started_at) for t in tasks.values()
               if t.started_at and t.finished_at]
    return {"project": project_id, "status": status, "wall_s": round(wall, 3),
            "tasks_retried": retried, "gaps_s": gaps, "parts_s": parts, "in_task_s": in_task}


def plain_once(fl: fx.Fleets, n: int, queues: list[str], timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    spans = fl.plain.run_chain(queues, n, timeout=timeout)
    wall = time.monotonic() - started
    gaps = [spans[i + 1][0] - spans[i][1] for i in range(len(spans) - 1)]
    return {"wall_s": round(wall, 3), "gaps_s": gaps,
            "in_task_s": [end - start for start, end in spans]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=30, help="tasks in the chain (2 to 60)")
    parser.add_argument("--runs", type=int, default=3, help="chains of each system")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per chain")
    parser.add_argument("--fresh-db", action="store_true",
                        help="drop and recreate AGENCY_DATABASE_URL's database first (the "
                             "store grows with every run otherwise)")
    parser.add_argument("--json", default=str(fx.REPO / "bench/results/dispatch_gap.json"))
    args = parser.parse_args()
    if not 2 <= args.tasks <= 60:
        parser.error("--tasks must be 2 to 60 (a plan holds at most 60 tasks)")
    home = fx.new_home("agency-gap-")
    env = fx.configure(home)
    queues = list(shapes.AGENTS)
    ours: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    with fx.fleets(home, env, args.fresh_db) as fl:
        # One warm-up of each (connections, imports, first-use caches), not counted.
        ours_once(fl, 3, args.timeout)
        plain_once(fl, 3, queues, args.timeout)
        for _ in range(args.runs):
            ours.append(ours_once(fl, args.tasks, args.timeout))
            plain.append(plain_once(fl, args.tasks, queues, args.timeout))
    report(args, ours, plain, home)


def report(args: argparse.Namespace, ours: list[dict[str, Any]], plain: list[dict[str, Any]],
           home: Path) -> None:
    ours_gaps = [g for r in ours for g in r["gaps_s"]]
    plain_gaps = [g for r in plain for g in r["gaps_s"]]
    o, p = fx.summary_ms(ours_gaps), fx.summary_ms(plain_gaps)
    parts = {k: fx.summary_ms([v for r in ours for v in r["parts_s"][k]])
             for k in ("finish_to_received", "received_to_started", "started_to_claim")}
    ratio = {k: round(o[k] / p[k], 2) if p.get(k) else None for k in ("p50", "p99", "mean")}
    print(f"Dispatch gap: a chain of {args.tasks} tasks over the 10 agent queues, "
          f"{args.runs} runs each, alternating (ms; {o['n']} and {p['n']} hops)")
    print(fx.settings_line())
    print(f"{'':<34}{'p50':>9}{'p99':>9}{'mean':>9}{'min':>9}{'max':>9}")
    for name, s in (("ours (claim - parent finish)", o), ("plain Celery (start - prev end)", p)):
        print(f"{name:<34}" + "".join(f"{s[k]:>9.2f}" for k in ("p50", "p99", "mean", "min",
                                                                 "max")))
    print(f"{'ratio ours / plain':<34}" + "".join(
        f"{ratio[k]:>9}" for k in ("p50", "p99", "mean")) + "   (target p50 <= 1.5)")
    print("\nwhere our gap goes (Celery events; ms)")
    labels = {"finish_to_received": "parent finished -> child received",
              "received_to_started": "received -> Celery started",
              "started_to_claim": "Celery started -> claim"}
    for key, label in labels.items():
        s = parts[key]
        if s["n"]:
            print(f"  {label:<32}" + "".join(f"{s[k]:>9.2f}" for k in ("p50", "p99", "mean")))
    ours_task = fx.summary_ms([v for r in ours for v in r["in_task_s"]])
    plain_task = fx.summary_ms([v for r in plain for v in r["in_task_s"]])
    print(f"\nin-task time (start -> finish), p50: ours {ours_task['p50']} ms, "
          f"plain {plain_task['p50']} ms; chain wall p50: ours "
          f"{fx.percentile([r['wall_s'] for r in ours], 50):.2f} s, plain "
          f"{fx.percentile([r['wall_s'] for r in plain], 50):.2f} s")
    bad = [r for r in ours if r["status"] != "completed" or r["tasks_retried"]]
    if bad:
        print(f"WARNING: {len(bad)} of our runs did not complete cleanly: "
              + ", ".join(f"{r['project']} {r['status']} ({r['tasks_retried']} retried)"
                          for r in bad))
    result = {
        "tasks": args.tasks, "runs": args.runs, "settings": fx.settings_line(),
        "gap_ms": {"ours": o, "plain": p}, "ratio": ratio, "target_p50_ratio": 1.5,
        "ours_gap_parts_ms": parts, "in_task_ms": {"ours": ours_task, "plain": plain_task},
        "runs_detail": {
            "ours": [{"project": r["project"], "status": r["status"], "wall_s": r["wall_s"],
                      "tasks_retried": r["tasks_retried"],
                      "gaps_ms": [round(g * 1000, 2) for g in r["gaps_s"]]} for r in ours],
            "plain": [{"wall_s": r["wall_s"], "gaps_ms": [round(g * 1000, 2)
                                                          for g in r["gaps_s"]]}
                      for r in plain]},
        "logs": str(home)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nJSON: {args.json}; worker logs: {home}")


if __name__ == "__main__":
    main()

"""Benchmark: a hundred tasks waiting for a person hold no worker thread.

    python bench/open_questions.py [--tasks 100] [--latency 0.05] \\
        [--json bench/results/open_questions.json]

`--tasks` independent tasks over the ten agent types (projects of 50: a plan holds at most 60)
run on the Procfile's worker pools (bench/durable.py: Redis database 7, PostgreSQL database
`agency_bench18`) through the real `anthropic` SDK against the strict local Messages API
server (tests/fake_anthropic.py, in this process, each answer after `--latency` seconds),
whose agents all ask a person on their first turn (`ask_person`, as Claude does when a brief
leaves a decision open); reviews off. Once every question is open it reports what the waiting
costs: the Celery tasks the workers are running (`inspect().active()`, every worker: a parked
task has ended its Celery task, so 0) beside the threads the pools have, the tasks that hold a
lease (0), and the rows and bytes the waits added to the store (questions rows, the tasks'
`parked` column, the journal's turn that asked). Then it answers every question (what `agency
answer` does) and times the drain: from the first answer to the last project completed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.durable import fleet, prepare, submit, wait_ended, wait_until
from orchestrator.domain.constants import AgentType
from tests.fake_anthropic import FakeAnthropic, Faults

KEY = "sk-bench-questions"
PER_PROJECT = 50
QUESTION = ("Which opening hours should the page show?", "Tuesday to Sunday, 7:00 to 15:00")


def plan(size: int, offset: int) -> dict[str, Any]:
    agents = [a.value for a in AgentType]
    return {"request": "Build a website for a bakery", "project_type": "website", "tasks": [
        {"title": f"Ask {offset + i}: {agents[i % len(agents)].replace('_', ' ')} work",
         "agent_type": agents[i % len(agents)],
         "description": f"Part {offset + i} of the bakery website; the opening hours are "
                        "not decided yet.", "dependencies": [],
         "deliverables": [f"deliverable {offset + i}"],
         "acceptance_criteria": [f"deliverable {offset + i} is complete"]}
        for i in range(size)]}


def store_rows(rt: Any, project_ids: list[str]) -> dict[str, Any]:
    """What the waits hold in the store, read with psycopg (no product query lists this)."""
    import psycopg

    with psycopg.connect(rt.settings.effective_database_url) as conn:
        def one(sql: str) -> Any:
            row = conn.execute(sql, (project_ids,)).fetchone()
            return row[0] if row else None

        return {
            "questions_rows": one("SELECT count(*) FROM questions WHERE project_id = ANY(%s)"),
            "questions_bytes": one("SELECT coalesce(sum(pg_column_size(q.*)), 0) FROM "
                                   "questions q WHERE project_id = ANY(%s)"),
            "tasks_parked": one("SELECT count(*) FROM tasks WHERE project_id = ANY(%s) "
                                "AND parked = 'question'"),
            "tasks_needs_input": one("SELECT count(*) FROM tasks WHERE project_id = ANY(%s) "
                                     "AND status = 'needs_input'"),
            "tasks_holding_a_lease": one("SELECT count(*) FROM tasks WHERE project_id = "
                                         "ANY(%s) AND lease_until IS NOT NULL"),
            "tasks_parked_column_bytes": one(
                "SELECT coalesce(sum(pg_column_size(parked)), 0) FROM tasks "
                "WHERE project_id = ANY(%s)"),
            "journal_rows": one("SELECT count(*) FROM journal WHERE project_id = ANY(%s) "
                                "AND task_id IS NOT NULL"),
            "journal_bytes": one("SELECT coalesce(sum(bytes), 0) FROM journal "
                                 "WHERE project_id = ANY(%s) AND task_id IS NOT NULL"),
        }


def busy(app: Any) -> dict[str, int]:
    """Celery tasks running and reserved on every worker, and the pools' threads."""
    inspect = app.control.inspect(timeout=2.0)
    active = inspect.active() or {}
    reserved = inspect.reserved() or {}
    stats = inspect.stats() or {}
    threads = sum(int(s.get("pool", {}).get("max-concurrency", 0)) for s in stats.values())
    return {"workers": len(stats), "pool_threads": threads,
            "active": sum(len(v) for v in active.values()),
            "reserved": sum(len(v) for v in reserved.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--json", default=str(Path(__file__).parent / "results"
                                             / "open_questions.json"))
    args = parser.parse_args()
    faults = Faults(latency=args.latency, questions={"Ask": QUESTION})
    with FakeAnthropic(api_key=KEY, faults=faults) as fake:
        home, env = prepare(AGENCY_LLM="anthropic", ANTHROPIC_API_KEY=KEY,
                            ANTHROPIC_BASE_URL=fake.url, AGENCY_REVIEWED_AGENTS="none",
                            AGENCY_QUESTION_TIMEOUT="3600")
        from orchestrator.agent.runtime import get_runtime
        from orchestrator.services.operator import Operator
        from workers.app import app

        rt = get_runtime()
        with fleet(env, home):
            idle = busy(app)
            started = time.monotonic()
            sizes = [min(PER_PROJECT, args.tasks - n) for n in range(0, args.tasks, PER_PROJECT)]
            ids = [submit(rt, app, home, plan(size, n * PER_PROJECT))
                   for n, size in enumerate(sizes)]

            def asked() -> bool:
                return sum(len(rt.store.open_questions(p)) for p in ids) >= args.tasks

            wait_until("every question open", asked, timeout=600, every=0.2)
            parked_s = time.monotonic() - started
            time.sleep(1.0)  # the last tasks' Celery tasks end as their questions are saved
            waiting, rows = busy(app), store_rows(rt, ids)
            questions = [q for p in ids for q in rt.store.open_questions(p)]
            operator = Operator(rt, app)
            first = time.monotonic()
            for q in questions:
                operator.answer(q["task_id"], "Tuesday to Sunday, 6:30 to 14:00")
            answered_s = time.monotonic() - first
            drain_s = wait_ended(rt, ids, timeout=600) + answered_s
            after = store_rows(rt, ids)
        refused = len(fake.refused)

    print(f"{args.tasks} tasks that each ask a person, Procfile workers, the anthropic SDK "
          f"against the local Messages API server ({args.latency} s per answer), reviews off")
    print(f"every question open {parked_s:.1f} s after submitting; then, over "
          f"{waiting['workers']} workers with {waiting['pool_threads']} pool threads:")
    print(f"  Celery tasks running {waiting['active']} (idle before: {idle['active']}), "
          f"reserved {waiting['reserved']}")
    for key, value in rows.items():
        print(f"  {key:<28}{value:>10,}")
    print(f"answering all {len(questions)}: {answered_s:.2f} s; first answer to every project "
          f"completed: {drain_s:.1f} s; questions open after: {after['tasks_parked']}; "
          f"requests the server refused: {refused}")
    result = {"tasks": args.tasks, "latency_s": args.latency, "parked_s": round(parked_s, 2),
              "idle": idle, "waiting": waiting, "store": rows, "after": after,
              "answered_s": round(answered_s, 2), "drain_s": round(drain_s, 2),
              "refused": refused}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()

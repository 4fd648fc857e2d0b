"""Benchmark: the journal's size per task and per turn, and its growth along one long
conversation, against a checkpoint that saves the whole conversation at every turn.

    python bench/journal_size.py [--tasks 30] [--seed 7] [--turns 40] \\
        [--json bench/results/journal_size.json]

1. The 30-task plan of bench/cache_run.py (`make_plan`, seed 7) runs on the Procfile's worker
   pools (honcho; Redis database 7, PostgreSQL database `agency_bench18`: bench/durable.py) with
   the offline model and reviews on, as a project runs by default. From the `journal` table:
   bytes per task (all its conversations: the agent's and its reviews'), per turn row and per
   tools row, and the project's own conversations (integration).
2. One long conversation: a one-task project whose agent searches the knowledge base
   `--turns` times before it writes its files and answers (AGENCY_AGENT_MAX_TURNS=50), run in
   this process on the same PostgreSQL store through the same agent code as a worker (the
   model is the offline one behind a wrapper that asks for the extra searches). After each
   turn: the journal's bytes for the conversation (each row holds only what is new since the
   one before: the increments must not grow with the turn number), beside what a checkpoint
   of the whole conversation (every message so far and the answer) would weigh at that turn
   and the sum of those checkpoints (what saving the whole conversation each turn writes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cache_run import make_plan
from bench.durable import fleet, prepare, status, submit, wait_ended


def per_task(rt: Any, project_id: str) -> dict[str, Any]:
    rows = _rows(rt, project_id)
    tasks: dict[str, int] = {}
    turns, tools, project_rows = [], [], 0
    for r in rows:
        if r["task_id"] is None:
            project_rows += r["bytes"]
        else:
            tasks[r["task_id"]] = tasks.get(r["task_id"], 0) + r["bytes"]
        (turns if r["kind"] == "turn" else tools).append(r["bytes"])
    per = sorted(tasks.values())
    # What saving each conversation whole at every turn would write: at each turn row, every
    # row of the conversation up to it.
    checkpoints, conv, running = 0, None, 0
    for r in rows:
        if r["conv"] != conv:
            conv, running = r["conv"], 0
        running += r["bytes"]
        if r["kind"] == "turn":
            checkpoints += running
    return {"rows": len(rows), "bytes": sum(r["bytes"] for r in rows),
            "conversations": len({r["conv"] for r in rows}),
            "task_conversations": len({r["conv"] for r in rows if r["task_id"]}),
            "tasks": len(per), "bytes_per_task_mean": round(statistics.mean(per)),
            "bytes_per_task_median": round(statistics.median(per)),
            "bytes_per_task_max": max(per), "turn_rows": len(turns),
            "bytes_per_turn_mean": round(statistics.mean(turns)),
            "bytes_per_turn_max": max(turns), "tools_rows": len(tools),
            "bytes_per_tools_row_mean": round(statistics.mean(tools)) if tools else 0,
            "project_conversation_bytes": project_rows,
            "whole_conversation_checkpoints_bytes": checkpoints}


def _rows(rt: Any, project_id: str) -> list[dict[str, Any]]:
    """The project's journal rows (task, conversation, seq, kind, bytes), read with psycopg:
    the product has no query for a benchmark's listing, and needs none."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(rt.settings.effective_database_url, row_factory=dict_row) as conn:
        return list(conn.execute(
            "SELECT task_id, conv, seq, kind, bytes, octet_length(coalesce(sent, '')) "
            "+ octet_length(coalesce(body, '')) AS stored FROM journal "
            "WHERE project_id = %s ORDER BY conv, seq", (project_id,)).fetchall())


class Searching:
    """The offline model, except that an agent searches `extra` more times before it goes
    on as the offline model does; notes each call's whole conversation size (the request's
    messages and the answer, as a checkpointer would save them)."""

    name = "searching"

    def __init__(self, model: Any, extra: int) -> None:
        self.model, self.extra = model, extra
        self.checkpoints: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def complete(self, request: Any, progress: Any = None) -> Any:
        from orchestrator.domain.constants import Role
        from orchestrator.domain.models import Tokens
        from orchestrator.llm.base import CompletionResponse, ToolUseBlock

        turn = sum(1 for m in request.messages if m.role == "assistant")
        if request.role is Role.AGENT and request.tools and turn < self.extra:
            use = ToolUseBlock(id=f"toolu_bench_{turn:03d}", name="search_knowledge",
                               input={"query": f"opening hours menu prices step {turn}"})
            answer = CompletionResponse(content=[use], model=request.model, tokens=Tokens(),
                                        latency_ms=0, stop_reason="tool_use")
        else:
            answer = self.model.complete(request, progress)
        if request.role is Role.AGENT:
            whole = sum(len(m.model_dump_json().encode()) for m in request.messages)
            self.checkpoints.append(whole + len(answer.model_dump_json().encode()))
        return answer


def long_conversation(rt: Any, home: Path, extra: int) -> dict[str, Any]:
    from orchestrator.agent.runner import run_agent_task
    from orchestrator.agent.runtime import Runtime
    from orchestrator.domain import dag
    from orchestrator.domain.constants import ProjectStatus
    from orchestrator.domain.models import Plan

    # Reviews off for this one: the conversation measured is the agent's own, run to its end.
    rt = Runtime(rt.settings.model_copy(update={"reviewed_agents": ()}))
    wrapper = Searching(rt.provider, extra)
    rt.__dict__["provider"] = wrapper  # the runtime's provider is a cached property
    plan = Plan.model_validate({"tasks": [{
        "title": "Menu page copy", "agent_type": "content_writer",
        "description": "The bakery's menu page: every bread, pastry and price.",
        "dependencies": [], "deliverables": ["menu page copy"],
        "acceptance_criteria": ["every item has a price"]}]})
    project_id = f"bench-long-{int(time.time())}"
    rt.store.insert_project(project_id, "Build a website for a bakery", None, "website",
                            str(home / "out" / project_id))
    claim = rt.scheduler.claim_project(project_id, ProjectStatus.PLANNING, rt.leases.until())
    graph = dag.validate_plan(plan)
    [task_id] = rt.scheduler.save_plan(claim, plan, graph, dag.schedule(graph), "website",
                                       1_000_000)
    rt.scheduler.move_claimed(claim, ProjectStatus.RUNNING)
    run_agent_task(rt, task_id, "bench@local")
    rows = [r for r in _rows(rt, project_id) if r["conv"].endswith("/agent")]
    after, total, increments = [], 0, []
    pending = 0  # a tools row counts with the turn that follows it (what that turn sent)
    for r in rows:
        total += r["bytes"]
        pending += r["bytes"]
        if r["kind"] == "turn":
            after.append(total)
            increments.append(pending)
            pending = 0
    checkpoints = wrapper.checkpoints[:len(after)]
    tenth = max(1, len(increments) // 10)
    return {"project_id": project_id, "turns": len(after), "journal_bytes_after_turn": after,
            "increment_bytes": increments, "checkpoint_bytes_at_turn": checkpoints,
            "journal_total_bytes": total, "checkpoints_sum_bytes": sum(checkpoints),
            "increment_first_tenth_mean": round(statistics.mean(increments[1:1 + tenth])),
            "increment_last_tenth_mean": round(statistics.mean(increments[extra - tenth:extra])),
            "search_increment_min": min(increments[1:extra]),
            "search_increment_max": max(increments[1:extra]),
            "task_status": rt.store.task(task_id).status.value}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--turns", type=int, default=40,
                        help="searches of the long conversation before it goes on")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results"
                                             / "journal_size.json"))
    args = parser.parse_args()
    home, env = prepare(AGENCY_LLM="offline", AGENCY_AGENT_MAX_TURNS="50",
                        AGENCY_MAX_MODEL_CALLS="100")
    from orchestrator.agent.runtime import get_runtime
    from workers.app import app

    rt = get_runtime()
    with fleet(env, home):
        project_id = submit(rt, app, home, make_plan(args.tasks, args.seed))
        seconds = wait_ended(rt, [project_id])
        long = long_conversation(rt, home, args.turns)  # its integration runs on the fleet
        wait_ended(rt, [long["project_id"]])
    project = per_task(rt, project_id)
    calls = sum(t["model_calls"] for t in status(rt, project_id)["tasks"])
    # Retention's compaction (AGENCY_JOURNAL_RETENTION run out), on these two projects.
    rt.store.compact_journal(rt.store.clock() + timedelta(seconds=1))
    compacted = {"project_bytes": sum(r["bytes"] for r in _rows(rt, project_id)),
                 "long_conversation_bytes": sum(r["bytes"] for r in
                                                _rows(rt, long["project_id"]))}

    print(f"{args.tasks}-task plan (bench/cache_run.py, seed {args.seed}), offline model, "
          f"reviews on, Procfile workers on PostgreSQL + Redis: completed in {seconds:.1f} s, "
          f"{calls} task model calls")
    for key in ("rows", "conversations", "bytes", "bytes_per_task_mean",
                "bytes_per_task_median", "bytes_per_task_max", "turn_rows",
                "bytes_per_turn_mean", "bytes_per_turn_max", "tools_rows",
                "bytes_per_tools_row_mean", "project_conversation_bytes",
                "whole_conversation_checkpoints_bytes"):
        print(f"  {key:<38}{project[key]:>12,}")
    print(f"\none agent conversation of {long['turns']} turns ({long['task_status']}):")
    print(f"{'turn':>6}{'journal bytes':>15}{'increment':>11}{'whole conversation':>20}"
          f"{'checkpoints so far':>20}")
    so_far = 0
    for n, (after, inc, whole) in enumerate(zip(long["journal_bytes_after_turn"],
                                                long["increment_bytes"],
                                                long["checkpoint_bytes_at_turn"],
                                                strict=False), 1):
        so_far += whole
        if n <= 3 or n % 5 == 0 or n == long["turns"]:
            print(f"{n:>6}{after:>15,}{inc:>11,}{whole:>20,}{so_far:>20,}")
    print(f"journal total {long['journal_total_bytes']:,} bytes; whole-conversation "
          f"checkpoints at every turn would write {long['checkpoints_sum_bytes']:,} bytes "
          f"({long['checkpoints_sum_bytes'] / long['journal_total_bytes']:.1f}x); increment "
          f"per turn, mean of the first tenth {long['increment_first_tenth_mean']:,} and of "
          f"the last tenth {long['increment_last_tenth_mean']:,} bytes (the searches' "
          f"turns 2 to {args.turns}: {long['search_increment_min']:,} to "
          f"{long['search_increment_max']:,})")
    print(f"compacted (retention run out): the {args.tasks}-task project's journal "
          f"{project['bytes']:,} -> {compacted['project_bytes']:,} bytes, the long "
          f"conversation's project {long['journal_total_bytes']:,} (agent) -> "
          f"{compacted['long_conversation_bytes']:,} (all its conversations)")
    result = {"tasks": args.tasks, "compacted": compacted, "seed": args.seed,
              "seconds": round(seconds, 2),
              "project": project, "long_conversation": long}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(f"saved {args.json}")


if __name__ == "__main__":
    main()

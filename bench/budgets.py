"""Benchmark: what a plan's tasks really spend against the budget a project gets by default.

    python bench/budgets.py [--tasks 60] [--seed 7] [--only offline|claude]

Runs the largest plan allowed (60 tasks, a layered random DAG of bench/cache_run.py, each task
estimated at the plan file default, 4,000 tokens) through `agency run --plan` embedded with no
`--budget`: once on the offline model, once through the real `anthropic` SDK against the
strict local Messages API server of tests/fake_anthropic.py. Then the same plan again on the
same store (the second run is calibrated on the first: `Store.calibration` needs
CALIBRATE_MIN completed projects, so it runs until it has them).

Per run: status, the budget the project got, what it spent (budgeted tokens: a cache read
counts a tenth), what its tasks spent per token estimated (the calibration's ratio), and the
baseline: the fixed 400,000-token budget every plan file got before, with the share of the
plan it would have paid for. Prints a table and saves bench/results/budgets.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cache_run import KEY, make_plan
from tests.fake_anthropic import FakeAnthropic, Faults

ROOT = Path(__file__).resolve().parent.parent
ESTIMATE = 4000
OLD_BUDGET = 400_000  # what every plan file got before (DEFAULT_BUDGET)


def spent_after_planning(db: Path, project_id: str) -> int:
    with sqlite3.connect(db) as conn:
        (spent,) = conn.execute(
            "SELECT COALESCE(SUM(input_tokens + output_tokens + cache_write_tokens"
            " + (cache_read_tokens + 9) / 10), 0) FROM usage WHERE project_id = ?"
            " AND role NOT IN ('analyze', 'decompose')", (project_id,)).fetchone()
    return int(spent)


def run_once(plan_file: Path, home: Path, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "orchestrator"]
    done = subprocess.run([*cmd, "run", "--plan", str(plan_file)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800, check=False)
    pid = next((x.split()[1] for x in done.stdout.splitlines() if x.endswith("submitted.")),
               None)
    if pid is None:
        raise SystemExit(f"agency run failed:\n{done.stderr[-3000:]}")
    data: dict[str, Any] = json.loads(subprocess.run(
        [*cmd, "status", pid, "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True).stdout)
    done_tasks = sum(t["status"] == "completed" for t in data["tasks"])
    estimated = ESTIMATE * len(data["tasks"])  # make_plan's tasks: the plan file default
    spent = spent_after_planning(home / "agency.db", pid)
    return {"status": data["status"], "tasks": len(data["tasks"]), "completed": done_tasks,
            "budget": data["budget_tokens"], "used": data["tokens_used"], "spent": spent,
            "ratio": round(spent / estimated, 2), "old_covers": round(OLD_BUDGET / spent, 2)}


def series(name: str, plan_file: Path, extra: dict[str, str], runs: int) -> list[dict[str, Any]]:
    home = Path(tempfile.mkdtemp(prefix=f"budgets-{name}-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENCY_", "ANTHROPIC_"))}
    env.update({"AGENCY_ENV_FILE": "", "AGENCY_HOME": str(home),
                "AGENCY_OUTPUT_DIR": str(home / "out"), "PYTHONPATH": str(ROOT), **extra})
    return [{"path": name, "run": n + 1, **run_once(plan_file, home, env)} for n in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=4, help="runs per path, on one store")
    parser.add_argument("--only", choices=["offline", "claude"])
    args = parser.parse_args()
    plan_file = Path(tempfile.mkdtemp()) / "plan.json"
    plan_file.write_text(json.dumps(make_plan(args.tasks, args.seed)))
    rows: list[dict[str, Any]] = []
    if args.only in (None, "offline"):
        rows += series("offline", plan_file, {"AGENCY_LLM": "offline"}, args.runs)
    if args.only in (None, "claude"):
        with FakeAnthropic(api_key=KEY, faults=Faults(latency=0.05)) as fake:
            rows += series("claude (SDK, test server)", plan_file, {
                "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.url,
                "AGENCY_EMBEDDED_CONCURRENCY": "4"}, args.runs)
    print(f"{'path':<28} {'run':>3} {'status':<17} {'done':>6} {'budget':>10} {'used':>9} "
          f"{'after planning':>14} {'per est. token':>14} {'400k covers':>11}")
    for r in rows:
        print(f"{r['path']:<28} {r['run']:>3} {r['status']:<17} "
              f"{r['completed']:>3}/{r['tasks']:<2} {r['budget']:>10,} {r['used']:>9,} "
              f"{r['spent']:>14,} {r['ratio']:>14} {r['old_covers']:>10.0%}")
    out = ROOT / "bench" / "results" / "budgets.json"
    out.write_text(json.dumps(rows, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()

"""Benchmark: what agents read and what it costs, on a 30-task plan through the Claude path.

    python bench/cache_run.py [--before REV] [--tasks 30] [--seed 7]

Runs one project from a generated 30-task plan file through `agency run --plan` (embedded, the
real `anthropic` SDK) against the local Messages API server of tests/fake_anthropic.py, which
applies each model's minimum cacheable prefix (4,096 tokens for Haiku 4.5, 2,048 for Sonnet
4.6). Per task it reports all the input tokens the task's calls read (plain, cache read and
cache write), its dependencies, and how many tasks were done before it started; a least-squares
fit says how input grows with each. `--before REV` runs the same plan with the code at git
revision REV (a worktree, the same interpreter) against the same server, for the cost before.
The server answers through today's offline model, which reads prompts by today's labels
(orchestrator/domain/prompt_labels.py) and refuses others with a 400: REV must write the same
prompts (the agents' tool-loop prompts, from e60349f on).
Prints tables and saves bench/results/cache_run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.domain.constants import AgentType
from orchestrator.domain.settings import Settings
from tests.fake_anthropic import FakeAnthropic

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-bench-cache"
AGENTS = [a.value for a in AgentType if a is not AgentType.MOBILE_DEVELOPER]


def make_plan(size: int, seed: int) -> dict[str, Any]:
    """A layered random DAG: each task depends on 0 to 4 earlier ones."""
    rng = random.Random(seed)
    tasks = []
    for i in range(size):
        width = min(i, rng.choice([0, 1, 1, 2, 2, 3, 4]))
        deps = sorted(rng.sample(range(i), k=width)) if i else []
        agent = AGENTS[i % len(AGENTS)]
        tasks.append({"title": f"Step {i}: {agent.replace('_', ' ')} work", "agent_type": agent,
                      "description": f"Part {i} of the bakery website launch.",
                      "dependencies": deps, "deliverables": [f"deliverable {i}"],
                      "acceptance_criteria": [f"deliverable {i} is complete"]})
    return {"request": "Build a website for a bakery", "project_type": "website",
            "tasks": tasks}


def run(fake: FakeAnthropic, plan_file: Path, home: Path, code: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENCY_", "ANTHROPIC_"))}
    env.update({"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.url,
                "AGENCY_HOME": str(home), "AGENCY_OUTPUT_DIR": str(home / "out"),
                "AGENCY_EMBEDDED_CONCURRENCY": "4", "PYTHONPATH": str(code)})
    cmd = [sys.executable, "-m", "orchestrator"]
    done = subprocess.run([*cmd, "run", "--plan", str(plan_file)], cwd=code, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise SystemExit(f"agency run failed ({code}):\n{done.stderr[-3000:]}")
    pid = next(x.split()[1] for x in done.stdout.splitlines() if x.endswith("submitted."))
    out = subprocess.run([*cmd, "status", pid, "--json"], cwd=code, env=env,
                         capture_output=True, text=True, check=True).stdout
    data: dict[str, Any] = json.loads(out)
    data["ledger"] = ledger(home / "agency.db")
    return data


def ledger(db: Path) -> list[dict[str, Any]]:
    """Calls, tokens and cost per role and model, and what the same calls would cost if no
    prefix were cached (every cache read and write priced as plain input)."""
    prices = Settings().prices
    rows = []
    with sqlite3.connect(db) as conn:
        for role, model, calls, inp, out, read, write, cost in conn.execute(
                "SELECT role, model, COUNT(*), SUM(input_tokens), SUM(output_tokens), "
                "SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_usd) FROM usage "
                "GROUP BY role, model ORDER BY role, model"):
            names = [n for n in prices if model.startswith(n)]
            p = prices[max(names, key=len)] if names else (0.0, 0.0, 0.0, 0.0)
            uncached = ((inp + read + write) * p[0] + out * p[1]) / 1_000_000
            rows.append({"role": role, "model": model, "calls": calls, "input": inp,
                         "output": out, "cache_read": read, "cache_write": write,
                         "cost_usd": round(cost, 4), "cost_if_uncached_usd": round(uncached, 4)})
    return rows


def per_task(data: dict[str, Any]) -> list[dict[str, Any]]:
    tasks = data["tasks"]
    finished = {t["id"]: datetime.fromisoformat(t["finished_at"]) for t in tasks}
    rows = []
    for t in tasks:
        started = datetime.fromisoformat(t["started_at"])
        tok = t["tokens"]
        rows.append({"index": t["index"], "deps": len(t["dependencies"]),
                     "done_before": sum(1 for f in finished.values() if f <= started),
                     "input_all": tok["input"] + tok["cache_read"] + tok["cache_write"],
                     **tok})
    return rows


def fit(rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    """Least squares: input_all = a + b * deps + c * done_before."""
    xs = [(1.0, float(r["deps"]), float(r["done_before"])) for r in rows]
    ys = [float(r["input_all"]) for r in rows]
    m = [[sum(x[i] * x[j] for x in xs) for j in range(3)] for i in range(3)]
    v = [sum(x[i] * y for x, y in zip(xs, ys, strict=True)) for i in range(3)]
    for col in range(3):  # Gauss-Jordan
        pivot = max(range(col, 3), key=lambda r: abs(m[r][col]))
        m[col], m[pivot], v[col], v[pivot] = m[pivot], m[col], v[pivot], v[col]
        for r in range(3):
            if r != col and m[col][col]:
                f = m[r][col] / m[col][col]
                m[r] = [a - f * b for a, b in zip(m[r], m[col], strict=True)]
                v[r] -= f * v[col]
    a, b, c = (v[i] / m[i][i] for i in range(3))
    return a, b, c


def summary(name: str, data: dict[str, Any]) -> dict[str, Any]:
    tok = data["tokens"]
    every = tok["input"] + tok["cache_read"] + tok["cache_write"]
    rows = per_task(data)
    a, b, c = fit(rows)
    return {"name": name, "status": data["status"], "tasks": len(rows), "tokens": tok,
            "cache_read_share": tok["cache_read"] / every if every else 0.0,
            "cost_usd": data["cost_usd"], "ledger": data["ledger"],
            "cost_if_uncached_usd": round(sum(r["cost_if_uncached_usd"]
                                              for r in data["ledger"]), 4),
            "fit": {"base": a, "per_dependency": b,
                                                 "per_task_done_before": c},
            "per_task": rows}


def show(result: dict[str, Any]) -> None:
    tok, f = result["tokens"], result["fit"]
    print(f"\n== {result['name']}: {result['status']}, {result['tasks']} tasks")
    print(f"input {tok['input']:,}  cache read {tok['cache_read']:,}  cache write "
          f"{tok['cache_write']:,}  output {tok['output']:,}")
    print(f"cache reads are {result['cache_read_share']:.0%} of all input tokens; "
          f"cost ${result['cost_usd']:.4f} per project")
    print(f"the same calls with nothing cached would cost ${result['cost_if_uncached_usd']:.4f}")
    for r in result["ledger"]:
        print(f"  {r['role']:<10} {r['model']:<18} {r['calls']:>4} calls  in {r['input']:>7,}  "
              f"read {r['cache_read']:>8,}  write {r['cache_write']:>7,}  out {r['output']:>7,}"
              f"  ${r['cost_usd']:.4f}")
    print(f"input tokens per task ~ {f['base']:,.0f} + {f['per_dependency']:,.0f} x "
          f"dependencies + {f['per_task_done_before']:,.1f} x tasks done before it")
    print(f"{'task':>4} {'deps':>4} {'done':>4} {'all input':>9} {'read':>7} {'write':>6} "
          f"{'plain':>6}")
    for r in result["per_task"]:
        print(f"{r['index']:>4} {r['deps']:>4} {r['done_before']:>4} {r['input_all']:>9,} "
              f"{r['cache_read']:>7,} {r['cache_write']:>6,} {r['input']:>6,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="a git revision to measure the same plan with")
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic(api_key=KEY) as fake:
        plan_file = Path(tmp) / "plan.json"
        plan_file.write_text(json.dumps(make_plan(args.tasks, args.seed)))
        if args.before:
            tree = Path(tmp) / "before"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.before],
                           cwd=ROOT, check=True, capture_output=True)
            try:
                results.append(summary(f"before ({args.before})",
                                       run(fake, plan_file, Path(tmp) / "b", tree)))
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               check=False, capture_output=True)
        results.append(summary("after", run(fake, plan_file, Path(tmp) / "a", ROOT)))
    for result in results:
        show(result)
    out = ROOT / "bench" / "results" / "cache_run.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nsaved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

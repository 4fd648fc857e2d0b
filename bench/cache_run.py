"""Benchmark: what a project's calls read and cost, on a 30-task plan through the Claude path.

    python bench/cache_run.py [--tasks 30] [--seed 7] [--latency 0.3] [--only NAME]

Runs one project from a generated 30-task plan file through `agency run --plan` (embedded, the
real `anthropic` SDK) against the strict local Messages API server of tests/fake_anthropic.py
once per configuration, each against a fresh server: the current default models
(claude-sonnet-5-5 / claude-haiku-5-5) as they are, without the warm-up of the shared prefix,
and with its 1-hour cache life; the legacy models (claude-sonnet-4-6 / claude-haiku-4-5) with
and without the warm-up; and the 5-minute against the 1-hour life with the server's cache
lives compressed 100 times (5 minutes -> 3 s), so that a run of short answers meets the gaps
a project of real answers meets: on the same plan, and on a chain of 8 tasks whose first turns
take 4 s (the prefix waits between reads longer than the compressed 5 minutes). The server
applies each model's minimum cacheable prefix and tokenizer, makes an entry readable only once
the answer that writes it begins, and answers each call after `--latency` seconds, so that
siblings overlap as real calls do.

Per configuration: cost per project and per task, the share of input tokens read from the
cache, input and output tokens per task, cache writes by life (as the server reported them),
warm-ups, requests the server refused (the API would have), wall time; per role and model the
ledger; a least-squares fit of each task's input against its dependencies and the tasks done
before it. Prints tables and saves bench/results/cache_run.json.
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
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.domain.constants import AgentType
from orchestrator.domain.pricing import price_for
from orchestrator.domain.settings import Settings
from orchestrator.llm.cache import PromptCache
from tests.fake_anthropic import FakeAnthropic, Faults

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


def make_chain(size: int, tokens: int) -> dict[str, Any]:
    """Tasks one after another, each estimated at `tokens`: a project whose prefix waits
    between reads (AGENCY_CACHE_TTL=auto gives it an hour when it spans over five minutes)."""
    plan = make_plan(size, 0)
    for i, task in enumerate(plan["tasks"]):
        task.update(dependencies=[i - 1] if i else [], estimated_tokens=tokens)
    return plan


def run(fake: FakeAnthropic, plan_file: Path, home: Path, code: Path,
        extra: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENCY_", "ANTHROPIC_"))}
    env.update({"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.url,
                "AGENCY_ENV_FILE": "", "AGENCY_HOME": str(home),
                "AGENCY_OUTPUT_DIR": str(home / "out"), "AGENCY_EMBEDDED_CONCURRENCY": "4",
                "PYTHONPATH": str(code), **extra})
    cmd = [sys.executable, "-m", "orchestrator"]
    started = time.monotonic()
    done = subprocess.run([*cmd, "run", "--plan", str(plan_file)], cwd=code, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"agency run failed ({code}, {extra}):\n{done.stderr[-3000:]}")
    pid = next(x.split()[1] for x in done.stdout.splitlines() if x.endswith("submitted."))
    out = subprocess.run([*cmd, "status", pid, "--json"], cwd=code, env=env,
                         capture_output=True, text=True, check=True).stdout
    data: dict[str, Any] = json.loads(out)
    data["ledger"] = ledger(home / "agency.db")
    data["seconds"] = seconds
    data["server"] = server_side(fake)
    return data


def server_side(fake: FakeAnthropic) -> dict[str, Any]:
    """What the test server saw: cache writes by life, refusals, token counts."""
    usage = [m["usage"] for m in fake.messages]
    return {"messages": len(usage),
            "cache_write_5m": sum(u["cache_creation"]["ephemeral_5m_input_tokens"]
                                  for u in usage),
            "cache_write_1h": sum(u["cache_creation"]["ephemeral_1h_input_tokens"]
                                  for u in usage),
            "refused": len(fake.refused), "token_counts": len(fake.counted)}


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
            price = price_for(prices, model)
            rate_in, rate_out = (price.input, price.output) if price else (0.0, 0.0)
            uncached = ((inp + read + write) * rate_in + out * rate_out) / 1_000_000
            rows.append({"role": role, "model": model, "calls": calls, "input": inp,
                         "output": out, "cache_read": read, "cache_write": write,
                         "cost_usd": round(cost, 6), "cost_if_uncached_usd": round(uncached, 6)})
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


def summary(config: Config, data: dict[str, Any]) -> dict[str, Any]:
    """One configuration's figures (tokens per task over the plan's tasks)."""
    tok = data["tokens"]
    every = tok["input"] + tok["cache_read"] + tok["cache_write"]
    rows = per_task(data)
    a, b, c = fit(rows)
    agents = [r for r in data["ledger"] if r["role"] == "agent"]
    agent_in = sum(r["input"] + r["cache_read"] + r["cache_write"] for r in agents)
    return {"name": config.name, "env": config.env, "cache_lives_s": config.lives,
            "plan": "chain" if config.chain else "dag",
            "status": data["status"], "tasks": len(rows), "tokens": tok,
            "cache_read_share": tok["cache_read"] / every if every else 0.0,
            "cost_usd": data["cost_usd"], "cost_per_task_usd": data["cost_usd"] / len(rows),
            "input_per_task": every / len(rows), "agent_input_per_task": agent_in / len(rows),
            "output_per_task": tok["output"] / len(rows),
            "warmups": sum(r["calls"] for r in data["ledger"] if r["role"] == "warmup"),
            "seconds": round(data["seconds"], 1), "server": data["server"],
            "ledger": data["ledger"],
            "cost_if_uncached_usd": round(sum(r["cost_if_uncached_usd"]
                                              for r in data["ledger"]), 6),
            "fit": {"base": a, "per_dependency": b, "per_task_done_before": c},
            "per_task": rows}


HEAD = (f"{'configuration':<34} {'cost $':>9} {'$/task':>8} {'read share':>10} "
        f"{'in/task':>8} {'out/task':>8} {'write 5m':>9} {'write 1h':>9} {'warm':>4} "
        f"{'refused':>7} {'s':>5}")


def row(r: dict[str, Any]) -> str:
    server = r["server"]
    return (f"{r['name']:<34} {r['cost_usd']:>9.4f} {r['cost_per_task_usd']:>8.5f} "
            f"{r['cache_read_share']:>10.1%} {r['input_per_task']:>8,.0f} "
            f"{r['output_per_task']:>8,.0f} {server['cache_write_5m']:>9,} "
            f"{server['cache_write_1h']:>9,} {r['warmups']:>4} {server['refused']:>7} "
            f"{r['seconds']:>5.0f}")


def show(result: dict[str, Any]) -> None:
    tok, f = result["tokens"], result["fit"]
    print(f"\n== {result['name']}: {result['status']}, {result['tasks']} tasks, "
          f"{result['seconds']:.0f} s")
    print(f"input {tok['input']:,}  cache read {tok['cache_read']:,}  cache write "
          f"{tok['cache_write']:,}  output {tok['output']:,}")
    print(f"cache reads are {result['cache_read_share']:.0%} of all input tokens; "
          f"cost ${result['cost_usd']:.4f} per project (with nothing cached: "
          f"${result['cost_if_uncached_usd']:.4f})")
    for r in result["ledger"]:
        print(f"  {r['role']:<10} {r['model']:<18} {r['calls']:>4} calls  in {r['input']:>7,}  "
              f"read {r['cache_read']:>9,}  write {r['cache_write']:>8,}  out {r['output']:>7,}"
              f"  ${r['cost_usd']:.4f}")
    print(f"input tokens per task ~ {f['base']:,.0f} + {f['per_dependency']:,.0f} x "
          f"dependencies + {f['per_task_done_before']:,.1f} x tasks done before it")


@dataclass(frozen=True)
class Config:
    name: str
    env: dict[str, str]
    lives: tuple[float, float] | None = None  # the server's cache lives (5m, 1h), in seconds
    chain: bool = False  # the chain of slow tasks instead of the 30-task plan


DEFAULTS = {"AGENCY_ORCHESTRATOR_MODEL": "claude-sonnet-5-5",
            "AGENCY_AGENT_MODEL": "claude-haiku-5-5"}
LEGACY = {"AGENCY_ORCHESTRATOR_MODEL": "claude-sonnet-4-6",
          "AGENCY_AGENT_MODEL": "claude-haiku-4-5"}
# Lives compressed 100 times (5 minutes -> 3 s, an hour -> 36 s), so that a run of short
# answers meets the gaps between reads of the prefix that a project of real answers meets.
COMPRESSED = (3.0, 36.0)
# The chain: 8 tasks estimated at 8,000 tokens (about 6.4 minutes of work by the plan's
# estimate, so auto gives it the hour), each first turn taking CHAIN_SLOW seconds: longer than
# the compressed 5-minute life, so the prefix waits past it between tasks.
CHAIN_TASKS, CHAIN_TOKENS, CHAIN_SLOW = 8, 8000, 4.0
CONFIGS = [
    Config("defaults", DEFAULTS),
    Config("defaults, AGENCY_CACHE_WARMUP=false", {**DEFAULTS, "AGENCY_CACHE_WARMUP": "false"}),
    Config("defaults, AGENCY_CACHE_TTL=1h", {**DEFAULTS, "AGENCY_CACHE_TTL": "1h"}),
    Config("legacy (sonnet-4-6 / haiku-4-5)", LEGACY),
    Config("legacy, AGENCY_CACHE_WARMUP=false", {**LEGACY, "AGENCY_CACHE_WARMUP": "false"}),
    Config("defaults, 5m, lives /100", {**DEFAULTS, "AGENCY_CACHE_TTL": "5m"}, COMPRESSED),
    Config("defaults, 1h, lives /100", {**DEFAULTS, "AGENCY_CACHE_TTL": "1h"}, COMPRESSED),
    Config("chain, auto (1h), lives /100", DEFAULTS, COMPRESSED, chain=True),
    Config("chain, 5m, lives /100", {**DEFAULTS, "AGENCY_CACHE_TTL": "5m"}, COMPRESSED,
           chain=True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--latency", type=float, default=0.3,
                        help="seconds the server takes per answer (siblings overlap)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only the configurations whose name starts with this")
    args = parser.parse_args()
    configs = [c for c in CONFIGS if not args.only
               or any(c.name.startswith(o) for o in args.only)]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        plans = {False: Path(tmp) / "plan.json", True: Path(tmp) / "chain.json"}
        plans[False].write_text(json.dumps(make_plan(args.tasks, args.seed)))
        plans[True].write_text(json.dumps(make_chain(CHAIN_TASKS, CHAIN_TOKENS)))
        for n, config in enumerate(configs):
            slow = {"Step": CHAIN_SLOW} if config.chain else {}
            faults = Faults(latency=args.latency, slow_tasks=slow)
            with FakeAnthropic(api_key=KEY, faults=faults) as fake:
                if config.lives is not None:
                    fake.cache = PromptCache(ttl=config.lives[0], ttl_1h=config.lives[1])
                data = run(fake, plans[config.chain], Path(tmp) / f"run{n}", ROOT, config.env)
            results.append(summary(config, data))
            print(row(results[-1]) if n else f"{HEAD}\n{row(results[-1])}", flush=True)
    for result in results:
        show(result)
    print(f"\n{HEAD}")
    for result in results:
        print(row(result))
    out = ROOT / "bench" / "results" / "cache_run.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nsaved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Benchmark: task throughput, ours beside plain Celery, in the same run on the same Redis.

    python bench/throughput.py [--projects 50] [--tasks 20] [--shape random]
                               [--json bench/results/throughput.json]

Ours: `--projects` plan projects of `--tasks` tasks each (a `bench/shapes.py` shape, the tasks
spread round-robin over the ten agent queues), submitted at once as
`agency run --plan FILE --no-wait` does (the store insert and the planning message; planning
validates and dispatches the given plan, no decomposition), on the production topology (the
Procfile's eleven worker pools under honcho, Redis, PostgreSQL). Tasks are zero-latency: the
offline model with AGENCY_OFFLINE_LATENCY=0, AGENCY_REVIEWED_AGENTS=none and
AGENCY_AGENT_MAX_TURNS=1 (one model call per task, no review). Throughput = tasks / (last
task's finished_at - first task's started_at), the store's timestamps (the claim, and the
completion inside its transaction; see bench/dispatch_gap.py). Planning and integration run on
the `orchestrator` pool meanwhile, as they would.

Plain: a Celery `group` of as many no-op tasks (bench/plain_celery.py), round-robin over the
same ten agent queues, eleven worker processes (the same queues, the same threads per process,
the eleventh, `orchestrator`, idle) on another database of the same Redis server. Throughput =
tasks / (last no-op's end - first no-op's start).

CPU: utime + stime from /proc/<pid>/stat, before and after each system's run, of its worker
processes (ours also split by pool), of the PostgreSQL backends connected to our database
(backends that exit during the run are not counted), of the whole redis-server (shared with
whatever else uses it), and this process. Ours also reads PostgreSQL's counters for our
database (pg_stat_database: transactions, rows read and written) to count store work per task.

`--profile` (needs `py-spy` on PATH, e.g. `pip install py-spy`; it perturbs the run a little)
samples one agent pool (marketing) during our run, only the thread holding the GIL (`--gil`:
Python's CPU, not threads waiting), and prints where its CPU goes: the functions of
orchestrator/ and workers/ by inclusive share of the samples, and the packages the samples
were in (their innermost frame).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import fleets as fx
from bench import shapes

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PG_COUNTERS = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted",
               "tup_updated", "tup_deleted")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def process_groups(fl: fx.Fleets) -> dict[str, list[int]]:
    """Which processes to account, by group: ours by pool, plain, PostgreSQL, Redis."""
    from bench.load_run import _descendants

    groups: dict[str, list[int]] = {}
    for pid in _descendants(fl.fleet_pid):
        args = _cmdline(pid)
        if "-Q" in args:
            queue = args[args.index("-Q") + 1]
            groups.setdefault("ours: orchestrator" if queue == "orchestrator"
                              else "ours: agent pools", []).append(pid)
    for root in fl.plain_pids:
        for pid in [root, *_descendants(root)]:
            args = _cmdline(pid)
            if "-Q" in args:
                queue = args[args.index("-Q") + 1]
                groups.setdefault("plain: orchestrator (idle)" if queue == "orchestrator"
                                  else "plain: worker pools", []).append(pid)
    database = os.environ["AGENCY_DATABASE_URL"].rsplit("/", 1)[1]
    port = f":{urlsplit(os.environ['AGENCY_BROKER_URL']).port or 6379}"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        line = " ".join(_cmdline(int(entry.name)))
        if line.startswith("postgres:") and f" {database} " in f"{line} ":
            groups.setdefault("postgres backends (our db)", []).append(int(entry.name))
        elif "redis-server" in line and port in line:
            groups.setdefault("redis-server (shared)", []).append(int(entry.name))
    return groups


def cpu_snapshot(fl: fx.Fleets) -> dict[str, dict[int, float]]:
    snap = {name: {pid: cpu_seconds(pid) for pid in pids}
            for name, pids in process_groups(fl).items()}
    times = os.times()
    snap["this process"] = {os.getpid(): times.user + times.system}
    return snap


def cpu_delta(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
              ) -> dict[str, float]:
    """CPU seconds per group between the snapshots (a process new in `after` counts whole)."""
    return {name: round(sum(s - before.get(name, {}).get(pid, 0.0) for pid, s in pids.items()),
                        3) for name, pids in after.items()}


def pg_counters() -> dict[str, int]:
    """The database's counters, and per table its sequential scans and the rows they read."""
    import psycopg

    url = os.environ["AGENCY_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT {', '.join(PG_COUNTERS)} FROM pg_stat_database "
                           "WHERE datname = current_database()").fetchone()
        counters = dict(zip(PG_COUNTERS, (int(v) for v in row or ()), strict=False))
        for table, scans, rows in conn.execute(
                "SELECT relname, seq_scan, seq_tup_read FROM pg_stat_user_tables").fetchall():
            counters[f"seq_scan:{table}"] = int(scans or 0)
            counters[f"seq_tup_read:{table}"] = int(rows or 0)
    return counters


class Profiler:
    """`py-spy record` of one process for the length of a `with` block (raw collapsed stacks)."""

    def __init__(self, pid: int | None, out: Path) -> None:
        self.pid, self.out = pid, out
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        spy = shutil.which("py-spy")
        if self.pid is not None and spy:
            self.proc = subprocess.Popen(
                [spy, "record", "--pid", str(self.pid), "--rate", "200", "--gil", "--format", "raw",
                 "--nolineno", "--output", str(self.out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Inclusive shares of our functions, and the packages of the innermost frames."""
    ours: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines() if path.exists() else []:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        seen = set()
        for frame in frames:
            if ("orchestrator/" in frame or "workers/" in frame) and frame not in seen:
                seen.add(frame)
                ours[frame] += count
        leaves[_package(frames[-1])] += count
    share = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {"samples": total,
            "ours_inclusive_pct": {f: share(n) for f, n in ours.most_common(top)},
            "innermost_package_pct": {p: share(n) for p, n in leaves.most_common(top)}}


def _package(frame: str) -> str:
    """`fn (site-packages/psycopg/cursor.py)` -> psycopg; ours -> orchestrator/agent etc."""
    path = frame[frame.rfind("(") + 1:].rstrip(")")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    for mine in ("orchestrator/", "workers/"):
        if mine in path:
            rest = path.split(mine, 1)[1]
            return mine + (rest.split("/", 1)[0] if "/" in rest else rest)
    return "python stdlib" if "/lib/python" in path else path or "?"


def profiled_pid(fl: fx.Fleets, queue: str = "marketing") -> int | None:
    from bench.load_run import _descendants

    for pid in _descendants(fl.fleet_pid):
        args = _cmdline(pid)
        if "-Q" in args and args[args.index("-Q") + 1] == queue:
            return pid
    return None


def shape_of(name: str, tasks: int) -> shapes.Deps:
    if name == "random":
        return shapes.random_dag(tasks, seed=tasks)
    if name == "chain":
        return shapes.chain(tasks)
    return [[] for _ in range(tasks)]  # flat: independent tasks, as the plain group


def ours_once(fl: fx.Fleets, projects: int, deps: shapes.Deps, shape: str, timeout: float,
              profile: Path | None = None) -> dict[str, Any]:
    plan_path = fx.write_plan(fl.home, shapes.plan(f"{shape}-{len(deps)}", deps))
    pg_before = pg_counters()
    cpu_before = cpu_snapshot(fl)
    with Profiler(profiled_pid(fl) if profile else None, profile or Path()):
        started = time.monotonic()
        ids = [fx.submit(fl, plan_path) for _ in range(projects)]
        submitted = time.monotonic() - started
        statuses = fx.wait_ended(fl, ids, timeout, poll=0.5)
        all_ended = time.monotonic() - started
    cpu = cpu_delta(cpu_before, cpu_snapshot(fl))
    time.sleep(1.5)  # PostgreSQL flushes its backends' counters at most once a second
    pg_after = pg_counters()
    starts, finishes, retried, unfinished = [], [], 0, 0
    for project_id in ids:
        for task in fl.rt.store.tasks(project_id):
            if task.started_at is None or task.finished_at is None:
                unfinished += 1
                continue
            starts.append(fx.ts(task.started_at))
            finishes.append(fx.ts(task.finished_at))
            retried += task.attempts > 1
    done = len(finishes)
    window = max(finishes) - min(starts) if done else float("nan")
    return {
        "tasks": done, "tasks_unfinished": unfinished, "tasks_retried": retried,
        "window_s": round(window, 3), "tasks_per_s": round(done / window, 2) if done else 0,
        "submit_s": round(submitted, 3), "all_projects_ended_s": round(all_ended, 2),
        "statuses": {s: list(statuses.values()).count(s) for s in sorted(set(
            statuses.values()))},
        "cpu_s": cpu, "pg": {k: pg_after[k] - pg_before.get(k, 0) for k in pg_after},
        "profile": summarize_profile(profile) if profile else None}


def plain_once(fl: fx.Fleets, count: int, queues: list[str], timeout: float) -> dict[str, Any]:
    cpu_before = cpu_snapshot(fl)
    started = time.monotonic()
    spans, sent_from, sent_to = fl.plain.run_group(queues, count, timeout=timeout)
    all_ended = time.monotonic() - started
    cpu = cpu_delta(cpu_before, cpu_snapshot(fl))
    window = max(e for _, e in spans) - min(s for s, _ in spans)
    return {"tasks": len(spans), "window_s": round(window, 3),
            "tasks_per_s": round(len(spans) / window, 2), "submit_s": round(sent_to - sent_from,
                                                                            3),
            "all_ended_s": round(all_ended, 2), "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=20, help="tasks per project (1 to 60)")
    parser.add_argument("--shape", choices=("random", "chain", "flat"), default="random",
                        help="each project's graph: shapes.random_dag(tasks, seed=tasks), a "
                             "chain, or independent tasks")
    parser.add_argument("--runs", type=int, default=1, help="runs of each system, alternating")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run")
    parser.add_argument("--profile", action="store_true",
                        help="sample one agent pool with py-spy during our run")
    parser.add_argument("--fresh-db", action="store_true",
                        help="drop and recreate AGENCY_DATABASE_URL's database first (the "
                             "store grows with every run otherwise)")
    parser.add_argument("--json", default=str(fx.REPO / "bench/results/throughput.json"))
    args = parser.parse_args()
    if args.profile and not shutil.which("py-spy"):
        parser.error("--profile needs py-spy on PATH (pip install py-spy)")
    if not 1 <= args.tasks <= 60:
        parser.error("--tasks must be 1 to 60 (a plan holds at most 60 tasks)")
    home = fx.new_home("agency-throughput-")
    env = fx.configure(home)
    deps = shape_of(args.shape, args.tasks)
    total = args.projects * args.tasks
    ours: list[dict[str, Any]] = []
    plain: list[dict[str, Any]] = []
    with fx.fleets(home, env, args.fresh_db) as fl:
        fx.submit(fl, fx.write_plan(home, shapes.plan("warm-up", shapes.chain(3))))
        fl.plain.run_group(list(shapes.AGENTS), 30)
        time.sleep(3)  # the warm-up project's integration
        for n in range(args.runs):
            profile = home / f"profile-{n + 1}.txt" if args.profile else None
            ours.append(ours_once(fl, args.projects, deps, args.shape, args.timeout, profile))
            plain.append(plain_once(fl, total, list(shapes.AGENTS), args.timeout))
        concurrency = fl.concurrency
    report(args, total, concurrency, ours, plain, home)


def _mean(runs: list[dict[str, Any]], key: str) -> float:
    return sum(float(r[key]) for r in runs) / len(runs)


def report(args: argparse.Namespace, total: int, concurrency: dict[str, int],
           ours: list[dict[str, Any]], plain: list[dict[str, Any]], home: Path) -> None:
    threads = sorted(set(concurrency.values()))
    print(f"Throughput: {args.projects} projects x {args.tasks} tasks ({args.shape}) beside a "
          f"plain group of {total} no-ops; {len(concurrency)} worker processes each, threads "
          f"per process: " + ", ".join(f"{q} {c}" for q, c in concurrency.items()
                                       if q == "orchestrator") + f", agents {threads[-1]}")
    print(fx.settings_line())
    rows = []
    for name, runs in (("ours", ours), ("plain Celery", plain)):
        for n, r in enumerate(runs, 1):
            workers = sum(v for k, v in r["cpu_s"].items() if k.startswith(name.split()[0]))
            rows.append((f"{name} #{n}", r, workers))
    print(f"\n{'':<16}{'tasks':>7}{'window s':>10}{'tasks/s':>10}{'worker CPU s':>14}"
          f"{'CPU ms/task':>13}{'pg CPU s':>10}{'redis CPU s':>13}")
    for label, r, workers in rows:
        print(f"{label:<16}{r['tasks']:>7}{r['window_s']:>10.2f}{r['tasks_per_s']:>10.1f}"
              f"{workers:>14.2f}{1000 * workers / max(r['tasks'], 1):>13.1f}"
              f"{r['cpu_s'].get('postgres backends (our db)', 0):>10.2f}"
              f"{r['cpu_s'].get('redis-server (shared)', 0):>13.2f}")
    ratio = round(_mean(ours, "tasks_per_s") / _mean(plain, "tasks_per_s"), 3)
    print(f"ratio ours / plain tasks/s: {ratio}   (target >= 0.70)")
    for n, r in enumerate(ours, 1):
        pg = r["pg"]
        tasks = max(r["tasks"], 1)
        print(f"\nours #{n}: submitted in {r['submit_s']} s, all projects ended (integration "
              f"included) after {r['all_projects_ended_s']} s; statuses {r['statuses']}; "
              f"{r['tasks_retried']} tasks retried, {r['tasks_unfinished']} unfinished")
        print("  CPU s by process group: " + ", ".join(
            f"{k} {v:.2f}" for k, v in r["cpu_s"].items() if not k.startswith("plain")))
        print(f"  store work per task (pg_stat_database, planning and integration included): "
              f"{pg['xact_commit'] / tasks:.1f} commits, {pg['tup_returned'] / tasks:.0f} rows "
              f"scanned, {pg['tup_fetched'] / tasks:.0f} fetched, {pg['tup_inserted'] / tasks:.1f}"
              f" inserted, {pg['tup_updated'] / tasks:.1f} updated")
        scans = sorted(((k.split(":", 1)[1], v, pg.get(f"seq_tup_read:{k.split(':', 1)[1]}", 0))
                        for k, v in pg.items() if k.startswith("seq_scan:") and v),
                       key=lambda x: -x[2])[:5]
        if scans:
            print("  sequential scans (table: scans, rows read): " + ", ".join(
                f"{t}: {n}, {rows}" for t, n, rows in scans))
        prof = r.get("profile")
        if prof and prof["samples"]:
            print(f"  profile of the marketing pool ({prof['samples']} samples): innermost "
                  "package " + ", ".join(f"{k} {v}%" for k, v in
                                         prof["innermost_package_pct"].items()))
            print("  our functions, inclusive:")
            for frame, pct in prof["ours_inclusive_pct"].items():
                print(f"    {pct:>5}%  {frame}")
    result = {"projects": args.projects, "tasks_per_project": args.tasks, "shape": args.shape,
              "total_tasks": total, "settings": fx.settings_line(), "concurrency": concurrency,
              "tasks_per_s": {"ours": round(_mean(ours, "tasks_per_s"), 2),
                              "plain": round(_mean(plain, "tasks_per_s"), 2)},
              "ratio": ratio, "target_ratio": 0.7, "runs": {"ours": ours, "plain": plain},
              "logs": str(home)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nJSON: {args.json}; worker logs: {home}")


if __name__ == "__main__":
    main()

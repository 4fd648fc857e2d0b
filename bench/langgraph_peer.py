"""The peer benchmark: the same task graphs run by LangGraph, to set its makespan beside ours.

Runs in its own environment (LangGraph is not a dependency of the project):

    bash bench/setup_langgraph.sh
    bench/.venv-langgraph/bin/python bench/langgraph_peer.py \
        [--input bench/results/makespan.json] [--json bench/results/langgraph.json] [--runs 1]

Each shape becomes a `StateGraph` with one node per task. A node sleeps for its task's duration
(`asyncio.sleep` in an async node, run with `ainvoke`; `--mode sync` uses `time.sleep` in a
thread pool instead). Edges follow the dependencies: a task with one parent gets
`add_edge(parent, task)`, a task with several gets one `add_edge([parents...], task)` — a
barrier that fires once all of them have finished (several plain edges would run the task once
per parent that finishes in a different superstep; `probe_semantics` shows it). Tasks without
parents hang off START, tasks without children go to END.

Durations: with `--input`, each shape's measured `durations` (seconds per task) from our own
makespan benchmark's JSON. Without it, the shapes of `bench/shapes.py` with synthetic ones:
task i sleeps `random.Random(i).uniform(0.2, 0.6)` seconds, whatever the shape (deterministic).

Each run checks the schedule: every node ran exactly once, and started after all its
dependencies had ended. It also records the superstep each node ran in and whether that is the
task's depth (level), i.e. whether LangGraph ran the graph level-synchronously.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import operator
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

# bench/ is not a package: shapes.py is found beside this file, however the script is run.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from shapes import (
    SHAPES,
    Deps,
    critical_path_s,
    level_synchronous_s,
    levels,
    sequential_s,
)

# (task index, start, end, superstep), times from time.perf_counter().
Run = tuple[int, float, float, int]


class State(TypedDict):
    runs: Annotated[list[Run], operator.add]


@dataclass
class LangGraph:
    """The parts of LangGraph used here, imported at run time so that the project's own
    environment (linted and type-checked without LangGraph) need not have it."""

    StateGraph: Any
    START: str
    END: str
    get_config: Any
    version: str


def load_langgraph() -> LangGraph:
    try:
        graph = importlib.import_module("langgraph.graph")
        config = importlib.import_module("langgraph.config")
    except ImportError:
        sys.exit("LangGraph is not installed here: run bash bench/setup_langgraph.sh, then "
                 "bench/.venv-langgraph/bin/python bench/langgraph_peer.py")
    from importlib.metadata import version

    return LangGraph(graph.StateGraph, graph.START, graph.END, config.get_config,
                     version("langgraph"))


def synthetic_durations(size: int) -> list[float]:
    return [random.Random(i).uniform(0.2, 0.6) for i in range(size)]


def node_name(i: int) -> str:
    return f"t{i:03d}"


def make_node(lg: LangGraph, i: int, duration: float, mode: str) -> Any:
    def step() -> int:
        return int(lg.get_config()["metadata"]["langgraph_step"])

    if mode == "async":
        async def anode(state: State) -> dict[str, list[Run]]:
            start = time.perf_counter()
            await asyncio.sleep(duration)
            return {"runs": [(i, start, time.perf_counter(), step())]}
        return anode

    def node(state: State) -> dict[str, list[Run]]:
        start = time.perf_counter()
        time.sleep(duration)
        return {"runs": [(i, start, time.perf_counter(), step())]}
    return node


def build(lg: LangGraph, deps: Deps, durations: list[float], mode: str,
          join: bool = True) -> Any:
    """The compiled graph of a shape. `join=False` uses one plain edge per parent instead of a
    barrier edge (only for `probe_semantics`: it does not honour the dependencies)."""
    builder = lg.StateGraph(State)
    for i, duration in enumerate(durations):
        builder.add_node(node_name(i), make_node(lg, i, duration, mode))
    has_children = {p for parents in deps for p in parents}
    for i, parents in enumerate(deps):
        if not parents:
            builder.add_edge(lg.START, node_name(i))
        elif len(parents) == 1 or not join:
            for p in parents:
                builder.add_edge(node_name(p), node_name(i))
        else:
            builder.add_edge([node_name(p) for p in parents], node_name(i))
        if i not in has_children:
            builder.add_edge(node_name(i), lg.END)
    return builder.compile()


def invoke(graph: Any, size: int, mode: str) -> tuple[float, list[Run]]:
    """Runs the graph once: its wall time (graph built beforehand) and the nodes' runs."""
    # A superstep per level: the default limit of 25 would stop deep graphs.
    config: dict[str, Any] = {"recursion_limit": size + 10}
    if mode == "sync":
        # The default thread pool has min(32, cores + 4) workers: 6 on two cores, which would
        # cap a fan-out. One thread per task lets every ready node run.
        config["max_concurrency"] = size
        start = time.perf_counter()
        out = graph.invoke({"runs": []}, config)
    else:
        start = time.perf_counter()
        out = asyncio.run(graph.ainvoke({"runs": []}, config))
    wall = time.perf_counter() - start
    return wall, list(out["runs"])


def peak_concurrency(runs: list[Run]) -> int:
    events = sorted([(s, 1) for _, s, _, _ in runs] + [(e, -1) for _, _, e, _ in runs],
                    key=lambda ev: (ev[0], ev[1]))
    peak = now = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return peak


def check(deps: Deps, runs: list[Run]) -> dict[str, Any]:
    """Asserts every task ran once and after all its dependencies ended; reports whether the
    supersteps were the tasks' levels."""
    count = [0] * len(deps)
    for i, *_ in runs:
        count[i] += 1
    assert count == [1] * len(deps), f"tasks not run exactly once: {count}"
    by_task = {i: (s, e, step) for i, s, e, step in runs}
    slack = min((by_task[i][0] - by_task[p][1] for i, parents in enumerate(deps)
                 for p in parents), default=0.0)
    assert slack >= 0, f"a task started {-slack:.3f} s before a dependency ended"
    first = min(step for *_, step in runs)
    steps = [by_task[i][2] - first for i in range(len(deps))]
    return {"min_gap_after_deps_s": round(slack, 4), "supersteps": max(steps) + 1,
            "superstep_is_level": steps == levels(deps),
            "peak_concurrency": peak_concurrency(runs)}


def probe_concurrency(lg: LangGraph, width: int = 16, duration: float = 0.3) -> dict[str, Any]:
    """`width` independent nodes of `duration` s each: concurrent if the wall time is near
    `duration`. Both modes; sync also with the default thread pool."""
    deps: Deps = [[] for _ in range(width)]
    out: dict[str, Any] = {"width": width, "duration_s": duration}
    for mode in ("async", "sync"):
        graph = build(lg, deps, [duration] * width, mode)
        wall, runs = invoke(graph, width, mode)
        out[mode] = {"wall_s": round(wall, 3), "peak_concurrency": peak_concurrency(runs)}
    graph = build(lg, deps, [duration] * width, "sync")
    start = time.perf_counter()
    runs = graph.invoke({"runs": []})["runs"]
    out["sync_default_pool"] = {"wall_s": round(time.perf_counter() - start, 3),
                                "peak_concurrency": peak_concurrency(runs)}
    return out


def probe_semantics(lg: LangGraph) -> dict[str, Any]:
    """c needs a (0.1 s) and x (0.1 s, after b): its parents finish in different supersteps.
    With plain edges c runs once per superstep in which a parent finished, the first time
    before x has ended; with a barrier edge `add_edge([a, x], c)` once, after both."""
    deps: Deps = [[], [], [1], [0, 2]]  # a, b, x (after b), c (after a and x)
    durations = [0.1, 0.1, 0.1, 0.05]
    out: dict[str, Any] = {}
    for join in (False, True):
        _, runs = invoke(build(lg, deps, durations, "async", join=join), len(deps), "async")
        x_end = next(e for i, _, e, _ in runs if i == 2)
        c_starts = [s for i, s, _, _ in runs if i == 3]
        out["barrier_edge" if join else "plain_edges"] = {
            "runs_of_c": len(c_starts),
            "c_started_before_x_ended": any(s < x_end for s in c_starts)}
    return out


def load_shapes(path: Path | None) -> list[tuple[str, Deps, list[float]]]:
    if path is None:
        return [(name, deps, synthetic_durations(len(deps))) for name, deps in SHAPES.items()]
    data = json.loads(path.read_text())
    shapes = []
    for shape in data["shapes"]:
        deps = [list(map(int, parents)) for parents in shape["deps"]]
        durations = [float(d) for d in shape["durations"]]
        if len(deps) != len(durations):
            sys.exit(f"{path}: shape {shape['name']} has {len(deps)} tasks but "
                     f"{len(durations)} durations")
        shapes.append((str(shape["name"]), deps, durations))
    return shapes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=Path, help="makespan.json of our own benchmark: its "
                        "shapes and measured durations (default: bench/shapes.py, synthetic)")
    parser.add_argument("--json", type=Path, help="where to save the results")
    parser.add_argument("--runs", type=int, default=1, help="runs per shape (median reported)")
    parser.add_argument("--mode", choices=["async", "sync"], default="async",
                        help="async nodes with asyncio.sleep (default) or sync with time.sleep")
    parser.add_argument("--shape", action="append", help="only this shape (repeatable)")
    args = parser.parse_args(argv)

    lg = load_langgraph()
    shapes = load_shapes(args.input)
    if args.shape:
        shapes = [s for s in shapes if s[0] in args.shape]
    print(f"LangGraph {lg.version}, Python {platform.python_version()}, mode {args.mode}, "
          f"{args.runs} run(s) per shape, durations from "
          f"{args.input or 'bench/shapes.py (synthetic)'}")
    concurrency = probe_concurrency(lg)
    print(f"fan-out probe ({concurrency['width']} x {concurrency['duration_s']} s): "
          + ", ".join(f"{k} {v['wall_s']} s (peak {v['peak_concurrency']})"
                      for k, v in concurrency.items() if isinstance(v, dict)))
    semantics = probe_semantics(lg)
    print(f"edge semantics: {json.dumps(semantics)}")

    rows = []
    header = (f"{'shape':<15}{'tasks':>6}{'levels':>7}{'bound s':>9}{'level-sync s':>13}"
              f"{'seq s':>8}{'LangGraph s':>12}{'/bound':>8}{'/level-sync':>12}")
    print(header)
    for name, deps, durations in shapes:
        graph = build(lg, deps, durations, args.mode)
        walls = []
        checks = []
        for _ in range(args.runs):
            wall, runs = invoke(graph, len(deps), args.mode)
            walls.append(wall)
            checks.append(check(deps, runs))
        bound = critical_path_s(deps, durations)
        level_sync = level_synchronous_s(deps, durations)
        makespan = statistics.median(walls)
        row = {"name": name, "tasks": len(deps), "levels": max(levels(deps), default=-1) + 1,
               "deps": deps, "durations": durations,
               "critical_path_s": round(bound, 4), "level_synchronous_s": round(level_sync, 4),
               "sequential_s": round(sequential_s(durations), 4),
               "langgraph_makespan_s": round(makespan, 4),
               "langgraph_runs_s": [round(w, 4) for w in walls],
               "ratio_to_bound": round(makespan / bound, 3) if bound else None,
               "ratio_to_level_synchronous": round(makespan / level_sync, 3) if level_sync
               else None,
               "checks": checks}
        rows.append(row)
        print(f"{name:<15}{row['tasks']:>6}{row['levels']:>7}{bound:>9.2f}{level_sync:>13.2f}"
              f"{row['sequential_s']:>8.2f}{makespan:>12.2f}{row['ratio_to_bound']:>8.2f}"
              f"{row['ratio_to_level_synchronous']:>12.2f}"
              + ("" if all(c["superstep_is_level"] for c in checks)
                 else "  (supersteps differ from levels)"))

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        result = {"peer": "langgraph", "langgraph_version": lg.version,
                  "python_version": platform.python_version(), "mode": args.mode,
                  "runs": args.runs,
                  "durations": str(args.input) if args.input else
                  "synthetic: task i sleeps random.Random(i).uniform(0.2, 0.6) s",
                  "concurrency_probe": concurrency, "edge_semantics": semantics,
                  "shapes": rows}
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

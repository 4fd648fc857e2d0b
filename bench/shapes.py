"""The graph shapes the scheduling benchmarks run, and the bounds a schedule is judged by.

A shape is a list of dependency lists: `deps[i]` are the indices task i depends on (always
earlier ones). `plan(name, deps)` makes an `agency run --plan` file of it, spreading the tasks
over the ten agent queues. Given each task's measured duration:

- `critical_path_s`: the longest path (no schedule with unlimited workers can beat it);
- `level_synchronous_s`: tasks run in waves by depth, each wave waiting for its slowest task
  (how a bulk-synchronous runner such as LangGraph's supersteps schedules the same graph);
- `sequential_s`: one task at a time.
"""

from __future__ import annotations

import random
from typing import Any

# No import of the project here: the LangGraph peer reads this file from its own environment.
AGENTS = ["marketing", "frontend_developer", "backend_developer", "mobile_developer",
          "devops_engineer", "data_analyst", "ux_designer", "project_manager", "qa_engineer",
          "content_writer"]
Deps = list[list[int]]


def chain(n: int = 8) -> Deps:
    return [[]] + [[i - 1] for i in range(1, n)]


def fan_out_in(width: int = 16) -> Deps:
    """One task, `width` tasks that need it, one that needs them all."""
    return [[]] + [[0] for _ in range(width)] + [list(range(1, width + 1))]


def diamonds(count: int = 3) -> Deps:
    """Diamonds in series: a -> (b, c) -> d -> (e, f) -> g ..."""
    deps: Deps = [[]]
    top = 0
    for _ in range(count):
        left, right = len(deps), len(deps) + 1
        deps += [[top], [top], [left, right]]
        top = len(deps) - 1
    return deps


def n_shapes(count: int = 3) -> Deps:
    """N-shapes side by side (a -> c, b -> c, b -> d): not series-parallel, so a canvas alone
    would make d wait for a; the store releases what a canvas cannot express exactly."""
    deps: Deps = []
    for _ in range(count):
        a, b = len(deps), len(deps) + 1
        deps += [[], [], [a, b], [b]]
    deps.append([i for i in range(len(deps)) if i % 4 in (2, 3)])
    return deps


def nested(width: int = 3) -> Deps:
    """Parallel blocks with chains inside, themselves inside a parallel block, then a join:
    a -> ( (b1 -> b2 -> (c1 | c2) -> b3) | ... x width ) -> z."""
    deps: Deps = [[]]
    ends = []
    for _ in range(width):
        b1 = len(deps)
        deps += [[0], [b1], [b1 + 1], [b1 + 1], [b1 + 2, b1 + 3]]
        ends.append(len(deps) - 1)
    deps.append(ends)
    return deps


def random_dag(size: int, seed: int) -> Deps:
    """A layered random DAG: each task depends on 0 to 3 of the 8 tasks before it."""
    rng = random.Random(seed)
    deps: Deps = []
    for i in range(size):
        window = list(range(max(0, i - 8), i))
        k = min(len(window), rng.choice([0, 1, 1, 2, 2, 3]))
        deps.append(sorted(rng.sample(window, k)))
    return deps


SHAPES: dict[str, Deps] = {
    "chain-8": chain(8),
    "fan-out-in-16": fan_out_in(16),
    "fan-out-in-24": fan_out_in(24),  # 26 tasks: issue 20's plan across hosts
    "diamonds-3": diamonds(3),
    "n-shapes-3": n_shapes(3),
    "nested-3": nested(3),
    "random-20": random_dag(20, seed=20),
    "random-60": random_dag(60, seed=60),
}


def plan(name: str, deps: Deps, request: str = "Build a website for a bakery") -> dict[str, Any]:
    """An `agency run --plan` file for the shape."""
    tasks = []
    for i, parents in enumerate(deps):
        agent = AGENTS[i % len(AGENTS)]
        tasks.append({"title": f"{name} step {i}", "agent_type": agent,
                      "description": f"Part {i} of the {name} benchmark.",
                      "dependencies": parents, "deliverables": [f"deliverable {i}"],
                      "acceptance_criteria": [f"deliverable {i} is complete"]})
    return {"request": request, "project_type": "website", "tasks": tasks}


def critical_path_s(deps: Deps, durations: list[float]) -> float:
    finish = [0.0] * len(deps)
    for i, parents in enumerate(deps):
        finish[i] = durations[i] + max((finish[p] for p in parents), default=0.0)
    return max(finish, default=0.0)


def levels(deps: Deps) -> list[int]:
    depth = [0] * len(deps)
    for i, parents in enumerate(deps):
        depth[i] = 1 + max((depth[p] for p in parents), default=-1)
    return depth


def level_synchronous_s(deps: Deps, durations: list[float]) -> float:
    waves: dict[int, float] = {}
    for i, d in enumerate(levels(deps)):
        waves[d] = max(waves.get(d, 0.0), durations[i])
    return sum(waves.values())


def sequential_s(durations: list[float]) -> float:
    return sum(durations)

"""The prompt cache's levers for a project's shared prefix: its life, its warm-up, its length.

Every agent of a project reads the same prefix (its tools, the handbook, the project brief).
The API keeps a cache entry five minutes from its last read, or an hour for a dearer write
(twice the input price instead of 1.25 times). A project whose work is estimated to span more
than five minutes has its prefix written for an hour (AGENCY_CACHE_TTL=auto).

The span is estimated from the plan, with its estimated tokens as the duration proxy as
`dag.schedule` takes them: the longest chain of tasks, each taking its calls' latencies plus
its share of output at a generation pace. It is a lower bound (the chain runs in sequence
whatever the fleet), so the hour is chosen only for work that surely outlasts five minutes.

A new entry becomes readable only once the answer that writes it begins, so siblings that
start together each write the prefix; one short call first (a warm-up) lets them all read it.
A prefix below the model's minimum cacheable length is never cached: a warm-up is then pointless
and the project is told why its agents read nothing from the cache.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from orchestrator.domain.dag import Graph
from orchestrator.domain.estimates import INPUT_SHARE
from orchestrator.domain.models import Plan

CacheLife = Literal["5m", "1h"]
LIFE_SECONDS: dict[CacheLife, float] = {"5m": 300.0, "1h": 3600.0}
# What a task takes on the clock, for the span: its calls' latencies (first tokens, tool
# calls, a review) and its estimated output at a generation pace well below a model's best.
TASK_SECONDS = 15.0
OUTPUT_TOKENS_PER_SECOND = 60.0
# An entry counts as possibly expired this long before its life ends: the siblings' first
# calls start only once the queues deliver them.
EXPIRY_MARGIN = 30.0


def task_seconds(estimated_tokens: int) -> float:
    """How long a task of this estimate takes, at the pace above."""
    return TASK_SECONDS + estimated_tokens * (1 - INPUT_SHARE) / OUTPUT_TOKENS_PER_SECOND


def work_span(plan: Plan) -> float:
    """Seconds the plan's longest chain of tasks takes (its critical path, in time)."""
    graph = Graph(deps=tuple(tuple(t.dependencies) for t in plan.tasks),
                  weights=tuple(t.estimated_tokens for t in plan.tasks))
    finish = [0.0] * graph.size
    for node in graph.topological_order():
        start = max((finish[d] for d in graph.deps[node]), default=0.0)
        finish[node] = start + task_seconds(graph.weights[node])
    return max(finish, default=0.0)


def prefix_life(setting: Literal["auto", "5m", "1h"], plan: Plan | None) -> CacheLife:
    """AGENCY_CACHE_TTL for a project: as set, or (auto) an hour when the plan's work spans
    more than the five minutes a short-lived entry lasts."""
    if setting != "auto":
        return setting
    return "1h" if plan is not None and work_span(plan) > LIFE_SECONDS["5m"] else "5m"


def warmup_due(starting: int, last_read: datetime | None, now: datetime,
               life: CacheLife) -> bool:
    """Whether to warm the prefix before `starting` agents start at once: two or more, and
    the prefix never written or possibly expired since it was last read (`last_read`)."""
    if starting < 2:
        return False
    if last_read is None:
        return True
    return (now - last_read).total_seconds() > LIFE_SECONDS[life] - EXPIRY_MARGIN


def short_prefix(tokens: int, minimum: int, model: str) -> str | None:
    """What the project is told when its prefix is too short to be cached; None when not."""
    if tokens >= minimum:
        return None
    return (f"the agents' shared prompt prefix is {tokens:,} tokens, below {model}'s minimum "
            f"cacheable length of {minimum:,}: agents will not read it from the cache")

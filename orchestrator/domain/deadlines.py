"""Deadlines: a project's and each task's, and what is at risk.

A project's deadline comes from `agency run --deadline` or, when planning analysed the request,
from the analysis's estimated hours x 1.5, counted from the project's creation (so a project's
deadline does not depend on when it was planned, and its tasks' share that start). Planning
spreads it over the graph with estimated tokens as the duration proxy: the time from the
project's creation to its deadline, divided by the critical path's length, is what a token of
work may take; a task's deadline is the project's minus the longest chain of work that must
still follow it. A task that has not finished is at risk when its earliest possible finish
(now, plus its own work and the longest chain of unfinished work before it, at that pace) is
past its deadline by more than 2 % of the project's time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from orchestrator.domain.constants import TaskStatus
from orchestrator.domain.dag import Graph
from orchestrator.domain.errors import BadInput
from orchestrator.domain.models import Analysis, ProjectRecord, TaskRecord

# An estimate's hours x this: room for the estimate being short.
HOURS_FACTOR = 1.5
# A task is at risk past its deadline by more than this share of the project's time: the pace
# is an estimate, and planning itself takes a moment of it.
GRACE = 0.02
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*$", re.IGNORECASE)
_UNIT = {"m": 60, "min": 60, "h": 3600, "d": 86400}


MAX_AHEAD = timedelta(days=3650)


def parse_deadline(text: str, now: datetime) -> datetime:
    """`--deadline`: an ISO 8601 time (UTC when it names no zone) or a duration from now such
    as 90m, 6h or 2d; it must be in the future, and within ten years."""
    match = _DURATION.match(text)
    if match:
        seconds = float(match.group(1)) * _UNIT[match.group(2).lower()]
        if seconds > MAX_AHEAD.total_seconds():
            raise BadInput(f"--deadline {text!r} is more than ten years away")
        found = now + timedelta(seconds=seconds)
    else:
        try:
            found = datetime.fromisoformat(text.strip())
        except ValueError:
            raise BadInput(f"--deadline {text!r}: give a time (2026-12-01T17:00) or a duration "
                           "from now (90m, 6h, 2d)") from None
        if found.tzinfo is None:
            found = found.replace(tzinfo=UTC)
    if found <= now:
        raise BadInput(f"--deadline {text!r} is not in the future")
    if found - now > MAX_AHEAD:
        raise BadInput(f"--deadline {text!r} is more than ten years away")
    return found


def project_deadline(project: ProjectRecord, analysis: Analysis | None) -> datetime | None:
    """The deadline given with the project, else the analysis's estimated hours x HOURS_FACTOR
    from the project's creation; None with neither."""
    if project.deadline is not None or analysis is None:
        return project.deadline
    return project.created_at + timedelta(hours=analysis.estimated_hours * HOURS_FACTOR)


def _pace(deadline: datetime, start: datetime, critical: int) -> float:
    """Seconds a token of estimated work may take to meet the deadline."""
    return max((deadline - start).total_seconds(), 0.0) / max(critical, 1)


def task_deadlines(graph: Graph, deadline: datetime, start: datetime) -> list[datetime]:
    """Each task's latest finish that still lets every task after it meet `deadline`."""
    order = graph.topological_order()
    succ = graph.successors()
    tail = [0] * graph.size  # the longest chain of work after the node, exclusive
    for node in reversed(order):
        tail[node] = max((tail[s] + graph.weights[s] for s in succ[node]), default=0)
    head = [0] * graph.size
    for node in order:
        head[node] = graph.weights[node] + max((head[p] for p in graph.deps[node]), default=0)
    pace = _pace(deadline, start, max(head, default=0))
    return [deadline - timedelta(seconds=tail[n] * pace) for n in range(graph.size)]


def at_risk(tasks: list[TaskRecord], deadline: datetime | None, start: datetime,
            now: datetime) -> dict[str, datetime]:
    """Unfinished tasks whose earliest possible finish is past their deadline, with that
    earliest finish."""
    if deadline is None or not tasks:
        return {}
    by_id = {t.id: t for t in tasks}
    done = {t.id for t in tasks if t.status is TaskStatus.COMPLETED}
    graph_head: dict[str, int] = {}

    def chain(task_id: str) -> int:  # the longest path of unfinished work ending here
        if task_id not in graph_head:
            task = by_id[task_id]
            graph_head[task_id] = 0 if task_id in done else task.estimated_tokens + max(
                (chain(d) for d in task.dependencies if d in by_id), default=0)
        return graph_head[task_id]

    full: dict[str, int] = {}

    def whole(task_id: str) -> int:
        if task_id not in full:
            task = by_id[task_id]
            full[task_id] = task.estimated_tokens + max(
                (whole(d) for d in task.dependencies if d in by_id), default=0)
        return full[task_id]

    pace = _pace(deadline, start, max(whole(t.id) for t in tasks))
    grace = (deadline - start) * GRACE
    found = {}
    for task in tasks:
        if task.id in done or task.deadline is None or task.status is TaskStatus.CANCELLED:
            continue
        earliest = now + timedelta(seconds=chain(task.id) * pace)
        if earliest > task.deadline + grace:
            found[task.id] = earliest
    return found

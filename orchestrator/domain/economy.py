"""Economy mode: which agent turns go through the Message Batches API (half price; most
batches end within an hour, all within 24) and which go live.

A turn is batched when its task's slack (the time to its deadline, which planning computed
from the project's) is at least the expected batch turnaround (AGENCY_BATCH_TURNAROUND); a
task with no deadline, or with less slack, goes live, and so does a task on the critical path
of a project that has no slack left itself.
"""

from __future__ import annotations

from datetime import datetime

from orchestrator.domain.models import ProjectRecord, TaskRecord


def slack_seconds(deadline: datetime | None, now: datetime) -> float | None:
    return None if deadline is None else (deadline - now).total_seconds()


def by_batch(project: ProjectRecord, task: TaskRecord, now: datetime, turnaround: float) -> bool:
    """Whether this task's next turn goes through the Batches API."""
    if not project.economy:
        return False
    slack = slack_seconds(task.deadline, now)
    if slack is None or slack < turnaround:
        return False
    project_slack = slack_seconds(project.deadline, now)
    return not (task.on_critical_path and (project_slack is None or project_slack < turnaround))


def why_live(project: ProjectRecord, task: TaskRecord, now: datetime, turnaround: float
             ) -> str | None:
    """In words, why an economy project's task goes live (None: it is batched)."""
    if not project.economy or by_batch(project, task, now, turnaround):
        return None
    slack = slack_seconds(task.deadline, now)
    if slack is None:
        return "it has no deadline"
    if slack < turnaround:
        return (f"its slack ({slack:.0f} s) is less than the batch turnaround "
                f"({turnaround:.0f} s)")
    return "it is on the critical path of a project without slack"

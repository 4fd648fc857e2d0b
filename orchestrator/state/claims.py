"""What the scheduler hands back: the claims that fence an attempt's writes, and move results."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.domain.lifecycle import ProjectStatus


@dataclass(frozen=True)
class Claim:
    """An attempt that holds a task: `attempt` is its fencing token."""

    project_id: str
    task_id: str
    attempt: int


@dataclass(frozen=True)
class ProjectClaim:
    """An attempt that holds a project's planning or integration."""

    project_id: str
    status: ProjectStatus
    attempt: int


@dataclass(frozen=True)
class Completion:
    """What a task's completion released: dependents now ready, and whether it was the last."""

    ready: list[str]
    project_done: bool
    # The project's tasks completed and in all, as the completion's transaction counted them
    # (None when not counted): what the task's result says in Flower, with no query more.
    done: int | None = None
    total: int | None = None
    # The task had parked, so the canvas that sent it goes no further: what it released is
    # sent by the store (its dependents and theirs), not by the canvas.
    detached: bool = False
    # Which of `ready` head their own launch unit, as the transaction saw them (None: not
    # known, the store is asked).
    heads: list[str] | None = None


@dataclass(frozen=True)
class Moved:
    """A project's compare-and-set: whether it moved, and its status now (on a refusal, the one
    that refused it; None: no such project), so a refusal can say why. True exactly when it
    moved."""

    done: bool
    found: ProjectStatus | None

    def __bool__(self) -> bool:
        return self.done

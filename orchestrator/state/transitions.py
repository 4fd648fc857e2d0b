"""The one owner of status changes: every transition is compare-and-set and leaves an event.

Every legal move is in `orchestrator.domain.lifecycle`; the moves of projects are written in
`project_moves`, those of tasks in `task_moves`. Claims give an attempt a token (the row's
`attempts`) and a lease; every later write of that attempt is fenced by the token, so a stale
attempt can never overwrite a newer one.
"""

from __future__ import annotations

from orchestrator.domain.lifecycle import PROJECT_FROM
from orchestrator.state.claims import Claim, Completion, Moved, ProjectClaim
from orchestrator.state.parking import ParkMoves
from orchestrator.state.project_moves import CANCEL_TASKS
from orchestrator.state.task_moves import RELEASE, REVIVE, START

__all__ = ["CANCEL_TASKS", "PROJECT_FROM", "RELEASE", "REVIVE", "START", "Claim", "Completion",
           "Moved", "ProjectClaim", "Scheduler"]


class Scheduler(ParkMoves):
    """Moves projects and tasks through their lives, atomically, in the store."""

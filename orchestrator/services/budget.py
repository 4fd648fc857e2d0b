"""How a project's token budget follows its plan when the plan changes."""

from __future__ import annotations

from orchestrator.domain.constants import MAX_BUDGET
from orchestrator.domain.models import Plan


def added_budget(budget: int | None, plan: Plan, first: int) -> int:
    """The tokens a budget grows by for the plan's tasks from index `first` on: their
    estimates, at the rate the budget covered the estimates of the tasks before them.

    A budget is sized for the plan it was set for (by complexity or by --budget); without
    this, tasks added to a running project spend what integration, the last step, needed,
    and a project whose every task completed ends `budget_exhausted` with no deliverable.
    """
    if budget is None:
        return 0
    before = sum(t.estimated_tokens for t in plan.tasks[:first])
    added = sum(t.estimated_tokens for t in plan.tasks[first:])
    grown = -(-budget * added // before) if before else added  # rounded up
    return max(0, min(grown, MAX_BUDGET - budget))

"""What a plan is expected to cost, the budget a project gets for it, and whether that makes
it wait for a person's approval.

A project waits in `awaiting_approval` when it was submitted with `agency run --approve-plan`,
or when its plan's estimated cost is above AGENCY_APPROVAL_ABOVE_USD (the actions that decide
it are in `orchestrator.services.operator`).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from orchestrator.domain.catalog import tokens_for
from orchestrator.domain.constants import (
    BUDGET_CEILING,
    BUDGET_FLOOR,
    BUDGET_HEADROOM,
    CALIBRATE_MIN,
    COMPLEXITY_BUDGETS,
    MAX_BUDGET,
    SPEND_RATIO,
    SPEND_RATIO_BOUNDS,
    Complexity,
)
from orchestrator.domain.models import Plan, ProjectRecord
from orchestrator.domain.pricing import price_for
from orchestrator.domain.settings import Settings

# How a task's estimated tokens split between input and output, for the estimate: agents read
# far more (the brief, their inputs, tool results) than they write.
INPUT_SHARE = 0.75
# The Message Batches API bills every token at half the live rate.
BATCH_FACTOR = 0.5


@dataclass(frozen=True)
class Calibration:
    """What a task really spends (budgeted tokens, everything but planning) per token its plan
    estimated: the median over recent completed projects, or SPEND_RATIO without them."""

    ratio: float = SPEND_RATIO
    projects: int = 0  # how many projects it is the median of (0: SPEND_RATIO)

    @classmethod
    def of(cls, samples: list[tuple[int, int]]) -> Calibration:
        """From (estimated, spent) per project; too few, or a ratio outside
        SPEND_RATIO_BOUNDS (an empty or broken ledger), and SPEND_RATIO stands."""
        low, high = SPEND_RATIO_BOUNDS
        ratios = [spent / estimated for estimated, spent in samples
                  if estimated > 0 and low <= spent / estimated <= high]
        if len(ratios) < CALIBRATE_MIN:
            return cls()
        return cls(ratio=round(median(ratios), 2), projects=len(ratios))

    def describe(self) -> str:
        if not self.projects:
            return f"x{self.ratio:g} per estimated token (the default; no history yet)"
        return (f"x{self.ratio:g} per estimated token (the median of the last "
                f"{self.projects} completed projects)")


def budget_floor(complexity: Complexity | None) -> int:
    """The least budget a project gets: its complexity's (BUDGET_FLOOR without one)."""
    return COMPLEXITY_BUDGETS.get(complexity, BUDGET_FLOOR) if complexity else BUDGET_FLOOR


def plan_budget(plan: Plan, calibration: Calibration, spent: int = 0,
                floor: int = BUDGET_FLOOR) -> int:
    """The budget of a project that was given none: what planning spent, plus what its tasks
    are expected to spend (`expected_tokens`) times BUDGET_HEADROOM, that share at most
    BUDGET_CEILING; at least `floor` (and BUDGET_FLOOR). Always above what was spent."""
    share = min(BUDGET_HEADROOM * expected_tokens(plan, calibration), BUDGET_CEILING)
    return int(max(spent + share, floor, BUDGET_FLOOR))


def expected_tokens(plan: Plan, calibration: Calibration) -> int:
    """What the plan's tasks are expected to spend, reviews and integration included."""
    return round(sum(t.estimated_tokens for t in plan.tasks) * calibration.ratio)


@dataclass(frozen=True)
class Estimate:
    tokens: int  # the plan's own estimates (what a plan file holds)
    cost_usd: float  # of `expected`, at the agent model's prices
    per_task: list[tuple[int, float]]  # (expected tokens, cost) by task index
    model: str
    counted: int = 0  # the expected tokens as the agent model counts them: the cost is of these
    expected: int = 0  # the estimates times the calibration: what the tasks really spend
    calibration: Calibration = Calibration()

    @property
    def batch_cost_usd(self) -> float:
        """The same work through the Message Batches API (economy mode, every turn batched):
        half of every rate."""
        return self.cost_usd * BATCH_FACTOR


def price_per_token(settings: Settings, model: str) -> float:
    """Dollars per token of the model (longest model-id prefix of the price table), input and
    output mixed as INPUT_SHARE says."""
    price = price_for(settings.prices, model)
    if price is None:
        return 0.0
    return (INPUT_SHARE * price.input + (1 - INPUT_SHARE) * price.output) / 1_000_000


def estimate(settings: Settings, plan: Plan, calibration: Calibration = Calibration()
             ) -> Estimate:
    """What the plan's tasks are expected to cost: their estimated tokens times what a task
    really spends per token estimated (`Calibration`: reviews, revisions and integration
    included; planning is spent already), as the agent model counts them (the newer tokenizer
    counts the same text about 30% higher), at its prices."""
    model = settings.agent_model
    rate = price_per_token(settings, model)
    expected = [round(t.estimated_tokens * calibration.ratio) for t in plan.tasks]
    counted = [tokens_for(model, n) for n in expected]
    per_task = [(n, c * rate) for n, c in zip(expected, counted, strict=True)]
    return Estimate(tokens=sum(t.estimated_tokens for t in plan.tasks),
                    cost_usd=sum(c for _, c in per_task), per_task=per_task, model=model,
                    counted=sum(counted), expected=sum(expected), calibration=calibration)


def needs_approval(settings: Settings, project: ProjectRecord, plan: Plan,
                   calibration: Calibration = Calibration()) -> bool:
    """Whether a freshly planned project waits for a person."""
    limit = settings.approval_above_usd
    return project.needs_approval or (
        limit is not None and estimate(settings, plan, calibration).cost_usd > limit)


def threshold_reason(settings: Settings, plan: Plan,
                     calibration: Calibration = Calibration()) -> str:
    return (f"waits for approval: estimated ${estimate(settings, plan, calibration).cost_usd:.2f},"
            f" above AGENCY_APPROVAL_ABOVE_USD=${settings.approval_above_usd:.2f}")


def added_budget(budget: int | None, plan: Plan, first: int) -> int:
    """The tokens a budget grows by for the plan's tasks from index `first` on: their
    estimates, at the rate the budget covered the estimates of the tasks before them.

    A budget is sized for the plan it was set for (by its need, `plan_budget`, or by --budget);
    without
    this, tasks added to a running project spend what integration, the last step, needed,
    and a project whose every task completed ends `budget_exhausted` with no deliverable.
    """
    if budget is None:
        return 0
    before = sum(t.estimated_tokens for t in plan.tasks[:first])
    added = sum(t.estimated_tokens for t in plan.tasks[first:])
    grown = -(-budget * added // before) if before else added  # rounded up
    return max(0, min(grown, MAX_BUDGET - budget))

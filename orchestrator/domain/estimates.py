"""What a plan is expected to cost, and whether that makes it wait for a person's approval.

A project waits in `awaiting_approval` when it was submitted with `agency run --approve-plan`,
or when its plan's estimated cost is above AGENCY_APPROVAL_ABOVE_USD (the actions that decide
it are in `orchestrator.services.operator`).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.domain.catalog import tokens_for
from orchestrator.domain.constants import MAX_BUDGET
from orchestrator.domain.models import Plan, ProjectRecord
from orchestrator.domain.pricing import price_for
from orchestrator.domain.settings import Settings

# How a task's estimated tokens split between input and output, for the estimate: agents read
# far more (the brief, their inputs, tool results) than they write.
INPUT_SHARE = 0.75
# The Message Batches API bills every token at half the live rate.
BATCH_FACTOR = 0.5


@dataclass(frozen=True)
class Estimate:
    tokens: int  # the plan's own estimates (what a plan file holds)
    cost_usd: float
    per_task: list[tuple[int, float]]  # (tokens, cost) by task index
    model: str
    counted: int = 0  # the same tokens as the agent model counts them: what the cost is of

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


def estimate(settings: Settings, plan: Plan) -> Estimate:
    """What the plan's tasks are expected to cost: their estimated tokens, as the agent model
    counts them (the newer tokenizer counts the same text about 30% higher), at its prices
    (planning, reviews and integration come on top)."""
    model = settings.agent_model
    rate = price_per_token(settings, model)
    counted = [tokens_for(model, t.estimated_tokens) for t in plan.tasks]
    per_task = [(t.estimated_tokens, n * rate) for t, n in zip(plan.tasks, counted, strict=True)]
    return Estimate(tokens=sum(t for t, _ in per_task), cost_usd=sum(c for _, c in per_task),
                    per_task=per_task, model=model, counted=sum(counted))


def needs_approval(settings: Settings, project: ProjectRecord, plan: Plan) -> bool:
    """Whether a freshly planned project waits for a person."""
    limit = settings.approval_above_usd
    return project.needs_approval or (limit is not None
                                      and estimate(settings, plan).cost_usd > limit)


def threshold_reason(settings: Settings, plan: Plan) -> str:
    return (f"waits for approval: estimated ${estimate(settings, plan).cost_usd:.2f}, above "
            f"AGENCY_APPROVAL_ABOVE_USD=${settings.approval_above_usd:.2f}")


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

"""Frozen pydantic models for everything that crosses a boundary."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.domain.constants import (
    AgentType,
    CallOutcome,
    Complexity,
    Dimension,
    ProjectStatus,
    ProjectType,
    Role,
    TaskPriority,
    TaskStatus,
)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Analysis(Frozen):
    """The orchestrator's analysis of a request: what it is, how big, who is needed, what it
    must meet and how to go about it."""

    project_type: ProjectType
    complexity: Complexity
    estimated_hours: float = Field(ge=0)
    required_agents: list[AgentType] = Field(min_length=1)
    key_requirements: list[str]
    potential_risks: list[str]
    success_criteria: list[str]
    recommended_approach: str


class PlanTask(Frozen):
    """One task of a plan; `dependencies` are 0-based indices into the plan's tasks."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=8000)
    agent_type: str
    dependencies: list[int] = Field(default_factory=list)
    estimated_tokens: int = Field(default=4000, ge=1, le=1_000_000)
    deliverables: list[str] = Field(default_factory=list)
    acceptance_criteria: list[str] = Field(default_factory=list)


class Plan(Frozen):
    """The decomposition's answer: tasks plus the model's advisory ordering (the dependencies
    decide; of the ordering only its indices are checked)."""

    tasks: list[PlanTask]
    execution_order: list[int] = Field(default_factory=list)
    parallel_groups: list[list[int]] = Field(default_factory=list)
    critical_path: list[int] = Field(default_factory=list)


class PlanFile(Plan):
    """A plan given by `agency run --plan FILE`; it may carry the request and project type."""

    request: str | None = None
    project_type: ProjectType | None = None


class ProjectContext(Frozen):
    """What the decomposition prompt is given about a project: the request, its type, the
    analysis's requirements, and its complexity and estimated hours as constraints."""

    project_id: str
    project_type: ProjectType
    description: str
    requirements: list[str]
    constraints: dict[str, Any]


class Artifact(Frozen):
    """A file an agent proposes. Its path is the model's word: the writer normalises it, keeps
    it inside the project's folder, and renames what cannot be a file
    (orchestrator/state/artifacts.py).
    Rejecting such a path here would throw away the whole answer for one odd name."""

    path: str = Field(min_length=1, max_length=1000)
    content: str = Field(max_length=2_000_000)


class AgentOutput(Frozen):
    """What a specialist agent returns for its task."""

    summary: str
    content: str
    artifacts: list[Artifact] = Field(default_factory=list, max_length=100)


class CriterionCheck(Frozen):
    """One acceptance criterion as a reviewer found it."""

    criterion: str
    met: bool
    note: str = ""


class Verdict(Frozen):
    """A reviewer's structured verdict on a task's output: pass or revise, per criterion."""

    verdict: Literal["pass", "revise"]
    criteria: list[CriterionCheck]
    summary: str = ""


class CheckResult(Frozen):
    """One check of one artifact by what it is (orchestrator/checks): `ok` is None when the
    file was not checked (no checker for its type, or the checker's tool is missing), never
    True for a check that did not run."""

    path: str
    check: str
    ok: bool | None
    detail: str
    seconds: float = 0.0


class ReviewRecord(BaseModel):
    """A verdict as the store keeps it."""

    model_config = ConfigDict(frozen=True)

    reviewer: str
    verdict: str
    round: int
    attempt: int
    notes: list[CriterionCheck]
    summary: str
    at: datetime
    worker: str | None = None  # the worker that ran the review
    checks: list[CheckResult] = Field(default_factory=list)  # the round's checks


class DeliverableSection(Frozen):
    title: str
    items: list[str]


class Deliverable(Frozen):
    """The integrated result: a summary, then the project's deliverables, technical details,
    next steps, success metrics and an appendix."""

    executive_summary: str
    key_deliverables: list[DeliverableSection]
    technical_details: list[DeliverableSection]
    next_steps: list[str]
    success_metrics: list[str]
    appendix: list[DeliverableSection]


class Optimization(Frozen):
    """The orchestrator's advice on the agency's performance: recommendations under each
    heading."""

    agent_utilization: list[str] = Field(min_length=1)
    token_efficiency: list[str] = Field(min_length=1)
    task_parallelization: list[str] = Field(min_length=1)
    bottlenecks: list[str] = Field(min_length=1)
    prompt_optimization: list[str] = Field(min_length=1)


class Tokens(BaseModel):
    """Token counts as the Anthropic API reports them."""

    model_config = ConfigDict(frozen=True)

    input: int = 0
    output: int = 0  # thinking included
    cache_read: int = 0
    cache_write: int = 0  # both lives
    cache_write_1h: int = 0  # the part of cache_write written for an hour
    thinking: int = 0  # the part of output the model spent thinking

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    @property
    def input_total(self) -> int:
        """The whole prompt: uncached input, cache reads and cache writes."""
        return self.input + self.cache_read + self.cache_write

    @property
    def budgeted(self) -> int:
        """What counts toward a token budget: a cache read costs a tenth of an input token,
        so it counts a tenth; everything else counts fully."""
        return self.input + self.output + self.cache_write + -(-self.cache_read // 10)

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(input=self.input + other.input, output=self.output + other.output,
                      cache_read=self.cache_read + other.cache_read,
                      cache_write=self.cache_write + other.cache_write,
                      cache_write_1h=self.cache_write_1h + other.cache_write_1h,
                      thinking=self.thinking + other.thinking)


class LedgerEntry(Frozen):
    """One model call's ledger row: who made it, on which model, what it used and cost, and
    which call it was (the API's request and message ids), why it stopped and how it ended;
    `batch`: answered through the Message Batches API (priced at half)."""

    role: Role
    model: str
    tokens: Tokens = Field(default_factory=Tokens)
    cost_usd: float = Field(default=0.0, ge=0)
    latency_ms: int = Field(default=0, ge=0)
    attempt: int = Field(default=1, ge=1)
    request_id: str | None = None
    message_id: str | None = None
    stop_reason: str | None = None
    outcome: CallOutcome = CallOutcome.ANSWERED
    batch: bool = False


class JournalTurn(Frozen):
    """What the journal keeps of one answered turn of a conversation (written with its ledger
    row): where it is (`conv`, `seq`), the digest of the request, the user messages new since
    the journal's previous row and the response as returned (both JSON)."""

    conv: str
    seq: int = Field(ge=0)
    digest: str
    sent: str
    body: str


class JournalEntry(Frozen):
    """One row of a conversation's journal: an answered turn (`body`: the response) or a round
    of tool results (`body`: the results message)."""

    seq: int
    kind: Literal["turn", "tools"]
    digest: str | None = None
    body: str | None = None
    attempt: int | None = None


class CallRecord(Frozen):
    """A ledger row as `agency calls` shows it: the entry, when, and the task it served (none
    for the project's own calls: analysis, decomposition, integration)."""

    at: datetime
    entry: LedgerEntry
    task_id: str | None = None
    task_index: int | None = None
    task_title: str | None = None
    stale: bool = False


class TaskRecord(BaseModel):
    """A task as the store holds it."""

    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    index: int
    title: str
    description: str
    agent_type: AgentType
    priority: TaskPriority
    estimated_tokens: int
    deliverables: list[str]
    acceptance_criteria: list[str]
    on_critical_path: bool
    status: TaskStatus
    attempts: int
    pending_deps: int
    worker: str | None
    output: AgentOutput | None
    error: str | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    unit: str | None = None
    deadline: datetime | None = None
    activity: str | None = None  # a streamed call's output so far, while it runs
    lease_until: datetime | None = None
    # What the task waits for while parked (a question, a review, a batch); its output under
    # review; whether its canvas went no further; where its current conversation began.
    parked: str | None = None
    draft: str | None = None
    detached: bool = False
    conversation_from: int = 0
    model_calls: int = 0
    dependencies: list[str] = Field(default_factory=list)
    tokens: Tokens = Field(default_factory=Tokens)
    cost_usd: float = 0.0


class ProjectRecord(BaseModel):
    """A project as the store holds it."""

    model_config = ConfigDict(frozen=True)

    id: str
    request: str
    project_type: ProjectType | None
    complexity: Complexity | None
    status: ProjectStatus
    budget_tokens: int | None
    analysis: Analysis | None
    plan: Plan | None
    deliverable: Deliverable | None = None
    output_dir: str
    error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    tokens_used: int = 0
    attempts: int = 0
    lease_until: datetime | None = None
    needs_approval: bool = False
    deadline: datetime | None = None
    activity: str | None = None  # planning's or integration's streamed call, while it runs
    conversation_from: int = 0  # the first attempt of its planning's and integration's run
    economy: bool = False  # its agents' turns with slack go through the Message Batches API
    tokens: Tokens = Field(default_factory=Tokens)
    cost_usd: float = 0.0


class Window(Frozen):
    """One rate limit as the server reported it: its size, what is left, when it is full."""

    limit: int
    remaining: int
    reset: datetime | None = None


class ServerLimits(Frozen):
    """The `anthropic-ratelimit-*` headers of one response, per dimension (absent: not sent)."""

    windows: dict[Dimension, Window] = Field(default_factory=dict)

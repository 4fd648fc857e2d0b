"""What the offline writer is given for one task (its TaskBrief): the task, its inputs, notes."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.domain.constants import AgentType


@dataclass(frozen=True)
class Dependency:
    """A completed task this one builds on; excerpt: the first ~600 characters of its content."""

    title: str
    agent_type: str
    summary: str
    excerpt: str = ""


@dataclass(frozen=True)
class Finding:
    """A knowledge-base search hit the agent found."""

    source: str
    snippet: str


@dataclass(frozen=True)
class TaskBrief:
    """Everything the writer is given for one task."""

    agent_type: AgentType
    title: str
    description: str
    request: str
    deliverables: list[str] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # Notes from a reviewer's "revise" verdict; the redraft addresses each one.
    review_notes: list[str] = field(default_factory=list)

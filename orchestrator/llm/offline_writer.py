"""TEMPORARY stub (replaced by the offline branch)."""
from __future__ import annotations

from dataclasses import dataclass

from orchestrator.constants import AgentType
from orchestrator.llm import offline
from orchestrator.models import AgentOutput, Artifact


@dataclass(frozen=True)
class Dependency:
    title: str
    agent_type: str
    summary: str
    excerpt: str


@dataclass(frozen=True)
class Finding:
    source: str
    snippet: str


@dataclass(frozen=True)
class Brief:
    agent_type: AgentType
    title: str
    description: str
    request: str
    deliverables: list[str]
    criteria: list[str]
    dependencies: list[Dependency]
    findings: list[Finding]
    review_notes: list[str]


def _hints(b: Brief) -> dict:  # type: ignore[type-arg]
    return {"agent_type": b.agent_type.value, "title": b.title, "request": b.request,
            "deliverables": b.deliverables, "acceptance_criteria": b.criteria,
            "dependencies": [{"title": d.title, "agent_type": d.agent_type, "summary": d.summary}
                             for d in b.dependencies]}


def draft(b: Brief) -> AgentOutput:
    out = offline.agent_output(_hints(b))
    extra = "\n".join(f"- Checked: {c}" for c in b.criteria)
    extra += "\n" + "\n".join(f"- Found: {f.snippet} (source: {f.source})" for f in b.findings)
    return out.model_copy(update={"content": out.content + "\n" + extra})


def artifacts_for(b: Brief) -> list[Artifact]:
    return list(offline.agent_output(_hints(b)).artifacts)

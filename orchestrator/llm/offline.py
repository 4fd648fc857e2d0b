"""A deterministic stand-in for Claude: classifies, plans and writes templated specialist work."""

from __future__ import annotations

import re
from typing import Any

from orchestrator.constants import AgentType, Complexity, ProjectType
from orchestrator.llm.offline_plans import KEYWORDS, PLANS
from orchestrator.models import (
    AgentOutput,
    Analysis,
    Artifact,
    Deliverable,
    DeliverableSection,
    Plan,
    PlanTask,
)

MODEL_NAME = "offline"


def classify(request: str) -> ProjectType:
    """The project type whose keywords the request mentions most (ties: the earlier type)."""
    text = request.lower()
    scores = {kind: sum(len(re.findall(rf"\b{re.escape(w)}", text)) for w in words)
              for kind, words in KEYWORDS.items()}
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] else ProjectType.CUSTOM


def complexity(request: str) -> Complexity:
    text, words = request.lower(), len(request.split())
    if any(w in text for w in ("enterprise", "multi-tenant", "global rollout", "compliance")):
        return Complexity.ENTERPRISE
    if words > 60 or any(w in text for w in ("platform", "integrat", "marketplace")):
        return Complexity.COMPLEX
    if words > 15:
        return Complexity.MODERATE
    return Complexity.SIMPLE


def subject(request: str) -> str:
    """The request as a short noun phrase for headings."""
    text = " ".join(request.split())
    return text if len(text) <= 90 else text[:87] + "..."


def analyze(request: str) -> Analysis:
    kind = classify(request)
    steps = PLANS[kind]
    level = complexity(request)
    hours = {Complexity.SIMPLE: 40, Complexity.MODERATE: 120, Complexity.COMPLEX: 320,
             Complexity.ENTERPRISE: 800}[level]
    return Analysis(
        project_type=kind, complexity=level, estimated_hours=hours,
        required_agents=sorted({s[1] for s in steps}),
        key_requirements=[f"Deliver: {s[0].lower()}" for s in steps[1:5]],
        potential_risks=["Unclear or shifting requirements", "Integration delays between teams",
                         "Quality issues found late"],
        success_criteria=["Every task meets its acceptance criteria",
                          "The deliverable is ready for client review",
                          "Stakeholders sign off within one review round"],
        recommended_approach=(f"Plan first, then run research and design in parallel, build on "
                              f"them, and finish with QA for: {subject(request)}"),
    )


def plan(kind: ProjectType, request: str = "") -> Plan:
    tasks = [PlanTask(title=title, agent_type=agent.value, dependencies=list(deps),
                      estimated_tokens=tokens, deliverables=list(outs),
                      description=f"{title}: produce {', '.join(outs)}.",
                      acceptance_criteria=[f"{o.capitalize()} is complete and consistent "
                                           "with the inputs" for o in outs])
             for title, agent, deps, tokens, outs in PLANS[kind]]
    return Plan(tasks=tasks, execution_order=list(range(len(tasks))))


_SECTIONS: dict[AgentType, tuple[str, ...]] = {
    AgentType.MARKETING: ("Positioning", "Target audience", "Channels and tactics", "KPIs"),
    AgentType.FRONTEND_DEVELOPER: ("Page structure", "Components", "Accessibility",
                                   "Performance budget"),
    AgentType.BACKEND_DEVELOPER: ("Data model", "Endpoints", "Security", "Scaling notes"),
    AgentType.MOBILE_DEVELOPER: ("Architecture", "Screens", "Offline behaviour",
                                 "Release notes"),
    AgentType.DEVOPS_ENGINEER: ("Environments", "Pipeline", "Monitoring", "Rollback"),
    AgentType.DATA_ANALYST: ("Questions", "Method", "Findings", "Caveats"),
    AgentType.UX_DESIGNER: ("Personas", "User flows", "Wireframes", "Usability checks"),
    AgentType.PROJECT_MANAGER: ("Milestones", "Responsibilities", "Risks", "Cadence"),
    AgentType.QA_ENGINEER: ("Scope", "Test cases", "Non-functional checks", "Exit criteria"),
    AgentType.CONTENT_WRITER: ("Voice and tone", "Headlines", "Body copy", "Calls to action"),
}

_ARTIFACTS: dict[AgentType, tuple[str, str]] = {
    AgentType.FRONTEND_DEVELOPER: (
        "frontend/index.html",
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
        "<title>{s}</title></head>\n<body>\n<header><h1>{s}</h1></header>\n"
        "<main id=\"content\"></main>\n</body>\n</html>\n"),
    AgentType.BACKEND_DEVELOPER: ("backend/openapi.yaml",
                                  "openapi: 3.1.0\ninfo:\n  title: {s}\n  version: 0.1.0\npaths:\n"
                                  "  /health:\n    get:\n      responses:\n        '200':\n"
                                  "          description: OK\n"),
    AgentType.DEVOPS_ENGINEER: ("devops/pipeline.yml",
                                "stages: [test, build, deploy]\ntest:\n  script: [make test]\n"
                                "build:\n  script: [make build]\ndeploy:\n  script: [make deploy]\n"
                                "  when: manual\n"),
    AgentType.QA_ENGINEER: ("qa/test-plan.md", "# Test plan: {s}\n\n| id | case | expected |\n"
                            "| --- | --- | --- |\n| T1 | Smoke test | Passes |\n"),
}


def _bullets(agent: AgentType, section: str, hints: dict[str, Any]) -> list[str]:
    outs = hints.get("deliverables") or ["the task's outputs"]
    lines = [f"{section} for {subject(hints.get('request', ''))}: covers {outs[0]}."]
    lines += [f"Builds on '{d['title']}' ({d['agent_type']}): {d['summary']}"
              for d in hints.get("dependencies", [])[:2]]
    lines.append(f"Checked against: {(hints.get('acceptance_criteria') or ['the brief'])[0]}")
    return lines


def agent_output(hints: dict[str, Any]) -> AgentOutput:
    agent = AgentType(hints["agent_type"])
    title, request = hints["title"], subject(hints.get("request", ""))
    parts = [f"# {title}", "", f"Specialist: {agent.value}. Project: {request}.", ""]
    for section in _SECTIONS[agent]:
        parts += [f"## {section}", "", *(f"- {b}" for b in _bullets(agent, section, hints)), ""]
    parts += ["## Deliverables", "", *(f"- [x] {d}" for d in hints.get("deliverables", [])), ""]
    artifacts = []
    if agent in _ARTIFACTS:
        path, template = _ARTIFACTS[agent]
        artifacts.append(Artifact(path=path, content=template.replace("{s}", request)))
    summary = f"{title} done by {agent.value}: " + ", ".join(hints.get("deliverables", [])[:3])
    return AgentOutput(summary=summary, content="\n".join(parts), artifacts=artifacts)


_TECHNICAL = frozenset(a.value for a in (
    AgentType.BACKEND_DEVELOPER, AgentType.FRONTEND_DEVELOPER, AgentType.DEVOPS_ENGINEER,
    AgentType.MOBILE_DEVELOPER, AgentType.DATA_ANALYST))


def deliverable(hints: dict[str, Any]) -> Deliverable:
    results: list[dict[str, str]] = hints.get("results", [])
    request = subject(hints.get("request", ""))
    by_agent: dict[str, list[str]] = {}
    for r in results:
        by_agent.setdefault(r["agent_type"], []).append(f"{r['title']}: {r['summary']}")
    return Deliverable(
        executive_summary=(f"{len(results)} specialist tasks by {len(by_agent)} agent types "
                           f"delivered a complete first version of: {request}."),
        key_deliverables=[DeliverableSection(title=a.replace("_", " ").title(), items=items)
                          for a, items in sorted(by_agent.items())],
        technical_details=[DeliverableSection(title=r["title"], items=[r["summary"]])
                           for r in results if r["agent_type"] in _TECHNICAL],
        next_steps=["Review the deliverable with stakeholders", "Prioritise feedback",
                    "Schedule the next iteration"],
        success_metrics=list(hints.get("success_criteria") or ["Stakeholder sign-off"]),
        appendix=[DeliverableSection(title="Task outputs",
                                     items=[f"{r['title']} ({r['agent_type']})" for r in results]),
                  *([DeliverableSection(title="From the knowledge base",
                                        items=list(hints["findings"]))]
                    if hints.get("findings") else [])],
    )

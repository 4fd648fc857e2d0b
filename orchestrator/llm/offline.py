"""A deterministic stand-in for Claude: classifies, plans and writes templated specialist work."""

from __future__ import annotations

import re
import time
from typing import Any

from orchestrator.constants import AgentType, Complexity, ProjectType
from orchestrator.llm.base import CompletionRequest, CompletionResponse
from orchestrator.llm.offline_plans import EVENT_PLAN, KEYWORDS, PLANS, Step
from orchestrator.llm.offline_subject import Subject, is_event, subject_of
from orchestrator.models import (
    AgentOutput,
    Analysis,
    Artifact,
    Deliverable,
    DeliverableSection,
    Plan,
    PlanTask,
    Tokens,
)

MODEL_NAME = "offline"

__all__ = ["MODEL_NAME", "OfflineProvider", "agent_output", "analyze", "classify", "complexity",
           "deliverable", "is_event", "plan", "subject"]


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


def _steps(kind: ProjectType, request: str) -> tuple[Step, ...]:
    return EVENT_PLAN if kind is ProjectType.CUSTOM and is_event(request) else PLANS[kind]


def _requirements(kind: ProjectType, s: Subject) -> list[str]:
    o = s.offerings
    if s.is_event:
        return [f"A {s.tone} {s.noun} for {s.audience}",
                f"Cover {', '.join(o[:-1])} and {o[-1]}",
                "A budget and headcount agreed before anything is booked",
                "Invitations, reminders and a run-of-show everyone can follow",
                "Step-free access and dietary needs handled for every guest"]
    first = {ProjectType.WEBSITE: f"A fast, accessible website presenting {s.brand}",
             ProjectType.MOBILE_APP: f"An iOS and Android app for {s.brand}",
             ProjectType.MARKETING_CAMPAIGN: f"A campaign that brings {s.brand} to new customers",
             ProjectType.DATA_ANALYSIS: f"An analysis of {s.brand}'s figures with a dashboard",
             ProjectType.CONTENT_CREATION: f"A content series about {s.noun}",
             }.get(kind, f"A working first version of {s.brand}")
    return [first, f"Present {', '.join(o[:-1])} and {o[-1]} clearly",
            f"Written for {s.audience}", f"A {s.tone} voice throughout",
            f"An easy way to get in touch or act ({s.booking.replace('-', ' ')})"]


def _risks(s: Subject) -> list[str]:
    if s.is_event:
        return ["Late RSVPs leave the headcount uncertain",
                f"A supplier for {s.offerings[1]} cancels close to the date",
                "Weather or venue access problems on the day",
                "Spending drifts past the budget without anyone noticing"]
    return [f"Prices, photos and details for {s.offerings[0]} arrive late from {s.brand}",
            f"The {s.offerings[-1]} flow is more complex than it looks",
            f"The message misses {s.audience.split(', ')[0]}",
            "Scope grows beyond the first version"]


def _success(s: Subject) -> list[str]:
    if s.is_event:
        return ["At least 80% of invited guests reply by the RSVP date",
                "Spending stays within 10% of the agreed budget",
                "The run-of-show runs without a missing item",
                "Guests rate the day at least 4.5 out of 5"]
    return [f"{s.brand}'s owner signs off within one review round",
            f"Visitors find {s.offerings[0]} within two clicks or taps",
            f"{s.booking.replace('-', ' ').capitalize()} or enquiries rise within 90 days",
            "Every task meets its acceptance criteria"]


def analyze(request: str) -> Analysis:
    """The analysis of a request: its type, size, agents, and what success means for it."""
    event = is_event(request)
    kind = ProjectType.CUSTOM if event else classify(request)
    steps = _steps(kind, request)
    s = subject_of(request)
    level = complexity(request)
    hours = {Complexity.SIMPLE: 40, Complexity.MODERATE: 120, Complexity.COMPLEX: 320,
             Complexity.ENTERPRISE: 800}[level]
    approach = (f"Agree the brief and budget first, then plan guests and the programme in "
                f"parallel, meet in a run-of-show, and rehearse it for: {s.brand}" if event else
                f"Plan first, then run research and design in parallel, build on them, and "
                f"finish with QA for {s.brand} ({subject(request)})")
    return Analysis(
        project_type=kind, complexity=level, estimated_hours=hours,
        required_agents=sorted({step[1] for step in steps}),
        key_requirements=_requirements(kind, s), potential_risks=_risks(s),
        success_criteria=_success(s), recommended_approach=approach,
    )


def plan(kind: ProjectType, request: str = "") -> Plan:
    """The plan template for the project type; an event to organise gets the event plan."""
    tasks = [PlanTask(title=title, agent_type=agent.value, dependencies=list(deps),
                      estimated_tokens=tokens, deliverables=list(outs),
                      description=f"{title}: produce {', '.join(outs)}.",
                      acceptance_criteria=[f"{o[:1].upper() + o[1:]} is complete and consistent "
                                           "with the inputs" for o in outs])
             for title, agent, deps, tokens, outs in _steps(kind, request)]
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
                                     items=[f"{r['title']} ({r['agent_type']})" for r in results])],
    )


class OfflineProvider:
    """Deterministic answers through the same seam as the Anthropic provider."""

    name = "offline"

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency

    def _answer(self, request: CompletionRequest) -> str:
        hints = request.hints
        match request.schema_name:
            case "analysis":
                return analyze(hints["request"]).model_dump_json()
            case "plan":
                return plan(ProjectType(hints["project_type"])).model_dump_json()
            case "agent_output":
                return agent_output(hints).model_dump_json()
            case "deliverable":
                return deliverable(hints).model_dump_json()
            case _:
                return "{}"

    def complete(self, request: CompletionRequest) -> CompletionResponse:
        started = time.monotonic()
        if self.latency:
            time.sleep(self.latency)
        text = self._answer(request)
        prompt_chars = len(request.system) + sum(len(m["content"]) for m in request.messages)
        tokens = Tokens(input=prompt_chars // 4 + 1, output=len(text) // 4 + 1)
        return CompletionResponse(text=text, model=MODEL_NAME, tokens=tokens,
                                  latency_ms=int((time.monotonic() - started) * 1000),
                                  stop_reason="end_turn")

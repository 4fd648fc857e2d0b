"""A deterministic stand-in for Claude: classifies, plans and writes templated specialist work."""

from __future__ import annotations

from typing import Any

from agency_offline.plans import EVENT_PLAN, PLANS, Step, classify
from agency_offline.subject import Subject, is_event, subject_of
from orchestrator.domain.constants import AgentType, Complexity, ProjectType
from orchestrator.domain.models import (
    Analysis,
    Deliverable,
    DeliverableSection,
    Plan,
    PlanTask,
)

MODEL_NAME = "offline"

__all__ = ["MODEL_NAME", "analyze", "classify", "complexity", "deliverable", "is_event", "plan",
           "subject"]


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

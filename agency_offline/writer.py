"""The offline model's specialist writer: a credible first draft for one task of one request.

Pure functions of a TaskBrief: the same task brief always gives the same output. Sections
are chosen by deliverable (tech.TOPICS), sentences by a hash of the task and subject, so two
tasks of one project do not read alike. Files come from agency_offline/files.py.
"""

from __future__ import annotations

import re

from agency_offline.brief import Dependency, Finding, TaskBrief
from agency_offline.files import files_for
from agency_offline.subject import Subject, subject_of
from agency_offline.tech import topic
from agency_offline.topics import Ctx, cap, groups
from orchestrator.domain.constants import AgentType
from orchestrator.domain.models import AgentOutput, Artifact

__all__ = ["Dependency", "Finding", "Subject", "TaskBrief", "artifacts_for", "draft", "subject_of"]


A = AgentType
ROLE: dict[AgentType, str] = {
    A.MARKETING: "marketing", A.FRONTEND_DEVELOPER: "frontend", A.BACKEND_DEVELOPER: "backend",
    A.MOBILE_DEVELOPER: "mobile", A.DEVOPS_ENGINEER: "DevOps", A.DATA_ANALYST: "data",
    A.UX_DESIGNER: "UX", A.PROJECT_MANAGER: "project management", A.QA_ENGINEER: "QA",
    A.CONTENT_WRITER: "content"}

# Per agent: how the draft opens ({b} brand, {n} noun, {a} first audience group, {o} offerings).
INTROS: dict[AgentType, tuple[str, ...]] = {
    A.MARKETING: ("This draft sets out how {b} reaches {a} and turns their interest into action.",
                  "Who should hear about {b}, what they should hear, and where: that is this "
                  "draft."),
    A.FRONTEND_DEVELOPER: ("This is the first build of the pages {a} will see: {b} presented "
                           "in plain, fast, accessible HTML and CSS.",
                           "The front end for {b} starts from the visitor on a phone: the "
                           "offerings ({o}) are visible without hunting."),
    A.BACKEND_DEVELOPER: ("The back end behind {b} keeps the data small and the rules explicit, "
                          "so the {n} can take requests from {a} reliably.",
                          "Here is the service layer for {b}: what it stores, what it exposes, "
                          "and how it stays safe."),
    A.MOBILE_DEVELOPER: ("The app puts {b} in the pocket of {a}: browse {o}, act in a few "
                         "taps, and keep working on a weak connection.",),
    A.DEVOPS_ENGINEER: ("This draft makes shipping {b} boring: every change tested, deployed "
                        "the same way, observable, and easy to undo.",),
    A.DATA_ANALYST: ("The numbers below are a first, reproducible look at {b}: what the data "
                     "says, how sure we are, and what to do about it.",
                     "A small, honest dataset for {b}, read with {a} in mind."),
    A.UX_DESIGNER: ("This draft follows {a} through {b}, from first impression to the moment "
                    "they get what they came for.",
                    "Designing {b} for {a}: the structure first, then the paths through it."),
    A.PROJECT_MANAGER: ("This plan turns the request into dated, owned steps so {b} happens on "
                        "time and without surprises.",
                        "Who does what, by when, and what could go wrong: the plan for {b}."),
    A.QA_ENGINEER: ("This draft lists what we check before {b} goes in front of {a}, and what "
                    "counts as ready.",),
    A.CONTENT_WRITER: ("The words for {b}, written in a {t} voice for {a}.",
                       "Copy that sounds like {b}: {t}, specific, and short enough to read on "
                       "a phone."),
}

# A closing section per agent: (heading, sentence templates).
APPROACH: dict[AgentType, tuple[str, tuple[str, ...]]] = {
    A.MARKETING: ("Message and tone", ("Lead with {o0}; keep the voice {t}; repeat the "
                                       "brand name {b} in every touchpoint.",)),
    A.FRONTEND_DEVELOPER: ("Accessibility and performance", (
        "Semantic landmarks, one h1, labelled controls, colour contrast above 4.5:1; no "
        "external scripts or fonts, so the page weighs under 100 KB and works offline.",)),
    A.BACKEND_DEVELOPER: ("Security and operations", (
        "Validate every input against the schema, rate-limit the public forms, keep secrets in "
        "the environment, and log request ids rather than personal data.",)),
    A.MOBILE_DEVELOPER: ("Release notes", ("Version 1.0 ships {o0} and {o1}; {o3} follows in "
                                           "1.1 once the first reviews are in.",)),
    A.DEVOPS_ENGINEER: ("Rollback", ("Every deploy is a tagged artefact; rolling back is "
                                     "redeploying the previous tag, tested once a month.",)),
    A.DATA_ANALYST: ("Method and caveats", (
        "Figures are a first estimate from a small sample; treat differences under 10% as "
        "noise until three more months of data confirm them.",)),
    A.UX_DESIGNER: ("Usability checks", ("Five people from the audience try the main path "
                                         "while thinking aloud; anything that stops two of "
                                         "them gets fixed before build.",)),
    A.PROJECT_MANAGER: ("Cadence", ("A 20-minute check-in each week: done, next, blocked; "
                                    "decisions logged in one place; the host/owner of {b} "
                                    "signs off each milestone.",)),
    A.QA_ENGINEER: ("Exit criteria", ("Ready when every critical case passes, no blocker is "
                                      "open, and the owner of {b} has walked the main path "
                                      "once.",)),
    A.CONTENT_WRITER: ("Voice and tone", ("{T}, concrete, never salesy: name the {n}'s real "
                                          "offerings ({o}) instead of adjectives.",)),
}

EVENT_APPROACH: dict[AgentType, tuple[str, str]] = {
    A.MARKETING: ("Guest communications tone", "Keep it {t}: every message names {b}, "
                  "says what to do next, and by when."),
    A.PROJECT_MANAGER: ("Cadence", "Weekly 15-minute check-ins until T-2 weeks, then daily "
                        "messages; the host signs off the run-of-show."),
    A.DATA_ANALYST: ("Method and caveats", "Costs are planning estimates from typical local "
                     "prices; replace each with a real quote as it arrives."),
    A.UX_DESIGNER: ("Walk-through", "Walk the venue once as a guest would — entrance, coats, "
                    "food, seats, exit — and fix anything that needs asking twice."),
    A.QA_ENGINEER: ("Exit criteria", "Ready when every item on the checklist is ticked and the "
                    "host has walked the run-of-show once."),
    A.CONTENT_WRITER: ("Voice and tone", "{T} and personal; short sentences that can be read "
                       "aloud; the guest of honour's name before anything else."),
}

# A draft's sections that quote or check the work rather than being it (a reviewer skips them).
KNOWLEDGE_HEADING = "What the project's knowledge base says"
CHECKLIST_HEADING = "Acceptance criteria"
SOURCES_HEADING = "Sources"
NOT_WORK = (CHECKLIST_HEADING, SOURCES_HEADING, KNOWLEDGE_HEADING)
DEP_LEADS = ("Building on", "Taking forward", "Starting from", "Drawing on")
DEP_USES = ("this draft keeps the same audience and promises",
            "this draft turns that into concrete steps",
            "that sets the constraints this draft works within",
            "nothing here contradicts it; where it leaves a choice open, this draft makes it")


def _ctx(brief: TaskBrief, s: Subject) -> Ctx:
    return Ctx(subject=s, agent=brief.agent_type, title=brief.title, request=brief.request)


def _fill(template: str, s: Subject) -> str:
    o = s.offerings
    return template.format(b=s.brand, n=s.noun, a=groups(s)[0], o=", ".join(o), o0=o[0],
                           o1=o[1], o3=o[-1], t=s.tone, T=cap(s.tone))


def _first_sentence(text: str) -> str:
    body = " ".join(line for line in text.splitlines()
                    if line.strip() and not line.lstrip().startswith(("#", "|", "```")))
    body = re.sub(r"[*_`>]+", "", body).strip(" -")
    match = re.match(r"(.{20,220}?[.!?])(\s|$)", body)
    return match.group(1) if match else body[:200]


def _intro(brief: TaskBrief, c: Ctx) -> list[str]:
    s = c.subject
    opening = _fill(c.pick(INTROS[brief.agent_type], "intro"), s)
    scope = (f"The request: “{brief.request.strip()}”. This task, {brief.title}, "
             f"delivers {_join(brief.deliverables) or 'the work described in its brief'}.")
    lines = [opening, scope]
    if brief.description and not brief.description.startswith(brief.title):
        lines.append(f"Brief: {brief.description.strip()}")
    return ["\n\n".join(lines)]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + (
        f" and {items[-1]}" if items else "")


def _dependencies(brief: TaskBrief, c: Ctx) -> list[str]:
    if not brief.dependencies:
        return []
    heading = c.pick(("What this builds on", "Inputs from earlier tasks", "Starting point"),
                     "deps")
    out = [f"## {heading}", ""]
    for i, dep in enumerate(brief.dependencies):
        quote = _first_sentence(dep.excerpt)
        said = f" Its draft notes: “{quote}”" if quote else ""
        role = next((r for a, r in ROLE.items() if a.value == dep.agent_type), dep.agent_type)
        out += [f"{c.pick(DEP_LEADS, f'lead{i}')} **{dep.title}** ({role}): "
                f"{dep.summary.strip()}{said} For {brief.title}, "
                f"{c.pick(DEP_USES, f'use{i}')}.", ""]
    return out


def _findings(brief: TaskBrief, c: Ctx) -> list[str]:
    if not brief.findings:
        return []
    out = [f"## {KNOWLEDGE_HEADING}", ""]
    out += [f"- {f.snippet.strip()} (source: {f.source}) — taken into account in "
            f"{brief.title}." for f in brief.findings]
    return [*out, ""]


EXPANSIONS = (
    "Revised after review: each point above now names who it is for ({g}) and what "
    "{b} does next about {o}.",
    "Revised after review: added the concrete next step for {o} and the owner at {b}, so "
    "{g} see the change within the first weeks.",
)


def _sections(brief: TaskBrief, c: Ctx, extra: list[str]) -> list[str]:
    s, out = c.subject, []
    revised = {_covered(n, brief) for n in brief.review_notes} - {""}
    for i, d in enumerate([*brief.deliverables, *extra]):
        out += [f"## {cap(d)}", "", topic(c, d), ""]
        if d in revised:
            g = groups(s)[i % len(groups(s))]
            text = c.pick(EXPANSIONS, d).format(g=g, b=s.brand,
                                                o=s.offerings[i % len(s.offerings)])
            out += [text, ""]
    return out


def _approach(brief: TaskBrief, c: Ctx) -> list[str]:
    s = c.subject
    if s.is_event and brief.agent_type in EVENT_APPROACH:
        heading, text = EVENT_APPROACH[brief.agent_type]
    else:
        heading, options = APPROACH[brief.agent_type]
        text = c.pick(options, "approach")
    return [f"## {heading}", "", _fill(text, s), ""]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", text.lower())}


def _where(criterion: str, headings: list[str]) -> str:
    scores = [(len(_words(criterion) & _words(h)), h) for h in headings]
    best = max(scores, default=(0, ""))
    return best[1] if best[0] else ""


def _criteria(brief: TaskBrief, headings: list[str]) -> list[str]:
    if not brief.criteria:
        return []
    out = [f"## {CHECKLIST_HEADING}", ""]
    for criterion in brief.criteria:
        where = _where(criterion, headings)
        how = (f"met in “{where}” above" if where
               else "met: checked against the request and the inputs listed under Sources")
        out.append(f"- [x] {criterion} — {how}.")
    return [*out, ""]


_MISSING = re.compile(r"\b(?:missing|add|adds|lacks?|no|needs?|include|without)\s+"
                      r"(?:an?\s+|the\s+|any\s+)?([a-z][a-z /&-]{2,60}?)(?:\s+section)?"
                      r"(?:[.;,!]|$)", re.I)


def _covered(note: str, brief: TaskBrief) -> str:
    low = note.lower()
    return next((d for d in brief.deliverables if d.lower() in low), "")


def review_additions(brief: TaskBrief) -> list[str]:
    """Sections a redraft adds because a reviewer found them missing."""
    extra: list[str] = []
    for note in brief.review_notes:
        match = _MISSING.search(note)
        if _covered(note, brief) or not match:
            continue
        thing = match.group(1).strip()
        if thing.lower() not in (e.lower() for e in extra):
            extra.append(thing)
    return extra


def _response(note: str, brief: TaskBrief, s: Subject, extra: list[str]) -> str:
    covered = _covered(note, brief)
    if covered:
        return (f"“{cap(covered)}” has its own section, now expanded with concrete next steps "
                f"for {s.brand}.")
    found = next((e for e in extra if e.lower() in note.lower()), "")
    if found:
        return f"added the section “{cap(found)}”, written for {s.brand}."
    low = note.lower()
    if any(w in low for w in ("source", "cite", "evidence")):
        return "every input is now attributed in place and listed under Sources."
    if any(w in low for w in ("generic", "specific", "vague")):
        return (f"every section now names {s.brand} and its offerings "
                f"({', '.join(s.offerings)}) instead of general advice.")
    if any(w in low for w in ("criteri", "acceptance")):
        return "each acceptance criterion is now listed with where it is met."
    return f"reworked the affected sections of {brief.title} to address this directly."


def _review(brief: TaskBrief, s: Subject, extra: list[str]) -> list[str]:
    if not brief.review_notes:
        return []
    out = ["## Changes after review", ""]
    out += [f"- Reviewer: “{note.strip()}” — Change: {_response(note, brief, s, extra)}"
            for note in brief.review_notes]
    return [*out, ""]


def _sources(brief: TaskBrief, s: Subject) -> list[str]:
    out = [f"## {SOURCES_HEADING}", ""]
    out += [f"- Task “{d.title}” ({d.agent_type}): {d.summary.strip()} — used in "
            f"{brief.title}." for d in brief.dependencies]
    out += [f"- {f.source}: “{f.snippet.strip()[:160]}” — cited in {brief.title}."
            for f in brief.findings]
    if len(out) == 2:
        out.append(f"- The request itself, “{brief.request.strip()}”, read as a {s.noun} for "
                   f"{groups(s)[0]}; no earlier task or knowledge-base entry was needed for "
                   f"{brief.title}.")
    return out


def _summary(brief: TaskBrief, s: Subject) -> str:
    made = _join(brief.deliverables[:3]) or "the task's work"
    basis = (f"It builds on {_join([d.title for d in brief.dependencies[:2]])}"
             if brief.dependencies else "It starts from the request")
    return (f"{brief.title} for {s.brand}: {made}. {basis} and is written for "
            f"{groups(s)[0]}.")


def draft(brief: TaskBrief) -> AgentOutput:
    """A first draft for the brief: summary, Markdown content and the files this agent writes."""
    s = subject_of(brief.request)
    c = _ctx(brief, s)
    extra = review_additions(brief)
    body = _sections(brief, c, extra)
    headings = [line[3:] for line in body if line.startswith("## ")]
    parts = [f"# {brief.title}", "", *_intro(brief, c), "", *_dependencies(brief, c),
             *_findings(brief, c), *body, *_approach(brief, c), *_criteria(brief, headings),
             *_review(brief, s, extra), *_sources(brief, s)]
    return AgentOutput(summary=_summary(brief, s), content="\n".join(parts).rstrip() + "\n",
                       artifacts=files_for(brief, s))


def artifacts_for(brief: TaskBrief) -> list[Artifact]:
    """The files this agent writes for this request (relative, lowercase paths)."""
    return files_for(brief, subject_of(brief.request))

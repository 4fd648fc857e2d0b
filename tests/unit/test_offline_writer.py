"""The offline writer drafts work that fits the request: subject, files, reviews, determinism."""

from __future__ import annotations

import csv
import io
import re
from html.parser import HTMLParser
from xml.etree import ElementTree

import pytest
import yaml

from agency_offline.classify import analyze, is_event, plan
from agency_offline.data import CALENDAR_HEADER
from agency_offline.writer import Dependency, Finding, TaskBrief, draft, subject_of
from orchestrator.domain import dag
from orchestrator.domain.constants import AgentType, ProjectType
from orchestrator.domain.models import AgentOutput

BAKERY = "Build a website for a bakery"
PARTY = "Organise Maya's 7th birthday party in Lisbon"
SOFTWARE = {AgentType.FRONTEND_DEVELOPER, AgentType.BACKEND_DEVELOPER,
            AgentType.MOBILE_DEVELOPER, AgentType.DEVOPS_ENGINEER}


def task_brief(agent: AgentType, request: str = BAKERY, **kw: object) -> TaskBrief:
    fields: dict[str, object] = {
        "title": f"{agent.value} task", "description": "Do the work.",
        "deliverables": ["first thing", "second thing"], "criteria": ["It is complete"],
        "dependencies": [], "findings": [], "review_notes": []}
    fields.update(kw)
    return TaskBrief(agent_type=agent, request=request, **fields)  # type: ignore[arg-type]


def files(out: AgentOutput) -> dict[str, str]:
    return {a.path: a.content for a in out.artifacts}


def run_plan(request: str) -> list[tuple[AgentType, AgentOutput]]:
    """Draft every task of the request's plan in order, feeding outputs forward."""
    p = plan(analyze(request).project_type, request)
    outs: list[AgentOutput] = []
    for t in p.tasks:
        deps = [Dependency(p.tasks[d].title, p.tasks[d].agent_type, outs[d].summary,
                           outs[d].content[:600]) for d in t.dependencies]
        outs.append(draft(TaskBrief(AgentType(t.agent_type), t.title, t.description, request,
                                t.deliverables, t.acceptance_criteria, deps)))
    return [(AgentType(t.agent_type), o) for t, o in zip(p.tasks, outs, strict=True)]


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.text: dict[str, str] = {}
        self.classes: set[str] = set()
        self.links: list[dict[str, str | None]] = []
        self.srcs: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.classes.update((a.get("class") or "").split())
        if tag == "link":
            self.links.append(a)
        self.srcs += [v for k, v in attrs if k == "src"]
        if tag not in ("meta", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}> in {self.stack}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack:
            self.text[self.stack[-1]] = self.text.get(self.stack[-1], "") + data


def test_subject_of_known_domain_and_fallback() -> None:
    bakery = subject_of(BAKERY)
    assert (bakery.name, bakery.noun) == ("Bakery", "bakery")
    assert "Bakery" in bakery.brand or "Flour" in bakery.brand
    assert set(bakery.offerings) == {"breads", "pastries", "cakes", "custom orders"}
    plumbing = subject_of("Build a website for a plumbing company")
    assert plumbing.domain == "generic" and "plumbing" in plumbing.offerings[0]
    assert subject_of('A site for a dentist called "Smile Bright"').brand == "Smile Bright"
    assert subject_of(PARTY).brand == "Maya's 7th Birthday Party"
    assert subject_of(PARTY).location == "Lisbon"


def test_website_html_is_about_the_subject_and_styled() -> None:
    out = files(draft(task_brief(AgentType.FRONTEND_DEVELOPER)))
    html, css = out["site/index.html"], out["site/styles.css"]
    page = Page()
    page.feed(html)
    page.close()
    s = subject_of(BAKERY)
    assert html.startswith("<!doctype html>") and page.stack == []
    assert s.brand in page.text["title"] and s.brand in page.text["h1"]
    assert [link["href"] for link in page.links if link.get("rel") == "stylesheet"] == \
        ["styles.css"]
    for offering in s.offerings:
        assert offering.lower() in html.lower()
    missing = {c for c in page.classes if not re.search(rf"\.{re.escape(c)}\b", css)}
    assert not missing, f"classes without a rule: {missing}"
    assert "@media" in css and "--accent" in css
    assert page.srcs == [] and "http" not in re.sub(r"https?://www\.w3\.org", "", html)


def test_openapi_parses_with_the_subjects_paths() -> None:
    doc = yaml.safe_load(files(draft(task_brief(AgentType.BACKEND_DEVELOPER)))["api/openapi.yaml"])
    assert str(doc["openapi"]).startswith("3.1")
    assert {"/products", "/orders", "/orders/{id}", "/contact"} <= set(doc["paths"])
    assert {"Item", "Booking", "Error"} <= set(doc["components"]["schemas"])
    assert doc["components"]["schemas"]["Item"]["properties"]["category"]["enum"] == \
        list(subject_of(BAKERY).offerings)
    ref = doc["paths"]["/orders"]["post"]["responses"]["201"]["content"]["application/json"]
    assert ref["schema"]["$ref"] == "#/components/schemas/Booking"


@pytest.mark.parametrize(("request_text", "first_column"), [
    (BAKERY, "month"), (PARTY, "category"), ("Analyze churn data and build a dashboard",
                                            "cohort")])
def test_data_analyst_writes_a_csv_and_its_chart(request_text: str, first_column: str) -> None:
    out = files(draft(task_brief(AgentType.DATA_ANALYST, request_text)))
    (csv_path,) = [p for p in out if p.endswith(".csv")]
    assert re.fullmatch(r"data/[a-z0-9-]+\.csv", csv_path)
    rows = list(csv.reader(io.StringIO(out[csv_path])))
    assert rows[0][0] == first_column and 10 <= len(rows) - 1 <= 14
    assert all(len(r) == len(rows[0]) for r in rows)
    svg = ElementTree.fromstring(out[csv_path.replace(".csv", "-chart.svg")])
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag == f"{ns}svg"
    assert len(svg.findall(f"{ns}rect")) == len(rows)  # background plus one bar per row
    labels = "".join(t.text or "" for t in svg.iter(f"{ns}text"))
    assert rows[1][0 if first_column != "category" else 1][:10] in labels


@pytest.mark.parametrize("request_text", ["Run a social media campaign for our new sneakers",
                                          PARTY])
def test_marketing_content_calendar(request_text: str) -> None:
    out = files(draft(task_brief(AgentType.MARKETING, request_text, title="Campaign plan")))
    rows = list(csv.DictReader(io.StringIO(out["marketing/content-calendar.csv"])))
    assert list(rows[0]) == CALENDAR_HEADER and 8 <= len(rows) <= 12
    dates = [r["date"] for r in rows]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    assert all(r["message"] and r["kpi"] for r in rows)


def test_every_agent_writes_relative_lowercase_files() -> None:
    for agent in AgentType:
        for path in files(draft(task_brief(agent, title="Launch plan"))):
            assert path == path.lower() and not path.startswith("/") and ".." not in path


def paragraphs(text: str) -> set[str]:
    return {p.strip() for p in text.split("\n\n") if p.strip() and not p.startswith("#")}


def test_agents_on_one_request_share_no_paragraph() -> None:
    outs = run_plan(BAKERY)
    for i, (agent_a, a) in enumerate(outs):
        for agent_b, b in outs[i + 1:]:
            if agent_a is not agent_b:
                assert not paragraphs(a.content) & paragraphs(b.content), (agent_a, agent_b)


def test_content_refers_to_subject_dependencies_and_findings() -> None:
    dep = Dependency("Audience research", "marketing", "Families order cakes for weekends.",
                     "# Audience research\n\nMost orders are celebration cakes for Saturdays.")
    found = Finding("kb/brand.md", "Use the phrase 'baked this morning'.")
    out = draft(task_brief(AgentType.CONTENT_WRITER, dependencies=[dep], findings=[found]))
    s = subject_of(BAKERY)
    assert s.brand in out.content and "Audience research" in out.content
    assert "Families order cakes for weekends." in out.content
    assert "Most orders are celebration cakes for Saturdays." in out.content
    assert "(source: kb/brand.md)" in out.content
    sources = out.content.split("## Sources", 1)[1]
    assert "Audience research" in sources and "kb/brand.md" in sources
    assert out.summary.count(". ") == 1


@pytest.mark.parametrize("agent", list(AgentType))
def test_every_deliverable_and_criterion_is_visible(agent: AgentType) -> None:
    b = task_brief(agent, deliverables=["risk register", "launch checklist", "pricing overview"],
              criteria=["Risks have owners", "Checklist is dated"])
    content = draft(b).content
    for d in b.deliverables:
        assert re.search(rf"^## {re.escape(d)}$", content, re.I | re.M), d
    for c in b.criteria:
        assert f"- [x] {c}" in content


def test_review_notes_get_a_changes_section_and_are_satisfied() -> None:
    notes = ["Missing a pricing overview.", "The risk register is too thin."]
    b = task_brief(AgentType.PROJECT_MANAGER, deliverables=["milestone plan", "risk register"],
              review_notes=notes)
    content = draft(b).content
    changes = content.split("## Changes after review", 1)[1].split("\n## ", 1)[0]
    for note in notes:
        assert note in changes
    assert re.search(r"^## Pricing overview$", content, re.M)
    assert "Revised after review" in content.split("## Risk register", 1)[1].split("\n## ")[0]
    assert "## Changes after review" not in draft(task_brief(AgentType.PROJECT_MANAGER)).content


def test_same_brief_same_output() -> None:
    b = task_brief(AgentType.UX_DESIGNER, review_notes=["Add a usability test"],
              dependencies=[Dependency("Plan", "project_manager", "Six weeks.", "Six weeks.")])
    assert draft(b) == draft(b)
    other = task_brief(AgentType.UX_DESIGNER, title="Another task")
    assert draft(b).content != draft(other).content


@pytest.mark.parametrize("request_text", [PARTY, "Plan a company offsite",
                                          "Organise our 25th wedding anniversary celebration"])
def test_events_plan_without_software(request_text: str) -> None:
    assert is_event(request_text)
    analysis = analyze(request_text)
    assert analysis.project_type is ProjectType.CUSTOM
    assert not set(analysis.required_agents) & SOFTWARE
    p = plan(analysis.project_type, request_text)
    graph = dag.validate_plan(p)
    assert 7 <= len(p.tasks) <= 9
    assert not {AgentType(t.agent_type) for t in p.tasks} & SOFTWARE
    assert {AgentType(t.agent_type) for t in p.tasks} == set(analysis.required_agents)
    assert any(len(s) >= 2 for s in graph.successors()) and any(len(d) >= 2 for d in graph.deps)
    assert dag.false_waits(graph, dag.series_parallel(graph)) == []
    for agent, out in run_plan(request_text):
        assert not re.search(r"\b(API|endpoint|HTML|deploy)", out.content), agent


def test_software_words_win_over_event_words() -> None:
    assert not is_event("Build a website for our wedding")
    assert not is_event("A mobile app for conference attendees")
    assert not is_event("Book an appointment app")
    assert plan(ProjectType.CUSTOM).tasks[3].agent_type == AgentType.BACKEND_DEVELOPER.value
    assert analyze("Build a website for our wedding").project_type is ProjectType.WEBSITE


def test_analysis_speaks_about_the_request() -> None:
    a = analyze(BAKERY)
    text = " ".join([*a.key_requirements, *a.potential_risks, *a.success_criteria])
    assert subject_of(BAKERY).brand in text and "breads" in text
    assert "Deliver:" not in text

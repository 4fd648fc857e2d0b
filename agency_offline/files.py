"""The files each offline specialist writes: a web page and stylesheet, an OpenAPI document, a
dataset and its chart, a content calendar, plans and checklists, all about the request's subject."""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape

from agency_offline import tech
from agency_offline import topics as top
from agency_offline.brief import TaskBrief
from agency_offline.data import bar_chart, calendar_rows, dataset, dataset_name, to_csv
from agency_offline.plans import classify
from agency_offline.subject import Subject, slugify
from agency_offline.topics import Ctx, cap, groups
from orchestrator.domain.constants import AgentType, ProjectType
from orchestrator.domain.models import Artifact

A = AgentType

_HOURS = {"event": (("Date", "Saturday, doors at 14:00"), ("Ends", "around 19:00"),
                    ("RSVP", "two weeks before")),
          "business": (("Monday-Friday", "08:00-18:00"), ("Saturday", "09:00-16:00"),
                       ("Sunday", "closed"))}


def _text(brief: TaskBrief) -> str:
    return " ".join([brief.title, brief.description, *brief.deliverables]).lower()


# The web page ---------------------------------------------------------------------------------

def _offer_text(c: Ctx, offering: str, i: int) -> str:
    s = c.subject
    return c.pick((f"{cap(offering)} from {s.brand}, prepared with the same care every day.",
                   f"Ask us about {offering}: we will help you choose what fits.",
                   f"Our {offering} are a favourite with {groups(s)[i % len(groups(s))]}.",
                   f"{cap(offering)}, done properly and explained simply."), offering)


def index_html(c: Ctx) -> str:
    """A complete HTML5 page about the subject, styled by styles.css beside it."""
    s, e = c.subject, escape
    cards = "\n".join(
        f'        <article class="card">\n          <h3>{e(cap(o))}</h3>\n'
        f"          <p>{e(_offer_text(c, o, i))}</p>\n        </article>"
        for i, o in enumerate(s.offerings))
    hours = _HOURS["event" if s.is_event else "business"]
    rows = "\n".join(f"          <tr><th scope=\"row\">{e(k)}</th><td>{e(v)}</td></tr>"
                     for k, v in hours)
    where = f" in {s.location}" if s.location else ""
    action = "RSVP" if s.is_event else top.ctas(c, "").split("**")[1]
    about = (f"{s.brand} brings together the people we care about for {s.offerings[2]}, "
             f"good food and good company{where}." if s.is_event else
             f"{s.brand} is a {s.tone} {s.noun}{where}, serving {groups(s)[0]} with "
             f"{s.offerings[0]} and {s.offerings[1]}.")
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{e(s.brand)} | {e(s.name)}</title>
  <meta name="description" content="{e(cap(', '.join(s.offerings)))} at {e(s.brand)}.">
  <link rel="stylesheet" href="styles.css">
</head>
<body>
  <header class="site-header">
    <div class="container header-inner">
      <a class="brand" href="#top">{e(s.brand)}</a>
      <nav class="nav" aria-label="Main">
        <a href="#offerings">{'Programme' if s.is_event else 'What we offer'}</a>
        <a href="#about">About</a>
        <a href="#visit">{'When and where' if s.is_event else 'Hours and contact'}</a>
      </nav>
    </div>
  </header>
  <main id="top">
    <section class="hero">
      <div class="container">
        <h1>{e(s.brand)}</h1>
        <p class="lead">{e(top.headline(c, 'hero'))}. For {e(groups(s)[0])}.</p>
        <a class="button" href="#visit">{e(action)}</a>
      </div>
    </section>
    <section id="offerings" class="offerings">
      <div class="container">
        <h2>{'The programme' if s.is_event else 'What we offer'}</h2>
        <div class="cards">
{cards}
        </div>
      </div>
    </section>
    <section id="about" class="about">
      <div class="container narrow">
        <h2>About {e(s.brand)}</h2>
        <p>{e(about)}</p>
      </div>
    </section>
    <section id="visit" class="visit">
      <div class="container narrow">
        <h2>{'When and where' if s.is_event else 'Opening hours and contact'}</h2>
        <table class="hours">
{rows}
        </table>
        <p class="contact">Write to
          <a href="mailto:hello@{s.slug}.example">hello@{s.slug}.example</a>
          or call 555-0100.</p>
      </div>
    </section>
  </main>
  <footer class="site-footer">
    <div class="container">
      <p>&copy; {e(s.brand)}. {e(cap(s.tone))}, since day one.</p>
    </div>
  </footer>
</body>
</html>
"""


STYLES_CSS = """/* Styles for index.html: colour variables, layout, typography, one breakpoint. */
:root {
  --ink: #1f2328;
  --muted: #5b6470;
  --paper: #fffdf8;
  --accent: #b4532a;
  --accent-ink: #ffffff;
  --panel: #f4efe6;
  --radius: 10px;
  --gap: clamp(1rem, 2.5vw, 2rem);
  --font: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}

* { box-sizing: border-box; }

body {
  margin: 0;
  font-family: var(--font);
  font-size: 1.0625rem;
  line-height: 1.6;
  color: var(--ink);
  background: var(--paper);
}

h1, h2, h3 { line-height: 1.2; margin: 0 0 0.5em; }
h1 { font-size: clamp(2rem, 5vw, 3.25rem); }
h2 { font-size: clamp(1.5rem, 3vw, 2rem); }
a { color: var(--accent); }
a:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }

.container { width: min(1100px, 100% - 2 * var(--gap)); margin-inline: auto; }
.narrow { max-width: 720px; }

.site-header { background: var(--paper); border-bottom: 1px solid var(--panel); }
.header-inner {
  display: flex;
  align-items: center;
  justify-content: space-between;
  padding-block: 1rem;
}
.brand { font-weight: 700; font-size: 1.25rem; color: var(--ink); text-decoration: none; }
.nav { display: flex; gap: var(--gap); }
.nav a { color: var(--muted); text-decoration: none; }
.nav a:hover { color: var(--accent); }

.hero { padding-block: calc(var(--gap) * 3); background: var(--panel); }
.lead { font-size: 1.25rem; color: var(--muted); max-width: 40ch; }
.button {
  display: inline-block;
  padding: 0.75rem 1.5rem;
  border-radius: var(--radius);
  background: var(--accent);
  color: var(--accent-ink);
  font-weight: 600;
  text-decoration: none;
}
.button:hover { filter: brightness(0.92); }

.offerings, .about, .visit { padding-block: calc(var(--gap) * 2); }
.cards {
  display: grid;
  grid-template-columns: repeat(auto-fit, minmax(220px, 1fr));
  gap: var(--gap);
}
.card {
  padding: 1.25rem;
  border-radius: var(--radius);
  background: #ffffff;
  box-shadow: 0 1px 3px rgb(0 0 0 / 0.12);
}
.card p { margin: 0; color: var(--muted); }

.hours { border-collapse: collapse; width: 100%; }
.hours th, .hours td { padding: 0.5rem 0; border-bottom: 1px solid var(--panel); }
.hours th { text-align: left; font-weight: 600; }
.contact { margin-top: 1rem; }

.site-footer { padding-block: var(--gap); background: var(--ink); color: var(--panel); }
.site-footer p { margin: 0; font-size: 0.9rem; }

@media (max-width: 720px) {
  .header-inner { flex-direction: column; gap: 0.5rem; }
  .nav { flex-wrap: wrap; justify-content: center; }
  .hero { padding-block: calc(var(--gap) * 2); text-align: center; }
  .lead { margin-inline: auto; }
}
"""


# YAML documents --------------------------------------------------------------------------------

def to_yaml(value: object, indent: int = 0) -> str:
    """Block YAML for dicts, lists and scalars; strings are JSON-quoted, which YAML accepts."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            head = f"{pad}{json.dumps(str(key))}:"
            lines.append(head + (" " + _scalar(item) if _is_scalar(item)
                                 else "\n" + to_yaml(item, indent + 1)))
        return "\n".join(lines) if lines else pad + "{}"
    if isinstance(value, list):
        if not value:
            return pad + "[]"
        return "\n".join(f"{pad}- " + (_scalar(i) if _is_scalar(i)
                                       else to_yaml(i, indent + 1).lstrip()) for i in value)
    return pad + _scalar(value)


def _is_scalar(value: object) -> bool:
    return not isinstance(value, dict | list) or not value


def _scalar(value: object) -> str:
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, ensure_ascii=False)


Doc = dict[str, object]


def _ref(name: str) -> Doc:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Doc, description: str) -> Doc:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi(s: Subject) -> dict[str, object]:
    """An OpenAPI 3.1 document for the subject's catalogue, requests and contact form."""
    cat, book = s.catalog, s.booking
    missing = _json(_ref("Error"), "Not found")
    id_param = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    item = {"type": "object", "required": ["id", "name", "category"], "properties": {
        "id": {"type": "string"}, "name": {"type": "string"},
        "category": {"type": "string", "enum": list(s.offerings)},
        "description": {"type": "string"}, "price": {"type": "number", "minimum": 0},
        "available": {"type": "boolean"}}}
    request = {"type": "object", "required": ["itemId"], "properties": {
        "itemId": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1},
        "date": {"type": "string", "format": "date-time"}, "notes": {"type": "string",
                                                                    "maxLength": 500}}}
    booking = {"allOf": [_ref("BookingRequest"), {"type": "object", "required": ["id", "status"],
               "properties": {"id": {"type": "string"}, "status": {
                   "type": "string",
                   "enum": ["requested", "confirmed", "fulfilled", "cancelled"]}}}]}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"{s.brand} API", "version": "0.1.0",
                 "description": f"{cap(cat)}, {book} and contact messages for {s.brand}."},
        "servers": [{"url": f"https://api.{s.slug}.example/v1"}],
        "paths": {
            "/health": {"get": {"summary": "Liveness", "responses": {"200": {
                "description": "OK"}}}},
            f"/{cat}": {"get": {"summary": f"List {cat}", "parameters": [
                {"name": "category", "in": "query", "schema": {"type": "string",
                                                               "enum": list(s.offerings)}}],
                "responses": {"200": _json({"type": "array", "items": _ref("Item")},
                                           f"The {cat}")}}},
            f"/{cat}/{{id}}": {"get": {"summary": "One item", "parameters": id_param,
                                       "responses": {"200": _json(_ref("Item"), "The item"),
                                                     "404": missing}}},
            f"/{book}": {"post": {"summary": f"Create a {book.rstrip('s')}",
                                  "security": [{"bearer": []}],
                                  "requestBody": {"required": True, "content": {
                                      "application/json": {"schema": _ref("BookingRequest")}}},
                                  "responses": {"201": _json(_ref("Booking"), "Created"),
                                                "422": _json(_ref("Error"), "Invalid")}}},
            f"/{book}/{{id}}": {"get": {"summary": "Status of one", "parameters": id_param,
                                        "security": [{"bearer": []}],
                                        "responses": {"200": _json(_ref("Booking"), "Found"),
                                                      "404": missing}}},
            "/contact": {"post": {"summary": "Send a message", "requestBody": {
                "required": True, "content": {"application/json": {
                    "schema": _ref("ContactMessage")}}},
                "responses": {"202": {"description": "Accepted"},
                              "422": _json(_ref("Error"), "Invalid")}}}},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Item": item, "BookingRequest": request, "Booking": booking,
                        "ContactMessage": {"type": "object", "required": ["email", "message"],
                                           "properties": {"name": {"type": "string"},
                                                          "email": {"type": "string",
                                                                    "format": "email"},
                                                          "message": {"type": "string",
                                                                      "maxLength": 2000}}},
                        "Error": {"type": "object", "required": ["code", "message"],
                                  "properties": {"code": {"type": "string"},
                                                 "message": {"type": "string"}}}}},
    }


def pipeline(kind: ProjectType) -> dict[str, object]:
    """A CI pipeline (GitHub Actions syntax) for the project's stack."""
    checks = {ProjectType.WEBSITE: ["npx --yes html-validate site/*.html",
                                    "npx --yes stylelint site/*.css",
                                    "npx --yes @redocly/cli lint api/openapi.yaml"],
              ProjectType.MOBILE_APP: ["bundle exec fastlane lint", "bundle exec fastlane test"],
              ProjectType.DATA_ANALYSIS: ["pip install -r requirements.txt", "ruff check .",
                                          "pytest -q"]}.get(kind, ["make lint", "make test"])
    deploy = {ProjectType.MOBILE_APP: "bundle exec fastlane beta",
              ProjectType.WEBSITE: "make deploy-static"}.get(kind, "make deploy")
    checkout = {"uses": "actions/checkout@v4"}
    return {"name": "ci", "on": {"push": {"branches": ["main"]}, "pull_request": {}},
            "jobs": {
                "test": {"runs-on": "ubuntu-latest",
                         "steps": [checkout, *({"run": c} for c in checks)]},
                "build": {"needs": "test", "runs-on": "ubuntu-latest",
                          "steps": [checkout, {"run": "make build"},
                                    {"uses": "actions/upload-artifact@v4",
                                     "with": {"name": "build", "path": "dist/"}}]},
                "deploy": {"needs": "build", "if": "github.ref == 'refs/heads/main'",
                           "environment": "production", "runs-on": "ubuntu-latest",
                           "steps": [checkout, {"run": deploy},
                                     {"run": "make smoke-test || make rollback"}]}}}


# Markdown documents ----------------------------------------------------------------------------

def test_case_rows(s: Subject) -> list[tuple[str, str, str, str]]:
    """Concrete test cases for the subject (QA's plan and its Markdown table)."""
    if s.is_event:
        return [(f"R{i + 1}", case, steps, expected) for i, (case, steps, expected) in
                enumerate([("Guest arrival", "walk from drop-off to entrance",
                            "signed, step-free, under 3 minutes"),
                           *((cap(o), f"check {o} with the supplier on the day",
                              "ready 30 minutes before doors") for o in s.offerings[:3]),
                           ("Headcount", "compare RSVPs with the welcome-desk tally",
                            "within 5%"),
                           ("Emergency", "locate exits, first aid, phone numbers",
                            "every helper knows them")])]
    verb = s.booking.replace("-", " ").rstrip("s")
    rows = [("Home shows the brand", "open /", f"h1 reads {s.brand}; offerings listed"),
            *((f"{cap(o)} listed", "open the offerings section", f"{o} visible with text")
              for o in s.offerings),
            (f"Create a {verb}", "fill the form with valid data", "confirmation shown"),
            (f"{cap(verb)} validation", "submit empty form", "errors next to each field"),
            ("Contact details", "open Hours and contact", "hours and e-mail correct"),
            ("Phone layout", "viewport 375 px", "no horizontal scroll; nav wraps"),
            ("Keyboard", "tab through the page", "focus visible on every link"),
            ("No external requests", "load with the network off", "page renders fully")]
    return [(f"T{i + 1}", *row) for i, row in enumerate(rows)]


def _doc(title: str, *parts: str) -> str:
    return f"# {title}\n\n" + "\n\n".join(parts) + "\n"


def _markdown(agent: AgentType, c: Ctx, brief: TaskBrief) -> tuple[str, str] | None:
    s, low = c.subject, _text(brief)
    if agent is A.QA_ENGINEER:
        path = "qa/run-through-checklist.md" if s.is_event else "qa/test-plan.md"
        return path, _doc(f"{'Run-through checklist' if s.is_event else 'Test plan'}: "
                          f"{s.brand}", top.table(("id", "case", "steps", "expected"),
                                                  test_case_rows(s)), tech.checklist(c, ""))
    if agent is A.UX_DESIGNER:
        if s.is_event:
            return "ux/venue-layout.md", _doc(f"Venue layout and guest journey: {s.brand}",
                                              tech.venue_layout(c, ""), tech.guest_journey(c, ""))
        if classify(brief.request) is ProjectType.WEBSITE:
            return "ux/sitemap.md", _doc(f"Sitemap: {s.brand}", tech.sitemap(c, ""),
                                         tech.flows(c, ""))
        return "ux/user-flows.md", _doc(f"User flows: {s.brand}", tech.flows(c, ""))
    if agent is A.PROJECT_MANAGER:
        if "run-of-show" in low:
            return "pm/run-of-show.md", _doc(f"Run-of-show: {s.brand}", top.run_of_show(c, ""),
                                             top.suppliers(c, ""))
        return "pm/milestones.md", _doc(f"Milestones: {s.brand}", top.timeline(c, ""),
                                        top.risks(c, ""))
    if agent is A.MOBILE_DEVELOPER:
        return "mobile/screens.md", _doc(f"Screens: {s.brand}", tech.screens(c, ""),
                                         tech.architecture(c, ""))
    if agent is A.CONTENT_WRITER and not _plans_content(brief):
        if s.is_event:
            name = "thank-you" if "thank" in low else "programme-and-signage"
            parts = ((top.thank_you(c, ""), top.feedback(c, "")) if name == "thank-you"
                     else (top.programme(c, ""), top.speech(c, ""), top.signage(c, "")))
            return f"content/{name}.md", _doc(f"{cap(brief.title)}: {s.brand}", *parts)
        if classify(brief.request) is ProjectType.WEBSITE or "page" in low:
            return "content/home.md", _doc(f"Home page: {s.brand}", top.page_copy(c, "home"),
                                           top.ctas(c, ""))
        # Articles, guides, store listings: the task's own deliverables, as a document.
        sections = [f"## {cap(d)}\n\n{tech.topic(c, d)}" for d in brief.deliverables]
        return (f"content/{slugify(brief.title)}.md",
                _doc(f"{brief.title}: {s.brand}", *sections or [top.page_copy(c, "home")]))
    return None


def _plans_content(brief: TaskBrief) -> bool:
    low = _text(brief)
    return any(w in low for w in ("calendar", "editorial", "distribution", "content plan"))


def _campaign(brief: TaskBrief, s: Subject) -> bool:
    low = _text(brief)
    return s.is_event or classify(brief.request) is ProjectType.MARKETING_CAMPAIGN or any(
        w in low for w in ("campaign", "launch", "calendar", "channel", "distribution"))


def _calendar(s: Subject, request: str) -> Artifact:
    header, rows = calendar_rows(s, request)
    return Artifact(path="marketing/content-calendar.csv", content=to_csv(header, rows))


def _data(s: Subject, request: str) -> list[Artifact]:
    header, rows = dataset(s, request)
    name = dataset_name(s, request)
    title = f"{s.brand}: {header[top_col(header)].replace('_', ' ')}"
    return [Artifact(path=f"data/{name}.csv", content=to_csv(header, rows)),
            Artifact(path=f"data/{name}-chart.svg", content=bar_chart(title, header, rows))]


def top_col(header: list[str]) -> int:
    from agency_offline.data import chart_columns

    return chart_columns(header)[1]


_BUILDERS: dict[AgentType, Callable[[TaskBrief, Subject, Ctx], list[Artifact]]] = {
    A.FRONTEND_DEVELOPER: lambda b, s, c: [
        Artifact(path="site/index.html", content=index_html(c)),
        Artifact(path="site/styles.css", content=STYLES_CSS)],
    A.BACKEND_DEVELOPER: lambda b, s, c: [
        Artifact(path="api/openapi.yaml", content=to_yaml(openapi(s)) + "\n")],
    A.DEVOPS_ENGINEER: lambda b, s, c: [
        Artifact(path="devops/pipeline.yml",
                 content=to_yaml(pipeline(classify(b.request))) + "\n")],
    A.DATA_ANALYST: lambda b, s, c: _data(s, b.request),
    A.MARKETING: lambda b, s, c: [_calendar(s, b.request)] if _campaign(b, s) else [],
}


def files_for(brief: TaskBrief, s: Subject) -> list[Artifact]:
    """The files this agent writes for this brief and subject."""
    c = Ctx(subject=s, agent=brief.agent_type, title=brief.title, request=brief.request)
    out = list(_BUILDERS[brief.agent_type](brief, s, c)) if brief.agent_type in _BUILDERS \
        else []
    if brief.agent_type is A.CONTENT_WRITER and _plans_content(brief):
        out.append(_calendar(s, brief.request))
    doc = _markdown(brief.agent_type, c, brief)
    if doc:
        out.append(Artifact(path=doc[0], content=doc[1]))
    return out

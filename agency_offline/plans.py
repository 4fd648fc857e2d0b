"""The offline model's plan templates per project type (series-parallel, fan-out and fan-in)."""

from __future__ import annotations

import re

from orchestrator.domain.constants import AgentType as A
from orchestrator.domain.constants import ProjectType as P

# (title, agent, dependencies, estimated tokens, deliverables)
Step = tuple[str, A, tuple[int, ...], int, tuple[str, ...]]

PLANS: dict[P, tuple[Step, ...]] = {
    P.WEBSITE: (
        ("Project plan and milestones", A.PROJECT_MANAGER, (), 3000,
         ("milestone plan", "risk register")),
        ("Audience and competitor research", A.MARKETING, (0,), 4000,
         ("audience personas", "competitor overview", "positioning statement")),
        ("Sitemap, user flows and wireframes", A.UX_DESIGNER, (0,), 5000,
         ("sitemap", "key user flows", "wireframes for main pages")),
        ("Website copy", A.CONTENT_WRITER, (1,), 4000,
         ("home page copy", "about page copy", "calls to action")),
        ("Backend API and data model", A.BACKEND_DEVELOPER, (2,), 6000,
         ("data model", "REST endpoints", "OpenAPI sketch")),
        ("Frontend implementation", A.FRONTEND_DEVELOPER, (3, 4), 7000,
         ("responsive page templates", "component list", "HTML skeleton")),
        ("Hosting and deployment pipeline", A.DEVOPS_ENGINEER, (5,), 4000,
         ("hosting choice", "CI/CD pipeline", "monitoring")),
        ("SEO and launch plan", A.MARKETING, (5,), 3000,
         ("keyword map", "launch checklist")),
        ("QA and launch readiness", A.QA_ENGINEER, (6, 7), 4000,
         ("test plan", "accessibility checks", "go/no-go report")),
    ),
    P.MOBILE_APP: (
        ("Product scope and release plan", A.PROJECT_MANAGER, (), 3000,
         ("scope", "release milestones")),
        ("User research and personas", A.UX_DESIGNER, (0,), 4000, ("personas", "jobs to be done")),
        ("Competitive app analysis", A.MARKETING, (0,), 3000, ("competitor matrix",)),
        ("App flows and wireframes", A.UX_DESIGNER, (1, 2), 5000,
         ("navigation map", "screen wireframes")),
        ("Backend API", A.BACKEND_DEVELOPER, (3,), 6000, ("endpoints", "auth", "data model")),
        ("Mobile client (iOS and Android)", A.MOBILE_DEVELOPER, (3,), 8000,
         ("app architecture", "screens", "offline sync")),
        ("Build and release pipeline", A.DEVOPS_ENGINEER, (4, 5), 4000,
         ("CI builds", "store release lanes")),
        ("Device QA", A.QA_ENGINEER, (6,), 4000, ("device matrix", "test cases")),
        ("App store listing", A.CONTENT_WRITER, (3,), 2500,
         ("store description", "screenshot captions")),
        ("Launch campaign", A.MARKETING, (7, 8), 3500, ("launch timeline", "channels", "KPIs")),
    ),
    P.MARKETING_CAMPAIGN: (
        ("Campaign brief and timeline", A.PROJECT_MANAGER, (), 2500, ("brief", "timeline")),
        ("Audience and market analysis", A.DATA_ANALYST, (0,), 4000,
         ("segments", "market sizing")),
        ("Campaign strategy and channels", A.MARKETING, (1,), 5000,
         ("positioning", "channel mix", "budget split")),
        ("Ad and email copy", A.CONTENT_WRITER, (2,), 4000, ("ad variants", "email sequence")),
        ("Landing page design", A.UX_DESIGNER, (2,), 3500, ("landing page wireframe",)),
        ("Landing page build", A.FRONTEND_DEVELOPER, (4,), 5000, ("landing page HTML",)),
        ("Tracking and analytics setup", A.DATA_ANALYST, (2,), 3000,
         ("UTM scheme", "conversion events", "dashboard spec")),
        ("Pre-launch QA", A.QA_ENGINEER, (3, 5, 6), 3000, ("link and tracking checks",)),
        ("Launch and optimization plan", A.MARKETING, (7,), 3000,
         ("launch checklist", "A/B test plan")),
    ),
    P.DATA_ANALYSIS: (
        ("Analysis plan and questions", A.PROJECT_MANAGER, (), 2500,
         ("questions", "scope", "timeline")),
        ("Data pipeline and inventory", A.BACKEND_DEVELOPER, (0,), 5000,
         ("source inventory", "ingestion job")),
        ("KPI definitions with stakeholders", A.MARKETING, (0,), 2500, ("KPI glossary",)),
        ("Data cleaning and exploration", A.DATA_ANALYST, (1, 2), 6000,
         ("quality report", "exploratory findings")),
        ("Statistical analysis", A.DATA_ANALYST, (3,), 6000, ("models", "significance tests")),
        ("Dashboard design", A.UX_DESIGNER, (3,), 3000, ("dashboard layout",)),
        ("Dashboard build", A.FRONTEND_DEVELOPER, (4, 5), 5000, ("dashboard implementation",)),
        ("Validation of figures", A.QA_ENGINEER, (6,), 3000, ("reconciliation checks",)),
        ("Insights report", A.CONTENT_WRITER, (7,), 4000, ("executive report",)),
    ),
    P.CONTENT_CREATION: (
        ("Editorial plan", A.PROJECT_MANAGER, (), 2500, ("editorial calendar",)),
        ("Audience and keyword research", A.MARKETING, (0,), 3500,
         ("audience profile", "keyword clusters")),
        ("Outline and style guide", A.CONTENT_WRITER, (1,), 3000, ("outlines", "style guide")),
        ("Articles", A.CONTENT_WRITER, (2,), 8000, ("drafted articles",)),
        ("Visual layout and illustrations brief", A.UX_DESIGNER, (2,), 3000,
         ("layout", "illustration brief")),
        ("Supporting data and charts", A.DATA_ANALYST, (2,), 3500, ("data points", "charts")),
        ("Publishing setup", A.FRONTEND_DEVELOPER, (4,), 3500, ("CMS templates",)),
        ("Editorial QA", A.QA_ENGINEER, (3, 5, 6), 3000, ("fact check", "link check")),
        ("Distribution plan", A.MARKETING, (7,), 3000, ("distribution calendar",)),
    ),
    P.CUSTOM: (
        ("Discovery and scope", A.PROJECT_MANAGER, (), 3000, ("scope", "milestones")),
        ("Requirements research", A.DATA_ANALYST, (0,), 3500, ("requirements", "baseline data")),
        ("Solution design", A.UX_DESIGNER, (0,), 4000, ("concept", "user flows")),
        ("Core implementation", A.BACKEND_DEVELOPER, (1, 2), 7000, ("core services",)),
        ("User interface", A.FRONTEND_DEVELOPER, (3,), 5000, ("UI",)),
        ("Infrastructure", A.DEVOPS_ENGINEER, (3,), 3500, ("environments", "pipeline")),
        ("Documentation", A.CONTENT_WRITER, (3,), 3000, ("user guide",)),
        ("Quality assurance", A.QA_ENGINEER, (4, 5, 6), 3500, ("test report",)),
        ("Handover and rollout plan", A.PROJECT_MANAGER, (7,), 2500, ("rollout plan",)),
    ),
}

KEYWORDS: dict[P, tuple[str, ...]] = {
    P.MOBILE_APP: ("mobile", "ios", "android", "iphone", "app store", "smartphone"),
    P.WEBSITE: ("website", "web site", "landing page", "web app", "online store", "e-commerce",
                "ecommerce", "webshop", "homepage", "portal", "site"),
    P.MARKETING_CAMPAIGN: ("campaign", "marketing", "promotion", "advertis", "social media",
                           "brand awareness", "ads"),
    P.DATA_ANALYSIS: ("analy", "data", "dashboard", "metrics", "churn", "forecast", "insight",
                      "statistic"),
    P.CONTENT_CREATION: ("blog", "article", "content", "newsletter", "ebook", "e-book", "copy",
                         "documentation", "whitepaper", "write"),
}

# A gathering or trip to organise: no software agents. Two parallel branches (money and
# invitations, guest experience and words) fan out from the brief and meet in the run-of-show.
EVENT_PLAN: tuple[Step, ...] = (
    ("Event brief and planning timeline", A.PROJECT_MANAGER, (), 2500,
     ("event brief", "planning timeline", "roles and responsibilities")),
    ("Budget and headcount estimate", A.DATA_ANALYST, (0,), 3000,
     ("budget breakdown", "headcount estimate")),
    ("Guest experience and venue layout", A.UX_DESIGNER, (0,), 3500,
     ("guest journey", "venue layout", "accessibility needs")),
    ("Invitations and guest communications", A.MARKETING, (1,), 3000,
     ("invitation schedule", "save-the-date message", "reminder messages")),
    ("Programme, speeches and signage copy", A.CONTENT_WRITER, (2,), 3000,
     ("programme outline", "welcome speech", "signage text")),
    ("Run-of-show and supplier schedule", A.PROJECT_MANAGER, (3, 4), 3000,
     ("run-of-show", "supplier schedule", "contingency plan")),
    ("Run-through checklist", A.QA_ENGINEER, (5,), 2500,
     ("run-through checklist", "day-of checks")),
    ("Thank-you notes and feedback", A.CONTENT_WRITER, (6,), 2000,
     ("thank-you message", "feedback questions")),
)

# Words that make a request an event to organise, and words that make it a thing to build or
# produce instead (they win ties: "a website for our wedding" is a website).
EVENT_KEYWORDS: tuple[str, ...] = (
    "party", "parties", "birthday", "wedding", "offsite", "off-site", "retreat", "conference",
    "meetup", "celebration", "anniversary", "trip", "festival", "gala", "reunion", "workshop",
    "hackathon", "summit", "baby shower", "fundraiser", "graduation", "picnic", "barbecue",
    "team building", "team-building", "vacation")
SOFTWARE_KEYWORDS: tuple[str, ...] = (
    "website", "web site", "webpage", "app", "application", "api", "dashboard", "platform",
    "software", "saas", "portal", "landing page", "database", "backend", "frontend", "mobile",
    "ios", "android", "chatbot", "campaign", "blog", "newsletter", "article", "ebook")


def classify(request: str) -> P:
    """The project type whose keywords the request mentions most (ties: the earlier type)."""
    text = request.lower()
    scores = {kind: sum(len(re.findall(rf"\b{re.escape(w)}", text)) for w in words)
              for kind, words in KEYWORDS.items()}
    best = max(scores, key=lambda k: scores[k])
    return best if scores[best] else P.CUSTOM

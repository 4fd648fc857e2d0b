"""The offline writer's body text for things to build, test and measure, and the handler table."""

from __future__ import annotations

import re

from agency_offline import topics as t
from agency_offline.data import dataset, dataset_kind
from agency_offline.topics import Ctx, Handler, bullets, cap, table


def sitemap(c: Ctx, d: str) -> str:
    s = c.subject
    lines = ["```", f"{s.brand}", "├── Home (/)"]
    lines += [f"├── {cap(o)} (/{t_slug(o)})" for o in s.offerings]
    lines += ["├── About (/about)", "└── Contact and opening hours (/contact)", "```"]
    return ("\n".join(lines) + f"\n\nEvery page is at most one click from Home; the "
            f"{s.booking.replace('-', ' ')} form is reachable from each offering page.")


def t_slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("é", "e")).strip("-")


def flows(c: Ctx, d: str) -> str:
    s = c.subject
    if s.is_event:
        return guest_journey(c, d)
    first, last = s.offerings[0], s.offerings[-1]
    verb = s.booking.replace("-", " ").rstrip("s")
    return (f"**Flow 1 — choose {first}:** land on Home → open {cap(first)} → compare options "
            f"→ start a {verb} → confirm → see a confirmation with what happens next.\n\n"
            f"**Flow 2 — ask about {last}:** any page → \"Ask about {last}\" → short form (what, "
            "when, how to reach you) → thank-you message with a reply-time promise.\n\n"
            f"**Flow 3 — find us:** Home → Contact → opening hours, map link and phone number, "
            "all visible without scrolling on a phone.")


def guest_journey(c: Ctx, d: str) -> str:
    s = c.subject
    steps = ["Receives the invitation and replies in under a minute",
             "Gets directions, parking and timing a week before",
             "Is greeted at the entrance and shown where coats and toilets are",
             *(f"Enjoys {o}" for o in s.offerings[:2]),
             "Hears the welcome words and knows what happens next",
             "Leaves with a thank-you and a safe way home"]
    return "\n".join(f"{i + 1}. {step}" for i, step in enumerate(steps))


def venue_layout(c: Ctx, d: str) -> str:
    s = c.subject
    zones = ["Entrance and welcome table", "Cloakroom", *(cap(o) for o in s.offerings[:3]),
             "Seating for those who need it", "Quiet corner"]
    rows = [(z, c.pick(("near the door", "along the long wall", "centre of the room",
                        "by the windows"), z), c.pick(("2 m clear walkway", "step-free",
                                                       "visible from the entrance"), z + "x"))
            for z in zones]
    return ("Zones, in the order guests meet them:\n\n"
            + table(("zone", "where", "requirement"), rows))


def accessibility_needs(c: Ctx, d: str) -> str:
    return bullets(["Step-free route from drop-off to every zone; ramp checked on the day.",
                    "Seating available at all times for older guests and anyone who asks.",
                    "Dietary needs collected on the RSVP and labelled at the food table.",
                    "A quiet space away from music; children's area away from the exit.",
                    "Large-print programme for anyone who asks."])


def wireframes(c: Ctx, d: str) -> str:
    s = c.subject
    if "venue" in d.lower() or s.is_event:
        return venue_layout(c, d)
    if "dashboard" in d.lower():
        head, _ = dataset(s, c.request)
        return ("```\n[ KPI: " + " | ".join(head[1:]) + " ]\n[ trend chart: " + head[1]
                + " by " + head[0] + " ]\n[ table with filters ]\n```")
    return ("```\n[ header: logo · " + " · ".join(cap(o) for o in s.offerings[:3])
            + " · Contact ]\n[ hero: headline · sub-headline · primary button ]\n"
            + "[ offerings: " + " | ".join(s.offerings) + " ]\n"
            + "[ about: photo · three sentences ]\n[ hours and contact · map link ]\n"
            + "[ footer ]\n```\n\nMobile first: the same blocks stack in this order.")


def data_model(c: Ctx, d: str) -> str:
    s = c.subject
    item, booking = s.catalog.rstrip("s").replace("-", "_"), s.booking.rstrip("s")
    rows = [(cap(item), "id, name, category, description, price, available",
             f"one of: {', '.join(s.offerings)}"),
            (cap(booking), f"id, {item}_id, quantity, date, status, notes",
             "status: requested → confirmed → fulfilled | cancelled"),
            ("ContactMessage", "id, name, email, message, created_at",
             "deleted after 90 days (no personal data kept longer)")]
    return table(("entity", "fields", "rules"), rows)


def auth(c: Ctx, d: str) -> str:
    s = c.subject
    return (f"Browsing {s.catalog.replace('-', ' ')} needs no account. Customers sign in with "
            "an emailed one-time link (no passwords to leak); staff use the admin area behind "
            "single sign-on. Sessions are short-lived tokens, refresh tokens rotate, and every "
            f"write on /{s.booking} checks that the caller owns the record.")


def openapi_sketch(c: Ctx, d: str) -> str:
    s = c.subject
    return (f"`api/openapi.yaml` (OpenAPI 3.1) describes {s.brand}'s API: paths for "
            f"/{s.catalog}, /{s.booking}, /contact and /health, and the schemas they share "
            "(the item, the request, a contact message and one `Error` shape). Frontend and "
            "QA build against this file, so changes go through review.")


def endpoints(c: Ctx, d: str) -> str:
    s = c.subject
    cat, book = s.catalog, s.booking
    rows = [("GET", f"/{cat}", f"list {cat.replace('-', ' ')} with category filter"),
            ("GET", f"/{cat}/{{id}}", "one item"),
            ("POST", f"/{book}", f"create a {book.rstrip('s')}"),
            ("GET", f"/{book}/{{id}}", "status of one"),
            ("POST", "/contact", "send a message"), ("GET", "/health", "liveness")]
    return (table(("method", "path", "purpose"), rows)
            + "\n\nWrites require a signed session or an admin token; every response uses "
            "JSON and errors share one `Error` shape. The full contract is in "
            "`api/openapi.yaml`.")


def components(c: Ctx, d: str) -> str:
    s = c.subject
    low = d.lower()
    if "html" in low or "skeleton" in low:
        return ("`site/index.html`: one semantic HTML5 page — `header.site-header` with the "
                "navigation, `section.hero`, `section.offerings` with one `article.card` per "
                f"offering ({', '.join(s.offerings)}), `section.about`, `section.visit` "
                "(hours and contact), and `footer.site-footer`. No scripts, fonts or images "
                "fetched from elsewhere; `styles.css` sits beside it.")
    if "template" in low:
        return table(("template", "used for", "key blocks"), [
            ("Home", "/", "hero, offerings, about, visit"),
            ("Offering", " · ".join(f"/{t_slug(o)}" for o in s.offerings[:3]),
             "gallery, details, primary button"),
            ("Content", "/about", "text column, photo"), ("Contact", "/contact",
                                                           "hours table, map link, form")])
    return bullets(["`SiteHeader` — brand name and navigation, collapses under 720 px",
                    f"`Hero` — headline, sub-headline and the primary button for {s.brand}",
                    f"`OfferingCard` x {len(s.offerings)} — {', '.join(s.offerings)}",
                    "`AboutBlock`, `HoursTable`, `ContactCard`",
                    "`SiteFooter` — address, links, copyright"]) + (
        "\n\nTemplates: Home, Offering, About, Contact; the HTML skeleton is `site/index.html` "
        "with `site/styles.css`.")


def screens(c: Ctx, d: str) -> str:
    s = c.subject
    return "\n".join(f"{i + 1}. **{name}** — {what}" for i, (name, what) in enumerate([
        ("Welcome", f"what {s.brand} offers, one button to start"),
        ("Browse", f"{', '.join(s.offerings)} as cards with filters"),
        ("Detail", "photos, price, availability"),
        (cap(s.booking.replace('-', ' ')), "choose time or quantity, confirm"),
        ("My activity", f"upcoming and past {s.booking.replace('-', ' ')}"),
        ("Profile and settings", "notifications, sign-out")]))


def architecture(c: Ctx, d: str) -> str:
    s = c.subject
    return bullets(["UI layer: one screen per route, state in view models",
                    f"Domain layer: {s.catalog.replace('-', ' ')}, "
                    f"{s.booking.replace('-', ' ')}, user",
                    "Data layer: REST client plus an on-device cache (SQLite)",
                    "Shared: design tokens, analytics wrapper, error reporting"])


def offline_sync(c: Ctx, d: str) -> str:
    s = c.subject
    return (f"Browsing {s.catalog.replace('-', ' ')} works offline from the cache (refreshed "
            f"on launch). New {s.booking.replace('-', ' ')} made offline are queued and sent "
            "when a connection returns; conflicts are resolved by the server and shown to the "
            "user.")


def hosting(c: Ctx, d: str) -> str:
    s = c.subject
    rows = [("preview", "every pull request", "throwaway"),
            ("staging", "main branch", f"{s.brand} owner reviews here"),
            ("production", "tagged release", "CDN for static files, managed database")]
    return table(("environment", "deployed from", "notes"), rows)


def pipeline(c: Ctx, d: str) -> str:
    return ("1. lint and unit tests on every push\n2. build artefacts once, tag with the commit\n"
            "3. deploy to staging and run smoke tests\n4. manual approval, then production\n"
            "5. automatic rollback if the health check fails for 5 minutes\n\nThe pipeline "
            "definition is `devops/pipeline.yml`.")


def monitoring(c: Ctx, d: str) -> str:
    s = c.subject
    return bullets(["Uptime check on the home page and `/health` every minute",
                    f"Alert when the {s.booking.replace('-', ' ')} form error rate passes 2%",
                    "Page weight and LCP tracked per release",
                    "Logs kept 14 days, without personal data"])


def keyword_map(c: Ctx, d: str) -> str:
    s = c.subject
    place = s.location or "near me"
    rows = [(f"{o} {place}", "local intent", cap(o)) for o in s.offerings[:3]]
    rows.append((f"best {s.noun} {place}", "comparison", "Home"))
    return table(("keyword", "intent", "page"), rows)


def test_cases(c: Ctx, d: str) -> str:
    from agency_offline.files import test_case_rows

    return table(("id", "case", "steps", "expected"), test_case_rows(c.subject))


def checks(c: Ctx, d: str) -> str:
    s = c.subject
    if s.is_event:
        return checklist(c, d)
    low = d.lower()
    if "access" in low:
        items = ["Keyboard-only: every link and button reachable, focus visible",
                 "Contrast ≥ 4.5:1 for text; headings in order",
                 "Images have alt text; form fields have labels"]
    elif "link" in low or "tracking" in low:
        items = ["Every link returns 200; no mixed content",
                 "UTM tags on every campaign link; conversion event fires once per action"]
    elif "reconcil" in low or "fact" in low:
        items = ["Totals match the source within 0.5%", "Every figure has a named source"]
    else:
        items = [f"{cap(o)}: content present and correct" for o in s.offerings]
    return bullets([f"[ ] {i}" for i in items])


def checklist(c: Ctx, d: str) -> str:
    s = c.subject
    items = ["Venue access time and contact confirmed", "Headcount sent to suppliers",
             *(f"{cap(o)}: confirmed, arrival time known" for o in s.offerings[:3]),
             "Signage printed and packed", "Step-free route walked", "First-aid kit and "
             "emergency numbers on hand", "Payment for suppliers ready",
             "Weather fallback agreed"] if s.is_event else [
        "Analytics and consent banner working", f"Every {s.booking.rstrip('s')} form "
        "sends and confirms", "Opening hours and prices checked by the owner",
        "Redirects and sitemap submitted", "Backups and rollback tested"]
    return "\n".join(f"- [ ] {i}" for i in items)


def day_of(c: Ctx, d: str) -> str:
    s = c.subject
    steps = [("T-3 h", "suppliers arriving; unload route clear"),
             ("T-2 h", f"{s.offerings[0]} set up and checked"),
             ("T-1 h", "signage up, welcome table staffed, music tested"),
             ("T-15 min", "helpers in place; host briefed on the running order"),
             ("Doors", "first guests greeted; headcount tally started")]
    return table(("when", "check"), steps)


def go_no_go(c: Ctx, d: str) -> str:
    s = c.subject
    return (table(("gate", "status"), [("Critical test cases pass", "go"),
                                       ("No open blocker defects", "go"),
                                       (f"{s.brand} owner sign-off", "pending")])
            + "\n\nRecommendation: **go**, once the owner signs off.")


def questions(c: Ctx, d: str) -> str:
    head, _ = dataset(c.subject, c.request)
    return "\n".join(f"{i + 1}. {q}" for i, q in enumerate((
        f"How does {head[2].replace('_', ' ')} move over {head[0]}?",
        "Which period or segment stands out, and why?",
        "What would we do differently with the answer?")))


def findings(c: Ctx, d: str) -> str:
    s = c.subject
    head, rows = dataset(s, c.request)
    kind = dataset_kind(s, c.request)
    col = 2 if kind != "churn" else 3
    values = [float(r[col]) for r in rows]
    hi, lo = rows[values.index(max(values))], rows[values.index(min(values))]
    label = 1 if kind == "budget" else 0
    name = head[col].replace("_", " ")
    return (f"Highest {name}: **{hi[label]}** ({hi[col]}); lowest: **{lo[label]}** ({lo[col]}). "
            f"Average {sum(values) / len(values):,.1f} over {len(rows)} rows. "
            + {"churn": "Churn falls for later cohorts: onboarding changes are working.",
               "budget": "Three items make up most of the spend; negotiate those first.",
               "monthly": "A December peak and a January dip: plan staffing and stock "
                          "around them."}[kind])


def data_sources(c: Ctx, d: str) -> str:
    s = c.subject
    return table(("source", "contents", "refresh"), [
        ("Point of sale / billing", f"{s.booking.replace('-', ' ')} and revenue", "daily"),
        ("Web analytics", "visits, sources, conversions", "daily"),
        ("Spreadsheet from the owner", "targets, events, notes", "monthly")])


def user_guide(c: Ctx, d: str) -> str:
    s = c.subject
    return "\n".join(f"{i + 1}. {x}" for i, x in enumerate((
        f"Getting started with {s.brand}", f"Managing {s.catalog.replace('-', ' ')}",
        f"Handling {s.booking.replace('-', ' ')}", "Updating opening hours and contact details",
        "Who to call when something breaks")))


# Ordered: the first handler whose keyword starts a word of the deliverable writes its body.
TOPICS: tuple[tuple[tuple[str, ...], Handler], ...] = (
    (("a/b",), t.ab_tests), (("save-the-date", "save the date"), t.save_the_date),
    (("thank-you", "thank you"), t.thank_you), (("feedback",), t.feedback),
    (("speech",), t.speech), (("signage", "sign"), t.signage), (("reminder",), t.reminders),
    (("invitation",), t.invitation_schedule), (("email",), t.emails), (("ad variant",), t.ads),
    (("caption",), t.captions), (("store description",), t.store_description),
    (("call",), t.ctas), (("jobs",), t.jobs), (("persona", "audience", "segment"), t.personas),
    (("competit",), t.competitors), (("positioning",), t.positioning),
    (("responsib", "roles"), t.responsibilities), (("run-of-show",), t.run_of_show),
    (("supplier",), t.suppliers), (("programme",), t.programme),
    (("pric",), t.pricing), (("risk", "contingency"), t.risks), (("budget",), t.budget),
    (("headcount", "guest list"), t.headcount), (("guest journey",), guest_journey),
    (("accessibility needs",), accessibility_needs), (("sitemap", "navigation"), sitemap),
    (("flow",), flows), (("wireframe", "layout"), wireframes),
    (("data model",), data_model), (("openapi",), openapi_sketch), (("auth",), auth),
    (("endpoint", "api", "core services"), endpoints),
    (("screen",), screens), (("template", "component", "html", "ui", "dashboard implem",
                              "cms", "landing page"), components),
    (("architecture",), architecture), (("offline",), offline_sync),
    (("hosting", "environment"), hosting), (("pipeline", "ci", "build", "lane"), pipeline),
    (("monitoring",), monitoring), (("keyword",), keyword_map),
    (("test plan", "test cases", "device matrix", "test report"), test_cases),
    (("day-of",), day_of), (("checklist",), checklist), (("go/no-go",), go_no_go),
    (("check",), checks), (("kpi", "metric", "dashboard spec", "conversion", "utm"), t.kpis),
    (("channel",), t.channels), (("calendar", "distribution"), t.calendar),
    (("market sizing",), t.market_sizing), (("question",), questions),
    (("finding", "model", "significance", "report", "data points", "chart", "baseline",
      "quality"), findings),
    (("source inventory", "ingestion"), data_sources), (("style guide",), t.style_guide),
    (("outline",), t.outlines), (("article",), t.articles), (("illustration",), t.illustration),
    (("user guide", "documentation"), user_guide), (("brief",), t.client_brief),
    (("scope", "requirements", "concept"), t.scope),
    (("milestone", "timeline", "plan", "schedule", "release"), t.timeline),
    (("copy", "description", "message"), t.page_copy),
)


def topic(c: Ctx, deliverable: str) -> str:
    """The body of one deliverable's section."""
    low = deliverable.lower()
    for words, handler in TOPICS:
        if any(re.search(rf"(?<![\w-]){re.escape(w)}", low) for w in words):
            return handler(c, deliverable)
    return t.fallback(c, deliverable)

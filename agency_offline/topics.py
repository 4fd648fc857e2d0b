"""The offline writer's body text per deliverable: personas, copy, plans, budgets and the like.

A deliverable's words pick a handler ("audience personas" -> personas); each handler writes
concrete Markdown about the subject. Handlers for things to build live in agency_offline/tech.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agency_offline.subject import Subject
from orchestrator.domain.constants import AgentType

NAMES = ("Ana", "Tom", "Priya", "Marcus", "Lena", "Sam", "Noor", "Jonas", "Grace", "Diego")


@dataclass(frozen=True)
class Ctx:
    """What a handler knows: the subject, the agent and task it writes for, and the request."""

    subject: Subject
    agent: AgentType
    title: str
    request: str

    def _seed(self, key: str) -> int:
        text = f"{self.title}|{self.subject.name}|{self.agent.value}|{key}"
        return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)

    def pick(self, options: Sequence[str], key: str = "") -> str:
        """One of the options, chosen by a hash of the task, subject and key."""
        return options[self._seed(key) % len(options)]

    def num(self, key: str, low: int, high: int) -> int:
        """A deterministic number in [low, high]."""
        return low + self._seed(key) % (high - low + 1)


Handler = Callable[[Ctx, str], str]


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {i}" for i in items)


def groups(s: Subject) -> list[str]:
    """The audience as up to three groups of people."""
    audience = s.audience.split(" in and around ")[0]
    parts = [re.sub(r"^(?:and|including)\s+", "", p.strip()) for p in audience.split(",")]
    parts = [p for p in parts if p]
    return parts[:3] or [audience]


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# People --------------------------------------------------------------------------------------

def personas(c: Ctx, d: str) -> str:
    s, out = c.subject, []
    for i, group in enumerate(groups(s)):
        name = NAMES[(c.num("persona", 0, 9) + i) % len(NAMES)]
        offer = s.offerings[i % len(s.offerings)]
        needs = ("wants to decide quickly and without surprises",
                 "needs to trust the people behind it before committing",
                 "compares two or three options before choosing")
        need = needs[(c.num("need", 0, 2) + i) % 3]
        out.append(f"**{name}** — {group}. {name} {need}; cares most about {offer}. "
                   f"What {s.brand} must show {name}: clear details on {offer}, and the next "
                   "step within one tap or one glance.")
    return "\n\n".join(out)


def jobs(c: Ctx, d: str) -> str:
    s = c.subject
    return bullets([f"As one of the {g}, I want {o} without friction, so that I can get on "
                    "with my day."
                    for g, o in zip(groups(s), s.offerings, strict=False)])


def competitors(c: Ctx, d: str) -> str:
    s = c.subject
    rows = [("A large chain or aggregator", "price and reach", "impersonal, generic",
             f"personal service and {s.offerings[0]}"),
            (f"An established local {s.noun}", "reputation and word of mouth",
             "dated presence, hard to book or order", f"easy {s.booking.replace('-', ' ')}"),
            ("A newcomer with a strong social presence", "visual identity",
             "thin offer behind the look", f"depth in {s.offerings[1]} and {s.offerings[2]}")]
    intro = (f"Three kinds of alternative compete for the attention of {groups(s)[0]}; "
             f"{s.brand} wins by being the easiest to choose, not the cheapest.")
    return intro + "\n\n" + table(("alternative", "strength", "weakness", f"{s.brand}'s angle"),
                                  rows)


def positioning(c: Ctx, d: str) -> str:
    s = c.subject
    benefit = c.pick(("makes the choice feel easy", "gets the details right every time",
                      "treats every visitor like a regular"), "benefit")
    return (f"> For {groups(s)[0]}, {s.brand} is the {s.noun} that {benefit}, because it "
            f"combines {s.offerings[0]} and {s.offerings[1]} with a {s.tone} welcome.\n\n"
            f"Proof points to repeat everywhere: {', '.join(s.offerings)}.")


def responsibilities(c: Ctx, d: str) -> str:
    s = c.subject
    if s.is_event:
        rows = [("Host / decision-maker", "A", "budget, guest list, final say"),
                ("Coordinator", "R", "timeline, suppliers, run-of-show"),
                ("Guest communications lead", "R", "invitations, RSVPs, reminders"),
                ("Day-of helpers (2-3)", "R", "set-up, welcome desk, clear-down"),
                ("Venue contact", "C", "access times, rules, equipment")]
    else:
        rows = [(f"{s.brand} owner", "A", "approves scope, copy and launch"),
                ("Project manager", "R", "plan, status, risks"),
                ("Designers and developers", "R", "build and test"),
                ("Content and marketing", "R", "copy, launch communications"),
                ("Staff who answer customers", "C", "real questions, opening hours, prices")]
    return ("Who does what (R responsible, A accountable, C consulted):\n\n"
            + table(("role", "RACI", "owns"), rows))


# Copy and communications ---------------------------------------------------------------------

def headline(c: Ctx, key: str) -> str:
    s = c.subject
    return c.pick((f"{s.brand}: {s.offerings[0]} made with care",
                   f"Welcome to {s.brand}",
                   f"{cap(s.offerings[0])}, {s.offerings[1]} and more at {s.brand}",
                   f"Everything you need for {s.noun}, in one place"), key)


def page_copy(c: Ctx, d: str) -> str:
    s = c.subject
    if "about" in d.lower():
        return (f"**Headline:** The people behind {s.brand}\n\n"
                f"{s.brand} started with a simple idea: {s.offerings[0]} and "
                f"{s.offerings[1]} done properly, by people who know their regulars by name. "
                f"We keep the {s.tone} spirit we started with"
                f"{' in ' + s.location if s.location else ''}, and we'd love to meet you.")
    return (f"**Headline:** {headline(c, d)}\n\n**Sub-headline:** "
            f"{cap(', '.join(s.offerings[:-1]))} and {s.offerings[-1]}, for "
            f"{groups(s)[0]}.\n\n**Body:** Whether you are here for {s.offerings[0]} or "
            f"planning ahead with {s.offerings[-1]}, {s.brand} makes it simple: see what is "
            "available today, choose, and we take care of the rest.")


def ctas(c: Ctx, d: str) -> str:
    s = c.subject
    verb = {"orders": "Order", "bookings": "Book", "appointments": "Book an appointment",
            "reservations": "Reserve a table", "consultations": "Book a consultation",
            "subscriptions": "Start free trial", "rsvps": "RSVP",
            "registrations": "Register"}.get(s.booking, "Get in touch")
    return bullets([f"Primary, on every page: **{verb}** — leads straight to the form.",
                    f"Offerings section: **See {s.offerings[0]}** and **Ask about "
                    f"{s.offerings[-1]}**.",
                    "Footer and contact page: **Call us** and **Get directions**.",
                    "After a completed action: **Add to calendar** or **Share with a friend**."])


def captions(c: Ctx, d: str) -> str:
    s = c.subject
    return bullets([f"Screen {i + 1}: {cap(o)} — in two taps." for i, o in enumerate(s.offerings)]
                   + [f"Screen {len(s.offerings) + 1}: Everything from {s.brand}, in your "
                      "pocket."])


def store_description(c: Ctx, d: str) -> str:
    s = c.subject
    return (f"**{s.brand}** — {headline(c, d).split(': ')[-1]}.\n\n"
            f"Use the app for {', '.join(s.offerings[:-1])} and {s.offerings[-1]}. "
            f"Made for {groups(s)[0]}. Notifications only when something you asked for is "
            "ready; no account needed to browse.")


def ads(c: Ctx, d: str) -> str:
    s = c.subject
    rows = [(f"V{i + 1}", f"{cap(o)} at {s.brand}", c.pick(
        (f"Made for {groups(s)[i % len(groups(s))]}.", "Limited time this month.",
         "Loved by our regulars."), f"ad{i}"), "Learn more") for i, o in
        enumerate(s.offerings[:3])]
    return table(("variant", "headline", "body", "button"), rows)


def emails(c: Ctx, d: str) -> str:
    s = c.subject
    rows = [("Day 0", f"Welcome to {s.brand}", f"who we are, {s.offerings[0]}"),
            ("Day 3", f"Have you tried our {s.offerings[1]}?", "one story, one offer"),
            ("Day 7", f"{cap(s.offerings[2])}: what our regulars choose", "social proof"),
            ("Day 14", "Still thinking about it?", f"{s.offerings[-1]}, one clear next step")]
    return table(("send", "subject line", "content"), rows)


def save_the_date(c: Ctx, d: str) -> str:
    s = c.subject
    return (f"> **Save the date: {s.brand}!** We're celebrating and we'd love you there. "
            f"Expect {s.offerings[1]} and {s.offerings[2]}. A full invitation with the time, "
            "place and RSVP details follows in two weeks.")


def invitation_schedule(c: Ctx, d: str) -> str:
    s = c.subject
    rows = [("T-8 weeks", "Save-the-date", "message or card", "hold the date"),
            ("T-5 weeks", "Invitation", "card and message", "time, place, RSVP by date"),
            ("T-3 weeks", "RSVP reminder", "personal message", "chase missing replies"),
            ("T-1 week", "Practical details", "message", f"directions, {s.offerings[0]}"),
            ("T+2 days", "Thank-you", "message with photos", "gratitude, feedback")]
    return table(("when", "what", "format", "purpose"), rows)


def reminders(c: Ctx, d: str) -> str:
    s = c.subject
    return bullets([f"**RSVP reminder:** \"Just checking you got the invitation to {s.brand} — "
                    "could you let us know by Friday whether you can make it?\"",
                    f"**One week to go:** \"We can't wait to see you! Here's how to get there, "
                    f"and a note about {s.offerings[1]}.\"",
                    "**On the day:** \"See you soon — if you're running late, just call the "
                    "host; we'll save you a seat.\""])


def speech(c: Ctx, d: str) -> str:
    s = c.subject
    return (f"> \"Thank you all for coming to {s.brand}. Many of you travelled, moved plans or "
            f"found a babysitter to be here, and it means a lot. Tonight is about "
            f"{s.offerings[2]}, good food and good company. Please find us if you need "
            "anything — and enjoy yourselves.\"\n\nLength: about one minute; "
            "speaker: the host, right after the welcome drinks.")


def signage(c: Ctx, d: str) -> str:
    s = c.subject
    return bullets([f"Entrance: \"Welcome to {s.brand} →\"",
                    f"{cap(s.offerings[1])}: \"This way — please help yourselves\"",
                    "Cloakroom and toilets: clear arrows, readable from five metres",
                    "Step-free route: \"Step-free access — ramp on the left\"",
                    "Exit: \"Thank you for coming! Safe journey home\""])


def programme(c: Ctx, d: str) -> str:
    s = c.subject
    items = ["Arrival and welcome drinks", "Welcome words from the host",
             *(cap(o) for o in s.offerings[:3]), "Toast and thank-you", "Farewells"]
    return "\n".join(f"{i + 1}. {item}" for i, item in enumerate(items))


def thank_you(c: Ctx, d: str) -> str:
    s = c.subject
    return (f"> \"Thank you for being part of {s.brand}! Your company made the "
            f"day. We've put the photos in one shared album — and if you have a minute, three "
            "quick questions below help us do even better next time.\"")


def feedback(c: Ctx, d: str) -> str:
    s = c.subject
    return "\n".join(f"{i + 1}. {q}" for i, q in enumerate((
        f"What was the best part of {s.brand} for you?",
        f"How were the {s.offerings[1]} (1-5)?",
        "Was anything hard to find or get to?",
        "Would you come to the next one? What would you change?")))


def style_guide(c: Ctx, d: str) -> str:
    s = c.subject
    return bullets([f"Voice: {s.tone}; write to one reader, in the second person.",
                    f"Say \"{s.brand}\" in full once per page, then \"we\".",
                    "Sentences under 20 words; one idea per paragraph; no jargon.",
                    f"Name offerings consistently: {', '.join(s.offerings)}.",
                    "Numbers as digits, times as 9:00-17:00, dates as 3 May."])


def outlines(c: Ctx, d: str) -> str:
    s = c.subject
    return "\n".join(f"{i + 1}. **{cap(o)}** — hook, three practical points, one example "
                     f"from {s.brand}, a closing call to action" for i, o in
                     enumerate(s.offerings))


def articles(c: Ctx, d: str) -> str:
    s = c.subject
    first = s.offerings[0]
    return (f"### {cap(first)}: a practical guide\n\n{cap(first)} is where most readers "
            f"start, and where most get stuck. This article walks {groups(s)[0]} through "
            f"what matters, what can wait, and how {s.offerings[1]} fits in.\n\n"
            + "\n".join(f"### {cap(o)}\n\nA 600-900 word piece for readers who "
                        f"already know the basics; outline as above." for o in
                        s.offerings[1:]))


def illustration(c: Ctx, d: str) -> str:
    s = c.subject
    return bullets([f"One hero illustration per piece: {o}, drawn in a {s.tone} style"
                    for o in s.offerings[:3]] + ["Palette limited to the brand colours; "
                                                 "alt text written with the copy."])


# Plans, time and money -----------------------------------------------------------------------

def timeline(c: Ctx, d: str) -> str:
    s = c.subject
    if s.is_event:
        rows = [("T-10 weeks", "brief, budget and date agreed", "host"),
                ("T-8 weeks", "venue booked; save-the-date sent", "coordinator"),
                ("T-5 weeks", f"suppliers for {s.offerings[1]} confirmed; invitations out",
                 "coordinator"),
                ("T-2 weeks", "RSVPs closed; final headcount to suppliers", "guest lead"),
                ("T-2 days", "run-through; signage printed", "coordinator"),
                ("Day", "run-of-show", "everyone"), ("T+1 week", "thank-yous, accounts closed",
                                                     "host")]
        return table(("when", "milestone", "owner"), rows)
    weeks = c.num("weeks", 5, 8)
    rows = [("Week 1", "kick-off; scope and success measures agreed", "PM"),
            ("Week 2", "research and design in parallel", "marketing, UX"),
            (f"Week 3-{weeks - 2}", f"build: {', '.join(s.offerings[:2])} first", "developers"),
            (f"Week {weeks - 1}", "content complete; QA and fixes", "QA, content"),
            (f"Week {weeks}", f"launch of {s.brand}; review after 30 days", "all")]
    return table(("when", "milestone", "owner"), rows)


def client_brief(c: Ctx, d: str) -> str:
    """A "brief" deliverable: the goal, audience and scope the client agrees first."""
    s = c.subject
    goal = (f"a {s.tone} {s.noun} that guests remember" if s.is_event
            else f"more of the right people choosing {s.brand}")
    return bullets([f"**Goal:** {goal}.", f"**Who it is for:** {s.audience}.",
                    f"**In scope:** {', '.join(s.offerings)}.",
                    f"**Request as given:** \"{c.request.strip()}\"",
                    "**Decisions needed first:** date or launch window, budget ceiling, "
                    "who signs off."])


def run_of_show(c: Ctx, d: str) -> str:
    s = c.subject
    start = c.num("start", 12, 18)
    slots = ["Set-up and supplier arrivals", "Final walk-through", "Doors open, welcome drinks",
             "Welcome words", *(cap(o) for o in s.offerings[:3]), "Thank-you toast",
             "Guests leave; clear-down"]
    rows = [(f"{start - 2 + i // 2:02d}:{30 * (i % 2):02d}", slot, c.pick(
        ("coordinator", "host", "helpers"), slot)) for i, slot in enumerate(slots)]
    return table(("time", "what happens", "who"), rows)


def suppliers(c: Ctx, d: str) -> str:
    s = c.subject
    rows = [(cap(o), f"T-{6 - i} weeks", "arrival 2 hours before doors", "deposit paid")
            for i, o in enumerate(s.offerings[:3])] + [("Venue", "T-8 weeks", "access from "
                                                        "set-up", "contract signed")]
    return table(("supplier", "booked by", "on the day", "status to check"), rows)


def risks(c: Ctx, d: str) -> str:
    s = c.subject
    if s.is_event:
        rows = [("Bad weather", "M", "H", "indoor fallback agreed with the venue"),
                ("Late RSVPs", "H", "M", "reminder at T-3 weeks; supplier buffer of 10%"),
                (f"Supplier for {s.offerings[1]} cancels", "L", "H", "a second quote on file"),
                ("Dietary or access needs missed", "M", "M", "asked on the RSVP form")]
    else:
        rows = [("Content (prices, photos, hours) arrives late", "H", "H",
                 f"{s.brand} owner supplies it by week 2"),
                ("Scope grows beyond the brief", "M", "M", "change list reviewed weekly"),
                (f"{cap(s.offerings[-1])} flow is more complex than it looks", "M", "H",
                 "prototype it first"),
                ("Launch clashes with a busy period", "L", "M", "pick a quiet week")]
    return table(("risk", "likelihood", "impact", "mitigation"), rows)


def budget(c: Ctx, d: str) -> str:
    from agency_offline.data import dataset

    if not c.subject.is_event:
        total = c.num("budget", 3, 12) * 1000
        split = (("Paid social", 35), ("Search ads", 25), ("Content production", 20),
                 ("Local partnerships", 10), ("Reserve for tests", 10))
        return table(("line", "share", "amount"),
                     [(k, f"{v}%", f"{total * v // 100:,}") for k, v in split])
    head, rows = dataset(c.subject, c.request)
    total = sum(int(r[2]) for r in rows) if head[2] == "estimated_cost" else 0
    lines = [table(head, rows)]
    if total:
        lines.append(f"\nTotal estimate: **{total:,}**; keep 10% in reserve for surprises.")
    return "\n".join(lines)


def headcount(c: Ctx, d: str) -> str:
    s = c.subject
    invited = c.num("invited", 30, 90)
    expected = invited * 3 // 4
    return (f"Invited: **{invited}**; expected at ~75% acceptance: **{expected}** "
            f"(children about {expected // 5}). Plan {s.offerings[1]} for {expected + 5}, "
            "seating for everyone expected, and confirm numbers with suppliers at T-2 weeks.")


def kpis(c: Ctx, d: str) -> str:
    s = c.subject
    if s.is_event:
        rows = [("RSVP rate", "≥ 80% by T-2 weeks"), ("Budget variance", "≤ 10%"),
                ("Guest satisfaction", "≥ 4.5 / 5 in the feedback questions")]
    else:
        rows = [(f"{cap(s.booking.replace('-', ' '))} per week", f"+{c.num('k1', 15, 40)}% "
                 "in 90 days"), ("Visit-to-action conversion", f"≥ {c.num('k2', 2, 6)}%"),
                (f"Enquiries about {s.offerings[-1]}", f"{c.num('k3', 5, 20)} per month"),
                ("Returning visitors", "≥ 30%")]
    return table(("KPI", "target"), rows)


def channels(c: Ctx, d: str) -> str:
    s = c.subject
    if s.is_event:
        rows = [("Personal message", "invitation, reminders", "everyone"),
                ("Printed card", "invitation", "older relatives"),
                ("Group chat", "logistics on the day", "confirmed guests")]
    else:
        rows = [("Instagram", f"visual stories of {s.offerings[0]}", "40%"),
                ("Google Business Profile", "hours, reviews, directions", "15%"),
                ("Email", "regulars and announcements", "20%"),
                ("Local partners and press", f"{s.offerings[-1]}", "25%")]
    return table(("channel", "role", "budget share" if not s.is_event else "audience"), rows)


def calendar(c: Ctx, d: str) -> str:
    from agency_offline.data import calendar_rows

    header, rows = calendar_rows(c.subject, c.request)
    return table(header, rows[:6]) + f"\n\n({len(rows)} entries in total; see the CSV.)"


def ab_tests(c: Ctx, d: str) -> str:
    s = c.subject
    return bullets([f"Headline: \"{headline(c, 'a')}\" vs \"{headline(c, 'b')}\"; metric: "
                    "click-through; stop at 1,000 visitors per arm.",
                    f"Offer order: {s.offerings[0]} first vs {s.offerings[-1]} first.",
                    "Button label: action verb vs benefit; metric: form starts."])


def market_sizing(c: Ctx, d: str) -> str:
    s = c.subject
    reach = c.num("reach", 20, 80) * 1000
    share = c.num("share", 1, 5)
    return (f"Reachable audience: about {reach:,} {groups(s)[0]} within the service area; "
            f"at a {share}% share that is {reach * share // 100:,} customers a year. "
            "Assumptions: local population data and comparable businesses; refine with the "
            "first three months of real figures.")


def pricing(c: Ctx, d: str) -> str:
    s = c.subject
    label = "estimated cost" if s.is_event else "from"
    rows = [(cap(o), f"{c.num(o, 3, 60) * 5}", c.pick(("most chosen", "ask for a quote",
                                                        "seasonal", "good value"), o))
            for o in s.offerings]
    return table(("offering", label, "note"), rows) + (
        "\n\nPrices are placeholders for the owner to confirm; show them as \"from\" prices "
        "so nobody feels misled.")


def scope(c: Ctx, d: str) -> str:
    s = c.subject
    return (f"**In:** {', '.join(s.offerings)}; what {groups(s)[0]} need to choose and act.\n\n"
            "**Out (for now):** anything that needs a second phase or an outside partner.\n\n"
            "**Done means:** every deliverable below exists and passes its criteria.")


def fallback(c: Ctx, d: str) -> str:
    s = c.subject
    return (f"{cap(d)} for {s.brand}, focused on {s.offerings[0]} and {s.offerings[1]} "
            f"for {groups(s)[0]}. " + c.pick((
                "It lists what to do, in order, with an owner for each step.",
                "It names the decisions to make and proposes a default for each.",
                "It is short enough to review in ten minutes and specific enough to act on."),
                d))

"""Deterministic data for the offline writer: a small dataset, its chart, a content calendar."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from datetime import date, timedelta
from xml.sax.saxutils import escape

from agency_offline.subject import Subject

Rows = list[list[str]]
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Demand by month for a high-street business: a December peak and a quiet January.
_SEASON = (0.82, 0.86, 0.95, 1.0, 1.04, 1.02, 0.94, 0.9, 1.0, 1.05, 1.12, 1.3)


def _seed(*parts: str) -> int:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:12], 16)


def dataset_kind(s: Subject, request: str) -> str:
    """budget for events, churn for subscription products, monthly otherwise."""
    if s.is_event:
        return "budget"
    if s.domain == "saas" or "churn" in request.lower():
        return "churn"
    return "monthly"


def _budget(s: Subject, seed: int) -> tuple[list[str], Rows]:
    items = [("Venue", "hire"), ("Venue", "cleaning and set-up"),
             *(("Programme", o) for o in s.offerings
               if not any(w in o for w in ("venue", "invitation", "communication"))),
             ("Food and drink", "drinks"), ("Food and drink", "snacks and extras"),
             ("Decorations", "flowers and décor"), ("Guests", "invitations and printing"),
             ("Guests", "gifts and favours"), ("Logistics", "transport"),
             ("Reserve", "contingency (10%)")]
    costs = [120 + (seed >> (i * 3)) % 9 * 60 for i in range(len(items))]
    costs[-1] = sum(costs[:-1]) // 10
    guests = 40 + seed % 40
    rows = [[cat, item, str(cost), f"{cost / guests:.2f}"]
            for (cat, item), cost in zip(items, costs, strict=True)]
    return ["category", "item", "estimated_cost", "per_guest"], rows


def _churn(seed: int) -> tuple[list[str], Rows]:
    rows: Rows = []
    for i in range(len(_MONTHS)):
        signups = 180 + i * 14 + (seed >> i) % 40
        churn = 9.5 - i * 0.35 + ((seed >> (i + 5)) % 10) / 10
        active = round(signups * (1 - churn / 100 * 3))
        rows.append([f"2025-{i + 1:02d}", str(signups), str(active), f"{churn:.1f}"])
    return ["cohort", "signups", "active_after_90d", "churn_rate_pct"], rows


def _monthly(s: Subject, seed: int) -> tuple[list[str], Rows]:
    base = 1800 + seed % 1500
    booking = s.booking.replace("-", "_")
    rows: Rows = []
    for i, factor in enumerate(_SEASON):
        visits = round(base * factor * (1 + i * 0.02)) + (seed >> i) % 90
        actions = round(visits * (0.035 + ((seed >> (i + 3)) % 15) / 1000))
        rows.append([f"2025-{i + 1:02d}", str(visits), str(actions),
                     str(actions * (18 + seed % 25))])
    return ["month", "visits", booking, "revenue"], rows


def dataset(s: Subject, request: str) -> tuple[list[str], Rows]:
    """A header and about twelve rows that fit the subject."""
    seed = _seed(s.name, request)
    match dataset_kind(s, request):
        case "budget":
            return _budget(s, seed)
        case "churn":
            return _churn(seed)
        case _:
            return _monthly(s, seed)


def dataset_name(s: Subject, request: str) -> str:
    return f"{s.slug}-{dataset_kind(s, request)}"


def to_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def chart_columns(header: Sequence[str]) -> tuple[int, int]:
    """Which column labels the bars and which one they measure."""
    if header[0] == "category":
        return 1, 2
    if header[0] == "cohort":
        return 0, 3
    return 0, 2


def bar_chart(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A self-contained SVG bar chart of one column, with axes, ticks and labels."""
    lab, val = chart_columns(header)
    values = [float(r[val]) for r in rows]
    top = max(values) * 1.1 or 1.0
    width, height, left, bottom, plot_h = 720, 420, 70, 110, 260
    slot = (width - left - 20) / len(values)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             '<rect width="100%" height="100%" fill="#ffffff"/>',
             f'<text x="{width / 2}" y="28" text-anchor="middle" font-family="sans-serif" '
             f'font-size="18" font-weight="bold">{escape(title)}</text>']
    base_y = height - bottom
    for t in range(5):
        y = base_y - plot_h * t / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - 20}" y2="{y:.1f}" '
                     'stroke="#e0e0e0"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" '
                     f'font-family="sans-serif" font-size="11">{top * t / 4:,.0f}</text>')
    for i, (row, v) in enumerate(zip(rows, values, strict=True)):
        h, x = plot_h * v / top, left + i * slot + slot * 0.15
        parts.append(f'<rect x="{x:.1f}" y="{base_y - h:.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{h:.1f}" fill="#3b6ea5"><title>{escape(row[lab])}: '
                     f"{escape(row[val])}</title></rect>")
        cx = x + slot * 0.35
        parts.append(f'<text x="{cx:.1f}" y="{base_y + 14}" text-anchor="end" '
                     f'transform="rotate(-40 {cx:.1f} {base_y + 14})" font-family="sans-serif" '
                     f'font-size="11">{escape(row[lab][:22])}</text>')
    parts += [f'<line x1="{left}" y1="{base_y}" x2="{width - 20}" y2="{base_y}" stroke="#333"/>',
              f'<line x1="{left}" y1="{base_y}" x2="{left}" y2="{base_y - plot_h}" '
              'stroke="#333"/>',
              f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle" '
              f'font-family="sans-serif" font-size="13">{escape(header[lab])}</text>',
              f'<text x="18" y="{base_y - plot_h / 2}" text-anchor="middle" '
              f'transform="rotate(-90 18 {base_y - plot_h / 2})" font-family="sans-serif" '
              f'font-size="13">{escape(header[val])}</text>', "</svg>"]
    return "\n".join(parts) + "\n"


CALENDAR_HEADER = ["date", "channel", "theme", "message", "owner", "kpi"]


def _event_calendar(s: Subject) -> list[tuple[int, str, str, str, str, str]]:
    o = s.offerings
    return [(0, "email", "save the date", f"{s.brand} is happening — hold the date",
             "host", "opens"),
            (3, "printed card", "invitation", f"You're invited to {s.brand}", "host",
             "RSVPs received"),
            (4, "group chat", "invitation", "Invitation sent — reply by the RSVP date",
             "guest lead", "RSVPs received"),
            (7, "personal message", "RSVP reminder", "Can you make it? Let us know by Friday",
             "guest lead", "RSVP rate"),
            (9, "email", "details", f"What to expect: {o[0]} and {o[1]}", "coordinator",
             "questions answered"),
            (11, "group chat", "logistics", "Directions, parking and timings", "coordinator",
             "late arrivals"),
            (13, "personal message", "one week to go", "See you next week!", "host",
             "last-minute cancellations"),
            (14, "group chat", "on the day", "Doors open soon — see you there", "coordinator",
             "attendance"),
            (15, "email", "thank you", f"Thank you for coming to {s.brand}", "host",
             "replies"),
            (17, "email", "feedback", "Three quick questions and the photo album", "host",
             "feedback responses")]


def _business_calendar(s: Subject) -> list[tuple[int, str, str, str, str, str]]:
    o = s.offerings
    return [(0, "instagram", "launch teaser", f"Something new is coming from {s.brand}",
             "marketing", "reach"),
            (2, "email", "launch", f"{s.brand} is live: {o[0]} and more", "marketing",
             "open rate"),
            (4, "instagram", o[0], f"Behind the scenes: how we make {o[0]}", "content",
             "saves"),
            (7, "google business profile", "local", "Updated hours, photos and directions",
             "marketing", "profile views"),
            (9, "blog", o[1], f"A guide to {o[1]} for first-timers", "content",
             "organic visits"),
            (11, "instagram", "social proof", "What our regulars say", "marketing",
             "engagement rate"),
            (14, "email", o[2], f"This month: {o[2]}", "marketing", "click-through rate"),
            (16, "facebook", "community", f"Meet the team behind {s.brand}", "content",
             "shares"),
            (18, "instagram", o[-1], f"Planning ahead? Ask us about {o[-1]}", "marketing",
             "enquiries"),
            (21, "email", "review", "Thank you — and what's next", "marketing",
             "repeat visits")]


def calendar_rows(s: Subject, request: str) -> tuple[list[str], Rows]:
    """A content or guest-communication calendar over several weeks (dates deterministic)."""
    start = date(2026, 3, 2) + timedelta(weeks=_seed(s.name, request) % 6)
    entries = _event_calendar(s) if s.is_event else _business_calendar(s)
    rows = [[(start + timedelta(days=day * 2 + day // 3)).isoformat(), channel, theme,
             message, owner, kpi] for day, channel, theme, message, owner, kpi in entries]
    return CALENDAR_HEADER, rows

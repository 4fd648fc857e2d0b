"""What a request is about, for the offline model: the business or event, offerings, audience.

A small table of common domains gives credible specifics; anything else falls back to the
request's own nouns. Everything is derived deterministically from the request text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from agency_offline.plans import EVENT_KEYWORDS, SOFTWARE_KEYWORDS


class SubjectKind(StrEnum):
    BUSINESS = "business"
    SOFTWARE = "software"
    EVENT = "event"


@dataclass(frozen=True)
class Domain:
    """A row of the domain table: keywords that select it and the specifics it brings."""

    key: str
    keywords: tuple[str, ...]
    name: str
    noun: str
    brands: tuple[str, ...]
    audience: str
    offerings: tuple[str, ...]
    tone: str
    kind: SubjectKind = SubjectKind.BUSINESS
    catalog: str = "products"   # the API resource for what it offers
    booking: str = "orders"     # the API resource for what customers ask for


@dataclass(frozen=True)
class Subject:
    """What the request is about, as the offline writer needs it."""

    name: str
    noun: str
    brand: str
    audience: str
    offerings: tuple[str, ...]
    tone: str
    kind: SubjectKind
    domain: str
    location: str = ""
    catalog: str = "products"
    booking: str = "orders"

    @property
    def slug(self) -> str:
        return slugify(self.noun) or "project"

    @property
    def is_event(self) -> bool:
        return self.kind is SubjectKind.EVENT


_B, _S, _E = SubjectKind.BUSINESS, SubjectKind.SOFTWARE, SubjectKind.EVENT

DOMAINS: tuple[Domain, ...] = (
    Domain("bakery", ("bakery", "bakeries", "baker", "patisserie", "pastr", "bread", "cake shop"),
           "Bakery", "bakery",
           ("Golden Crust Bakery", "Rise & Shine Bakery", "The Flour Room", "Crumb & Co. Bakery"),
           "neighbours picking up breakfast, families ordering celebration cakes, and local "
           "cafés buying wholesale",
           ("breads", "pastries", "cakes", "custom orders"), "warm and homely"),
    Domain("dentist", ("dentist", "dental", "orthodont", "teeth"), "Dental practice",
           "dental practice",
           ("Bright Smile Dental", "Maple Street Dental", "Gentle Care Dentistry"),
           "families looking for a new practice, nervous patients, and professionals who need "
           "early or late appointments",
           ("check-ups and hygiene", "fillings and crowns", "teeth whitening",
            "emergency appointments"), "calm and reassuring", _B, "treatments", "appointments"),
    Domain("restaurant", ("restaurant", "bistro", "diner", "trattoria", "pizzeria", "eatery"),
           "Restaurant", "restaurant", ("The Copper Table", "Olive & Thyme", "Harbour Kitchen"),
           "couples booking dinner, groups planning a celebration, and neighbours ordering "
           "takeaway",
           ("seasonal dinner menu", "weekend brunch", "private dining", "takeaway"),
           "inviting and appetising", _B, "dishes", "reservations"),
    Domain("cafe", ("cafe", "café", "coffee", "espresso", "tea room"), "Café", "café",
           ("Daily Grind Café", "The Bean Counter", "Morning Ritual Coffee"),
           "commuters on the way to work, remote workers looking for a table, and weekend "
           "regulars",
           ("specialty coffee", "breakfast and light lunch", "homemade cakes",
            "beans to take home"), "friendly and relaxed", _B, "menu-items", "orders"),
    Domain("gym", ("gym", "fitness", "crossfit", "personal train", "workout"), "Gym", "gym",
           ("Iron & Oak Fitness", "Peak Form Gym", "Northside Strength Club"),
           "beginners who want guidance, busy professionals training before work, and "
           "athletes chasing personal bests",
           ("memberships", "group classes", "personal training", "open gym"),
           "energetic and encouraging", _B, "classes", "bookings"),
    Domain("law", ("law firm", "lawyer", "attorney", "legal", "solicitor"), "Law firm",
           "law firm", ("Hartley & Reed Law", "Fairview Legal", "Stone Bridge Attorneys"),
           "individuals facing a legal decision, small-business owners, and families planning "
           "their estates",
           ("business law", "family law", "wills and estates", "initial consultations"),
           "clear, trustworthy and precise", _B, "practice-areas", "consultations"),
    Domain("bookstore", ("bookstore", "bookshop", "book store", "book shop", "books"),
           "Bookstore", "bookstore", ("Dog-Eared Books", "The Reading Nook", "Chapter & Verse"),
           "avid readers, parents buying for their children, and local book clubs",
           ("new releases", "used and rare books", "children's corner", "author events"),
           "literate and welcoming", _B, "books", "orders"),
    Domain("yoga", ("yoga", "pilates", "meditation"), "Yoga studio", "yoga studio",
           ("Still Water Yoga", "Lotus House Studio", "Sunrise Flow Yoga"),
           "newcomers curious about yoga, regular practitioners, and people easing back from "
           "stress or injury",
           ("beginner classes", "vinyasa flow", "yin and restorative", "private sessions"),
           "calm and encouraging", _B, "classes", "bookings"),
    Domain("salon", ("salon", "barber", "hairdress", "beauty", "nail"), "Salon", "salon",
           ("Studio Lumière", "The Sharp Edge", "Velvet Salon"),
           "regulars who book every six weeks, first-time clients, and wedding parties",
           ("cuts and styling", "colour", "treatments", "bridal and event styling"),
           "polished and friendly", _B, "services", "appointments"),
    Domain("pet", ("dog", "cat ", "pet", "vet", "puppy", "grooming"), "Pet care", "pet care",
           ("Happy Tails", "Paws & Go", "Leash & Lead"),
           "busy owners who work long days, first-time puppy owners, and owners of older pets",
           ("dog walking", "pet sitting", "grooming", "training sessions"),
           "cheerful and dependable", _B, "services", "bookings"),
    Domain("saas", ("saas", "software", "subscription", "b2b", "crm", "churn", "subscriber",
                    "retention", "startup"),
           "Software product", "software product", ("Northstar", "Cloudnest", "Brightlane"),
           "operations teams at small and mid-sized companies evaluating a new tool, and the "
           "admins who will roll it out",
           ("free trial", "team plan", "integrations", "customer success"),
           "confident and practical", _S, "plans", "subscriptions"),
    Domain("shop", ("shop", "store", "boutique", "sneaker", "shoe", "clothing", "fashion",
                    "apparel", "jewel"),
           "", "shop", ("Northside Supply", "Corner & Co.", "Field Goods"),
           "style-conscious shoppers, gift buyers, and returning customers",
           ("new arrivals", "bestsellers", "limited editions", "gift cards"),
           "bold and upbeat"),
    # Events: no software anywhere in what the writer says about them.
    Domain("birthday", ("birthday", "party"), "Birthday party", "birthday party",
           ("The Big Birthday Bash", "A Birthday to Remember", "The Birthday Garden Party"),
           "family and friends of the guest of honour, including children and older relatives",
           ("venue and decorations", "food and birthday cake", "games and entertainment",
            "invitations and RSVPs"), "festive and personal", _E, "activities", "rsvps"),
    Domain("wedding", ("wedding", "bride", "groom", "engagement"), "Wedding", "wedding",
           ("The Summer Wedding", "A Garden Wedding", "The Lakeside Wedding"),
           "family and friends travelling to celebrate the couple, including children and "
           "elderly guests",
           ("ceremony", "reception dinner", "music and dancing", "guest accommodation"),
           "warm and elegant", _E, "activities", "rsvps"),
    Domain("offsite", ("offsite", "off-site", "retreat", "team building", "team-building"),
           "Team offsite", "team offsite",
           ("The Spring Offsite", "Team Reset Retreat", "The Two-Day Offsite"),
           "the team attending, their managers, and the leadership sponsoring the offsite",
           ("strategy sessions", "team activities", "meals and social evening",
            "travel and lodging"), "purposeful and relaxed", _E, "sessions", "registrations"),
    Domain("conference", ("conference", "meetup", "summit", "workshop", "hackathon",
                          "symposium"),
           "Conference", "conference",
           ("Open Horizons Conference", "The Practitioners' Summit", "Builders Meetup"),
           "practitioners who want to learn from peers, speakers, and sponsors looking to meet "
           "them", ("keynote and talks", "hands-on workshops", "networking breaks",
                    "sponsor booths"), "professional and lively", _E, "sessions", "registrations"),
    Domain("trip", ("trip", "travel", "vacation", "holiday", "tour"), "Trip", "trip",
           ("The Coastal Getaway", "The Long Weekend Away", "The Group Adventure"),
           "the travellers, including anyone with mobility or dietary needs",
           ("transport", "accommodation", "daily itinerary", "activities and dining"),
           "adventurous and well-organised", _E, "activities", "bookings"),
    Domain("celebration", ("celebration", "anniversary", "gala", "festival", "reunion",
                           "fundraiser", "graduation", "baby shower"),
           "Celebration", "celebration",
           ("The Anniversary Evening", "The Reunion Weekend", "The Midsummer Gala"),
           "guests of every age who are coming to celebrate together",
           ("venue and décor", "food and drinks", "programme and entertainment",
            "guest communications"), "joyful and welcoming", _E, "activities", "rsvps"),
)

_STOP = frozenset((
    "a", "an", "the", "for", "of", "our", "my", "we", "to", "and", "with", "new", "website",
    "web", "site", "app", "apps", "mobile", "page", "pages", "landing", "some", "that", "this",
    "please", "help", "me", "us", "i", "series", "about", "blog", "campaign", "social", "media",
    "build", "create", "make", "design", "develop", "plan", "organize", "organise", "run",
    "write", "need", "want", "launch", "simple", "small", "local", "modern", "online", "ios",
    "android", "dashboard", "analyze", "analyse", "data", "set", "up", "setup", "on", "in", "at",
    "by", "from", "your", "their", "its", "is", "are", "be", "will", "would", "like", "should",
    "company", "business", "firm", "service", "services", "agency", "shop", "store", "studio",
))


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def slugify(text: str) -> str:
    """Lowercase ASCII words joined by hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("é", "e")).strip("-")[:40]


def _count(text: str, words: tuple[str, ...]) -> int:
    return sum(len(re.findall(rf"\b{re.escape(w)}", text)) for w in words)


def is_event(request: str) -> bool:
    """True for a gathering or trip to organise, unless software words dominate the request."""
    text = request.lower()
    events = _count(text, EVENT_KEYWORDS)
    # Whole words only: "app" must not count "appetisers" or "appointment".
    software = sum(len(re.findall(rf"\b{re.escape(w)}s?\b", text)) for w in SOFTWARE_KEYWORDS)
    return events > 0 and events > software


def _domain(request: str) -> Domain | None:
    text = request.lower()
    event = is_event(request)
    # A request to organise an event only matches events; "a website for our wedding" may
    # still be about a wedding.
    scored = [(_count(text, d.keywords), -i, d) for i, d in enumerate(DOMAINS)
              if d.kind is _E or not event]
    best = max(scored, key=lambda s: (s[0], s[1]))
    if best[0]:
        return best[2]
    if event:
        return next(d for d in DOMAINS if d.key == "celebration")
    return None


def _core(request: str) -> list[str]:
    """The request's own content words, in order, without repeats."""
    words = re.findall(r"[a-zA-Z][a-zA-Z'-]+", request.lower())
    seen: list[str] = []
    for w in words:
        if w not in _STOP and len(w) > 2 and w not in seen:
            seen.append(w)
    return seen


def _named(request: str) -> str:
    quoted = re.search(r"[\"“']([A-Z][^\"”']{1,40})[\"”']", request)
    if quoted:
        return quoted.group(1).strip()
    called = re.search(r"\b(?:called|named)\s+((?:[A-Z][\w'&.-]*\s?){1,4})", request)
    return called.group(1).strip() if called else ""


def _location(request: str) -> str:
    found = re.search(r"\bin ((?:[A-Z][a-zA-Z-]+ ?){1,3})", request)
    return found.group(1).strip() if found else ""


def _event_brand(request: str, domain: Domain) -> str:
    person = re.search(r"\b([A-Z][a-z]+)'s\b", request)
    age = re.search(r"\b(\d{1,3})(?:st|nd|rd|th)\b", request)
    if person and domain.key in ("birthday", "celebration", "wedding"):
        ordinal = f"{age.group(0)} " if age else ""
        return f"{person.group(1)}'s {ordinal}{domain.name.title()}"
    return ""


_WRITING = ("blog", "article", "write", "newsletter", "guide", "ebook", "e-book", "series",
            "podcast", "course")


def _generic_offerings(request: str, head: str) -> tuple[str, ...]:
    if _count(request.lower(), _WRITING):
        return (f"getting started with {head}", f"{head} techniques", f"common {head} mistakes",
                f"{head} questions from readers")
    return (f"{head} services", f"{head} consultations", f"custom {head} projects",
            "support and aftercare")


def _generic(request: str) -> Subject:
    core = _core(request) or ["project"]
    head = " ".join(core[:2])
    name = head.title()
    brands = (f"{name} Co.", f"Bright {name}", f"{name} Collective")
    return Subject(
        name=name, noun=head, brand=_named(request) or brands[_hash(request) % 3],
        audience=f"people looking for {head}, first-time visitors comparing options, and "
                 "returning customers",
        offerings=_generic_offerings(request, head),
        tone="clear and approachable", kind=SubjectKind.BUSINESS, domain="generic",
        location=_location(request))


def subject_of(request: str) -> Subject:
    """What the request is about: a known domain's specifics, or the request's own nouns."""
    domain = _domain(request)
    if domain is None:
        return _generic(request)
    core = _core(request)
    name = domain.name or (core[0].title() if core else "Shop")
    noun = domain.noun if domain.name else (core[0] if core else "shop")
    location = _location(request)
    audience = domain.audience + (f" in and around {location}" if location else "")
    brand = (_named(request) or _event_brand(request, domain)
             or domain.brands[_hash(request) % len(domain.brands)])
    return Subject(name=name, noun=noun, brand=brand, audience=audience,
                   offerings=domain.offerings, tone=domain.tone, kind=domain.kind,
                   domain=domain.key, location=location, catalog=domain.catalog,
                   booking=domain.booking)

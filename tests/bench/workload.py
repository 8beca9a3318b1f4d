"""The benchmark's calendar: N appointments of a French public-service agenda.

Deterministic for a given seed and N, so both servers (and every run) see the
very same bytes.  80% are single 30-minute appointments on business days of
2027 (09:00-17:30, Europe/Paris); every fifth object is a weekly follow-up
series (RRULE FREQ=WEEKLY;COUNT=5..20, 30 to 60 minutes).  Each object carries
the full Europe/Paris VTIMEZONE as real clients send it (both observances,
with their RRULEs), because parsing it is part of every server's real cost.

The expected answers of the timed queries are computed here, independently of
both servers, with ``icalendar`` + ``recurring-ical-events``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import icalendar
import recurring_ical_events

YEAR = 2027
TZID = "Europe/Paris"
PARIS_VTIMEZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "X-LIC-LOCATION:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]
# Query windows (UTC).  The month holds the switch to summer time (2027-03-28),
# so an expansion that gets the time zone wrong shows up as a wrong count.
WEEK = (datetime(YEAR, 6, 7, tzinfo=UTC), datetime(YEAR, 6, 14, tzinfo=UTC))
MONTH = (datetime(YEAR, 3, 1, tzinfo=UTC), datetime(YEAR, 4, 1, tzinfo=UTC))

_MOTIFS = [
    "Carte nationale d'identité",
    "Passeport",
    "Permis de construire",
    "État civil",
    "Inscription scolaire",
    "Aide sociale",
    "Carte grise",
    "Urbanisme",
    "Logement social",
]
_FIRST = [
    "Camille",
    "Dominique",
    "Léa",
    "Hugo",
    "Inès",
    "Louis",
    "Chloé",
    "Nathan",
    "Manon",
    "Gabriel",
    "Zoé",
    "Jules",
    "Sarah",
    "Théo",
    "Émilie",
    "Karim",
]
_LAST = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "N'Diaye",
]
_PLACES = [
    "Mairie annexe, 215 rue Duguesclin, 69003 Lyon",
    "Hôtel de ville, guichet 2, 1 place de la Comédie, 69001 Lyon",
    "Maison France Services, 12 avenue Jean Jaurès, 69007 Lyon",
]


@dataclass(frozen=True)
class CalObject:
    """One calendar object resource: what a client PUTs at ``href``."""

    href: str
    uid: str
    text: str
    recurring: bool


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets without cutting a UTF-8 character (RFC 5545 3.1)."""
    out, current, size = [], "", 0
    for char in line:
        width = len(char.encode())
        if size + width > 75:
            out.append(current)
            current, size = " ", 1
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)


def _business_days() -> list[date]:
    day, days = date(YEAR, 1, 1), []
    while day.year == YEAR:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _object(rng: random.Random, index: int, days: list[date], sequence: int = 0) -> CalObject:
    recurring = index % 5 == 4
    uid = f"{uuid.UUID(int=rng.getrandbits(128), version=4)}@rdv.mairie.example"
    slot = rng.randrange(17 if not recurring else 16)  # 09:00 ... 17:00 (16:30 for series)
    start = datetime.combine(rng.choice(days), datetime.min.time()) + timedelta(
        hours=9, minutes=30 * slot
    )
    minutes = rng.choice((30, 45, 60)) if recurring else 30
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    motif = rng.choice(_MOTIFS)
    reference = f"RDV-{YEAR}-{index:06d}"
    summary = f"{'Suivi hebdomadaire' if recurring else 'Rendez-vous'} : {motif} – {first} {last}"
    if sequence:
        summary += f" (modifié {sequence})"
    description = (
        f"Motif : {motif}\nRéférence : {reference}\n"
        "Merci de vous présenter 10 minutes avant l'heure du rendez-vous, muni(e) "
        "de votre convocation et des pièces justificatives demandées."
    )
    stamp = f"{YEAR - 1}1115T09{sequence:02d}00Z"
    email = f"{first}.{last}".lower().replace("'", "").replace("é", "e").replace("è", "e")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//calserver//caldav-bench//FR",
        "CALSCALE:GREGORIAN",
        *PARIS_VTIMEZONE,
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{stamp}",
        f"CREATED:{YEAR - 1}1115T090000Z",
        f"LAST-MODIFIED:{stamp}",
        f"SEQUENCE:{sequence}",
        f"DTSTART;TZID={TZID}:{start:%Y%m%dT%H%M%S}",
        f"DTEND;TZID={TZID}:{start + timedelta(minutes=minutes):%Y%m%dT%H%M%S}",
    ]
    if recurring:
        lines.append(f"RRULE:FREQ=WEEKLY;COUNT={rng.randint(5, 20)}")
    lines += [
        f"SUMMARY:{_escape(summary)}",
        f"LOCATION:{_escape(rng.choice(_PLACES))}",
        f"DESCRIPTION:{_escape(description)}",
        "ORGANIZER;CN=Accueil de la mairie:mailto:accueil@mairie.example",
        f"ATTENDEE;CN={first} {last};ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=FALSE:"
        f"mailto:{email}@example.org",
        f"CATEGORIES:{_escape(motif)}",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:Rappel",
        "TRIGGER:-PT15M",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    text = "\r\n".join(_fold(line) for line in lines) + "\r\n"
    return CalObject(href=f"{uid}.ics", uid=uid, text=text, recurring=recurring)


def generate(count: int, seed: int) -> list[CalObject]:
    """``count`` objects; the i-th depends only on (seed, i), so sizes share a prefix."""
    days = _business_days()
    return [_object(random.Random(f"{seed}:{i}"), i, days) for i in range(count)]


def modified(obj_index: int, seed: int, sequence: int) -> CalObject:
    """The object ``obj_index`` edited by its organiser: same UID and times, new summary."""
    return _object(random.Random(f"{seed}:{obj_index}"), obj_index, _business_days(), sequence)


@dataclass(frozen=True)
class Expected:
    """What a correct server answers for the timed queries, computed independently."""

    week_objects: int  # objects with an occurrence in WEEK (calendar-query matches)
    month_instances: int  # VEVENT instances of MONTH, after expansion


def expected(objects: list[CalObject]) -> Expected:
    week_objects = month_instances = 0
    for obj in objects:
        query = recurring_ical_events.of(icalendar.Calendar.from_ical(obj.text))
        week_objects += bool(query.between(*WEEK))
        month_instances += len(query.between(*MONTH))
    return Expected(week_objects=week_objects, month_instances=month_instances)

"""The booking benchmark's organisation, loaded into a calserver database.

Agents, lieu, motif, plages, absences and future RDVs go through calserver's
own write path (``plugins.agenda_writer``: the booking check and indexes of a
PUT), so they are exactly what the server would hold.  Past RDVs are history
the rules no longer read; hundreds of thousands of them are inserted in bulk
with the same rows that path writes (item, change log, agenda index).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from booking import events
from booking.rules import BookingRefused
from plugins import agenda_writer
from storage import agents, calendars, scheduling
from storage.database import Database
from storage.schema import agenda_events, agenda_occurrences, changes, items

PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "bench-password"
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]
# The workload's definition, which the benches' answer checks read too.
PLAGES = ((time(9), time(12)), (time(14), time(17)))  # Monday to Friday, weekly
MINUTES = 30  # the motif's duration and every RDV's
ABSENCE = timedelta(hours=3)  # each absence starts at 09:00


@dataclass(frozen=True)
class Organisation:
    """What was loaded; ``absences`` and ``rdvs`` hold the local starts that
    the booking check accepted, per agent id, ``past`` the UTC starts of the
    bulk-inserted history."""

    agent_ids: list[int]
    logins: list[str]
    motif_id: int
    lieu_id: int
    absences: dict[int, list[datetime]]
    rdvs: dict[int, list[datetime]]
    past: list[datetime]


def _plage(first: date, start: time, end: time, motif: int, lieu: int) -> str:
    return events.build_event(
        zone="Europe/Paris",
        start=datetime.combine(first, start, PARIS),
        end=datetime.combine(first, end, PARIS),
        summary="Plage",
        rrule={"FREQ": "WEEKLY", "BYDAY": WEEKDAYS},
        transparent=True,
        motif_ids=[motif],
        lieu_id=lieu,
    )


def _past_rdv_text(uid: str, start: datetime, end: datetime, motif: int, lieu: int) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calserver//bench//FR\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:{start:%Y%m%dT%H%M%SZ}\r\nSEQUENCE:0\r\n"
        f"DTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
        f"SUMMARY:Consultation\r\nSTATUS:CONFIRMED\r\nX-CALSERVER-MOTIF:{motif}\r\n"
        f"X-CALSERVER-LIEU:{lieu}\r\nX-CALSERVER-STATUS:seen\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _business_slots(rng: random.Random, first: date, days: int) -> tuple[date, time]:
    while True:
        day = first + timedelta(days=rng.randrange(days))
        if day.weekday() < 5:
            hour = rng.choice([9, 10, 11, 14, 15, 16])
            return day, time(hour, rng.choice([0, 30]))


def load(
    db: Database,
    *,
    agent_count: int,
    future_per_agent: int,
    past_per_agent: int,
    absences_per_agent: int = 5,
    today: date,
    seed: int = 2027,
    future_days: int = 91,
    past_span: tuple[int, int] = (730, 1),
) -> Organisation:
    """Load the organisation; future RDVs fall in the next ``future_days``, past
    ones from ``past_span[0]`` to ``past_span[1]`` days ago."""
    rng = random.Random(seed)
    with db.transaction(write=True) as conn:
        org = agents.organisation_id(conn, "mon-organisation")
        service = agents.service_id(conn, org, "PMI")
        lieu = scheduling.create_lieu(
            conn, {"organisation_id": org, "name": "Accueil", "address": "1 rue A, 75001 Paris"}
        )["id"]
        motif = scheduling.create_motif(
            conn,
            {
                "organisation_id": org,
                "service_id": service,
                "name": "Consultation",
                "bookable_by": "everyone",
                "duration_minutes": MINUTES,
            },
        )["id"]
        logins, ids = [], []
        for n in range(agent_count):
            login = f"agent{n:04d}"
            ids.append(
                agents.create_agent(
                    conn, login, organisation=org, role="basic", password=PASSWORD,
                    services_names=("PMI",),
                )
            )  # fmt: skip
            logins.append(login)
    first = today - timedelta(days=400)
    absences: dict[int, list[datetime]] = {agent: [] for agent in ids}
    rdvs: dict[int, list[datetime]] = {agent: [] for agent in ids}
    for agent_id, login in zip(ids, logins, strict=True):
        with db.transaction(write=True) as conn:
            for n, (start, end) in enumerate(PLAGES):
                text = _plage(first, start, end, motif, lieu)
                agenda_writer.put_event(conn, f"{login}/plages", f"plage{n}.ics", text)
            for n in range(absences_per_agent):
                day, _ = _business_slots(rng, today + timedelta(days=1), 90)
                start = datetime.combine(day, time(9), PARIS)
                text = events.build_event(
                    zone="Europe/Paris",
                    start=start,
                    end=start + ABSENCE,
                    summary="Absent",
                )
                agenda_writer.put_event(conn, f"{login}/indisponibilites", f"abs{n}.ics", text)
                absences[agent_id].append(start)
            booked = 0
            while booked < future_per_agent:
                day, at = _business_slots(rng, today + timedelta(days=1), future_days)
                start = datetime.combine(day, at, PARIS)
                text = events.build_event(
                    zone="Europe/Paris",
                    start=start,
                    end=start + timedelta(minutes=MINUTES),
                    summary="Consultation",
                    motif_ids=[motif],
                    lieu_id=lieu,
                    status="unknown",
                )
                try:
                    agenda_writer.put_event(conn, f"{login}/rdv", f"future{booked}.ics", text)
                except BookingRefused:
                    continue  # slot taken, absence or holiday: draw again
                rdvs[agent_id].append(start)
                booked += 1
    past: list[datetime] = []
    for agent_id, login in zip(ids, logins, strict=True):
        past += _bulk_past(
            db, org, agent_id, login, past_per_agent, (motif, lieu), today, past_span, rng
        )
    return Organisation(ids, logins, motif, lieu, absences, rdvs, past)


def _bulk_past(
    db: Database,
    org: int,
    agent_id: int,
    login: str,
    count: int,
    motif_lieu: tuple[int, int],
    today: date,
    span: tuple[int, int],
    rng: random.Random,
) -> list[datetime]:
    """Insert ``count`` past RDVs of the agent; their UTC starts."""
    motif, lieu = motif_lieu
    if not count:
        return []
    with db.transaction(write=True) as conn:
        collection = calendars.get_collection(conn, f"{login}/rdv")
        assert collection is not None
        revision = calendars.bump_revision(conn, collection)
        rows, index = [], []
        for n in range(count):
            day, at = _business_slots(rng, today - timedelta(days=span[0]), span[0] - span[1])
            start = datetime.combine(day, at, PARIS).astimezone(UTC)
            end = start + timedelta(minutes=MINUTES)
            uid = f"past-{login}-{n}"
            text = _past_rdv_text(uid, start, end, motif, lieu)
            s, e = int(start.timestamp()), int(end.timestamp())
            rows.append(
                {
                    "collection_id": collection.id,
                    "href": f"{uid}.ics",
                    "uid": uid,
                    "etag": f'"{hashlib.md5(text.encode()).hexdigest()}"',
                    "component": "VEVENT",
                    "text": text,
                    "t_start": s,
                    "t_end": e,
                    "ranges_until": None,
                    "revision": revision,
                    "modified_at": s,
                }
            )
            index.append((uid, s, e))
        conn.execute(insert(items), rows)
        conn.execute(
            insert(changes),
            [
                {
                    "collection_id": collection.id,
                    "revision": revision,
                    "href": r["href"],
                    "operation": "created",
                }
                for r in rows
            ],
        )
        item_ids = dict(
            conn.execute(
                select(items.c.uid, items.c.id).where(
                    items.c.collection_id == collection.id, items.c.revision == revision
                )
            ).all()
        )
        common = {"agent_id": agent_id, "kind": "rdv"}
        event = {
            **common,
            "organisation_id": org,
            "motif_id": motif,
            "lieu_id": lieu,
            "status": "seen",
            "motif_ids": None,
            "expanded_until": calendars.FAR_FUTURE,
        }
        conn.execute(
            insert(agenda_events),
            [
                {**event, "item_id": item_ids[uid], "uid": uid, "starts_at": s, "ends_at": e}
                for uid, s, e in index
            ],
        )
        conn.execute(
            insert(agenda_occurrences),
            [{**common, "item_id": item_ids[uid], "r_start": s, "r_end": e} for uid, s, e in index],
        )
    return [datetime.fromtimestamp(s, UTC) for _, s, _ in index]

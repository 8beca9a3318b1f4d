"""Text kept as sent: an unescaped comma in a TEXT value (common in the wild,
though RFC 5545 wants it escaped) and the comma-separated ids of our own
X-CALSERVER- properties survive a PUT and a GET, over raw HTTP and through
the ``caldav`` library; a plage's motifs survive a client's re-PUT, and the
booking index always says what the stored text says.

The tests share one server per database (``module_server``): the raw-text
ones each write into a calendar of their own, the plage ones share one office
set up once per module, each on a day and with uids of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import caldav
import httpx
import icalendar
import pytest
from sqlalchemy import select

from booking import events
from storage.database import Database
from storage.schema import agenda_events, items
from tests import dates
from tests.conftest import ADMIN_PASSWORD, Server, new_calendar
from tests.ics import event
from tests.protocol.office import ALICE, Office, ok

ADMIN = ("admin", ADMIN_PASSWORD)
COMMAS = {
    "SUMMARY": "Suivi PMI, vaccins",
    "DESCRIPTION": "Apporter le carnet, la carte vitale; et l'ordonnance",
    "LOCATION": "Salle 2, 1er étage, bâtiment B",
}
UNESCAPED = "\r\n".join(f"{name}:{value}" for name, value in COMMAS.items() if name != "SUMMARY")


def _raw_event(uid: str) -> str:
    return event(uid, dates.at(dates.monday(3), 10), summary=COMMAS["SUMMARY"], extra=UNESCAPED)


def _values(text: str) -> dict[str, str]:
    (vevent,) = icalendar.Calendar.from_ical(text).walk("VEVENT")
    return {name: str(vevent[name]) for name in COMMAS}


@pytest.fixture
def calendar(module_server: Server) -> str:
    """The URL of a new, empty calendar of admin's, this test's alone."""
    return module_server.dav + new_calendar(module_server)


def test_unescaped_commas_survive_put_and_get_over_raw_http(calendar: str) -> None:
    url = f"{calendar}commas.ics"
    put = httpx.put(url, content=_raw_event("commas"), auth=ADMIN)
    assert put.status_code in (201, 204), put.text
    got = httpx.get(url, auth=ADMIN)
    assert got.status_code == 200
    assert _values(got.text) == COMMAS
    assert "Suivi PMI\\, vaccins" in got.text  # re-serialised, correctly escaped


def test_unescaped_commas_survive_through_the_caldav_library(
    module_server: Server, calendar: str
) -> None:
    client = caldav.DAVClient(url=module_server.dav, username=ADMIN[0], password=ADMIN[1])
    agenda = client.principal().calendar(cal_url=calendar)
    # save_event() would re-serialise the text with icalendar (escaping the
    # commas); the client's own PUT sends the bytes as a hand-written file has them.
    answer = client.put(
        f"{calendar}commas-lib.ics",
        _raw_event("commas-lib"),
        {"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert answer.status in (201, 204)
    component = agenda.event_by_uid("commas-lib").icalendar_component
    assert {name: str(component[name]) for name in COMMAS} == COMMAS
    hits = agenda.search(event=True, summary="vaccins")
    assert [str(h.icalendar_component["UID"]) for h in hits] == ["commas-lib"]


class Motifs(Office):
    """alice's office with two more motifs of her service."""

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        service = ok(self.admin.get(f"/organisations/{self.org}/services"))[0]["id"]
        self.motifs = [self.motif] + [
            ok(
                self.admin.post(
                    f"/organisations/{self.org}/motifs",
                    json={"name": name, "service_id": service, "duration_minutes": 30},
                ),
                201,
            )["id"]
            for name in ("Vaccination", "Pesée")
        ]


@pytest.fixture(scope="module")
def office(module_server: Server) -> Iterator[Motifs]:
    office = Motifs(module_server)
    yield office
    office.close()


def _index_equals_text(database_url: str, uid: str) -> list[int]:
    """The plage's motifs in the booking index, checked equal to those of its
    stored text."""
    db = Database(database_url)
    try:
        with db.connection() as conn:
            motif_ids, text = conn.execute(
                select(agenda_events.c.motif_ids, items.c.text)
                .join(items, items.c.id == agenda_events.c.item_id)
                .where(agenda_events.c.uid == uid)
            ).one()
    finally:
        db.dispose()
    indexed = json.loads(motif_ids)
    assert indexed == events.parse(text, "Europe/Paris").motif_ids
    return indexed


def test_plage_keeps_all_its_motifs_through_a_client_re_put(office: Motifs) -> None:
    plage = {
        "motif_ids": office.motifs,
        "lieu_id": office.lieu,
        "first_day": dates.monday(5).isoformat(),
        "start_time": "09:00",
        "end_time": "12:00",
        "title": "Permanence, matin",
    }
    created = ok(office.alice.post(f"/agents/{office.agent}/plages", json=plage), 201)
    assert created["motif_ids"] == office.motifs
    url = f"{office.server.dav}alice/plages/{created['href']}"
    got = httpx.get(url, auth=ALICE)
    assert got.status_code == 200
    vevent = icalendar.Calendar.from_ical(got.text).walk("VEVENT")[0]
    assert str(vevent[events.X_MOTIF]).split(",") == [str(m) for m in office.motifs]
    # A client moves the plage by an hour and writes our X- property back
    # as it read it, its title with a bare comma.
    moved = (
        got.text.replace("T090000", "T080000")
        .replace("T120000", "T110000")
        .replace("SUMMARY:Permanence\\, matin", "SUMMARY:Permanence, matin avancée")
    )
    put = httpx.put(url, content=moved, auth=ALICE, headers={"If-Match": got.headers["ETag"]})
    assert put.status_code == 204, put.text
    plages = ok(office.alice.get(f"/agents/{office.agent}/plages"))
    (listed,) = [p for p in plages if p["id"] == created["id"]]
    assert listed["motif_ids"] == office.motifs
    assert listed["title"] == "Permanence, matin avancée"
    assert datetime.fromisoformat(listed["starts_at"]).hour == 8
    assert _index_equals_text(office.server.database_url, created["id"]) == office.motifs


def test_bare_comma_separated_motifs_from_a_client_are_all_kept(office: Motifs) -> None:
    day = dates.monday(6)
    ids = ",".join(str(m) for m in office.motifs)
    text = event(
        "plage-from-client",
        dates.at(day, 14),
        minutes=120,
        summary="Plage, après-midi",
        extra=f"TRANSP:TRANSPARENT\r\nX-CALSERVER-MOTIF:{ids}\r\nX-CALSERVER-LIEU:{office.lieu}",
    )
    url = f"{office.server.dav}alice/plages/plage-from-client.ics"
    assert httpx.put(url, content=text, auth=ALICE).status_code == 201
    stored = httpx.get(url, auth=ALICE).text
    vevent = icalendar.Calendar.from_ical(stored).walk("VEVENT")[0]
    assert str(vevent[events.X_MOTIF]) == ids
    assert _index_equals_text(office.server.database_url, "plage-from-client") == office.motifs
    plages = ok(office.alice.get(f"/agents/{office.agent}/plages"))
    (listed,) = [p for p in plages if p["id"] == "plage-from-client"]
    assert listed["motif_ids"] == office.motifs
    creneaux = ok(
        office.alice.get(
            "/creneaux",
            params={"motif": office.motifs[2], "from": day.isoformat(), "to": day.isoformat()},
        )
    )["creneaux"]
    assert datetime.fromisoformat(creneaux[0]["starts_at"]).hour == 14

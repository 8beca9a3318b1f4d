"""Every path that writes a record tells the outbox once, in the write's
transaction: the JSON API, CalDAV PUT, MOVE and DELETE, ``calserver import``;
a refused write tells nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import caldav
import httpx
import pytest
from sqlalchemy import select

from storage import outbox
from storage.database import Database
from storage.schema import outbox_events, outbox_records
from tests.conftest import Server, run_cli
from tests.ics import event
from tests.protocol.pmi_office import Office, book, ok, set_up


@pytest.fixture
def office(server: Server) -> Office:
    return set_up(server)


@pytest.fixture
def db(office: Office) -> Iterator[Database]:
    database = Database(office.server.database_url)
    yield database
    database.dispose()


class Tail:
    """The events written since the last look."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen = 0
        self.new()

    def new(self) -> list[outbox.Event]:
        with self.db.transaction(write=False) as conn:
            found = outbox.events(conn, after=self.seen)
        if found:
            self.seen = found[-1].id
        return found

    def one(self) -> outbox.Event:
        found = self.new()
        assert len(found) == 1, [(e.model, e.event, e.changes) for e in found]
        return found[0]


def _rdv_text(office: Office, uid: str, hour: int) -> str:
    start = datetime.combine(office.day, datetime.min.time()).replace(hour=hour)
    extra = f"X-CALSERVER-MOTIF:{office.motif}\r\nX-CALSERVER-LIEU:{office.lieu}"
    return event(uid, start, extra=extra)


def test_setting_up_tells_each_record_once(office: Office, db: Database) -> None:
    with db.transaction(write=False) as conn:
        found = outbox.events(conn)
    told = {(e.model, e.record_id): e for e in found}
    assert len(told) == len(found)  # one event per record
    assert {e.event for e in found} == {"created"}
    assert {m for m, _ in told} == {
        "organisation", "agent", "lieu", "motif", "usager", "plage_ouverture",
    }  # fmt: skip
    assert ("agent", office.alice) in told and ("usager", office.usager) in told
    plage = next(e for e in found if e.model == "plage_ouverture")
    assert plage.data["motif_ids"] == [office.motif] and "FREQ=WEEKLY" in plage.data["recurrence"]
    assert {e.organisation_id for e in found} == {office.org}
    with db.transaction(write=False) as conn:
        dump = json.dumps(
            [list(r) for r in conn.execute(select(outbox_events.c.data, outbox_events.c.changes))]
            + [list(r) for r in conn.execute(select(outbox_records.c.state))]
        )
    assert "Camille" not in dump and "c@example.org" not in dump


def test_an_rdv_through_the_api_booked_moved_cancelled(office: Office, db: Database) -> None:
    tail = Tail(db)
    rdv = ok(book(office, "09:00"), 201)
    created = tail.one()
    assert (created.model, created.event, created.sequence, created.changes) == (
        "rdv", "created", 1, ["created"],
    )  # fmt: skip
    assert created.data["uuid"] == rdv["id"] and created.data["status"] == "unknown"
    assert created.data["agent_ids"] == [office.alice]
    assert created.data["usager_ids"] == [office.usager]
    assert created.data["created_by"] == "agent" and created.data["cancelled_at"] is None
    refused = book(office, "09:00", login="bob")
    assert refused.status_code == 409
    assert tail.new() == []  # a refused booking tells nothing
    with office.client("alice") as alice:
        url = f"/agents/{office.alice}/rdvs/{rdv['id']}"
        ok(alice.patch(url, json={"starts_at": office.at("10:00")}))
        moved = tail.one()
        assert (moved.record_id, moved.event, moved.sequence) == (created.record_id, "updated", 2)
        assert moved.changes == ["moved"]
        ok(alice.delete(url))
    cancelled = tail.one()
    assert cancelled.sequence == 3 and cancelled.changes == ["status_changed", "cancelled"]
    assert cancelled.data["status"] == "revoked" and cancelled.data["cancelled_at"]


def test_an_rdv_through_caldav_put_moved_and_deleted(office: Office, db: Database) -> None:
    tail = Tail(db)
    dav = caldav.DAVClient(url=office.server.dav, username="alice", password="alice-password")
    agenda = dav.calendar(url=office.server.dav + "alice/rdv/")
    saved = agenda.save_event(_rdv_text(office, "client-rdv", 11))
    created = tail.one()
    assert (created.model, created.event, created.data["uuid"]) == (
        "rdv", "created", "client-rdv",
    )  # fmt: skip
    outside = httpx.put(
        office.server.dav + "alice/rdv/late.ics",
        content=_rdv_text(office, "late", 15).encode(),
        auth=("alice", "alice-password"),
    )
    assert outside.status_code == 403 and "outside-plage" in outside.text
    assert tail.new() == []
    target = office.server.dav + "bob/rdv/moved.ics"
    moved = httpx.request(
        "MOVE", str(saved.url), auth=("admin", "admin-secret-1"), headers={"Destination": target}
    )
    assert moved.status_code in (201, 204), moved.text
    to_bob = tail.one()
    assert (to_bob.record_id, to_bob.event, to_bob.changes) == (
        created.record_id, "updated", ["agents_changed"],
    )  # fmt: skip
    assert to_bob.data["agent_ids"] == [office.bob]
    bob = caldav.DAVClient(url=office.server.dav, username="bob", password="bob-password")
    bob.calendar(url=office.server.dav + "bob/rdv/").event_by_uid("client-rdv").delete()
    destroyed = tail.one()
    assert (destroyed.record_id, destroyed.event, destroyed.sequence) == (
        created.record_id, "destroyed", 3,
    )  # fmt: skip
    assert destroyed.changes == ["destroyed"] and destroyed.data["status"] == "unknown"
    for uid, hour in (("whole-1", 10), ("whole-2", 11)):
        agenda.save_event(_rdv_text(office, uid, hour))
    kept = {e.record_id for e in tail.new()}
    assert len(kept) == 2
    # Deleting a whole collection (an agent's, with its agendas: theirs alone
    # cannot be deleted) tells each RDV in it destroyed, and the plage.
    gone = httpx.delete(office.server.dav + "alice/", auth=("admin", "admin-secret-1"))
    assert gone.status_code in (200, 204), gone.text
    told = [(e.model, e.record_id, e.event) for e in tail.new()]
    assert sorted(t for t in told if t[0] == "rdv") == sorted(
        ("rdv", record_id, "destroyed") for record_id in kept
    )
    assert [t[::2] for t in told if t[0] != "rdv"] == [("plage_ouverture", "destroyed")]


def test_absences_and_records_are_told(office: Office, db: Database) -> None:
    tail = Tail(db)
    start = datetime.combine(office.day, datetime.min.time()).replace(hour=14)
    url = office.server.dav + "alice/indisponibilites/formation.ics"
    auth = ("alice", "alice-password")
    assert httpx.put(url, content=event("formation", start).encode(), auth=auth).status_code == 201
    absence = tail.one()
    assert (absence.model, absence.event, absence.organisation_id) == (
        "absence", "created", office.org,
    )  # fmt: skip
    assert httpx.delete(url, auth=auth).status_code == 200
    assert tail.one().event == "destroyed"
    with office.client() as admin:
        motif_url = f"/organisations/{office.org}/motifs/{office.motif}"
        ok(admin.patch(motif_url, json={"name": "Consultation PMI"}))
        assert tail.one().changes == ["name"]
        ok(admin.patch(motif_url, json={"name": "Consultation PMI"}))
        assert tail.new() == []  # nothing changed, nothing told
        refused = admin.patch(motif_url, json={"duration_minutes": 7})
        assert refused.status_code == 422
        assert tail.new() == []


def test_calserver_import_tells_each_object_or_nothing(
    office: Office, db: Database, tmp_path: Path
) -> None:
    tail = Tail(db)
    folder = tmp_path / "ics"
    folder.mkdir()
    for n, hour in enumerate((14, 15)):
        start = datetime.combine(office.day, datetime.min.time()).replace(hour=hour)
        (folder / f"a{n}.ics").write_text(event(f"import-{n}", start))
    done = run_cli(office.server.database_url, "import", "alice/indisponibilites", str(folder))
    assert done.returncode == 0, done.stderr
    assert [(e.model, e.event) for e in tail.new()] == [("absence", "created")] * 2
    refused_folder = tmp_path / "refused"
    refused_folder.mkdir()
    (refused_folder / "ok.ics").write_text(_rdv_text(office, "imported-ok", 9))
    (refused_folder / "zz.ics").write_text(_rdv_text(office, "imported-late", 16))
    refused = run_cli(office.server.database_url, "import", "alice/rdv", str(refused_folder))
    assert refused.returncode == 1 and "zz.ics" in refused.stderr
    assert tail.new() == []

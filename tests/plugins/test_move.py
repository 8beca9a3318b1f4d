"""A MOVE writes the item once: its row moves with its text and ranges, and
the calendar it joins logs one change for it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from storage import calendars
from storage.database import Database
from storage.schema import changes
from tests.ics import event
from tests.plugins.conftest import Call


def _changes(db: Database, path: str) -> list[tuple[str, str]]:
    with db.transaction(write=False) as conn:
        row = calendars.get_collection(conn, path)
        assert row is not None
        query = (
            select(changes.c.href, changes.c.operation)
            .where(changes.c.collection_id == row.id)
            .order_by(changes.c.revision)
        )
        return [(r.href, r.operation) for r in conn.execute(query)]


def test_a_move_between_calendars_is_one_change_on_each_side(dav: Call, db: Database) -> None:
    for name in ("perso", "archives"):
        assert dav("alice", "MKCALENDAR", f"/alice/{name}/")[0].startswith("201")
    text = event("m1", datetime(2027, 3, 1, 9), rrule="FREQ=WEEKLY;COUNT=3")
    assert dav("alice", "PUT", "/alice/perso/m1.ics", text.encode())[0].startswith("201")
    moved = dav("alice", "MOVE", "/alice/perso/m1.ics", destination="/dav/alice/archives/m1.ics")
    assert moved[0][:3] in ("201", "204"), moved
    assert _changes(db, "alice/archives") == [("m1.ics", "created")]
    assert _changes(db, "alice/perso") == [("m1.ics", "created"), ("m1.ics", "deleted")]
    with db.transaction(write=False) as conn:
        archives = calendars.get_collection(conn, "alice/archives")
        assert archives is not None
        found = calendars.get_items(conn, archives.id, ["m1.ics"])["m1.ics"]
        in_march = calendars.items_in_range(conn, archives.id, "VEVENT", 1804233600, 1806912000)
    assert "UID:m1" in (found.text or "")
    assert [row.href for row, _ in in_march] == ["m1.ics"]  # its occurrences came along

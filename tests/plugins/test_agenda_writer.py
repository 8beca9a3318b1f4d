"""The agenda writer's reads lock nothing: on PostgreSQL a read transaction
(REPEATABLE READ) that locked the agenda row would fail with "could not
serialize access" as soon as a booking changed that agenda after the read
began (the public booking page's confirmation did, under load)."""

from __future__ import annotations

import threading

from sqlalchemy import text

from plugins import agenda_writer
from storage import calendars
from storage.database import Database

PATH = "alice/agenda"


def test_a_read_sees_its_snapshot_while_a_write_changes_the_agenda(db: Database) -> None:
    with db.transaction(write=True) as conn:
        calendars.create_collection(conn, "alice", "alice", "principal", {})
        calendars.create_collection(conn, PATH, "alice", "calendar", {"tag": "VCALENDAR"})
    read_began, written = threading.Event(), threading.Event()

    def change_the_agenda() -> None:
        read_began.wait(10)
        with db.transaction(write=True) as conn:
            found = calendars.get_collection(conn, PATH)
            assert found is not None
            calendars.bump_revision(conn, found)
        written.set()

    writer = threading.Thread(target=change_the_agenda)
    writer.start()
    with db.transaction(write=False) as conn:
        conn.execute(text("SELECT 1")).scalar_one()  # the snapshot is taken
        read_began.set()
        assert written.wait(10)
        assert agenda_writer.href_of(conn, PATH, "nothing@here") is None
        assert agenda_writer.event_texts(conn, PATH) == []
    writer.join()

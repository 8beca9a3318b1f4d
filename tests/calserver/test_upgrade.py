"""A database written before the booking engine (schema 0001) gets its
agendas indexed on upgrade, so existing RDVs keep their slots."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from alembic import command
from sqlalchemy import func, select

from booking import agenda
from calserver.bootstrap import prepare_database
from calserver.config import load_settings
from plugins.item_index import item_write, prepared_item
from storage import agents, calendars, scheduling
from storage.database import Database
from storage.schema import agenda_events
from tests.dates import at, working_monday
from tests.ics import event


def test_upgrade_from_0001_indexes_existing_agendas(database_url: str) -> None:
    day = working_monday()
    db = Database(database_url)
    command.upgrade(db.alembic_config(), "0001")
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Org", "org")
        agents.create_agent(conn, "alice", organisation=org, role="basic", password="alice-pass-1")
        for path, text in (
            ("alice/plages", event("p", at(day, 9), minutes=180, rrule="FREQ=WEEKLY")),
            ("alice/rdv", event("r", at(day, 9), extra="X-CALSERVER-MOTIF:1")),
        ):
            collection = calendars.get_collection(conn, path)
            assert collection is not None
            calendars.put_item(conn, collection, item_write(prepared_item(text, path), "x.ics"))
    prepare_database(db, load_settings(env={"CALSERVER_ADMIN_PASSWORD": "admin-secret-1"}))
    with db.transaction(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(agenda_events)).scalar_one() == 2
        alice = scheduling.agent_by_login(conn, "alice")["id"]
        plages, busy = agenda.gather(
            conn,
            [alice],
            datetime.combine(day, time(), UTC),
            datetime.combine(day + timedelta(days=1), time(), UTC),
        )
    assert len(plages) == 1 and [b.reason for b in busy] == ["rdv"]
    db.dispose()

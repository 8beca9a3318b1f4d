"""A database written before the booking engine (schema 0001) gets its
agendas indexed on upgrade, so existing RDVs keep their slots."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from alembic import command
from sqlalchemy import Connection, func, insert, select

from booking import agenda
from calserver.bootstrap import prepare_database
from calserver.config import load_settings
from plugins.item_index import item_write, prepared_item
from storage import calendars, outbox, scheduling
from storage.agents import AGENDAS
from storage.database import Database
from storage.schema import agenda_events, agent_roles, agents, organisations
from tests.dates import at, working_monday
from tests.ics import event


def _agent_at_0001(conn: Connection) -> None:
    """An organisation and alice with her agendas, written as the code of
    schema 0001 wrote them (today's repositories also tell the outbox, which
    that schema has not)."""
    org = conn.execute(
        insert(organisations).values(name="Org", slug="org").returning(organisations.c.id)
    ).scalar_one()
    alice = conn.execute(
        insert(agents).values(login="alice", display_name="alice", created_at=0)
        .returning(agents.c.id)
    ).scalar_one()  # fmt: skip
    conn.execute(insert(agent_roles).values(agent_id=alice, organisation_id=org, role="basic"))
    calendars.create_collection(conn, "alice", "alice", "principal", {})
    for segment in AGENDAS:
        props = {"tag": "VCALENDAR", "C:supported-calendar-component-set": "VEVENT"}
        calendars.create_collection(conn, f"alice/{segment}", "alice", segment, props)


def test_upgrade_from_0001_indexes_existing_agendas(empty_database_url: str) -> None:
    day = working_monday()
    db = Database(empty_database_url)
    command.upgrade(db.alembic_config(), "0001")
    with db.transaction(write=True) as conn:
        _agent_at_0001(conn)
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
    # The outbox learnt what was there, without events, so that an initial
    # sync replays it (the RDV names a motif of no organisation: left out).
    with db.transaction(write=True) as conn:
        assert outbox.events(conn) == []
        org = scheduling.organisations_of(conn, alice)[0][0]
        assert outbox.replay(conn, org, outbox.MODELS, endpoint_id=1) == 3
        replayed = {(e.model, e.sequence) for e in outbox.events(conn)}
    assert replayed == {("organisation", 0), ("agent", 0), ("plage_ouverture", 0)}
    db.dispose()

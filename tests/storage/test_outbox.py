"""The outbox repository: events written in the change's transaction, a
sequence per record, changes named, no personal data kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import event as sql_events
from sqlalchemy import select

from storage import agents, deliveries, outbox, scheduling, webhooks
from storage.database import Database
from storage.schema import outbox_events, outbox_records


class Boom(Exception):
    pass


def _organisation(db: Database) -> int:
    with db.transaction(write=True) as conn:
        return agents.create_organisation(conn, "Mairie", "mairie")


def _events(db: Database, after: int = 0) -> list[outbox.Event]:
    with db.transaction(write=False) as conn:
        return outbox.events(conn, after=after)


def test_a_record_is_told_created_then_updated_with_its_changes(db: Database) -> None:
    org = _organisation(db)
    (created_org,) = _events(db)
    assert (created_org.model, created_org.event, created_org.sequence) == (
        "organisation", "created", 1,
    )  # fmt: skip
    assert created_org.organisation_id == org and created_org.data["slug"] == "mairie"
    with db.transaction(write=True) as conn:
        lieu = scheduling.create_lieu(
            conn, {"organisation_id": org, "name": "Annexe", "address": "1 rue A"}
        )
    with db.transaction(write=True) as conn:
        scheduling.update_lieu(conn, lieu["id"], {"name": "Annexe Nord", "phone": "0102030405"})
    with db.transaction(write=True) as conn:
        scheduling.update_lieu(conn, lieu["id"], {"name": "Annexe Nord"})  # changes nothing
    created, updated = _events(db, after=created_org.id)
    assert (created.model, created.record_id, created.event) == ("lieu", lieu["id"], "created")
    assert (updated.event, updated.sequence, updated.changes) == ("updated", 2, ["name", "phone"])
    assert updated.data["name"] == "Annexe Nord" and updated.organisation_id == org


def test_a_rolled_back_write_tells_nothing(db: Database) -> None:
    org = _organisation(db)
    before = _events(db)
    with pytest.raises(Boom), db.transaction(write=True) as conn:
        scheduling.create_lieu(conn, {"organisation_id": org, "name": "L", "address": "A"})
        scheduling.update_organisation(conn, org, {"overbooking_allowed": True})
        raise Boom
    assert _events(db) == before
    with db.transaction(write=False) as conn:
        keys = set(conn.execute(select(outbox_records.c.key)).scalars())
        assert keys == {f"organisation:{org}"}
        assert scheduling.lieux_of(conn, org) == []


def test_usager_events_carry_no_personal_data(db: Database) -> None:
    org = _organisation(db)
    person = {
        "first_name": "Camille",
        "last_name": "Durand",
        "email": "camille@example.org",
        "phone": "0612345678",
        "address": "3 rue des Lilas",
        "postcode": "75011",
        "city": "Montreuil-sous-Bois",
        "notes": "malentendante",
    }
    with db.transaction(write=True) as conn:
        usager = scheduling.create_usager(conn, {"organisation_id": org, **person})
    with db.transaction(write=True) as conn:
        scheduling.update_usager(conn, usager["id"], {"phone": "0700000000", "notes": "x"})
    *_, created, updated = _events(db)
    assert (created.model, created.event) == ("usager", "created")
    assert "first_name" not in created.data and created.data["id"] == usager["id"]
    # A changed phone is named; the agent's note is not even tracked.
    assert (updated.event, updated.changes) == ("updated", ["phone"])
    with db.transaction(write=False) as conn:
        stored = [*conn.execute(select(outbox_events.c.data, outbox_events.c.changes)).all()]
        stored += conn.execute(select(outbox_records.c.state)).all()
    dump = json.dumps([list(row) for row in stored])
    for value in (*person.values(), "0700000000"):
        assert value not in dump


def test_an_agent_is_told_to_its_organisation(db: Database) -> None:
    org = _organisation(db)
    with db.transaction(write=True) as conn:
        agent_id = agents.create_agent(
            conn, "alice", organisation=org, role="basic", password="alice-pass-1"
        )
        scheduling.set_agent_settings(conn, agent_id, {"other_calendars_block": False})
    *_, created, updated = _events(db)
    assert (created.model, created.record_id, created.organisation_id) == ("agent", agent_id, org)
    assert "password_hash" not in created.data and created.data["login"] == "alice"
    assert (updated.sequence, updated.changes) == (2, ["other_calendars_block"])


def test_a_replay_tells_current_state_to_one_endpoint(db: Database) -> None:
    org = _organisation(db)
    with db.transaction(write=True) as conn:
        other = agents.create_organisation(conn, "Autre", "autre")
        lieu = scheduling.create_lieu(conn, {"organisation_id": org, "name": "L", "address": "A"})
        scheduling.create_lieu(conn, {"organisation_id": other, "name": "M", "address": "B"})
        scheduling.update_lieu(conn, lieu["id"], {"name": "L2"})
        scheduling.create_usager(
            conn, {"organisation_id": org, "first_name": "A", "last_name": "B"}
        )
    last = _events(db)[-1].id
    with db.transaction(write=True) as conn:
        count = outbox.replay(conn, org, ["lieu", "organisation"], endpoint_id=7)
    replayed = _events(db, after=last)
    assert count == len(replayed) == 2
    assert {(e.model, e.record_id) for e in replayed} == {
        ("organisation", org),
        ("lieu", lieu["id"]),
    }
    for event in replayed:
        assert (event.event, event.reason, event.endpoint_id) == ("created", "initial_sync", 7)
        assert event.organisation_id == org
    replayed_lieu = next(e for e in replayed if e.model == "lieu")
    assert replayed_lieu.sequence == 2 and replayed_lieu.data["name"] == "L2"


def test_a_replay_reads_only_the_organisations_records_in_a_few_statements(
    db: Database,
) -> None:
    """The organisation is chosen in SQL (by index), not by reading every
    record of the database; its events are written in batches: the
    statements a replay runs do not grow with the records replayed."""
    org = _organisation(db)
    with db.transaction(write=True) as conn:
        other = agents.create_organisation(conn, "Autre", "autre")
        for n in range(30):
            scheduling.create_lieu(conn, {"organisation_id": org, "name": f"L{n}", "address": "A"})
            scheduling.create_lieu(
                conn, {"organisation_id": other, "name": f"M{n}", "address": "B"}
            )
    moved = {"uuid": "u1", "status": "unknown", "organisation_ids": [other]}
    with db.transaction(write=True) as conn:  # a record that left org for other
        outbox.record(conn, outbox.previous(conn, "rdv", 7), "rdv", 7, {**moved,
                      "organisation_ids": [org]}, [org])  # fmt: skip
        outbox.record(conn, outbox.previous(conn, "rdv", 7), "rdv", 7, moved, [other])
    last = _events(db)[-1].id
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sql_events.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.transaction(write=True) as conn:
            before = len(statements)
            replayed = outbox.replay(conn, org, ["lieu", "rdv"], endpoint_id=3)
            used = len(statements) - before
    finally:
        sql_events.remove(db.engine, "before_cursor_execute", count)
    assert replayed == 30 and used <= 3  # the select, NOTIFY (PostgreSQL), one insert
    told = _events(db, after=last)
    assert {e.organisation_id for e in told} == {org} and {e.model for e in told} == {"lieu"}
    with db.transaction(write=True) as conn:
        assert outbox.replay(conn, other, ["rdv"], endpoint_id=4) == 1


def test_a_record_moved_to_another_organisation_is_destroyed_there_and_created_here(
    db: Database,
) -> None:
    """An RDV moved (CalDAV MOVE, or any path) to an agenda of another
    organisation: the one it left hears ``destroyed``, the one it joined
    ``created``, and no endpoint hears of a record of another organisation."""
    org = _organisation(db)
    with db.transaction(write=True) as conn:
        other = agents.create_organisation(conn, "Autre", "autre")
        here = webhooks.create_endpoint(conn, org, "https://a.example/h", "s", ["rdv"])
        there = webhooks.create_endpoint(conn, other, "https://b.example/h", "s", ["rdv"])
    rdv = {"uuid": "u1", "status": "unknown", "agent_ids": [1], "organisation_ids": [org]}
    with db.transaction(write=True) as conn:
        outbox.record(conn, outbox.previous(conn, "rdv", 42), "rdv", 42, rdv, [org])
    moved = {**rdv, "agent_ids": [2], "organisation_ids": [other]}
    with db.transaction(write=True) as conn:
        outbox.record(conn, outbox.previous(conn, "rdv", 42), "rdv", 42, moved, [other])
    shared = {**moved, "organisation_ids": [org, other]}  # an agenda in both
    with db.transaction(write=True) as conn:
        outbox.record(conn, outbox.previous(conn, "rdv", 42), "rdv", 42, shared, [org, other])
    told = [(e.organisation_id, e.event, e.sequence, e.data["agent_ids"]) for e in _events(db)
            if e.model == "rdv"]  # fmt: skip
    assert told == [
        (org, "created", 1, [1]),
        (org, "destroyed", 2, [1]),  # as it was when it left
        (other, "created", 2, [2]),
        (org, "created", 3, [2]),
        (other, "updated", 3, [2]),
    ]
    with db.transaction(write=True) as conn:
        deliveries.dispatch(conn, 0)
        sent = {
            endpoint["id"]: [(d["event"], d["sequence"]) for d in
                             reversed(deliveries.deliveries_of(conn, endpoint["id"]))]
            for endpoint in (here, there)
        }  # fmt: skip
    assert sent[here["id"]] == [("created", 1), ("destroyed", 2), ("created", 3)]
    assert sent[there["id"]] == [("created", 2), ("updated", 3)]

"""What migration 0015 and the first start after it fill in, on SQLite and
PostgreSQL: usagers' search keys from their names, and the usagers of RDVs
indexed before ``rdv_usagers`` existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import delete, insert, select

from booking import events, participations
from plugins import agenda_writer
from storage import agents, scheduling
from storage.database import Database
from storage.schema import organisations, rdv_usagers, usagers
from tests.dates import monday


def test_the_upgrade_fills_usagers_search_keys(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    command.upgrade(db.alembic_config(), "0010_m365")
    with db.transaction(write=True) as conn:
        org = conn.execute(
            insert(organisations).values(name="O", slug="o").returning(organisations.c.id)
        ).scalar_one()
        conn.execute(insert(usagers).values(organisation_id=org, first_name="Élodie",
                                            last_name="Martin-Dupont", created_at=0))  # fmt: skip
    db.migrate()
    with db.transaction(write=False) as conn:
        assert conn.execute(select(usagers.c.search_key)).scalar_one() == " martin dupont elodie"
        found = scheduling.search_usagers(conn, org, ["DUP", "él"], 10)
        assert [u["first_name"] for u in found] == ["Élodie"]
    db.dispose()


def test_the_first_start_indexes_the_usagers_of_older_rdvs(db: Database) -> None:
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "O", "o")
        agents.create_agent(conn, "alice", organisation=org, role="basic", password="alice-pw-1",
                            services_names=("PMI",))  # fmt: skip
        service = agents.service_id(conn, org, "PMI")
        motif = scheduling.create_motif(
            conn, {"organisation_id": org, "service_id": service, "name": "M",
                   "location_type": "phone"})["id"]  # fmt: skip
        people = [
            scheduling.create_usager(conn, {"organisation_id": org, "first_name": f"P{n}",
                                            "last_name": "U"})["id"]
            for n in range(2)
        ]  # fmt: skip
        start = datetime.combine(monday(-1), datetime.min.time(), UTC) + timedelta(hours=9)
        plage = events.build_event(
            zone="Europe/Paris", start=start, end=start + timedelta(hours=2), summary="Plage",
            transparent=True, motif_ids=[motif],
        )  # fmt: skip
        agenda_writer.put_event(conn, "alice/plages", "plage.ics", plage)
        rdv = events.build_event(
            zone="Europe/Paris", start=start, end=start + timedelta(minutes=30), summary="RDV",
            motif_ids=[motif], organisation_id=org, status="seen",
            attendees=[events.Attendee(p, "P U", None) for p in people],
        )  # fmt: skip
        agenda_writer.put_event(conn, "alice/rdv", "rdv.ics", rdv)
        written = sorted(conn.execute(select(rdv_usagers.c.usager_id)).scalars())
        assert written == people
        # As it was before migration 0015: nothing in rdv_usagers.
        conn.execute(delete(rdv_usagers))
        assert participations.backfill(conn) == 1
        assert sorted(conn.execute(select(rdv_usagers.c.usager_id)).scalars()) == people
        # Run again (a reindex may have indexed them already): nothing twice.
        assert participations.backfill(conn) == 0

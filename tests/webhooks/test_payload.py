"""The body of a webhook request: RDV-SP's shape, read from the outbox event
and the records it names."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from sqlalchemy import Connection

from storage import agents, outbox, public_booking, scheduling
from storage.database import Database
from webhooks.payload import Unbuilt, bodies

NOW = datetime(2030, 1, 2, 8, 0, tzinfo=UTC)


def _office(db: Database) -> dict:
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie de Lyon", "lyon")
        alice = agents.create_agent(
            conn, "alice", organisation=org, role="basic", password="alice-pass-1",
            services_names=("PMI",), display_name="Alice Martin", email="alice@lyon.fr",
        )  # fmt: skip
        service = scheduling.organisation_services(conn, org)[0]["id"]
        lieu = scheduling.create_lieu(
            conn, {"organisation_id": org, "name": "Annexe", "address": "1 rue A, Lyon"}
        )
        motif = scheduling.create_motif(
            conn, {"organisation_id": org, "service_id": service, "name": "Consultation"}
        )
        usager = scheduling.create_usager(
            conn,
            {"organisation_id": org, "first_name": "Camille", "last_name": "Durand",
             "email": "c@example.org", "phone": "0612345678", "notes": "secret note"},
        )  # fmt: skip
    return {"org": org, "alice": alice, "lieu": lieu["id"], "motif": motif["id"], "usager": usager}


def body(conn: Connection, event: outbox.Event) -> bytes:
    return bodies(conn, [event])[event.id]


def _event(model: str, record_id: int, org: int, data: dict, **kw) -> outbox.Event:
    fields = {
        "id": 99, "created_ms": int(NOW.timestamp() * 1000), "organisation_id": org, "model": model,
        "record_id": record_id, "event": "updated", "sequence": 3, "changes": ["moved"],
        "data": data, "reason": None, "endpoint_id": None, **kw,
    }  # fmt: skip
    return outbox.Event(**fields)


def test_an_rdv_in_rdv_sp_shape(db: Database) -> None:
    o = _office(db)
    state = {
        "uuid": "r-1@calserver", "agent_ids": [o["alice"]], "organisation_ids": [o["org"]],
        "organisation_id": o["org"], "motif_id": o["motif"], "lieu_id": o["lieu"],
        "status": "revoked", "usager_ids": [o["usager"]["id"]], "sequence": 2,
        "created_by": "usager", "cancelled_at": "2030-01-01T10:00:00+00:00",
        "starts_at": "2030-01-07T08:00:00+00:00", "ends_at": "2030-01-07T08:30:00+00:00",
    }  # fmt: skip
    with db.transaction(write=False) as conn:
        raw = body(conn, _event("rdv", 12, o["org"], state))
    sent = json.loads(raw)
    assert sent["meta"] == {
        "model": "Rdv", "event": "updated", "webhook_reason": None,
        "timestamp": "2030-01-02T09:00:00+01:00", "sequence": 3, "changes": ["moved"],
        "event_id": 99,
    }  # fmt: skip
    rdv = sent["data"]
    assert (rdv["id"], rdv["uuid"], rdv["status"]) == (12, "r-1@calserver", "revoked")
    assert rdv["starts_at"] == "2030-01-07T09:00:00+01:00" and rdv["duration_in_min"] == 30
    assert rdv["cancelled_at"] == "2030-01-01T11:00:00+01:00"
    assert rdv["address"] == "1 rue A, Lyon" and rdv["lieu"]["name"] == "Annexe"
    assert rdv["motif"]["default_duration_in_min"] == 30
    assert rdv["organisation"]["name"] == "Mairie de Lyon"
    assert rdv["agents"] == [
        {"id": o["alice"], "login": "alice", "email": "alice@lyon.fr", "first_name": None,
         "last_name": "Alice Martin", "display_name": "Alice Martin"},
    ]  # fmt: skip
    assert rdv["created_by"] == "user" and rdv["users_count"] == 1
    (user,) = rdv["users"]
    assert (user["last_name"], user["phone_number"]) == ("Durand", "0612345678")
    assert rdv["participations"][0]["user"] == user
    assert b"secret note" not in raw


def test_an_rdv_booked_with_an_invitation_names_it(db: Database) -> None:
    o = _office(db)
    with db.transaction(write=True) as conn:
        invitation = public_booking.create_invitation(
            conn,
            {"organisation_id": o["org"], "token_hash": "h" * 64, "usager_id": o["usager"]["id"],
             "reference": "dossier-42", "created_at": 0, "expires_at": 10},
        )  # fmt: skip
    state = {
        "uuid": "r-2@calserver", "agent_ids": [o["alice"]], "organisation_ids": [o["org"]],
        "organisation_id": o["org"], "motif_id": o["motif"], "lieu_id": o["lieu"],
        "status": "unknown", "usager_ids": [o["usager"]["id"]], "sequence": 0,
        "created_by": "usager", "invitation_id": invitation["id"],
        "starts_at": "2030-01-07T08:00:00+00:00", "ends_at": "2030-01-07T08:30:00+00:00",
    }  # fmt: skip
    with db.transaction(write=False) as conn:
        sent = json.loads(body(conn, _event("rdv", 13, o["org"], state)))
        plain = json.loads(
            body(conn, _event("rdv", 14, o["org"], {**state, "invitation_id": None}))
        )
    assert sent["data"]["invitation"] == {"id": invitation["id"], "reference": "dossier-42"}
    assert sent["data"]["created_by"] == "user"
    assert plain["data"]["invitation"] is None
    assert "h" * 64 not in json.dumps(sent)


def test_records_and_availability(db: Database) -> None:
    o = _office(db)
    with db.transaction(write=False) as conn:
        usager = json.loads(body(conn, _event("usager", o["usager"]["id"], o["org"], {})))
        motif_state = outbox.told_state("motif", scheduling.motif(conn, o["motif"]))
        motif = json.loads(body(conn, _event("motif", o["motif"], o["org"], motif_state)))
        plage_state = {
            "uuid": "p-1", "agent_ids": [o["alice"]], "organisation_ids": [o["org"]],
            "starts_at": "2030-01-07T08:00:00+00:00", "ends_at": "2030-01-07T11:00:00+00:00",
            "title": "Matin", "recurrence": "FREQ=WEEKLY;BYDAY=MO", "lieu_id": o["lieu"],
            "motif_ids": [o["motif"]],
        }  # fmt: skip
        plage = json.loads(body(conn, _event("plage_ouverture", 5, o["org"], plage_state)))
    assert usager["meta"]["model"] == "User" and usager["data"]["email"] == "c@example.org"
    assert "notes" not in usager["data"]
    assert motif["meta"]["model"] == "Motif" and motif["data"]["name"] == "Consultation"
    assert plage["meta"]["model"] == "PlageOuverture"
    p = plage["data"]
    assert (p["ical_uid"], p["rrule"], p["first_day"], p["start_time"], p["end_time"]) == (
        "p-1", "FREQ=WEEKLY;BYDAY=MO", "2030-01-07", "09:00:00", "12:00:00",
    )  # fmt: skip
    assert [m["id"] for m in p["motifs"]] == [o["motif"]] and p["lieu"]["id"] == o["lieu"]


def test_an_event_in_an_unexpected_shape_is_told_apart_from_the_others(db: Database) -> None:
    o = _office(db)
    data = {"id": o["lieu"], "name": "L", "address": "A", "phone": None, "enabled": True}
    lieu = _event("lieu", o["lieu"], o["org"], data, id=1)
    no_times = _event("rdv", 2, o["org"], {"uuid": "u", "agent_ids": [], "usager_ids": []}, id=2)
    agents_not_a_list = _event("rdv", 3, o["org"], {"uuid": "u", "agent_ids": 3}, id=3)
    with db.transaction(write=False) as conn:
        built = bodies(conn, [no_times, agents_not_a_list, lieu])
    assert json.loads(built[lieu.id])["data"]["name"] == "L"
    assert built[2] == Unbuilt("KeyError") and built[3] == Unbuilt("TypeError")


def test_every_attempt_sends_the_same_body_timed_when_the_change_was_made(db: Database) -> None:
    """``meta.timestamp`` is the event's time, not the attempt's: a retry
    under the same webhook-id sends the same bytes."""
    o = _office(db)
    changed = datetime(2030, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
    event = _event(
        "usager", o["usager"]["id"], o["org"], {}, created_ms=int(changed.timestamp() * 1000)
    )
    with db.transaction(write=False) as conn:
        first = body(conn, event)
    time.sleep(0.01)
    with db.transaction(write=False) as conn:
        second = body(conn, event)
    assert first == second
    assert json.loads(first)["meta"]["timestamp"] == "2030-03-01T13:30:15.250000+01:00"

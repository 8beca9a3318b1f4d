"""Webhook deliveries: dispatch to the right endpoints, claims with a lease,
the log, giving up and redelivery."""

from __future__ import annotations

import threading

import pytest

from storage import agents, deliveries, outbox, scheduling
from storage import webhooks as endpoints
from storage.database import Database

SECRET = "whsec_" + "A" * 43 + "="


def _setup(db: Database) -> dict:
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie", "mairie")
        other = agents.create_organisation(conn, "Autre", "autre")
        lieux = endpoints.create_endpoint(conn, org, "https://a.example/h", SECRET, ["lieu"])
        motifs = endpoints.create_endpoint(conn, org, "https://b.example/h", SECRET, ["motif"])
        elsewhere = endpoints.create_endpoint(conn, other, "https://c.example/h", SECRET, ["lieu"])
        off = endpoints.create_endpoint(conn, org, "https://d.example/h", SECRET, ["lieu"], False)
        scheduling.create_lieu(conn, {"organisation_id": org, "name": "L", "address": "A"})
    return {"org": org, "lieux": lieux, "motifs": motifs, "elsewhere": elsewhere, "off": off}


def _claim(db: Database, now: int, lease: int = 1_000) -> list[deliveries.Claimed]:
    with db.transaction(write=True) as conn:
        deliveries.dispatch(conn, now)
        return deliveries.claim(conn, now, lease)


def _attempt(at: int, status: int | None) -> deliveries.Attempt:
    return deliveries.Attempt(at, 5, status, None if status == 200 else "failed", "ok")


def test_dispatch_sends_to_subscribed_enabled_endpoints_of_the_organisation(
    db: Database,
) -> None:
    setup = _setup(db)
    (claimed,) = _claim(db, 10_000)
    assert claimed.endpoint["id"] == setup["lieux"]["id"] and claimed.event.model == "lieu"
    assert claimed.attempt == 1
    with db.transaction(write=False) as conn:
        assert not deliveries.has_pending_events(conn)  # dispatched once
    with db.transaction(write=True) as conn:  # a replay goes to its one endpoint
        outbox.replay(conn, setup["org"], ["lieu"], setup["off"]["id"])
        endpoints.update_endpoint(conn, setup["off"]["id"], {"enabled": True})
    (replayed,) = _claim(db, 10_001)
    assert replayed.endpoint["id"] == setup["off"]["id"]
    assert replayed.event.reason == "initial_sync"


def test_a_claim_is_leased_then_logged_retried_given_up_and_redelivered(db: Database) -> None:
    setup = _setup(db)
    (first,) = _claim(db, 10_000, lease=1_000)
    assert _claim(db, 10_500) == []  # leased to the first worker
    (again,) = _claim(db, 11_000)  # that worker died: due again
    assert (again.delivery_id, again.attempt) == (first.delivery_id, 2)
    with db.transaction(write=True) as conn:
        deliveries.record(conn, [deliveries.Result(again.delivery_id, _attempt(11_000, 500),
                                                   False, 20_000)])  # fmt: skip
        assert deliveries.next_due_ms(conn) == 20_000
    assert _claim(db, 19_999) == []
    (third,) = _claim(db, 20_000)
    with db.transaction(write=True) as conn:
        deliveries.record(conn, [deliveries.Result(third.delivery_id, _attempt(20_000, 503),
                                                   False, None)])  # fmt: skip
        (log,) = deliveries.deliveries_of(conn, setup["lieux"]["id"])
    assert log["state"] == "failed" and log["attempts"] == 3
    assert [a["status_code"] for a in log["attempts_log"]] == [500, 503]
    with db.transaction(write=True) as conn:
        assert deliveries.redeliver(conn, setup["lieux"]["id"], 30_000) == 1
        assert deliveries.redeliver(conn, setup["motifs"]["id"], 30_000) == 0
    (fourth,) = _claim(db, 30_000)
    with db.transaction(write=True) as conn:
        deliveries.record(conn, [deliveries.Result(fourth.delivery_id, _attempt(30_000, 200),
                                                   True, None)])  # fmt: skip
        (log,) = deliveries.deliveries_of(conn, setup["lieux"]["id"])
    assert log["state"] == "delivered" and log["delivered_ms"] == 30_000


@pytest.mark.postgres
def test_two_workers_claim_disjoint_deliveries_on_postgresql(pg_url: str) -> None:
    db = Database(pg_url)
    db.migrate()
    try:
        setup = _setup(db)
        with db.transaction(write=True) as conn:
            for n in range(40):
                scheduling.create_lieu(
                    conn, {"organisation_id": setup["org"], "name": f"L{n}", "address": "A"}
                )
            deliveries.dispatch(conn, 10_000)
        barrier = threading.Barrier(2)
        taken: list[list[int]] = [[], []]

        def work(n: int) -> None:
            with db.transaction(write=True) as conn:
                barrier.wait()
                taken[n] = [c.delivery_id for c in deliveries.claim(conn, 10_000, 1_000, 30)]
                barrier.wait()  # both hold their claims at once

        threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert taken[0] and taken[1] and not set(taken[0]) & set(taken[1])
        assert len(taken[0]) + len(taken[1]) == 41
    finally:
        db.dispose()

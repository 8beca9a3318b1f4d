"""Webhook deliveries: dispatch to the right endpoints, claims with a lease,
one record's deliveries one at a time, an endpoint's Retry-After, the log,
giving up and redelivery."""

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


def test_dispatch_sends_to_subscribed_endpoints_of_the_organisation(db: Database) -> None:
    setup = _setup(db)
    (claimed,) = _claim(db, 10_000)  # the disabled endpoint's delivery waits
    assert claimed.endpoint["id"] == setup["lieux"]["id"] and claimed.event.model == "lieu"
    assert claimed.attempt == 1
    with db.transaction(write=False) as conn:
        assert not deliveries.has_pending_events(conn)  # dispatched once
    with db.transaction(write=True) as conn:  # a replay goes to its one endpoint
        outbox.replay(conn, setup["org"], ["lieu"], setup["lieux"]["id"])
    assert _claim(db, 10_001) == []  # after the record's delivery on the wire
    _record(db, _result(claimed, 10_002, 200))
    (replayed,) = _claim(db, 10_003)
    assert replayed.endpoint["id"] == setup["lieux"]["id"]
    assert replayed.event.reason == "initial_sync"


def _waiting(db: Database, endpoint_id: int) -> list[tuple[str, int, int]]:
    with db.transaction(write=False) as conn:
        return [
            (d["state"], d["attempts"], d["next_attempt_ms"])
            for d in deliveries.deliveries_of(conn, endpoint_id)
        ]


def test_a_disabled_endpoint_is_never_claimed_and_gets_what_waited_in_order(
    db: Database,
) -> None:
    setup = _setup(db)
    off = setup["off"]["id"]
    _claim(db, 10_000)
    assert _waiting(db, off) == [("pending", 0, 10_000)]
    for now in (100_000, 200_000):  # never leased, never counted as an attempt
        assert off not in [c.endpoint["id"] for c in _claim(db, now)]
    assert _waiting(db, off) == [("pending", 0, 10_000)]
    with db.transaction(write=False) as conn:  # nothing a worker could take but the lease
        assert deliveries.next_due_ms(conn) == 200_000 + 1_000
    with db.transaction(write=True) as conn:  # written while it is disabled: kept for it
        second = scheduling.create_lieu(conn, {"organisation_id": setup["org"], "name": "M",
                                               "address": "B"})  # fmt: skip
    assert {c.endpoint["id"] for c in _claim(db, 300_000)} == {setup["lieux"]["id"]}
    assert len(_waiting(db, off)) == 2
    with db.transaction(write=True) as conn:
        endpoints.update_endpoint(conn, off, {"enabled": True})
    sent = [c for c in _claim(db, 400_000) if c.endpoint["id"] == off]
    assert len(sent) == 2
    assert sent[1].event.record_id == second["id"] and sent[0].event.id < sent[1].event.id
    assert [c.attempt for c in sent] == [1, 1]
    with db.transaction(write=True) as conn:  # a 410 disables it the same way
        deliveries.disable_endpoint(conn, off, "the target answered 410 Gone")
        deliveries.redeliver(conn, off, 500_000)
        for claimed in sent:
            deliveries.redeliver(conn, off, 500_000, claimed.delivery_id)
    assert off not in [c.endpoint["id"] for c in _claim(db, 600_000)]


def test_a_disabled_endpoint_waits_as_long_as_a_failing_one_then_gives_up(
    db: Database,
) -> None:
    setup = _setup(db)
    _claim(db, 10_000)
    keep = deliveries.Retention(delivered_ms=10**12, failed_ms=10**12, waiting_ms=50_000)
    with db.transaction(write=True) as conn:
        assert deliveries.purge(conn, 59_000, keep) == 0
        assert deliveries.purge(conn, 61_000, keep) == 1
    assert _waiting(db, setup["off"]["id"]) == [("failed", 0, 61_000)]


def test_retention_purges_old_deliveries_and_the_events_nobody_needs(db: Database) -> None:
    setup = _setup(db)
    lieux = setup["lieux"]["id"]
    with db.transaction(write=True) as conn:
        for n in range(4):
            scheduling.create_lieu(
                conn, {"organisation_id": setup["org"], "name": f"L{n}", "address": "A"}
            )
    day, base = 86_400_000, outbox.now_ms()  # the events were written now
    claimed = _claim(db, base)
    assert len(claimed) == 5
    delivered_old, delivered_new, failed_old, failed_new, pending = claimed

    def attempt(days: int, status: int) -> deliveries.Attempt:
        return _attempt(base + days * day, status)

    with db.transaction(write=True) as conn:
        deliveries.record(
            conn,
            [
                deliveries.Result(
                    delivered_old.delivery_id,
                    delivered_old.leased_until_ms,
                    attempt(1, 200),
                    True,
                    None,
                ),
                deliveries.Result(
                    delivered_new.delivery_id,
                    delivered_new.leased_until_ms,
                    attempt(20, 200),
                    True,
                    None,
                ),
                deliveries.Result(
                    failed_old.delivery_id, failed_old.leased_until_ms, attempt(5, 500), False, None
                ),
                deliveries.Result(
                    failed_new.delivery_id,
                    failed_new.leased_until_ms,
                    attempt(20, 500),
                    False,
                    None,
                ),
                deliveries.Result(
                    pending.delivery_id,
                    pending.leased_until_ms,
                    attempt(1, 500),
                    False,
                    base + 50 * day,
                ),
            ],
        )
    keep = deliveries.Retention(delivered_ms=10 * day, failed_ms=15 * day, waiting_ms=day)
    now = base + 25 * day
    with db.transaction(write=True) as conn:
        # One batch of one at a time: the caller comes back while a batch is full.
        assert deliveries.purge(conn, now, keep, limit=1) >= 1
        while deliveries.purge(conn, now, keep, limit=1):
            pass
        kept = {d["id"]: d["state"] for d in deliveries.deliveries_of(conn, lieux)}
        events = {e.id for e in outbox.events(conn)}
        off = deliveries.deliveries_of(conn, setup["off"]["id"])
    assert kept == {
        delivered_new.delivery_id: "delivered",
        failed_new.delivery_id: "failed",
        pending.delivery_id: "pending",
    }
    # The disabled endpoint's deliveries waited a day, then were given up.
    assert {d["state"] for d in off} == {"failed"} and len(off) == 5
    # An event stays while a delivery needs it; the others are gone.
    assert events == {d.event.id for d in (delivered_new, failed_new, pending)} | {
        d["event_id"] for d in off
    }
    with db.transaction(write=True) as conn:
        assert deliveries.purge(conn, now + 30 * day, keep) > 0
        assert deliveries.purge(conn, now + 30 * day, keep) == 0
        assert [d["state"] for d in deliveries.deliveries_of(conn, lieux)] == ["pending"]
        assert deliveries.deliveries_of(conn, setup["off"]["id"]) == []


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


def _lieu_events(db: Database, org: int, names: list[str]) -> int:
    """One lieu created then renamed to each name: one record, several events."""
    with db.transaction(write=True) as conn:
        lieu = scheduling.create_lieu(conn, {"organisation_id": org, "name": "L0", "address": "A"})
        for name in names:
            scheduling.update_lieu(conn, lieu["id"], {"name": name})
    return lieu["id"]


def _result(claimed: deliveries.Claimed, at: int, status: int, retry: int | None = None):
    return deliveries.Result(
        claimed.delivery_id, claimed.leased_until_ms, _attempt(at, status), status == 200, retry
    )


def _record(db: Database, *results: deliveries.Result) -> None:
    with db.transaction(write=True) as conn:
        deliveries.record(conn, list(results))


def test_only_the_head_of_a_records_queue_is_claimed(db: Database) -> None:
    """Two claims in two transactions (two workers): the second never takes
    a record's next event while its earlier one is leased, waiting for a
    retry, or due; once it is delivered, the next one is the head."""
    setup = _setup(db)
    _claim(db, 10_000, lease=10**9)  # the setup's lieu, out of the way
    lieu = _lieu_events(db, setup["org"], ["L1", "L2"])
    (first,) = _claim(db, 20_000, lease=1_000)
    assert (first.event.record_id, first.event.sequence) == (lieu, 1)
    assert _claim(db, 20_000) == []  # another worker, while the first is leased
    (again,) = _claim(db, 40_000)  # the lease ran out: the head again, never the next
    assert again.delivery_id == first.delivery_id
    _record(db, _result(again, 40_001, 500, retry=50_000))
    assert _claim(db, 45_000) == []  # waiting for its retry: the next ones wait too
    (retried,) = _claim(db, 50_000)
    _record(db, _result(retried, 50_001, 200))
    (second,) = _claim(db, 50_002)
    assert (second.event.record_id, second.event.sequence) == (lieu, 2)
    _record(db, _result(second, 50_003, 500, retry=None))  # given up: the next one goes
    (third,) = _claim(db, 50_004)
    assert third.event.sequence == 3


@pytest.mark.postgres
def test_two_workers_never_take_one_records_events_at_once_on_postgresql(pg_url: str) -> None:
    db = Database(pg_url)
    db.migrate()
    try:
        setup = _setup(db)
        _claim(db, 10_000, lease=10**9)
        _lieu_events(db, setup["org"], ["L1", "L2", "L3"])
        with db.transaction(write=True) as conn:
            deliveries.dispatch(conn, 20_000)
        with db.engine.connect() as one, db.engine.connect() as two, one.begin():
            first = deliveries.claim(one, 20_000, 1_000)
            with two.begin():  # while the first claim is not committed
                second = deliveries.claim(two, 20_000, 1_000)
        assert [c.event.sequence for c in first] == [1] and second == []
    finally:
        db.dispose()


def test_a_retry_after_holds_back_every_delivery_of_the_endpoint(db: Database) -> None:
    setup = _setup(db)
    (claimed,) = _claim(db, 10_000)
    with db.transaction(write=True) as conn:
        scheduling.create_lieu(conn, {"organisation_id": setup["org"], "name": "M", "address": "B"})
        deliveries.hold_endpoint(conn, setup["lieux"]["id"], 60_000)
        deliveries.hold_endpoint(conn, setup["lieux"]["id"], 30_000)  # a shorter one: kept later
    _record(db, _result(claimed, 10_001, 503, retry=20_000))
    assert _claim(db, 59_999) == []  # neither the one answered nor the other record
    with db.transaction(write=False) as conn:
        assert deliveries.next_due_ms(conn) == 60_000
    assert len(_claim(db, 60_000)) == 2


def test_an_answer_to_a_delivery_redelivered_meanwhile_does_not_overwrite_it(
    db: Database,
) -> None:
    setup = _setup(db)
    lieux = setup["lieux"]["id"]
    (claimed,) = _claim(db, 10_000)
    with db.transaction(write=True) as conn:  # the admin asks again while it is on the wire
        assert deliveries.redeliver(conn, lieux, 10_500, claimed.delivery_id) == 1
    _record(db, _result(claimed, 10_600, 200))
    (log,) = _waiting_log(db, lieux)
    assert (log["state"], log["next_attempt_ms"]) == ("pending", 10_500)  # still to send
    assert [a["status_code"] for a in log["attempts_log"]] == [200]  # the attempt is logged
    (again,) = _claim(db, 11_000)
    assert again.delivery_id == claimed.delivery_id


def test_the_answers_of_a_deleted_endpoint_are_dropped_quietly(db: Database) -> None:
    setup = _setup(db)
    (claimed,) = _claim(db, 10_000)
    with db.transaction(write=True) as conn:
        assert endpoints.delete_endpoint(conn, setup["lieux"]["id"])
    _record(db, _result(claimed, 10_600, 200))  # no foreign key error
    with db.transaction(write=False) as conn:
        assert deliveries.deliveries_of(conn, setup["lieux"]["id"]) == []


def _waiting_log(db: Database, endpoint_id: int) -> list[dict]:
    with db.transaction(write=False) as conn:
        return deliveries.deliveries_of(conn, endpoint_id)

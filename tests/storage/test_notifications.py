"""The notifications repository: claims with a lease (a worker killed
mid-send loses nothing), receipts, due rows found through the index, and
the link's token kept only as an HMAC."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from booking import notifications as planner
from booking.model import Organisation
from booking.reminders import reminder_moment
from storage import agents, notifications
from storage.database import Database, set_author
from storage.schema import notifications as table
from storage.schema import rdv_links

T0 = 1_900_000_000_000
ENDS = (datetime.now(UTC) + timedelta(days=30)).isoformat()


def _row(item: int, channel: str = "email", due: int = T0, kind: str = "created"):  # type: ignore[no-untyped-def]
    rdv = {"starts_at": ENDS, "ends_at": ENDS, "sequence": 1}
    return notifications.Scheduled(item, 1, "usager", 7, channel, kind, rdv, due)


def test_a_claim_is_leased_and_comes_back_when_its_worker_dies(db: Database) -> None:
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, [_row(1), _row(1, "sms"), _row(2, due=T0 + 60_000)], T0)
    with db.transaction(write=True) as conn:
        first = notifications.claim(conn, T0, lease_ms=30_000)
    assert [(c.item_id, c.channel, c.attempt) for c in first] == [(1, "email", 1), (1, "sms", 1)]
    # The email and the SMS of one change share one link token.
    assert first[0].link_token == first[1].link_token
    assert re.fullmatch(r"[A-Z0-9]{8}", first[0].link_token or "")
    with db.transaction(write=True) as conn:
        assert notifications.claim(conn, T0 + 10_000, lease_ms=30_000) == []  # leased
    # The worker died without a word: past the lease, they are due again.
    with db.transaction(write=True) as conn:
        again = notifications.claim(conn, T0 + 31_000, lease_ms=30_000)
    assert [(c.id, c.attempt) for c in again] == [(first[0].id, 2), (first[1].id, 2)]
    assert again[0].link_token == first[0].link_token  # the same change, the same link


def test_receipts_move_rows_on_and_forget_the_clear_token(db: Database) -> None:
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, [_row(3), _row(3, "sms")], T0)
        email, sms = notifications.claim(conn, T0, lease_ms=1000)
        notifications.record(
            conn,
            [
                notifications.Receipt(
                    email.id, 3, T0, "email", "usager_created", "c***@" + "d" * 90, "sent",
                    "<" + "i" * 300 + ">", None, notifications.SENT,
                ),
                notifications.Receipt(
                    sms.id, 3, T0, "sms", "usager_created", "+33*******78", "retry", None,
                    "SMS provider answered 503", notifications.PENDING, T0 + 5000,
                ),
            ],
        )  # fmt: skip
        receipts = notifications.receipts_of(conn, 3)
        assert [r["status"] for r in receipts] == ["retry", "sent"]
        # Over-long values are cut to their columns (PostgreSQL would refuse them).
        assert (len(receipts[1]["recipient"]), len(receipts[1]["provider_id"])) == (80, 200)
        assert [w["channel"] for w in notifications.waiting_of(conn, 3)] == ["sms"]
        tokens = dict(conn.execute(select(table.c.channel, table.c.link_token)).all())
        assert tokens["email"] is None and tokens["sms"] is not None
        assert notifications.next_due_ms(conn) == T0 + 5000


def test_the_link_token_is_stored_as_an_hmac_only(db: Database) -> None:
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, [_row(4)], T0)
        (claimed,) = notifications.claim(conn, T0, lease_ms=1000)
        token = claimed.link_token
        assert token is not None
        stored = conn.execute(select(rdv_links.c.token_hmac)).scalar_one()
        assert token not in stored and len(stored) == 64
        now = int(datetime.now(UTC).timestamp() * 1000)
        assert notifications.link_usager(conn, 4, token, now) == 7
        assert notifications.link_usager(conn, 4, token.lower(), now) == 7
        assert notifications.link_usager(conn, 4, "AAAAAAAA", now) is None
        assert notifications.link_usager(conn, 5, token, now) is None
        assert notifications.link_usager(conn, 4, token, now + 40 * 86_400_000) is None  # past


def test_due_reminders_are_an_index_range(db: Database) -> None:
    with db.transaction(write=True) as conn:
        notifications.schedule(
            conn, [_row(10 + i, due=T0 + i * 60_000, kind="reminder") for i in range(5)], T0
        )
        assert notifications.due_count(conn, T0 + 60_000) == 2
        if conn.dialect.name == "sqlite":
            plan = " ".join(
                str(r[-1])
                for r in conn.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT count(*) FROM notifications "
                        "WHERE state = 'pending' AND due_ms <= :t"
                    ),
                    {"t": T0},
                )
            )
            assert "ix_notifications_state_due_ms" in plan


def _states(org: int, agents_ids: list[int], day: datetime, **kw: object) -> dict:
    state: dict = {
        "organisation_id": org,
        "starts_at": day.isoformat(),
        "ends_at": (day + timedelta(minutes=30)).isoformat(),
        "status": "unknown",
        "lieu_id": None,
        "motif_id": None,
        "agent_ids": agents_ids,
        "usager_ids": [7],
        "sequence": 1,
    }
    state.update(kw)
    return state


def test_scheduling_follows_the_rdv_and_the_agents(db: Database) -> None:
    """booking.notifications.schedule in its transaction: who gets a row,
    the reminders rescheduled on a move and dropped on cancellation."""
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie", "mairie")
        alice = agents.create_agent(
            conn, "alice", organisation=org, role="basic", password="a-pass-123",
            email="alice@example.org",
        )  # fmt: skip
        ext = agents.create_agent(
            conn, "ext", organisation=org, role="intervenant", password=None, email="x@example.org"
        )
        notifications.set_agent_level(conn, alice, "all")
    now = datetime.now(UTC).replace(microsecond=0)
    first = now + timedelta(days=20)
    created = _states(org, [alice, ext], first)
    moved = _states(org, [alice, ext], first + timedelta(days=1), sequence=2)
    cancelled = _states(org, [alice, ext], first + timedelta(days=1), status="revoked", sequence=3)

    def waiting() -> list[tuple[str, int, str, int]]:
        with db.transaction(write=False) as conn:
            rows = notifications.waiting_of(conn, 99)
        return sorted((w["kind"], w["recipient_id"], w["channel"], w["due_ms"]) for w in rows)

    def reminder_ms(state: dict) -> int:
        moment = reminder_moment(datetime.fromisoformat(state["starts_at"]), Organisation(org), now)
        assert moment is not None
        return int(moment.timestamp() * 1000)

    with db.transaction(write=True) as conn:
        set_author(conn, "alice")
        planner.schedule(conn, 99, None, created, "agent", now)
    now_ms = int(now.timestamp() * 1000)
    assert waiting() == [
        ("created", alice, "email", now_ms),  # "all": even her own change; ext: nothing
        ("created", 7, "email", now_ms),
        ("created", 7, "sms", now_ms),
        ("reminder", 7, "email", reminder_ms(created)),
        ("reminder", 7, "sms", reminder_ms(created)),
    ]
    with db.transaction(write=True) as conn:
        planner.schedule(conn, 99, created, moved, "agent", now)
    reminders = [w for w in waiting() if w[0] == "reminder"]
    assert reminders == [("reminder", 7, c, reminder_ms(moved)) for c in ("email", "sms")]
    assert [w[0] for w in waiting()].count("updated") == 3
    with db.transaction(write=True) as conn:
        planner.schedule(conn, 99, moved, cancelled, "agent", now)
    assert not [w for w in waiting() if w[0] == "reminder"]
    assert [w[0] for w in waiting()].count("cancelled") == 3


def _receipt(claimed: notifications.Claimed, state: str = notifications.SENT):  # type: ignore[no-untyped-def]
    return notifications.Receipt(
        claimed.id, claimed.item_id, T0, claimed.channel, "usager_reminder", None, "sent",
        "id", None, state, None, claimed.leased_until_ms,
    )  # fmt: skip


def test_an_edit_leaves_a_reminder_a_worker_took(db: Database) -> None:
    """Every write bumps SEQUENCE: an edit after the reminder's moment must
    not take away the row a worker is sending (its receipt would have no
    row, the round would fail and its messages go out again)."""
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie", "mairie")
    booked = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    start = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)  # its reminder: Tuesday 10th, 09:00
    created = _states(org, [], start)
    with db.transaction(write=True) as conn:
        planner.schedule(conn, 50, None, created, "agent", booked)
    moment = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    moment_ms = int(moment.timestamp() * 1000)
    with db.transaction(write=True) as conn:
        claimed = notifications.claim(conn, moment_ms + 1000, 50_000)
    reminders = [c for c in claimed if c.kind == "reminder"]
    assert len(reminders) == 2
    edited = _states(org, [], start, sequence=2, status="seen")
    with db.transaction(write=True) as conn:
        planner.schedule(conn, 50, created, edited, "agent", moment + timedelta(minutes=1))
        notifications.record(conn, [_receipt(c) for c in claimed])
        assert [r["status"] for r in notifications.receipts_of(conn, 50)] == ["sent"] * 4
        assert notifications.waiting_of(conn, 50) == []
        states = set(conn.execute(select(table.c.state).where(table.c.item_id == 50)).scalars())
    assert states == {notifications.SENT}
    # Its usagers change while a worker holds its reminder: dropped (a retry
    # would go to the old set; past the moment, none is made again).
    with db.transaction(write=True) as conn:
        planner.schedule(conn, 52, None, created, "agent", booked)
        taken = [
            c for c in notifications.claim(conn, moment_ms + 1000, 50_000) if c.kind == "reminder"
        ]
        joined = _states(org, [], start, sequence=2, usager_ids=[7, 8])
        planner.schedule(conn, 52, created, joined, "agent", moment + timedelta(minutes=1))
        states = dict(conn.execute(select(table.c.id, table.c.state)).all())
        assert {states[c.id] for c in taken} == {notifications.DROPPED}
        assert notifications.pending_reminders(conn, 52) == []
    # Before the moment, a new usager gets reminders as the others keep theirs.
    with db.transaction(write=True) as conn:
        planner.schedule(conn, 53, None, created, "agent", booked)
        planner.schedule(conn, 53, created, joined, "agent", booked + timedelta(hours=1))
        reminders = notifications.pending_reminders(conn, 53)
    assert sorted((w.recipient_id, w.channel) for w in reminders) == [
        (7, "email"), (7, "sms"), (8, "email"), (8, "sms"),
    ]  # fmt: skip
    # Cancelled while a worker sends its reminder: dropped, and its receipt kept.
    with db.transaction(write=True) as conn:
        planner.schedule(conn, 51, None, created, "agent", booked)
        (taken, _) = [
            c
            for c in notifications.claim(conn, moment_ms + 1000, 50_000)
            if c.kind == "reminder" and c.item_id == 51
        ]
        cancelled = _states(org, [], start, sequence=2, status="revoked")
        planner.schedule(conn, 51, created, cancelled, "agent", moment + timedelta(minutes=1))
        notifications.record(conn, [_receipt(taken, notifications.PENDING)])
        kept = conn.execute(select(table.c.state).where(table.c.id == taken.id)).scalar_one()
        assert kept == notifications.DROPPED  # no retry of a reminder no longer wanted
        assert [r["status"] for r in notifications.receipts_of(conn, 51)] == ["sent"]


def test_a_receipt_moves_its_row_only_while_the_lease_holds(db: Database) -> None:
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, [_row(60), _row(61)], T0)
        slow, gone = notifications.claim(conn, T0, lease_ms=1000)
    with db.transaction(write=True) as conn:  # the slow worker's lease ended: taken again
        (again,) = notifications.claim(conn, T0 + 2000, lease_ms=1000, limit=1)
        conn.execute(table.delete().where(table.c.id == gone.id))
    assert again.id == slow.id
    with db.transaction(write=True) as conn:
        notifications.record(conn, [_receipt(slow), _receipt(gone)])  # no error for the gone row
        row = conn.execute(select(table.c.state, table.c.due_ms).where(table.c.id == slow.id))
        assert tuple(row.one()) == (notifications.PENDING, again.leased_until_ms)
        notifications.record(conn, [_receipt(again)])
        assert notifications.waiting_of(conn, 60) == []
        assert len(notifications.receipts_of(conn, 60)) == 2  # both sends are logged


def test_two_workers_taking_one_change_apart_give_the_same_link(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: one worker takes the email of a change, another its SMS
    (SKIP LOCKED splits them), and both renew the link at once: one token,
    no deadlock, no unique violation."""
    if db.is_sqlite:
        return  # one writer at a time: nothing runs side by side
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, [_row(70), _row(70, "sms")], T0)
    both_chose = threading.Barrier(2, timeout=10)
    due_rows = notifications.due_rows

    def side_by_side(conn, until_ms, limit=50):  # type: ignore[no-untyped-def]
        found = due_rows(conn, until_ms, limit)
        both_chose.wait()  # each holds its row; neither has renewed the link yet
        return found

    monkeypatch.setattr(notifications, "due_rows", side_by_side)
    taken: dict[str, notifications.Claimed] = {}

    def worker() -> None:
        with db.transaction(write=True) as conn:
            (claimed,) = notifications.claim(conn, T0, lease_ms=1000, limit=1)
            taken[claimed.channel] = claimed

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert sorted(taken) == ["email", "sms"]
    assert taken["email"].link_token == taken["sms"].link_token
    now = int(datetime.now(UTC).timestamp() * 1000)
    with db.transaction(write=False) as conn:
        assert notifications.link_usager(conn, 70, taken["email"].link_token or "", now) == 7


def test_a_deleted_rdvs_cancellation_supersedes_its_last_request(db: Database) -> None:
    """A CalDAV DELETE bumps no SEQUENCE itself: the CANCEL must carry one
    more than the last REQUEST, or calendars ignore it."""
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie", "mairie")
    now = datetime.now(UTC).replace(microsecond=0)
    created = _states(org, [], now + timedelta(days=20), sequence=3)
    with db.transaction(write=True) as conn:
        planner.schedule(conn, 80, created, None, "agent", now)
        snapshots = conn.execute(
            select(table.c.kind, table.c.rdv).where(table.c.item_id == 80)
        ).all()
    assert {(kind, json.loads(rdv)["sequence"]) for kind, rdv in snapshots} == {("cancelled", 4)}


def test_messages_done_are_purged_past_their_retention(db: Database) -> None:
    day = 86_400_000
    keep = notifications.Retention(done_ms=30 * day, failed_ms=90 * day)
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, [_row(90 + i) for i in range(5)], T0)
        sent, failed, retried, dropped, _ = notifications.claim(conn, T0, lease_ms=1000)

        def receipt(claimed, state, next_due=None):  # type: ignore[no-untyped-def]
            return notifications.Receipt(
                claimed.id, claimed.item_id, T0, "sms", "usager_created", None,
                "retry" if next_due else state, None, None, state, next_due,
                claimed.leased_until_ms, segments=2,
            )  # fmt: skip

        notifications.record(
            conn,
            [
                receipt(sent, notifications.SENT),
                receipt(failed, notifications.FAILED),
                receipt(retried, notifications.PENDING, T0 + 60 * day),
            ],
        )
        notifications.drop(conn, [dropped.id], T0)
        assert [r["segments"] for r in notifications.receipts_of(conn, 90)] == [2]
        assert notifications.purge(conn, T0 + 30 * day, keep) == 0  # not yet
        assert notifications.purge(conn, T0 + 31 * day, keep, limit=1) == 1  # a small batch
        assert notifications.purge(conn, T0 + 31 * day, keep) == 1
        assert notifications.purge(conn, T0 + 91 * day, keep) == 1  # the failed one, later
        left = dict(conn.execute(select(table.c.item_id, table.c.state)).all())
        assert left == {92: notifications.PENDING, 94: notifications.PENDING}
        assert [r["status"] for r in notifications.receipts_of(conn, 92)] == ["retry"]
        assert notifications.receipts_of(conn, 90) == notifications.receipts_of(conn, 91) == []

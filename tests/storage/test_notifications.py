"""The notifications repository: claims with a lease (a worker killed
mid-send loses nothing), receipts, due rows found through the index, and
the link's token kept only as an HMAC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from storage import notifications
from storage.database import Database
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
                    email.id, 3, T0, "email", "usager_created", "c***@example.org", "sent",
                    "<id@x>", None, notifications.SENT,
                ),
                notifications.Receipt(
                    sms.id, 3, T0, "sms", "usager_created", "+33*******78", "retry", None,
                    "SMS provider answered 503", notifications.PENDING, T0 + 5000,
                ),
            ],
        )  # fmt: skip
        assert [r["status"] for r in notifications.receipts_of(conn, 3)] == ["retry", "sent"]
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

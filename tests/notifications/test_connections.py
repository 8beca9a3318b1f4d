"""A worker round's emails share one SMTP connection, and each message's
outcome stays its own: a refused recipient is retried alone, a server down
for the round is tried again at the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from notifications.email import SmtpSettings
from notifications.worker import Notifier, NotifierSettings
from storage import agents, notifications, scheduling
from storage.database import Database
from storage.outbox import now_ms
from tests.conftest import free_port
from tests.notifications.fakes import SmtpServer, smtp_running
from webhooks.retry import RetryPolicy

RETRY_MS = 200


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from smtp_running()


def _settings(port: int) -> NotifierSettings:
    """Sending to ``port``, a retry due 0.1-0.2 s after a failure."""
    return NotifierSettings(
        smtp=SmtpSettings(host="127.0.0.1", port=port, timeout_s=2),
        retry=RetryPolicy(first_ms=RETRY_MS, give_up_after_ms=3_600_000),
    )


def _confirmations(db: Database, addresses: list[str], slug: str = "mairie") -> dict[str, int]:
    """An organisation, a usager of it with each address, each one's
    confirmation email due now: the RDV (item) of each address."""
    starts = datetime.now(UTC) + timedelta(days=10)
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie", slug)
        items = {}
        rows = []
        for n, address in enumerate(addresses, start=100):
            record = {"organisation_id": org, "first_name": "A", "last_name": "B", "email": address}
            usager = scheduling.create_usager(conn, record)["id"]
            rdv = {
                "organisation_id": org,
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(minutes=30)).isoformat(),
                "sequence": 1,
            }
            rows.append(
                notifications.Scheduled(n, org, "usager", usager, "email", "created", rdv, 0)
            )
            items[address] = n
        notifications.schedule(conn, rows, now_ms())
    return items


def _statuses(db: Database, items: dict[str, int]) -> dict[str, list[tuple[str, str | None]]]:
    with db.transaction(write=False) as conn:
        return {
            address: [(r["status"], r["error"]) for r in notifications.receipts_of(conn, item)]
            for address, item in items.items()
        }


async def _round_once_due(notifier: Notifier) -> int:
    """The next round once the retries are due."""
    await asyncio.sleep(RETRY_MS / 1000 + 0.05)
    return await notifier.round()


async def test_a_round_of_emails_uses_one_connection(db: Database, smtp: SmtpServer) -> None:
    addresses = [f"u{n}@example.org" for n in range(6)]
    items = _confirmations(db, addresses)
    assert await Notifier(db, _settings(smtp.port)).round() == 6
    assert sorted(str(m["To"]) for m in smtp.mailbox.messages) == addresses
    assert len(set(smtp.mailbox.peers)) == 1
    assert all(found == [("sent", None)] for found in _statuses(db, items).values())
    # The next round opens a connection of its own: the last one was closed.
    _confirmations(db, ["later@example.org"], "mairie-2")
    assert await Notifier(db, _settings(smtp.port)).round() == 1
    assert len(set(smtp.mailbox.peers)) == 2


async def test_a_refused_recipient_is_retried_alone(db: Database, smtp: SmtpServer) -> None:
    """The server refuses the second of three recipients (4xx): the first and
    third go on the same connection, only the second is tried again."""
    addresses = ["a@example.org", "busy@example.org", "c@example.org"]
    items = _confirmations(db, addresses)
    smtp.mailbox.refused["busy@example.org"] = "451 4.2.0 mailbox busy"
    notifier = Notifier(db, _settings(smtp.port))
    assert await notifier.round() == 3
    assert sorted(str(m["To"]) for m in smtp.mailbox.messages) == ["a@example.org", "c@example.org"]
    assert len(set(smtp.mailbox.peers)) == 1
    assert _statuses(db, items)["busy@example.org"] == [("retry", "SMTP 451")]
    smtp.mailbox.refused.clear()
    assert await _round_once_due(notifier) == 1  # the refused one only
    assert [str(m["To"]) for m in smtp.mailbox.messages].count("busy@example.org") == 1
    found = _statuses(db, items)
    assert found["busy@example.org"] == [("sent", None), ("retry", "SMTP 451")]
    assert found["a@example.org"] == found["c@example.org"] == [("sent", None)]


async def test_a_connection_lost_mid_round_fails_that_email_only(
    db: Database, smtp: SmtpServer
) -> None:
    """The server hangs up during the second of three emails: that one is
    retried, the third goes on a new connection."""
    items = _confirmations(db, ["a@example.org", "cut@example.org", "c@example.org"])
    smtp.mailbox.dropped.add("cut@example.org")
    notifier = Notifier(db, _settings(smtp.port))
    assert await notifier.round() == 3
    assert sorted(str(m["To"]) for m in smtp.mailbox.messages) == ["a@example.org", "c@example.org"]
    assert len(set(smtp.mailbox.peers)) == 2
    found = _statuses(db, items)
    assert found["cut@example.org"] == [("retry", "SMTP connection failed: SMTPServerDisconnected")]
    assert found["a@example.org"] == found["c@example.org"] == [("sent", None)]
    smtp.mailbox.dropped.clear()
    assert await _round_once_due(notifier) == 1
    assert [str(m["To"]) for m in smtp.mailbox.messages].count("cut@example.org") == 1


async def test_smtp_down_for_a_round_then_up_delivers(db: Database) -> None:
    port = free_port()
    items = _confirmations(db, ["d1@example.org", "d2@example.org", "d3@example.org"])
    notifier = Notifier(db, _settings(port))
    assert await notifier.round() == 3
    assert all(
        found == [("retry", "SMTP connection failed: SMTPConnectError")]
        for found in _statuses(db, items).values()
    )
    smtp = SmtpServer(port).start()
    try:
        assert await _round_once_due(notifier) == 3
    finally:
        smtp.stop()
    assert sorted(str(m["To"]) for m in smtp.mailbox.messages) == sorted(items)
    assert len(set(smtp.mailbox.peers)) == 1
    assert all(found[0] == ("sent", None) for found in _statuses(db, items).values())

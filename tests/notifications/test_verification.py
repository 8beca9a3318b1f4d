"""The worker's side of the public page's verification emails, on a real
database: retried while SMTP is down, sent once it is back, then forgotten;
an expired request's email never goes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, update

from notifications import email
from notifications.email import SmtpSettings
from notifications.worker import Notifier, NotifierSettings
from storage import agents, public_booking
from storage.database import Database
from storage.outbox import now_ms
from storage.schema import booking_requests
from tests.notifications.fakes import SmtpServer

ADDRESS = "dominique@example.org"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def _request(db: Database, settings: SmtpSettings, expires_in_s: int) -> str:
    message = email.compose(
        settings, ADDRESS, "Votre code de confirmation : 123456", "t", "<p>h</p>"
    )
    now_s = now_ms() // 1000
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie", "mairie")
        public_booking.create_request(
            conn,
            {
                "id": "request-1",
                "organisation_id": org,
                "motif_id": 1,
                "starts_at": now_s + 86_400,
                "first_name": "Dominique",
                "last_name": "Martin",
                "email": ADDRESS,
                "code_hash": "c",
                "link_hash": "l",
                "session_hash": "s",
                "created_at": now_s,
                "expires_at": now_s + expires_in_s,
                "mail": message.as_string(),
                "mail_due_ms": now_ms(),
            },
        )
    return "request-1"


def _row(db: Database) -> dict:
    with db.transaction(write=False) as conn:
        return dict(conn.execute(select(booking_requests)).mappings().one())


def _due_now(db: Database) -> None:
    with db.transaction(write=True) as conn:
        conn.execute(update(booking_requests).values(mail_due_ms=now_ms()))


async def test_smtp_down_then_up_still_delivers_the_code(db: Database, smtp: SmtpServer) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=smtp.port, sender="rdv@example.fr", timeout_s=5)
    _request(db, settings, expires_in_s=1800)
    notifier = Notifier(db, NotifierSettings(smtp=settings))
    smtp.mailbox.reply = "451 busy, try later"
    assert await notifier.round() == 1
    row = _row(db)
    assert smtp.mailbox.to(ADDRESS) == []
    assert row["mail"] is not None and row["mail_tries"] == 1
    assert row["mail_due_ms"] > now_ms()  # tried again later, not at once
    assert await notifier.round() == 0
    smtp.mailbox.reply = None
    _due_now(db)
    assert await notifier.round() == 1
    (sent,) = smtp.mailbox.to(ADDRESS)
    assert "123456" in str(sent["Subject"])
    row = _row(db)
    assert row["mail"] is None and row["mail_due_ms"] is None  # the code in clear is gone
    _due_now(db)
    assert await notifier.round() == 0  # sent once


async def test_an_expired_requests_email_never_goes(db: Database, smtp: SmtpServer) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=smtp.port, sender="rdv@example.fr", timeout_s=5)
    _request(db, settings, expires_in_s=-1)
    assert await Notifier(db, NotifierSettings(smtp=settings)).round() == 1
    assert smtp.mailbox.to(ADDRESS) == []
    assert _row(db)["mail"] is None


async def test_a_refused_address_is_marked_and_forgotten(db: Database, smtp: SmtpServer) -> None:
    settings = SmtpSettings(host="127.0.0.1", port=smtp.port, sender="rdv@example.fr", timeout_s=5)
    _request(db, settings, expires_in_s=1800)
    smtp.mailbox.refused[ADDRESS] = "550 5.1.1 no such user"
    assert await Notifier(db, NotifierSettings(smtp=settings)).round() == 1
    row = _row(db)
    assert row["mail_refused"] is True and row["mail"] is None and row["mail_due_ms"] is None
    assert smtp.mailbox.to(ADDRESS) == []

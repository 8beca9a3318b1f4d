"""The worker's decisions on a real database, without servers: what is
skipped and why, and a message retried past its window given up."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import icalendar
import pytest
from sqlalchemy import event

from booking import notifications as planner
from notifications.email import SmtpSettings
from notifications.sms import SmsSettings
from notifications.worker import Notifier, NotifierSettings, Outgoing
from storage import agenda_index, agents, calendars, notifications, scheduling
from storage.database import Database
from storage.outbox import now_ms
from tests.conftest import free_port
from tests.notifications.fakes import SMS_TOKEN, SmsProvider, SmtpServer, both_running


def _rdv(org: int, starts: datetime) -> dict:
    return {
        "organisation_id": org,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(minutes=30)).isoformat(),
        "sequence": 1,
        "motif_id": None,
        "lieu_id": None,
    }


async def test_skips_say_why_and_retries_end(db: Database) -> None:
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie", "mairie")

        def usager(**values: object) -> int:
            record = {"organisation_id": org, "first_name": "A", "last_name": "B", **values}
            return scheduling.create_usager(conn, record)["id"]

        landline = usager(phone="01 45 00 00 00")
        reachable = usager(email="r@example.org", notify_by_sms=False, phone="0612345678")
    now = datetime.now(UTC)
    ahead, started = _rdv(org, now + timedelta(days=10)), _rdv(org, now - timedelta(minutes=5))
    two_days_ago = now_ms() - 2 * 86_400_000
    rows = [
        notifications.Scheduled(1, org, "usager", landline, "email", "created", ahead, 0),
        notifications.Scheduled(1, org, "usager", landline, "sms", "created", ahead, 0),
        notifications.Scheduled(2, org, "usager", reachable, "sms", "created", ahead, 0),
        notifications.Scheduled(3, org, "usager", reachable, "email", "created", started, 0),
        notifications.Scheduled(4, org, "usager", reachable, "email", "created", ahead, 0),
    ]
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, rows, two_days_ago)
    # SMTP refuses connections: temporary, but retried for 24 hours at most.
    smtp = SmtpSettings(host="127.0.0.1", port=free_port(), timeout_s=1)
    assert await Notifier(db, NotifierSettings(smtp=smtp)).round() == 5
    with db.transaction(write=False) as conn:
        found = {
            item: [
                (r["channel"], r["status"], r["error"])
                for r in notifications.receipts_of(conn, item)
            ]
            for item in (1, 2, 3, 4)
        }
        assert notifications.next_due_ms(conn) is None  # nothing waits any more
    assert sorted(found[1]) == [
        ("email", "skipped", "no email address"),
        ("sms", "skipped", "not a mobile number"),
    ]
    assert found[2] == [("sms", "skipped", "the usager turned SMS off")]
    assert found[3] == [("email", "skipped", "the RDV has started")]
    ((channel, status, error),) = found[4]
    assert (channel, status) == ("email", "failed")
    assert error.startswith("given up: SMTP connection failed")


@pytest.fixture(scope="module")
def outside() -> Iterator[tuple[SmtpServer, SmsProvider]]:
    yield from both_running()


def _calendar(found: EmailMessage) -> icalendar.Calendar:
    part = next(p for p in found.walk() if p.get_content_type() == "text/calendar")
    return icalendar.Calendar.from_ical(part.get_payload(decode=True))


async def test_a_due_reminder_and_an_agents_notice_go_out(
    db: Database, outside: tuple[SmtpServer, SmsProvider]
) -> None:
    """A reminder booked ten days ago is due now: the worker emails it (with
    the agenda's SEQUENCE now, not the snapshot's, and an opaque UID) and
    texts it; the agent's notice carries the UID of the CalDAV event."""
    smtp, provider = outside
    suffix = "sqlite" if db.is_sqlite else "pg"
    usager_email, agent_email = f"lea-{suffix}@example.org", f"agent-{suffix}@example.org"
    phone = "0611223344" if db.is_sqlite else "0611223355"
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie", "mairie")
        alice = agents.create_agent(
            conn, "alice", organisation=org, role="basic", password="a-pass-123",
            email=agent_email,
        )  # fmt: skip
        notifications.set_agent_level(conn, alice, "all")
        usager = scheduling.create_usager(
            conn,
            {"organisation_id": org, "first_name": "Léa", "last_name": "B",
             "email": usager_email, "phone": phone},
        )["id"]  # fmt: skip
        agenda = calendars.create_collection(conn, "alice/rdv-test", "alice", "rdv", {})
        calendars.put_item(
            conn, agenda, calendars.ItemWrite("r.ics", "caldav-uid-1", '"e"', "VEVENT", "", 0, 1)
        )
        item = agenda_index.item_id(conn, agenda.id, "r.ics")
        assert item is not None
    starts = (datetime.now(UTC) + timedelta(hours=47)).replace(microsecond=0)
    state = {
        **_rdv(org, starts), "uuid": "caldav-uid-1", "status": "unknown",
        "agent_ids": [alice], "usager_ids": [usager],
    }  # fmt: skip
    booked = datetime.now(UTC) - timedelta(days=10)
    with db.transaction(write=True) as conn:
        planner.schedule(conn, item, None, state, "agent", booked)
        confirmations = [  # the usager's went out long ago
            w["id"]
            for w in notifications.waiting_of(conn, item)
            if w["kind"] != "reminder" and w["audience"] == "usager"
        ]
        notifications.drop(conn, confirmations, now_ms())
        # Edited since (the snapshot of the reminder says SEQUENCE 1).
        agenda_index.replace_event(
            conn, item, agenda_index.IndexedEvent(alice, "rdv", "caldav-uid-1", 0, 1, 1, sequence=4)
        )
    settings = NotifierSettings(
        smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, timeout_s=2),
        sms=SmsSettings("json_http", provider.url, SMS_TOKEN, "MAIRIE", timeout_s=2),
    )
    notifier = Notifier(db, settings)
    try:
        assert await notifier.round() == 3
    finally:
        await notifier.close()
    (reminder,) = smtp.mailbox.to(usager_email)
    assert "Rappel" in reminder["Subject"]
    (event,) = _calendar(reminder).walk("VEVENT")
    assert str(event["UID"]) == f"{agenda_index.public_id(item)}@calserver"
    assert int(event["SEQUENCE"]) == 4
    assert event.decoded("DTSTART") == starts
    (text,) = provider.to("+33611223344" if db.is_sqlite else "+33611223355")
    assert text["text"].startswith("Rappel RDV Rendez-vous le ")
    (notice,) = smtp.mailbox.to(agent_email)
    calendar = _calendar(notice)
    assert str(calendar["METHOD"]) == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == "caldav-uid-1"  # accepting it updates the agenda's event
    assert str(event["DESCRIPTION"]).startswith("Voir sur 127.0.0.1:5232 : http://127.0.0.1")
    with db.transaction(write=False) as conn:
        receipts = notifications.receipts_of(conn, item)
    assert [r["segments"] for r in receipts if r["channel"] == "sms"] == [1]
    assert sorted((r["channel"], r["status"]) for r in receipts) == [
        ("email", "sent"), ("email", "sent"), ("sms", "sent"),
    ]  # fmt: skip


def _with_usager(db: Database, address: str) -> tuple[int, int]:
    """A new organisation and a usager of it with this email: their ids."""
    with db.transaction(write=True) as conn:
        org = agents.create_organisation(conn, "Mairie", "mairie")
        record = {"organisation_id": org, "first_name": "A", "last_name": "B", "email": address}
        return org, scheduling.create_usager(conn, record)["id"]


async def test_a_message_that_cannot_be_prepared_fails_alone(db: Database) -> None:
    org, usager = _with_usager(db, "a@b.fr")
    ahead = _rdv(org, datetime.now(UTC) + timedelta(days=10))
    broken = {key: value for key, value in ahead.items() if key != "ends_at"}
    rows = [
        notifications.Scheduled(5, org, "usager", usager, "email", "created", broken, 0),
        notifications.Scheduled(6, org, "usager", 404, "email", "created", ahead, 0),
    ]
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, rows, now_ms())
    assert await Notifier(db, NotifierSettings()).round() == 2
    with db.transaction(write=False) as conn:
        (failed,) = notifications.receipts_of(conn, 5)
        (skipped,) = notifications.receipts_of(conn, 6)
        assert notifications.next_due_ms(conn) is None
    assert (failed["status"], failed["error"]) == ("failed", "could not be prepared: KeyError")
    assert (skipped["status"], skipped["error"]) == ("skipped", "the usager no longer exists")


async def test_a_round_reads_each_record_once(db: Database) -> None:
    """The email and the SMS of two bookings of one usager: one read of the
    usager and of the organisation for the round, not one per message."""
    org, usager = _with_usager(db, "a@b.fr")
    ahead = _rdv(org, datetime.now(UTC) + timedelta(days=10))
    rows = [
        notifications.Scheduled(item, org, "usager", usager, channel, "created", ahead, 0)
        for item in (7, 8)
        for channel in ("email", "sms")
    ]
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, rows, now_ms())
    statements: list[str] = []

    def seen(*args: object) -> None:  # conn, cursor, statement, parameters...
        statements.append(str(args[2]))

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert await Notifier(db, NotifierSettings()).round() == 4
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert sum(1 for s in reads if "FROM usagers" in s) == 1
    assert sum(1 for s in reads if "FROM organisations" in s) == 1


def _email_due(db: Database, address: str, item: int) -> None:
    """A usager with this address, and RDV ``item``'s confirmation email to
    them due now."""
    org, usager = _with_usager(db, address)
    ahead = _rdv(org, datetime.now(UTC) + timedelta(days=10))
    row = notifications.Scheduled(item, org, "usager", usager, "email", "created", ahead, 0)
    with db.transaction(write=True) as conn:
        notifications.schedule(conn, [row], now_ms())


def _quick_timeouts(smtp: SmtpServer) -> NotifierSettings:
    """SMTP steps timed out after 0.3 s: a send limit of 0.6 s."""
    return NotifierSettings(smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, timeout_s=0.3))


async def test_a_slow_smtp_exchange_ends_before_the_lease(db: Database) -> None:
    """aiosmtplib's timeout bounds each step: three steps each just inside it
    would outlast the lease (another worker would send again); the whole
    send is cut at the worker's limit and retried."""
    smtp = SmtpServer().start()
    smtp.mailbox.step_delay_s = smtp.mailbox.delay_s = 0.25
    _email_due(db, "s@b.fr", 7)
    settings = _quick_timeouts(smtp)
    assert settings.send_limit_s < settings.lease_ms / 1000
    try:
        assert await Notifier(db, settings).round() == 1
    finally:
        smtp.stop()
    with db.transaction(write=False) as conn:
        (receipt,) = notifications.receipts_of(conn, 7)
    assert (receipt["status"], receipt["error"]) == ("retry", "no answer within 0.6 s")


class _LatePreparing(Notifier):
    """A worker whose preparing thread gets the cores late (it runs at the
    lowest priority in the server): past the send limit."""

    def _prepare(self, claimed: list[notifications.Claimed], deadline: float) -> list[Outgoing]:
        time.sleep(self.settings.send_limit_s + 0.1)
        return super()._prepare(claimed, deadline)


async def test_a_round_prepared_too_late_sends_nothing(db: Database) -> None:
    """The send limit runs from the claim: a round whose preparing took it
    all sends nothing (its lease may be another worker's soon) and is
    retried."""
    smtp = SmtpServer().start()
    _email_due(db, "late@b.fr", 9)
    try:
        assert await _LatePreparing(db, _quick_timeouts(smtp)).round() == 1
    finally:
        smtp.stop()
    assert smtp.mailbox.started == 0
    with db.transaction(write=False) as conn:
        (receipt,) = notifications.receipts_of(conn, 9)
    assert (receipt["status"], receipt["error"]) == ("retry", "no answer within 0.6 s")


def _waiting(db: Database, smtp: SmtpServer, yield_s: float, busy: list[bool]) -> Notifier:
    settings = NotifierSettings(smtp=SmtpSettings(host="127.0.0.1", port=smtp.port))
    return Notifier(db, dataclasses.replace(settings, yield_s=yield_s), busy=lambda: busy[0])


async def test_a_round_waits_for_a_gap_between_requests(db: Database) -> None:
    """In the server's process the round waits while requests are answered,
    and goes on as soon as they stop (long before its ``yield_s``)."""
    smtp = SmtpServer().start()
    answering = [True]
    try:
        _email_due(db, "gap@b.fr", 11)
        started = time.monotonic()
        round_done = asyncio.ensure_future(_waiting(db, smtp, 5.0, answering).round())
        await asyncio.sleep(0.3)
        assert not round_done.done() and smtp.mailbox.to("gap@b.fr") == []
        answering[0] = False
        assert await round_done == 1
        assert time.monotonic() - started < 4.0
        assert len(smtp.mailbox.to("gap@b.fr")) == 1
    finally:
        smtp.stop()


async def test_a_round_waits_no_longer_than_its_yield(db: Database) -> None:
    """Requests without end: the messages go once the wait is over."""
    smtp = SmtpServer().start()
    try:
        _email_due(db, "busy@b.fr", 12)
        started = time.monotonic()
        assert await _waiting(db, smtp, 0.5, [True]).round() == 1
        assert time.monotonic() - started >= 0.5
        assert len(smtp.mailbox.to("busy@b.fr")) == 1
    finally:
        smtp.stop()

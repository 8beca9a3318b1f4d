"""The worker's decisions on a real database, without servers: what is
skipped and why, and a message retried past its window given up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifications.email import SmtpSettings
from notifications.worker import Notifier, NotifierSettings
from storage import agents, notifications, scheduling
from storage.database import Database
from storage.outbox import now_ms
from tests.conftest import free_port


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

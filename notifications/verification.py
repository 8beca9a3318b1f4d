"""The public booking page's verification emails, sent by the notification
worker.

The page writes the email (its code and link) into the booking request's row
in the transaction that makes the request, and its commit wakes the worker:
the usager's request answers without waiting for an SMTP exchange, and an
email survives a restart or an SMTP server that is down for a while.  A send
that fails for now is tried again soon (the code is valid 30 minutes: from 5
seconds, doubling, at most a minute apart) until the request expires; a
refusal for good (the request is then marked, and its page asks the usager
to check the address), or the request's expiry, ends it.  Sent or given up, the
email is forgotten (it holds the code in clear).  Logs carry counts only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from email import message_from_string

from notifications import email
from notifications.outcome import FAILED, RETRY, Outcome, failed, retry
from storage import public_booking
from storage.database import Database
from storage.outbox import now_ms

log = logging.getLogger("calserver.notifications")
FIRST_RETRY_MS = 5_000
LONGEST_RETRY_MS = 60_000


def retry_in_ms(tries: int) -> int:
    """The wait before the next try, after ``tries`` failed ones."""
    return min(FIRST_RETRY_MS * 2 ** min(tries, 8), LONGEST_RETRY_MS)


class VerificationMails:
    def __init__(
        self, db: Database, smtp: email.SmtpSettings, lease_ms: int, send_limit_s: float
    ) -> None:
        self.db = db
        self.smtp = smtp
        self.lease_ms = lease_ms
        self.send_limit_s = send_limit_s

    def _take(self, batch: int) -> list[public_booking.PendingMail]:
        with self.db.transaction(write=True) as conn:
            return public_booking.claim_mails(conn, now_ms(), self.lease_ms, batch)

    async def _send(self, pending: public_booking.PendingMail) -> Outcome | None:
        """What came of it; None when the request expired (no use any more)."""
        if pending.expires_at * 1000 <= now_ms():
            return None
        if not self.smtp.host:
            return failed("SMTP is not configured")
        try:
            async with asyncio.timeout(self.send_limit_s):
                message = message_from_string(pending.mail)
                return await email.send(self.smtp, message, pending.recipient)
        except TimeoutError:
            return retry(f"no answer within {self.send_limit_s:g} s")

    def _record(self, done: list[tuple[public_booking.PendingMail, Outcome | None]]) -> None:
        at = now_ms()
        counts: Counter[str] = Counter()
        with self.db.transaction(write=True) as conn:
            for pending, outcome in done:
                status = "expired" if outcome is None else outcome.status
                if status == RETRY:
                    public_booking.mail_later(
                        conn, pending.request_id, at + retry_in_ms(pending.tries)
                    )
                elif status == FAILED:
                    public_booking.mail_refused(conn, pending.request_id)
                else:
                    public_booking.mail_sent(conn, pending.request_id)
                counts[status] += 1
        log.info(
            "verification emails: %s", ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        )

    async def round(self, batch: int) -> int:
        """Send the due emails; how many were handled."""
        pending = await asyncio.to_thread(self._take, batch)
        if not pending:
            return 0
        outcomes = await asyncio.gather(*(self._send(p) for p in pending))
        await asyncio.to_thread(self._record, list(zip(pending, outcomes, strict=True)))
        return len(pending)

    def next_due_ms(self) -> int | None:
        with self.db.transaction(write=False) as conn:
            return public_booking.next_mail_due_ms(conn)

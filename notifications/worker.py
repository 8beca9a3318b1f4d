"""The notification worker: due messages out through SMTP or the SMS
provider, each attempt logged as a receipt.

One loop per process (``calserver serve`` runs one in process,
``calserver worker`` one beside the webhook worker; several may share one
PostgreSQL database).  A round claims due rows (one short write transaction,
each pushed a lease ahead, and the usagers' links renewed), reads what the
messages say (a read transaction: motif, lieu, organisation, the recipient's
contact data and choices) in its preparing thread, sends them outside any
transaction (the emails one after another on one SMTP connection, the SMS
at once beside them), and logs the receipts with what follows in one more
write transaction: sent,
retried later with backoff (SMTP 4xx or no connection, provider 5xx or
timeout), failed for good (a permanent refusal, or retries given up), or
skipped (no contact for that channel, the usager's choice, the channel not
configured, the RDV already started).

It sleeps until woken by a commit that scheduled messages (in process, or a
NOTIFY on PostgreSQL), until the next message is due (reminders are rows
due at their moment), or ``poll_s`` at most.  Logs carry ids and statuses,
never an address, a number or a name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import Connection

from notifications import email, gsm, ics, phones, render, sms, verification
from notifications.outcome import FAILED, RETRY, SENT, Outcome, failed, retry
from storage import agenda_index, notifications, scheduling, wakeup
from storage.database import Database
from storage.outbox import now_ms
from webhooks.retry import RetryPolicy

log = logging.getLogger("calserver.notifications")
_T = TypeVar("_T")
SKIPPED = "skipped"
GAP_POLL_S = 0.002  # how often a waiting round looks for a gap between requests


@dataclass(frozen=True)
class NotifierSettings:
    smtp: email.SmtpSettings = field(default_factory=email.SmtpSettings)
    sms: sms.SmsSettings = field(default_factory=sms.SmsSettings)
    base_url: str = "http://127.0.0.1:5232"
    retry: RetryPolicy = RetryPolicy(first_ms=30_000, give_up_after_ms=24 * 3_600_000)
    poll_s: float = 30.0
    batch: int = 50
    # Woken by a commit, the worker waits this long more: the messages of a
    # burst of bookings go out in one round (one claim, one record) instead
    # of taking the database's write lock twice per booking.
    settle_s: float = 0.2
    # Messages done are deleted with their receipts past this retention, a
    # small batch every ``purge_every_s`` (at once again after a full one).
    keep: notifications.Retention = notifications.Retention(
        done_ms=30 * 86_400_000, failed_ms=90 * 86_400_000
    )
    purge_every_s: float = 600.0
    purge_batch: int = 500
    # In the server's process, a round waits for a gap between requests
    # before its claim and each message, this long at most in all (``busy``).
    yield_s: float = 2.0

    @property
    def lease_ms(self) -> int:
        """How long a claimed message is this worker's: past it, another
        worker may send it again (its sender died)."""
        longest = max(
            self.smtp.timeout_s if self.smtp.host else 0.0,
            self.sms.timeout_s if self.sms.provider != "none" else 0.0,
        )
        return int((2 * longest + 10) * 1000)

    @property
    def send_limit_s(self) -> float:
        """How long after its claim a round may still be sending
        (aiosmtplib's timeout bounds each SMTP step, not the exchange): 10 s
        below the lease, which leaves recording the round."""
        return (self.lease_ms - 10_000) / 1000


@dataclass
class Outgoing:
    """One claimed message, ready to send (or to skip, with the reason)."""

    claimed: notifications.Claimed
    template: str
    recipient: str | None = None  # masked, for the receipt
    skip: str | None = None
    error: str | None = None  # it could not be prepared: failed for good
    message: Any = None  # (address, email.Flat), or (number, text) for an SMS
    segments: int | None = None  # an SMS's


def masked_email(address: str) -> str:
    """ "l***@example.org": enough for an agent to recognise the address."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _description(content: render.Content) -> str:
    """The ICS's DESCRIPTION: the usager's page to see or cancel the RDV, the
    back-office page for an agent (as RDV-SP words it)."""
    if not content.link:
        return content.motif
    if content.audience == "agent":
        return f"Voir sur {urlsplit(content.link).netloc} : {content.link}"
    return f"Infos et annulation : {content.link}"


class _Reads:
    """What a round's messages read, each record once.  The email and the SMS
    of one change, and the messages of a burst of bookings, name the same
    organisation, motif, lieu, usager and RDV; all are read in the round's
    one read transaction, so a record read twice would be the same."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._found: dict[tuple[Callable[..., Any], int], Any] = {}

    def get(self, read: Callable[[Connection, int], _T], key: int) -> _T:
        if (read, key) not in self._found:
            self._found[(read, key)] = read(self.conn, key)
        return self._found[(read, key)]


class Notifier:
    def __init__(
        self,
        db: Database,
        settings: NotifierSettings,
        preparing: Executor | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        """``preparing``: the threads that read and build the messages, most
        of the worker's CPU (None: asyncio's default).  In the server's
        process, a lowest-priority pool (``calserver.background``): requests
        come first for the cores.  Only reads run there: a thread that might
        wait for a core must not hold the database's write lock, so claims
        and receipts stay on ordinary threads.  ``busy``: whether the
        server is answering a request (``calserver.in_flight``); the round
        then waits for a gap before its claim and before each message,
        ``settings.yield_s`` at most in all.  Its receipts are written as
        soon as the messages are answered (what was sent is known at once),
        and the public page's verification emails, which a usager waits
        for, never wait."""
        self.db = db
        self.settings = settings
        self._preparing = preparing
        self._busy = busy
        self._wake = asyncio.Event()
        self._next_purge = 0.0
        self._sms = sms.provider(settings.sms)
        self._verifications = verification.VerificationMails(
            db, settings.smtp, settings.lease_ms, settings.send_limit_s
        )

    # -- the three transactions of a round --------------------------------

    def _take(self) -> list[notifications.Claimed]:
        with self.db.transaction(write=True) as conn:
            return notifications.claim(conn, now_ms(), self.settings.lease_ms, self.settings.batch)

    def _wait_for_a_gap(self, deadline: float) -> None:
        """Sleep while the server answers requests, until ``deadline``
        (``time.monotonic()``) at most."""
        while self._busy is not None and self._busy() and time.monotonic() < deadline:
            time.sleep(GAP_POLL_S)

    def _prepare(self, claimed: list[notifications.Claimed], deadline: float) -> list[Outgoing]:
        with self.db.transaction(write=False) as conn:
            reads = _Reads(conn)
            prepared = []
            for one in claimed:
                self._wait_for_a_gap(deadline)
                prepared.append(self._prepared(reads, one))
            return prepared

    def _prepared(self, reads: _Reads, claimed: notifications.Claimed) -> Outgoing:
        """One message, or a failure of its own: a row that cannot be built
        (a snapshot or record that makes no sense) fails alone, the others go."""
        try:
            return self._outgoing(reads, claimed)
        except Exception as e:
            log.error("notification %s could not be prepared: %s", claimed.id, type(e).__name__)
            outgoing = Outgoing(claimed, f"{claimed.audience}_{claimed.kind}")
            outgoing.error = f"could not be prepared: {type(e).__name__}"
            return outgoing

    def _record(self, done: list[tuple[Outgoing, Outcome | None]]) -> None:
        at = now_ms()
        receipts = []
        for outgoing, outcome in done:
            claimed = outgoing.claimed
            status = SKIPPED if outcome is None else outcome.status
            error = outgoing.skip if outcome is None else outcome.error
            next_due = None
            if status == RETRY:
                next_due = self.settings.retry.next_attempt_ms(
                    claimed.attempt, claimed.created_ms, at
                )
                if next_due is None:  # retried long enough: given up
                    status, error = FAILED, f"given up: {error}"[:200]
            state = {
                SENT: notifications.SENT,
                SKIPPED: notifications.SKIPPED,
                FAILED: notifications.FAILED,
            }.get(status, notifications.PENDING)
            receipts.append(
                notifications.Receipt(
                    claimed.id,
                    claimed.item_id,
                    at,
                    claimed.channel,
                    outgoing.template,
                    outgoing.recipient,
                    status,
                    outcome.provider_id if outcome else None,
                    error,
                    state,
                    next_due,
                    claimed.leased_until_ms,
                    outgoing.segments,
                )  # fmt: skip
            )
            log.info(
                "notification %s (%s, %s): %s", claimed.id, claimed.channel,
                outgoing.template, status,
            )  # fmt: skip
        with self.db.transaction(write=True) as conn:
            notifications.record(conn, receipts)

    # -- what a message says ------------------------------------------------

    def _outgoing(self, reads: _Reads, claimed: notifications.Claimed) -> Outgoing:
        rdv = claimed.rdv
        outgoing = Outgoing(claimed, f"{claimed.audience}_{claimed.kind}")
        starts_at = datetime.fromisoformat(rdv["starts_at"])
        if starts_at <= datetime.now(UTC):
            outgoing.skip = "the RDV has started"
            return outgoing
        organisation = reads.get(scheduling.organisation, claimed.organisation_id) or {}
        motif = reads.get(scheduling.motif, rdv["motif_id"]) if rdv.get("motif_id") else None
        lieu = reads.get(scheduling.lieu, rdv["lieu_id"]) if rdv.get("lieu_id") else None
        zone = organisation.get("time_zone", "Europe/Paris")
        link = None
        if claimed.audience == "usager" and claimed.link_token and claimed.kind != "cancelled":
            link = f"{self.settings.base_url}/r/{claimed.item_id}/{claimed.link_token}"
        public_id = agenda_index.public_id(claimed.item_id)
        # The ICS supersedes what calendars hold: the agenda's SEQUENCE now
        # (a reminder's snapshot may be older), never less than the snapshot's
        # (a deleted RDV's CANCEL carries its bumped one).
        indexed = reads.get(agenda_index.indexed_event, claimed.item_id)
        sequence = max(int(rdv.get("sequence") or 0), indexed.sequence if indexed else 0)
        if claimed.audience == "agent":
            link = f"{self.settings.base_url}/backoffice/rdvs/{public_id}"
        content = render.Content(
            audience=claimed.audience,
            kind=claimed.kind,
            motif=motif["name"] if motif else "Rendez-vous",
            starts_at=starts_at,
            zone=zone,
            location_type=motif["location_type"] if motif else "public_office",
            lieu_name=lieu["name"] if lieu else None,
            lieu_address=lieu["address"] if lieu else None,
            instructions=(motif or {}).get("instructions_after", "")
            if claimed.audience == "usager"
            else "",
            organisation={
                "name": organisation.get("name", ""),
                "phone": organisation.get("contact_phone"),
                "email": organisation.get("contact_email"),
                "address": organisation.get("contact_address"),
            },
            link=link,
            previous_starts_at=_moment(rdv.get("previous_starts_at")),
        )
        if claimed.audience == "agent":
            agent = reads.get(scheduling.agent, claimed.recipient_id)
            address = agent["email"] if agent else None
            attendee = (agent["display_name"], address) if agent and address else None
            # The agent's CalDAV agenda holds the event under its UID: the
            # invitation must name that one, or accepting it duplicates it.
            uid = rdv.get("uuid") or f"{public_id}@calserver"
            return self._email(outgoing, content, address, rdv, (uid, sequence), attendee)
        usager = reads.get(scheduling.usager, claimed.recipient_id)
        if usager is None:
            outgoing.skip = "the usager no longer exists"
            return outgoing
        if claimed.channel == "email":
            if not usager["notify_by_email"]:
                outgoing.skip = "the usager turned emails off"
                return outgoing
            # Usagers get an opaque UID: the agenda's UID may say who made it.
            identity = (f"{public_id}@calserver", sequence)
            return self._email(outgoing, content, usager["email"], rdv, identity, None)
        return self._text(outgoing, content, usager, organisation)

    def _email(
        self,
        outgoing: Outgoing,
        content: render.Content,
        address: str | None,
        rdv: dict[str, Any],
        identity: tuple[str, int],
        attendee: tuple[str, str] | None,
    ) -> Outgoing:
        """An email with its ICS; ``identity``: the event's UID and SEQUENCE."""
        if not address:
            outgoing.skip = "no email address"
            return outgoing
        outgoing.recipient = masked_email(address)
        if not self.settings.smtp.host:
            outgoing.skip = "email is not configured ([smtp] host)"
            return outgoing
        subject, text, html = render.email(content)
        cancelled = content.kind == "cancelled"
        uid, sequence = identity
        event = ics.IcsEvent(
            uid=uid,
            sequence=sequence,
            starts_at=content.starts_at,
            ends_at=datetime.fromisoformat(rdv["ends_at"]),
            summary=f"RDV {content.motif}",
            location=render.place(content),
            description=_description(content),
            cancelled=cancelled,
            organizer=self.settings.smtp.sender,
            attendee=attendee,
        )
        method = ics.method_for(content.audience, cancelled)
        calendar = email.Calendar(ics.build(event, method), method)
        message = email.compose(self.settings.smtp, address, subject, text, html, calendar)
        outgoing.message = (address, email.flatten(message))
        return outgoing

    def _text(
        self,
        outgoing: Outgoing,
        content: render.Content,
        usager: dict[str, Any],
        organisation: dict[str, Any],
    ) -> Outgoing:
        if not usager["notify_by_sms"]:
            outgoing.skip = "the usager turned SMS off"
            return outgoing
        if not usager["phone"]:
            outgoing.skip = "no phone number"
            return outgoing
        region = phones.region_of_zone(organisation.get("holiday_zone", "metropole"))
        number = phones.mobile_e164(usager["phone"], region)
        if number is None:
            outgoing.skip = "not a mobile number"
            return outgoing
        outgoing.recipient = phones.masked(number)
        if self._sms is None:
            outgoing.skip = "SMS are not configured ([sms] provider)"
            return outgoing
        limit = self.settings.sms.max_segments
        text = render.sms(content, limit)
        if text is None:
            outgoing.error = f"longer than {limit} SMS segments"
            return outgoing
        outgoing.message = (number, text)
        outgoing.segments = gsm.segments(text)
        return outgoing

    # -- sending ------------------------------------------------------------

    async def _send(
        self, prepared: list[Outgoing], claimed_at: float
    ) -> list[tuple[Outgoing, Outcome | None]]:
        """Each message with its outcome (None: skipped).  The emails go one
        after another on one SMTP connection (``email.Connection``), the SMS
        at once beside them on the provider's pooled connections; all within
        ``send_limit_s`` of the claim (``claimed_at``, the loop's clock), so
        inside the lease however long preparing took; a message not yet
        answered then is retried later."""
        outcomes: dict[int, Outcome | None] = {}
        emails: list[tuple[int, Outgoing]] = []
        texts: list[tuple[int, Outgoing]] = []
        for n, outgoing in enumerate(prepared):
            if outgoing.error is not None:
                outcomes[n] = failed(outgoing.error)
            elif outgoing.skip is not None:
                outcomes[n] = None
            else:
                (emails if outgoing.claimed.channel == "email" else texts).append((n, outgoing))
        limit = self.settings.send_limit_s
        try:
            async with asyncio.timeout_at(claimed_at + limit):
                await asyncio.gather(
                    self._send_emails(emails, outcomes),
                    *(self._send_text(n, outgoing, outcomes) for n, outgoing in texts),
                )
        except TimeoutError:
            pass
        unanswered = retry(f"no answer within {limit:g} s")
        return [(o, outcomes.get(n, unanswered)) for n, o in enumerate(prepared)]

    async def _send_emails(
        self, emails: list[tuple[int, Outgoing]], outcomes: dict[int, Outcome | None]
    ) -> None:
        """The round's emails on one connection, closed at the end (dropped
        if the round's time runs out mid-exchange)."""
        connection = email.Connection(self.settings.smtp)
        try:
            for n, outgoing in emails:
                address, message = outgoing.message
                outcomes[n] = await connection.send(message, address)
            await connection.close()
        finally:
            connection.abort()

    async def _send_text(
        self, n: int, outgoing: Outgoing, outcomes: dict[int, Outcome | None]
    ) -> None:
        assert self._sms is not None
        number, text = outgoing.message
        outcomes[n] = await self._sms.send(number, text)

    async def round(self) -> int:
        """One round: the public page's verification emails first (a usager
        waits for the code), then claim, prepare, send, record; how many were
        handled."""
        mails = await self._verifications.round(self.settings.batch)
        deadline = time.monotonic() + self.settings.yield_s
        await asyncio.to_thread(self._wait_for_a_gap, deadline)
        loop = asyncio.get_running_loop()
        claimed_at = loop.time()  # the lease runs from (just after) now
        claimed = await asyncio.to_thread(self._take)
        if not claimed:
            return mails
        prepared = await loop.run_in_executor(self._preparing, self._prepare, claimed, deadline)
        await asyncio.to_thread(self._record, await self._send(prepared, claimed_at))
        return mails + len(claimed)

    async def _full_round(self) -> bool:
        """A round; whether it took a whole batch (then more may be due at
        once; otherwise the next due time decides, without another claim)."""
        handled = await self.round()
        await self._purge_if_due()
        return handled >= self.settings.batch

    def _purge(self) -> int:
        with self.db.transaction(write=True) as conn:
            return notifications.purge(
                conn, now_ms(), self.settings.keep, self.settings.purge_batch
            )

    async def _purge_if_due(self) -> None:
        """Past their retention, messages go a batch at a time: at once
        again while batches come full (a backlog), else every
        ``purge_every_s``."""
        if time.monotonic() >= self._next_purge:
            deleted = await asyncio.to_thread(self._purge)
            pause = 0.0 if deleted >= self.settings.purge_batch else self.settings.purge_every_s
            self._next_purge = time.monotonic() + pause

    def _sleep_s(self) -> float:
        with self.db.transaction(write=False) as conn:
            due = notifications.next_due_ms(conn)
        mail_due = self._verifications.next_due_ms()
        if mail_due is not None:
            due = mail_due if due is None else min(due, mail_due)
        return wakeup.sleep_s(due, self.settings.poll_s)

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await wakeup.serve(
                self.db,
                self._wake,
                stop,
                self._full_round,
                self._sleep_s,
                self.settings.poll_s,
                log,
                self.settings.settle_s,
            )
        finally:
            await self.close()

    async def close(self) -> None:
        """Release the SMS provider's connections (the worker stops)."""
        if self._sms is not None:
            await self._sms.close()

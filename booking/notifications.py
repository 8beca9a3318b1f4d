"""Who is told what when an RDV changes, decided once for every write path.

``plan`` is plain logic on the two states the outbox compares (see
``booking.changes``): a usager gets a confirmation at creation (or when a
cancelled RDV is reinstated), a notice when the time or the lieu changes, a
notice on cancellation (SMS too only when the service cancels: a usager who
cancels gets an email), and a reminder (``booking.reminders``); nothing when
the RDV has started, nothing at all for usagers when the RDV's switch is off
(``notify_usagers``).  Agents of the RDV are emailed per their preference:
``all``, ``others`` (not their own changes), ``soon`` (the old or new date is
today or tomorrow in the organisation's zone), ``none``; an agent added to
the RDV gets a creation, one removed a cancellation; intervenants and agents
without an email get nothing.

``schedule`` runs in the transaction of the change (called by
``booking.agenda_outbox``): a refused write schedules nothing.  ``calserver
import`` mutes the notices (what it loads already exists for everyone) but
keeps the reminders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from booking.agenda import organisation_of
from booking.model import CANCELLED_STATUSES, Organisation
from booking.reminders import reminder_moment
from storage import notifications, scheduling
from storage.database import author_of, notices_muted

State = Mapping[str, Any]
LEVELS = ("all", "others", "soon", "none")
CREATED, UPDATED, CANCELLED, REMINDER = "created", "updated", "cancelled", "reminder"
USAGER_CHANNELS = ("email", "sms")
# What a waiting reminder says: when one of these changes, it is made again.
_REMINDED = ("starts_at", "ends_at", "lieu_id", "motif_id", "usager_ids")
# When one of these changes, even a reminder a worker took is dropped.
_REDONE = ("starts_at", "usager_ids")


@dataclass(frozen=True)
class AgentChoice:
    id: int
    login: str
    level: str
    reachable: bool  # an email, a login, not an intervenant


@dataclass(frozen=True)
class Message:
    audience: str  # usager / agent
    recipient_id: int
    channel: str
    kind: str


def _cancelled(state: State) -> bool:
    return state.get("status") in CANCELLED_STATUSES


def _start(state: State) -> datetime:
    return datetime.fromisoformat(state["starts_at"])


def lifecycle(old: State | None, new: State | None) -> str | None:
    """The notice an RDV's change calls for: created, updated, cancelled or none."""
    if new is None:
        return CANCELLED if old is not None and not _cancelled(old) else None
    if _cancelled(new):
        return CANCELLED if old is not None and not _cancelled(old) else None
    if old is None or _cancelled(old):
        return CREATED
    if old.get("starts_at") != new.get("starts_at") or old.get("lieu_id") != new.get("lieu_id"):
        return UPDATED
    return None


def _usager_messages(old: State | None, new: State | None, writer: str) -> list[Message]:
    current = new if new is not None else old
    assert current is not None
    if not current.get("notify_usagers", True):
        return []
    kind = lifecycle(old, new)
    before = set(old.get("usager_ids", [])) if old else set()
    after = set(new.get("usager_ids", [])) if new else set()
    found: list[tuple[int, str]] = []
    for usager in sorted(before | after):
        if usager not in before and new is not None and not _cancelled(new):
            found.append((usager, CREATED))
        elif usager not in after and old is not None and not _cancelled(old):
            found.append((usager, CANCELLED))
        elif kind is not None and usager in before and usager in after:
            found.append((usager, kind))
    return [
        Message("usager", usager, channel, kind)
        for usager, kind in found
        for channel in USAGER_CHANNELS
        if not (kind == CANCELLED and channel == "sms" and writer == "usager")
    ]


def _soon(moments: list[datetime], zone: str, now: datetime) -> bool:
    today = now.astimezone(ZoneInfo(zone)).date()
    days = {m.astimezone(ZoneInfo(zone)).date() for m in moments}
    return bool(days & {today, today + timedelta(days=1)})


def _agent_messages(
    old: State | None,
    new: State | None,
    agents: Mapping[int, AgentChoice],
    author: str | None,
    zone: str,
    now: datetime,
) -> list[Message]:
    kind = lifecycle(old, new)
    before = set(old.get("agent_ids", [])) if old else set()
    after = set(new.get("agent_ids", [])) if new else set()
    moments = [_start(s) for s in (old, new) if s is not None]
    found = []
    for agent_id in sorted(before | after):
        choice = agents.get(agent_id)
        if choice is None or not choice.reachable or choice.level == "none":
            continue
        if choice.level == "others" and choice.login == author:
            continue
        if choice.level == "soon" and not _soon(moments, zone, now):
            continue
        if agent_id not in before and new is not None and not _cancelled(new):
            found.append(Message("agent", agent_id, "email", CREATED))
        elif agent_id not in after and old is not None and not _cancelled(old):
            found.append(Message("agent", agent_id, "email", CANCELLED))
        elif kind is not None and agent_id in before and agent_id in after:
            found.append(Message("agent", agent_id, "email", kind))
    return found


def plan(
    old: State | None,
    new: State | None,
    *,
    writer: str,
    author: str | None,
    agents: Mapping[int, AgentChoice],
    zone: str,
    now: datetime,
) -> list[Message]:
    """The notices of one change of an RDV (reminders aside)."""
    current = new if new is not None else old
    if current is None or _start(current) <= now:
        return []  # nothing once the RDV has started
    return _usager_messages(old, new, writer) + _agent_messages(old, new, agents, author, zone, now)


def reminders(new: State | None, organisation: Organisation, now: datetime) -> list[Message]:
    """The reminders an RDV in this state has waiting (none when cancelled,
    switched off or too close)."""
    if new is None or _cancelled(new) or not new.get("notify_usagers", True):
        return []
    if reminder_moment(_start(new), organisation, now) is None:
        return []
    return [
        Message("usager", usager, channel, REMINDER)
        for usager in new.get("usager_ids", [])
        for channel in USAGER_CHANNELS
    ]


def _choices(conn: Connection, ids: set[int], organisation_id: int) -> dict[int, AgentChoice]:
    return {
        a["id"]: AgentChoice(
            a["id"],
            a["login"],
            a["rdv_notifications_level"],
            bool(a["email"]) and bool(a["can_login"]) and a["role"] not in (None, "intervenant"),
        )
        for a in notifications.agents_of(conn, sorted(ids), organisation_id)
    }


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _reminders(
    conn: Connection,
    item_id: int,
    old: State | None,
    new: State | None,
    organisation: Organisation,
    now: datetime,
    noticed: bool,
) -> list[notifications.Scheduled]:
    """Keep the RDV's waiting reminders right; the ones to add.

    A reminder a worker already took (sending, or waiting for a retry) is
    left alone by an edit (every write bumps SEQUENCE): only reminders still
    unclaimed and to come are replaced.  All are dropped, even taken ones,
    when the RDV is cancelled or deleted or its switch is turned off (and
    none made), or when its usagers or its time change (a retry would name
    the wrong people or time; the new set's are made)."""
    waiting = notifications.pending_reminders(conn, item_id)
    if new is None or _cancelled(new) or not new.get("notify_usagers", True):
        notifications.drop(conn, [w.id for w in waiting], _ms(now))
        return []
    changed = old is None or any(old.get(k) != new.get(k) for k in _REMINDED)
    if old is not None and any(old.get(k) != new.get(k) for k in _REDONE):
        replaceable = waiting
    else:
        replaceable = [w for w in waiting if not w.claimed and (w.due_ms > _ms(now) or changed)]
    wanted = reminders(new, organisation, now)
    if not wanted:
        if changed:
            notifications.drop(conn, [w.id for w in replaceable], _ms(now))
        return []
    due = _ms(reminder_moment(_start(new), organisation, now) or now)
    desired = {(m.recipient_id, due, m.channel) for m in wanted}
    if not (
        changed
        or noticed
        or desired != {(w.recipient_id, w.due_ms, w.channel) for w in replaceable}
    ):
        return []
    notifications.drop(conn, [w.id for w in replaceable], _ms(now))
    return [
        notifications.Scheduled(
            item_id, organisation.id, "usager", m.recipient_id, m.channel, REMINDER, dict(new), due
        )
        for m in wanted
    ]


def _told(message: Message, old: State | None, new: State | None, snapshot: State) -> State:
    """What a message says of the RDV: its state now, except for an agent it
    was taken from (moved to a colleague), whose cancellation names the RDV
    as that agent had it (its time, its lieu) with today's SEQUENCE."""
    if (
        message.audience == "agent"
        and message.kind == CANCELLED
        and old is not None
        and new is not None
        and message.recipient_id not in new.get("agent_ids", [])
    ):
        return {**old, "sequence": snapshot.get("sequence")}
    return snapshot


def schedule(
    conn: Connection,
    item_id: int,
    old: State | None,
    new: State | None,
    writer: str,
    now: datetime | None = None,
) -> None:
    """Write the messages of an RDV's change and keep its reminders right."""
    now = now or datetime.now(UTC)
    current = new if new is not None else old
    if current is None or current.get("organisation_id") is None:
        return
    record = scheduling.organisation(conn, current["organisation_id"])
    if record is None:
        return
    organisation = organisation_of(record)
    ids = {a for state in (old, new) if state is not None for a in state.get("agent_ids", [])}
    messages = (
        []
        if notices_muted(conn)
        else plan(
            old,
            new,
            writer=writer,
            author=author_of(conn),
            agents=_choices(conn, ids, organisation.id),
            zone=organisation.time_zone,
            now=now,
        )
    )
    snapshot = dict(current)
    if new is None:  # deleted (CalDAV DELETE): its CANCEL supersedes the last REQUEST
        snapshot["sequence"] = int(current.get("sequence") or 0) + 1
    if old is not None and new is not None and old.get("starts_at") != new.get("starts_at"):
        snapshot["previous_starts_at"] = old["starts_at"]
    rows = [
        notifications.Scheduled(
            item_id,
            organisation.id,
            m.audience,
            m.recipient_id,
            m.channel,
            m.kind,
            _told(m, old, new, snapshot),
            _ms(now),
        )  # fmt: skip
        for m in messages
    ]
    rows += _reminders(conn, item_id, old, new, organisation, now, bool(messages))
    notifications.schedule(conn, rows, _ms(now))

"""Repository of the outbox: the events every change leaves, in its own transaction.

Whatever wrote a record (the JSON API, a CalDAV PUT, DELETE or MOVE, an
import), the repository or storage call that wrote it calls ``record`` in the
same transaction, so a rolled-back write leaves no event and a committed one
cannot lose it.  Webhooks (and later notifications and the Microsoft 365
push) read events from here.

Each record has a sequence number, 1 for its first event and one more for
each next one, and its last told state, from which the next event's
``changes`` are computed.  Events carry no personal data: a usager's personal
fields are kept as digests in the record state (enough to tell they changed)
and left out of the event's data; consumers read them at delivery time.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, text, update

from storage.database import OUTBOX_WRITTEN
from storage.schema import outbox_events, outbox_record_organisations, outbox_records

MODELS = (
    "rdv",
    "absence",
    "plage_ouverture",
    "motif",
    "lieu",
    "agent",
    "usager",
    "organisation",
)
AGENDA_MODELS = ("rdv", "absence", "plage_ouverture")
# Every column of a usager but these is personal data: a column added later is
# personal until it is named here.
USAGER_PLAIN_FIELDS = frozenset({"id", "organisation_id", "created_at"})
# Not even a digest: free text an agent wrote about a person, and the names'
# search key (derived from the names, which are told).
UNTOLD_FIELDS = {"usager": frozenset({"notes", "search_key"})}
INITIAL_SYNC = "initial_sync"
# PostgreSQL channel a committed event is announced on (workers LISTEN to it).
CHANNEL = "calserver_outbox"
# Events an initial sync writes in one statement.
REPLAY_BATCH = 1000

State = dict[str, Any]
Changes = Callable[[Mapping[str, Any] | None, Mapping[str, Any] | None], list[str]]


@dataclass(frozen=True)
class Previous:
    """What the outbox last told of a record (``state`` None: nothing, or destroyed)."""

    key: str
    model: str | None
    sequence: int
    state: State | None


@dataclass(frozen=True)
class Event:
    id: int
    created_ms: int
    organisation_id: int
    model: str
    record_id: int
    event: str
    sequence: int
    changes: list[str]
    data: State
    reason: str | None
    endpoint_id: int | None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def key_of(model: str, record_id: int) -> str:
    """An agenda record is keyed by its item, which may change model (an RDV
    moved to an ordinary calendar); other records by model and id."""
    return f"item:{record_id}" if model in AGENDA_MODELS else f"{model}:{record_id}"


def changed_fields(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    """The names of the fields that differ, or ``created`` / ``destroyed``."""
    if old is None or new is None:
        return ["created" if old is None else "destroyed"]
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def told_state(model: str, record: Mapping[str, Any]) -> State:
    """A record as the outbox keeps it: personal fields as digests."""
    personal = _personal(model, record)
    untold = UNTOLD_FIELDS.get(model, frozenset())
    state: State = {}
    for name, value in record.items():
        if name in untold:
            continue
        if name in personal and value is not None:
            value = "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()
        state[name] = value
    return state


def _personal(model: str, record: Mapping[str, Any]) -> frozenset[str]:
    if model != "usager":
        return frozenset()
    return frozenset(record) - USAGER_PLAIN_FIELDS - UNTOLD_FIELDS["usager"]


def _event_data(model: str, state: State) -> State:
    personal = _personal(model, state)
    return {k: v for k, v in state.items() if k not in personal}


def previous(conn: Connection, model: str, record_id: int) -> Previous:
    """The record's last told state, locked until the transaction ends (on
    PostgreSQL; SQLite has one writer) so its next sequence is taken once."""
    key = key_of(model, record_id)
    query = select(outbox_records).where(outbox_records.c.key == key)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return Previous(key, None, 0, None)
    return Previous(key, row.model, row.sequence, json.loads(row.state) if row.state else None)


def record(
    conn: Connection,
    before: Previous,
    model: str,
    record_id: int,
    state: State | None,
    organisation_ids: Iterable[int],
    changes: Changes = changed_fields,
    *,
    quiet_if_unchanged: bool = False,
) -> list[int]:
    """Write the events of a record going from ``before`` to ``state`` (None:
    destroyed), one per organisation, and remember the new state.

    A record that changes model (an item moved from an agenda of RDVs to one of
    plages) is told destroyed as what it was, then created as what it is.  A
    record that changes organisations is told destroyed to those it left,
    created to those it joined and updated to those it stays in, with one
    sequence number: each organisation's consumers see only their own records.
    With ``quiet_if_unchanged`` an update that changed nothing is not told.
    Returns the new events' ids."""
    organisations = sorted(set(organisation_ids))
    old = before.state if before.model == model else None
    written: list[int] = []
    sequence = before.sequence
    if before.state is not None and before.model != model and before.model is not None:
        sequence += 1
        written += _insert_events(
            conn, before.model, record_id, "destroyed", sequence, ["destroyed"],
            before.state, before.state.get("organisation_ids", organisations),
        )  # fmt: skip
    if state is None and old is None:
        if written:
            _remember(conn, before, before.model or model, sequence, None)
        return written
    found = changes(old, state)
    if old is not None and state is not None:
        # An update, told to each organisation as what it is for that one: a
        # record that left an organisation (an RDV moved to an agenda of
        # another) is destroyed there and created where it arrived.
        was = set(old.get("organisation_ids", organisations))
        leaving, joining = sorted(was - set(organisations)), sorted(set(organisations) - was)
        if not (found or leaving or joining) and quiet_if_unchanged:
            return written
        sequence += 1
        for event, told, data, where in (
            ("destroyed", ["destroyed"], old, leaving),
            ("created", ["created"], state, joining),
            ("updated", found, state, sorted(was & set(organisations))),
        ):
            written += _insert_events(conn, model, record_id, event, sequence, told, data, where)
        _remember(conn, before, model, sequence, state)
        return written
    event = "destroyed" if state is None else "created"
    sequence += 1
    data = state if state is not None else old
    assert data is not None
    written += _insert_events(
        conn, model, record_id, event, sequence, found, data,
        organisations or data.get("organisation_ids", []),
    )  # fmt: skip
    _remember(conn, before, model, sequence, state)
    return written


def track(
    conn: Connection,
    model: str,
    record_id: int,
    record_now: Mapping[str, Any],
    organisation_ids: Iterable[int],
) -> list[int]:
    """``record`` for a row of the domain tables just created or updated, its
    changes the fields that differ; an update that changed nothing is not told."""
    before = previous(conn, model, record_id)
    organisations = sorted(set(organisation_ids))
    state = {**told_state(model, record_now), "organisation_ids": organisations}
    return record(conn, before, model, record_id, state, organisations, quiet_if_unchanged=True)


def learn(
    conn: Connection,
    model: str,
    record_id: int,
    record_now: Mapping[str, Any],
    organisation_ids: Iterable[int],
) -> bool:
    """Teach the outbox a record it has never been told of (written before the
    outbox existed), as its state at sequence 0, without an event: nothing
    changed, but an initial sync must replay it.  False when it is known."""
    key = key_of(model, record_id)
    if conn.execute(select(outbox_records.c.key).where(outbox_records.c.key == key)).first():
        return False
    organisations = sorted(set(organisation_ids))
    state = {**told_state(model, record_now), "organisation_ids": organisations}
    _remember(conn, Previous(key, None, 0, None), model, 0, state)
    return True


def _remember(
    conn: Connection, before: Previous, model: str, sequence: int, state: State | None
) -> None:
    values = {
        "model": model,
        "sequence": sequence,
        "state": None if state is None else json.dumps(state, sort_keys=True),
    }
    if before.model is None:
        conn.execute(insert(outbox_records).values(key=before.key, **values))
    else:
        conn.execute(
            update(outbox_records).where(outbox_records.c.key == before.key).values(**values)
        )
    _remember_organisations(conn, before, state)


def _remember_organisations(conn: Connection, before: Previous, state: State | None) -> None:
    """Keep ``outbox_record_organisations`` to the record's organisations
    (none once destroyed), writing only when they changed."""
    was = set((before.state or {}).get("organisation_ids", []))
    now = set((state or {}).get("organisation_ids", []))
    if was == now:
        return
    o = outbox_record_organisations
    if was - now:
        conn.execute(
            delete(o).where(o.c.key == before.key, o.c.organisation_id.in_(sorted(was - now)))
        )
    if now - was:
        conn.execute(
            insert(o), [{"organisation_id": i, "key": before.key} for i in sorted(now - was)]
        )


def _insert_events(
    conn: Connection,
    model: str,
    record_id: int,
    event: str,
    sequence: int,
    changes: list[str],
    state: State,
    organisation_ids: Iterable[int],
) -> list[int]:
    organisations = list(organisation_ids)
    if not organisations:
        return []
    announce(conn)
    created = now_ms()
    data = json.dumps(_event_data(model, state), sort_keys=True)
    return [
        conn.execute(
            insert(outbox_events)
            .values(
                _event_row(
                    created, organisation_id, model, record_id, event, sequence, changes, data
                )
            )
            .returning(outbox_events.c.id)
        ).scalar_one()
        for organisation_id in organisations
    ]


def _event_row(
    created_ms: int,
    organisation_id: int,
    model: str,
    record_id: int,
    event: str,
    sequence: int,
    changes: list[str],
    data: str,
    reason: str | None = None,
    endpoint_id: int | None = None,
) -> dict[str, Any]:
    """The columns of one outbox event (``data`` already JSON)."""
    return {
        "created_ms": created_ms,
        "organisation_id": organisation_id,
        "model": model,
        "record_id": record_id,
        "event": event,
        "sequence": sequence,
        "changes": json.dumps(changes),
        "data": data,
        "reason": reason,
        "endpoint_id": endpoint_id,
    }


def announce(conn: Connection) -> None:
    """Have the commit wake the workers: NOTIFY (PostgreSQL, every process,
    sent at commit only) and the flag ``Database`` reads after its commit."""
    if conn.info.get(OUTBOX_WRITTEN):
        return
    conn.info[OUTBOX_WRITTEN] = True
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {CHANNEL}"))


def replay(conn: Connection, organisation_id: int, models: Iterable[str], endpoint_id: int) -> int:
    """Tell one endpoint the current state of the organisation's records of
    these models as ``created`` events with reason ``initial_sync`` (their
    sequence is the record's current one: a newer change still wins).

    The organisation's records are found by index and their events written
    in batches, so that the API request that asks for it stays short."""
    r, o = outbox_records, outbox_record_organisations
    rows = conn.execute(
        select(r.c.key, r.c.model, r.c.sequence, r.c.state)
        .join(o, o.c.key == r.c.key)
        .where(
            o.c.organisation_id == organisation_id,
            r.c.state.is_not(None),
            r.c.model.in_(sorted(set(models))),
        )
        .order_by(r.c.key)
    ).all()
    if not rows:
        return 0
    announce(conn)
    created = now_ms()
    new = [
        _event_row(
            created,
            organisation_id,
            row.model,
            int(row.key.rpartition(":")[2]),
            "created",
            row.sequence,
            ["created"],
            json.dumps(_event_data(row.model, json.loads(row.state)), sort_keys=True),
            INITIAL_SYNC,
            endpoint_id,
        )  # fmt: skip
        for row in rows
    ]
    for start in range(0, len(new), REPLAY_BATCH):
        conn.execute(insert(outbox_events), new[start : start + REPLAY_BATCH])
    return len(new)


def events(conn: Connection, *, after: int = 0, limit: int = 1000) -> list[Event]:
    """Events in the order they were written, from the one after ``after``."""
    query = (
        select(outbox_events)
        .where(outbox_events.c.id > after)
        .order_by(outbox_events.c.id)
        .limit(limit)
    )
    return [event_from_row(r) for r in conn.execute(query)]


def event(conn: Connection, event_id: int) -> Event | None:
    row = conn.execute(select(outbox_events).where(outbox_events.c.id == event_id)).first()
    return None if row is None else event_from_row(row)


def event_from_row(row: Row[Any]) -> Event:
    return Event(
        id=row.id,
        created_ms=row.created_ms,
        organisation_id=row.organisation_id,
        model=row.model,
        record_id=row.record_id,
        event=row.event,
        sequence=row.sequence,
        changes=json.loads(row.changes),
        data=json.loads(row.data),
        reason=row.reason,
        endpoint_id=row.endpoint_id,
    )


def told_items(conn: Connection, item_ids: Iterable[int]) -> list[int]:
    """Those of these agenda items the outbox knows as existing records."""
    wanted = {f"item:{i}": i for i in item_ids}
    keys = list(wanted)
    found: list[int] = []
    for start in range(0, len(keys), 500):
        rows = conn.execute(
            select(outbox_records.c.key).where(
                outbox_records.c.key.in_(keys[start : start + 500]),
                outbox_records.c.state.is_not(None),
            )
        )
        found.extend(wanted[k] for k in rows.scalars())
    return sorted(found)

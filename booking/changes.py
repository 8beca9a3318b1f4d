"""What changed between two states of an agenda record, in the words the
outbox's consumers use.

A webhook receiver, a notifier and the Microsoft 365 push all need to tell a
move from a cancellation, so the outbox says it once, here, on plain data: a
state is the JSON-ready snapshot the outbox keeps of a record (None before it
exists and after it is gone).  An RDV's snapshot holds ``starts_at``,
``ends_at``, ``status``, ``lieu_id``, ``motif_id``, ``agent_ids`` and
``usager_ids``; a plage's or an absence's ``starts_at``, ``ends_at``,
``recurrence``, ``lieu_id`` and ``motif_ids``.  Other keys (ids, titles) may be
present and count as ``details_changed`` when they differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from booking.model import CANCELLED_STATUSES

State = Mapping[str, Any]

CREATED, UPDATED, DESTROYED = "created", "updated", "destroyed"

# Change name -> the snapshot keys whose difference it names.
_RDV_CHANGES = {
    "moved": ("starts_at", "ends_at"),
    "relocated": ("lieu_id",),
    "motif_changed": ("motif_id",),
    "status_changed": ("status",),
    "agents_changed": ("agent_ids",),
    "usagers_changed": ("usager_ids",),
}
_AVAILABILITY_CHANGES = {
    "moved": ("starts_at", "ends_at"),
    "recurrence_changed": ("recurrence",),
    "relocated": ("lieu_id",),
    "motifs_changed": ("motif_ids",),
}
# Keys that change with every write and say nothing by themselves.
_BOOKKEEPING = frozenset({"sequence", "cancelled_at", "created_by", "organisation_ids"})


def event_of(old: State | None, new: State | None) -> str:
    """created, updated or destroyed (RDV-SP's three webhook events)."""
    if new is None:
        return DESTROYED
    return CREATED if old is None else UPDATED


def _named(old: State, new: State, names: Mapping[str, tuple[str, ...]]) -> list[str]:
    found = [name for name, keys in names.items() if any(old.get(k) != new.get(k) for k in keys)]
    named_keys = {k for keys in names.values() for k in keys}
    others = (set(old) | set(new)) - named_keys - _BOOKKEEPING
    if any(old.get(k) != new.get(k) for k in others):
        found.append("details_changed")
    return found


def _cancelled(state: State) -> bool:
    return state.get("status") in CANCELLED_STATUSES


def rdv_changes(old: State | None, new: State | None) -> list[str]:
    """What happened to an RDV: ``created`` or ``destroyed``, else every change
    that applies among moved, relocated, motif_changed, status_changed,
    cancelled (to excused or revoked), reinstated (back from them),
    agents_changed, usagers_changed and details_changed.  An update that
    changed none of these (a client rewrote its description) is ``[]``."""
    if old is None or new is None:
        return [event_of(old, new)]
    found = _named(old, new, _RDV_CHANGES)
    if not _cancelled(old) and _cancelled(new):
        found.append("cancelled")
    elif _cancelled(old) and not _cancelled(new):
        found.append("reinstated")
    return found


def availability_changes(old: State | None, new: State | None) -> list[str]:
    """What happened to a plage d'ouverture or an absence: ``created``,
    ``destroyed``, or among moved, recurrence_changed, relocated,
    motifs_changed and details_changed."""
    if old is None or new is None:
        return [event_of(old, new)]
    return _named(old, new, _AVAILABILITY_CHANGES)


def cancelled_at(old: State | None, new_status: str, now: str) -> str | None:
    """When an RDV was cancelled, as RDV-SP reports it: set when its status
    becomes excused or revoked, kept while it stays so, cleared otherwise."""
    if new_status not in CANCELLED_STATUSES:
        return None
    if old is not None and _cancelled(old) and old.get("cancelled_at"):
        return old["cancelled_at"]
    return now

"""What changed between two states of an RDV, a plage or an absence."""

from __future__ import annotations

import pytest

from booking.changes import (
    availability_changes,
    cancelled_at,
    event_of,
    rdv_changes,
)

RDV = {
    "id": 7,
    "uuid": "r-1@calserver",
    "starts_at": "2030-01-07T09:00:00+00:00",
    "ends_at": "2030-01-07T09:30:00+00:00",
    "status": "unknown",
    "lieu_id": 1,
    "motif_id": 2,
    "agent_ids": [3],
    "usager_ids": [4],
    "sequence": 0,
    "cancelled_at": None,
    "created_by": "agent",
}


def changed(**values) -> dict:
    return {**RDV, **values, "sequence": RDV["sequence"] + 1}


def test_created_and_destroyed() -> None:
    assert event_of(None, RDV) == "created"
    assert event_of(RDV, None) == "destroyed"
    assert event_of(RDV, changed()) == "updated"
    assert rdv_changes(None, RDV) == ["created"]
    assert rdv_changes(RDV, None) == ["destroyed"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"starts_at": "2030-01-07T10:00:00+00:00", "ends_at": "2030-01-07T10:30:00+00:00"},
         ["moved"]),
        ({"ends_at": "2030-01-07T09:45:00+00:00"}, ["moved"]),
        ({"lieu_id": 9}, ["relocated"]),
        ({"motif_id": 9}, ["motif_changed"]),
        ({"agent_ids": [5]}, ["agents_changed"]),
        ({"usager_ids": [4, 6]}, ["usagers_changed"]),
        ({"status": "seen"}, ["status_changed"]),
        ({"status": "noshow"}, ["status_changed"]),  # a no-show still holds its slot
        ({"status": "revoked"}, ["status_changed", "cancelled"]),
        ({"status": "excused"}, ["status_changed", "cancelled"]),
        ({"title": "Accueil : Dupont"}, ["details_changed"]),
    ],
)  # fmt: skip
def test_each_kind_of_rdv_change(values: dict, expected: list[str]) -> None:
    assert rdv_changes(RDV, changed(**values)) == expected


def test_a_rewrite_that_changes_nothing_is_an_empty_update() -> None:
    # SEQUENCE, cancelled_at and created_by are bookkeeping, not changes.
    assert rdv_changes(RDV, changed()) == []


def test_several_changes_at_once_are_all_named() -> None:
    new = changed(starts_at="2030-01-08T09:00:00+00:00", lieu_id=9, status="revoked")
    assert set(rdv_changes(RDV, new)) == {"moved", "relocated", "status_changed", "cancelled"}


def test_reinstated_and_cancelled_to_cancelled() -> None:
    revoked = changed(status="revoked")
    assert rdv_changes(revoked, {**revoked, "status": "unknown"}) == [
        "status_changed",
        "reinstated",
    ]
    # excused -> revoked: still cancelled, not cancelled again.
    assert rdv_changes({**RDV, "status": "excused"}, revoked) == ["status_changed"]


def test_availability_changes() -> None:
    plage = {
        "starts_at": "2030-01-07T09:00:00+00:00",
        "ends_at": "2030-01-07T12:00:00+00:00",
        "recurrence": "FREQ=WEEKLY;BYDAY=MO",
        "lieu_id": 1,
        "motif_ids": [2],
        "title": "Matin",
    }
    assert availability_changes(None, plage) == ["created"]
    assert availability_changes(plage, None) == ["destroyed"]
    assert availability_changes(plage, dict(plage)) == []
    assert availability_changes(plage, {**plage, "ends_at": "2030-01-07T11:00:00+00:00"}) == [
        "moved"
    ]
    assert availability_changes(plage, {**plage, "recurrence": None}) == ["recurrence_changed"]
    assert availability_changes(plage, {**plage, "lieu_id": None}) == ["relocated"]
    assert availability_changes(plage, {**plage, "motif_ids": [2, 3]}) == ["motifs_changed"]
    assert availability_changes(plage, {**plage, "title": "Après-midi"}) == ["details_changed"]


def test_cancelled_at_follows_the_status() -> None:
    now, later = "2030-01-01T08:00:00+00:00", "2030-01-02T08:00:00+00:00"
    assert cancelled_at(None, "unknown", now) is None
    assert cancelled_at(None, "revoked", now) == now
    first = {**RDV, "status": "revoked", "cancelled_at": now}
    assert cancelled_at(first, "excused", later) == now  # still cancelled since then
    assert cancelled_at(first, "unknown", later) is None  # reinstated
    assert cancelled_at(RDV, "noshow", later) is None  # a no-show is not a cancellation

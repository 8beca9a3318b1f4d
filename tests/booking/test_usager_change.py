"""What a usager may do to their own RDV (cancel as excused, move), and until when."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from booking.rules import USAGER_CHANGE_LIMIT, BookingRefused, UsagerChange, check_usager_change
from booking.selfservice import letters_match, name_letters

NOW = datetime(2027, 6, 1, 8, 0, tzinfo=UTC)
CANCEL = UsagerChange(
    starts_at=NOW + timedelta(days=2),
    status="unknown",
    new_status="excused",
    moved=False,
    can_cancel=True,
    can_move=False,
)
MOVE = replace(CANCEL, new_status="unknown", moved=True, can_move=True)


def refusal(change: UsagerChange, now: datetime = NOW) -> str:
    with pytest.raises(BookingRefused) as refused:
        check_usager_change(change, now)
    return refused.value.code


def test_a_usager_cancels_or_moves_when_the_motif_allows() -> None:
    check_usager_change(CANCEL, NOW)
    check_usager_change(MOVE, NOW)
    assert refusal(replace(CANCEL, can_cancel=False)) == "not-cancellable"
    assert refusal(replace(MOVE, can_move=False)) == "not-movable"


def test_the_four_hour_limit_and_the_start() -> None:
    edge = replace(CANCEL, starts_at=NOW + USAGER_CHANGE_LIMIT)
    check_usager_change(edge, NOW)
    assert refusal(edge, NOW + timedelta(seconds=1)) == "too-late-to-change"
    assert refusal(replace(MOVE, starts_at=NOW + timedelta(hours=3))) == "too-late-to-change"
    assert refusal(replace(CANCEL, starts_at=NOW)) == "rdv-started"
    assert refusal(replace(CANCEL, starts_at=NOW - timedelta(hours=1))) == "rdv-started"


def test_a_usager_only_cancels_as_excused_and_changes_nothing_else() -> None:
    assert refusal(replace(CANCEL, new_status="revoked")) == "usager-change"
    assert refusal(replace(CANCEL, moved=True)) == "usager-change"
    assert refusal(replace(MOVE, new_status="seen")) == "usager-change"
    assert refusal(replace(CANCEL, status="excused", new_status="unknown")) == "rdv-cancelled"
    assert refusal(replace(CANCEL, status="revoked")) == "rdv-cancelled"


@pytest.mark.parametrize(
    ("last_name", "typed"),
    [
        ("Durand", "dur"),
        ("Durand", "DUR"),
        ("Le Hénaff", "leh"),
        ("Le Hénaff", "L E H"),
        ("Éloi", "elo"),
        ("Éloi", "ÉLO"),
        ("Œuvray", "oeu"),
        ("D'Artagnan", "dar"),
        ("Ng", "ng"),
    ],
)
def test_the_three_letters_ignore_case_spaces_and_accents(last_name: str, typed: str) -> None:
    assert letters_match(last_name, typed)


@pytest.mark.parametrize(
    ("last_name", "typed"),
    [("Durand", "dura"), ("Durand", "du"), ("Durand", "dup"), ("Ng", "n"), ("", ""), ("Éloi", "")],
)
def test_other_letters_are_refused(last_name: str, typed: str) -> None:
    assert not letters_match(last_name, typed)


def test_the_letters_asked() -> None:
    assert name_letters("Le Hénaff") == "leh"

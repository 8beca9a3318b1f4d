"""The booking rules on plain data: each refusal, and what still passes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from booking.model import Busy, Motif, Organisation, PlageOccurrence, ts
from booking.public_holidays import holiday_intervals
from booking.rules import (
    BookingRefused,
    RdvContext,
    RdvWrite,
    Why,
    check_rdv,
    check_search_scope,
)

PARIS = ZoneInfo("Europe/Paris")
MOTIF = Motif(1, 1, "Accueil", duration_minutes=30, bookable_by="everyone", min_delay_minutes=60)
NOW = datetime(2027, 6, 1, 8, 0, tzinfo=PARIS)


def at(hour: int, minute: int = 0, day: int = 7) -> datetime:
    return datetime(2027, 6, day, hour, minute, tzinfo=PARIS)


PARIS_ORG = Organisation(1)


def context(busy: list[Busy] = (), organisation: Organisation = PARIS_ORG, **kw) -> RdvContext:
    plage = PlageOccurrence(1, 1, ts(at(9)), ts(at(12)), 1, frozenset({1}))
    return RdvContext(
        organisation=organisation,
        motif=kw.get("motif", MOTIF),
        plages=[plage],
        busy=list(busy),
        holidays=kw.get("holidays", []),
        now=kw.get("now", NOW),
    )


def rdv(start: datetime, minutes: int = 30, **kw) -> RdvWrite:
    fields = {"uid": "r", "agent_ids": (1,), "motif_id": 1, "lieu_id": 1, **kw}
    return RdvWrite(start=start, end=start + timedelta(minutes=minutes), **fields)


def refusal(write: RdvWrite, ctx: RdvContext) -> str:
    with pytest.raises(BookingRefused) as caught:
        check_rdv(write, ctx)
    assert caught.value.message  # always a sentence for the person
    return caught.value.code


def test_a_good_rdv_passes() -> None:
    check_rdv(rdv(at(9, 30)), context())


def test_each_rule_refuses_with_its_own_code() -> None:
    taken = Busy(1, ts(at(9, 30)), ts(at(10)), "rdv", "other")
    away = Busy(1, ts(at(10)), ts(at(11)), "absence", "a")
    assert refusal(rdv(at(9, 30), minutes=32), context()) == "wrong-duration"
    assert refusal(rdv(at(11, 45)), context()) == "outside-plage"
    assert refusal(rdv(at(9, 30)), context([taken])) == "slot-unavailable"
    assert refusal(rdv(at(10)), context([away])) == "agent-unavailable"
    assert refusal(rdv(at(9), lieu_id=None), context()) == "lieu-required"
    assert refusal(rdv(at(9)), context(motif=None)) == "unknown-motif"
    holidays = holiday_intervals(Organisation(1), at(0), at(23))
    assert holidays == []  # 7 June 2027 is worked; Pentecost Monday is 17 May
    monday = datetime(2027, 5, 17, 9, tzinfo=PARIS)
    plage = PlageOccurrence(1, 1, ts(monday), ts(monday + timedelta(hours=3)), 1, frozenset({1}))
    whit = holiday_intervals(Organisation(1), monday, monday + timedelta(hours=1))
    ctx = RdvContext(Organisation(1), MOTIF, [plage], [], whit, NOW)
    assert refusal(rdv(monday), ctx) == "holiday"


def test_an_agent_sets_the_duration_in_steps_of_five_minutes_inside_the_plage() -> None:
    for minutes in (5, 20, 45, 150):
        check_rdv(rdv(at(9, 30), minutes=minutes), context())
    with pytest.raises(BookingRefused) as caught:
        check_rdv(rdv(at(9, 30), minutes=47), context())
    assert (caught.value.code, caught.value.why) == ("wrong-duration", Why.RULE)
    assert "multiple of 5 minutes; 47 minutes is not one" in caught.value.message
    with pytest.raises(BookingRefused) as caught:
        check_rdv(rdv(at(11), minutes=90), context())
    assert caught.value.code == "outside-plage"
    assert "would end at 12:30, after its plage d'ouverture (until 12:00)" in caught.value.message


def test_usagers_always_get_the_motif_duration() -> None:
    ctx = context(now=at(8, day=1))
    check_rdv(rdv(at(9, 30), writer="usager"), ctx)
    for minutes in (25, 45):
        with pytest.raises(BookingRefused) as caught:
            check_rdv(rdv(at(9, 30), minutes=minutes, writer="usager"), ctx)
        assert caught.value.code == "wrong-duration"
        assert "lasts 30 minutes" in caught.value.message


def test_a_plage_without_motifs_takes_agents_bookings_only() -> None:
    bare = PlageOccurrence(1, 1, ts(at(9)), ts(at(12)), 1, None, frozenset({MOTIF.service_id}))
    ctx = RdvContext(PARIS_ORG, MOTIF, [bare], [], [], at(8, day=1))
    check_rdv(rdv(at(9, 30)), ctx)
    assert refusal(rdv(at(9, 30), writer="usager"), ctx) == "outside-plage"


def test_search_scope_own_services_unless_admin_or_secretariat() -> None:
    check_search_scope(MOTIF, "basic", frozenset({MOTIF.service_id}), False)
    check_search_scope(MOTIF, "admin", frozenset(), False)
    check_search_scope(MOTIF, "basic", frozenset({7}), True)
    with pytest.raises(BookingRefused) as caught:
        check_search_scope(MOTIF, "basic", frozenset({7}), False)
    assert (caught.value.code, caught.value.why) == ("out-of-scope", Why.FORBIDDEN)
    assert "Accueil" in caught.value.message


def test_the_slot_conflict_is_told_as_taken() -> None:
    taken = Busy(1, ts(at(9, 30)), ts(at(10)), "rdv", "other")
    with pytest.raises(BookingRefused) as caught:
        check_rdv(rdv(at(9, 30)), context([taken]))
    assert caught.value.why is Why.TAKEN


def test_overbooking_lets_agents_but_never_usagers_overlap() -> None:
    taken = Busy(1, ts(at(9, 30)), ts(at(10)), "rdv", "other")
    allowed = Organisation(1, overbooking_allowed=True)
    check_rdv(rdv(at(9, 30)), context([taken], allowed))
    assert refusal(rdv(at(9, 30), writer="usager"), context([taken], allowed)) == (
        "slot-unavailable"
    )


def test_usagers_book_only_open_slots_within_the_delays() -> None:
    check_rdv(rdv(at(9, 30), writer="usager"), context())
    # Off the grid (09:10), and too soon (min delay one hour from 08:30).
    assert refusal(rdv(at(9, 10), writer="usager"), context()) == "booking-delay"
    soon = context(now=at(8, 30))
    assert refusal(rdv(at(9), writer="usager"), soon) == "booking-delay"
    agents_only = Motif(1, 1, "Interne", duration_minutes=30, bookable_by="agents")
    assert refusal(rdv(at(9, 30), writer="usager"), context(motif=agents_only)) == (
        "motif-not-bookable"
    )


def test_a_cancelled_rdv_is_never_refused_for_its_time() -> None:
    taken = Busy(1, ts(at(9, 30)), ts(at(10)), "rdv", "other")
    check_rdv(rdv(at(9, 30), status="excused"), context([taken]))
    check_rdv(rdv(at(14), status="revoked"), context())
    assert refusal(rdv(at(9, 30), status="lost"), context()) == "invalid-status"


def test_public_check_sees_the_grid_of_the_whole_plage() -> None:
    # An RDV 09:00-09:20 earlier in the plage: the grid restarts at 09:20, so a
    # usager may take 09:50 but not 09:30 (the context holds the whole day).
    earlier = Busy(1, ts(at(9)), ts(at(9, 20)), "rdv", "early")
    ctx = context([earlier])
    check_rdv(rdv(at(9, 50), writer="usager"), ctx)
    assert refusal(rdv(at(9, 30), writer="usager"), ctx) == "booking-delay"


def test_codes_no_http_path_reaches_are_still_refused() -> None:
    """agent-required cannot come over CalDAV or the API (an RDV written into an
    agenda has its agent); booking-delay is above (usagers' writes)."""
    assert refusal(rdv(at(9), agent_ids=()), context()) == "agent-required"
    assert refusal(rdv(at(9), minutes=0), context()) == "invalid-time"
    blocking = Busy(1, ts(at(9)), ts(at(10)), "event", "dentist")
    assert refusal(rdv(at(9)), context([blocking])) == "agent-busy"

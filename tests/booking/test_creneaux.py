"""The créneaux engine on plain data (no database, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import icalendar

from booking.creneaux import Search, find_creneaux
from booking.model import Busy, Motif, Organisation, PlageOccurrence, holds_time, ts
from booking.public_holidays import holiday_intervals
from booking.recurrence import occurrences

PARIS = ZoneInfo("Europe/Paris")
MOTIF = Motif(id=1, service_id=1, name="Accueil", duration_minutes=60)


def local(text: str, zone: ZoneInfo = PARIS) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def at(text: str, zone: ZoneInfo = PARIS) -> int:
    return ts(local(text, zone))


def plage(start: str, end: str, agent: int = 1, order: int = 1, lieu: int = 1) -> PlageOccurrence:
    return PlageOccurrence(agent, order, at(start), at(end), lieu, frozenset({MOTIF.id}))


def starts(creneaux, zone: ZoneInfo = PARIS) -> list[str]:
    return [c.start.astimezone(zone).strftime("%Y-%m-%d %H:%M") for c in creneaux]


def search(first: str, last: str, now: str, **kw) -> Search:
    return Search(motif=MOTIF, start=local(first), end=local(last), now=local(now), **kw)


def weekly_plage_occurrences(zone: str, first: str, last: str) -> list[PlageOccurrence]:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:p1\r\n"
        f"DTSTART;TZID={zone}:20270104T090000\r\nDTEND;TZID={zone}:20270104T120000\r\n"
        "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    cal = icalendar.Calendar.from_ical(text)
    tz = ZoneInfo(zone)
    window = (local(first, tz), local(last, tz))
    return [
        PlageOccurrence(1, 1, ts(s), ts(e), 1, frozenset({MOTIF.id}))
        for s, e in occurrences(cal, *window, zone).spans
    ]


def test_five_minute_rounding_of_an_interval_already_begun() -> None:
    plages = [
        plage("2027-06-07T09:00", "2027-06-07T12:00"),
        plage("2027-06-07T14:00", "2027-06-07T17:00"),
        plage("2027-06-07T18:00", "2027-06-07T20:00"),
    ]
    found = find_creneaux(
        search("2027-06-07T00:00", "2027-06-08T00:00", "2027-06-07T15:03"), plages, []
    )
    assert starts(found) == ["2027-06-07 15:05", "2027-06-07 18:00", "2027-06-07 19:00"]


def test_the_grid_restarts_at_the_end_of_an_rdv() -> None:
    rdv = Busy(1, at("2027-06-07T09:20"), at("2027-06-07T09:50"), "rdv")
    found = find_creneaux(
        search("2027-06-07T00:00", "2027-06-08T00:00", "2027-06-01T08:00"),
        [plage("2027-06-07T09:00", "2027-06-07T12:00")],
        [rdv],
    )
    assert starts(found) == ["2027-06-07 09:50", "2027-06-07 10:50"]


def test_an_absence_splits_a_plage() -> None:
    absence = Busy(1, at("2027-06-07T10:00"), at("2027-06-07T11:00"), "absence")
    found = find_creneaux(
        search("2027-06-07T00:00", "2027-06-08T00:00", "2027-06-01T08:00"),
        [plage("2027-06-07T08:00", "2027-06-07T13:00")],
        [absence],
    )
    assert starts(found) == [
        "2027-06-07 08:00",
        "2027-06-07 09:00",
        "2027-06-07 11:00",
        "2027-06-07 12:00",
    ]


def test_multi_day_absence_removes_whole_days() -> None:
    absence = Busy(1, at("2027-06-07T00:00"), at("2027-06-09T00:00"), "absence")
    plages = [plage(f"2027-06-0{d}T09:00", f"2027-06-0{d}T10:00") for d in (7, 8, 9)]
    found = find_creneaux(
        search("2027-06-07T00:00", "2027-06-10T00:00", "2027-06-01T08:00"), plages, [absence]
    )
    assert starts(found) == ["2027-06-09 09:00"]


def test_an_rdv_of_another_organisation_blocks_the_agent() -> None:
    # Busy time is the agent's, whatever organisation the RDV belongs to.
    elsewhere = Busy(1, at("2027-06-07T09:00"), at("2027-06-07T10:00"), "rdv", uid="org2")
    found = find_creneaux(
        search("2027-06-07T00:00", "2027-06-08T00:00", "2027-06-01T08:00"),
        [plage("2027-06-07T09:00", "2027-06-07T11:00")],
        [elsewhere],
    )
    assert starts(found) == ["2027-06-07 10:00"]


def test_noshow_still_blocks_and_excused_frees_the_slot() -> None:
    assert holds_time("noshow") and holds_time("seen") and holds_time("unknown")
    assert not holds_time("excused") and not holds_time("revoked")
    statuses = {"noshow": "2027-06-07T09:00", "excused": "2027-06-07T10:00"}
    busy = [
        Busy(1, at(when), at(when) + 3600, "rdv")
        for status, when in statuses.items()
        if holds_time(status)
    ]
    found = find_creneaux(
        search("2027-06-07T00:00", "2027-06-08T00:00", "2027-06-01T08:00"),
        [plage("2027-06-07T09:00", "2027-06-07T11:00")],
        busy,
    )
    assert starts(found) == ["2027-06-07 10:00"]


def test_min_and_max_delays_for_public_booking() -> None:
    motif = Motif(
        2, 1, "Court", duration_minutes=30, min_delay_minutes=120, max_delay_minutes=3 * 1440
    )
    plages = [
        PlageOccurrence(
            1,
            1,
            at(f"2027-06-{d:02d}T09:00"),
            at(f"2027-06-{d:02d}T10:00"),
            1,
            frozenset({2}),
            frozenset({1}),
        )
        for d in range(7, 12)
    ]
    s = Search(
        motif,
        local("2027-06-07T00:00"),
        local("2027-06-12T00:00"),
        local("2027-06-07T07:40"),
        public=True,
    )
    found = find_creneaux(s, plages, [])
    # now + 2 h = 09:40: the 09:00 interval has begun and rounds up to 09:40 (too late to fit);
    # now + 3 days = 06-10 07:40: nothing starting later.
    assert starts(found) == [
        "2027-06-08 09:00",
        "2027-06-08 09:30",
        "2027-06-09 09:00",
        "2027-06-09 09:30",
    ]
    # The same search for an agent ignores the delays.
    agent_view = find_creneaux(Search(motif, s.start, s.end, s.now), plages, [])
    assert len(agent_view) == 10


def test_a_plage_without_motifs_is_offered_to_agents_only() -> None:
    """A plage a plain calendar client wrote (no X-CALSERVER-MOTIF) offers
    the motifs of the agent's services to agents; never online."""
    motif = Motif(2, 1, "Accueil", bookable_by="everyone")
    bare = PlageOccurrence(
        1, 1, at("2027-06-07T09:00"), at("2027-06-07T10:00"), 1, None, frozenset({1})
    )
    window = (local("2027-06-07T00:00"), local("2027-06-08T00:00"), local("2027-06-01T08:00"))
    for_agents = find_creneaux(Search(motif, *window), [bare], [])
    assert starts(for_agents) == ["2027-06-07 09:00", "2027-06-07 09:30"]
    assert find_creneaux(Search(motif, *window, public=True), [bare], []) == []
    named = bare._replace(motif_ids=frozenset({2}))
    assert len(find_creneaux(Search(motif, *window, public=True), [named], [])) == 2
    other_service = bare._replace(agent_service_ids=frozenset({9}))
    assert find_creneaux(Search(motif, *window), [other_service], []) == []


def test_both_dst_switches_keep_a_0900_plage_at_0900() -> None:
    occs = weekly_plage_occurrences("Europe/Paris", "2027-03-24T00:00", "2027-11-06T00:00")
    busy: list[Busy] = []
    found = find_creneaux(
        search("2027-03-24T00:00", "2027-11-06T00:00", "2027-03-01T08:00"), occs, busy
    )
    firsts = {
        c.start.astimezone(PARIS).date(): c.start
        for c in found
        if c.start.astimezone(PARIS).hour == 9
    }
    before_spring = firsts[datetime(2027, 3, 26).date()]
    after_spring = firsts[datetime(2027, 3, 29).date()]
    before_autumn = firsts[datetime(2027, 10, 29).date()]
    after_autumn = firsts[datetime(2027, 11, 2).date()]
    for moment in (before_spring, after_spring, before_autumn, after_autumn):
        assert moment.astimezone(PARIS).strftime("%H:%M") == "09:00"
    # ...which is a different UTC hour on each side of each switch.
    assert [
        m.astimezone(UTC).hour for m in (before_spring, after_spring, before_autumn, after_autumn)
    ] == [8, 7, 7, 8]


def test_overseas_organisation_uses_its_zone_and_holidays() -> None:
    cayenne = ZoneInfo("America/Cayenne")
    org = Organisation(1, time_zone="America/Cayenne", holiday_zone="973")
    occs = weekly_plage_occurrences("America/Cayenne", "2027-06-09T00:00", "2027-06-12T00:00")
    window = (local("2027-06-09T00:00", cayenne), local("2027-06-12T00:00", cayenne))
    holidays = holiday_intervals(org, *window)
    s = Search(MOTIF, *window, now=local("2027-06-01T08:00", cayenne))
    found = find_creneaux(s, occs, [], holidays)
    # 10 June is the abolition of slavery in Guyane.
    assert starts(found, cayenne) == [
        "2027-06-09 09:00",
        "2027-06-09 10:00",
        "2027-06-09 11:00",
        "2027-06-11 09:00",
        "2027-06-11 10:00",
        "2027-06-11 11:00",
    ]
    assert found[0].start.astimezone(UTC).hour == 12


def test_good_friday_is_off_in_moselle_but_not_in_paris() -> None:
    day = ("2027-03-26T00:00", "2027-03-27T00:00")
    plages = [plage("2027-03-26T09:00", "2027-03-26T10:00")]
    s = search(*day, "2027-03-01T08:00")
    moselle = holiday_intervals(Organisation(1, holiday_zone="57"), s.start, s.end)
    paris = holiday_intervals(Organisation(2), s.start, s.end)
    assert find_creneaux(s, plages, [], moselle) == []
    assert starts(find_creneaux(s, plages, [], paris)) == ["2027-03-26 09:00"]


def test_pentecost_monday_follows_the_organisation_setting() -> None:
    plages = [plage("2027-05-17T09:00", "2027-05-17T10:00")]
    s = search("2027-05-17T00:00", "2027-05-18T00:00", "2027-05-01T08:00")
    off = holiday_intervals(Organisation(1, pentecost_worked=False), s.start, s.end)
    worked = holiday_intervals(Organisation(1, pentecost_worked=True), s.start, s.end)
    assert find_creneaux(s, plages, [], off) == []
    assert starts(find_creneaux(s, plages, [], worked)) == ["2027-05-17 09:00"]


def test_first_registered_plage_wins_a_shared_slot() -> None:
    plages = [
        plage("2027-06-07T09:00", "2027-06-07T10:00", agent=7, order=20),
        plage("2027-06-07T09:00", "2027-06-07T10:00", agent=3, order=10),
    ]
    found = find_creneaux(
        search("2027-06-07T00:00", "2027-06-08T00:00", "2027-06-01T08:00"), plages, []
    )
    assert len(found) == 1
    assert found[0].agent_id == 3 and found[0].agent_ids == (3, 7)


def test_public_office_motif_needs_the_plage_lieu() -> None:
    at_two = PlageOccurrence(
        1, 1, at("2027-06-07T09:00"), at("2027-06-07T10:00"), 2, frozenset({1})
    )
    s = search("2027-06-07T00:00", "2027-06-08T00:00", "2027-06-01T08:00", lieu_id=1)
    assert find_creneaux(s, [at_two], []) == []
    phone = Motif(1, 1, "Tél", duration_minutes=60, location_type="phone")
    s_phone = Search(phone, s.start, s.end, s.now, lieu_id=1)
    assert len(find_creneaux(s_phone, [at_two], [])) == 1


def test_plage_without_motifs_offers_the_agent_services_motifs() -> None:
    open_plage = PlageOccurrence(
        1, 1, at("2027-06-07T09:00"), at("2027-06-07T10:00"), 1, None, frozenset({1})
    )
    other_service = Motif(5, 2, "Autre", duration_minutes=60)
    s = search("2027-06-07T00:00", "2027-06-08T00:00", "2027-06-01T08:00")
    assert len(find_creneaux(s, [open_plage], [])) == 1
    assert find_creneaux(Search(other_service, s.start, s.end, s.now), [open_plage], []) == []


def test_public_delay_filters_the_grid_it_does_not_shift_it() -> None:
    motif = Motif(2, 1, "Court", duration_minutes=30, min_delay_minutes=30)
    plages = [
        PlageOccurrence(
            1, 1, at("2027-06-07T09:00"), at("2027-06-07T12:00"), 1, frozenset({2}), frozenset({1})
        )
    ]
    s = Search(
        motif,
        local("2027-06-07T00:00"),
        local("2027-06-08T00:00"),
        local("2027-06-07T08:45"),
        public=True,
    )
    assert starts(find_creneaux(s, plages, []))[:2] == ["2027-06-07 09:30", "2027-06-07 10:00"]

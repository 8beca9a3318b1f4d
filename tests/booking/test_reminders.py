"""The reminder day rule on plain data (fixed dates: ``now`` is passed in)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from booking.model import Organisation
from booking.reminders import reminder_moment

PARIS = ZoneInfo("Europe/Paris")
METROPOLE = Organisation(1)
MOSELLE = Organisation(2, holiday_zone="57")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _at(y: int, m: int, d: int, h: int = 10, zone: ZoneInfo = PARIS) -> datetime:
    return datetime(y, m, d, h, 30, tzinfo=zone)


def _local(moment: datetime | None, zone: ZoneInfo = PARIS) -> datetime | None:
    return None if moment is None else moment.astimezone(zone)


def test_an_ordinary_day_is_exactly_48_hours_before() -> None:
    # RDV Thursday 12 March 2026 10:30 -> Tuesday 10 March 10:30.
    assert _local(reminder_moment(_at(2026, 3, 12), METROPOLE, LONG_AGO)) == _at(2026, 3, 10)


def test_a_sunday_mark_moves_to_saturday_same_clock_time() -> None:
    # RDV Tuesday 17 March 2026 -> mark Sunday 15 -> Saturday 14 March.
    assert _local(reminder_moment(_at(2026, 3, 17), METROPOLE, LONG_AGO)) == _at(2026, 3, 14)


def test_first_of_may_moves_to_the_day_before() -> None:
    # RDV Monday 3 May 2027 -> mark Saturday 1 May (holiday) -> Friday 30 April.
    assert _local(reminder_moment(_at(2027, 5, 3), METROPOLE, LONG_AGO)) == _at(2027, 4, 30)


def test_easter_monday_then_sunday_go_back_to_saturday() -> None:
    # Easter Monday 6 April 2026: RDV Wednesday 8 April -> mark Monday 6 (holiday)
    # -> Sunday 5 -> Saturday 4 April.
    assert _local(reminder_moment(_at(2026, 4, 8), METROPOLE, LONG_AGO)) == _at(2026, 4, 4)


def test_good_friday_counts_in_moselle_only() -> None:
    # Good Friday 3 April 2026: RDV Sunday 5 April 14:30 -> mark Friday 3 April.
    rdv = _at(2026, 4, 5, 14)
    assert _local(reminder_moment(rdv, METROPOLE, LONG_AGO)) == _at(2026, 4, 3, 14)
    assert _local(reminder_moment(rdv, MOSELLE, LONG_AGO)) == _at(2026, 4, 2, 14)


def test_the_clock_time_is_kept_across_a_dst_switch() -> None:
    # RDV Tuesday 31 March 2026 09:00 (CEST) -> mark Sunday 29 March (switch day)
    # -> Saturday 28 March 09:00 (CET).
    moment = _local(reminder_moment(_at(2026, 3, 31, 9), METROPOLE, LONG_AGO))
    assert moment is not None and (moment.day, moment.hour, moment.minute) == (28, 9, 30)


def test_the_organisations_zone_decides_the_day() -> None:
    reunion = ZoneInfo("Indian/Reunion")
    organisation = Organisation(3, time_zone="Indian/Reunion", holiday_zone="974")
    # 20 December is a holiday in La Réunion: RDV Tuesday 22 Dec 2026 -> Saturday 19.
    moment = reminder_moment(_at(2026, 12, 22, 10, reunion), organisation, LONG_AGO)
    assert _local(moment, reunion) == _at(2026, 12, 19, 10, reunion)


def test_no_reminder_when_the_moment_has_passed_at_booking() -> None:
    rdv = _at(2026, 3, 12)
    assert reminder_moment(rdv, METROPOLE, _at(2026, 3, 10, 11)) is None  # booked 47 h ahead
    assert reminder_moment(rdv, METROPOLE, _at(2026, 3, 10, 9)) is not None
    # The mark fell on a Sunday: the Saturday moment is what must still be ahead.
    assert reminder_moment(_at(2026, 3, 17), METROPOLE, _at(2026, 3, 14, 11)) is None

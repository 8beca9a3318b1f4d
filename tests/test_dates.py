"""The test calendar helpers pick weeks where a weekday booking cannot meet a
public holiday or a DST switch, whatever the day the suite runs."""

from __future__ import annotations

from datetime import date, timedelta

from tests.dates import holiday_on_a_weekday, ordinary_week, today, working_monday


def test_weeks_with_a_holiday_or_a_dst_switch_are_not_ordinary() -> None:
    assert ordinary_week(date(2027, 3, 1))
    assert not ordinary_week(date(2027, 3, 22))  # summer time from Sunday 28 March
    assert not ordinary_week(date(2027, 3, 29))  # Easter Monday
    assert not ordinary_week(date(2027, 5, 17))  # Pentecost Monday
    assert not ordinary_week(date(2027, 10, 25))  # winter time from Sunday 31 October


def test_working_monday_is_ahead_and_ordinary() -> None:
    first = working_monday(weeks=2)
    assert first.weekday() == 0 and first > today() + timedelta(days=7)
    assert ordinary_week(first) and ordinary_week(first + timedelta(weeks=1))


def test_a_holiday_on_a_weekday_after_a_day() -> None:
    assert holiday_on_a_weekday(date(2027, 3, 1)) == date(2027, 3, 29)
    assert holiday_on_a_weekday(date(2027, 4, 30)) == date(2027, 5, 6)  # 1 and 8 May: Saturdays

"""UK civil time without a zone database."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from hub.reference.uktime import bst_bounds, from_uk_local, uk_date, uk_offset


@pytest.mark.parametrize(
    ("year", "start", "end"),
    [(2024, date(2024, 3, 31), date(2024, 10, 27)), (2026, date(2026, 3, 29), date(2026, 10, 25))],
)
def test_summer_time_runs_between_the_last_sundays_of_march_and_october(
    year: int, start: date, end: date
) -> None:
    s, e = bst_bounds(year)
    assert (s.date(), s.hour, e.date(), e.hour) == (start, 1, end, 1)


def test_winter_is_gmt_and_summer_is_one_hour_ahead() -> None:
    assert uk_offset(datetime(2026, 1, 15, tzinfo=UTC)).total_seconds() == 0
    assert uk_offset(datetime(2026, 7, 15, tzinfo=UTC)).total_seconds() == 3600


def test_late_utc_evening_in_summer_is_the_next_uk_day() -> None:
    assert uk_date(datetime(2026, 7, 15, 23, 30, tzinfo=UTC)) == date(2026, 7, 16)
    assert uk_date(datetime(2026, 1, 15, 23, 30, tzinfo=UTC)) == date(2026, 1, 15)


def test_local_midnight_maps_back_to_the_right_instant() -> None:
    assert from_uk_local(datetime(2026, 7, 1)) == datetime(2026, 6, 30, 23, tzinfo=UTC)
    assert from_uk_local(datetime(2026, 12, 1)) == datetime(2026, 12, 1, tzinfo=UTC)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        uk_date(datetime(2026, 1, 1))

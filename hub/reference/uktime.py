"""UK civil time from UTC instants, without a time-zone database.

Decides: the UK local date and offset of an instant (GMT, or BST from 01:00 UTC on the last
Sunday of March to 01:00 UTC on the last Sunday of October, the rule since 1996).
Must never: read the clock or the system's zone files.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

BST_OFFSET = timedelta(hours=1)


def _last_sunday(year: int, month: int) -> date:
    # last day of month, stepped back to Sunday (weekday 6)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 6) % 7)


@lru_cache(maxsize=256)
def bst_bounds(year: int) -> tuple[datetime, datetime]:
    """The UTC instants when British Summer Time starts and ends in ``year``."""
    start = datetime.combine(_last_sunday(year, 3), datetime.min.time(), UTC) + timedelta(hours=1)
    end = datetime.combine(_last_sunday(year, 10), datetime.min.time(), UTC) + timedelta(hours=1)
    return start, end


def _as_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("instants must carry a time zone (UTC)")
    return instant.astimezone(UTC)


def uk_offset(instant: datetime) -> timedelta:
    """UK local time minus UTC at ``instant``: 0 in winter, 1 hour in summer."""
    utc = _as_utc(instant)
    start, end = bst_bounds(utc.year)
    return BST_OFFSET if start <= utc < end else timedelta(0)


def to_uk_local(instant: datetime) -> datetime:
    """The naive UK wall-clock time of ``instant``."""
    utc = _as_utc(instant)
    return (utc + uk_offset(utc)).replace(tzinfo=None)


def uk_date(instant: datetime) -> date:
    """The UK calendar day an instant falls on (registration days are UK days)."""
    return to_uk_local(instant).date()


def from_uk_local(local: datetime) -> datetime:
    """The UTC instant of a naive UK wall-clock time.

    In the spring gap (01:00-02:00 local does not exist) the time is taken as GMT, i.e. moved
    an hour later in wall-clock terms; in the autumn overlap the first (BST) instant is chosen.
    """
    if local.tzinfo is not None:
        raise ValueError("expected a naive UK wall-clock time")
    as_bst = local.replace(tzinfo=UTC) - BST_OFFSET
    if uk_offset(as_bst) == BST_OFFSET:
        return as_bst
    return local.replace(tzinfo=UTC)

"""DCC schedule arithmetic: on which UK day and at which UTC instant each firing of a schedule
is nominally due, its deterministic offset, and its concrete service parameters (the rules are
in ``hub.flows.schedules``).

Decides: occurrence days, nominal instants across clock changes, offsets, firing parameters.
Must never: read a clock or hold state (pure functions of a spec, an index and given instants).
"""

from __future__ import annotations

import calendar
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache

from hub.reference.service_params import Kind, schema_for
from hub.reference.standard import Instant, Value
from hub.reference.uktime import from_uk_local, uk_date

WINDOW_PARAM = "window_s"
"""The parameter that replaces ``start`` and ``end`` for time-range services."""
RANGE_PARAMS = ("start", "end")
"""The parameters each firing of a time-range service derives from its nominal instant."""


class Recurrence(StrEnum):
    """How often a schedule fires."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class Weekday(StrEnum):
    """A day of the week, in 5.1's spelling; ``number`` matches ``date.weekday()``."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday 0 .. Sunday 6."""
        return _WEEKDAY_NUMBERS[self]


_WEEKDAY_NUMBERS = {day: n for n, day in enumerate(Weekday)}


@lru_cache(maxsize=256)
def takes_range(service_code: str) -> bool:
    """True when the service's parameters include an instant range ``start`` .. ``end``."""
    schema = schema_for(service_code)
    if schema is None:
        return False
    kinds = {p.name: p.kind for p in schema.params}
    return all(kinds.get(name) is Kind.INSTANT for name in RANGE_PARAMS)


# ---------------------------------------------------------------------------- the spec


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A validated 5.1 request: what to run, on which device, and when."""

    service: str
    """DUIS service reference variant to run, e.g. ``4.8.1``."""
    device_id: str
    """Target device EUI-64."""
    recurrence: Recurrence
    """Daily, weekly or monthly."""
    start_date: date
    """First UK civil day a firing may fall on."""
    time_of_day: time
    """UK local wall-clock time of each firing (minutes; no seconds)."""
    day_of_week: Weekday | None = None
    """The day of weekly firings; None for other recurrences."""
    day_of_month: int | None = None
    """The day of monthly firings (1-31, clamped to the month's last day); else None."""
    end_date: date | None = None
    """Last UK civil day a firing may fall on (inclusive); None runs until deleted."""
    params: Mapping[str, Value] = field(default_factory=dict)
    """The service's parameters as given (read-only; schedules may share one copy);
    ``window_s`` in place of a time range."""

    def __post_init__(self) -> None:
        weekly = self.recurrence is Recurrence.WEEKLY
        monthly = self.recurrence is Recurrence.MONTHLY
        if weekly != (self.day_of_week is not None):
            raise ValueError("day_of_week is given exactly for weekly schedules")
        if monthly != (self.day_of_month is not None):
            raise ValueError("day_of_month is given exactly for monthly schedules")
        if self.day_of_month is not None and not 1 <= self.day_of_month <= 31:
            raise ValueError("day_of_month must be 1-31")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        if self.time_of_day.second or self.time_of_day.microsecond or self.time_of_day.tzinfo:
            raise ValueError("time_of_day is a naive HH:MM")

    def to_params(self) -> dict[str, Value]:
        """The 5.1 parameter map this spec was parsed from (``parse_create`` reads it back)."""
        out: dict[str, Value] = {
            "service": self.service,
            "device_id": self.device_id,
            "recurrence": self.recurrence.value,
            "start_date": self.start_date.isoformat(),
            "time_of_day": self.time_of_day.strftime("%H:%M"),
        }
        if self.day_of_week is not None:
            out["day_of_week"] = self.day_of_week.value
        if self.day_of_month is not None:
            out["day_of_month"] = self.day_of_month
        if self.end_date is not None:
            out["end_date"] = self.end_date.isoformat()
        if self.params:
            out["params"] = dict(self.params)
        return out


# ---------------------------------------------------------------------------- arithmetic


def _month_number(day: date) -> int:
    return day.year * 12 + day.month - 1


def _day_in_month(month_number: int, day_of_month: int) -> date:
    year, month0 = divmod(month_number, 12)
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day_of_month, last))


def _first_weekly(spec: ScheduleSpec) -> date:
    assert spec.day_of_week is not None
    ahead = (spec.day_of_week.number - spec.start_date.weekday()) % 7
    return spec.start_date + timedelta(days=ahead)


def _first_month(spec: ScheduleSpec) -> int:
    assert spec.day_of_month is not None
    month = _month_number(spec.start_date)
    return month if _day_in_month(month, spec.day_of_month) >= spec.start_date else month + 1


def occurrence_date(spec: ScheduleSpec, index: int) -> date:
    """The UK civil day of firing ``index`` (0 is the first on or after ``start_date``);
    ``end_date`` is not applied."""
    if spec.recurrence is Recurrence.DAILY:
        return spec.start_date + timedelta(days=index)
    if spec.recurrence is Recurrence.WEEKLY:
        return _first_weekly(spec) + timedelta(days=7 * index)
    assert spec.day_of_month is not None
    return _day_in_month(_first_month(spec) + index, spec.day_of_month)


def _first_index_on_or_after(spec: ScheduleSpec, day: date) -> int:
    """The smallest index >= 0 whose occurrence falls on ``day`` or later."""
    if spec.recurrence is Recurrence.DAILY:
        return max(0, (day - spec.start_date).days)
    if spec.recurrence is Recurrence.WEEKLY:
        return max(0, -(-(day - _first_weekly(spec)).days // 7))
    assert spec.day_of_month is not None
    month = _month_number(day)
    if _day_in_month(month, spec.day_of_month) < day:
        month += 1
    return max(0, month - _first_month(spec))


def last_index(spec: ScheduleSpec) -> int | None:
    """The index of the last firing (``-1`` when there is none); None without an end date."""
    if spec.end_date is None:
        return None
    return _first_index_on_or_after(spec, spec.end_date + timedelta(days=1)) - 1


@lru_cache(maxsize=8_192)
def _uk_wall_clock_to_instant(day: date, at: time) -> Instant:
    # memoised: a million daily schedules share a few hundred (day, time) pairs
    return from_uk_local(datetime.combine(day, at)).timestamp()


def nominal_at(spec: ScheduleSpec, index: int) -> Instant:
    """The UTC instant of firing ``index``: ``time_of_day`` on its UK day (module rules for
    the spring gap and the autumn overlap)."""
    return _uk_wall_clock_to_instant(occurrence_date(spec, index), spec.time_of_day)


def first_index_after(spec: ScheduleSpec, after: Instant) -> int | None:
    """The index of the first firing whose nominal instant is strictly after ``after``, or
    None when the schedule has no firing left."""
    n = _first_index_on_or_after(spec, uk_date(datetime.fromtimestamp(after, UTC)))
    if nominal_at(spec, n) <= after:
        n += 1  # later the same UK day; the next occurrence is on a later day
    last = last_index(spec)
    return None if last is not None and n > last else n


def next_nominal(spec: ScheduleSpec, after: Instant) -> Instant | None:
    """The nominal UTC instant of the next firing strictly after ``after``, or None."""
    n = first_index_after(spec, after)
    return None if n is None else nominal_at(spec, n)


def offset(seed: int, schedule_id: str, index: int, window_s: float) -> float:
    """A firing's delay after its nominal instant: uniform in ``[0, window_s)``, determined by
    ``(seed, schedule_id, index)`` alone (a keyed hash, not a random generator's state)."""
    if window_s <= 0:
        return 0.0
    digest = hashlib.blake2b(
        f"{seed}|{schedule_id}|{index}".encode(), digest_size=8, person=b"dcc-sched"
    ).digest()
    fraction = (int.from_bytes(digest, "big") >> 11) / float(1 << 53)  # 53 bits: [0, 1)
    delay = fraction * window_s
    return delay if delay < window_s else math.nextafter(window_s, 0.0)


def _range_params(params: Mapping[str, Value], nominal: Instant) -> dict[str, Value]:
    window = params[WINDOW_PARAM]
    assert isinstance(window, int | float)
    out = {k: v for k, v in params.items() if k != WINDOW_PARAM}
    out["start"] = nominal - float(window)
    out["end"] = nominal
    return out


def firing_params(spec: ScheduleSpec, nominal: Instant) -> dict[str, Value]:
    """The concrete service parameters of a firing with this nominal instant: the range
    ``[nominal - window_s, nominal)`` for time-range services, else the params as given."""
    if takes_range(spec.service):
        return _range_params(spec.params, nominal)
    return dict(spec.params)

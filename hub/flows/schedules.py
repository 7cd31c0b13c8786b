"""DCC schedules: 5.1 Create Schedule, 5.2 Read Schedule, 5.3 Delete Schedule, as pure state.

Decides: whether a 5.1, 5.2 or 5.3 parameter map is valid (every problem, in words a person can
act on); on which UK day and at which UTC instant each firing of a schedule is nominally due;
when it actually runs (nominal plus a deterministic pseudo-random offset, so a million daily
reads do not start in the same second); the concrete service parameters of each firing; which
firings are due at ``now``; who may read and delete a schedule; which schedules stop on change
of supplier; and how a schedule is written to plain values and read back after a restart.
Must never: read a clock (``now`` is always passed in), open a file or a socket, start a
thread, decide access to a device (``hub.policies.access`` does, when the schedule is created and again
for each firing at its execution time), or amend a schedule (DCC schedules cannot be amended:
delete one and create another).

5.1 parameters (``CREATE_PARAMS`` documents each; ``validate_create`` checks them):
``service`` (a code the catalogue marks schedulable, in scope), ``device_id`` (16 upper-case hex
digits), ``recurrence`` (``daily`` | ``weekly`` | ``monthly``), ``start_date`` (``YYYY-MM-DD``, a
UK civil date), ``time_of_day`` (``HH:MM``, UK local wall-clock time), ``day_of_week`` (weekly
only: ``mon`` .. ``sun``), ``day_of_month`` (monthly only: 1-31), optional ``end_date``
(``YYYY-MM-DD``, inclusive) and optional ``params`` (the scheduled service's own parameters).
5.2 takes an optional ``schedule_id`` (else all the user's schedules); 5.3 a ``schedule_id``.

Rules:

* **Occurrences.** Firing index 0, 1, 2, ... is the n-th occurrence on or after ``start_date``:
  every UK day (daily), every ``day_of_week`` (weekly), or ``day_of_month`` of every month
  (monthly), where a month without that day fires on its last day (31 fires on 28 or 29
  February and on 30 April; 30 fires on 28 or 29 February). ``end_date`` is the last UK day
  a firing may fall on.
* **Nominal instant.** ``time_of_day`` on the occurrence's UK day, turned into UTC by
  ``hub.reference.uktime.from_uk_local``. Wall-clock time is kept across clock changes: a daily 00:30
  schedule fires at 00:30 GMT in winter and 00:30 BST in summer (its UTC instant moves by an
  hour). A time in the spring gap (01:00-01:59 on the last Sunday of March does not exist)
  fires one hour later by the wall clock: 01:30 fires at 02:30 BST, which is 01:30 UTC. A time
  in the autumn overlap (01:00-01:59 on the last Sunday of October happens twice) fires once,
  at its first (BST) occurrence: 01:30 fires at 01:30 BST, which is 00:30 UTC.
* **Offset.** A firing runs at ``fire_at = nominal_at + offset(seed, schedule_id, index,
  window_s)``, uniform in ``[0, window_s)`` and the same on every run and every driver. The
  window (default ``DEFAULT_OFFSET_WINDOW_S``) is at most ``MAX_OFFSET_WINDOW_S`` (12 hours),
  less than the shortest gap between two occurrences (23 hours), so a schedule's firings run
  in index order.
* **Time ranges.** Services whose parameters are a time range (``start``, ``end``: profile
  reads 4.8.x, daily logs 4.6.x, 4.14, 4.17) are scheduled with ``params.window_s`` instead:
  each firing asks for ``[nominal_at - window_s, nominal_at)``. The range hangs on the nominal
  instant, not on ``fire_at``, so the random offset never changes what is read. ``window_s``
  is a fixed number of seconds: a lookback of 86,400 s repeats or misses an hour next to a
  clock change (those days are 23 or 25 hours long); ask for a longer window to overlap.
* **First firing.** A new schedule's first firing is the first occurrence whose nominal instant
  is strictly after the creation time; a ``start_date`` in the past simply starts from there.
  A schedule with no firing left is refused.
* **Missed firings.** ``due(now)`` fires each schedule at most once per call: the latest
  firing whose ``fire_at`` has passed; older missed ones are skipped and counted in
  ``Firing.skipped``. After an outage a daily schedule fires once on restart, not once per
  missed day. A driver that calls ``due`` at ``next_due()`` never skips.
* **Restart.** ``Schedule.to_record`` holds the next firing index. ``due`` advances it; the
  driver persists the advanced record (or deletes it when ``Firing.final``) before dispatching
  the firing, so a crash in between can lose at most that firing, never repeat it. A firing's
  ``request_id`` (``"<schedule id>:<index>"``, valid on the wire) is unique, for idempotency.
* **Ids.** ``"S"`` and a decimal counter from 1. The counter (``Scheduler.next_number``) must be
  persisted and given to ``restore`` so that ids of deleted schedules are never reused.
* **Ownership.** A user reads only its own schedules (another user's id reads as unknown);
  only the creating user may delete a schedule; ``stop_for_device`` ends the losing supplier's
  schedules for a meter on change of supplier.
"""

from __future__ import annotations

import calendar
import hashlib
import heapq
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import TypeVar, cast

from hub.reference.catalogue import CATALOGUE, Catalogue
from hub.reference.roles import Role
from hub.reference.service_params import EXAMPLE_NOW, Kind, schema_for, validate_params
from hub.reference.standard import Instant, Value
from hub.reference.uktime import from_uk_local, uk_date

CREATE_SERVICE = "5.1"
READ_SERVICE = "5.2"
DELETE_SERVICE = "5.3"
DEFAULT_OFFSET_WINDOW_S = 3_600.0
"""Default width of the random offset window, seconds."""
MAX_OFFSET_WINDOW_S = 12 * 3_600.0
"""Widest offset window: less than the shortest gap between occurrences (23 hours)."""
WINDOW_PARAM = "window_s"
"""The parameter that replaces ``start`` and ``end`` for time-range services."""
RANGE_PARAMS = ("start", "end")
"""The parameters each firing of a time-range service derives from its nominal instant."""
RECORD_VERSION = 1
"""Version of the plain-value form written by ``Schedule.to_record``."""
MIN_YEAR = 2000
MAX_YEAR = 2099

_EUI64 = re.compile(r"[0-9A-F]{16}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_SCHEDULE_ID = re.compile(r"S[1-9][0-9]{0,17}")


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


class ScheduleError(ValueError):
    """A schedule request or record that cannot be accepted; ``problems`` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        """Every problem found, each in words a person can act on."""


class DeleteOutcome(StrEnum):
    """What a 5.3 Delete Schedule did."""

    DELETED = "deleted"
    UNKNOWN_SCHEDULE = "unknown schedule"
    NOT_OWNER = "not owner"


# ---------------------------------------------------------------------------- the schema


@dataclass(frozen=True, slots=True)
class RequestParam:
    """One documented parameter of 5.1, 5.2 or 5.3."""

    name: str
    """The key in the request's parameter map."""
    required: str
    """``yes``, ``no``, or the condition under which it is required."""
    doc: str
    """What it means and the form it takes."""
    example: Value
    """A valid value."""


CREATE_PARAMS: tuple[RequestParam, ...] = (
    RequestParam(
        "service",
        "yes",
        "the service to run: a code the catalogue marks DCC-schedulable and in scope",
        "4.8.1",
    ),
    RequestParam("device_id", "yes", "target device EUI-64, 16 upper-case hex digits", ""),
    RequestParam("recurrence", "yes", "daily | weekly | monthly", "daily"),
    RequestParam("start_date", "yes", "first UK civil day a firing may fall on, YYYY-MM-DD", ""),
    RequestParam("time_of_day", "yes", "UK local wall-clock time of each firing, HH:MM", "01:30"),
    RequestParam("day_of_week", "weekly only (refused otherwise)", "mon | tue | ... | sun", "mon"),
    RequestParam(
        "day_of_month",
        "monthly only (refused otherwise)",
        "1-31; a month without that day fires on its last day",
        1,
    ),
    RequestParam("end_date", "no", "last UK civil day a firing may fall on (inclusive)", None),
    RequestParam(
        "params",
        "no (yes for time-range services)",
        "the scheduled service's own parameters (hub.reference.service_params), a map; for services "
        "whose parameters are a time range (start, end), give window_s instead: each firing "
        "reads [nominal - window_s, nominal)",
        {WINDOW_PARAM: 86_400},
    ),
)
"""The parameters of 5.1 Create Schedule."""

READ_PARAMS: tuple[RequestParam, ...] = (
    RequestParam("schedule_id", "no", "one schedule to read; all the user's if absent", "S1"),
)
"""The parameters of 5.2 Read Schedule."""

DELETE_PARAMS: tuple[RequestParam, ...] = (
    RequestParam("schedule_id", "yes", "the schedule to delete (its creator only)", "S1"),
)
"""The parameters of 5.3 Delete Schedule."""


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


def _parse_date(name: str, value: Value) -> tuple[date | None, list[str]]:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None, [f"{name} is {value!r}, not a date YYYY-MM-DD"]
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None, [f"{name} is {value!r}, not a real calendar date"]
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return None, [f"{name} is {value}, outside the years {MIN_YEAR}-{MAX_YEAR}"]
    return day, []


def _as_int(value: Value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _service_problems(code: Value, catalogue: Catalogue) -> list[str]:
    if not isinstance(code, str):
        return [f"service is {code!r}, not a service code such as '4.8.1'"]
    service = catalogue.get(code)
    if service is None:
        return [f"unknown service {code!r}"]
    if not service.in_scope:
        return [f"service {code} ({service.name}) is outside the hub's scope"]
    if not service.schedulable:
        allowed = ", ".join(s.code for s in catalogue.services() if s.schedulable and s.in_scope)
        return [f"service {code} ({service.name}) cannot be DCC scheduled (schedulable: {allowed})"]
    return []


def _service_params_problems(code: str, given: Value) -> list[str]:
    if not isinstance(given, Mapping):
        return [f"params is {type(given).__name__}, not a map of the service's parameters"]
    if not all(isinstance(k, str) for k in given):
        return ["params keys must be text"]
    if not takes_range(code):
        if WINDOW_PARAM in given:
            return [f"params.{WINDOW_PARAM} is only for services that read a time range"]
        return [f"params: {p}" for p in validate_params(code, given)]
    problems = [
        f"params.{name} is derived at each firing from params.{WINDOW_PARAM}; leave it out"
        for name in RANGE_PARAMS
        if name in given
    ]
    window = given.get(WINDOW_PARAM)
    if window is None:
        problems.append(
            f"params.{WINDOW_PARAM} is required for {code}: the lookback in seconds each "
            "firing reads, ending at its nominal time"
        )
    elif isinstance(window, bool) or not isinstance(window, int | float):
        problems.append(f"params.{WINDOW_PARAM} is {window!r}, not a number of seconds")
    elif not math.isfinite(window) or window <= 0:
        problems.append(f"params.{WINDOW_PARAM} is {window!r}, not a positive number of seconds")
    if problems:
        return problems
    trial = _range_params(given, EXAMPLE_NOW)
    return [
        f"params (start and end from {WINDOW_PARAM}): {p}" for p in validate_params(code, trial)
    ]


def _choice(name: str, value: Value, choices: frozenset[str]) -> tuple[str | None, list[str]]:
    if isinstance(value, str) and value in choices:
        return value, []
    return None, [f"{name} is {value!r}, not one of {', '.join(sorted(choices))}"]


_RECURRENCES = frozenset(r.value for r in Recurrence)
_WEEKDAYS = frozenset(d.value for d in Weekday)
_ROLES = frozenset(r.value for r in Role)
_REQUIRED = ("service", "device_id", "recurrence", "start_date", "time_of_day")


def _timing(
    params: Mapping[str, Value], recurrence: Recurrence | None
) -> tuple[Weekday | None, int | None, list[str]]:
    """day_of_week and day_of_month, each required by exactly one recurrence."""
    problems: list[str] = []
    weekday: Weekday | None = None
    raw_weekday = params.get("day_of_week")
    if recurrence is Recurrence.WEEKLY:
        if raw_weekday is None:
            problems.append("missing day_of_week: weekly schedules need mon, tue, ... or sun")
        else:
            found, more = _choice("day_of_week", raw_weekday, _WEEKDAYS)
            weekday = None if found is None else Weekday(found)
            problems.extend(more)
    elif raw_weekday is not None and recurrence is not None:
        problems.append(f"day_of_week is only for weekly schedules, not {recurrence}")

    day_of_month: int | None = None
    raw_dom = params.get("day_of_month")
    if recurrence is Recurrence.MONTHLY:
        number = _as_int(raw_dom)
        if raw_dom is None:
            problems.append("missing day_of_month: monthly schedules need a day 1-31")
        elif number is None or not 1 <= number <= 31:
            problems.append(f"day_of_month is {raw_dom!r}, not a whole number 1-31")
        else:
            day_of_month = number
    elif raw_dom is not None and recurrence is not None:
        problems.append(f"day_of_month is only for monthly schedules, not {recurrence}")
    return weekday, day_of_month, problems


def _parse(
    params: Mapping[str, Value], catalogue: Catalogue
) -> tuple[ScheduleSpec | None, list[str]]:
    if not isinstance(params, Mapping):
        return None, [f"parameters must be a map, got {type(params).__name__}"]
    accepted = ", ".join(p.name for p in CREATE_PARAMS)
    problems = [
        f"unknown parameter {name!r} for {CREATE_SERVICE} (accepted: {accepted})"
        for name in params
        if name not in {p.name for p in CREATE_PARAMS}
    ]
    problems += [f"missing required parameter {name!r}" for name in _REQUIRED if name not in params]

    code = params.get("service")
    service_problems = _service_problems(code, catalogue) if "service" in params else []
    problems += service_problems

    device_id = params.get("device_id")
    if "device_id" in params and not (isinstance(device_id, str) and _EUI64.fullmatch(device_id)):
        problems.append(f"device_id is {device_id!r}, not 16 upper-case hex digits")

    recurrence: Recurrence | None = None
    if "recurrence" in params:
        found, more = _choice("recurrence", params["recurrence"], _RECURRENCES)
        recurrence = None if found is None else Recurrence(found)
        problems += more

    start: date | None = None
    if "start_date" in params:
        start, more = _parse_date("start_date", params["start_date"])
        problems += more
    end: date | None = None
    if params.get("end_date") is not None:
        end, more = _parse_date("end_date", params["end_date"])
        problems += more
    if start is not None and end is not None and end < start:
        problems.append(f"end_date {end} is before start_date {start}")

    at: time | None = None
    raw_time = params.get("time_of_day")
    match = _TIME.fullmatch(raw_time) if isinstance(raw_time, str) else None
    if match is not None:
        at = time(int(match[1]), int(match[2]))
    elif "time_of_day" in params:
        problems.append(f"time_of_day is {raw_time!r}, not a UK local time HH:MM (00:00-23:59)")

    weekday, day_of_month, more = _timing(params, recurrence)
    problems += more

    service_params = params.get("params", {})
    if isinstance(code, str) and "service" in params and not service_problems:
        problems += _service_params_problems(code, service_params)

    if problems:
        return None, problems
    assert isinstance(code, str)
    assert isinstance(device_id, str)
    assert recurrence is not None
    assert start is not None
    assert at is not None
    assert isinstance(service_params, Mapping)
    spec = ScheduleSpec(
        service=code,
        device_id=device_id,
        recurrence=recurrence,
        start_date=start,
        time_of_day=at,
        day_of_week=weekday,
        day_of_month=day_of_month,
        end_date=end,
        params=MappingProxyType(dict(service_params)),
    )
    if last_index(spec) == -1:
        return None, [f"no {recurrence} firing falls between start_date {start} and end_date {end}"]
    return spec, []


def validate_create(params: Mapping[str, Value], catalogue: Catalogue = CATALOGUE) -> list[str]:
    """Every problem with a 5.1 Create Schedule parameter map; empty means valid."""
    return _parse(params, catalogue)[1]


def parse_create(params: Mapping[str, Value], catalogue: Catalogue = CATALOGUE) -> ScheduleSpec:
    """The spec of a valid 5.1 parameter map; ``ScheduleError`` lists the problems otherwise."""
    spec, problems = _parse(params, catalogue)
    if spec is None:
        raise ScheduleError(problems)
    return spec


def _schedule_id_problems(
    params: Mapping[str, Value], service: str, *, required: bool
) -> list[str]:
    if not isinstance(params, Mapping):
        return [f"parameters must be a map, got {type(params).__name__}"]
    problems = [
        f"unknown parameter {name!r} for {service} (accepted: schedule_id)"
        for name in params
        if name != "schedule_id"
    ]
    value = params.get("schedule_id")
    if value is None:
        if required:
            problems.append("missing required parameter 'schedule_id'")
    elif not isinstance(value, str) or not _SCHEDULE_ID.fullmatch(value):
        problems.append(f"schedule_id is {value!r}, not a schedule id such as 'S1'")
    return problems


def validate_read(params: Mapping[str, Value]) -> list[str]:
    """Every problem with a 5.2 Read Schedule parameter map; empty means valid."""
    return _schedule_id_problems(params, READ_SERVICE, required=False)


def validate_delete(params: Mapping[str, Value]) -> list[str]:
    """Every problem with a 5.3 Delete Schedule parameter map; empty means valid."""
    return _schedule_id_problems(params, DELETE_SERVICE, required=True)


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


# ---------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Schedule:
    """One live schedule: who owns it, what it runs, and which firing comes next."""

    schedule_id: str
    """Hub-assigned id, ``S`` and a decimal number."""
    owner: str
    """The user who created it; only this user may read or delete it."""
    role: Role
    """The role the owner created it in (each firing is access-checked in it)."""
    spec: ScheduleSpec
    """What to run, on which device, and when."""
    created_at: Instant
    """When it was created."""
    next_index: int
    """Index of the next firing to run; everything before it has run or was skipped."""

    def next_nominal_at(self) -> Instant | None:
        """The nominal instant of the next firing, or None if none is left."""
        last = last_index(self.spec)
        if last is not None and self.next_index > last:
            return None
        return nominal_at(self.spec, self.next_index)

    def to_record(self) -> dict[str, Value]:
        """Plain values (msgpack- and JSON-friendly) from which ``from_record`` rebuilds it."""
        return {
            "v": RECORD_VERSION,
            "schedule_id": self.schedule_id,
            "owner": self.owner,
            "role": self.role.value,
            "created_at": self.created_at,
            "next_index": self.next_index,
            "spec": self.spec.to_params(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Value], catalogue: Catalogue = CATALOGUE) -> Schedule:
        """The schedule written by ``to_record``; ``ScheduleError`` if the record is damaged."""
        problems: list[str] = []
        if record.get("v") != RECORD_VERSION:
            problems.append(f"record version is {record.get('v')!r}, not {RECORD_VERSION}")
        schedule_id, owner, role = (
            record.get("schedule_id"),
            record.get("owner"),
            record.get("role"),
        )
        created_at, next_index, spec = (
            record.get("created_at"),
            record.get("next_index"),
            record.get("spec"),
        )
        if not isinstance(schedule_id, str) or not _SCHEDULE_ID.fullmatch(schedule_id):
            problems.append(f"schedule_id is {schedule_id!r}")
        if not isinstance(owner, str) or not owner:
            problems.append(f"owner is {owner!r}")
        if not isinstance(role, str) or role not in _ROLES:
            problems.append(f"role is {role!r}")
        if isinstance(created_at, bool) or not isinstance(created_at, int | float):
            problems.append(f"created_at is {created_at!r}")
        index = _as_int(next_index)
        if index is None or index < 0:
            problems.append(f"next_index is {next_index!r}")
        if not isinstance(spec, Mapping):
            problems.append("spec is not a map")
        if problems:
            raise ScheduleError([f"schedule record: {p}" for p in problems])
        assert isinstance(schedule_id, str)
        assert isinstance(owner, str)
        assert isinstance(role, str)
        assert isinstance(created_at, int | float)
        assert index is not None
        assert isinstance(spec, Mapping)
        return cls(
            schedule_id=schedule_id,
            owner=owner,
            role=Role(role),
            spec=parse_create(spec, catalogue),
            created_at=float(created_at),
            next_index=index,
        )


@dataclass(frozen=True, slots=True)
class Firing:
    """Decision: run the scheduled service now (after access control at ``fire_at``)."""

    schedule_id: str
    """The schedule that fired."""
    owner: str
    """The schedule's owner; the response goes to this user."""
    role: Role
    """The role the service is sent in."""
    service: str
    """The service to run."""
    device_id: str
    """The target device."""
    params: Mapping[str, Value]
    """Concrete service parameters (a time range already derived)."""
    nominal_at: Instant
    """The firing's nominal instant; targets and time ranges are measured from it."""
    fire_at: Instant
    """When it was due to run: ``nominal_at`` plus its offset."""
    index: int
    """The firing's index in the schedule (0 is the first occurrence)."""
    skipped: int = 0
    """Earlier firings missed (e.g. while the hub was down) and not run."""
    final: bool = False
    """No firing follows: the schedule has ended and is removed."""

    @property
    def request_id(self) -> str:
        """A unique, repeatable request id for this firing: ``"<schedule_id>:<index>"``."""
        return f"{self.schedule_id}:{self.index}"


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """The outcome of 5.3 Delete Schedule."""

    outcome: DeleteOutcome
    """Deleted, or why not."""
    reason: str
    """In words a person can act on."""
    schedule: Schedule | None = None
    """The deleted schedule (None when refused)."""

    @property
    def ok(self) -> bool:
        """True when the schedule was deleted."""
        return self.outcome is DeleteOutcome.DELETED


@dataclass(frozen=True, slots=True)
class Stopped:
    """A schedule ended by the hub (change of supplier), not by its owner."""

    schedule: Schedule
    """The schedule, as it stood when stopped."""
    reason: str
    """Why it stopped, for the owner and the audit."""


def _id_key(schedule_id: str) -> tuple[int, str]:
    return len(schedule_id), schedule_id  # numeric order for 'S' + decimal


_T = TypeVar("_T")
_HeapEntry = tuple[float, str, int]  # fire_at, schedule_id, index


class Scheduler:
    """All live schedules and the heap of their next firings. Pure state: ``now`` is given."""

    __slots__ = (
        "_by_device",
        "_by_id",
        "_by_owner",
        "_heap",
        "_next_number",
        "_seed",
        "_shared",
        "_stale",
        "_window_s",
    )

    def __init__(self, *, seed: int = 0, window_s: float = DEFAULT_OFFSET_WINDOW_S) -> None:
        """``seed`` and ``window_s`` fix every firing's offset; keep them across restarts."""
        if not 0 <= window_s <= MAX_OFFSET_WINDOW_S:
            raise ValueError(f"offset window must be 0-{MAX_OFFSET_WINDOW_S:g} s, got {window_s}")
        self._seed = seed
        self._window_s = float(window_s)
        self._by_id: dict[str, Schedule] = {}
        self._by_owner: dict[str, dict[str, None]] = {}  # insertion-ordered id sets
        self._by_device: dict[str, str | list[str]] = {}  # a list only for several
        self._shared: dict[object, object] = {}  # one copy of equal dates, times, params, owners
        self._heap: list[_HeapEntry] = []
        self._stale = 0  # heap entries whose schedule has gone
        self._next_number = 1

    def __len__(self) -> int:
        return len(self._by_id)

    @property
    def next_number(self) -> int:
        """The number the next schedule id will carry; persist it for ``restore``."""
        return self._next_number

    def fire_at(self, schedule: Schedule, index: int | None = None) -> Instant:
        """When firing ``index`` (default: the next) of ``schedule`` runs."""
        n = schedule.next_index if index is None else index
        return nominal_at(schedule.spec, n) + offset(
            self._seed, schedule.schedule_id, n, self._window_s
        )

    def get(self, schedule_id: str) -> Schedule | None:
        """The live schedule with this id, whoever owns it."""
        return self._by_id.get(schedule_id)

    def ids(self) -> list[str]:
        """Every live schedule's id, oldest first."""
        return sorted(self._by_id, key=_id_key)

    # ---- 5.1, 5.2, 5.3 --------------------------------------------------------------------

    def create(self, owner: str, role: Role, spec: ScheduleSpec, now: Instant) -> Schedule:
        """Add a schedule whose first firing is the first one nominally after ``now``.

        ``ScheduleError`` when no firing is left (its end date has passed).
        """
        first = first_index_after(spec, now)
        if first is None:
            raise ScheduleError(
                [f"the schedule has no firing after now (end_date {spec.end_date})"]
            )
        schedule = Schedule(f"S{self._next_number}", owner, role, spec, float(now), first)
        self._next_number += 1
        return self._add(schedule)

    def read(self, user_id: str, schedule_id: str | None = None) -> list[Schedule]:
        """The user's own schedules, oldest first, or the one asked for (an empty list when it
        is unknown or another user's: existence is not revealed)."""
        if schedule_id is not None:
            schedule = self._by_id.get(schedule_id)
            return [schedule] if schedule is not None and schedule.owner == user_id else []
        ids = sorted(self._by_owner.get(user_id, ()), key=_id_key)
        return [self._by_id[i] for i in ids]

    def delete(self, user_id: str, schedule_id: str) -> DeleteResult:
        """Delete a schedule; only its owner may."""
        schedule = self._by_id.get(schedule_id)
        if schedule is None:
            return DeleteResult(
                DeleteOutcome.UNKNOWN_SCHEDULE,
                f"no schedule {schedule_id}: it never existed, has ended or was deleted",
            )
        if schedule.owner != user_id:
            return DeleteResult(
                DeleteOutcome.NOT_OWNER,
                f"only the user who created schedule {schedule_id} may delete it",
            )
        self._remove(schedule, stale=True)
        return DeleteResult(DeleteOutcome.DELETED, f"schedule {schedule_id} deleted", schedule)

    # ---- change of supplier ----------------------------------------------------------------

    def stop_for_device(self, device_id: str, owner: str, reason: str) -> list[Stopped]:
        """End every schedule ``owner`` has on ``device_id`` (the losing supplier's, on change
        of supplier), oldest first."""
        ids = sorted(
            (i for i in self._on_device(device_id) if self._by_id[i].owner == owner),
            key=_id_key,
        )
        stopped = []
        for schedule_id in ids:
            schedule = self._by_id[schedule_id]
            self._remove(schedule, stale=True)
            stopped.append(Stopped(schedule, reason))
        return stopped

    # ---- time ------------------------------------------------------------------------------

    def next_due(self) -> Instant | None:
        """When ``due`` next has something to fire, or None when nothing is scheduled."""
        self._drop_stale_top()
        return self._heap[0][0] if self._heap else None

    def due(self, now: Instant) -> list[Firing]:
        """The firings due at ``now`` in ``fire_at`` order, each schedule advanced past them.

        A schedule fires at most once per call: its latest due firing; older ones are skipped
        (``Firing.skipped``). Persist each advanced schedule (``get(id).to_record()``), or
        remove it when ``Firing.final``, before dispatching the firing.
        """
        fired: list[Firing] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, schedule_id, index = heapq.heappop(heap)
            schedule = self._by_id.get(schedule_id)
            if schedule is None or schedule.next_index != index:
                self._stale -= 1
                continue
            fired.append(self._fire(schedule, now))
        fired.sort(key=lambda f: (f.fire_at, _id_key(f.schedule_id)))
        return fired

    def _latest_due_index(self, schedule: Schedule, now: Instant, last: int | None) -> int:
        """The latest index whose firing is due at ``now`` (at least the popped one)."""
        spec, index = schedule.spec, schedule.next_index
        if (last is not None and index >= last) or nominal_at(spec, index + 1) > now:
            return index  # on time: the usual case
        after = first_index_after(spec, now)
        if after is None:  # past the end date: the last firing is the latest
            assert last is not None
            latest = last
        else:
            latest = after - 1  # the latest firing nominally at or before now
        if latest > index and self.fire_at(schedule, latest) > now:
            latest -= 1  # nominally past but still inside its offset window
        return max(latest, index)

    def _fire(self, schedule: Schedule, now: Instant) -> Firing:
        spec = schedule.spec
        last = last_index(spec)
        index = self._latest_due_index(schedule, now, last)
        nominal = nominal_at(spec, index)
        final = last is not None and index + 1 > last
        if final:
            self._remove(schedule, stale=False)
        else:
            advanced = replace(schedule, next_index=index + 1)
            self._by_id[schedule.schedule_id] = advanced
            self._push(advanced)
        return Firing(
            schedule_id=schedule.schedule_id,
            owner=schedule.owner,
            role=schedule.role,
            service=spec.service,
            device_id=spec.device_id,
            params=firing_params(spec, nominal),
            nominal_at=nominal,
            fire_at=nominal + offset(self._seed, schedule.schedule_id, index, self._window_s),
            index=index,
            skipped=index - schedule.next_index,
            final=final,
        )

    # ---- restart ---------------------------------------------------------------------------

    def restore(self, schedules: Iterable[Schedule], next_number: int = 1) -> None:
        """Reload persisted schedules after a restart; ``next_number`` is the persisted
        ``Scheduler.next_number`` (ids are never reused). Firings missed while the hub was
        down run once, at the next ``due`` (module rules)."""
        for schedule in schedules:
            if schedule.schedule_id in self._by_id:
                raise ValueError(f"schedule {schedule.schedule_id} restored twice")
            number = int(schedule.schedule_id[1:])
            self._next_number = max(self._next_number, number + 1)
            last = last_index(schedule.spec)
            if last is None or schedule.next_index <= last:
                self._add(schedule)
        self._next_number = max(self._next_number, next_number)

    # ---- indexes ---------------------------------------------------------------------------

    def _share(self, value: _T) -> _T:
        # keyed with the type too: equal values of different types (1, 1.0, True) stay apart
        return cast(_T, self._shared.setdefault((type(value), value), value))

    def _compact_schedule(self, schedule: Schedule) -> Schedule:
        """The same schedule, holding one shared copy of values many schedules repeat."""
        spec = schedule.spec
        params = spec.params
        try:
            key = (dict, tuple(sorted((k, type(v), v) for k, v in params.items())))
            hash(key)
        except TypeError:  # a list or map inside: kept as it is
            pass
        else:
            params = cast(Mapping[str, Value], self._shared.setdefault(key, params))
        spec = replace(
            spec,
            start_date=self._share(spec.start_date),
            time_of_day=self._share(spec.time_of_day),
            end_date=None if spec.end_date is None else self._share(spec.end_date),
            params=params,
        )
        return replace(schedule, owner=self._share(schedule.owner), spec=spec)

    def _add(self, schedule: Schedule) -> Schedule:
        schedule = self._compact_schedule(schedule)
        schedule_id = schedule.schedule_id
        self._by_id[schedule_id] = schedule
        self._by_owner.setdefault(schedule.owner, {})[schedule_id] = None
        device_id = schedule.spec.device_id
        present = self._by_device.get(device_id)
        if present is None:
            self._by_device[device_id] = schedule_id
        elif isinstance(present, str):
            self._by_device[device_id] = [present, schedule_id]
        else:
            present.append(schedule_id)
        self._push(schedule)
        return schedule

    def _on_device(self, device_id: str) -> list[str]:
        present = self._by_device.get(device_id)
        if present is None:
            return []
        return [present] if isinstance(present, str) else list(present)

    def _push(self, schedule: Schedule) -> None:
        entry = (self.fire_at(schedule), schedule.schedule_id, schedule.next_index)
        heapq.heappush(self._heap, entry)

    def _remove(self, schedule: Schedule, *, stale: bool) -> None:
        schedule_id = schedule.schedule_id
        del self._by_id[schedule_id]
        owned = self._by_owner[schedule.owner]
        del owned[schedule_id]
        if not owned:
            del self._by_owner[schedule.owner]
        device_id = schedule.spec.device_id
        remaining = [i for i in self._on_device(device_id) if i != schedule_id]
        if not remaining:
            del self._by_device[device_id]
        else:
            self._by_device[device_id] = remaining[0] if len(remaining) == 1 else remaining
        if stale:  # its heap entry stays until popped, or until the heap is compacted
            self._stale += 1
            if self._stale > 1_024 and self._stale > len(self._by_id):
                self._compact()

    def _compact(self) -> None:
        live = self._by_id
        self._heap = [e for e in self._heap if (s := live.get(e[1])) and s.next_index == e[2]]
        heapq.heapify(self._heap)
        self._stale = 0

    def _drop_stale_top(self) -> None:
        heap, live = self._heap, self._by_id
        while heap:
            _, schedule_id, index = heap[0]
            schedule = live.get(schedule_id)
            if schedule is not None and schedule.next_index == index:
                return
            heapq.heappop(heap)
            self._stale -= 1

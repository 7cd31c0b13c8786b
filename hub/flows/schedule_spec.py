"""DCC schedule requests: the parameters of 5.1 Create, 5.2 Read and 5.3 Delete Schedule, as
pure values (the rules are in ``hub.flows.schedules``).

Decides: whether a 5.1, 5.2 or 5.3 parameter map is valid (every problem, in words a person can
act on) and the ``ScheduleSpec`` a valid 5.1 describes.
Must never: read a clock, decide access to a device, or hold a schedule's state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from enum import StrEnum
from types import MappingProxyType

from hub.flows.schedule_calendar import (
    RANGE_PARAMS,
    WINDOW_PARAM,
    Recurrence,
    ScheduleSpec,
    Weekday,
    _range_params,
    last_index,
    takes_range,
)
from hub.reference.catalogue import CATALOGUE, Catalogue
from hub.reference.roles import Role
from hub.reference.service_params import EXAMPLE_NOW, validate_params
from hub.reference.standard import Value
from hub.reference.text import show

CREATE_SERVICE = "5.1"
READ_SERVICE = "5.2"
DELETE_SERVICE = "5.3"
DEFAULT_OFFSET_WINDOW_S = 3_600.0
"""Default width of the random offset window, seconds."""
MAX_OFFSET_WINDOW_S = 12 * 3_600.0
"""Widest offset window: less than the shortest gap between occurrences (23 hours)."""
RECORD_VERSION = 1
"""Version of the plain-value form written by ``Schedule.to_record``."""
MIN_YEAR = 2000
MAX_YEAR = 2099

_EUI64 = re.compile(r"[0-9A-F]{16}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_SCHEDULE_ID = re.compile(r"S[1-9][0-9]{0,17}")


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


def _parse_date(name: str, value: Value) -> tuple[date | None, list[str]]:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return None, [f"{name} is {show(value)}, not a date YYYY-MM-DD"]
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None, [f"{name} is {show(value)}, not a real calendar date"]
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return None, [f"{name} is {value}, outside the years {MIN_YEAR}-{MAX_YEAR}"]
    return day, []


def _as_int(value: Value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _service_problems(code: Value, catalogue: Catalogue) -> list[str]:
    if not isinstance(code, str):
        return [f"service is {show(code)}, not a service code such as '4.8.1'"]
    service = catalogue.get(code)
    if service is None:
        return [f"unknown service {show(code)}"]
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
        problems.append(f"params.{WINDOW_PARAM} is {show(window)}, not a number of seconds")
    elif not math.isfinite(window) or window <= 0:
        problems.append(
            f"params.{WINDOW_PARAM} is {show(window)}, not a positive number of seconds"
        )
    if problems:
        return problems
    trial = _range_params(given, EXAMPLE_NOW)
    return [
        f"params (start and end from {WINDOW_PARAM}): {p}" for p in validate_params(code, trial)
    ]


def _choice(name: str, value: Value, choices: frozenset[str]) -> tuple[str | None, list[str]]:
    if isinstance(value, str) and value in choices:
        return value, []
    return None, [f"{name} is {show(value)}, not one of {', '.join(sorted(choices))}"]


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
            problems.append(f"day_of_month is {show(raw_dom)}, not a whole number 1-31")
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
        f"unknown parameter {show(name)} for {CREATE_SERVICE} (accepted: {accepted})"
        for name in params
        if name not in {p.name for p in CREATE_PARAMS}
    ]
    problems += [
        f"missing required parameter {show(name)}" for name in _REQUIRED if name not in params
    ]

    code = params.get("service")
    service_problems = _service_problems(code, catalogue) if "service" in params else []
    problems += service_problems

    device_id = params.get("device_id")
    if "device_id" in params and not (isinstance(device_id, str) and _EUI64.fullmatch(device_id)):
        problems.append(f"device_id is {show(device_id)}, not 16 upper-case hex digits")

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
        problems.append(f"time_of_day is {show(raw_time)}, not a UK local time HH:MM (00:00-23:59)")

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
        f"unknown parameter {show(name)} for {service} (accepted: schedule_id)"
        for name in params
        if name != "schedule_id"
    ]
    value = params.get("schedule_id")
    if value is None:
        if required:
            problems.append("missing required parameter 'schedule_id'")
    elif not isinstance(value, str) or not _SCHEDULE_ID.fullmatch(value):
        problems.append(f"schedule_id is {show(value)}, not a schedule id such as 'S1'")
    return problems


def validate_read(params: Mapping[str, Value]) -> list[str]:
    """Every problem with a 5.2 Read Schedule parameter map; empty means valid."""
    return _schedule_id_problems(params, READ_SERVICE, required=False)


def validate_delete(params: Mapping[str, Value]) -> list[str]:
    """Every problem with a 5.3 Delete Schedule parameter map; empty means valid."""
    return _schedule_id_problems(params, DELETE_SERVICE, required=True)


def no_such_schedule(schedule_id: str) -> str:
    """The one reason a 5.3 gets for a schedule id it may not delete: unknown, ended, deleted
    or another user's alike, so that a refusal never tells that another user's schedule
    exists."""
    return f"no schedule {schedule_id}: it never existed, has ended or was deleted"

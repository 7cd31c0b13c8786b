"""DCC schedules (5.1, 5.2, 5.3): parameters, UK-time arithmetic, offsets, due firings, restart."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.flows.schedule_calendar import (
    ScheduleSpec,
    firing_params,
    first_index_after,
    next_nominal,
    nominal_at,
    occurrence_date,
    offset,
)
from hub.flows.schedule_spec import (
    DEFAULT_OFFSET_WINDOW_S,
    DeleteOutcome,
    ScheduleError,
    parse_create,
    validate_create,
    validate_delete,
    validate_read,
)
from hub.flows.schedules import Schedule, Scheduler
from hub.reference.roles import Role
from hub.reference.service_params import validate_params
from hub.reference.standard import Instant, Value
from hub.reference.uktime import from_uk_local, to_uk_local

DEVICE = "00DB1200000000A1"
OTHER_DEVICE = "00DB1200000000B2"
DAY = 86_400.0


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> Instant:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


def show(instant: Instant | None) -> str | None:
    return None if instant is None else datetime.fromtimestamp(instant, UTC).strftime("%F %H:%M")


def request(**changes: Value) -> dict[str, Value]:
    base: dict[str, Value] = {
        "service": "4.8.1",
        "device_id": DEVICE,
        "recurrence": "daily",
        "start_date": "2026-01-01",
        "time_of_day": "01:30",
        "params": {"window_s": 86_400},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def spec(**changes: Value) -> ScheduleSpec:
    return parse_create(request(**changes))


def firings(s: ScheduleSpec, after: Instant, count: int) -> list[str | None]:
    out: list[str | None] = []
    for _ in range(count):
        nxt = next_nominal(s, after)
        out.append(show(nxt))
        if nxt is None:
            break
        after = nxt
    return out


# ---------------------------------------------------------------------------- month ends, leap years


def test_a_monthly_31st_fires_on_the_last_day_of_february_and_april() -> None:
    s = spec(recurrence="monthly", day_of_month=31, start_date="2026-01-01", time_of_day="12:00")
    assert firings(s, utc(2026, 1, 1), 5) == [
        "2026-01-31 12:00",
        "2026-02-28 12:00",
        "2026-03-31 11:00",  # 12:00 BST
        "2026-04-30 11:00",
        "2026-05-31 11:00",
    ]


def test_a_monthly_30th_from_january_fires_on_28_february_then_30_march() -> None:
    s = spec(recurrence="monthly", day_of_month=30, start_date="2027-01-30", time_of_day="06:00")
    assert firings(s, utc(2027, 1, 1), 3) == [
        "2027-01-30 06:00",
        "2027-02-28 06:00",
        "2027-03-30 05:00",
    ]


@pytest.mark.parametrize(
    ("year", "february"),
    [(2028, ["29", "29", "29"]), (2027, ["28", "28", "28"])],
)
def test_monthly_29th_30th_and_31st_fire_on_29_february_only_in_a_leap_year(
    year: int, february: list[str]
) -> None:
    days = []
    for day_of_month in (29, 30, 31):
        s = spec(recurrence="monthly", day_of_month=day_of_month, start_date=f"{year}-02-01")
        first = show(next_nominal(s, utc(year, 2, 1)))
        assert first is not None
        assert first.startswith(f"{year}-02-")
        days.append(first[8:10])
    assert days == february


def test_a_monthly_start_after_this_months_day_begins_next_month() -> None:
    s = spec(recurrence="monthly", day_of_month=10, start_date="2026-01-15", time_of_day="00:00")
    assert show(next_nominal(s, utc(2025, 12, 1))) == "2026-02-10 00:00"


# ---------------------------------------------------------------------------- clock changes


def test_daily_0130_fires_at_0230_bst_in_the_spring_gap() -> None:
    # 29 March 2026: clocks go from 01:00 GMT to 02:00 BST; 01:30 does not exist that day
    s = spec(time_of_day="01:30", start_date="2026-03-28")
    assert firings(s, utc(2026, 3, 27), 3) == [
        "2026-03-28 01:30",  # 01:30 GMT
        "2026-03-29 01:30",  # 02:30 BST, an hour later by the wall clock
        "2026-03-30 00:30",  # 01:30 BST
    ]


def test_daily_0130_fires_once_at_the_first_0130_in_the_autumn_overlap() -> None:
    # 25 October 2026: 01:00-01:59 happens twice (BST, then GMT); it fires at the first
    s = spec(time_of_day="01:30", start_date="2026-10-24")
    assert firings(s, utc(2026, 10, 23), 3) == [
        "2026-10-24 00:30",  # 01:30 BST
        "2026-10-25 00:30",  # 01:30 BST, the first of the two
        "2026-10-26 01:30",  # 01:30 GMT
    ]
    # after the first 01:30 the second 01:30 (GMT) is not a firing
    assert show(next_nominal(s, utc(2026, 10, 25, 0, 30))) == "2026-10-26 01:30"


def test_daily_0030_keeps_its_wall_clock_time_across_both_clock_changes() -> None:
    s = spec(time_of_day="00:30", start_date="2026-03-28")
    assert firings(s, utc(2026, 3, 27), 3) == [
        "2026-03-28 00:30",
        "2026-03-29 00:30",  # before the 01:00 UTC change: still GMT
        "2026-03-29 23:30",  # 00:30 BST on 30 March
    ]
    s = spec(time_of_day="00:30", start_date="2026-10-24")
    assert firings(s, utc(2026, 10, 23), 3) == [
        "2026-10-23 23:30",  # 00:30 BST on 24 October
        "2026-10-24 23:30",  # 00:30 BST on 25 October
        "2026-10-26 00:30",  # 00:30 GMT
    ]


# ---------------------------------------------------------------------------- weekly, end date


def test_weekly_fires_on_its_day_from_the_first_one_on_or_after_the_start() -> None:
    # 2026-01-07 is a Wednesday; the first Monday on or after it is 12 January
    s = spec(recurrence="weekly", day_of_week="mon", start_date="2026-01-07", time_of_day="07:00")
    assert firings(s, utc(2026, 1, 1), 3) == [
        "2026-01-12 07:00",
        "2026-01-19 07:00",
        "2026-01-26 07:00",
    ]


def test_the_end_date_is_the_last_day_a_firing_may_fall_on() -> None:
    s = spec(start_date="2026-01-01", end_date="2026-01-03", time_of_day="23:59")
    assert firings(s, utc(2026, 1, 1), 4) == [
        "2026-01-01 23:59",
        "2026-01-02 23:59",
        "2026-01-03 23:59",
        None,
    ]


def test_a_weekly_schedule_with_no_day_between_start_and_end_is_refused() -> None:
    problems = validate_create(
        request(
            recurrence="weekly", day_of_week="fri", start_date="2026-01-05", end_date="2026-01-07"
        )
    )
    assert problems == [
        "no weekly firing falls between start_date 2026-01-05 and end_date 2026-01-07"
    ]


# ---------------------------------------------------------------------------- validation


def test_a_non_schedulable_service_is_refused_with_a_reason() -> None:
    problems = validate_create(request(service="4.1.1", params=None))
    assert len(problems) == 1
    assert problems[0].startswith(
        "service 4.1.1 (Read Instantaneous Import Registers) cannot be DCC scheduled"
    )
    assert "4.8.1" in problems[0]


def test_non_device_and_unknown_services_are_refused() -> None:
    assert validate_create(request(service="5.1", params=None))[0].startswith(
        "service 5.1 (Create Schedule) cannot be DCC scheduled"
    )
    assert validate_create(request(service="99.9", params=None)) == ["unknown service '99.9'"]


def test_every_problem_of_a_malformed_request_is_reported() -> None:
    problems = validate_create(
        {
            "service": "4.8.1",
            "device_id": "00db1200000000a1",
            "recurrence": "weekly",
            "start_date": "2027-02-29",
            "time_of_day": "24:00",
            "day_of_month": 3,
            "colour": "blue",
            "params": {"window_s": 86_400},
        }
    )
    assert problems == [
        "unknown parameter 'colour' for 5.1 (accepted: service, device_id, recurrence, "
        "start_date, time_of_day, day_of_week, day_of_month, end_date, params)",
        "device_id is '00db1200000000a1', not 16 upper-case hex digits",
        "start_date is '2027-02-29', not a real calendar date",
        "time_of_day is '24:00', not a UK local time HH:MM (00:00-23:59)",
        "missing day_of_week: weekly schedules need mon, tue, ... or sun",
        "day_of_month is only for monthly schedules, not weekly",
    ]


def test_a_range_service_takes_window_s_and_not_start_or_end() -> None:
    assert validate_create(request(params={"start": 0.0, "window_s": 3_600})) == [
        "params.start is derived at each firing from params.window_s; leave it out"
    ]
    assert validate_create(request(params={}))[0].startswith(
        "params.window_s is required for 4.8.1"
    )
    assert validate_create(request(params={"window_s": True})) == [
        "params.window_s is True, not a number of seconds"
    ]
    assert validate_create(request(params={"window_s": 40 * DAY})) == [
        "params (start and end from window_s): start to end spans 40 days, more than 30"
    ]


def test_a_service_without_parameters_refuses_any() -> None:
    assert validate_create(request(service="4.10", params=None)) == []
    problems = validate_create(request(service="4.10", params={"window_s": 60}))
    assert problems == ["params.window_s is only for services that read a time range"]


def test_end_date_before_start_date_and_the_wrong_day_field_are_refused() -> None:
    assert validate_create(request(end_date="2025-12-31")) == [
        "end_date 2025-12-31 is before start_date 2026-01-01"
    ]
    assert validate_create(request(day_of_week="mon")) == [
        "day_of_week is only for weekly schedules, not daily"
    ]
    assert validate_create(request(recurrence="monthly", day_of_month=32)) == [
        "day_of_month is 32, not a whole number 1-31"
    ]


def test_read_and_delete_parameters_are_checked() -> None:
    assert validate_read({}) == []
    assert validate_read({"schedule_id": "S12"}) == []
    assert validate_delete({}) == ["missing required parameter 'schedule_id'"]
    assert validate_delete({"schedule_id": 12}) == [
        "schedule_id is 12, not a schedule id such as 'S1'"
    ]
    assert validate_read({"id": "S1"}) == ["unknown parameter 'id' for 5.2 (accepted: schedule_id)"]


def test_a_spec_turns_back_into_the_request_it_came_from() -> None:
    params = request(recurrence="monthly", day_of_month=31, end_date="2026-12-31")
    assert parse_create(params).to_params() == params


# ---------------------------------------------------------------------------- offsets


def test_offsets_fall_inside_the_window_and_repeat_for_the_same_inputs() -> None:
    draws = [offset(7, f"S{n}", n % 5, 3_600.0) for n in range(2_000)]
    assert all(0.0 <= d < 3_600.0 for d in draws)
    assert draws == [offset(7, f"S{n}", n % 5, 3_600.0) for n in range(2_000)]
    assert offset(7, "S1", 0, 3_600.0) != offset(8, "S1", 0, 3_600.0)
    assert offset(7, "S1", 0, 3_600.0) != offset(7, "S1", 1, 3_600.0)
    assert offset(7, "S1", 0, 0.0) == 0.0


def test_offsets_are_roughly_uniform_over_the_window() -> None:
    buckets = [0] * 10
    for n in range(10_000):
        buckets[int(offset(1, f"S{n // 4}", n % 4, 3_600.0) // 360.0)] += 1
    expected = 1_000
    chi_square = sum((b - expected) ** 2 / expected for b in buckets)
    assert chi_square < 27.88  # 9 degrees of freedom, p = 0.001


# ---------------------------------------------------------------------------- the scheduler


def test_firings_run_at_nominal_plus_their_offset_with_a_concrete_time_range() -> None:
    scheduler = Scheduler(seed=3)
    s = scheduler.create("supplier-a", Role.IS, spec(start_date="2026-01-10"), utc(2026, 1, 1))
    nominal = utc(2026, 1, 10, 1, 30)
    fire_at = nominal + offset(3, s.schedule_id, 0, DEFAULT_OFFSET_WINDOW_S)
    assert scheduler.next_due() == fire_at
    assert scheduler.due(fire_at - 0.001) == []
    [firing] = scheduler.due(fire_at)
    assert (firing.schedule_id, firing.owner, firing.role) == ("S1", "supplier-a", Role.IS)
    assert (firing.service, firing.device_id, firing.index) == ("4.8.1", DEVICE, 0)
    assert (firing.nominal_at, firing.fire_at, firing.skipped, firing.final) == (
        nominal,
        fire_at,
        0,
        False,
    )
    assert firing.params == {"start": nominal - DAY, "end": nominal}
    assert validate_params("4.8.1", firing.params) == []
    assert firing.request_id == "S1:0"
    assert scheduler.next_due() == utc(2026, 1, 11, 1, 30) + offset(3, "S1", 1, 3_600.0)


def test_due_returns_firings_in_fire_at_order_and_advances_each_schedule() -> None:
    scheduler = Scheduler(seed=11)
    now = utc(2026, 1, 1)
    for n in range(50):
        scheduler.create(f"user-{n % 3}", Role.IS, spec(device_id=f"{n:016X}"), now)
    fired = scheduler.due(utc(2026, 1, 1, 3, 0))
    assert len(fired) == 50
    assert [f.fire_at for f in fired] == sorted(f.fire_at for f in fired)
    assert len({round(f.fire_at) for f in fired}) > 40  # spread over the hour, not one second
    assert all(f.index == 0 for f in fired)
    assert scheduler.due(utc(2026, 1, 1, 3, 0)) == []
    assert [f.index for f in scheduler.due(utc(2026, 1, 2, 3, 0))] == [1] * 50


def test_the_same_seed_gives_the_same_firings() -> None:
    def run(seed: int) -> list[tuple[str, float]]:
        scheduler = Scheduler(seed=seed)
        for n in range(20):
            scheduler.create("u", Role.IS, spec(device_id=f"{n:016X}"), utc(2026, 1, 1))
        return [(f.schedule_id, f.fire_at) for f in scheduler.due(utc(2026, 1, 5))]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_the_last_firing_is_final_and_ends_the_schedule() -> None:
    scheduler = Scheduler()
    scheduler.create("u", Role.IS, spec(end_date="2026-01-02"), utc(2025, 12, 31))
    assert [f.final for f in scheduler.due(utc(2026, 1, 1, 12))] == [False]
    assert [f.final for f in scheduler.due(utc(2026, 1, 2, 12))] == [True]
    assert scheduler.read("u") == []
    assert scheduler.next_due() is None


def test_a_schedule_with_no_firing_left_is_refused() -> None:
    with pytest.raises(ScheduleError, match="no firing after now"):
        Scheduler().create("u", Role.IS, spec(end_date="2026-01-02"), utc(2026, 1, 3))


def test_a_start_date_in_the_past_starts_from_the_next_firing() -> None:
    s = Scheduler().create("u", Role.IS, spec(start_date="2026-01-01"), utc(2026, 2, 1, 12))
    assert show(s.next_nominal_at()) == "2026-02-02 01:30"


def test_users_read_only_their_own_schedules() -> None:
    scheduler = Scheduler()
    now = utc(2026, 1, 1)
    mine = [scheduler.create("a", Role.IS, spec(), now) for _ in range(11)]
    theirs = scheduler.create("b", Role.ED, spec(), now)
    assert [s.schedule_id for s in scheduler.read("a")] == [s.schedule_id for s in mine]
    assert scheduler.read("a", "S3") == [mine[2]]
    assert scheduler.read("a", theirs.schedule_id) == []
    assert scheduler.read("a", "S999") == []


def test_only_the_owner_may_delete_a_schedule() -> None:
    scheduler = Scheduler()
    s = scheduler.create("a", Role.IS, spec(), utc(2026, 1, 1))
    refused = scheduler.delete("b", s.schedule_id)
    assert (refused.ok, refused.outcome) == (False, DeleteOutcome.NOT_OWNER)
    assert refused.reason == "only the user who created schedule S1 may delete it"
    assert scheduler.read("a") == [s]
    deleted = scheduler.delete("a", s.schedule_id)
    assert (deleted.ok, deleted.schedule) == (True, s)
    assert scheduler.due(utc(2026, 2, 1)) == []
    assert scheduler.next_due() is None


def test_deleting_an_unknown_schedule_is_an_error_with_a_reason() -> None:
    result = Scheduler().delete("a", "S4")
    assert result.outcome is DeleteOutcome.UNKNOWN_SCHEDULE
    assert result.reason == "no schedule S4: it never existed, has ended or was deleted"


def test_many_deletions_leave_exactly_the_remaining_schedules_due() -> None:
    scheduler = Scheduler()
    now = utc(2026, 1, 1)
    created = [scheduler.create("a", Role.IS, spec(), now) for _ in range(3_000)]
    for s in created[::3] + created[1::3]:
        assert scheduler.delete("a", s.schedule_id).ok
    fired = scheduler.due(utc(2026, 1, 1, 3))
    assert sorted(f.schedule_id for f in fired) == sorted(s.schedule_id for s in created[2::3])


def test_change_of_supplier_stops_the_losing_suppliers_schedules_for_that_meter() -> None:
    scheduler = Scheduler()
    now = utc(2026, 1, 1)
    losing = scheduler.create("old-supplier", Role.IS, spec(), now)
    also_losing = scheduler.create("old-supplier", Role.IS, spec(service="4.10", params=None), now)
    other_meter = scheduler.create("old-supplier", Role.IS, spec(device_id=OTHER_DEVICE), now)
    network = scheduler.create("dno", Role.ED, spec(), now)
    stopped = scheduler.stop_for_device(DEVICE, "old-supplier", "change of supplier")
    assert [s.schedule for s in stopped] == [losing, also_losing]
    assert {s.reason for s in stopped} == {"change of supplier"}
    fired = scheduler.due(utc(2026, 1, 1, 3))
    assert sorted(f.schedule_id for f in fired) == [other_meter.schedule_id, network.schedule_id]
    assert scheduler.stop_for_device(DEVICE, "old-supplier", "again") == []


# ---------------------------------------------------------------------------- restart


def _round_trip(records: list[dict[str, Value]]) -> list[Schedule]:
    packed = msgpack.packb(records)
    unpacked = msgpack.unpackb(packed)
    assert isinstance(unpacked, list)
    return [Schedule.from_record(r) for r in unpacked if isinstance(r, Mapping)]


def test_a_schedule_survives_msgpack_as_plain_values() -> None:
    s = Scheduler().create(
        "u", Role.GS, spec(recurrence="weekly", day_of_week="sun", end_date="2026-06-30"), 1.5
    )
    [back] = _round_trip([s.to_record()])
    assert back == s


def test_a_restart_after_a_firing_does_not_fire_it_again() -> None:
    scheduler = Scheduler(seed=9)
    scheduler.create("u", Role.IS, spec(), utc(2026, 1, 1))
    [first] = scheduler.due(utc(2026, 1, 1, 3))
    saved = [s.to_record() for s in scheduler.read("u")]

    restarted = Scheduler(seed=9)
    restarted.restore(_round_trip(saved), next_number=scheduler.next_number)
    assert restarted.due(utc(2026, 1, 1, 3)) == []
    [second] = restarted.due(utc(2026, 1, 2, 3))
    assert (first.index, second.index, second.skipped) == (0, 1, 0)


def test_firings_missed_while_down_fire_once_on_restart() -> None:
    scheduler = Scheduler(seed=9)
    scheduler.create("u", Role.IS, spec(), utc(2026, 1, 1))
    saved = [s.to_record() for s in scheduler.read("u")]

    restarted = Scheduler(seed=9)
    restarted.restore(_round_trip(saved), next_number=scheduler.next_number)
    [late] = restarted.due(utc(2026, 1, 4, 12))  # down for three and a half days
    assert (late.index, late.skipped) == (3, 3)
    assert show(late.nominal_at) == "2026-01-04 01:30"
    assert late.params == {"start": late.nominal_at - DAY, "end": late.nominal_at}
    assert restarted.due(utc(2026, 1, 4, 12)) == []
    assert [f.index for f in restarted.due(utc(2026, 1, 5, 12))] == [4]


def test_a_firing_nominally_past_but_inside_its_offset_window_is_not_skipped() -> None:
    scheduler = Scheduler(seed=2, window_s=3_600.0)
    s = scheduler.create("u", Role.IS, spec(), utc(2026, 1, 1))
    fire_1 = scheduler.fire_at(s, 1)
    assert fire_1 > utc(2026, 1, 2, 1, 30)
    [late] = scheduler.due(fire_1 - 0.001)  # firing 0 late; firing 1 nominally past, not due
    assert (late.index, late.skipped) == (0, 0)
    assert [f.index for f in scheduler.due(fire_1)] == [1]


def test_ids_are_not_reused_after_a_restart() -> None:
    scheduler = Scheduler()
    now = utc(2026, 1, 1)
    keep = scheduler.create("u", Role.IS, spec(), now)
    gone = scheduler.create("u", Role.IS, spec(), now)
    scheduler.delete("u", gone.schedule_id)

    restarted = Scheduler()
    restarted.restore([keep], next_number=scheduler.next_number)
    assert restarted.create("u", Role.IS, spec(), now).schedule_id == "S3"


def test_a_damaged_record_is_refused_with_reasons() -> None:
    record = Scheduler().create("u", Role.IS, spec(), utc(2026, 1, 1)).to_record()
    record.update(role="XX", next_index=-1)
    with pytest.raises(ScheduleError) as caught:
        Schedule.from_record(record)
    assert caught.value.problems == [
        "schedule record: role is 'XX'",
        "schedule record: next_index is -1",
    ]


def test_time_ranges_hang_on_the_nominal_instant_not_the_offset() -> None:
    s = spec(params={"window_s": 7 * DAY}, service="4.6.1")
    nominal = next_nominal(s, utc(2026, 6, 1))
    assert nominal == utc(2026, 6, 1, 0, 30)
    assert firing_params(s, nominal) == {"start": nominal - 7 * DAY, "end": nominal}


# ---------------------------------------------------------------------------- property


@st.composite
def specs(draw: st.DrawFn) -> ScheduleSpec:
    recurrence = draw(st.sampled_from(["daily", "weekly", "monthly"]))
    start = draw(st.dates(date(2024, 1, 1), date(2030, 12, 31)))
    changes: dict[str, Value] = {
        "recurrence": recurrence,
        "start_date": start.isoformat(),
        "time_of_day": f"{draw(st.integers(0, 23)):02d}:{draw(st.integers(0, 59)):02d}",
    }
    if recurrence == "weekly":
        changes["day_of_week"] = draw(st.sampled_from(["mon", "tue", "wed", "thu", "fri"]))
    if recurrence == "monthly":
        changes["day_of_month"] = draw(st.integers(1, 31))
    return spec(**changes)


@settings(max_examples=300, deadline=None)
@given(specs(), st.floats(utc(2023, 6, 1), utc(2031, 6, 1)))
def test_the_next_firing_is_the_first_occurrence_after_the_instant_at_its_wall_clock_time(
    s: ScheduleSpec, after: float
) -> None:
    n = first_index_after(s, after)
    assert n is not None
    nominal = nominal_at(s, n)
    assert nominal > after
    assert n == 0 or nominal_at(s, n - 1) <= after
    local = to_uk_local(datetime.fromtimestamp(nominal, UTC))
    assert local.date() == occurrence_date(s, n)
    wall = datetime.combine(local.date(), s.time_of_day)
    # the wall-clock time itself, or an hour later when it falls in the spring gap
    assert local in (wall, wall + timedelta(hours=1))
    if local != wall:
        assert from_uk_local(wall).timestamp() == nominal
        assert (local.month, local.weekday(), wall.hour) == (3, 6, 1)

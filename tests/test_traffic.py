"""Traffic management, driven with a fake clock: admission, shedding, shaping, bounds."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.policies.traffic import (
    Admitted,
    Busy,
    BusyReason,
    TokenBucket,
    TrafficConfig,
    TrafficError,
    TrafficManager,
    UserAllocation,
)
from hub.reference.catalogue import PriorityClass

ALERT = PriorityClass.ALERT
URGENT = PriorityClass.URGENT
ON_DEMAND = PriorityClass.ON_DEMAND
BULK = PriorityClass.BULK

SMALL_BOUNDS = {ALERT: 5, URGENT: 5, ON_DEMAND: 20, BULK: 40}


def _manager(**config: Any) -> TrafficManager[str]:
    return TrafficManager(TrafficConfig(**config))


def _queue(
    tm: TrafficManager[str],
    item: str,
    priority: PriorityClass = ON_DEMAND,
    cell: str = "c1",
    size: int = 100,
    now: float = 0.0,
    user: str = "u1",
) -> None:
    decision = tm.admit(user, priority, now)
    assert isinstance(decision, Admitted), decision
    tm.offer(item, priority, cell, size, now)


def _fill(tm: TrafficManager[str], priority: PriorityClass, now: float = 0.0) -> Busy:
    """Admit and offer until refused; return the refusal."""
    for n in range(1_000_000):
        decision = tm.admit(f"user{n % 50}", priority, now)
        if isinstance(decision, Busy):
            return decision
        tm.offer(f"{priority.name}{n}", priority, f"cell{n % 7}", 100, now)
    raise AssertionError("never refused")


# ---- token bucket ------------------------------------------------------------------------


def test_a_token_bucket_starts_full_and_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate_per_s=2.0, burst=4.0)
    assert all(bucket.take(10.0) for _ in range(4))
    assert not bucket.take(10.0)
    assert bucket.tokens(10.25) == pytest.approx(0.5)
    assert not bucket.take(10.25)
    assert bucket.take(10.5)
    assert bucket.tokens(10.5) == pytest.approx(0.0)
    assert bucket.tokens(1_000.0) == 4.0


def test_retry_after_is_the_time_until_enough_tokens_have_refilled() -> None:
    bucket = TokenBucket(rate_per_s=4.0, burst=10.0)
    assert bucket.take(0.0, 10)
    assert bucket.retry_after(0.0) == pytest.approx(0.25)
    assert bucket.retry_after(0.0, 3) == pytest.approx(0.75)
    assert bucket.retry_after(1.0, 3) == 0.0
    assert bucket.take(1.0, 3)


def test_a_request_larger_than_the_burst_waits_for_a_full_bucket_and_leaves_it_in_debt() -> None:
    bucket = TokenBucket(rate_per_s=100.0, burst=1_000.0)
    assert bucket.take(0.0, 500)
    assert not bucket.take(0.0, 5_000)
    assert bucket.retry_after(0.0, 5_000) == pytest.approx(5.0)
    assert bucket.take(5.0, 5_000)
    assert bucket.tokens(5.0) == pytest.approx(-4_000.0)
    assert bucket.retry_after(5.0, 1) == pytest.approx(40.01)


def test_a_clock_that_steps_back_adds_no_tokens() -> None:
    bucket = TokenBucket(rate_per_s=1.0, burst=1.0)
    assert bucket.take(100.0)
    assert bucket.tokens(50.0) == 0.0
    assert bucket.tokens(100.5) == pytest.approx(0.5)


def test_a_token_bucket_refuses_a_rate_or_burst_that_is_not_positive() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0.0, 1.0)
    with pytest.raises(ValueError):
        TokenBucket(1.0, 0.0)


@given(
    rate=st.floats(0.01, 10_000.0),
    burst=st.floats(1.0, 10_000.0),
    spent=st.floats(0.0, 20_000.0),
    n=st.floats(0.001, 20_000.0),
    start=st.floats(0.0, 1e9),
)
def test_waiting_exactly_retry_after_is_always_enough(
    rate: float, burst: float, spent: float, n: float, start: float
) -> None:
    bucket = TokenBucket(rate, burst)
    bucket.take(start, min(spent, burst) or 1.0)
    wait = bucket.retry_after(start, n)
    assert wait >= 0.0
    assert bucket.take(start + wait, n)


# ---- ordering --------------------------------------------------------------------------------


def test_ready_starts_the_highest_priority_first() -> None:
    tm = _manager()
    for name, priority in [
        ("bulk", BULK),
        ("read", ON_DEMAND),
        ("topup", URGENT),
        ("alert", ALERT),
    ]:
        _queue(tm, name, priority)
    assert tm.ready(0.0) == ["alert", "topup", "read", "bulk"]


def test_ready_keeps_arrival_order_within_a_priority_across_cells() -> None:
    tm = _manager()
    items = [f"read{n}" for n in range(30)]
    for n, item in enumerate(items):
        _queue(tm, item, ON_DEMAND, cell=f"cell{n % 4}", now=n * 0.001)
    assert tm.ready(1.0) == items


def test_ready_starts_no_more_than_the_hub_rate_allows() -> None:
    tm = _manager(capacity_per_s=10.0)
    for n in range(25):
        _queue(tm, f"read{n}", cell=f"cell{n}")
    assert len(tm.ready(0.0)) == 10
    assert tm.ready(0.0) == []
    assert tm.ready(0.5) == [f"read{n}" for n in range(10, 15)]
    assert len(tm.ready(10.0)) == 10
    assert tm.depth(ON_DEMAND) == 0


# ---- user allocation -------------------------------------------------------------------------


def _rate_config(**extra: Any) -> dict[str, Any]:
    # near capacity at 80 requests offered within a one-second window
    return {
        "capacity_per_s": 100.0,
        "load_window_s": 1.0,
        "user_rate_per_s": 2.0,
        "user_burst": 5.0,
    } | extra


def test_a_user_may_exceed_its_allocation_while_the_hub_is_below_capacity() -> None:
    tm = _manager(**_rate_config())
    for n in range(60):
        assert isinstance(tm.admit("greedy", ON_DEMAND, n * 0.01), Admitted)
    assert not tm.near_capacity(0.6)


def test_near_capacity_a_user_is_held_to_its_allocation_and_others_are_not() -> None:
    tm = _manager(**_rate_config())
    for n in range(80):  # others bring the hub near capacity
        assert isinstance(tm.admit(f"other{n}", ON_DEMAND, 0.5), Admitted)
    assert tm.near_capacity(0.5)
    decisions = [tm.admit("greedy", ON_DEMAND, 0.5) for _ in range(8)]
    assert sum(isinstance(d, Admitted) for d in decisions) == 5  # its burst
    refusal = decisions[-1]
    assert isinstance(refusal, Busy)
    assert refusal.reason is BusyReason.USER_ALLOCATION
    assert isinstance(tm.admit("modest", ON_DEMAND, 0.5), Admitted)
    assert isinstance(tm.admit("greedy", URGENT, 0.5), Admitted)  # top-ups are exempt


def test_a_user_with_its_own_allocation_gets_that_allocation_near_capacity() -> None:
    tm = _manager(**_rate_config(user_allocations={"big": UserAllocation(50.0, 20.0)}))
    for n in range(80):
        tm.admit(f"other{n}", ON_DEMAND, 0.5)
    admitted = sum(isinstance(tm.admit("big", ON_DEMAND, 0.5), Admitted) for _ in range(30))
    assert admitted == 20


def test_the_allocation_can_be_a_share_of_capacity() -> None:
    config = TrafficConfig(capacity_per_s=500.0, user_share=0.1, user_burst=7.0)
    assert config.allocation_for("anyone") == UserAllocation(50.0, 7.0)


# ---- shedding and bounds ---------------------------------------------------------------------


def test_a_full_hub_refuses_bulk_first_and_still_admits_top_ups_and_alerts() -> None:
    tm = _manager(queue_bounds=SMALL_BOUNDS, hub_bound=40)  # shared room 30: BULK sheds at 24
    bulk = _fill(tm, BULK)
    assert bulk.reason is BusyReason.HUB_FULL
    assert tm.occupancy() == 24
    assert isinstance(tm.admit("u", ON_DEMAND, 0.0), Admitted)
    tm.release(ON_DEMAND)
    # on-demand work fills the shared room, then displaces queued bulk work up to its own bound
    on_demand = _fill(tm, ON_DEMAND)
    assert on_demand.reason is BusyReason.QUEUE_FULL
    assert (tm.depth(ON_DEMAND), tm.depth(BULK), tm.occupancy()) == (20, 10, 30)
    assert len(tm.take_displaced()) == 14
    assert tm.take_displaced() == []
    assert isinstance(tm.admit("u", BULK, 0.0), Busy)
    urgent = _fill(tm, URGENT)
    assert urgent.reason is BusyReason.QUEUE_FULL
    assert tm.depth(URGENT) == 5
    alert = _fill(tm, ALERT)
    assert alert.reason is BusyReason.QUEUE_FULL
    assert tm.occupancy() == 40


def test_a_class_is_refused_at_its_own_bound_even_when_the_hub_has_room() -> None:
    tm = _manager(queue_bounds=SMALL_BOUNDS, hub_bound=1_000)
    refusal = _fill(tm, ON_DEMAND)
    assert refusal.reason is BusyReason.QUEUE_FULL
    assert tm.depth(ON_DEMAND) == 20


def test_reserved_places_count_against_the_bounds_until_offered_or_released() -> None:
    tm = _manager(queue_bounds=SMALL_BOUNDS, hub_bound=1_000)
    for _ in range(5):
        assert isinstance(tm.admit("u", URGENT, 0.0), Admitted)
    assert isinstance(tm.admit("u", URGENT, 0.0), Busy)
    tm.release(URGENT)
    tm.offer("topup", URGENT, "c1", 100, 0.0)
    assert tm.depth(URGENT) == 1
    assert isinstance(tm.admit("u", URGENT, 0.0), Admitted)


def test_an_offer_without_an_admitted_place_is_the_callers_error() -> None:
    tm = _manager()
    with pytest.raises(TrafficError):
        tm.offer("read", ON_DEMAND, "c1", 100, 0.0)
    with pytest.raises(TrafficError):
        tm.release(BULK)
    assert isinstance(tm.admit("u", ON_DEMAND, 0.0), Admitted)
    with pytest.raises(ValueError):
        tm.offer("read", ON_DEMAND, "c1", 0, 0.0)
    tm.offer("read", ON_DEMAND, "c1", 1, 0.0)  # the place is still reserved after the error


def test_items_restored_after_a_restart_are_queued_even_beyond_the_bounds() -> None:
    tm = _manager(queue_bounds=SMALL_BOUNDS, hub_bound=40)
    for n in range(8):
        tm.restore(f"topup{n}", URGENT, "c1", 100, 0.0)
    assert tm.depth(URGENT) == 8
    assert isinstance(tm.admit("u", URGENT, 0.0), Busy)
    assert len(tm.ready(0.0)) == 8
    assert isinstance(tm.admit("u", URGENT, 0.0), Admitted)


def test_queues_stay_within_their_bounds_through_a_million_offers_at_overload() -> None:
    bounds = {ALERT: 200, URGENT: 100, ON_DEMAND: 500, BULK: 2_000}
    config = TrafficConfig(
        capacity_per_s=200.0,
        queue_bounds=bounds,
        hub_bound=2_000,
        user_burst=20.0,
        max_tracked_users=1_000,
        cell_bytes_per_s=300.0,
        cell_budget_window_s=2.0,
    )
    tm: TrafficManager[int] = TrafficManager(config)
    rng = random.Random(7)
    weights = [(ALERT, 1), (URGENT, 5), (ON_DEMAND, 300), (BULK, 694)]
    classes = [p for p, w in weights for _ in range(w)]
    max_seen = dict.fromkeys(PriorityClass, 0)
    max_footprint: dict[str, int] = {}
    started = 0
    now = 0.0
    for n in range(1_000_000):  # 20,000 offered per second against 200 started
        now = n * 0.00005
        priority = classes[rng.randrange(1_000)]
        user = "greedy" if rng.random() < 0.3 else f"user{rng.randrange(5_000)}"
        decision = tm.admit(user, priority, now)
        if isinstance(decision, Admitted):
            size = 20_000 if priority is BULK and rng.random() < 0.05 else 150
            tm.offer(n, priority, f"cell{rng.randrange(120)}", size, now)
        if n % 100 == 0:
            started += len(tm.ready(now))
            for p in PriorityClass:
                max_seen[p] = max(max_seen[p], tm.depth(p))
            for key, value in tm.footprint().items():
                max_footprint[key] = max(max_footprint.get(key, 0), value)
            assert tm.occupancy() <= config.hub_bound
    stats = tm.stats(now)
    assert all(max_seen[p] <= bounds[p] for p in PriorityClass)
    assert all(stats.max_depth[p] <= bounds[p] for p in PriorityClass)
    assert max_seen[ON_DEMAND] == bounds[ON_DEMAND]  # the drive really filled the queues
    # memory: users and cells held stay small; scheduling entries are per cell and class
    assert max_footprint["users"] <= config.max_tracked_users
    assert max_footprint["cells"] <= 120
    assert max_footprint["schedule_entries"] <= 120 * len(PriorityClass)
    assert 0 < max_footprint["wakeups"] <= 2 * 120 + 64  # cells did wait for budget
    # overload shed the low priorities; top-ups and alerts all got through
    assert sum(stats.shed.values()) > 900_000
    assert stats.shed[URGENT] == stats.shed[ALERT] == 0
    assert stats.shed[BULK] > stats.shed[ON_DEMAND] > 0
    assert stats.shed_by_reason[BusyReason.USER_ALLOCATION] > 0
    assert all(stats.started[p] > 0 for p in PriorityClass)
    # the hub started commands at its rate, never above it (one burst of 200 at the start)
    assert started == sum(stats.started.values())
    assert 200.0 * now <= started <= 200.0 * now + 200 + 1


def test_the_same_drive_gives_the_same_decisions() -> None:
    def drive() -> list[object]:
        tm: TrafficManager[int] = TrafficManager(
            TrafficConfig(capacity_per_s=50.0, queue_bounds=SMALL_BOUNDS, hub_bound=60)
        )
        rng = random.Random(3)
        log: list[object] = []
        for n in range(20_000):
            now = n * 0.001
            priority = PriorityClass(rng.randrange(4))
            decision = tm.admit(f"u{rng.randrange(20)}", priority, now)
            log.append(decision)
            if isinstance(decision, Admitted):
                tm.offer(n, priority, f"c{rng.randrange(30)}", rng.choice([100, 50_000]), now)
            if n % 10 == 0:
                log.append(tm.ready(now))
        return log

    assert drive() == drive()


# ---- cell budgets ----------------------------------------------------------------------------


def test_a_saturated_cell_does_not_hold_up_other_cells() -> None:
    # each cell may start 1,000 bytes per second: ten 100-byte reads
    tm = _manager(cell_bytes_per_s=1_000.0, cell_budget_window_s=1.0)
    for n in range(30):
        _queue(tm, f"busy{n}", cell="busy")
    for n in range(5):
        _queue(tm, f"quiet{n}", cell="quiet")
    started = tm.ready(0.0)
    assert started == [f"busy{n}" for n in range(10)] + [f"quiet{n}" for n in range(5)]
    assert tm.ready(0.0) == []
    assert tm.stats(0.0).cells_waiting == 1
    assert tm.ready(0.5) == [f"busy{n}" for n in range(10, 15)]


def test_a_firmware_block_waits_for_budget_while_small_reads_in_other_cells_proceed() -> None:
    config = TrafficConfig(cell_bytes_per_s=1_000.0, cell_budget_window_s=10.0)
    firmware = config.size_of("11.1")
    assert firmware > 10_000
    tm: TrafficManager[str] = TrafficManager(config)
    _queue(tm, "read-a0", ON_DEMAND, cell="a", size=config.size_of("4.1.1"))
    _queue(tm, "firmware-a", BULK, cell="a", size=firmware)
    _queue(tm, "read-a1", BULK, cell="a", size=config.size_of("4.1.1"))
    for n in range(3):
        _queue(tm, f"read-b{n}", BULK, cell="b", size=config.size_of("4.1.1"))
    assert tm.ready(0.0) == ["read-a0", "read-b0", "read-b1", "read-b2"]
    # the image block is larger than the cell's whole budget: it waits for a full bucket
    wait = config.size_of("4.1.1") / 1_000.0
    assert tm.ready(wait * 0.99) == []
    assert tm.ready(wait) == ["firmware-a"]
    # the read queued behind it in the same cell waits until the debt is paid back
    assert tm.ready(wait + 50.0) == []
    assert tm.ready(wait + firmware / 1_000.0) == ["read-a1"]


def test_a_top_up_is_not_held_behind_a_firmware_block_waiting_in_its_cell() -> None:
    tm = _manager(cell_bytes_per_s=1_000.0, cell_budget_window_s=1.0)
    _queue(tm, "read", ON_DEMAND, cell="a", size=600)
    _queue(tm, "firmware", BULK, cell="a", size=5_000)
    assert tm.ready(0.0) == ["read"]
    _queue(tm, "topup", URGENT, cell="a", size=200, now=0.1)
    assert tm.ready(0.1) == ["topup"]
    assert tm.ready(0.5) == []
    assert tm.ready(0.8) == ["firmware"]


def test_a_cell_woken_early_again_and_again_keeps_its_pending_wake_ups_few() -> None:
    tm = _manager(cell_bytes_per_s=1_000.0, cell_budget_window_s=1.0)
    _queue(tm, "read", ON_DEMAND, cell="a", size=600)
    _queue(tm, "firmware", BULK, cell="a", size=5_000)
    assert tm.ready(0.0) == ["read"]
    for n in range(1, 2_001):  # each top-up spends what the cell regained since the last
        now = n * 0.001
        _queue(tm, f"topup{n}", URGENT, cell="a", size=1, now=now)
        assert tm.ready(now) == [f"topup{n}"]
        assert tm.footprint()["wakeups"] <= 2 + 64
    assert tm.ready(2.59) == []  # 400 bytes left at 2 s; the full 1,000 at 2.6 s
    assert tm.ready(2.61) == ["firmware"]


def test_cell_utilisation_is_reported_over_the_budget_window() -> None:
    tm = _manager(cell_bytes_per_s=1_000.0, cell_budget_window_s=2.0)
    for n in range(5):
        _queue(tm, f"read{n}", cell="a", size=200)
    tm.ready(0.0)
    assert tm.cell_utilisation("a", 0.5) == pytest.approx(0.5)
    assert tm.stats(0.5).cell_utilisation == {"a": pytest.approx(0.5)}
    assert tm.cell_utilisation("a", 3.0) == 0.0
    assert tm.cell_utilisation("never-seen", 3.0) == 0.0


def test_idle_users_and_cells_are_forgotten() -> None:
    tm = _manager(**_rate_config())
    for n in range(200):
        decision = tm.admit(f"user{n}", ON_DEMAND, 0.5)
        if isinstance(decision, Admitted):
            tm.offer(f"read{n}", ON_DEMAND, f"cell{n}", 100, 0.5)
    assert tm.footprint()["users"] > 0
    while tm.depth(ON_DEMAND):
        tm.ready(0.5)
        tm.ready(10.0)
    tm.ready(20.0)
    footprint = tm.footprint()
    assert footprint["users"] == 0
    assert footprint["cells"] == 0
    assert footprint["wakeups"] == 0


def test_the_users_held_are_capped_forgetting_the_least_recently_seen() -> None:
    tm = _manager(**_rate_config(max_tracked_users=3, user_burst=1.0))
    for n in range(80):
        tm.admit(f"other{n}", ON_DEMAND, 0.5)
    for n in range(5):
        tm.admit(f"more{n}", ON_DEMAND, 0.5)
    assert tm.footprint()["users"] == 3
    assert isinstance(tm.admit("first", ON_DEMAND, 0.5), Admitted)
    assert isinstance(tm.admit("first", ON_DEMAND, 0.5), Busy)
    for n in range(3):
        tm.admit(f"late{n}", ON_DEMAND, 0.5)
    assert tm.footprint()["users"] == 3
    # forgotten means a fresh allocation: the cap trades exactness for bounded memory
    assert isinstance(tm.admit("first", ON_DEMAND, 0.5), Admitted)


# ---- retry-after -----------------------------------------------------------------------------


def test_a_full_queue_asks_for_the_time_the_queue_ahead_needs_to_drain() -> None:
    bounds = {"queue_bounds": SMALL_BOUNDS, "hub_bound": 1_000, "min_retry_after_s": 0.1}
    tm = _manager(capacity_per_s=10.0, **bounds)
    for n in range(5):
        _queue(tm, f"topup{n}", URGENT)
    refusal = _fill(tm, ON_DEMAND)
    assert refusal.reason is BusyReason.QUEUE_FULL
    # 5 top-ups ahead, then one of the 20 reads must start: 6 commands at 10 per second
    assert refusal.retry_after_s == pytest.approx(0.6)
    tm = _manager(capacity_per_s=2.0, **bounds)
    _fill(tm, ON_DEMAND)
    refusal = _fill(tm, BULK)
    # 20 reads ahead, then one of the 40 bulk reads: 21 commands at 2 per second
    assert refusal.retry_after_s == pytest.approx(10.5)


def test_a_shedding_hub_asks_for_the_time_to_drain_below_the_shed_level() -> None:
    tm = _manager(
        capacity_per_s=4.0, queue_bounds=SMALL_BOUNDS, hub_bound=40, min_retry_after_s=0.1
    )
    _fill(tm, BULK)  # shed level 24
    for _ in range(3):
        _queue(tm, "topup", URGENT)
    refusal = tm.admit("u", BULK, 0.0)
    assert isinstance(refusal, Busy)
    assert refusal.reason is BusyReason.HUB_FULL
    assert refusal.retry_after_s == pytest.approx((27 - 24 + 1) / 4.0)


def test_a_user_over_its_allocation_is_told_when_its_next_token_arrives() -> None:
    tm = _manager(**_rate_config(user_rate_per_s=0.1, user_burst=1.0))
    for n in range(80):
        tm.admit(f"other{n}", ON_DEMAND, 0.5)
    assert isinstance(tm.admit("greedy", ON_DEMAND, 0.5), Admitted)
    refusal = tm.admit("greedy", ON_DEMAND, 0.5)
    assert isinstance(refusal, Busy)
    assert refusal.retry_after_s == pytest.approx(10.0)


def test_retry_after_is_never_below_the_floor_nor_above_the_ceiling() -> None:
    tm = _manager(
        capacity_per_s=0.001,
        queue_bounds=SMALL_BOUNDS,
        hub_bound=1_000,
        min_retry_after_s=2.0,
        max_retry_after_s=600.0,
    )
    assert _fill(tm, URGENT).retry_after_s == 600.0
    tm = _manager(capacity_per_s=1e6, queue_bounds=SMALL_BOUNDS, min_retry_after_s=2.0)
    assert _fill(tm, URGENT).retry_after_s == 2.0


# ---- configuration ---------------------------------------------------------------------------


def test_service_sizes_come_from_the_longest_matching_reference() -> None:
    config = TrafficConfig(command_bytes={"4.8": 4_000, "4.8.2": 9_000}, default_command_bytes=99)
    assert config.size_of("4.8.1") == 4_000
    assert config.size_of("4.8.2") == 9_000
    assert config.size_of("4.1.1") == 99


@pytest.mark.parametrize(
    "bad",
    [
        {"capacity_per_s": 0.0},
        {"near_capacity_share": 1.5},
        {"queue_bounds": {URGENT: 10}},
        {"queue_bounds": SMALL_BOUNDS, "hub_bound": 10},  # less than ALERT + URGENT bounds
        {"shed_at": {ON_DEMAND: 0.5, BULK: 0.9}},  # BULK would shed after ON_DEMAND
        {"shed_at": {URGENT: 1.0, BULK: 0.8}},  # ON_DEMAND protected below a sheddable class
        {"min_retry_after_s": 0.0},
    ],
)
def test_an_inconsistent_configuration_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TrafficConfig(**bad)

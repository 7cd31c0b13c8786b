"""The outbox on its own: timers cost what is due, and memory follows what is held."""

from __future__ import annotations

import tracemalloc

from hub.engine.outbox import COMPACT_SLACK, DeliveryKind, Held, Outbox


def _d(i: int, user: str = "u1", created: float = 0.0, hold: float = 100.0) -> Held:
    return Held(i, user, DeliveryKind.RESPONSE, created + hold)


def test_a_delivery_pushed_again_after_hello_is_retried_only_once_per_interval() -> None:
    box = Outbox(retry_s=10.0, hold_s=1000.0)
    box.online("u1", 0.0)
    assert len(box.add(_d(1, hold=1000.0), 0.0)) == 1
    box.online("u1", 5.0)  # reconnect: pushed again at once
    assert [p.delivery.attempts for p in box.tick(12.0)[0]] == []  # the old timer is void
    assert [p.delivery.attempts for p in box.tick(15.0)[0]] == [3]


def test_an_acknowledged_delivery_never_expires_or_retries() -> None:
    box = Outbox(retry_s=10.0)
    box.online("u1", 0.0)
    box.add(_d(1), 0.0)
    box.ack("u1", [1], 1.0)
    assert box.tick(500.0) == ([], [])


def test_expiry_frees_room_in_the_window_for_what_waits() -> None:
    box = Outbox(retry_s=1000.0, max_in_flight=1)
    box.online("u1", 0.0)
    box.add(_d(1, hold=10.0), 0.0)
    box.add(_d(2, hold=100.0), 0.0)
    pushes, expired = box.tick(10.0)
    assert [e.delivery.delivery_id for e in expired] == [1]
    assert [p.delivery.delivery_id for p in pushes] == [2]


def test_timer_memory_follows_what_is_held_not_what_passed_through() -> None:
    box = Outbox(retry_s=60.0, hold_s=172_800.0)
    box.online("u1", 0.0)
    for i in range(5 * COMPACT_SLACK):
        box.add(_d(i, hold=172_800.0), float(i))
        box.ack("u1", [i], float(i))
        box.tick(float(i))
    assert len(box) == 0
    assert len(box._expiries) <= COMPACT_SLACK + 1
    assert len(box._retries) <= COMPACT_SLACK + 1


def test_a_held_delivery_costs_the_outbox_under_100_bytes_and_no_payload() -> None:
    box = Outbox(hold_s=172_800.0)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(1, 20_001):
            box.add(Held(i, "u-offline", DeliveryKind.RESPONSE, 1000.0 + i, f"r-{i:08d}"), 0.0)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert len(box) == 20_000
    assert grown / 20_000 < 100, grown / 20_000


def test_deliveries_held_out_of_expiry_order_each_expire_at_their_own_time() -> None:
    box = Outbox(retry_s=1000.0)
    # a longer hold restored from before a restart, then shorter ones, and a clock step back
    box.restore(Held(1, "u1", DeliveryKind.RESPONSE, 500.0))
    box.add(Held(2, "u1", DeliveryKind.RESPONSE, 100.0), 0.0)
    box.add(Held(3, "u2", DeliveryKind.HUB_ALERT, 300.0), 0.0)
    box.add(Held(4, "u2", DeliveryKind.HUB_ALERT, 200.0), 0.0)
    expired_at: dict[int, float] = {}
    for now in (99.0, 100.0, 199.0, 200.0, 300.0, 499.0, 500.0):
        for e in box.tick(now)[1]:
            expired_at[e.delivery.delivery_id] = now
    assert expired_at == {2: 100.0, 4: 200.0, 3: 300.0, 1: 500.0}
    assert len(box) == 0


def test_an_offline_user_gets_everything_again_in_order_after_hello_within_its_window() -> None:
    box = Outbox(retry_s=1000.0, hold_s=1000.0, max_in_flight=2)
    for i in range(1, 6):
        box.add(_d(i, hold=1000.0, user="u1" if i != 3 else "u2"), 0.0)
    first = [p.delivery.delivery_id for p in box.online("u1", 1.0)]
    assert first == [1, 2]
    box.offline("u1")
    again = box.online("u1", 2.0)
    assert [(p.delivery.delivery_id, p.delivery.attempts) for p in again] == [(1, 2), (2, 2)]
    done, more = box.ack("u1", [1, 3], 3.0)  # 3 is another user's: ignored
    assert [d.delivery_id for d in done] == [1]
    assert [p.delivery.delivery_id for p in more] == [4]
    assert (box.depth("u1"), box.depth("u2"), box.holds(3)) == (3, 1, True)


def test_columns_and_queues_are_compacted_so_memory_follows_what_is_held() -> None:
    box = Outbox(retry_s=60.0, hold_s=1e9)
    box.online("u1", 0.0)
    box.add(_d(1, hold=1e9), 0.0)  # one old delivery stays held throughout
    for i in range(2, 5 * COMPACT_SLACK):
        box.add(_d(i, hold=1e9), float(i))
        box.ack("u1", [i], float(i))
        box.tick(float(i))
    assert len(box) == 1
    assert len(box._ids) <= COMPACT_SLACK + 2
    assert len(box._users["u1"].ids) <= COMPACT_SLACK + 2
    assert [p.delivery.delivery_id for p in box.online("u1", 1e6)] == [1]


def test_a_discarded_delivery_is_never_pushed_retried_or_expired() -> None:
    box = Outbox(retry_s=10.0)
    box.online("u1", 0.0)
    box.add(_d(1), 0.0)
    box.add(_d(2), 0.0)
    box.discard(2)
    box.discard(2)  # twice is harmless, as is an id never held
    box.discard(99)
    assert (len(box), box.depth("u1"), box.holds(2)) == (1, 1, False)
    done, pushes = box.ack("u1", [1], 1.0)
    assert ([d.delivery_id for d in done], pushes) == ([1], [])
    assert box.next_due() is None
    assert box.tick(500.0) == ([], [])


def test_next_due_skips_stale_timers_and_names_the_earliest_retry_or_expiry() -> None:
    box = Outbox(retry_s=10.0)
    assert box.next_due() is None
    box.online("u1", 0.0)
    box.add(_d(1, hold=100.0), 0.0)  # pushed at 0: retried at 10
    box.add(_d(2, hold=5.0), 1.0)  # expires at 5, before the one held earlier
    assert box.next_due() == 5.0
    box.ack("u1", [2], 2.0)  # its expiry entry goes stale
    assert box.next_due() == 10.0
    box.ack("u1", [1], 3.0)  # its retry and expiry go stale
    assert box.next_due() is None
    box.add(_d(3, created=4.0, hold=100.0), 4.0)
    box.offline("u1")  # no retry while offline: only the expiry is due
    assert box.next_due() == 104.0

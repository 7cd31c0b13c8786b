"""The outbox on its own: timers cost what is due, and memory follows what is held."""

from __future__ import annotations

from hub.engine.outbox import COMPACT_SLACK, Delivery, DeliveryKind, Outbox


def _d(i: int, user: str = "u1", created: float = 0.0, hold: float = 100.0) -> Delivery:
    return Delivery(i, user, DeliveryKind.RESPONSE, b"x", created, created + hold)


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

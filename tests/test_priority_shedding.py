"""Shedding by priority at every capacity check, driven with a fake clock: per comms hub,
hub-wide pending, per user and per cell, urgent work is never refused or held back while
lower-priority work holds the room it needs; lower-priority work is refused first, or, queued,
displaced and answered."""

from __future__ import annotations

from typing import Any

import pytest

from hub import wire
from hub.engine import EngineConfig, HubEngine, RequestState
from hub.policies.traffic import Admitted, Busy, BusyReason, TrafficConfig, TrafficManager
from hub.reference.catalogue import CATALOGUE, PriorityClass
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.service_params import example_params
from tests.world import ESME, World

T0 = 1_700_000_000.0
URGENT = PriorityClass.URGENT
ON_DEMAND = PriorityClass.ON_DEMAND
BULK = PriorityClass.BULK
SIG = (
    bytes(31) + b"\x01" + bytes(31) + b"\x01"
)  # well formed (r = s = 1): the engine checks the form


def _engine(traffic: TrafficConfig | None = None, **config: Any) -> HubEngine:
    if traffic is not None:
        config["traffic"] = traffic
    return HubEngine(World().access, EngineConfig(**config))


def _req(request_id: str, service: str = "4.1.1", **kw: Any) -> bytes:
    params = example_params(service) if not CATALOGUE[service].non_device else {}
    return wire.encode(
        wire.ServiceRequest(
            request_id=request_id,
            role=Role.IS,
            service=service,
            device_id=ESME,
            params=params,
            **kw,
        )
    )


def _code(eng: HubEngine, frame: bytes, now: float = T0) -> ResponseCode:
    msg = wire.decode(eng.on_frame("u-supa", frame, now).send[0].payload)
    assert isinstance(msg, wire.Acknowledgement | wire.Refusal)
    return msg.code


def _diarised(request_id: str) -> bytes:
    """A future-dated tariff change: it travels as bulk work."""
    return _req(request_id, "1.1.1", execute_at=T0 + 86_400, signature=SIG)


# ---- per comms hub ---------------------------------------------------------------------------


def test_a_top_up_is_accepted_at_a_comms_hub_whose_queue_is_full_of_reads() -> None:
    eng = _engine(max_per_comms_hub=8)
    codes = [_code(eng, _req(f"r{n}")) for n in range(20)]
    assert codes.count(ResponseCode.I99) == 6  # on-demand work may fill 3/4 of the room
    assert codes[6:] == [ResponseCode.H8] * 14
    top_ups = [_code(eng, _req(f"t{n}", "2.2")) for n in range(10)]
    assert top_ups[:8] == [ResponseCode.I99] * 8  # the whole room, reads not counted
    assert top_ups[8:] == [ResponseCode.H8] * 2  # its own bound still holds
    assert _code(eng, _req("r-late")) is ResponseCode.H8
    assert eng.index.queued_at(eng.index.get(1).comms_hub or "") == 14  # type: ignore[union-attr]


def test_bulk_work_is_refused_at_a_comms_hub_before_on_demand_work() -> None:
    eng = _engine(max_per_comms_hub=8)
    bulk = [_code(eng, _diarised(f"d{n}")) for n in range(6)]
    assert bulk == [ResponseCode.I99] * 4 + [ResponseCode.H8] * 2  # half of the room
    reads = [_code(eng, _req(f"r{n}")) for n in range(8)]
    assert reads == [ResponseCode.I99] * 6 + [ResponseCode.H8] * 2  # bulk work not counted


# ---- hub-wide pending -----------------------------------------------------------------------


def test_top_ups_are_accepted_while_reads_hold_the_hub_wide_pending_limit() -> None:
    eng = _engine(max_pending=4, max_per_comms_hub=1_000)
    reads = [_code(eng, _req(f"r{n}")) for n in range(5)]
    assert reads == [ResponseCode.I99] * 3 + [ResponseCode.H8] * 2
    assert eng.pending == 3
    top_ups = [_code(eng, _req(f"t{n}", "2.2")) for n in range(5)]
    assert top_ups == [ResponseCode.I99] * 4 + [ResponseCode.H8]
    assert eng.pending == 7  # at most the sum of the classes' rooms


def test_the_room_of_each_class_is_a_share_of_the_bound_and_lower_classes_have_less() -> None:
    config = EngineConfig()
    assert [config.room(64, p) for p in PriorityClass] == [64, 64, 48, 32]
    with pytest.raises(ValueError, match="more room"):
        EngineConfig(class_room={ON_DEMAND: 0.5, BULK: 0.9})
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        EngineConfig(class_room={BULK: 0.0})


# ---- hub-wide room in traffic management: displacement ---------------------------------------


def _slow_traffic() -> TrafficConfig:
    """One command a second leaves the hub, so work stays queued in traffic management;
    the shared room is 30 places (bulk refused at 24)."""
    return TrafficConfig(
        capacity_per_s=1.0,
        capacity_burst=1.0,
        queue_bounds={PriorityClass.ALERT: 5, URGENT: 5, ON_DEMAND: 20, BULK: 20},
        hub_bound=40,
        user_rate_per_s=1_000.0,
        user_burst=1_000.0,
    )


def test_queued_bulk_work_is_displaced_for_a_read_and_answered_busy() -> None:
    eng = _engine(_slow_traffic(), max_pending=10_000, max_per_comms_hub=10_000)
    bulk = [_code(eng, _diarised(f"d{n}")) for n in range(22)]
    assert bulk == [ResponseCode.I99] * 21 + [ResponseCode.H8]  # 1 started, 20 queued
    for n in range(10):  # the shared room fills up (30 places)
        assert _code(eng, _req(f"r{n}")) is ResponseCode.I99
    assert eng.traffic.occupancy() == 30
    [d20] = [r for r in eng.index.in_state(RequestState.QUEUED) if r.request_id == "d20"]
    eff = eng.on_frame("u-supa", _req("r-more"), T0)
    ack = wire.decode(eff.send[0].payload)
    assert isinstance(ack, wire.Acknowledgement)
    assert ack.code is ResponseCode.I99
    [displaced] = [wire.decode(d.payload) for d in eff.add_deliveries]
    assert isinstance(displaced, wire.ServiceResponse)
    assert (displaced.request_id, displaced.code) == ("d20", ResponseCode.H8)  # the newest
    assert displaced.body["retry_after_s"] == eng.config.busy_retry_s
    assert "displaced" in str(displaced.body["reason"])
    assert eff.complete_requests == [d20.seq]
    assert d20.state is RequestState.COMPLETED
    assert eng.index.get(d20.seq) is None  # no longer open: remembered compactly
    assert eng.traffic.occupancy() == 30
    assert eng.traffic.stats(T0).displaced[BULK] == 1
    # it never reached the device: no outcome is awaited for it, so no E30 follows
    late = eng.tick(T0 + 86_400 + eng.config.outcome_timeout_s + 1)
    answered = [wire.decode(d.payload) for d in late.add_deliveries]
    assert all(getattr(m, "request_id", None) != "d20" for m in answered)


def test_a_top_up_needs_no_displacement_because_its_room_is_set_aside() -> None:
    eng = _engine(_slow_traffic(), max_pending=10_000, max_per_comms_hub=10_000)
    for n in range(21):
        _code(eng, _diarised(f"d{n}"))
    for n in range(10):
        _code(eng, _req(f"r{n}"))
    eff = eng.on_frame("u-supa", _req("t1", "2.2"), T0)
    assert wire.decode(eff.send[0].payload).code is ResponseCode.I99  # type: ignore[union-attr]
    assert eff.add_deliveries == []
    assert eng.traffic.stats(T0).displaced == dict.fromkeys(PriorityClass, 0)


# ---- per user and per cell (traffic management alone) ---------------------------------------


def _near_capacity(tm: TrafficManager[str], now: float) -> None:
    for n in range(80):
        assert isinstance(tm.admit(f"other{n}", ON_DEMAND, now), Admitted)
    assert tm.near_capacity(now)


def test_near_capacity_bulk_work_leaves_part_of_a_users_allocation_for_its_reads() -> None:
    tm: TrafficManager[str] = TrafficManager(
        TrafficConfig(capacity_per_s=100.0, load_window_s=1.0, user_rate_per_s=1.0, user_burst=10.0)
    )
    _near_capacity(tm, 0.5)
    bulk = [tm.admit("greedy", BULK, 0.5) for _ in range(10)]
    assert sum(isinstance(d, Admitted) for d in bulk) == 8  # 20% of the burst kept back
    refused = bulk[-1]
    assert isinstance(refused, Busy)
    assert refused.reason is BusyReason.USER_ALLOCATION
    reads = [tm.admit("greedy", ON_DEMAND, 0.5) for _ in range(3)]
    assert [isinstance(d, Admitted) for d in reads] == [True, True, False]


def test_bulk_commands_leave_part_of_a_cells_budget_for_a_top_up() -> None:
    # 1,000 bytes a second, one second of burst: bulk keeps 100 bytes back
    tm: TrafficManager[str] = TrafficManager(
        TrafficConfig(cell_bytes_per_s=1_000.0, cell_budget_window_s=1.0)
    )
    for n in range(12):
        assert isinstance(tm.admit("u", BULK, 0.0), Admitted)
        tm.offer(f"bulk{n}", BULK, "c1", 100, 0.0)
    assert tm.ready(0.0) == [f"bulk{n}" for n in range(9)]
    assert isinstance(tm.admit("u", URGENT, 0.01), Admitted)
    tm.offer("top-up", URGENT, "c1", 100, 0.01)
    assert tm.ready(0.01) == ["top-up"]  # at once, not after the bulk work's refill
    assert tm.ready(0.19) == []
    assert tm.ready(0.21) == ["bulk9"]


def test_without_a_cell_reserve_the_top_up_waits_for_the_refill() -> None:
    tm: TrafficManager[str] = TrafficManager(
        TrafficConfig(cell_bytes_per_s=1_000.0, cell_budget_window_s=1.0, cell_reserve={})
    )
    for n in range(12):
        tm.admit("u", BULK, 0.0)
        tm.offer(f"bulk{n}", BULK, "c1", 100, 0.0)
    assert len(tm.ready(0.0)) == 10
    tm.admit("u", URGENT, 0.01)
    tm.offer("top-up", URGENT, "c1", 100, 0.01)
    assert tm.ready(0.01) == []


def test_a_reserve_that_favours_a_lower_class_is_refused() -> None:
    with pytest.raises(ValueError, match="cell_reserve"):
        TrafficConfig(cell_reserve={ON_DEMAND: 0.3, BULK: 0.1})
    with pytest.raises(ValueError, match="user_reserve"):
        TrafficConfig(user_reserve={BULK: 1.0})


def test_displacement_takes_the_newest_item_of_the_lowest_class_and_keeps_the_bounds() -> None:
    tm: TrafficManager[str] = TrafficManager(
        TrafficConfig(
            capacity_per_s=1.0,
            capacity_burst=1.0,
            queue_bounds={PriorityClass.ALERT: 1, URGENT: 1, ON_DEMAND: 10, BULK: 10},
            hub_bound=12,
            shed_at={ON_DEMAND: 1.0, BULK: 1.0},
        )
    )
    for n in range(6):
        assert isinstance(tm.admit("u", BULK, 0.0), Admitted)
        tm.offer(f"bulk{n}", BULK, f"c{n % 2}", 100, 0.0)
    for n in range(4):
        assert isinstance(tm.admit("u", ON_DEMAND, 0.0), Admitted)
        tm.offer(f"read{n}", ON_DEMAND, "c0", 100, 0.0)
    assert tm.occupancy() == 10
    for n in range(4, 10):
        assert isinstance(tm.admit("u", ON_DEMAND, 0.0), Admitted)
        tm.offer(f"read{n}", ON_DEMAND, "c1", 100, 0.0)
    assert tm.take_displaced() == ["bulk5", "bulk4", "bulk3", "bulk2", "bulk1", "bulk0"]
    assert (tm.depth(BULK), tm.depth(ON_DEMAND), tm.occupancy()) == (0, 10, 10)
    refusal = tm.admit("u", ON_DEMAND, 0.0)
    assert isinstance(refusal, Busy)
    assert refusal.reason is BusyReason.QUEUE_FULL
    started: list[str] = []
    for t in range(1, 20):
        started += tm.ready(float(t))
    assert started == [f"read{n}" for n in range(10)]
    assert tm.footprint()["schedule_entries"] == 0

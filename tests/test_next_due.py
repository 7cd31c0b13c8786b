"""``HubEngine.next_due``: when a driver must next tick the engine. Each kind of timed work is
put in, the engine is ticked only at the instants ``next_due`` names, and the work is seen done
at its instant and not a moment before; a property compares ticking only when due with ticking
every 0.1 s; the simulator ticks only when the engine says so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub import wire
from hub.engine import Effects, EngineConfig, HubEngine
from hub.policies.traffic import TrafficConfig
from hub.reference.catalogue import CATALOGUE
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.service_params import example_params
from hub.reference.standard import CommandStatus, DeviceAlert, DeviceResponse
from hub.reference.uktime import from_uk_local, uk_date
from meters_sim.simulator import SimConfig, Simulation
from simfield.fleet import generate_fleet
from simfield.fleet_dir import load_fleet
from simfield.fleet_files import write_fleet
from simfield.headend_plugins import load_head_ends
from tests.live_support import supplier_meter
from tests.world import COS_DAY, ESME, MPAN, World, at

T0 = at(COS_DAY - timedelta(days=10)).timestamp()
SIG = (
    bytes(31) + b"\x01" + bytes(31) + b"\x01"
)  # well formed (r = s = 1); the engine only checks the form
JUST_BEFORE = 0.25


def _engine(**config: object) -> HubEngine:
    return HubEngine(World().access, EngineConfig(**config))  # type: ignore[arg-type]


def _req(request_id: str, service: str = "4.1.1", **kw: object) -> bytes:
    params = kw.pop("params", example_params(service) if not CATALOGUE[service].non_device else {})
    device = kw.pop("device", ESME)
    return wire.encode(
        wire.ServiceRequest(
            request_id=request_id,
            role=Role.IS,
            service=service,
            device_id=device,  # type: ignore[arg-type]
            params=params,  # type: ignore[arg-type]
            **kw,  # type: ignore[arg-type]
        )
    )


def _settled(eng: HubEngine, now: float = T0) -> HubEngine:
    """The engine after its first tick (which starts the day's sweep and the forgetting)."""
    eng.tick(now)
    return eng


def _walk_to(eng: HubEngine, now: float, until: float) -> float:
    """Tick at every instant ``next_due`` names before ``until``, as a driver would; return the
    last instant ticked."""
    for _ in range(10_000):
        due = eng.next_due(now)
        assert due is not None
        assert due > now, "a tick left work due at its own instant"
        if due >= until:
            return now
        eng.tick(due)
        now = due
    raise AssertionError("next_due never reached the item")


def _due_exactly(
    eng: HubEngine, now: float, due: float, handled: Callable[[Effects], bool]
) -> None:
    """Ticking only when due reaches ``due`` (never later), the item is not handled just before
    it, and is handled at it."""
    now = _walk_to(eng, now, due)
    assert eng.next_due(now) == due
    assert not handled(eng.tick(due - JUST_BEFORE))
    assert handled(eng.tick(due))


def _responses(effects: Effects) -> list[wire.ServiceResponse]:
    out = [wire.decode(d.payload) for d in effects.add_deliveries]
    return [m for m in out if isinstance(m, wire.ServiceResponse)]


def _codes(effects: Effects) -> list[ResponseCode]:
    return [m.code for m in _responses(effects)]


# ---- one test per kind of timed work ----------------------------------------------------------


def test_next_due_names_the_instant_an_unacknowledged_push_is_retried() -> None:
    eng = _settled(_engine(retry_s=17.0))
    eng.on_hello("u-supa", None, T0 + 1)
    eff = eng.on_frame("u-supa", _req("r1", service="8.2"), T0 + 2)
    [push] = [s for s in eff.send if s.push]

    def retried(effects: Effects) -> bool:
        return any(s.push and s.delivery_id == push.delivery_id for s in effects.send)

    _due_exactly(eng, T0 + 2, T0 + 2 + 17.0, retried)


def test_next_due_names_the_instant_an_undelivered_response_expires() -> None:
    eng = _settled(_engine(hold_s=300.0))
    eng.on_frame("u-supa", _req("r1", service="8.2"), T0 + 3)  # nobody online: held
    _due_exactly(eng, T0 + 3, T0 + 3 + 300.0, lambda e: e.expired == 1)


def test_next_due_names_the_instant_an_unanswered_command_times_out() -> None:
    eng = _settled(_engine(response_timeout_s=45.0))
    eff = eng.on_frame("u-supa", _req("r1"), T0 + 4)
    assert eff.dispatch
    _due_exactly(eng, T0 + 4, T0 + 4 + 45.0, lambda e: _codes(e) == [ResponseCode.E21])


def test_next_due_names_the_instant_a_held_request_comes_due() -> None:
    eng = _settled(_engine())
    later = T0 + 1234.0
    eff = eng.on_frame("u-supa", _req("r1", execute_at=later), T0 + 5)
    assert eff.dispatch == []
    _due_exactly(eng, T0 + 5, later, lambda e: len(e.dispatch) == 1)


def test_next_due_names_the_instant_a_missing_outcome_gets_e30() -> None:
    eng = _settled(_engine(outcome_timeout_s=600.0))
    later = T0 + 3600.0
    eff = eng.on_frame("u-supa", _req("r1", service="1.1.1", execute_at=later, signature=SIG), T0)
    cmd = eff.dispatch[0].command.command_id
    eng.on_device_response(DeviceResponse(cmd, ESME, "1.1.1", CommandStatus.SCHEDULED), T0 + 1)
    _due_exactly(eng, T0 + 1, later + 600.0, lambda e: _codes(e) == [ResponseCode.E30])


def test_next_due_names_the_instant_a_schedule_fires() -> None:
    eng = _settled(_engine(schedule_window_s=600.0))
    day = uk_date(datetime.fromtimestamp(T0, UTC)) + timedelta(days=1)
    params = {
        "service": "4.8.1",
        "device_id": ESME,
        "recurrence": "daily",
        "start_date": day.isoformat(),
        "time_of_day": "02:00",
        "params": {"window_s": 86400},
    }
    created = eng.on_frame("u-supa", _req("c1", service="5.1", device=None, params=params), T0)
    [response] = _responses(created)
    first = response.body["first_firing_at"]
    assert isinstance(first, float)
    _due_exactly(eng, T0, first, lambda e: len(e.dispatch) == 1)


def test_next_due_names_the_instant_the_hub_rate_lets_a_queued_command_start() -> None:
    traffic = TrafficConfig(capacity_per_s=0.125, capacity_burst=1.0)
    eng = _settled(_engine(traffic=traffic))
    assert len(eng.on_frame("u-supa", _req("r1"), T0 + 1).dispatch) == 1
    assert eng.on_frame("u-supa", _req("r2"), T0 + 1).dispatch == []  # waits for the rate
    _due_exactly(eng, T0 + 1, T0 + 1 + 8.0, lambda e: len(e.dispatch) == 1)


def test_next_due_names_the_instant_a_cell_has_budget_for_a_waiting_command() -> None:
    size = 64
    traffic = TrafficConfig(
        capacity_per_s=1000.0,
        cell_bytes_per_s=16.0,
        cell_budget_window_s=4.0,
        command_bytes={"4.1.1": size},
    )
    eng = _settled(_engine(traffic=traffic))
    assert len(eng.on_frame("u-supa", _req("r1"), T0 + 1).dispatch) == 1
    assert eng.on_frame("u-supa", _req("r2"), T0 + 1).dispatch == []  # waits for the cell
    refilled = T0 + 1 + size / 16.0  # the budget spent on the first is back
    now = _walk_to(eng, T0 + 1, refilled)
    due = eng.next_due(now)
    assert due is not None
    assert due == pytest.approx(refilled, abs=1e-6)
    assert eng.tick(due - JUST_BEFORE).dispatch == []
    assert len(eng.tick(due).dispatch) == 1


def _quarantining(**config: object) -> HubEngine:
    eng = _settled(_engine(**config))
    limits = wire.SetThresholds(service="4.1.1", warning=1, quarantine=1, period_s=3600.0)
    eng.on_frame("u-supa", wire.encode(limits), T0)
    eng.on_frame("u-supa", _req("r1"), T0 + 1)
    held = eng.on_frame("u-supa", _req("r2"), T0 + 2)
    assert wire.decode(held.send[0].payload).code is ResponseCode.H7  # type: ignore[union-attr]
    return eng


def test_next_due_names_the_instant_a_quarantine_notice_is_told() -> None:
    eng = _quarantining()
    notify_at = T0 + 2 + eng.quarantine.config.notify_after_s

    def told(effects: Effects) -> bool:
        alerts = [wire.decode(d.payload) for d in effects.add_deliveries]
        return any(isinstance(m, wire.HubAlert) and m.alert_code == "QUARANTINED" for m in alerts)

    _due_exactly(eng, T0 + 2, notify_at, told)


def test_next_due_names_the_instant_a_quarantined_request_expires() -> None:
    eng = _quarantining(quarantine_hold_s=900.0)

    def deleted(effects: Effects) -> bool:
        return any("not released within" in (a.reason or "") for a in effects.audit)

    _due_exactly(eng, T0 + 2, T0 + 2 + 900.0, deleted)


def test_next_due_names_the_uk_midnight_the_change_of_supplier_sweep_runs() -> None:
    eng = _settled(_engine())
    held = eng.on_frame("u-supa", _req("h1", execute_at=T0 + 5 * 86400), T0)
    assert isinstance(wire.decode(held.send[0].payload), wire.Acknowledgement)
    tomorrow = uk_date(datetime.fromtimestamp(T0, UTC)) + timedelta(days=1)
    mp = eng.access.registration.meter_points[MPAN]
    eng.access.registration.meter_points[MPAN] = replace(  # a change registered after acceptance
        mp,
        registrations=(
            replace(mp.registrations[0], effective_to=tomorrow),
            replace(mp.registrations[1], effective_from=tomorrow),
        ),
    )
    midnight = from_uk_local(datetime.combine(tomorrow, datetime.min.time())).timestamp()
    _due_exactly(eng, T0, midnight, lambda e: _codes(e) == [ResponseCode.E4])


def test_next_due_is_now_while_the_sweep_has_slices_left() -> None:
    eng = _engine(sweep_per_tick=1)
    for n in range(3):
        eng.on_frame("u-supa", _req(f"h{n}", execute_at=T0 + 86400), T0)
    eng.tick(T0)  # a new day: three held requests to sweep, one per tick
    assert eng.next_due(T0) == T0
    eng.tick(T0)
    assert eng.next_due(T0) == T0
    eng.tick(T0)
    due = eng.next_due(T0)
    assert due is not None
    assert due > T0


def test_next_due_names_the_instant_idle_counters_are_forgotten() -> None:
    eng = _settled(_engine())
    limits = wire.SetThresholds(service="4.1.1", warning=50, quarantine=100, period_s=60.0)
    eng.on_frame("u-supa", wire.encode(limits), T0)
    eng.on_frame("u-supa", _req("r1"), T0 + 1)
    assert eng.anomaly.tracked == 1
    # idle from T0 + 61; forgotten by the minutely sweep after that, a minute from T0 + 60
    now = _walk_to(eng, T0 + 1, T0 + 120.0)
    assert eng.anomaly.tracked == 1
    assert eng.next_due(now) == T0 + 120.0
    eng.tick(T0 + 120.0 - JUST_BEFORE)
    assert eng.anomaly.tracked == 1
    eng.tick(T0 + 120.0)
    assert eng.anomaly.tracked == 0


def test_next_due_names_the_instant_a_request_id_is_forgotten() -> None:
    eng = _settled(_engine(idempotency_s=500.0))
    eng.on_frame("u-supa", _req("r1", service="8.2"), T0 + 7)
    now = _walk_to(eng, T0 + 7, T0 + 507.0)
    assert eng.next_due(now) == T0 + 507.0
    eng.tick(T0 + 507.0 - JUST_BEFORE)
    assert eng.index.known("u-supa", "r1") is not None
    eng.tick(T0 + 507.0)
    assert eng.index.known("u-supa", "r1") is None


def test_next_due_is_now_while_more_request_ids_are_remembered_than_the_cap() -> None:
    eng = _settled(_engine(idempotency_max=2))
    for n in range(3):
        eng.on_frame("u-supa", _req(f"r{n}", service="8.2"), T0 + 1)
    assert eng.next_due(T0 + 1) == T0 + 1
    eng.tick(T0 + 1)
    assert eng.index.remembered == 2
    due = eng.next_due(T0 + 1)
    assert due is not None
    assert due > T0 + 1


def test_an_idle_engine_is_due_only_for_its_forgetting_and_the_next_sweep() -> None:
    eng = _engine()
    due = eng.next_due(T0)
    assert due is not None
    assert due <= T0
    eng.tick(T0)
    midnight = from_uk_local(
        datetime.combine(
            uk_date(datetime.fromtimestamp(T0, UTC)) + timedelta(days=1), datetime.min.time()
        )
    ).timestamp()
    assert eng.next_due(T0) == min(T0 + 60.0, midnight)
    assert eng.tick(T0 + 60.0) == Effects()
    assert eng.next_due(T0 + 60.0) == T0 + 120.0


# ---- ticking only when due is ticking often enough ----------------------------------------------

STEP = 0.1
EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("read")),
        st.tuples(st.just("held"), st.integers(1, 40)),
        st.tuples(st.just("outcome"), st.integers(1, 40)),
        st.tuples(st.just("inventory")),
        st.tuples(st.just("answer"), st.integers(0, 20)),
        st.tuples(st.just("fail"), st.integers(0, 20)),
        st.tuples(st.just("alert"), st.integers(0, 20)),
        st.tuples(st.just("hello")),
        st.tuples(st.just("offline")),
        st.tuples(st.just("ack"), st.integers(1, 5)),
        st.tuples(st.just("wait"), st.integers(1, 40)),
    ),
    max_size=30,
)


class _Run:
    """One engine under a script of events at whole seconds, recording every effect."""

    def __init__(self) -> None:
        traffic = TrafficConfig(capacity_per_s=0.5, capacity_burst=1.0)
        self.eng = _engine(
            retry_s=7.0,
            hold_s=60.0,
            response_timeout_s=13.0,
            outcome_timeout_s=20.0,
            idempotency_s=90.0,
            idempotency_max=6,
            quarantine_hold_s=45.0,
            traffic=traffic,
        )
        self.log: list[tuple[float, str, object]] = []
        self.open: list[str] = []  # command ids dispatched and not yet answered
        self.outcomes: list[str] = []  # Device-pattern command ids
        self.pushed: list[int] = []
        self.n = 0

    def record(self, now: float, effects: Effects) -> None:
        if effects == Effects():
            return
        self.log.append((now, "audit", tuple(effects.audit)))
        self.log.append((now, "send", tuple((s.user_id, s.payload, s.push) for s in effects.send)))
        self.log.append((now, "dispatch", tuple(effects.dispatch)))
        self.log.append((now, "done", (tuple(effects.complete_requests), effects.expired)))
        for d in effects.dispatch:
            self.open.append(d.command.command_id)
            if d.command.execute_at is not None:
                self.outcomes.append(d.command.command_id)
        for s in effects.send:
            if s.push:  # a retried push names its delivery; the driver fills its payload
                assert s.delivery_id is not None
                self.pushed.append(s.delivery_id)

    def tick(self, now: float) -> None:
        self.record(now, self.eng.tick(now))

    def event(self, event: tuple[object, ...], now: float) -> None:
        eng, kind = self.eng, event[0]
        self.n += 1
        rid = f"r{self.n}"
        if kind == "read":
            effects = eng.on_frame("u-supa", _req(rid), now)
        elif kind == "held":
            effects = eng.on_frame("u-supa", _req(rid, execute_at=now + int(event[1])), now)  # type: ignore[call-overload]
        elif kind == "outcome":
            later = now + int(event[1])  # type: ignore[call-overload]
            effects = eng.on_frame(
                "u-supa", _req(rid, service="1.1.1", execute_at=later, signature=SIG), now
            )
        elif kind == "inventory":
            effects = eng.on_frame("u-supa", _req(rid, service="8.2"), now)
        elif kind in ("answer", "fail"):
            if not self.open:
                return
            cmd = self.open.pop(int(event[1]) % len(self.open))  # type: ignore[call-overload]
            if kind == "fail":
                effects = eng.on_device_failure(cmd, ResponseCode.E20, "unreachable", now)
            else:
                status = CommandStatus.SCHEDULED if cmd in self.outcomes else CommandStatus.SUCCESS
                effects = eng.on_device_response(DeviceResponse(cmd, ESME, "x", status), now)
        elif kind == "alert":
            if not self.outcomes:
                return
            cmd = self.outcomes[int(event[1]) % len(self.outcomes)]  # type: ignore[call-overload]
            alert = DeviceAlert(ESME, "8F66", now, {"command_id": cmd})
            effects = eng.on_device_alert(alert, now)
        elif kind == "hello":
            effects = eng.on_hello("u-supa", None, now)
        elif kind == "offline":
            eng.on_unreachable("u-supa")
            return
        else:
            ids, self.pushed = self.pushed[: int(event[1])], self.pushed[int(event[1]) :]  # type: ignore[call-overload]
            effects = eng.on_ack("u-supa", ids, now)
        self.record(now, effects)


def _script(events: list[tuple[object, ...]]) -> tuple[list[tuple[int, tuple[object, ...]]], int]:
    """Events at whole seconds after T0, and the second the run ends at."""
    t, out = 0, []
    for event in events:
        if event[0] == "wait":
            t += int(event[1])  # type: ignore[call-overload]
        else:
            out.append((t, event))
    return out, t + 60


@settings(max_examples=40, deadline=None)
@given(EVENTS)
def test_ticking_only_when_due_has_the_same_effects_as_ticking_every_tenth_of_a_second(
    events: list[tuple[object, ...]],
) -> None:
    script, end = _script(events)
    limits = wire.encode(
        wire.SetThresholds(service="4.1.1", warning=3, quarantine=4, period_s=60.0)
    )
    # every 0.1 s: events at an instant, then a tick
    often = _Run()
    often.eng.on_frame("u-supa", limits, T0)
    pending = list(script)
    for k in range(end * 10 + 1):
        now = T0 + k * STEP if k % 10 else T0 + k // 10  # whole seconds exactly
        while pending and T0 + pending[0][0] == now:
            often.event(pending.pop(0)[1], now)
        often.tick(now)
    # only when due: events at an instant, then a tick if due; between, ticks where due
    lazy = _Run()
    lazy.eng.on_frame("u-supa", limits, T0)
    now, until = T0, T0 + end
    for second in sorted({s for s, _ in script} | {end}):
        at_s = T0 + second
        while (due := lazy.eng.next_due(now)) is not None and due < at_s:
            now = max(due, now)  # due already (the first tick): now
            lazy.tick(now)
            after = lazy.eng.next_due(now)
            assert after is None or after > now
        now = at_s
        for s, event in script:
            if s == second:
                lazy.event(event, now)
        due = lazy.eng.next_due(now)
        if due is not None and due <= now:
            lazy.tick(now)
    assert now == until
    assert lazy.log == often.log


# ---- the simulator ticks only when the engine says so --------------------------------------------


def test_the_simulator_retries_a_push_at_its_instant_without_a_fixed_ticker(
    tmp_path: Path,
) -> None:
    write_fleet(generate_fleet(12, 4, datetime.now(UTC).date()), tmp_path)
    fleet = load_fleet(tmp_path)
    user, meter = supplier_meter(fleet)
    start = float(int(datetime.now(UTC).timestamp()))
    config = SimConfig(start=start, engine=EngineConfig(retry_s=7.3, hold_s=3600.0))
    sim = Simulation(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        load_head_ends(),
        config,
    )
    ticks: list[float] = []
    tick = sim.engine.tick

    def counted(now: float) -> Effects:
        ticks.append(now)
        return tick(now)

    sim.engine.tick = counted  # type: ignore[method-assign]
    conn = sim.connect(user)  # keeps what it gets and never acknowledges
    sim.hello(user, conn)
    request = wire.ServiceRequest(
        request_id="r1", role=Role.IS, service="8.2", device_id=meter.device_id
    )
    sim.at(start + 1, lambda: sim.request(user, request, conn))
    sim.run(until=start + 1 + 7.3 - 0.01)
    assert conn.duplicates == 0
    sim.run(until=start + 1 + 7.3 + 0.01)
    assert conn.duplicates == 1  # pushed again 7.3 s later, not on a whole-second tick
    assert start + 1 + 7.3 in ticks
    sim.run(until=start + 3600)
    # an hour with nothing else due: the minutely forgetting, not a tick every second
    assert len(ticks) < 3600 / 60 + 10

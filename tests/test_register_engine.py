"""The engine takes register changes while it runs: applied all or none, audited, persisted,
carried out on their effective UK day (schedules stopped, the loser told, held requests
stopped), and neither lost nor repeated across a restart. Pure: no sockets, a given clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hub import wire
from hub.engine import AuditKind, EngineConfig, HubEngine
from hub.engine.register_changes import CHANGE_OF_SUPPLIER_ALERT
from hub.policies.access import AccessRequest
from hub.ports.memory_store import MemoryStore
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.service_params import example_params
from hub.reference.uktime import uk_date
from hub.registers.changes import (
    ChangeBatch,
    ChangeId,
    ConsentGiven,
    ElectricitySupplierChange,
    Register,
    SettlementChange,
    TenancyChange,
)
from hub.registers.registration import Settlement
from tests.world import COS_DAY, ESME, MPAN, World, at

T0 = at(COS_DAY - timedelta(days=10)).timestamp()
TODAY = uk_date(datetime.fromtimestamp(T0, UTC))
EFFECTIVE = TODAY + timedelta(days=3)


def _engine() -> HubEngine:
    return HubEngine(World().access, EngineConfig(schedule_window_s=60.0))


def _day_start(day: date) -> float:
    from hub.engine.register_changes import _day_start as start

    return start(day)


def _cos(
    seq: int = 1, effective: date = EFFECTIVE, supplier: str = "SUPC"
) -> ElectricitySupplierChange:
    return ElectricitySupplierChange(
        change_id=ChangeId(Register.ELECTRICITY, seq),
        effective=effective,
        mpxn=MPAN,
        supplier=supplier,
        source=f"electricity-1.csv:{seq + 1}",
    )


def _schedule(
    eng: HubEngine, rid: str, service: str = "4.8.1", user: str = "u-supa", role: Role = Role.IS
) -> str:
    params: dict[str, object] = {
        "service": service,
        "device_id": ESME,
        "recurrence": "daily",
        "start_date": TODAY.isoformat(),
        "time_of_day": "02:00",
        "params": {"window_s": 86400},
    }
    frame = wire.encode(
        wire.ServiceRequest(request_id=rid, role=role, service="5.1", params=params)  # type: ignore[arg-type]
    )
    eff = eng.on_frame(user, frame, T0)
    resp = wire.decode(eff.add_deliveries[0].payload)
    assert isinstance(resp, wire.ServiceResponse), resp
    assert resp.code is ResponseCode.I0, resp
    return str(resp.body["schedule_id"])


def _alerts(effects_list: list[wire.Message], code: str) -> list[wire.HubAlert]:
    return [m for m in effects_list if isinstance(m, wire.HubAlert) and m.alert_code == code]


def _delivered(eff: object) -> list[wire.Message]:
    return [wire.decode(d.payload) for d in eff.add_deliveries]  # type: ignore[attr-defined]


def _access(eng: HubEngine, user: str, day: date) -> ResponseCode:
    when = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return eng.access.decide(AccessRequest(user, Role.IS, "4.1.1", ESME, when)).code


def test_a_change_of_supplier_is_applied_audited_and_persisted_when_it_arrives() -> None:
    eng = _engine()
    eff = eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(),)), T0)
    [audit] = [a for a in eff.audit if a.kind is AuditKind.REGISTER_CHANGE]
    assert "electricity:1" in audit.reason
    assert "electricity-1.csv:2" in audit.reason
    [stored] = eff.save_register_changes
    assert stored.change == _cos()
    assert not stored.done
    assert eng.registers.applied("electricity:1")
    outcome = eng.registers.outcome("electricity-1.csv")
    assert outcome is not None
    assert (outcome.applied, outcome.repeated, outcome.refused) == (1, 0, None)


def test_access_moves_on_the_effective_day_and_not_before() -> None:
    eng = _engine()
    eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(),)), T0)
    assert _access(eng, "u-supa", EFFECTIVE - timedelta(days=1)) is ResponseCode.I99
    assert _access(eng, "u-supa", EFFECTIVE) is ResponseCode.E4


def test_on_the_effective_day_the_losers_schedules_stop_and_it_is_told() -> None:
    eng = _engine()
    sid = _schedule(eng, "s1")
    eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(),)), T0)
    start = _day_start(EFFECTIVE)
    due = eng.next_due(T0)
    assert due is not None
    assert due <= start
    before = eng.tick(start - 1)
    assert sid not in before.delete_schedules
    assert eng.scheduler.get(sid) is not None
    eff = eng.tick(start)
    assert sid in eff.delete_schedules
    assert eng.scheduler.get(sid) is None
    messages = _delivered(eff)
    [stopped] = _alerts(messages, "SCHEDULE_STOPPED")
    assert stopped.data["schedule_id"] == sid
    [told] = _alerts(messages, CHANGE_OF_SUPPLIER_ALERT)
    assert told.data == {
        "mpxn": MPAN,
        "effective": EFFECTIVE.isoformat(),
        "change_id": "electricity:1",
    }
    assert [d.user_id for d in eff.add_deliveries if wire.decode(d.payload) is not None] == [
        "u-supa",
        "u-supa",
    ]
    assert [s.done for s in eff.save_register_changes] == [True]


def test_a_change_effective_today_is_carried_out_at_once() -> None:
    eng = _engine()
    sid = _schedule(eng, "s1")
    eff = eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(effective=TODAY),)), T0)
    assert sid in eff.delete_schedules
    assert _alerts(_delivered(eff), CHANGE_OF_SUPPLIER_ALERT)


def test_the_losers_held_future_dated_requests_are_stopped_and_answered_e4() -> None:
    eng = _engine()
    later = _day_start(EFFECTIVE) + 7200
    frame = wire.encode(
        wire.ServiceRequest(
            request_id="h1",
            role=Role.IS,
            service="4.1.1",
            device_id=ESME,
            params=example_params("4.1.1"),
            execute_at=later,
        )
    )
    eng.on_frame("u-supa", frame, T0)
    eff = eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(),)), T0 + 1)
    [resp] = [m for m in _delivered(eff) if isinstance(m, wire.ServiceResponse)]
    assert resp.request_id == "h1"
    assert resp.code is ResponseCode.E4
    assert "stopped" in str(resp.body["reason"])
    assert eng.tick(later).dispatch == []


def test_a_batch_with_one_unfit_change_is_refused_whole_and_changes_nothing() -> None:
    eng = _engine()
    before = eng.access.registration.meter_points[MPAN]
    bad = TenancyChange(
        change_id=ChangeId(Register.ELECTRICITY, 2),
        effective=EFFECTIVE,
        mpxn="1900000000000",
        source="electricity-1.csv:3",
    )
    eff = eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(), bad)), T0)
    assert eng.access.registration.meter_points[MPAN] is before
    assert eng.access.registration.applied == set()
    assert eff.save_register_changes == []
    [audit] = eff.audit
    assert audit.kind is AuditKind.REGISTER_CHANGE_REFUSED
    assert "electricity-1.csv:3" in audit.reason
    outcome = eng.registers.outcome("electricity-1.csv")
    assert outcome is not None
    assert outcome.refused is not None
    assert "electricity-1.csv:3" in outcome.refused
    assert not eng.registers.applied("electricity:1")


def test_an_unreadable_file_is_refused_and_audited() -> None:
    eng = _engine()
    eff = eng.on_register_changes(
        ChangeBatch("gas-2.csv", problem="gas-2.csv:4: ldz 'XX' is not one of SC"), T0
    )
    [audit] = eff.audit
    assert audit.kind is AuditKind.REGISTER_CHANGE_REFUSED
    assert "gas-2.csv:4" in audit.reason


def _restored(store: MemoryStore, now: float) -> HubEngine:
    eng = _engine()  # a fresh world: the fleet's registers as loaded at a start
    r = store.load(since=0.0)
    eng.restore(
        r.requests,
        r.deliveries,
        r.next_seq,
        r.next_delivery,
        now,
        r.schedules,
        r.next_schedule,
        r.transfers,
        register_changes=r.register_changes,
    )
    return eng


def _apply(store: MemoryStore, eng: HubEngine, eff: object) -> None:
    store.apply(eff, eng.next_seq, eng.next_delivery, eng.scheduler.next_number)  # type: ignore[arg-type]


def test_after_a_restart_changes_are_reapplied_in_order_and_a_repeat_does_nothing() -> None:
    store = MemoryStore()
    eng = _engine()
    _apply(store, eng, eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(),)), T0))
    later = _cos(seq=2, effective=EFFECTIVE + timedelta(days=5), supplier="SUPD")
    _apply(store, eng, eng.on_register_changes(ChangeBatch("electricity-2.csv", (later,)), T0))
    again = _restored(store, T0 + 10)
    mp = again.access.registration.meter_points[MPAN]
    assert mp.supplier_on(EFFECTIVE) == "SUPC"
    assert mp.supplier_on(EFFECTIVE + timedelta(days=5)) == "SUPD"
    repeat = again.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(),)), T0 + 20)
    assert not repeat.needs_persisting
    outcome = again.registers.outcome("electricity-1.csv")
    assert outcome is not None
    assert (outcome.applied, outcome.repeated) == (0, 1)


def test_an_effective_day_carried_out_before_a_restart_is_not_carried_out_again() -> None:
    store = MemoryStore()
    eng = _engine()
    _schedule(eng, "s1")
    _apply(store, eng, eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(),)), T0))
    start = _day_start(EFFECTIVE)
    done = eng.tick(start)
    assert _alerts(_delivered(done), CHANGE_OF_SUPPLIER_ALERT)
    _apply(store, eng, done)
    again = _restored(store, start + 60)
    assert again.registers.next_due() is None
    assert not _alerts(_delivered(again.tick(start + 60)), CHANGE_OF_SUPPLIER_ALERT)


def test_an_effective_day_missed_while_the_hub_was_down_is_carried_out_at_restart() -> None:
    store = MemoryStore()
    eng = _engine()
    _apply(store, eng, eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(),)), T0))
    after = _day_start(EFFECTIVE) + 3600
    again = _restored(store, after)
    assert _alerts(_delivered(again.tick(after)), CHANGE_OF_SUPPLIER_ALERT)


def test_a_meter_point_no_longer_half_hourly_stops_its_suppliers_settlement_reads() -> None:
    eng = _engine()
    settlement_read = _schedule(eng, "s1", service="4.8.1")
    daily_read = _schedule(eng, "s2", service="4.6.1")
    change = SettlementChange(
        change_id=ChangeId(Register.ELECTRICITY, 1),
        effective=TODAY + timedelta(days=1),
        mpxn=MPAN,
        settlement=Settlement.NON_HALF_HOURLY,
    )
    eng.on_register_changes(ChangeBatch("electricity-1.csv", (change,)), T0)
    assert eng.scheduler.get(settlement_read) is not None  # not before its day
    eff = eng.tick(_day_start(TODAY + timedelta(days=1)))
    assert settlement_read in eff.delete_schedules
    assert eng.scheduler.get(settlement_read) is None
    assert eng.scheduler.get(daily_read) is not None
    [stopped] = _alerts(_delivered(eff), "SCHEDULE_STOPPED")
    assert "non-half-hourly" in str(stopped.data["reason"])


def test_a_change_of_tenancy_ends_the_escos_consent_and_stops_its_schedules_that_day() -> None:
    eng = _engine()
    consent = ConsentGiven(
        change_id=ChangeId(Register.CONSENTS, 1), effective=TODAY, esco="ESCO1", mpxn=MPAN
    )
    eng.on_register_changes(ChangeBatch("consents-1.csv", (consent,)), T0)
    sid = _schedule(eng, "e1", user="u-esco", role=Role.OU)
    tenancy = TenancyChange(
        change_id=ChangeId(Register.ELECTRICITY, 1), effective=EFFECTIVE, mpxn=MPAN
    )
    eng.on_register_changes(ChangeBatch("electricity-1.csv", (tenancy,)), T0)
    assert eng.scheduler.get(sid) is not None
    eff = eng.tick(_day_start(EFFECTIVE))
    assert sid in eff.delete_schedules
    [stopped] = _alerts(_delivered(eff), "SCHEDULE_STOPPED")
    assert stopped.data["schedule_id"] == sid
    assert not _alerts(_delivered(eff), CHANGE_OF_SUPPLIER_ALERT)  # nobody lost a supply


def test_a_change_id_twice_in_one_batch_is_applied_and_audited_once() -> None:
    eng = _engine()
    eff = eng.on_register_changes(ChangeBatch("electricity-1.csv", (_cos(), _cos())), T0)
    assert len(eff.save_register_changes) == 1
    assert [a.kind for a in eff.audit].count(AuditKind.REGISTER_CHANGE) == 1
    outcome = eng.registers.outcome("electricity-1.csv")
    assert outcome is not None
    assert (outcome.applied, outcome.repeated) == (1, 1)

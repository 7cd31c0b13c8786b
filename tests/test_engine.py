"""The hub engine, driven directly with a fake clock: no sockets, no threads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from hub import wire
from hub.engine import Direction, EngineConfig, HubEngine, RequestState
from hub.flows.firmware import BLOCK_BYTES
from hub.policies.traffic import TrafficConfig
from hub.reference.catalogue import CATALOGUE, PriorityClass
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.service_params import example_params
from hub.reference.standard import CommandStatus, DeviceAlert, DeviceResponse
from hub.reference.uktime import uk_date
from tests.world import CHF, COS_DAY, ESME, MPAN, World, at

T0 = at(COS_DAY - timedelta(days=10)).timestamp()

SIGNATURE = b"\x5a" * 64
"""A signature of the right form (the hub checks form; the device verifies)."""


def _engine(**config: float) -> HubEngine:
    return HubEngine(World().access, EngineConfig(**config))  # type: ignore[arg-type]


def _req(
    request_id: str,
    service: str = "4.1.1",
    device: str | None = ESME,
    role: Role = Role.IS,
    **kw: object,
) -> bytes:
    params = kw.pop("params", example_params(service) if not CATALOGUE[service].non_device else {})
    return wire.encode(
        wire.ServiceRequest(
            request_id=request_id, role=role, service=service, device_id=device, params=params, **kw
        )  # type: ignore[arg-type]
    )


def _decoded(payload: bytes) -> wire.Message:
    return wire.decode(payload)


def test_an_authorised_read_is_acknowledged_then_dispatched_then_answered() -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", _req("r1"), T0)
    ack = _decoded(eff.send[0].payload)
    assert isinstance(ack, wire.Acknowledgement)
    assert ack.code is ResponseCode.I99
    assert eff.save_requests[0].state is RequestState.DISPATCHED
    assert eff.save_requests[0].state.persisted is RequestState.ACCEPTED
    [dispatch] = eff.dispatch
    assert dispatch.command.device_id == ESME
    assert dispatch.head_end == "tlv"
    assert dispatch.comms_hub == CHF
    done = eng.on_device_response(
        DeviceResponse(
            dispatch.command.command_id, ESME, "4.1.1", CommandStatus.SUCCESS, {"import_wh": 5}
        ),
        T0 + 1,
    )
    assert done.complete_requests == [eff.save_requests[0].seq]
    [delivery] = done.add_deliveries
    resp = _decoded(delivery.payload)
    assert isinstance(resp, wire.ServiceResponse)
    assert resp.code is ResponseCode.I0
    assert resp.body == {"import_wh": 5}
    assert done.send == []  # the user has not said Hello: held, not pushed


def test_a_refusal_is_audited_with_its_code_and_reason() -> None:
    eng = _engine()
    eff = eng.on_frame("u-supb", _req("r1"), T0)
    refusal = _decoded(eff.send[0].payload)
    assert isinstance(refusal, wire.Refusal)
    assert refusal.code is ResponseCode.E4
    out = [a for a in eff.audit if a.direction is Direction.OUT]
    assert out[0].code == "E4"
    assert "no relation" in out[0].reason
    assert eff.dispatch == []


def test_a_malformed_frame_is_refused_and_changes_nothing() -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", b"\x93\x01\x02", T0)
    refusal = _decoded(eff.send[0].payload)
    assert isinstance(refusal, wire.Refusal)
    assert refusal.code is ResponseCode.H1
    assert eff.save_requests == []
    assert eff.dispatch == []
    assert eng.next_seq == 1


def test_a_resubmission_gets_the_same_answer_and_runs_once() -> None:
    eng = _engine()
    first = eng.on_frame("u-supa", _req("r1"), T0)
    again = eng.on_frame("u-supa", _req("r1"), T0 + 5)
    assert again.send[0].payload == first.send[0].payload
    assert again.dispatch == []
    assert again.save_requests == []


def test_a_request_id_reused_for_another_request_is_refused_with_h4() -> None:
    eng = _engine()
    eng.on_frame("u-supa", _req("r1"), T0)
    eff = eng.on_frame("u-supa", _req("r1", service="4.1.2"), T0)
    refusal = _decoded(eff.send[0].payload)
    assert isinstance(refusal, wire.Refusal)
    assert refusal.code is ResponseCode.H4


def test_request_ids_are_per_user() -> None:
    eng = _engine()
    eng.on_frame("u-supa", _req("r1"), T0)
    eff = eng.on_frame("u-ukpn", _req("r1", role=Role.ED), T0)
    ack = _decoded(eff.send[0].payload)
    assert isinstance(ack, wire.Acknowledgement)


def test_bad_parameters_are_refused_with_e12() -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", _req("r1", params={"nonsense": 1}), T0)
    refusal = _decoded(eff.send[0].payload)
    assert isinstance(refusal, wire.Refusal)
    assert refusal.code is ResponseCode.E12


def test_an_unsigned_critical_command_is_refused() -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", _req("r1", service="7.1"), T0)
    refusal = _decoded(eff.send[0].payload)
    assert isinstance(refusal, wire.Refusal)
    assert "signed" in refusal.reason


def test_a_non_device_service_is_answered_by_the_hub() -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", _req("r1", service="8.2"), T0)
    assert eff.dispatch == []
    resp = _decoded(eff.add_deliveries[0].payload)
    assert isinstance(resp, wire.ServiceResponse)
    assert resp.code is ResponseCode.I0
    assert resp.body["site"]["comms_hub"] == CHF  # type: ignore[index,call-overload]


def test_a_non_device_service_this_release_cannot_run_is_refused_with_h9() -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", _req("r1", service="8.13"), T0)
    refusal = _decoded(eff.send[0].payload)
    assert isinstance(refusal, wire.Refusal)
    assert refusal.code is ResponseCode.H9


def test_held_deliveries_are_pushed_when_the_user_says_hello_and_removed_on_ack() -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", _req("r1"), T0)
    cmd = eff.dispatch[0].command
    done = eng.on_device_response(
        DeviceResponse(cmd.command_id, ESME, "4.1.1", CommandStatus.SUCCESS), T0 + 1
    )
    did = done.add_deliveries[0].delivery_id
    hello = eng.on_frame("u-supa", wire.encode(wire.Hello()), T0 + 2)
    welcome, push = hello.send
    assert type(_decoded(welcome.payload)) is wire.Welcome
    # a push of a delivery made earlier names it; the driver fills its payload from the store
    assert (push.push, push.delivery_id, push.payload) == (True, did, b"")
    acked = eng.on_frame("u-supa", wire.encode(wire.DeliveryAck(delivery_ids=(did,))), T0 + 3)
    assert acked.remove_deliveries == [did]
    assert eng.outbox.depth("u-supa") == 0


def test_an_unacknowledged_push_is_retried_and_an_undelivered_one_expires_audited() -> None:
    eng = _engine(retry_s=30.0, hold_s=100.0)
    eng.on_frame("u-supa", wire.encode(wire.Hello()), T0)
    eff = eng.on_frame("u-supa", _req("r1"), T0)
    cmd = eff.dispatch[0].command
    done = eng.on_device_response(
        DeviceResponse(cmd.command_id, ESME, "4.1.1", CommandStatus.SUCCESS), T0 + 1
    )
    assert len(done.send) == 1  # pushed at once: the user is online
    assert len(eng.tick(T0 + 10).send) == 0
    assert len(eng.tick(T0 + 40).send) == 1  # retried
    gone = eng.tick(T0 + 200)
    assert gone.expired == 1
    assert gone.audit[0].code == "H10"
    assert gone.remove_deliveries == [done.add_deliveries[0].delivery_id]


def test_a_comms_hub_with_a_full_queue_makes_the_hub_answer_busy() -> None:
    eng = _engine(max_per_comms_hub=2)
    for n in range(2):
        eng.on_frame("u-supa", _req(f"r{n}"), T0)
    eff = eng.on_frame("u-supa", _req("r9"), T0)
    busy = _decoded(eff.send[0].payload)
    assert isinstance(busy, wire.Refusal)
    assert busy.code is ResponseCode.H8
    assert busy.retry_after_s is not None
    assert busy.retry_after_s > 0
    # busy answers are not remembered: the resubmission is decided afresh
    assert eng.index.known("u-supa", "r9") is None


def test_a_dispatched_command_that_never_answers_gets_e21() -> None:
    eng = _engine(response_timeout_s=60.0)
    eng.on_frame("u-supa", _req("r1"), T0)
    eff = eng.tick(T0 + 61)
    resp = _decoded(eff.add_deliveries[0].payload)
    assert isinstance(resp, wire.ServiceResponse)
    assert resp.code is ResponseCode.E21
    assert eng.pending == 0


def test_a_power_outage_alert_goes_to_the_network_operator_of_the_area() -> None:
    eng = _engine()
    eff = eng.on_device_alert(DeviceAlert(CHF, "AD1", T0), T0)
    assert {d.user_id for d in eff.add_deliveries} == {"u-ukpn"}


def test_a_low_credit_alert_goes_to_the_registered_supplier() -> None:
    eng = _engine()
    eff = eng.on_device_alert(DeviceAlert(ESME, "810D", T0), T0)
    assert {d.user_id for d in eff.add_deliveries} == {"u-supa"}


def test_after_a_restart_an_accepted_unanswered_request_is_dispatched_again() -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", _req("r1"), T0)
    rec = eff.save_requests[0]
    fresh = _engine()
    again = fresh.restore([rec], [], next_seq=rec.seq + 1, next_delivery=1, now=T0 + 1)
    assert [d.command.command_id for d in again.dispatch] == [str(rec.seq)]
    # and the request id is still known
    dup = fresh.on_frame("u-supa", _req("r1"), T0 + 1)
    assert dup.send[0].payload == eff.send[0].payload


@pytest.mark.parametrize("code", ["4.1.1", "4.8.1", "6.2.7"])
def test_read_services_reach_the_device_with_their_example_parameters(code: str) -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", _req("r1", service=code), T0)
    assert isinstance(_decoded(eff.send[0].payload), wire.Acknowledgement), _decoded(
        eff.send[0].payload
    )


# ---- future-dated requests -------------------------------------------------------------


def test_a_dsp_future_dated_request_is_held_until_its_time_then_sent() -> None:
    eng = _engine()
    later = T0 + 3600
    eff = eng.on_frame("u-supa", _req("r1", service="4.1.1", execute_at=later), T0)
    assert isinstance(_decoded(eff.send[0].payload), wire.Acknowledgement)
    assert eff.dispatch == []
    assert eng.tick(later - 1).dispatch == []
    released = eng.tick(later)
    [dispatch] = released.dispatch
    assert dispatch.command.execute_at is None  # the hub held it; the device acts at once


def test_a_held_request_stops_at_execution_if_the_supplier_changed_meanwhile() -> None:
    eng = _engine()
    later = T0 + 3 * 86400
    eng.on_frame("u-supa", _req("r1", service="4.1.1", execute_at=later), T0)
    # the register learns of a change of supplier effective before the execution day
    mp = eng.access.registration.meter_points[MPAN]
    gain_day = uk_date(datetime.fromtimestamp(T0 + 86400, UTC))
    eng.access.registration.meter_points[MPAN] = replace(
        mp,
        registrations=(
            replace(mp.registrations[0], effective_to=gain_day),
            replace(mp.registrations[1], effective_from=gain_day),
        ),
    )
    eff = eng.tick(later)
    assert eff.dispatch == []
    resp = _decoded(eff.add_deliveries[0].payload)
    assert isinstance(resp, wire.ServiceResponse)
    assert resp.code is ResponseCode.E4
    assert "stopped at execution" in str(resp.body["reason"])


def test_a_device_pattern_command_goes_now_and_its_outcome_alert_goes_to_the_sender() -> None:
    eng = _engine()
    later = T0 + 3600
    sig = SIGNATURE
    eff = eng.on_frame("u-supa", _req("r1", service="1.1.1", execute_at=later, signature=sig), T0)
    [dispatch] = eff.dispatch
    assert dispatch.command.execute_at == later
    cmd = dispatch.command.command_id
    eng.on_device_response(DeviceResponse(cmd, ESME, "1.1.1", CommandStatus.SCHEDULED), T0 + 1)
    outcome = eng.on_device_alert(DeviceAlert(ESME, "8F66", later, {"command_id": cmd}), later)
    assert {d.user_id for d in outcome.add_deliveries} == {"u-supa"}
    assert eng.tick(later + 7200).add_deliveries == []  # no E30: the outcome came


def test_a_device_pattern_command_without_its_outcome_gets_e30() -> None:
    eng = _engine(outcome_timeout_s=600.0)
    later = T0 + 3600
    eff = eng.on_frame(
        "u-supa", _req("r1", service="1.1.1", execute_at=later, signature=SIGNATURE), T0
    )
    cmd = eff.dispatch[0].command.command_id
    eng.on_device_response(DeviceResponse(cmd, ESME, "1.1.1", CommandStatus.SCHEDULED), T0 + 1)
    assert eng.tick(later + 599).add_deliveries == []
    late = eng.tick(later + 600)
    resp = _decoded(late.add_deliveries[0].payload)
    assert isinstance(resp, wire.ServiceResponse)
    assert resp.code is ResponseCode.E30


def test_a_device_pattern_command_that_never_reached_its_device_is_answered_once_not_again_e30() -> (
    None
):
    eng = _engine(outcome_timeout_s=600.0, response_timeout_s=60.0)
    later = T0 + 3600
    eng.on_frame("u-supa", _req("r1", service="1.1.1", execute_at=later, signature=SIGNATURE), T0)
    failed = eng.tick(T0 + 60)  # no response from the device within the response timeout
    [answer] = [_decoded(d.payload) for d in failed.add_deliveries]
    assert isinstance(answer, wire.ServiceResponse)
    assert answer.code is ResponseCode.E21
    assert eng.tick(later + 600).add_deliveries == []  # no outcome was ever coming: no E30


def test_a_held_request_survives_a_restart_and_is_released_once() -> None:
    eng = _engine()
    later = T0 + 3600
    eff = eng.on_frame("u-supa", _req("r1", service="4.1.1", execute_at=later), T0)
    rec = eff.save_requests[0]
    fresh = _engine()
    assert fresh.restore([rec], [], rec.seq + 1, 1, now=T0 + 10).dispatch == []
    assert len(fresh.tick(later).dispatch) == 1
    assert fresh.tick(later + 1).dispatch == []


# ---- anomaly detection, quarantine, security monitoring ----------------------------------


def _quarantine(action: str, *ids: str) -> bytes:
    return wire.encode(
        wire.QuarantineDecision(action=wire.QuarantineAction(action), request_ids=ids)
    )


def test_requests_over_the_users_quarantine_threshold_are_held_and_answered_h7() -> None:
    eng = _engine()
    thresholds = wire.SetThresholds(service="4.1.1", warning=1, quarantine=2, period_s=3600.0)
    eng.on_frame("u-supa", wire.encode(thresholds), T0)
    codes = []
    for n in range(4):
        eff = eng.on_frame("u-supa", _req(f"r{n}"), T0 + n)
        codes.append(_decoded(eff.send[0].payload).code)  # type: ignore[union-attr]
    assert codes == [ResponseCode.I99, ResponseCode.I99, ResponseCode.H7, ResponseCode.H7]
    assert eng.pending == 2
    # the user hears about the warning and, once the batch closes, the quarantine
    alerts = [d for d in eng.tick(T0 + 120).add_deliveries if d.kind.value == "hub_alert"]
    assert alerts
    assert "QUARANTINE" in str(_decoded(alerts[-1].payload))


def test_a_released_request_is_executed_and_a_deleted_one_is_not() -> None:
    eng = _engine()
    eng.on_frame(
        "u-supa",
        wire.encode(wire.SetThresholds(service="4.1.1", warning=1, quarantine=1, period_s=3600.0)),
        T0,
    )
    eng.on_frame("u-supa", _req("r0"), T0)
    eng.on_frame("u-supa", _req("r1"), T0 + 1)
    eng.on_frame("u-supa", _req("r2"), T0 + 2)
    released = eng.on_frame("u-supa", _quarantine("release", "r1"), T0 + 3)
    ack = _decoded(released.send[0].payload)
    assert isinstance(ack, wire.Acknowledgement)
    assert ack.request_id == "r1"
    assert len(released.dispatch) == 1
    deleted = eng.on_frame("u-supa", _quarantine("delete", "r2", "nope"), T0 + 4)
    answers = [_decoded(s.payload) for s in deleted.send]
    assert [(a.request_id, a.code) for a in answers] == [
        ("r2", ResponseCode.H7),
        ("nope", ResponseCode.H7),
    ]  # type: ignore[union-attr]
    assert deleted.dispatch == []


def test_another_user_cannot_release_someone_elses_quarantined_request() -> None:
    eng = _engine()
    eng.on_frame(
        "u-supa",
        wire.encode(wire.SetThresholds(service="4.1.1", warning=1, quarantine=1, period_s=3600.0)),
        T0,
    )
    eng.on_frame("u-supa", _req("r0"), T0)
    eng.on_frame("u-supa", _req("r1"), T0 + 1)
    eff = eng.on_frame("u-supb", _quarantine("release", "r1"), T0 + 2)
    assert eff.dispatch == []
    assert eng.quarantine.count("u-supa") == 1


def test_repeated_refusals_raise_a_security_alert() -> None:
    eng = _engine()
    audited = []
    for n in range(25):
        audited += eng.on_frame("u-supb", _req(f"r{n}"), T0 + n).audit  # E4 each time
    assert any(a.kind == "security_alert" for a in audited)
    assert eng.security_alerts


def test_refused_handshakes_raise_a_security_alert() -> None:
    eng = _engine()
    audited = []
    for n in range(6):
        audited += eng.on_handshake_refused("AbCdEf", T0 + n, "127.0.0.1").audit
    assert [a.kind for a in audited if a.kind == "security_alert"] == ["security_alert"]


def test_every_refused_handshake_is_audited_with_its_key_fingerprint_and_address() -> None:
    eng = _engine()
    audited = [
        a for n in range(3) for a in eng.on_handshake_refused("ab12cd34", T0 + n, "10.9.8.7").audit
    ]
    refused = [a for a in audited if a.kind == "handshake_refused"]
    assert len(refused) == 3
    assert all("ab12cd34" in a.reason and "10.9.8.7" in a.reason for a in refused)
    assert {a.code for a in refused} == {"E1"}


# ---- traffic management --------------------------------------------------------------------


def test_overload_gets_busy_answers_for_on_demand_reads_first_and_queues_stay_bounded() -> None:
    traffic = TrafficConfig(
        capacity_per_s=1.0,
        capacity_burst=1.0,
        queue_bounds={
            PriorityClass.ALERT: 5,
            PriorityClass.URGENT: 5,
            PriorityClass.ON_DEMAND: 20,
            PriorityClass.BULK: 20,
        },
        hub_bound=40,
        user_rate_per_s=1000.0,
        user_burst=1000.0,
    )
    eng = HubEngine(
        World().access, EngineConfig(traffic=traffic, max_per_comms_hub=10_000, max_pending=10_000)
    )
    codes: dict[str, list[ResponseCode]] = {"read": [], "top-up": []}
    most_queued = 0
    for n in range(200):
        eff = eng.on_frame("u-supa", _req(f"r{n}"), T0 + n * 0.001)
        codes["read"].append(_decoded(eff.send[0].payload).code)  # type: ignore[union-attr]
        most_queued = max(most_queued, sum(eng.traffic.depth(p) for p in PriorityClass))
    top_up = eng.on_frame("u-supa", _req("t1", service="2.2"), T0 + 1)
    codes["top-up"].append(_decoded(top_up.send[0].payload).code)  # type: ignore[union-attr]
    busy = [c for c in codes["read"] if c is ResponseCode.H8]
    assert busy, "overload must be answered busy"
    assert codes["read"].count(ResponseCode.I99) <= 21
    assert codes["top-up"] == [ResponseCode.I99]  # urgent work is still admitted
    assert most_queued <= 40
    refusal = _decoded(eng.on_frame("u-supa", _req("r-late"), T0 + 1).send[0].payload)
    assert isinstance(refusal, wire.Refusal)
    assert refusal.retry_after_s is not None
    assert refusal.retry_after_s >= 1.0


def test_diarised_work_travels_as_bulk_and_on_demand_work_goes_first() -> None:
    eng = _engine()
    later = T0 + 86400
    diarised = eng.on_frame(
        "u-supa", _req("t1", service="1.1.1", execute_at=later, signature=SIGNATURE), T0
    )
    on_demand = eng.on_frame("u-supa", _req("r1"), T0)
    assert diarised.dispatch[0].priority == PriorityClass.BULK
    assert on_demand.dispatch[0].priority == PriorityClass.ON_DEMAND


# ---- DCC schedules -----------------------------------------------------------------------


def _create(
    eng: HubEngine, rid: str, user: str = "u-supa", service: str = "4.8.1", **over: object
) -> wire.Message:
    day = uk_date(datetime.fromtimestamp(T0, UTC)).isoformat()
    params: dict[str, object] = {
        "service": service,
        "device_id": ESME,
        "recurrence": "daily",
        "start_date": day,
        "time_of_day": "02:00",
        "params": {"window_s": 86400},
        **over,
    }
    eff = eng.on_frame(user, _req(rid, service="5.1", device=None, params=params), T0)
    if eff.add_deliveries:
        return _decoded(eff.add_deliveries[0].payload)
    return _decoded(eff.send[0].payload)


def test_a_schedule_is_created_read_and_fires_as_bulk_as_its_owner() -> None:
    eng = _engine(schedule_window_s=600.0)
    created = _create(eng, "c1")
    assert isinstance(created, wire.ServiceResponse), created
    assert created.code is ResponseCode.I0
    sid = created.body["schedule_id"]
    first = created.body["first_firing_at"]
    assert isinstance(first, float)
    read = eng.on_frame("u-supa", _req("q1", service="5.2", device=None, params={}), T0 + 1)
    listed = _decoded(read.add_deliveries[0].payload)
    assert isinstance(listed, wire.ServiceResponse)
    assert [s["schedule_id"] for s in listed.body["schedules"]] == [sid]  # type: ignore[union-attr,index]
    assert eng.tick(first - 1).dispatch == []
    fired = eng.tick(first)
    [dispatch] = fired.dispatch
    assert dispatch.priority == PriorityClass.BULK
    assert dispatch.command.params["end"] - dispatch.command.params["start"] == 86400  # type: ignore[operator]
    index = int(fired.save_requests[0].request_id.split(":")[1])
    assert fired.save_requests[0].request_id == f"{sid}:{index}"
    assert fired.save_schedules[0].next_index == index + 1  # progress saved with the firing


def test_a_schedule_for_a_service_that_cannot_be_scheduled_is_refused() -> None:
    eng = _engine()
    refused = _create(eng, "c1", service="1.1.1")
    assert isinstance(refused, wire.Refusal)
    assert refused.code is ResponseCode.E12


def test_a_schedule_on_a_meter_the_user_has_no_relation_with_is_refused_with_e4() -> None:
    eng = _engine()
    refused = _create(eng, "c1", user="u-supb")
    assert isinstance(refused, wire.Refusal)
    assert refused.code is ResponseCode.E4


def test_only_the_owner_may_delete_a_schedule() -> None:
    eng = _engine()
    created = _create(eng, "c1")
    sid = created.body["schedule_id"]  # type: ignore[union-attr]
    own = eng.on_frame(
        "u-supa", _req("d2", service="5.3", device=None, params={"schedule_id": sid}), T0
    )
    assert _decoded(own.add_deliveries[0].payload).code is ResponseCode.I0  # type: ignore[union-attr]
    assert own.delete_schedules == [sid]
    assert len(eng.scheduler) == 0


def test_deleting_another_users_schedule_is_refused_at_once_as_if_it_did_not_exist() -> None:
    eng = _engine()
    created = _create(eng, "c1")
    sid = created.body["schedule_id"]  # type: ignore[union-attr]
    assert sid == "S1"
    other = eng.on_frame(
        "u-ukpn",
        _req("d1", service="5.3", device=None, role=Role.ED, params={"schedule_id": sid}),
        T0,
    )
    unknown = eng.on_frame(
        "u-ukpn",
        _req("d2", service="5.3", device=None, role=Role.ED, params={"schedule_id": "S2"}),
        T0,
    )
    refusals = [_decoded(e.send[0].payload) for e in (other, unknown)]
    assert all(isinstance(r, wire.Refusal) for r in refusals), refusals
    assert [(r.code, r.reason) for r in refusals] == [  # type: ignore[union-attr]
        (ResponseCode.E12, "no schedule S1: it never existed, has ended or was deleted"),
        (ResponseCode.E12, "no schedule S2: it never existed, has ended or was deleted"),
    ]
    assert other.add_deliveries == []
    assert other.delete_schedules == []
    assert len(eng.scheduler) == 1


def test_reading_another_users_schedule_answers_as_for_an_unknown_one() -> None:
    eng = _engine()
    sid = _create(eng, "c1").body["schedule_id"]  # type: ignore[union-attr]
    bodies = []
    for rid, asked in (("q1", sid), ("q2", "S2")):
        eff = eng.on_frame(
            "u-ukpn",
            _req(rid, service="5.2", device=None, role=Role.ED, params={"schedule_id": asked}),
            T0,
        )
        answer = _decoded(eff.add_deliveries[0].payload)
        assert isinstance(answer, wire.ServiceResponse)
        bodies.append((answer.code, answer.body))
    assert bodies == [(ResponseCode.I0, {"schedules": []})] * 2


def test_change_of_supplier_stops_the_losing_suppliers_schedule_and_tells_it() -> None:
    # the firing's own check (the daily sweep, tested below, is switched off here)
    eng = _engine(schedule_window_s=600.0, sweep_per_tick=0)
    created = _create(eng, "c1")
    first = created.body["first_firing_at"]  # type: ignore[union-attr]
    assert isinstance(first, float)
    mp = eng.access.registration.meter_points[MPAN]
    gain_day = uk_date(datetime.fromtimestamp(T0, UTC))
    eng.access.registration.meter_points[MPAN] = replace(
        mp,
        registrations=(
            replace(mp.registrations[0], effective_to=gain_day),
            replace(mp.registrations[1], effective_from=gain_day),
        ),
    )
    eff = eng.tick(first)
    assert eff.dispatch == []
    told = _decoded(eff.add_deliveries[0].payload)
    assert isinstance(told, wire.ServiceResponse)
    assert told.code is ResponseCode.E4
    assert told.body["schedule_stopped"] is True
    assert eff.delete_schedules
    assert len(eng.scheduler) == 0


def test_a_restored_schedule_does_not_fire_twice() -> None:
    eng = _engine(schedule_window_s=600.0)
    created = _create(eng, "c1")
    first = created.body["first_firing_at"]  # type: ignore[union-attr]
    assert isinstance(first, float)
    fired = eng.tick(first)
    fresh = _engine(schedule_window_s=600.0)
    fresh.restore(
        fired.save_requests,
        [],
        eng.next_seq,
        eng.next_delivery,
        now=first + 1,
        schedules=fired.save_schedules,
        next_schedule=2,
    )
    assert fresh.tick(first + 2).dispatch == []


# ---- firmware distribution -------------------------------------------------------------------


def test_a_firmware_image_is_carried_in_blocks_as_bulk_and_answered_when_complete() -> None:
    eng = _engine()
    size = 3 * BLOCK_BYTES + 10
    eff = eng.on_frame(
        "u-supa", _req("f1", service="11.1", params={"version": "2.1.0", "image_size": size}), T0
    )
    assert isinstance(_decoded(eff.send[0].payload), wire.Acknowledgement), _decoded(
        eff.send[0].payload
    )
    sent = 0
    step = eff
    for n in range(4):
        [dispatch] = step.dispatch
        assert dispatch.priority == PriorityClass.BULK
        data = dispatch.command.params["data"]
        assert isinstance(data, bytes)
        sent += len(data)
        assert dispatch.command.params["block"] == n
        step = eng.on_device_response(
            DeviceResponse(
                dispatch.command.command_id, ESME, "11.1", CommandStatus.SUCCESS, {"block": n}
            ),
            T0 + n + 1,
        )
        assert step.save_transfers == [(eff.save_requests[0].seq, n + 1)]
    assert sent == size
    resp = _decoded(step.add_deliveries[0].payload)
    assert isinstance(resp, wire.ServiceResponse)
    assert resp.code is ResponseCode.I0
    assert resp.body["blocks"] == 4
    assert eng.pending == 0


def test_a_firmware_transfer_resumes_after_a_restart_from_its_saved_block() -> None:
    eng = _engine()
    eff = eng.on_frame(
        "u-supa",
        _req("f1", service="11.1", params={"version": "2.1.0", "image_size": 5 * BLOCK_BYTES}),
        T0,
    )
    first = eff.dispatch[0].command
    progress = eng.on_device_response(
        DeviceResponse(first.command_id, ESME, "11.1", CommandStatus.SUCCESS), T0 + 1
    )
    fresh = _engine()
    resumed = fresh.restore(
        eff.save_requests, [], eng.next_seq, 1, now=T0 + 2, transfers=dict(progress.save_transfers)
    )
    assert [d.command.params["block"] for d in resumed.dispatch] == [1]


def test_ppmid_firmware_goes_only_to_a_ppmid() -> None:
    eng = _engine()
    eff = eng.on_frame(
        "u-supa", _req("f1", service="11.4", params={"version": "1.0", "image_size": 1000}), T0
    )
    refusal = _decoded(eff.send[0].payload)
    assert isinstance(refusal, wire.Refusal)
    assert refusal.code is ResponseCode.E11


def test_remembered_request_ids_are_capped_so_memory_stays_bounded() -> None:
    eng = _engine(idempotency_max=50)
    for n in range(120):
        eng.on_frame("u-supa", _req(f"r{n}", service="8.2"), T0 + n)
    eng.tick(T0 + 200)
    assert eng.index.remembered <= 50
    assert eng.counters["forgotten_early"] >= 70


def test_on_the_change_of_supplier_day_the_losing_suppliers_schedules_and_held_requests_stop() -> (
    None
):
    eng = _engine(schedule_window_s=600.0)
    created = _create(eng, "c1")
    assert isinstance(created, wire.ServiceResponse)
    held = eng.on_frame("u-supa", _req("h1", execute_at=T0 + 5 * 86400), T0)
    assert isinstance(_decoded(held.send[0].payload), wire.Acknowledgement)
    mp = eng.access.registration.meter_points[MPAN]
    cos = uk_date(datetime.fromtimestamp(T0, UTC)) + timedelta(days=2)
    eng.access.registration.meter_points[MPAN] = replace(
        mp,
        registrations=(
            replace(mp.registrations[0], effective_to=cos),
            replace(mp.registrations[1], effective_from=cos),
        ),
    )
    first = eng.tick(T0 + 1)
    # the held request executes after the change: it is stopped as soon as the register shows it
    stopped = [_decoded(d.payload) for d in first.add_deliveries]
    assert [(m.request_id, m.code) for m in stopped if isinstance(m, wire.ServiceResponse)] == [
        ("h1", ResponseCode.E4)
    ]
    assert first.delete_schedules == []  # the schedule is still the losing supplier's today
    on_the_day = datetime.combine(cos, datetime.min.time(), UTC).timestamp() + 3600
    eff = eng.tick(on_the_day)
    assert eff.delete_schedules == [created.body["schedule_id"]]
    told = [_decoded(d.payload) for d in eff.add_deliveries]
    assert any(isinstance(m, wire.HubAlert) and m.alert_code == "SCHEDULE_STOPPED" for m in told)
    assert len(eng.scheduler) == 0
    assert eng.tick(T0 + 5 * 86400 + 1).dispatch == []  # nothing left to release


def test_an_execute_at_beyond_the_clock_skew_allowance_in_the_past_is_refused() -> None:
    eng = _engine()
    reasons = []
    for rid, when in (("p1", 0.0), ("p2", T0 - 301)):
        eff = eng.on_frame("u-supa", _req(rid, execute_at=when), T0)
        refused = _decoded(eff.send[0].payload)
        assert isinstance(refused, wire.Refusal), refused
        assert refused.code is ResponseCode.E12
        assert eff.dispatch == []
        reasons.append(refused.reason)
    assert reasons[0].startswith("execute_at 1970-01-01T00:00:00+00:00 is in the past")
    assert all("at most 300 s behind is executed now" in r for r in reasons), reasons


def test_an_execute_at_within_the_clock_skew_allowance_is_executed_now() -> None:
    eng = _engine(clock_skew_s=60.0)
    eff = eng.on_frame("u-supa", _req("p1", execute_at=T0 - 60), T0)
    ack = _decoded(eff.send[0].payload)
    assert isinstance(ack, wire.Acknowledgement)
    assert ack.code is ResponseCode.I99
    [dispatch] = eff.dispatch
    assert dispatch.command.execute_at is None
    assert dispatch.priority == CATALOGUE["4.1.1"].priority
    late = _decoded(eng.on_frame("u-supa", _req("p2", execute_at=T0 - 61), T0).send[0].payload)
    assert isinstance(late, wire.Refusal)
    assert late.code is ResponseCode.E12

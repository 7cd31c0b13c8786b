"""No input stops the hub: reasons built from what users sent stay within the wire's limit, and
an engine step that raises is answered, audited, counted and contained."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hub import wire
from hub.engine import AuditKind, Effects, EngineConfig, HubEngine, RequestState
from hub.reference.catalogue import CATALOGUE
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.service_params import example_params
from hub.reference.standard import CommandStatus, DeviceResponse
from hub.reference.text import MAX_REASON_CHARS
from tests.world import COS_DAY, ESME, World, at

T0 = at(COS_DAY - timedelta(days=10)).timestamp()


def _engine() -> HubEngine:
    return HubEngine(World().access, EngineConfig())


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


def _only_answer(eff_send: list[wire.Message]) -> wire.Refusal:
    [answer] = eff_send
    assert isinstance(answer, wire.Refusal)
    return answer


def _answers(eng: HubEngine, user: str, frame: bytes) -> list[wire.Message]:
    eff = eng.on_frame(user, frame, T0)
    return [wire.decode(s.payload) for s in eff.send if not s.push]


def test_a_read_with_twenty_unknown_parameters_is_refused_e12_within_the_limit() -> None:
    params = {f"unknown_parameter_{i:02d}": i for i in range(20)}
    refusal = _only_answer(_answers(_engine(), "u-supa", _req("r1", params=params)))
    assert refusal.code is ResponseCode.E12
    assert len(refusal.reason) <= MAX_REASON_CHARS
    assert "unknown parameter 'unknown_parameter_00'" in refusal.reason
    assert refusal.reason.endswith("more problems")


def test_a_parameter_name_of_two_thousand_characters_is_refused_e12_within_the_limit() -> None:
    refusal = _only_answer(_answers(_engine(), "u-supa", _req("r1", params={"n" * 2000: 1})))
    assert refusal.code is ResponseCode.E12
    assert len(refusal.reason) <= MAX_REASON_CHARS
    assert "unknown parameter 'nnnn" in refusal.reason


def test_a_top_up_whose_utrn_is_three_thousand_digits_is_refused_e12_within_the_limit() -> None:
    params = dict(example_params("2.2"), utrn="7" * 3000)
    refusal = _only_answer(_answers(_engine(), "u-supa", _req("t1", "2.2", params=params)))
    assert refusal.code is ResponseCode.E12
    assert len(refusal.reason) <= MAX_REASON_CHARS
    assert "utrn" in refusal.reason


def _boom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("deliberate failure for the test")


def test_a_request_whose_step_raises_is_answered_h12_audited_counted_alerted_and_undone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eng = _engine()
    occupancy = eng.traffic.occupancy
    monkeypatch.setattr(eng.traffic, "offer", _boom)  # fails after the request was indexed
    eff = eng.on_frame("u-supa", _req("r1"), T0)
    [refusal] = [wire.decode(s.payload) for s in eff.send]
    assert isinstance(refusal, wire.Refusal)
    assert refusal.code is ResponseCode.H12
    assert refusal.request_id == "r1"
    assert "same request id" in refusal.reason
    kinds = {(a.kind, a.code) for a in eff.audit}
    assert (AuditKind.INTERNAL_ERROR, "H12") in kinds
    assert (AuditKind.HUB_ALERT, "INTERNAL_ERROR") in kinds
    assert (AuditKind.REFUSAL, "H12") in kinds
    assert eng.counters == {"internal_error": 1}  # the step's own counts were undone
    [fault] = eff.faults
    assert fault.where == "on_frame"
    assert fault.error_type == "RuntimeError"
    assert "deliberate failure" in fault.message
    assert "_boom" in fault.traceback_text
    assert eff.save_requests == []
    assert eff.dispatch == []
    # nothing half-applied: not remembered, no place held, nothing in flight
    assert eng.index.known("u-supa", "r1") is None
    assert eng.index.in_flight == 0
    assert eng.traffic.occupancy == occupancy
    monkeypatch.undo()
    again = eng.on_frame("u-supa", _req("r1"), T0 + 1)  # the same request id, resubmitted
    [ack] = [wire.decode(s.payload) for s in again.send]
    assert isinstance(ack, wire.Acknowledgement)
    assert ack.code is ResponseCode.I99
    [dispatch] = again.dispatch
    done = eng.on_device_response(
        DeviceResponse(dispatch.command.command_id, ESME, "4.1.1", CommandStatus.SUCCESS, {}),
        T0 + 2,
    )
    [delivery] = done.add_deliveries
    response = wire.decode(delivery.payload)
    assert isinstance(response, wire.ServiceResponse)
    assert response.code is ResponseCode.I0


def test_a_command_queued_by_a_failed_step_is_never_dispatched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eng = HubEngine(World().access, EngineConfig(batch_release=True))
    real_execute = eng.execute

    def execute_then_fail(*args: object, **kwargs: object) -> Effects:
        real_execute(*args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("after queueing")

    monkeypatch.setattr(eng, "execute", execute_then_fail)
    eff = eng.on_frame("u-supa", _req("r1"), T0)
    assert [wire.decode(s.payload).code for s in eff.send] == [ResponseCode.H12]  # type: ignore[union-attr]
    monkeypatch.undo()
    assert eng.release(T0 + 1).dispatch == []  # withdrawn when it reached the front
    ok = eng.on_frame("u-supa", _req("r2"), T0 + 2)
    assert [wire.decode(s.payload).code for s in ok.send] == [ResponseCode.I99]  # type: ignore[union-attr]
    [dispatch] = eng.release(T0 + 3).dispatch
    assert dispatch.command.command_id == str(ok.save_requests[0].seq)


def test_a_tick_that_raises_is_contained_and_the_engine_keeps_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eng = _engine()
    monkeypatch.setattr(eng.quarantine, "due_notifications", _boom)
    eff = eng.tick(T0)
    assert [f.where for f in eff.faults] == ["tick"]
    assert eff.send == []
    assert eng.counters["internal_error"] == 1
    assert [a.kind for a in eff.audit] == [AuditKind.INTERNAL_ERROR, AuditKind.HUB_ALERT]
    ok = eng.on_frame("u-supb", _req("r1", device=ESME), T0 + 1)
    assert ok.faults == []
    assert len(ok.send) == 1


def test_a_device_message_whose_handling_raises_is_contained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eng = _engine()
    monkeypatch.setattr(eng, "_in_flight_for", _boom)
    eff = eng.on_device_response(DeviceResponse("1", ESME, "4.1.1", CommandStatus.SUCCESS, {}), T0)
    assert [f.where for f in eff.faults] == ["on_device_response"]
    assert eng.counters["internal_error"] == 1


def test_an_accepted_request_the_hub_cannot_resume_after_a_restart_is_answered_h12(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = _engine()
    accepted = first.on_frame("u-supa", _req("r1"), T0).save_requests[0]
    accepted.state = RequestState.ACCEPTED  # as the store keeps it
    eng = _engine()
    monkeypatch.setattr(eng.traffic, "restore", _boom)
    eff = eng.restore([accepted], [], first.next_seq, first.next_delivery, T0 + 5)
    assert [f.where for f in eff.faults] == ["restore"], [f.traceback_text for f in eff.faults]
    assert eff.complete_requests == [accepted.seq]
    [delivery] = eff.add_deliveries
    response = wire.decode(delivery.payload)
    assert isinstance(response, wire.ServiceResponse)
    assert response.code is ResponseCode.H12

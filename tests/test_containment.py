"""No input stops the hub: reasons built from what users sent stay within the wire's limit, and
an engine step that raises is answered, audited, counted and contained."""

from __future__ import annotations

from datetime import timedelta

from hub import wire
from hub.engine import EngineConfig, HubEngine
from hub.reference.catalogue import CATALOGUE
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.service_params import example_params
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

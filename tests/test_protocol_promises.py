"""Promises of docs/protocol.md that the engine keeps, tested with a fake clock: a past
``execute_at`` (section 9: within the clock-skew allowance behind the hub's clock it executes
now, beyond it is refused E12, and a quarantined request is judged again, by the hub's clock,
when its user releases it), and E3 (section 10: given by access control to a user who is not
active, which over the wire never gets past the handshake; ``tests/test_wire_live.py`` shows
that part)."""

from __future__ import annotations

from datetime import timedelta

from hub import wire
from hub.engine import EngineConfig, HubEngine
from hub.engine.effects import Effects
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from tests.world import COS_DAY, ESME, World, at

T0 = at(COS_DAY - timedelta(days=10)).timestamp()
SKEW_S = 300.0
"""The allowance docs/protocol.md names (EngineConfig's default)."""


def _engine() -> HubEngine:
    eng = HubEngine(World().access, EngineConfig())
    assert eng.config.clock_skew_s == SKEW_S
    limits = wire.SetThresholds(service="4.1.1", warning=1, quarantine=1, period_s=3600.0)
    eng.on_frame("u-supa", wire.encode(limits), T0)
    first = eng.on_frame("u-supa", _read("first"), T0)  # the one request the threshold allows
    assert _answers(first)[0].code is ResponseCode.I99
    return eng


def _read(request_id: str, execute_at: float | None = None) -> bytes:
    return wire.encode(
        wire.ServiceRequest(
            request_id=request_id,
            role=Role.IS,
            service="4.1.1",
            device_id=ESME,
            execute_at=execute_at,
        )
    )


def _answers(effects: Effects) -> list[wire.Acknowledgement | wire.Refusal]:
    out = []
    for send in effects.send:
        msg = wire.decode(send.payload)
        assert isinstance(msg, wire.Acknowledgement | wire.Refusal), msg
        out.append(msg)
    return out


def _quarantined(eng: HubEngine, request_id: str, execute_at: float | None) -> None:
    [held] = _answers(eng.on_frame("u-supa", _read(request_id, execute_at), T0 + 1))
    assert held.code is ResponseCode.H7, held


def _release(eng: HubEngine, request_id: str, now: float) -> Effects:
    decision = wire.QuarantineDecision(
        action=wire.QuarantineAction.RELEASE, request_ids=(request_id,)
    )
    return eng.on_frame("u-supa", wire.encode(decision), now)


def test_a_quarantined_request_released_too_long_after_its_execute_at_is_refused_e12() -> None:
    eng = _engine()
    execute_at = T0 + 60  # in the future when sent
    _quarantined(eng, "late", execute_at)
    released = _release(eng, "late", execute_at + SKEW_S + 1)
    [answer] = _answers(released)
    assert isinstance(answer, wire.Refusal), answer
    assert answer.request_id == "late"
    assert answer.code is ResponseCode.E12
    assert "is in the past" in answer.reason
    assert f"at most {SKEW_S:g} s behind is executed now" in answer.reason
    assert released.dispatch == []


def test_a_quarantined_request_released_within_the_allowance_of_its_time_runs_now() -> None:
    eng = _engine()
    execute_at = T0 + 60
    _quarantined(eng, "on-time", execute_at)
    released = _release(eng, "on-time", execute_at + SKEW_S)  # exactly the allowance behind
    [answer] = _answers(released)
    assert isinstance(answer, wire.Acknowledgement), answer
    assert answer.code is ResponseCode.I99
    [dispatch] = released.dispatch
    assert dispatch.command.device_id == ESME
    assert dispatch.command.execute_at is None  # executed now, not future dated


def test_a_quarantined_future_dated_request_released_before_its_time_waits_for_it() -> None:
    eng = _engine()
    execute_at = T0 + 600
    _quarantined(eng, "early", execute_at)
    released = _release(eng, "early", T0 + 30)
    [answer] = _answers(released)
    assert isinstance(answer, wire.Acknowledgement), answer
    assert released.dispatch == []  # held by the hub until execute_at
    assert eng.tick(execute_at - 1).dispatch == []
    [dispatch] = eng.tick(execute_at).dispatch
    assert dispatch.command.device_id == ESME


def test_a_quarantined_request_without_execute_at_runs_when_released_however_late() -> None:
    eng = _engine()
    _quarantined(eng, "now", None)
    released = _release(eng, "now", T0 + 86_400)
    [answer] = _answers(released)
    assert isinstance(answer, wire.Acknowledgement), answer
    assert len(released.dispatch) == 1


def test_a_past_execute_at_is_refused_e12_beyond_the_allowance_and_runs_now_within_it() -> None:
    eng = HubEngine(World().access, EngineConfig())
    [late] = _answers(eng.on_frame("u-supa", _read("p-late", T0 - SKEW_S - 1), T0))
    assert late.code is ResponseCode.E12
    [edge] = _answers(eng.on_frame("u-supa", _read("p-edge", T0 - SKEW_S), T0))
    assert edge.code is ResponseCode.I99


def test_a_request_that_reaches_the_engine_from_a_suspended_user_is_refused_e3() -> None:
    eng = HubEngine(World().access, EngineConfig())
    [refused] = _answers(eng.on_frame("u-gone", _read("gone-1"), T0))
    assert isinstance(refused, wire.Refusal), refused
    assert refused.code is ResponseCode.E3
    assert "suspended" in refused.reason

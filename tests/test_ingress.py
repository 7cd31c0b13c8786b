"""The front door's ingress, driven with a fake clock: lanes, bounds in frames and bytes,
control messages before requests, urgent requests kept when full, overdue requests answered
busy without being decided."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from hub import wire
from hub.engine import EngineConfig, HubEngine
from hub.engine.ingress import UNREADABLE, Ingress, Lane, Peek, Waiting, peek
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from tests.world import ESME, World


def _request(request_id: str, service: str = "4.1.1") -> bytes:
    params = {"utrn": "x"} if service == "2.2" else {}
    return wire.encode(
        wire.ServiceRequest(
            request_id=request_id, role=Role.IS, service=service, device_id=ESME, params=params
        )
    )


def _waiting(name: str, lane: Lane, at: float = 0.0, size: int = 10) -> Waiting[str]:
    return Waiting(name, Peek("service_request", name, "4.1.1"), lane, size, at)


def test_peek_reads_the_kind_request_id_and_service_of_a_request() -> None:
    assert peek(_request("r-1", "2.2")) == Peek("service_request", "r-1", "2.2")
    assert peek(wire.encode(wire.Hello(max_in_flight=None))) == Peek("hello", None, None)
    assert peek(wire.encode(wire.DeliveryAck(delivery_ids=(1, 2)))).kind == "delivery_ack"


def test_peek_leaves_an_ill_formed_request_id_unread() -> None:
    frame = msgpack.packb({"v": 1, "kind": "service_request", "request_id": "no spaces"})
    assert peek(frame) == Peek("service_request", None, None)
    assert not peek(frame).is_request


@given(st.binary(max_size=512))
def test_peek_never_raises_on_random_bytes(frame: bytes) -> None:
    seen = peek(frame)
    assert isinstance(seen, Peek)


def test_peek_of_a_frame_that_is_not_a_map_is_unreadable() -> None:
    assert peek(b"") is UNREADABLE
    assert peek(msgpack.packb([1, 2, 3])) is UNREADABLE
    assert peek(b"\x83\xa4kind") is UNREADABLE  # truncated


def test_the_engine_puts_control_messages_first_and_requests_by_their_class() -> None:
    eng = HubEngine(World().access, EngineConfig())
    assert eng.triage(wire.encode(wire.DeliveryAck(delivery_ids=(1,))))[1] is Lane.CONTROL
    assert eng.triage(b"\xc1 garbage")[1] is Lane.CONTROL
    assert eng.triage(_request("t", "2.2"))[1] is Lane.URGENT
    assert eng.triage(_request("r", "4.1.1"))[1] is Lane.ON_DEMAND
    assert eng.triage(_request("f", "11.1"))[1] is Lane.BULK
    assert eng.triage(_request("u", "99.9"))[1] is Lane.ON_DEMAND


def test_frames_are_taken_lane_by_lane_oldest_first() -> None:
    ingress: Ingress[str] = Ingress(100, 10_000)
    for name, lane in [("r1", Lane.ON_DEMAND), ("ack", Lane.CONTROL), ("t1", Lane.URGENT)]:
        assert ingress.put(_waiting(name, lane)) is None
    ingress.put(_waiting("r2", Lane.ON_DEMAND))
    assert [w.item for w in ingress.take(Lane.CONTROL, 10)] == ["ack"]
    assert [w.item for w in ingress.take(Lane.URGENT, 10)] == ["t1"]
    assert [w.item for w in ingress.take(Lane.ON_DEMAND, 1)] == ["r1"]
    assert (len(ingress), ingress.bytes) == (1, 10)


def test_a_full_ingress_sheds_the_newest_lower_priority_request_for_an_urgent_one() -> None:
    ingress: Ingress[str] = Ingress(3, 10_000)
    for name in ("r1", "r2", "r3"):
        assert ingress.put(_waiting(name, Lane.ON_DEMAND)) is None
    shed = ingress.put(_waiting("t1", Lane.URGENT))
    assert shed is not None
    assert shed.item == "r3"
    refused = ingress.put(_waiting("r4", Lane.ON_DEMAND))
    assert refused is not None
    assert refused.item == "r4"
    shed = ingress.put(_waiting("ack", Lane.CONTROL))
    assert shed is not None
    assert shed.item == "r2"
    assert len(ingress) == 3
    assert [w.item for w in ingress.take(Lane.CONTROL, 5)] == ["ack"]


def test_the_ingress_is_bounded_in_bytes_as_well_as_frames() -> None:
    ingress: Ingress[str] = Ingress(100, 25)
    assert ingress.put(_waiting("a", Lane.ON_DEMAND, size=10)) is None
    assert ingress.put(_waiting("b", Lane.ON_DEMAND, size=10)) is None
    refused = ingress.put(_waiting("c", Lane.ON_DEMAND, size=10))
    assert refused is not None
    assert refused.item == "c"
    big = ingress.put(_waiting("huge", Lane.URGENT, size=26))
    assert big is not None
    assert big.item == "huge"
    assert ingress.bytes == 20


def test_requests_waiting_past_the_bound_are_overdue_and_control_messages_never_are() -> None:
    ingress: Ingress[str] = Ingress(100, 10_000)
    ingress.put(_waiting("old", Lane.ON_DEMAND, at=10.0))
    ingress.put(_waiting("ack", Lane.CONTROL, at=10.0))
    ingress.put(_waiting("new", Lane.ON_DEMAND, at=10.8))
    assert ingress.oldest() == 10.0
    assert ingress.overdue(11.0, 1.0) == []
    assert [w.item for w in ingress.overdue(11.5, 1.0)] == ["old"]
    assert ingress.oldest() == 10.8
    assert [w.item for w in ingress.take(Lane.CONTROL, 5)] == ["ack"]


def test_an_overdue_request_is_answered_busy_without_being_decided() -> None:
    eng = HubEngine(World().access, EngineConfig())
    seen = peek(_request("r-late"))
    eff = eng.on_overdue("u-supa", seen, 1.7, 1.0, 100.0)
    [send] = eff.send
    refusal = wire.decode(send.payload)
    assert isinstance(refusal, wire.Refusal)
    assert (refusal.request_id, refusal.code) == ("r-late", ResponseCode.H8)
    assert refusal.retry_after_s == eng.config.busy_retry_s
    assert "waited 1.7 s" in refusal.reason
    [audit] = eff.audit
    assert (audit.request_id, audit.code, audit.user_id) == ("r-late", "H8", "u-supa")
    assert eff.save_requests == []
    assert eng.index.known("u-supa", "r-late") is None
    # the same request, resubmitted when the hub has time, is decided as usual
    ack = wire.decode(eng.on_frame("u-supa", _request("r-late"), 106.0).send[0].payload)
    assert isinstance(ack, wire.Acknowledgement | wire.Refusal)
    assert ack.code is not ResponseCode.H8

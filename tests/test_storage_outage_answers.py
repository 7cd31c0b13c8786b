"""The pure answers of a storage outage: requests and unreadable frames get H8 "storage
unavailable" with a retry-after and their request id, control messages are kept for later,
and the answers of a batch the store failed to write become the same H8."""

from __future__ import annotations

from hub import wire
from hub.policies.storage_outage import UNAVAILABLE_REASON, answer_during_outage, busy_instead_of
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role


def _refusal(frame: bytes | None) -> wire.Refusal:
    assert frame is not None
    msg = wire.decode_from_hub(frame)
    assert isinstance(msg, wire.Refusal)
    return msg


def test_a_request_during_an_outage_is_refused_busy_with_its_id_and_a_retry_after() -> None:
    req = wire.ServiceRequest(
        request_id="r-1", role=Role.IS, service="4.1.1", device_id="00000000000000AB"
    )
    answer = _refusal(answer_during_outage(wire.encode(req), 5.0))
    assert answer.code is ResponseCode.H8
    assert answer.request_id == "r-1"
    assert answer.retry_after_s == 5.0
    assert UNAVAILABLE_REASON in answer.reason


def test_an_unreadable_frame_during_an_outage_is_refused_busy_too() -> None:
    for frame in (b"", b"\xc1", b"\x81\xa1v\x01"):
        answer = _refusal(answer_during_outage(frame, 2.0))
        assert answer.code is ResponseCode.H8
        assert answer.request_id is None


def test_control_messages_during_an_outage_are_kept_for_the_rebuilt_engine() -> None:
    for msg in (wire.Hello(max_in_flight=10), wire.DeliveryAck(delivery_ids=(1, 2))):
        assert answer_during_outage(wire.encode(msg), 5.0) is None


def test_an_acknowledgement_of_a_batch_that_was_not_written_becomes_a_busy_refusal() -> None:
    ack = wire.Acknowledgement(request_id="r-2", code=ResponseCode.I99, reason="accepted")
    answer = _refusal(busy_instead_of(wire.encode(ack), 5.0))
    assert answer.code is ResponseCode.H8
    assert answer.request_id == "r-2"
    refusal = wire.Refusal(request_id="r-3", code=ResponseCode.E4, reason="not yours")
    assert _refusal(busy_instead_of(wire.encode(refusal), 5.0)).request_id == "r-3"


def test_a_welcome_of_a_batch_that_was_not_written_is_dropped_for_the_hello_said_again() -> None:
    welcome = wire.Welcome(protocol_version=1, server_time=1.0, user_id="u", pending=0)
    assert busy_instead_of(wire.encode(welcome), 5.0) is None

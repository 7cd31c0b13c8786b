"""The wire codec: round trips, hostile input, each refusal code, and request fingerprints."""

from __future__ import annotations

import re
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import wire
from hub.reference.codes import MEANINGS, ResponseCode
from hub.reference.roles import Role
from hub.reference.standard import Value

# --- strategies ---------------------------------------------------------------------------------

request_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
device_ids = st.from_regex(r"[0-9A-F]{16}", fullmatch=True)
services = st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,4}){0,7}", fullmatch=True)
alert_codes = st.from_regex(r"[0-9A-Z_]{1,16}", fullmatch=True)
instants = st.one_of(
    st.floats(min_value=0.0, max_value=wire.MAX_INSTANT),
    st.integers(min_value=0, max_value=int(wire.MAX_INSTANT)),
)
delivery_ids = st.integers(min_value=0, max_value=wire.MAX_DELIVERY_ID)
reasons = st.text(min_size=1, max_size=wire.MAX_REASON_CHARS)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.binary(max_size=20),
)


def values(depth: int) -> st.SearchStrategy[Value]:
    """Wire values nested at most ``depth`` containers deep."""
    if depth == 0:
        return scalars
    inner = values(depth - 1)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=10), inner, max_size=4),
    )


value_maps = st.dictionaries(st.text(max_size=10), values(3), max_size=5)

service_requests = st.builds(
    wire.ServiceRequest,
    request_id=request_ids,
    role=st.sampled_from(Role),
    service=services,
    device_id=st.none() | device_ids,
    params=value_maps,
    execute_at=st.none() | instants,
    signature=st.binary(max_size=wire.MAX_SIGNATURE_BYTES),
)
KIND_STRATEGIES: dict[str, st.SearchStrategy[wire.Message]] = {
    "service_request": service_requests,
    "delivery_ack": st.builds(
        wire.DeliveryAck,
        delivery_ids=st.lists(delivery_ids, min_size=1, max_size=wire.MAX_ACK_IDS).map(tuple),
    ),
    "hello": st.builds(wire.Hello, max_in_flight=st.none() | st.integers(1, wire.MAX_IN_FLIGHT)),
    "quarantine": st.builds(
        wire.QuarantineDecision,
        action=st.sampled_from(list(wire.QuarantineAction)),
        request_ids=st.lists(request_ids, min_size=1, max_size=20).map(tuple),
    ),
    "thresholds": st.integers(1, 100_000_000).flatmap(
        lambda w: st.builds(
            wire.SetThresholds,
            service=services,
            warning=st.just(w),
            quarantine=st.integers(w, 100_000_000),
            period_s=st.floats(60.0, 604_800.0),
        )
    ),
    "acknowledgement": st.builds(wire.Acknowledgement, request_id=request_ids, reason=reasons),
    "refusal": st.one_of(
        st.builds(
            wire.Refusal,
            request_id=st.none() | request_ids,
            code=st.sampled_from(
                [c for c in ResponseCode if c.value[0] in "EH" and c.value != "H8"]
            ),
            reason=reasons,
        ),
        st.builds(
            wire.Refusal,
            request_id=st.none() | request_ids,
            code=st.just(ResponseCode.H8),
            reason=reasons,
            retry_after_s=st.floats(
                min_value=0.0, max_value=wire.MAX_RETRY_AFTER_S, exclude_min=True
            ),
        ),
    ),
    "service_response": st.builds(
        wire.ServiceResponse,
        delivery_id=delivery_ids,
        request_id=request_ids,
        service=services,
        device_id=st.none() | device_ids,
        code=st.sampled_from(
            [c for c in ResponseCode if c.value == "I0" or c.value[0] == "E" or c.value == "H11"]
        ),
        body=value_maps,
        responded_at=instants,
    ),
    "device_alert": st.builds(
        wire.DeviceAlertNotice,
        delivery_id=delivery_ids,
        device_id=device_ids,
        alert_code=alert_codes,
        raised_at=instants,
        data=value_maps,
        mpxn=st.none() | st.from_regex(r"[0-9]{6,13}", fullmatch=True),
    ),
    "hub_alert": st.builds(
        wire.HubAlert,
        delivery_id=delivery_ids,
        alert_code=alert_codes,
        raised_at=instants,
        data=value_maps,
    ),
    "welcome": st.builds(
        wire.Welcome,
        protocol_version=st.integers(1, 65_535),
        server_time=instants,
        user_id=st.text(min_size=1, max_size=128),
        pending=delivery_ids,
    ),
}
messages = st.one_of(*KIND_STRATEGIES.values())
USER_KINDS = {"service_request", "delivery_ack", "hello", "quarantine", "thresholds"}
CLASSES: tuple[type[wire.Message], ...] = (
    wire.ServiceRequest,
    wire.DeliveryAck,
    wire.Hello,
    wire.QuarantineDecision,
    wire.SetThresholds,
    wire.Acknowledgement,
    wire.Refusal,
    wire.ServiceResponse,
    wire.DeviceAlertNotice,
    wire.HubAlert,
    wire.Welcome,
)
BY_KIND = {cls.KIND: cls for cls in CLASSES}


def wire_fields(cls: type[wire.Message]) -> list[str]:
    """The field names a kind travels with."""
    return ["v", "kind", *(f.name for f in fields(cls))]


READ = wire.ServiceRequest(
    request_id="sup-42",
    role=Role.IS,
    service="4.1.1",
    device_id="00DB1234567890AB",
    params={"registers": ["import", "export"]},
)


def body_of(msg: wire.Message) -> dict[str, Any]:
    """The msgpack map a message travels as."""
    body: dict[str, Any] = msgpack.unpackb(wire.encode(msg))
    return body


def frame(body: object) -> bytes:
    """Any value packed as msgpack."""
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


def refused(data: bytes, decoder: Any = wire.decode) -> wire.WireError:
    """The WireError a frame is refused with (fails if it decodes)."""
    with pytest.raises(wire.WireError) as caught:
        decoder(data)
    return caught.value


def decodes_or_is_refused(data: bytes) -> None:
    """The decoder's whole contract on hostile input: a message, or a WireError that can be
    answered with a valid Refusal. Anything else propagates and fails the test."""
    try:
        msg = wire.decode(data)
    except wire.WireError as err:
        error = err
    else:
        assert wire.decode(wire.encode(msg)) == msg
        return
    assert error.code in (ResponseCode.H1, ResponseCode.H2, ResponseCode.H3)
    wire.encode(error.to_refusal())


# --- round trips ----------------------------------------------------------------------------


def test_there_is_a_strategy_for_every_kind() -> None:
    assert set(KIND_STRATEGIES) == set(BY_KIND) == set(wire._ANY_KIND)


@pytest.mark.parametrize("kind", sorted(KIND_STRATEGIES))
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_message_kind_comes_back_unchanged_from_encode_and_decode(
    kind: str, data: st.DataObject
) -> None:
    msg = data.draw(KIND_STRATEGIES[kind])
    assert kind == msg.KIND
    decoded = wire.decode(wire.encode(msg))
    assert type(decoded) is type(msg)
    assert decoded == msg
    assert wire.encode(decoded) == wire.encode(msg)


@given(messages)
def test_each_side_accepts_only_the_kinds_the_other_side_sends(msg: wire.Message) -> None:
    data = wire.encode(msg)
    if msg.KIND in USER_KINDS:
        assert wire.decode_from_user(data) == msg
        err = refused(data, wire.decode_from_hub)
    else:
        assert wire.decode_from_hub(data) == msg
        err = refused(data, wire.decode_from_user)
    assert err.code is ResponseCode.H1
    assert "is not sent by" in err.reason


@pytest.mark.parametrize("buffer", [bytes, bytearray, memoryview])
def test_frames_may_be_any_bytes_like_buffer(buffer: Any) -> None:
    assert wire.decode(buffer(wire.encode(READ))) == READ
    assert refused(buffer(b"\xc1")).code is ResponseCode.H1
    assert refused(buffer(b"")).code is ResponseCode.H1


def test_times_sent_as_integers_are_read_as_floats() -> None:
    body = body_of(READ) | {"execute_at": 1_750_000_000}
    msg = wire.decode(frame(body))
    assert isinstance(msg, wire.ServiceRequest)
    assert msg.execute_at == 1_750_000_000.0
    assert type(msg.execute_at) is float


def test_optional_fields_may_be_left_out() -> None:
    body = {"v": 1, "kind": "service_request", "request_id": "r1", "role": "GS", "service": "8.2"}
    assert wire.decode(frame(body)) == wire.ServiceRequest(
        request_id="r1", role=Role.GS, service="8.2"
    )
    assert wire.decode(frame({"v": 1, "kind": "hello"})) == wire.Hello()


# --- hostile input ------------------------------------------------------------------------------


@settings(deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_raise_anything_but_wire_error(data: bytes) -> None:
    decodes_or_is_refused(data)


any_keys = st.one_of(st.text(max_size=12), st.binary(max_size=4))
msgpack_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(),
        st.text(),
        st.binary(),
    ),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(any_keys, inner, max_size=5),
    max_leaves=30,
)


@settings(deadline=None)
@given(msgpack_values)
def test_random_msgpack_values_never_raise_anything_but_wire_error(value: object) -> None:
    decodes_or_is_refused(frame(value))


FIELD_NAMES = sorted({name for cls in CLASSES for name in wire_fields(cls)})


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages,
    st.lists(
        st.tuples(st.sampled_from([*FIELD_NAMES, "extra"]), st.none() | msgpack_values),
        min_size=1,
        max_size=3,
    ),
)
def test_valid_bodies_with_fields_changed_or_removed_never_raise_anything_but_wire_error(
    msg: wire.Message, changes: list[tuple[str, object]]
) -> None:
    body: dict[Any, Any] = body_of(msg)
    for name, value in changes:
        if value is None and name in body:
            del body[name]
        else:
            body[name] = value
    decodes_or_is_refused(frame(body))


@given(messages, st.data())
def test_a_truncated_frame_is_refused_as_malformed(msg: wire.Message, data: st.DataObject) -> None:
    whole = wire.encode(msg)
    cut = data.draw(st.integers(min_value=0, max_value=len(whole) - 1))
    assert refused(whole[:cut]).code is ResponseCode.H1


# --- each refusal code --------------------------------------------------------------------------


def refusal_of(**changes: object) -> wire.WireError:
    """The WireError for the READ request's body with fields replaced (None deletes)."""
    body = body_of(READ)
    for name, value in changes.items():
        if value is None:
            del body[name]
        else:
            body[name] = value
    return refused(frame(body))


def test_an_unknown_field_is_refused_with_h1_naming_the_field_and_the_request() -> None:
    err = refusal_of(priority=1)
    assert err.code is ResponseCode.H1
    assert "priority" in err.reason
    assert err.request_id == "sup-42"


@pytest.mark.parametrize("name", ["role", "service", "kind"])
def test_a_missing_field_is_refused_with_h1_and_the_request_id(name: str) -> None:
    err = refusal_of(**{name: None})
    assert err.code is ResponseCode.H1
    assert name in err.reason
    assert err.request_id == "sup-42"


def test_a_request_without_a_request_id_is_refused_without_one() -> None:
    err = refusal_of(request_id=None)
    assert err.code is ResponseCode.H1
    assert "request_id" in err.reason
    assert err.request_id is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("service", 411),  # int for str
        ("role", 1),
        ("role", "is"),  # not a role
        ("device_id", 1234),
        ("params", ["a", 1]),  # list for map
        ("params", {"a": float("nan")}),
        ("params", {"a": float("inf")}),
        ("params", {b"a": 1}),  # key not a string
        ("execute_at", True),  # bool is not a number here
        ("execute_at", "2025-06-01T00:00:00Z"),
        ("execute_at", -1.0),
        ("signature", "c2lnbmVk"),  # str for bytes
        ("signature", b"x" * (wire.MAX_SIGNATURE_BYTES + 1)),
    ],
)
def test_a_request_field_of_the_wrong_type_or_range_is_refused_with_h1(
    name: str, value: object
) -> None:
    err = refusal_of(**{name: value})
    assert err.code is ResponseCode.H1
    assert name in err.reason
    assert err.request_id == "sup-42"


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"v": 1, "kind": "delivery_ack", "delivery_ids": [True]}, "delivery id"),
        ({"v": 1, "kind": "delivery_ack", "delivery_ids": [1.0]}, "delivery id"),
        ({"v": 1, "kind": "delivery_ack", "delivery_ids": [-1]}, "delivery id"),
        ({"v": 1, "kind": "delivery_ack", "delivery_ids": []}, "delivery_ids"),
        ({"v": 1, "kind": "delivery_ack", "delivery_ids": list(range(1001))}, "delivery_ids"),
        ({"v": 1, "kind": "delivery_ack", "delivery_ids": 7}, "delivery_ids"),
        ({"v": 1, "kind": "hello", "max_in_flight": True}, "max_in_flight"),
        ({"v": 1, "kind": "hello", "max_in_flight": 0}, "max_in_flight"),
        ({"v": 1, "kind": "hello", "max_in_flight": 10_001}, "max_in_flight"),
        ({"v": 1, "kind": "hello", "max_in_flight": "5"}, "max_in_flight"),
    ],
)
def test_acks_and_hellos_with_bad_fields_are_refused_with_h1(
    body: dict[str, object], name: str
) -> None:
    err = refused(frame(body))
    assert err.code is ResponseCode.H1
    assert name in err.reason


@pytest.mark.parametrize("version", [True, "1", 1.0, None])
def test_a_version_that_is_not_an_integer_is_refused_with_h1(version: object) -> None:
    err = refusal_of(v=version)  # None leaves v out
    assert err.code is ResponseCode.H1
    assert err.request_id == "sup-42"


@pytest.mark.parametrize("version", [0, 2, 99, -1])
def test_an_unsupported_version_is_refused_with_h2_and_the_request_id(version: int) -> None:
    err = refusal_of(v=version, kind="from_the_future", extra_field=1)
    assert err.code is ResponseCode.H2
    assert err.request_id == "sup-42"


def test_an_oversized_frame_is_refused_with_h3_before_it_is_unpacked() -> None:
    data = b"\xc1" * (wire.MAX_FRAME_BYTES + 1)  # 0xc1 is never valid msgpack
    err = refused(data)
    assert err.code is ResponseCode.H3
    assert err.request_id is None


def frame_of_size(size: int) -> bytes:
    """A valid request frame of exactly ``size`` bytes, padded with a bytes parameter."""
    base = len(wire.encode(replace(READ, params={"blob": b""})))
    # bin 8/16/32 headers add 2, 3 or 5 bytes beyond the 2 of an empty bin 8
    blob = b"\x00" * (size - base - 3)
    data = wire.encode(replace(READ, params={"blob": blob}))
    assert len(data) == size
    return data


def test_a_frame_of_exactly_the_maximum_size_is_accepted_and_one_byte_more_is_h3() -> None:
    assert isinstance(wire.decode(frame_of_size(wire.MAX_FRAME_BYTES)), wire.ServiceRequest)
    err = refused(bytes(frame_of_size(wire.MAX_FRAME_BYTES - 1)) + b"\x00\x00")
    assert err.code is ResponseCode.H3


def test_encoding_a_message_larger_than_a_frame_is_refused_locally() -> None:
    big = replace(READ, params={"blob": b"\x00" * wire.MAX_FRAME_BYTES})
    with pytest.raises(wire.InvalidMessageError):
        wire.encode(big)


@pytest.mark.parametrize(
    "request_id", ["", "x" * 65, "has space", "slash/not/allowed", "naïve", 42, True, ["r"]]
)
def test_a_bad_request_id_is_refused_with_h1_and_not_echoed(request_id: object) -> None:
    err = refusal_of(request_id=request_id)
    assert err.code is ResponseCode.H1
    assert "request_id" in err.reason
    assert err.request_id is None


@pytest.mark.parametrize(
    "device_id", ["00db1234567890ab", "00DB1234567890A", "00DB1234567890ABC", "00DB1234567890AG"]
)
def test_a_bad_device_id_is_refused_with_h1_and_the_request_id(device_id: str) -> None:
    err = refusal_of(device_id=device_id)
    assert err.code is ResponseCode.H1
    assert "device_id" in err.reason
    assert err.request_id == "sup-42"


def nested(levels: int) -> dict[str, Value]:
    """A params map that is ``levels`` containers deep, counting itself, alternating kinds."""
    value: Value = 1
    for level in range(levels - 1):
        value = [value] if level % 2 else {"k": value}
    return {"k": value}


def test_params_sixteen_levels_deep_are_accepted_and_seventeen_are_refused_with_h1() -> None:
    ok = replace(READ, params=nested(wire.MAX_VALUE_DEPTH))
    assert wire.decode(wire.encode(ok)) == ok
    err = refusal_of(params=nested(wire.MAX_VALUE_DEPTH + 1))
    assert err.code is ResponseCode.H1
    assert "deeper" in err.reason
    assert err.request_id == "sup-42"
    with pytest.raises(wire.InvalidMessageError):
        replace(READ, params=nested(wire.MAX_VALUE_DEPTH + 1))


def test_a_thousand_levels_of_nesting_are_refused_with_h1() -> None:
    data = b"\x91" * 1000 + b"\xc0"  # arrays of one item, 1000 deep, around nil
    assert refused(data).code is ResponseCode.H1


def test_a_body_that_repeats_a_field_is_refused_with_h1() -> None:
    # fixmap of 4 entries where device_id appears twice
    data = (
        b"\x84"
        + frame("v")
        + frame(1)
        + frame("kind")
        + frame("hello")
        + frame("max_in_flight")
        + frame(5)
        + frame("max_in_flight")
        + frame(6)
    )
    err = refused(data)
    assert err.code is ResponseCode.H1
    assert "repeats" in err.reason


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (frame([1, "service_request"]), "map"),
        (frame("hello"), "map"),
        (wire.encode(READ) + b"\xc0", "msgpack"),  # trailing bytes
        (frame({"v": 1, "kind": "hello", "x": msgpack.ExtType(5, b"e")}), "msgpack"),
        (b"\x81\xa1v\xa2\xff\xfe", "msgpack"),  # invalid UTF-8 in a string
        (frame({"v": 1}), "kind"),
        (frame({"v": 1, "kind": "service_requests"}), "kind"),
        (frame({"v": 1, "kind": 7}), "kind"),
        (frame({"kind": "hello"}), "'v'"),
        (b"", "msgpack"),
    ],
)
def test_undecodable_frames_are_refused_with_h1_and_a_reason(data: bytes, words: str) -> None:
    err = refused(data)
    assert err.code is ResponseCode.H1
    assert words in err.reason


def test_a_refusal_can_answer_every_wire_error() -> None:
    err = refusal_of(request_id="x" * 65, kind="nope")
    refusal = err.to_refusal()
    assert refusal == wire.Refusal(request_id=None, code=ResponseCode.H1, reason=err.reason)
    assert wire.decode(wire.encode(refusal)) == refusal


# --- construction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: replace(READ, role="IS"),  # type: ignore[arg-type]  # a str is not a Role
        lambda: replace(READ, params={"a": "\ud800"}),  # lone surrogate: not Unicode
        lambda: replace(READ, params={"a": 2**64}),
        lambda: replace(READ, params={"a": (1, 2)}),  # type: ignore[dict-item]  # a tuple
        lambda: replace(READ, execute_at=float("nan")),
        lambda: wire.Refusal(request_id="r", code=ResponseCode.H8, reason="busy"),
        lambda: wire.Refusal(request_id="r", code=ResponseCode.E4, reason="x", retry_after_s=5.0),
        lambda: wire.Refusal(request_id="r", code=ResponseCode.I0, reason="x"),
        lambda: wire.Refusal(request_id="r", code=ResponseCode.E4, reason=""),
        lambda: wire.Acknowledgement(request_id="r", code=ResponseCode.I0),
        lambda: wire.ServiceResponse(
            delivery_id=1,
            request_id="r",
            service="4.1.1",
            device_id=None,
            code=ResponseCode.I99,
            body={},
            responded_at=0.0,
        ),
        lambda: wire.DeviceAlertNotice(
            delivery_id=1, device_id="00DB1234567890AB", alert_code="8f35", raised_at=0.0
        ),
        lambda: wire.DeliveryAck(delivery_ids=[1]),  # type: ignore[arg-type]  # not a tuple
        lambda: wire.Welcome(protocol_version=1, server_time=0.0, user_id="", pending=0),
    ],
)
def test_a_message_with_a_bad_field_cannot_be_built(build: Any) -> None:
    with pytest.raises(wire.InvalidMessageError):
        build()


def test_messages_are_immutable() -> None:
    with pytest.raises(AttributeError):
        READ.service = "2.2"  # type: ignore[misc]


# --- fingerprints -------------------------------------------------------------------------------


@given(service_requests)
def test_equal_requests_have_equal_fingerprints(req: wire.ServiceRequest) -> None:
    decoded = wire.decode(wire.encode(req))
    assert isinstance(decoded, wire.ServiceRequest)
    fingerprint = wire.request_fingerprint(req)
    assert len(fingerprint) == wire.FINGERPRINT_BYTES
    assert wire.request_fingerprint(decoded) == fingerprint
    reordered = replace(req, params=dict(reversed(list(req.params.items()))))
    assert wire.request_fingerprint(reordered) == fingerprint


OTHER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "request_id": request_ids,
    "role": st.sampled_from(Role),
    "service": services,
    "device_id": st.none() | device_ids,
    "params": value_maps,
    "execute_at": st.none() | instants,
    "signature": st.binary(max_size=wire.MAX_SIGNATURE_BYTES),
}


@pytest.mark.parametrize("name", sorted(OTHER_VALUES))
@given(data=st.data())
def test_requests_that_differ_in_any_field_have_different_fingerprints(
    name: str, data: st.DataObject
) -> None:
    req = data.draw(service_requests)
    other = data.draw(OTHER_VALUES[name].filter(lambda v: v != getattr(req, name)))
    assert wire.request_fingerprint(replace(req, **{name: other})) != wire.request_fingerprint(req)


@pytest.mark.parametrize(
    ("one", "another"),
    [
        ({"a": 1}, {"a": True}),
        ({"a": 1}, {"a": 1.0}),
        ({"a": "x"}, {"a": b"x"}),
        ({"a": [1, 2]}, {"a": [2, 1]}),
        ({"a": {"b": 1}}, {"a": [["b", 1]]}),
        ({"a": None}, {}),
    ],
)
def test_params_that_look_alike_but_mean_different_things_have_different_fingerprints(
    one: dict[str, Value], another: dict[str, Value]
) -> None:
    assert wire.request_fingerprint(replace(READ, params=one)) != wire.request_fingerprint(
        replace(READ, params=another)
    )


def test_a_time_given_as_an_integer_has_the_fingerprint_of_the_same_float() -> None:
    assert wire.request_fingerprint(
        replace(READ, execute_at=1_750_000_000)
    ) == wire.request_fingerprint(replace(READ, execute_at=1_750_000_000.0))


def test_the_fingerprint_is_stable_across_releases() -> None:
    # Stored fingerprints must keep matching resubmissions after an upgrade.
    assert wire.request_fingerprint(READ).hex() == FINGERPRINT_OF_READ


FINGERPRINT_OF_READ = "37d4ca0f97aa479ed3eb23f4f0e918c82ed60124ebeafa89e7facdfb5e96ac37"


# --- the specification ----------------------------------------------------------------------------

PROTOCOL_MD = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def test_the_specification_lists_every_response_code_with_its_meaning() -> None:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    for code in ResponseCode:
        row = re.search(
            rf"^\| `{code.value}` \|[^\n]*\|\s*{re.escape(MEANINGS[code])}\s*\|", text, re.M
        )
        assert row, f"{code.value} and its meaning are missing from docs/protocol.md"


@pytest.mark.parametrize("kind", sorted(KIND_STRATEGIES))
def test_the_specification_describes_every_field_of_every_kind(kind: str) -> None:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    section = text.split(f"### `{kind}`", 1)
    assert len(section) == 2, f"no section for {kind}"
    body = section[1].split("\n### ", 1)[0]
    for name in wire_fields(BY_KIND[kind]):
        assert f"| `{name}` |" in body, f"{kind}.{name} is not described"


def test_the_byte_level_example_is_what_the_codec_produces() -> None:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    block = text.split("The same body as msgpack", 1)[1].split("```", 2)[1]
    example = wire.ServiceRequest(
        request_id="sup-0001", role=Role.IS, service="4.1.1", device_id="00DB1234567890AB"
    )
    assert bytes.fromhex(block) == wire.encode(example)


def test_every_link_to_a_section_of_the_specification_names_a_heading_it_has() -> None:
    text = PROTOCOL_MD.read_text(encoding="utf-8")
    anchors = set()
    for heading in re.findall(r"^#{2,3} (.+)$", text, re.M):
        slug = re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links
    assert sorted(set(links) - anchors) == []


# --- allocation limits ----------------------------------------------------------------------


def hello_with(extra: bytes) -> bytes:
    """A hello whose third entry ``x`` holds the raw msgpack ``extra``."""
    return b"\x83" + frame("v") + frame(1) + frame("kind") + frame("hello") + frame("x") + extra


def test_a_frame_with_more_maps_and_arrays_than_the_limit_is_refused_with_h1() -> None:
    count = wire.MAX_CONTAINERS + 1
    data = hello_with(b"\xdd" + count.to_bytes(4, "big") + b"\x90" * count)
    err = refused(data)
    assert err.code is ResponseCode.H1
    assert "maps and arrays" in err.reason


def test_a_large_frame_within_the_container_limit_is_read() -> None:
    rows: list[Value] = [[i, i * 2] for i in range(wire.MAX_CONTAINERS - 10)]
    response = wire.ServiceResponse(
        delivery_id=1,
        request_id="r",
        service="4.8.1",
        device_id=None,
        code=ResponseCode.I0,
        body={"rows": rows},
        responded_at=0.0,
    )
    data = wire.encode(response)
    assert len(data) > wire.MAX_CONTAINERS
    assert wire.decode(data) == response


def test_a_frame_that_does_not_start_with_a_map_is_refused_without_unpacking() -> None:
    data = b"\xdd" + (100_000).to_bytes(4, "big") + b"\x90" * 100_000
    err = refused(data)
    assert err.code is ResponseCode.H1
    assert "map" in err.reason


@pytest.mark.parametrize(
    "bad",
    [
        {"x": msgpack.ExtType(4, b"abcd")},  # an extension type deep in params
        {"a": [{"b": msgpack.ExtType(1, b"")}]},  # one nested deeper
    ],
)
def test_a_frame_unreadable_deep_in_params_is_refused_with_its_readable_request_id(
    bad: dict[str, Any],
) -> None:
    err = refusal_of(params=bad)
    assert err.code is ResponseCode.H1
    assert err.request_id == "sup-42"
    assert wire.request_id_of(frame({**body_of(READ), "params": bad})) == "sup-42"


def test_a_frame_with_a_bad_value_before_its_request_id_is_refused_with_the_id() -> None:
    rest = {k: v for k, v in body_of(READ).items() if k != "params"}
    body = {"params": {"x": msgpack.ExtType(4, b"abcd")}, **rest}
    err = refused(frame(body))
    assert err.code is ResponseCode.H1
    assert err.request_id == "sup-42"


# --- reasons in words, not the decoder's ------------------------------------------------------

LIBRARY_WORDS = ("max_", "Unpack", "unpack(", "strict_map_key", "codec", "ExtType", "0~127")
"""Fragments of msgpack's and Python's own error texts, which no reason may show."""


def reason_of(data: bytes) -> str:
    """The reason a frame from a user is refused with, or '' when it decodes."""
    try:
        wire.decode_from_user(data)
    except wire.WireError as err:
        return err.reason
    return ""


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    head=st.sampled_from([b"\x81", b"\x83", b"\x8f", b"\xde\x00\x05", b"\xdf\x00\x00\x00\x02"]),
    rest=st.binary(max_size=64),
)
def test_no_reason_for_a_malformed_map_names_the_decoders_internals(
    head: bytes, rest: bytes
) -> None:
    reason = reason_of(head + rest)
    assert not any(w in reason for w in LIBRARY_WORDS), reason
    assert "not one msgpack value" not in reason


@settings(max_examples=300)
@given(position=st.integers(min_value=0), value=st.integers(min_value=0, max_value=255))
def test_no_reason_for_a_corrupted_request_names_the_decoders_internals(
    position: int, value: int
) -> None:
    data = bytearray(wire.encode(READ))
    data[position % len(data)] = value
    reason = reason_of(bytes(data))
    assert not any(w in reason for w in LIBRARY_WORDS), reason


@pytest.mark.parametrize(
    "extension",
    [
        b"\xd4\x01\x02",  # fixext 1
        b"\xc7\x04\x05abcd",  # ext 8 of 4 bytes
        b"\xc7\x00\x05",  # an empty extension, which msgpack's length limit lets through
        b"\xd6\xff\x00\x00\x00\x01",  # a msgpack timestamp
        b"\xc7\x00\xff",  # an empty timestamp
        b"\xc7\x00\x80",  # an empty extension of a negative type
    ],
)
def test_an_extension_type_anywhere_is_refused_as_not_allowed_with_the_request_id(
    extension: bytes,
) -> None:
    data = wire.encode(replace(READ, params={"x": None}))
    marker = b"\x81\xa1x\xc0"  # params {"x": nil}: the nil becomes the extension
    assert data.count(marker) == 1
    err = refused(data.replace(marker, marker[:-1] + extension), wire.decode_from_user)
    assert err.code is ResponseCode.H1
    assert err.reason == (
        "malformed msgpack: extension types (msgpack ext, timestamps included) are not allowed"
    )
    assert err.request_id == "sup-42"


def test_a_map_announcing_more_entries_than_allowed_is_refused_with_the_limit_in_words() -> None:
    count = wire.MAX_MAP_ITEMS + 1
    err = refused(hello_with(b"\xdf" + count.to_bytes(4, "big")))
    assert err.code is ResponseCode.H1
    assert err.reason == (
        f"malformed msgpack: a map announces {count:,} entries, more than the "
        f"{wire.MAX_MAP_ITEMS:,} allowed"
    )


def test_an_array_announcing_more_items_than_allowed_is_refused_with_the_limit_in_words() -> None:
    count = wire.MAX_ARRAY_ITEMS + 1
    err = refused(hello_with(b"\xdd" + count.to_bytes(4, "big")))
    assert err.code is ResponseCode.H1
    assert f"an array announces {count:,} items, more than the {wire.MAX_ARRAY_ITEMS:,}" in (
        err.reason
    )


@pytest.mark.parametrize(
    ("key", "words"),
    [
        (b"\x07", "an integer"),
        (b"\xcb" + bytes(8), "a float"),
        (b"\xc3", "a boolean"),
        (b"\xc0", "nil"),
        (b"\x90", "an array"),
        (b"\x80", "a map"),
    ],
)
def test_a_map_key_that_is_not_a_string_is_refused_naming_what_it_is(
    key: bytes, words: str
) -> None:
    err = refused(b"\x82" + frame("v") + frame(1) + key + frame("hello"))
    assert err.code is ResponseCode.H1
    assert err.reason == f"malformed msgpack: a map key is {words}: map keys are strings"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (wire.encode(READ)[:-3], "cut short"),
        (wire.encode(READ) + b"\x00", "bytes after its msgpack map"),
        (b"\x81\xa1v\xa2\xff\xfe", "not valid UTF-8"),
        (b"\x81\xa1v\xc1", "0xc1"),
        (b"\x81\xa1x" + b"\x91" * 2000 + b"\x00", f"{wire.MAX_VALUE_DEPTH} levels"),
        (b"", "empty"),
        (frame([1]), "starts with 0x91"),
    ],
)
def test_each_kind_of_malformed_frame_gets_a_reason_a_person_can_act_on(
    data: bytes, words: str
) -> None:
    err = refused(data)
    assert err.code is ResponseCode.H1
    assert words in err.reason, err.reason


def test_what_a_driver_passes_for_a_message_of_several_frames_is_refused_saying_send_one() -> None:
    err = refused(wire.SEVERAL_FRAMES, wire.decode_from_user)
    assert err.code is ResponseCode.H1
    assert "more than one ZeroMQ frame" in err.reason
    assert "send the message as one frame" in err.reason
    assert "must be a msgpack map" not in err.reason


def test_a_signature_sent_as_text_is_refused_asking_for_msgpack_bin() -> None:
    err = refusal_of(signature="c2lnbmF0dXJl")  # base64 text instead of the 64 bytes
    assert err.code is ResponseCode.H1
    assert err.reason.startswith("signature must be msgpack bin (binary), not 'c2ln"), err.reason


def test_acknowledgements_and_releases_that_are_not_arrays_are_refused_in_msgpack_terms() -> None:
    ack = refused(frame({"v": 1, "kind": "delivery_ack", "delivery_ids": 7}))
    assert ack.reason == "delivery_ids must be an array, not 7"
    release = refused(
        frame({"v": 1, "kind": "quarantine", "action": "release", "request_ids": "r1"})
    )
    assert release.reason == "request_ids must be an array of 1 to 1000 ids"

"""Head-ends: every standard message survives every vendor format, and no damaged frame passes."""

from __future__ import annotations

import hashlib
import hmac
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.headends import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    MAX_FRAME_BYTES,
    CosemHeadEnd,
    EncodeError,
    FrameError,
    HeadEnd,
    HeadEndRegistry,
    IntegrityError,
    TextHeadEnd,
    TlvHeadEnd,
    UnknownHeadEndError,
    cosem,
    text,
    tlv,
)
from hub.reference.catalogue import CATALOGUE
from hub.reference.standard import (
    CommandStatus,
    DeviceAlert,
    DeviceCommand,
    DeviceResponse,
    Uplink,
    Value,
)

HEAD_ENDS: list[HeadEnd] = [TlvHeadEnd(), CosemHeadEnd(), TextHeadEnd()]
MODULES: dict[str, ModuleType] = {"tlv": tlv, "cosem": cosem.headend, "text": text}
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

each_head_end = pytest.mark.parametrize("head_end", HEAD_ENDS, ids=lambda h: h.name)

# --- strategies ---

scalars = (
    st.none()
    | st.booleans()
    | st.integers(INT64_MIN, INT64_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.binary()
)
values: st.SearchStrategy[Value] = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=16,
)
maps = st.dictionaries(st.text(max_size=12), values, max_size=5)
services = st.sampled_from(sorted(CATALOGUE)) | st.text(max_size=8)
instants = st.floats(allow_nan=False, allow_infinity=False)
commands = st.builds(
    DeviceCommand,
    command_id=st.text(max_size=20),
    service=services,
    device_id=st.text(max_size=20),
    params=maps,
    execute_at=st.none() | instants,
    signature=st.binary(max_size=64),
)
responses = st.builds(
    DeviceResponse,
    command_id=st.text(max_size=20),
    device_id=st.text(max_size=20),
    service=services,
    status=st.sampled_from(CommandStatus),
    body=maps,
    reason=st.text(max_size=20),
)
alerts = st.builds(
    DeviceAlert,
    device_id=st.text(max_size=20),
    alert_code=st.sampled_from(["8F35", "AD1", "8F66", "8095"]) | st.text(max_size=6),
    raised_at=instants,
    data=maps,
)
uplinks: st.SearchStrategy[Uplink] = responses | alerts
messages: st.SearchStrategy[DeviceCommand | Uplink] = commands | uplinks

READ_RESPONSE = DeviceResponse(
    command_id="cmd-000042",
    device_id="00-11-22-33-44-55-66-77",
    service="4.1.1",
    status=CommandStatus.SUCCESS,
    body={
        "import_kwh": 12345.678,
        "tou_kwh": [4012.5, 8333.178],
        "read_at": 1_700_000_000.0,
        "unit": "kWh",
        "valid": True,
    },
)
TOP_UP = DeviceCommand(
    command_id="cmd-000043",
    service="2.2",
    device_id="00-11-22-33-44-55-66-77",
    params={"utrn": "73680000000000000014", "credit": 1500, "note": "café ☕", "raw": b"\x00\xff"},
    execute_at=None,
    signature=b"\x01" * 32,
)
ALERT = DeviceAlert(
    device_id="00-11-22-33-44-55-66-77",
    alert_code="8095",
    raised_at=1_700_000_123.25,
    data={"voltage": 183.5, "phase": None, "readings": [{"v": 183.5}, {"v": -0.0}]},
)
SAMPLES: list[DeviceCommand | Uplink] = [READ_RESPONSE, TOP_UP, ALERT]


# --- helpers ---


def strict(value: object) -> object:
    """A form that tells apart what ``==`` does not: bool from int, int from float, -0.0 from
    0.0, list from tuple, and the order of map entries."""
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple(strict(getattr(value, f.name)) for f in fields(value)))
    if isinstance(value, bool | CommandStatus):
        return (type(value).__name__, value)
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, list):
        return ("list", tuple(strict(item) for item in value))
    if isinstance(value, dict):
        return ("map", tuple((key, strict(item)) for key, item in value.items()))
    return (type(value).__name__, value)


def encode(head_end: HeadEnd, message: DeviceCommand | Uplink) -> bytes:
    if isinstance(message, DeviceCommand):
        return head_end.encode_command(message)
    return head_end.encode_uplink(message)


def decoder(head_end: HeadEnd, message: DeviceCommand | Uplink) -> Callable[[bytes], object]:
    if isinstance(message, DeviceCommand):
        return head_end.decode_command
    return head_end.decode_uplink


def decode_either(head_end: HeadEnd, frame: bytes) -> DeviceCommand | Uplink | None:
    """The message in ``frame`` read as either direction, or None if both refuse it."""
    for decode in (head_end.decode_command, head_end.decode_uplink):
        try:
            return decode(frame)
        except FrameError:
            pass
    return None


def flipped(frame: bytes, bit: int) -> bytes:
    damaged = bytearray(frame)
    damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


def reseal(head_end: HeadEnd, content: bytes) -> bytes:
    """``content`` with a valid integrity check appended, as a peer that means harm would."""
    if head_end.name == "tlv":
        if len(content) >= 8:
            content = content[:4] + struct.pack(">I", len(content) - 8) + content[8:]
        return content + tlv.crc16_ccitt_false(content).to_bytes(2, "big")
    if head_end.name == "text":
        return content + b"crc=%08x\n" % zlib.crc32(content)
    device_id = content[5 : 5 + content[4]] if len(content) > 4 else b""
    key = cosem.derive_device_key(cosem.SIMULATOR_MASTER_KEY, device_id)
    return content + hmac.new(key, content, hashlib.sha256).digest()[: cosem.MAC_BYTES]


def unsealed(head_end: HeadEnd, frame: bytes) -> bytes:
    trailer = {"tlv": 2, "text": len(b"crc=00000000\n"), "cosem": cosem.MAC_BYTES}
    return frame[: -trailer[head_end.name]]


def nested(levels: int) -> dict[str, Value]:
    """A params map whose containers nest ``levels`` deep, the map itself included."""
    value: Value = "leaf"
    for level in range(levels - 1):
        value = [value] if level % 2 else {"k": value}
    return {"deep": value}


# --- round trips ---


@PROPERTY
@given(cmd=commands)
def test_every_command_round_trips_exactly_through_every_head_end(cmd: DeviceCommand) -> None:
    for head_end in HEAD_ENDS:
        decoded = head_end.decode_command(head_end.encode_command(cmd))
        assert decoded == cmd, head_end.name
        assert strict(decoded) == strict(cmd), head_end.name


@PROPERTY
@given(msg=uplinks)
def test_every_response_and_alert_round_trips_exactly_through_every_head_end(msg: Uplink) -> None:
    for head_end in HEAD_ENDS:
        decoded = head_end.decode_uplink(head_end.encode_uplink(msg))
        assert decoded == msg, head_end.name
        assert strict(decoded) == strict(msg), head_end.name


@each_head_end
def test_a_firmware_image_of_a_megabyte_round_trips(head_end: HeadEnd) -> None:
    image = bytes(range(256)) * 4096
    cmd = DeviceCommand("fw-1", "11.1", "00-11", {"image": image, "version": "2.1.0"})
    assert head_end.decode_command(head_end.encode_command(cmd)) == cmd


@each_head_end
def test_values_nest_up_to_the_depth_limit_and_no_deeper(head_end: HeadEnd) -> None:
    deepest = DeviceCommand("c", "4.1.1", "d", nested(MAX_DEPTH))
    assert head_end.decode_command(head_end.encode_command(deepest)) == deepest
    with pytest.raises(EncodeError):
        head_end.encode_command(DeviceCommand("c", "4.1.1", "d", nested(MAX_DEPTH + 1)))


@each_head_end
def test_a_frame_nested_deeper_than_the_limit_is_refused(
    head_end: HeadEnd, monkeypatch: pytest.MonkeyPatch
) -> None:
    too_deep = DeviceCommand("c", "4.1.1", "d", nested(MAX_DEPTH + 1))
    with monkeypatch.context() as patch:
        patch.setattr(MODULES[head_end.name], "MAX_DEPTH", MAX_DEPTH + 1)
        frame = head_end.encode_command(too_deep)
    with pytest.raises(FrameError, match="deeper"):
        head_end.decode_command(frame)


@each_head_end
@pytest.mark.parametrize(
    "params",
    [
        {"n": INT64_MAX + 1},
        {"n": INT64_MIN - 1},
        {"x": float("nan")},
        {"x": float("inf")},
        {"t": (1, 2)},
        {"s": {1, 2}},
        {"b": bytearray(b"x")},
        {"s": "\ud800"},
        {"m": {1: "one"}},
        {"image": b"\x00" * MAX_FRAME_BYTES},
    ],
    ids=[
        "int-too-big",
        "int-too-small",
        "nan",
        "infinity",
        "tuple",
        "set",
        "bytearray",
        "lone-surrogate",
        "int-key",
        "frame-too-large",
    ],
)
def test_a_message_outside_the_value_model_is_refused_on_encoding(
    head_end: HeadEnd, params: dict[str, Value]
) -> None:
    with pytest.raises(EncodeError):
        head_end.encode_command(DeviceCommand("c", "4.1.1", "d", params))


@each_head_end
def test_non_finite_instants_are_refused_on_encoding(head_end: HeadEnd) -> None:
    with pytest.raises(EncodeError):
        head_end.encode_uplink(DeviceAlert("d", "8F35", float("nan")))
    with pytest.raises(EncodeError):
        head_end.encode_command(DeviceCommand("c", "4.1.1", "d", execute_at=float("inf")))


# --- damage ---


@each_head_end
@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_every_single_bit_flip_of_a_typical_frame_is_detected(
    head_end: HeadEnd, message: DeviceCommand | Uplink
) -> None:
    frame = encode(head_end, message)
    decode = decoder(head_end, message)
    for bit in range(len(frame) * 8):
        with pytest.raises(FrameError):
            decode(flipped(frame, bit))


@PROPERTY
@given(message=messages, data=st.data())
def test_a_single_bit_flip_anywhere_is_detected_by_every_head_end(
    message: DeviceCommand | Uplink, data: st.DataObject
) -> None:
    for head_end in HEAD_ENDS:
        frame = encode(head_end, message)
        bit = data.draw(st.integers(0, len(frame) * 8 - 1), label=f"{head_end.name} bit")
        with pytest.raises(FrameError):
            decoder(head_end, message)(flipped(frame, bit))


@FEW
@given(message=messages)
def test_every_truncation_is_detected_by_every_head_end(message: DeviceCommand | Uplink) -> None:
    for head_end in HEAD_ENDS:
        frame = encode(head_end, message)
        decode = decoder(head_end, message)
        for size in range(len(frame)):
            with pytest.raises(FrameError):
                decode(frame[:size])


@PROPERTY
@given(message=messages, garbage=st.binary(min_size=1, max_size=16))
def test_trailing_garbage_is_detected_by_every_head_end(
    message: DeviceCommand | Uplink, garbage: bytes
) -> None:
    for head_end in HEAD_ENDS:
        with pytest.raises(FrameError):
            decoder(head_end, message)(encode(head_end, message) + garbage)


@PROPERTY
@given(message=messages)
def test_a_frame_is_refused_by_the_decoder_of_the_other_direction(
    message: DeviceCommand | Uplink,
) -> None:
    for head_end in HEAD_ENDS:
        frame = encode(head_end, message)
        wrong = (
            head_end.decode_uplink
            if isinstance(message, DeviceCommand)
            else head_end.decode_command
        )
        with pytest.raises(FrameError):
            wrong(frame)


@PROPERTY
@given(frame=st.binary(max_size=512))
def test_random_bytes_raise_nothing_but_frame_error(frame: bytes) -> None:
    for head_end in HEAD_ENDS:
        decode_either(head_end, frame)


@PROPERTY
@given(content=st.binary(max_size=256))
def test_random_bytes_with_a_valid_integrity_check_raise_nothing_but_frame_error(
    content: bytes,
) -> None:
    for head_end in HEAD_ENDS:
        decode_either(head_end, reseal(head_end, content))


@st.composite
def edits(draw: st.DrawFn, content: bytes) -> bytes:
    """``content`` with a few bytes replaced, inserted or deleted."""
    damaged = bytearray(content)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(damaged) - 1, 0)))
        operation = draw(st.sampled_from(["replace", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if operation == "insert" or not damaged:
            damaged.insert(at, byte)
        elif operation == "replace":
            damaged[at] = byte
        else:
            del damaged[at]
    return bytes(damaged)


@PROPERTY
@given(message=messages, data=st.data())
def test_an_edited_frame_with_a_valid_integrity_check_decodes_only_to_its_one_spelling(
    message: DeviceCommand | Uplink, data: st.DataObject
) -> None:
    for head_end in HEAD_ENDS:
        content = unsealed(head_end, encode(head_end, message))
        frame = reseal(head_end, data.draw(edits(content), label=f"{head_end.name} content"))
        decoded = decode_either(head_end, frame)
        if decoded is not None:
            assert encode(head_end, decoded) == frame, head_end.name


@each_head_end
def test_a_frame_over_the_size_limit_is_refused_unread(head_end: HeadEnd) -> None:
    with pytest.raises(FrameError, match="exceeds"):
        head_end.decode_uplink(b"\x00" * (MAX_FRAME_BYTES + 1))


@each_head_end
@pytest.mark.parametrize("frame", [None, "text", 42], ids=repr)
def test_a_frame_that_is_not_bytes_is_a_frame_error(head_end: HeadEnd, frame: object) -> None:
    with pytest.raises(FrameError):
        head_end.decode_command(frame)  # type: ignore[arg-type]


@each_head_end
def test_a_corrupted_frame_is_reported_as_an_integrity_failure(head_end: HeadEnd) -> None:
    frame = bytearray(head_end.encode_uplink(READ_RESPONSE))
    frame[len(frame) // 2] ^= 0x04
    with pytest.raises(IntegrityError) as caught:
        head_end.decode_uplink(bytes(frame))
    assert caught.value.head_end == head_end.name
    assert caught.value.reason


# --- TLV ---


def test_crc16_ccitt_false_has_the_catalogued_check_value() -> None:
    assert tlv.crc16_ccitt_false(b"123456789") == 0x29B1


@FEW
@given(data=st.binary(max_size=300))
def test_crc16_ccitt_false_agrees_with_a_bitwise_reference(data: bytes) -> None:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    assert tlv.crc16_ccitt_false(data) == crc


def sealed_tlv(kind: int, body: bytes) -> bytes:
    return reseal(TlvHeadEnd(), struct.pack(">2sBBI", b"DT", 1, kind, len(body)) + body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x09\x00", "unknown tag"),
        (b"\x04\x7f" + b"a", "exceeds"),
        (b"\x04\x80\x00", "non-minimal length"),
        (b"\x04\x81\x81\x81\x81\x01", "longer than"),
        (b"\x04\x02\xc3\x28", "UTF-8"),
        (b"\x04\x00\x04\x00\x04\x00\x00\x00\x05\x00\x07\x00\xff", "unexpected bytes"),
        (b"\x04\x00\x04\x00\x04\x00\x00\x00\x05\x00\x07\x06\x04\x00\x00\x00\x04\x00", "duplicate"),
        (b"\x04\x00\x04\x00\x04\x00\x00\x00\x05\x00\x07\x04\x02\x00\x00\x00", "not a str"),
        (b"\x04\x00\x04\x00\x04\x00\x02\x02\x00\x01", "non-minimal int"),
        (b"\x04\x00\x04\x00\x04\x00\x03\x08\x7f\xf0\x00\x00\x00\x00\x00\x00", "non-finite"),
        (b"\x04\x00\x04\x00\x04\x00\x00\x00\x05\x00", "ends before"),
    ],
)
def test_tlv_refuses_a_well_sealed_but_malformed_body(body: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        TlvHeadEnd().decode_command(sealed_tlv(tlv.KIND_COMMAND, body))


# --- COSEM ---


@pytest.mark.parametrize(
    ("service", "command_tag", "response_tag"),
    [("4.1.1", 0xC0, 0xC4), ("1.1.1", 0xC1, 0xC5), ("2.2", 0xC3, 0xC7), ("6.2.8", 0xC0, 0xC4)],
)
def test_cosem_reads_are_get_updates_set_and_operations_action(
    service: str, command_tag: int, response_tag: int
) -> None:
    head_end = CosemHeadEnd()
    command = head_end.encode_command(DeviceCommand("c-1", service, "d"))
    response = head_end.encode_uplink(DeviceResponse("c-1", "d", service, CommandStatus.SUCCESS))
    assert (command[0], response[0]) == (command_tag, response_tag)
    assert command[2] == response[2], "the response echoes the command's invoke id"


def test_cosem_addresses_a_meter_read_by_its_obis_code() -> None:
    target = cosem.service_object("4.1.1")
    assert (target.class_id, target.logical_name, target.obis) == (
        3,
        "1.0.1.8.0.255",
        bytes([1, 0, 1, 8, 0, 255]),
    )
    assert target.obis in CosemHeadEnd().encode_command(DeviceCommand("c", "4.1.1", "d"))


def test_every_catalogue_service_has_a_cosem_object() -> None:
    for code in CATALOGUE:
        target = cosem.service_object(code)
        assert len(target.obis) == 6, code


def test_cosem_alerts_are_high_priority_event_notifications() -> None:
    frame = CosemHeadEnd().encode_uplink(ALERT)
    assert frame[:3] == b"\xc2\x01\x80"


def test_a_cosem_frame_from_a_head_end_with_another_master_key_fails_its_mac() -> None:
    frame = CosemHeadEnd(b"another master key, 32 bytes...").encode_uplink(READ_RESPONSE)
    with pytest.raises(IntegrityError, match="MAC"):
        CosemHeadEnd().decode_uplink(frame)


def test_a_cosem_frame_moved_to_another_device_fails_its_mac() -> None:
    head_end = CosemHeadEnd()
    frame = head_end.encode_command(DeviceCommand("c", "7.2", "AAAA"))
    with pytest.raises(IntegrityError):
        head_end.decode_command(frame.replace(b"AAAA", b"BBBB"))


def test_each_device_has_its_own_cosem_key() -> None:
    master = cosem.SIMULATOR_MASTER_KEY
    assert cosem.derive_device_key(master, "A") != cosem.derive_device_key(master, "B")
    assert len(cosem.derive_device_key(master, "A")) == 32


def test_a_short_cosem_master_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        CosemHeadEnd(b"short")


def cosem_frame(apdu: bytes, device: bytes, body: bytes) -> bytes:
    return reseal(CosemHeadEnd(), apdu + bytes((0x0A, len(device))) + device + body)


def test_cosem_refuses_a_command_whose_apdu_kind_does_not_match_its_service() -> None:
    good = CosemHeadEnd().encode_command(DeviceCommand("c", "4.1.1", "d"))
    forged = reseal(CosemHeadEnd(), b"\xc3" + unsealed(CosemHeadEnd(), good)[1:])
    with pytest.raises(FrameError, match="does not match"):
        CosemHeadEnd().decode_command(forged)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x02\x05", "structure of 6"),
        (b"\x02\x06\x0c\x01a", "visible-string"),
        (b"\x02\x06\x0a\x01\x07", "printable"),
        (b"\x02\x06\x0a\x81\x05", "non-minimal"),
        (b"\x02\x06\x0a\x85\x00\x00\x00\x00\x01", "length form"),
        (b"\x02\x06\x0a\x7f", "exceeds"),
        (b"\x02\x06\x0a\x00\x0a\x00\x02\x03\x12\x00\x01", "descriptor"),
    ],
)
def test_cosem_refuses_a_well_sealed_but_malformed_body(body: bytes, reason: str) -> None:
    with pytest.raises(FrameError, match=reason):
        CosemHeadEnd().decode_command(cosem_frame(b"\xc3\x01\x40", b"d", body))


# --- text ---


def test_the_text_format_is_readable_lines_ending_with_a_crc() -> None:
    frame = TextHeadEnd().encode_command(
        DeviceCommand(
            "cmd-42", "4.1.1", "0011223344556677", {"register": "import", "tiers": [1, 2.5]}
        )
    )
    lines = frame.decode("ascii").splitlines()
    assert lines[:-1] == [
        'DCC-TEXT/1 COMMAND "4.1.1" "cmd-42" "0011223344556677"',
        "execute_at=~",
        "signature=hex:",
        "params={2}",
        'params.register="import"',
        "params.tiers=[2]",
        "params.tiers[0]=1",
        "params.tiers[1]=2.5",
    ]
    assert lines[-1] == f"crc={zlib.crc32(frame[: -len(lines[-1]) - 1]):08x}"
    assert lines[-1] in (text.__doc__ or ""), "the module's example frame is the real one"


def test_text_escapes_unicode_and_quotes_odd_keys() -> None:
    frame = TextHeadEnd().encode_uplink(
        DeviceAlert("d\n", "8F35", 1.5, {"a.b": 'é"\\☕\U0001f600', "": b"\x01"})
    )
    assert 'ALERT "8F35" "d\\n"' in frame.decode("ascii")
    assert 'data."a.b"="\\xe9\\"\\\\\\u2615\\U0001f600"' in frame.decode("ascii")
    assert 'data.""=hex:01' in frame.decode("ascii")


def sealed_text(*lines: str) -> bytes:
    return reseal(TextHeadEnd(), ("\n".join(lines) + "\n").encode("latin-1"))


ALERT_HEAD = 'DCC-TEXT/1 ALERT "8F35" "d"'


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        ((ALERT_HEAD, "raised_at=1e5", "data={0}"), "non-canonical float"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", "data.a=007"), "non-canonical int"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", 'data.a="\\x41"'), "non-canonical escape"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", 'data.a="\\ud800"'), "scalar value"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", 'data."a"=1'), "bare"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", "data.a=hex:ABCD"), "bad hex"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", "data.a=9223372036854775808"), "int64"),
        ((ALERT_HEAD, "raised_at=1.0", "data={2}", "data.a=1", "data.a=2"), "duplicate"),
        ((ALERT_HEAD, "raised_at=1.0", "data={9}", "data.a=1"), "fewer lines"),
        ((ALERT_HEAD, "raised_at=1.0", "data={0}", "extra=1"), "unexpected line"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", "data.a=[1]", "data.b[0]=1"), "expected"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", "data.a=\x01"), "neither printable"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", "data.a=\xe9"), "neither printable"),
        ((ALERT_HEAD, "raised_at=1.0", "data={1}", "data.a=hex:ab cd"), "bad hex"),
        (('DCC-TEXT/2 ALERT "8F35" "d"', "raised_at=1.0", "data={0}"), "DCC-TEXT/1"),
        (('DCC-TEXT/1 ALERT "8F35""d"', "raised_at=1.0", "data={0}"), "one space"),
        (('DCC-TEXT/1 ALERT "8F35"  "d"', "raised_at=1.0", "data={0}"), "not a quoted string"),
        ((ALERT_HEAD, "raised_at=~", "data={0}"), "not a float"),
    ],
)
def test_text_refuses_a_well_sealed_but_malformed_frame(
    lines: tuple[str, ...], reason: str
) -> None:
    with pytest.raises(FrameError, match=reason):
        TextHeadEnd().decode_uplink(sealed_text(*lines))


def test_a_text_crc_line_in_upper_case_is_refused() -> None:
    frame = TextHeadEnd().encode_uplink(ALERT)
    with pytest.raises(FrameError):
        TextHeadEnd().decode_uplink(frame[:-9] + frame[-9:].upper())


# --- registry ---


def registry() -> HeadEndRegistry:
    return HeadEndRegistry({h.name: h for h in HEAD_ENDS})


def test_the_registry_finds_a_head_end_by_its_type_name() -> None:
    assert registry().lookup("cosem").name == "cosem"
    assert sorted(registry()) == ["cosem", "text", "tlv"]


def test_an_unknown_head_end_type_names_the_known_ones() -> None:
    with pytest.raises(UnknownHeadEndError) as caught:
        registry().lookup("acme")
    assert str(caught.value) == "unknown head-end type 'acme' (registered: cosem, text, tlv)"
    assert registry().get("acme") is None


def test_the_registry_refuses_a_head_end_filed_under_another_name() -> None:
    with pytest.raises(ValueError, match="calls itself 'tlv'"):
        HeadEndRegistry({"acme": TlvHeadEnd()})


def test_the_registry_refuses_what_is_not_a_head_end() -> None:
    with pytest.raises(TypeError, match="missing method 'encode_command'"):
        HeadEndRegistry({"x": object()})  # type: ignore[dict-item]


def test_the_built_in_head_ends_satisfy_the_protocol() -> None:
    assert all(isinstance(h, HeadEnd) for h in HEAD_ENDS)


def each_pair() -> Iterator[tuple[HeadEnd, DeviceCommand | Uplink]]:
    for head_end in HEAD_ENDS:
        for message in SAMPLES:
            yield head_end, message


@pytest.mark.parametrize(("head_end", "message"), list(each_pair()))
def test_head_ends_do_not_read_each_others_frames(
    head_end: HeadEnd, message: DeviceCommand | Uplink
) -> None:
    frame = encode(head_end, message)
    for other in HEAD_ENDS:
        if other is not head_end:
            with pytest.raises(FrameError):
                decoder(other, message)(frame)

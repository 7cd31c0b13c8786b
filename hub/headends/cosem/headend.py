"""COSEM head-end: DLMS/COSEM-style APDUs with OBIS-addressed objects and a truncated HMAC.

Decides: the byte layout of the ``cosem`` vendor's frames with COSEM-like data types; the
per-device key derived from the head-end's master key; and rejects any frame whose MAC, layout
or object disagree. Which COSEM object and request kind stands for each service is decided in
``objects``.
Must never: accept a frame before its MAC is verified, read past a length, or raise anything
but ``FrameError`` on a received frame.

Frame::

    APDU tag (u8) | 0x01 "normal" (u8) | invoke-id-and-priority (u8) | device id (string) |
    body (structure) | MAC (12 bytes)

APDU tags: GET, SET, ACTION request ``0xC0``, ``0xC1``, ``0xC3``; their responses ``0xC4``,
``0xC5``, ``0xC7``; an alert is an event notification, ``0xC2``. Invoke-id-and-priority: bits
0-3 the invoke id (the low four bits of the CRC-32 of the command id; 0 for alerts), bit 6
set for a confirmed service (commands and responses), bit 7 set for high priority (urgent
services and alerts). The MAC is the first 12 bytes of HMAC-SHA256 over every byte before it,
keyed by ``derive_device_key(master_key, device_id)``.

Data elements are ``type tag | content``; lengths and element counts use the A-XDR form (one
byte below 0x80, else ``0x80 | n`` then ``n`` big-endian bytes, minimal):

===============  ====  ==============================================================
type             tag   used for
===============  ====  ==============================================================
null-data        0x00  None, an absent execute_at
array            0x01  a list: count, then the items
structure        0x02  a map: count, then each entry as structure(2) {string key, value};
                       also the message body and the object descriptor
boolean          0x03  one byte, 0 or 1
double-long      0x05  an int that fits 32 bits (and not 16)
octet-string     0x09  bytes; the 6-byte OBIS logical name
visible-string   0x0A  a str of printable ASCII only
utf8-string      0x0C  any other str
integer          0x0F  an int that fits 8 bits
long             0x10  an int that fits 16 bits (and not 8)
unsigned         0x11  the attribute or method id
long-unsigned    0x12  the class id
long64           0x14  an int that needs 64 bits
enum             0x16  the response status (0 success, 1 rejected, 2 scheduled)
float64          0x18  a float; an instant (seconds since the epoch)
===============  ====  ==============================================================

Bodies: a command is structure(6) {command_id, service, descriptor, execute_at, signature,
params}; a response structure(6) {command_id, service, descriptor, status, reason, body}; an
alert structure(4) {alert_code, descriptor, raised_at, data}. The descriptor is
structure(3) {class id, logical name, attribute or method id} and must be the service's object.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import struct
import zlib
from collections.abc import Mapping
from typing import Final, NoReturn

from hub.headends import _common as check
from hub.headends.base import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    EncodeError,
    FrameError,
    IntegrityError,
)
from hub.headends.cosem.objects import ALERT_OBJECT, Access, CosemObject, service_object
from hub.reference.standard import (
    CommandStatus,
    DeviceAlert,
    DeviceCommand,
    DeviceResponse,
    Uplink,
    Value,
)

NAME: Final = "cosem"

SIMULATOR_MASTER_KEY: Final = b"dcc-hub cosem simulator master key: public, never for production"
"""The default master key. It is published here, so it authenticates nothing: it lets the
simulator and tests run with no set-up. A live deployment passes its own secret key."""

MIN_MASTER_KEY_BYTES: Final = 16
"""Shortest master key accepted."""

MAC_BYTES: Final = 12
"""Length of the truncated HMAC-SHA256 that ends every frame."""

_KEY_LABEL: Final = b"dcc-hub/cosem/device-key/v1\x00"
_KEY_CACHE_SIZE: Final = 4096


def derive_device_key(master_key: bytes, device_id: str | bytes) -> bytes:
    """The 32-byte key that authenticates one device's frames.

    HMAC-SHA256 keyed by the master key over a fixed label and the device id in UTF-8. A
    device is provisioned with its own key only, so a leaked meter does not expose others.
    """
    raw = device_id.encode("utf-8") if isinstance(device_id, str) else device_id
    return hmac.new(master_key, _KEY_LABEL + raw, hashlib.sha256).digest()


# --- data types ---

_NULL: Final = 0x00
_ARRAY: Final = 0x01
_STRUCTURE: Final = 0x02
_BOOLEAN: Final = 0x03
_DOUBLE_LONG: Final = 0x05
_OCTET_STRING: Final = 0x09
_VISIBLE_STRING: Final = 0x0A
_UTF8_STRING: Final = 0x0C
_INTEGER: Final = 0x0F
_LONG: Final = 0x10
_UNSIGNED: Final = 0x11
_LONG_UNSIGNED: Final = 0x12
_LONG64: Final = 0x14
_ENUM: Final = 0x16
_FLOAT64: Final = 0x18

_INT_TYPES: Final = {_INTEGER: 1, _LONG: 2, _DOUBLE_LONG: 4, _LONG64: 8}
_FLOAT: Final = struct.Struct(">d")
_PRINTABLE_ASCII: Final = re.compile(rb"[\x20-\x7e]*")

_REQUEST_TAGS: Final = {Access.GET: 0xC0, Access.SET: 0xC1, Access.ACTION: 0xC3}
_RESPONSE_TAGS: Final = {Access.GET: 0xC4, Access.SET: 0xC5, Access.ACTION: 0xC7}
_EVENT_NOTIFICATION: Final = 0xC2
_REQUEST_TAG_SET: Final = frozenset(_REQUEST_TAGS.values())
_UPLINK_TAG_SET: Final = frozenset((*_RESPONSE_TAGS.values(), _EVENT_NOTIFICATION))
_NORMAL: Final = 0x01
_CONFIRMED: Final = 0x40
_HIGH_PRIORITY: Final = 0x80

_STATUS_CODES: Final = {
    CommandStatus.SUCCESS: 0,
    CommandStatus.REJECTED: 1,
    CommandStatus.SCHEDULED: 2,
}
_STATUS_BY_CODE: Final = {code: status for status, code in _STATUS_CODES.items()}


def _invoke_id_and_priority(command_id: bytes, target: CosemObject) -> int:
    priority = _HIGH_PRIORITY if target.high_priority else 0
    return priority | _CONFIRMED | (zlib.crc32(command_id) & 0x0F)


# --- encoding ---

_SHORT_LENGTHS: Final = tuple(bytes((n,)) for n in range(0x80))


def _length(n: int) -> bytes:
    if n < 0x80:
        return _SHORT_LENGTHS[n]
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def _string(data: bytes) -> bytes:
    tag = _VISIBLE_STRING if _PRINTABLE_ASCII.fullmatch(data) else _UTF8_STRING
    return bytes((tag,)) + _length(len(data)) + data


def _descriptor(target: CosemObject) -> bytes:
    return (
        b"\x02\x03\x12"
        + target.class_id.to_bytes(2, "big")
        + b"\x09\x06"
        + target.obis
        + bytes((_UNSIGNED, target.index))
    )


def _encode_value(value: object, depth: int) -> bytes:
    """One data element; ``depth`` counts the containers around it."""
    if value is None:
        return b"\x00"
    if value is True:
        return b"\x03\x01"
    if value is False:
        return b"\x03\x00"
    if isinstance(value, str):
        return _string(check.utf8(NAME, "a string", value))
    if isinstance(value, int):
        if -0x80 <= value < 0x80:
            return bytes((_INTEGER,)) + value.to_bytes(1, "big", signed=True)
        if -0x8000 <= value < 0x8000:
            return bytes((_LONG,)) + value.to_bytes(2, "big", signed=True)
        if -0x8000_0000 <= value < 0x8000_0000:
            return bytes((_DOUBLE_LONG,)) + value.to_bytes(4, "big", signed=True)
        if INT64_MIN <= value <= INT64_MAX:
            return bytes((_LONG64,)) + value.to_bytes(8, "big", signed=True)
        raise check.int_out_of_range(NAME, value)
    if isinstance(value, float):
        return b"\x18" + _FLOAT.pack(check.finite(NAME, value))
    if isinstance(value, bytes):
        return bytes((_OCTET_STRING,)) + _length(len(value)) + value
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise check.depth_exceeded(NAME)
        items = [_encode_value(item, depth + 1) for item in value]
        return bytes((_ARRAY,)) + _length(len(items)) + b"".join(items)
    if isinstance(value, Mapping):
        return _encode_map(value, depth)
    raise check.not_a_value(NAME, value)


def _encode_map(value: Mapping[str, object], depth: int) -> bytes:
    if depth >= MAX_DEPTH:
        raise check.depth_exceeded(NAME)
    parts = [bytes((_STRUCTURE,)), _length(len(value))]
    for key, item in value.items():
        if not isinstance(key, str):
            raise EncodeError(NAME, f"map keys must be str, not {type(key).__name__}")
        parts.append(b"\x02\x02")
        parts.append(_string(check.utf8(NAME, "a map key", key)))
        parts.append(_encode_value(item, depth + 1))
    return b"".join(parts)


# --- decoding ---


def _fail(reason: str) -> NoReturn:
    raise FrameError(NAME, reason)


def _read_length(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """An A-XDR length or count at ``pos``, and the position after it."""
    if pos >= end:
        _fail(f"truncated length at byte {pos}")
    first = buf[pos]
    if first < 0x80:
        return first, pos + 1
    size = first & 0x7F
    if not 1 <= size <= 4:
        _fail(f"bad length form 0x{first:02x} at byte {pos}")
    if end - pos - 1 < size:
        _fail(f"truncated length at byte {pos}")
    n = int.from_bytes(buf[pos + 1 : pos + 1 + size], "big")
    if n < 0x80 or buf[pos + 1] == 0:
        _fail(f"non-minimal length at byte {pos}")
    return n, pos + 1 + size


def _read_string(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    """A visible-string or utf8-string element at ``pos``."""
    raw, tag, pos = _read_raw_string(buf, pos, end)
    if tag == _VISIBLE_STRING:
        if not _PRINTABLE_ASCII.fullmatch(raw):
            _fail("visible-string with characters that are not printable ASCII")
        return raw.decode("ascii"), pos
    if _PRINTABLE_ASCII.fullmatch(raw):
        _fail("printable ASCII sent as utf8-string instead of visible-string")
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        _fail("invalid UTF-8 in a utf8-string")


def _read_raw_string(buf: bytes, pos: int, end: int) -> tuple[bytes, int, int]:
    if pos >= end:
        _fail(f"truncated: expected a string at byte {pos}")
    tag = buf[pos]
    if tag not in (_VISIBLE_STRING, _UTF8_STRING):
        _fail(f"expected a string at byte {pos}, got type 0x{tag:02x}")
    size, start = _read_length(buf, pos + 1, end)
    if size > end - start:
        _fail(f"string length {size} at byte {pos} exceeds the {end - start} bytes left")
    return buf[start : start + size], tag, start + size


def _decode_value(buf: bytes, pos: int, end: int, depth: int) -> tuple[Value, int]:
    """The data element at ``pos`` and the position after it."""
    if pos >= end:
        _fail(f"truncated: expected a value at byte {pos}")
    tag = buf[pos]
    if tag in (_VISIBLE_STRING, _UTF8_STRING):
        return _read_string(buf, pos, end)
    size = _INT_TYPES.get(tag)
    if size is not None:
        if end - pos - 1 < size:
            _fail(f"truncated integer at byte {pos}")
        number = int.from_bytes(buf[pos + 1 : pos + 1 + size], "big", signed=True)
        if size > 1 and -(1 << (4 * size - 1)) <= number < (1 << (4 * size - 1)):
            _fail(f"integer at byte {pos} fits a smaller type")
        return number, pos + 1 + size
    if tag == _FLOAT64:
        if end - pos - 1 < 8:
            _fail(f"truncated float64 at byte {pos}")
        (real,) = _FLOAT.unpack_from(buf, pos + 1)
        if not math.isfinite(real):
            _fail(f"non-finite float64 at byte {pos}")
        return real, pos + 9
    if tag == _OCTET_STRING:
        length, start = _read_length(buf, pos + 1, end)
        if length > end - start:
            _fail(f"octet-string length {length} at byte {pos} exceeds the bytes left")
        return buf[start : start + length], start + length
    if tag == _NULL:
        return None, pos + 1
    if tag == _BOOLEAN:
        if pos + 1 >= end or buf[pos + 1] > 1:
            _fail(f"bad boolean at byte {pos}")
        return buf[pos + 1] == 1, pos + 2
    if tag in (_ARRAY, _STRUCTURE):
        if depth >= MAX_DEPTH:
            _fail(f"values nest deeper than {MAX_DEPTH} levels at byte {pos}")
        count, pos = _read_length(buf, pos + 1, end)
        if count > end - pos:
            _fail(f"{count} elements announced at byte {pos}, fewer bytes left")
        if tag == _ARRAY:
            items: list[Value] = []
            for _ in range(count):
                item, pos = _decode_value(buf, pos, end, depth + 1)
                items.append(item)
            return items, pos
        return _decode_map(buf, pos, end, count, depth + 1)
    _fail(f"unexpected data type 0x{tag:02x} at byte {pos}")


def _decode_map(
    buf: bytes, pos: int, end: int, count: int, depth: int
) -> tuple[dict[str, Value], int]:
    entries: dict[str, Value] = {}
    for _ in range(count):
        if end - pos < 2 or buf[pos : pos + 2] != b"\x02\x02":
            _fail(f"map entry at byte {pos} is not a structure of two")
        key, pos = _read_string(buf, pos + 2, end)
        if key in entries:
            _fail(f"duplicate map key {key!r} at byte {pos}")
        entries[key], pos = _decode_value(buf, pos, end, depth)
    return entries, pos


class _Body:
    """Reads the body structure element by element, checking each one's type."""

    def __init__(self, buf: bytes, pos: int, end: int) -> None:
        self._buf = buf
        self._end = end
        self._pos = pos

    def structure(self, fields: int) -> None:
        if self._peek(2) != bytes((_STRUCTURE, fields)):
            _fail(f"the body is not a structure of {fields} elements")
        self._pos += 2

    def _peek(self, size: int) -> bytes:
        return self._buf[self._pos : min(self._pos + size, self._end)]

    def text(self) -> str:
        value, self._pos = _read_string(self._buf, self._pos, self._end)
        return value

    def value(self) -> Value:
        value, self._pos = _decode_value(self._buf, self._pos, self._end, 0)
        return value

    def mapping(self, what: str) -> dict[str, Value]:
        if self._peek(1) != bytes((_STRUCTURE,)):
            _fail(f"{what} is not a structure")
        value = self.value()
        assert isinstance(value, dict)  # the type was checked
        return value

    def descriptor(self, expected: CosemObject) -> None:
        wanted = _descriptor(expected)
        if self._peek(len(wanted)) != wanted:
            _fail("the object descriptor is not the service's COSEM object")
        self._pos += len(wanted)

    def status(self) -> CommandStatus:
        head = self._peek(2)
        if len(head) != 2 or head[0] != _ENUM:
            _fail("status is not an enum")
        status = _STATUS_BY_CODE.get(head[1])
        if status is None:
            _fail(f"unknown status {head[1]}")
        self._pos += 2
        return status

    def finish(self) -> None:
        if self._pos != self._end:
            _fail(f"{self._end - self._pos} unexpected bytes after the body")


class CosemHeadEnd:
    """The ``cosem`` head-end: DLMS/COSEM-style APDUs authenticated by a per-device HMAC.

    ``master_key`` derives each device's key (``derive_device_key``); it defaults to
    ``SIMULATOR_MASTER_KEY``, which is public and fit for the simulator only.
    """

    def __init__(self, master_key: bytes = SIMULATOR_MASTER_KEY) -> None:
        if not isinstance(master_key, bytes) or len(master_key) < MIN_MASTER_KEY_BYTES:
            raise ValueError(f"the master key must be at least {MIN_MASTER_KEY_BYTES} bytes")
        self._master_key = master_key
        self._keys: dict[bytes, bytes] = {}

    @property
    def name(self) -> str:
        """``cosem``."""
        return NAME

    def _key(self, device_id: bytes) -> bytes:
        key = self._keys.get(device_id)
        if key is None:
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys.clear()
            key = self._keys[device_id] = derive_device_key(self._master_key, device_id)
        return key

    def _seal(self, apdu_tag: int, invoke: int, device_id: bytes, body: bytes) -> bytes:
        head = bytes((apdu_tag, _NORMAL, invoke)) + _string(device_id) + body
        mac = hmac.new(self._key(device_id), head, hashlib.sha256).digest()[:MAC_BYTES]
        return check.sendable(NAME, head + mac)

    def _open(self, frame: object, apdu_tags: frozenset[int]) -> tuple[int, int, str, _Body]:
        """Verify a frame; its APDU tag, invoke byte, device id and a reader of its body."""
        buf = check.received(NAME, frame)
        if len(buf) < 3 + 2 + MAC_BYTES:
            _fail(f"truncated: {len(buf)} bytes")
        apdu_tag, normal, invoke = buf[0], buf[1], buf[2]
        if apdu_tag not in apdu_tags:
            _fail(f"unexpected APDU tag 0x{apdu_tag:02x}")
        if normal != _NORMAL:
            _fail(f"unsupported request type {normal}")
        end = len(buf) - MAC_BYTES
        raw_device_id, _, body_start = _read_raw_string(buf, 3, end)
        mac = hmac.new(self._key(raw_device_id), buf[:end], hashlib.sha256).digest()
        if not hmac.compare_digest(mac[:MAC_BYTES], buf[end:]):
            raise IntegrityError(NAME, "MAC mismatch")
        device_id, _ = _read_string(buf, 3, end)
        return apdu_tag, invoke, device_id, _Body(buf, body_start, end)

    def encode_command(self, cmd: DeviceCommand) -> bytes:
        """A command as a ``cosem`` request APDU; ``EncodeError`` if it cannot be expressed."""
        if not isinstance(cmd, DeviceCommand):
            raise EncodeError(NAME, f"not a DeviceCommand: {type(cmd).__name__}")
        command_id = check.utf8(NAME, "command_id", cmd.command_id)
        service = check.utf8(NAME, "service", cmd.service)
        target = service_object(cmd.service)
        execute_at = (
            b"\x00"
            if cmd.execute_at is None
            else b"\x18" + _FLOAT.pack(check.instant(NAME, "execute_at", cmd.execute_at))
        )
        signature = check.octets(NAME, "signature", cmd.signature)
        body = b"".join(
            (
                b"\x02\x06",
                _string(command_id),
                _string(service),
                _descriptor(target),
                execute_at,
                bytes((_OCTET_STRING,)) + _length(len(signature)) + signature,
                _encode_map(check.message_map(NAME, "params", cmd.params), 0),
            )
        )
        return self._seal(
            _REQUEST_TAGS[target.access],
            _invoke_id_and_priority(command_id, target),
            check.utf8(NAME, "device_id", cmd.device_id),
            body,
        )

    def decode_command(self, frame: bytes) -> DeviceCommand:
        """The command in a ``cosem`` request APDU; ``FrameError`` if it is malformed."""
        apdu_tag, invoke, device_id, body = self._open(frame, _REQUEST_TAG_SET)
        body.structure(6)
        command_id = body.text()
        service = body.text()
        target = service_object(service)
        body.descriptor(target)
        execute_at = body.value()
        if execute_at is not None and type(execute_at) is not float:
            _fail("execute_at is neither null-data nor float64")
        signature = body.value()
        if type(signature) is not bytes:
            _fail("signature is not an octet-string")
        params = body.mapping("params")
        body.finish()
        if apdu_tag != _REQUEST_TAGS[target.access]:
            _fail(f"APDU tag 0x{apdu_tag:02x} does not match {target.access.value} service")
        if invoke != _invoke_id_and_priority(command_id.encode("utf-8"), target):
            _fail("invoke-id-and-priority does not match the command")
        return DeviceCommand(
            command_id=command_id,
            service=service,
            device_id=device_id,
            params=params,
            execute_at=execute_at,
            signature=signature,
        )

    def encode_uplink(self, msg: Uplink) -> bytes:
        """A response or an alert as a ``cosem`` APDU; ``EncodeError`` if it cannot be."""
        if isinstance(msg, DeviceResponse):
            command_id = check.utf8(NAME, "command_id", msg.command_id)
            service = check.utf8(NAME, "service", msg.service)
            target = service_object(msg.service)
            status = _STATUS_CODES[check.status(NAME, msg.status)]
            body = b"".join(
                (
                    b"\x02\x06",
                    _string(command_id),
                    _string(service),
                    _descriptor(target),
                    bytes((_ENUM, status)),
                    _string(check.utf8(NAME, "reason", msg.reason)),
                    _encode_map(check.message_map(NAME, "body", msg.body), 0),
                )
            )
            return self._seal(
                _RESPONSE_TAGS[target.access],
                _invoke_id_and_priority(command_id, target),
                check.utf8(NAME, "device_id", msg.device_id),
                body,
            )
        if isinstance(msg, DeviceAlert):
            raised_at = check.instant(NAME, "raised_at", msg.raised_at)
            body = b"".join(
                (
                    b"\x02\x04",
                    _string(check.utf8(NAME, "alert_code", msg.alert_code)),
                    _descriptor(ALERT_OBJECT),
                    b"\x18" + _FLOAT.pack(raised_at),
                    _encode_map(check.message_map(NAME, "data", msg.data), 0),
                )
            )
            return self._seal(
                _EVENT_NOTIFICATION,
                _HIGH_PRIORITY,
                check.utf8(NAME, "device_id", msg.device_id),
                body,
            )
        raise EncodeError(NAME, f"not an uplink message: {type(msg).__name__}")

    def decode_uplink(self, frame: bytes) -> Uplink:
        """The response or alert in a ``cosem`` APDU; ``FrameError`` if it is malformed."""
        apdu_tag, invoke, device_id, body = self._open(frame, _UPLINK_TAG_SET)
        if apdu_tag == _EVENT_NOTIFICATION:
            if invoke != _HIGH_PRIORITY:
                _fail("an event notification must have invoke-id-and-priority 0x80")
            body.structure(4)
            alert_code = body.text()
            body.descriptor(ALERT_OBJECT)
            raised_at = body.value()
            if type(raised_at) is not float:
                _fail("raised_at is not a float64")
            data = body.mapping("data")
            body.finish()
            return DeviceAlert(
                device_id=device_id, alert_code=alert_code, raised_at=raised_at, data=data
            )
        body.structure(6)
        command_id = body.text()
        service = body.text()
        target = service_object(service)
        body.descriptor(target)
        status = body.status()
        reason = body.text()
        data = body.mapping("body")
        body.finish()
        if apdu_tag != _RESPONSE_TAGS[target.access]:
            _fail(f"APDU tag 0x{apdu_tag:02x} does not match {target.access.value} service")
        if invoke != _invoke_id_and_priority(command_id.encode("utf-8"), target):
            _fail("invoke-id-and-priority does not match the command")
        return DeviceResponse(
            command_id=command_id,
            device_id=device_id,
            service=service,
            status=status,
            body=data,
            reason=reason,
        )

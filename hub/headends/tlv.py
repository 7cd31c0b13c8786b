"""TLV head-end: a compact binary tag-length-value format with a CRC-16 trailer.

Decides: the byte layout of the ``tlv`` vendor's frames and the CRC-16/CCITT-FALSE that guards
them, and rejects any frame that does not follow the layout exactly.
Must never: accept a frame whose CRC, header or length disagree, read past a length, or raise
anything but ``FrameError`` on a received frame.

Frame (big-endian)::

    magic "DT" | version 1 (u8) | kind (u8) | body length (u32) | body | CRC-16 (u16)

``kind`` is 1 command, 2 response, 3 alert. The CRC covers every byte before it. The body is a
fixed sequence of elements, each ``tag (u8) | length (LEB128, at most 4 bytes, minimal) | value``:

==========  ====  =====================================================================
tag         byte  value
==========  ====  =====================================================================
nil         0x00  empty
bool        0x01  one byte, 0 or 1
int         0x02  1 to 8 bytes, two's complement, minimal length
float       0x03  8 bytes, IEEE 754 binary64, finite
str         0x04  UTF-8
bytes       0x05  raw bytes
list        0x06  the elements of the list, one after the other
map         0x07  key (a str element) then value, for each entry in order; keys unique
==========  ====  =====================================================================

Bodies: a command is ``str command_id, str service, str device_id, nil|float execute_at,
bytes signature, map params``; a response ``str command_id, str device_id, str service,
int status (0 success, 1 rejected, 2 scheduled), map body, str reason``; an alert
``str device_id, str alert_code, float raised_at, map data``.
"""

from __future__ import annotations

import binascii
import math
import struct
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
from hub.reference.standard import (
    CommandStatus,
    DeviceAlert,
    DeviceCommand,
    DeviceResponse,
    Uplink,
    Value,
)

NAME: Final = "tlv"
MAGIC: Final = b"DT"
VERSION: Final = 1

KIND_COMMAND: Final = 1
KIND_RESPONSE: Final = 2
KIND_ALERT: Final = 3

_NIL: Final = 0x00
_BOOL: Final = 0x01
_INT: Final = 0x02
_FLOAT: Final = 0x03
_STR: Final = 0x04
_BYTES: Final = 0x05
_LIST: Final = 0x06
_MAP: Final = 0x07

_HEADER: Final = struct.Struct(">2sBBI")
_DOUBLE: Final = struct.Struct(">d")
_CRC_BYTES: Final = 2
_OVERHEAD: Final = _HEADER.size + _CRC_BYTES
_MAX_LENGTH_BYTES: Final = 4

_STATUS_CODES: Final = {
    CommandStatus.SUCCESS: 0,
    CommandStatus.REJECTED: 1,
    CommandStatus.SCHEDULED: 2,
}
_STATUS_BY_CODE: Final = {code: status for status, code in _STATUS_CODES.items()}


# --- CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor ---


def crc16_ccitt_false(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (check value ``0x29B1`` for ``b"123456789"``).

    ``crc`` continues a computation over data that came before. The standard library's
    ``binascii.crc_hqx`` computes exactly this polynomial in C.
    """
    return binascii.crc_hqx(data, crc)


# --- encoding ---

_SHORT_LENGTHS: Final = tuple(bytes((n,)) for n in range(0x80))


def _length(n: int) -> bytes:
    if n < 0x80:
        return _SHORT_LENGTHS[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _int_size(value: int) -> int:
    return (value if value >= 0 else ~value).bit_length() // 8 + 1


def _encode_value(value: object, depth: int) -> bytes:
    """One element; ``depth`` counts the containers around it."""
    if value is None:
        return b"\x00\x00"
    if value is True:
        return b"\x01\x01\x01"
    if value is False:
        return b"\x01\x01\x00"
    if isinstance(value, str):
        data = check.utf8(NAME, "a string", value)
        return bytes((_STR,)) + _length(len(data)) + data
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise check.int_out_of_range(NAME, value)
        size = _int_size(value)
        return bytes((_INT, size)) + value.to_bytes(size, "big", signed=True)
    if isinstance(value, float):
        return b"\x03\x08" + _DOUBLE.pack(check.finite(NAME, value))
    if isinstance(value, bytes):
        return bytes((_BYTES,)) + _length(len(value)) + value
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise check.depth_exceeded(NAME)
        content = b"".join([_encode_value(item, depth + 1) for item in value])
        return bytes((_LIST,)) + _length(len(content)) + content
    if isinstance(value, Mapping):
        return _encode_map(value, depth)
    raise check.not_a_value(NAME, value)


def _encode_map(value: Mapping[str, object], depth: int) -> bytes:
    if depth >= MAX_DEPTH:
        raise check.depth_exceeded(NAME)
    parts = []
    for key, item in value.items():
        if not isinstance(key, str):
            raise EncodeError(NAME, f"map keys must be str, not {type(key).__name__}")
        parts.append(_encode_value(key, depth + 1))
        parts.append(_encode_value(item, depth + 1))
    content = b"".join(parts)
    return bytes((_MAP,)) + _length(len(content)) + content


def _frame(kind: int, elements: list[bytes]) -> bytes:
    body = b"".join(elements)
    head = _HEADER.pack(MAGIC, VERSION, kind, len(body)) + body
    return check.sendable(NAME, head + crc16_ccitt_false(head).to_bytes(2, "big"))


# --- decoding ---


def _fail(reason: str) -> NoReturn:
    raise FrameError(NAME, reason)


def _element(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """The tag at ``pos`` and where its value starts and stops, all within ``end``."""
    if end - pos < 2:
        _fail(f"truncated element at byte {pos}")
    tag = buf[pos]
    size = buf[pos + 1]
    pos += 2
    if size & 0x80:
        size &= 0x7F
        shift = 7
        while True:
            if shift >= 7 * _MAX_LENGTH_BYTES:
                _fail(f"length field longer than {_MAX_LENGTH_BYTES} bytes at byte {pos}")
            if pos >= end:
                _fail(f"truncated length at byte {pos}")
            byte = buf[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if byte == 0:
                    _fail(f"non-minimal length at byte {pos - 1}")
                break
            shift += 7
    if size > end - pos:
        _fail(f"length {size} at byte {pos} exceeds the {end - pos} bytes left")
    return tag, pos, pos + size


def _decode_value(buf: bytes, pos: int, end: int, depth: int) -> tuple[Value, int]:
    """The element at ``pos`` and the position after it; ``depth`` counts enclosing containers."""
    tag, start, stop = _element(buf, pos, end)
    size = stop - start
    if tag == _STR:
        return _utf8(buf, start, stop), stop
    if tag == _INT:
        if not 1 <= size <= 8:
            _fail(f"int of {size} bytes at byte {pos}")
        number = int.from_bytes(buf[start:stop], "big", signed=True)
        if _int_size(number) != size:
            _fail(f"non-minimal int at byte {pos}")
        return number, stop
    if tag == _FLOAT:
        if size != 8:
            _fail(f"float of {size} bytes at byte {pos}")
        (real,) = _DOUBLE.unpack_from(buf, start)
        if not math.isfinite(real):
            _fail(f"non-finite float at byte {pos}")
        return real, stop
    if tag == _BYTES:
        return buf[start:stop], stop
    if tag == _NIL:
        if size:
            _fail(f"nil with {size} bytes at byte {pos}")
        return None, stop
    if tag == _BOOL:
        if size != 1 or buf[start] > 1:
            _fail(f"bad bool at byte {pos}")
        return buf[start] == 1, stop
    if tag in (_LIST, _MAP):
        if depth >= MAX_DEPTH:
            _fail(f"values nest deeper than {MAX_DEPTH} levels at byte {pos}")
        if tag == _LIST:
            items: list[Value] = []
            while start < stop:
                item, start = _decode_value(buf, start, stop, depth + 1)
                items.append(item)
            return items, stop
        return _decode_map(buf, start, stop, depth + 1), stop
    _fail(f"unknown tag 0x{tag:02x} at byte {pos}")


def _decode_map(buf: bytes, pos: int, end: int, depth: int) -> dict[str, Value]:
    entries: dict[str, Value] = {}
    while pos < end:
        tag, start, stop = _element(buf, pos, end)
        if tag != _STR:
            _fail(f"map key at byte {pos} is not a str (tag 0x{tag:02x})")
        key = _utf8(buf, start, stop)
        if key in entries:
            _fail(f"duplicate map key {key!r} at byte {pos}")
        entries[key], pos = _decode_value(buf, stop, end, depth)
    return entries


def _utf8(buf: bytes, start: int, stop: int) -> str:
    try:
        return buf[start:stop].decode("utf-8")
    except UnicodeDecodeError:
        _fail(f"invalid UTF-8 in the str at byte {start}")


class _Body:
    """Reads a message body field by field, checking each field's type."""

    def __init__(self, buf: bytes, pos: int, end: int) -> None:
        self._buf = buf
        self._pos = pos
        self._end = end

    def _next(self, what: str) -> Value:
        start = self._pos
        if start >= self._end:
            _fail(f"body ends before {what}")
        value, self._pos = _decode_value(self._buf, start, self._end, 0)
        return value

    def text(self, what: str) -> str:
        value = self._next(what)
        if type(value) is not str:
            _fail(f"{what} is not a str")
        return value

    def real(self, what: str) -> float:
        value = self._next(what)
        if type(value) is not float:
            _fail(f"{what} is not a float")
        return value

    def optional_real(self, what: str) -> float | None:
        value = self._next(what)
        if value is not None and type(value) is not float:
            _fail(f"{what} is neither nil nor a float")
        return value

    def octets(self, what: str) -> bytes:
        value = self._next(what)
        if type(value) is not bytes:
            _fail(f"{what} is not bytes")
        return value

    def mapping(self, what: str) -> dict[str, Value]:
        if self._pos < self._end and self._buf[self._pos] != _MAP:
            _fail(f"{what} is not a map")
        value = self._next(what)
        assert isinstance(value, dict)  # the tag was checked
        return value

    def status(self) -> CommandStatus:
        value = self._next("status")
        if type(value) is not int or value not in _STATUS_BY_CODE:
            _fail(f"unknown status {value!r}")
        return _STATUS_BY_CODE[value]

    def finish(self) -> None:
        if self._pos != self._end:
            _fail(f"{self._end - self._pos} unexpected bytes after the last field")


def _open(frame: object, kinds: tuple[int, ...]) -> tuple[int, _Body]:
    buf = check.received(NAME, frame)
    if len(buf) < _OVERHEAD:
        _fail(f"truncated: {len(buf)} bytes is shorter than the {_OVERHEAD}-byte envelope")
    if crc16_ccitt_false(buf[:-_CRC_BYTES]) != int.from_bytes(buf[-_CRC_BYTES:], "big"):
        raise IntegrityError(NAME, "CRC-16 mismatch")
    magic, version, kind, length = _HEADER.unpack_from(buf)
    if magic != MAGIC:
        _fail(f"bad magic {magic!r}")
    if version != VERSION:
        _fail(f"unsupported version {version}")
    if kind not in kinds:
        _fail(f"unexpected message kind {kind}")
    if length != len(buf) - _OVERHEAD:
        _fail(f"body length {length} disagrees with the {len(buf) - _OVERHEAD} bytes present")
    return kind, _Body(buf, _HEADER.size, len(buf) - _CRC_BYTES)


class TlvHeadEnd:
    """The ``tlv`` head-end: compact binary TLV frames guarded by CRC-16/CCITT-FALSE.

    Stateless; construct with no arguments.
    """

    @property
    def name(self) -> str:
        """``tlv``."""
        return NAME

    def encode_command(self, cmd: DeviceCommand) -> bytes:
        """A command as a ``tlv`` frame; ``EncodeError`` if it cannot be expressed."""
        if not isinstance(cmd, DeviceCommand):
            raise EncodeError(NAME, f"not a DeviceCommand: {type(cmd).__name__}")
        execute_at = (
            None if cmd.execute_at is None else check.instant(NAME, "execute_at", cmd.execute_at)
        )
        return _frame(
            KIND_COMMAND,
            [
                _encode_value(check.text(NAME, "command_id", cmd.command_id), 0),
                _encode_value(check.text(NAME, "service", cmd.service), 0),
                _encode_value(check.text(NAME, "device_id", cmd.device_id), 0),
                _encode_value(execute_at, 0),
                _encode_value(check.octets(NAME, "signature", cmd.signature), 0),
                _encode_map(check.message_map(NAME, "params", cmd.params), 0),
            ],
        )

    def decode_command(self, frame: bytes) -> DeviceCommand:
        """The command in a ``tlv`` frame; ``FrameError`` if the frame is malformed."""
        _, body = _open(frame, (KIND_COMMAND,))
        command_id = body.text("command_id")
        service = body.text("service")
        device_id = body.text("device_id")
        execute_at = body.optional_real("execute_at")
        signature = body.octets("signature")
        params = body.mapping("params")
        body.finish()
        return DeviceCommand(
            command_id=command_id,
            service=service,
            device_id=device_id,
            params=params,
            execute_at=execute_at,
            signature=signature,
        )

    def encode_uplink(self, msg: Uplink) -> bytes:
        """A response or an alert as a ``tlv`` frame; ``EncodeError`` if it cannot be."""
        if isinstance(msg, DeviceResponse):
            return _frame(
                KIND_RESPONSE,
                [
                    _encode_value(check.text(NAME, "command_id", msg.command_id), 0),
                    _encode_value(check.text(NAME, "device_id", msg.device_id), 0),
                    _encode_value(check.text(NAME, "service", msg.service), 0),
                    _encode_value(_STATUS_CODES[check.status(NAME, msg.status)], 0),
                    _encode_map(check.message_map(NAME, "body", msg.body), 0),
                    _encode_value(check.text(NAME, "reason", msg.reason), 0),
                ],
            )
        if isinstance(msg, DeviceAlert):
            return _frame(
                KIND_ALERT,
                [
                    _encode_value(check.text(NAME, "device_id", msg.device_id), 0),
                    _encode_value(check.text(NAME, "alert_code", msg.alert_code), 0),
                    _encode_value(check.instant(NAME, "raised_at", msg.raised_at), 0),
                    _encode_map(check.message_map(NAME, "data", msg.data), 0),
                ],
            )
        raise EncodeError(NAME, f"not an uplink message: {type(msg).__name__}")

    def decode_uplink(self, frame: bytes) -> Uplink:
        """The response or alert in a ``tlv`` frame; ``FrameError`` if it is malformed."""
        kind, body = _open(frame, (KIND_RESPONSE, KIND_ALERT))
        if kind == KIND_RESPONSE:
            command_id = body.text("command_id")
            device_id = body.text("device_id")
            service = body.text("service")
            status = body.status()
            data = body.mapping("body")
            reason = body.text("reason")
            body.finish()
            return DeviceResponse(
                command_id=command_id,
                device_id=device_id,
                service=service,
                status=status,
                body=data,
                reason=reason,
            )
        device_id = body.text("device_id")
        alert_code = body.text("alert_code")
        raised_at = body.real("raised_at")
        data = body.mapping("data")
        body.finish()
        return DeviceAlert(
            device_id=device_id, alert_code=alert_code, raised_at=raised_at, data=data
        )

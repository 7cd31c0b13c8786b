"""The msgpack codec: each message as one frame, and any received bytes back to a message.

Decides: how a message is packed into one frame, which code a bad frame is refused with (H1
malformed, H2 unsupported version, H3 oversized) and why, in msgpack's terms (a message of
several ZeroMQ frames, which a driver passes as ``SEVERAL_FRAMES``, included), and which kinds
each side may receive.
Must never: open a socket or read a clock; never raise anything but ``WireError`` while decoding
received bytes, whatever they are; never pass the msgpack library's own error text on to the
sender.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, TypeAlias, TypeVar, cast

import msgpack

from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.text import bounded, show
from hub.wire.checks import REQUEST_ID_PATTERN, InvalidMessageError
from hub.wire.limits import (
    MAX_ARRAY_ITEMS,
    MAX_CONTAINERS,
    MAX_FRAME_BYTES,
    MAX_MAP_ITEMS,
    MAX_VALUE_DEPTH,
    PROTOCOL_VERSION,
)
from hub.wire.messages import (
    Acknowledgement,
    DeliveryAck,
    DeviceAlertNotice,
    Hello,
    HubAlert,
    HubMessage,
    Message,
    QuarantineAction,
    QuarantineDecision,
    Refusal,
    ServiceRequest,
    ServiceResponse,
    SetThresholds,
    UserMessage,
    Welcome,
)


class WireError(Exception):
    """Received bytes are not an acceptable message: the fault of the sender.

    ``decode`` raises only this, whatever the bytes. The receiver answers with a Refusal
    carrying the same code, reason and request id (``to_refusal``).
    """

    code: ResponseCode
    """H1 malformed, H2 unsupported version, H3 larger than ``MAX_FRAME_BYTES``."""
    reason: str
    """What is wrong, in words the sender's developer can act on."""
    request_id: str | None
    """The request id, when the frame was a map holding a well-formed one; else None."""

    def __init__(self, code: ResponseCode, reason: str, request_id: str | None = None) -> None:
        reason = bounded(reason) if reason else code.meaning
        super().__init__(f"{code.value}: {reason}")
        self.code = code
        self.reason = reason
        self.request_id = request_id

    def to_refusal(self) -> Refusal:
        """The Refusal that answers the frame."""
        return Refusal(request_id=self.request_id, code=self.code, reason=self.reason)


# ---------------------------------------------------------------------------------------------
# Encoding.


def encode(msg: Message) -> bytes:
    """One frame: the message as a msgpack map. Raises InvalidMessageError above MAX_FRAME_BYTES."""
    frame: bytes = msgpack.packb(msg._wire(), use_bin_type=True)
    if len(frame) > MAX_FRAME_BYTES:
        raise InvalidMessageError(
            f"a {msg.KIND} of {len(frame)} bytes is larger than the {MAX_FRAME_BYTES}-byte frame"
        )
    return frame


# ---------------------------------------------------------------------------------------------
# Decoding. Received values are turned into Python types (roles, codes, floats) and handed to
# the same validation the constructors run; its InvalidMessageError becomes WireError H1.

_Body: TypeAlias = dict[Any, Any]
_Decoder: TypeAlias = Callable[[_Body], Message]
_M = TypeVar("_M", bound=Message)
_ROLES = {role.value: role for role in Role}
_CODES = {code.value: code for code in ResponseCode}
_new = object.__new__
_SETTERS: dict[type, tuple[Callable[[object, object], None], ...]] = {
    cls: tuple(cls.__dict__[f.name].__set__ for f in fields(cls))
    for cls in (
        ServiceRequest,
        DeliveryAck,
        Hello,
        QuarantineDecision,
        SetThresholds,
        Acknowledgement,
        Refusal,
        ServiceResponse,
        DeviceAlertNotice,
        HubAlert,
        Welcome,
    )
}


def _build(cls: type[_M], *values: Any) -> _M:
    """A message from values in field order, validated by its ``__post_init__``.

    The dataclass ``__init__`` of a frozen, slotted class costs about three times as much as
    setting the slots directly; decoding is on the hub's hot path, so it sets them directly.
    """
    msg = _new(cls)
    for setter, value in zip(_SETTERS[cls], values, strict=True):
        setter(msg, value)
    msg.__post_init__()
    return msg


def _role(value: object) -> Role:
    role = _ROLES.get(value) if type(value) is str else None
    if role is None:
        raise InvalidMessageError(f"role must be one of {', '.join(Role)}, not {show(value)}")
    return role


def _code(value: object) -> ResponseCode:
    code = _CODES.get(value) if type(value) is str else None
    if code is None:
        raise InvalidMessageError(f"code must be a response code such as 'I0', not {show(value)}")
    return code


def _number(value: Any) -> Any:
    """Integers stand for floats on the wire (some msgpack libraries pack 5.0 as 5)."""
    return float(value) if type(value) is int else value


def _ids(value: Any) -> Any:
    return tuple(value) if type(value) is list else value


# Each decoder reads required fields with b[...] (a KeyError is reported as a missing field) and
# optional ones with b.get(..., default); values are passed in the dataclass's field order.


def _service_request(b: _Body) -> ServiceRequest:
    return _build(
        ServiceRequest,
        b["request_id"],
        _role(b["role"]),
        b["service"],
        b.get("device_id"),
        b.get("params", {}),
        _number(b.get("execute_at")),
        b.get("signature", b""),
    )


def _delivery_ack(b: _Body) -> DeliveryAck:
    return _build(DeliveryAck, _ids(b["delivery_ids"]))


def _hello(b: _Body) -> Hello:
    return _build(Hello, b.get("max_in_flight"))


def _quarantine(b: _Body) -> QuarantineDecision:
    action = b["action"]
    if type(action) is not str or action not in ("release", "delete"):
        raise InvalidMessageError(f"action must be release or delete, not {show(action)}")
    return _build(QuarantineDecision, QuarantineAction(action), _ids(b["request_ids"]))


def _thresholds(b: _Body) -> SetThresholds:
    return _build(
        SetThresholds, b["service"], b["warning"], b["quarantine"], _number(b["period_s"])
    )


def _acknowledgement(b: _Body) -> Acknowledgement:
    return _build(Acknowledgement, b["request_id"], _code(b["code"]), b["reason"])


def _refusal(b: _Body) -> Refusal:
    return _build(
        Refusal, b.get("request_id"), _code(b["code"]), b["reason"], _number(b.get("retry_after_s"))
    )


def _service_response(b: _Body) -> ServiceResponse:
    return _build(
        ServiceResponse,
        b["delivery_id"],
        b["request_id"],
        b["service"],
        b.get("device_id"),
        _code(b["code"]),
        b.get("body", {}),
        _number(b["responded_at"]),
    )


def _device_alert(b: _Body) -> DeviceAlertNotice:
    return _build(
        DeviceAlertNotice,
        b["delivery_id"],
        b["device_id"],
        b["alert_code"],
        _number(b["raised_at"]),
        b.get("data", {}),
        b.get("mpxn"),
    )


def _hub_alert(b: _Body) -> HubAlert:
    return _build(
        HubAlert, b["delivery_id"], b["alert_code"], _number(b["raised_at"]), b.get("data", {})
    )


def _welcome(b: _Body) -> Welcome:
    return _build(
        Welcome, b["protocol_version"], _number(b["server_time"]), b["user_id"], b["pending"]
    )


@dataclass(frozen=True, slots=True)
class _Schema:
    """How one kind is read: the fields it may hold, and its decoder."""

    fields: frozenset[str]
    decoder: _Decoder


def _schema(decoder: _Decoder, names: str) -> _Schema:
    return _Schema(frozenset({"v", "kind", *names.split()}), decoder)


_FROM_USER: dict[str, _Schema] = {
    ServiceRequest.KIND: _schema(
        _service_request, "request_id role service device_id params execute_at signature"
    ),
    DeliveryAck.KIND: _schema(_delivery_ack, "delivery_ids"),
    Hello.KIND: _schema(_hello, "max_in_flight"),
    QuarantineDecision.KIND: _schema(_quarantine, "action request_ids"),
    SetThresholds.KIND: _schema(_thresholds, "service warning quarantine period_s"),
}
_FROM_HUB: dict[str, _Schema] = {
    Acknowledgement.KIND: _schema(_acknowledgement, "request_id code reason"),
    Refusal.KIND: _schema(_refusal, "request_id code reason retry_after_s"),
    ServiceResponse.KIND: _schema(
        _service_response, "delivery_id request_id service device_id code body responded_at"
    ),
    DeviceAlertNotice.KIND: _schema(
        _device_alert, "delivery_id device_id alert_code raised_at data mpxn"
    ),
    HubAlert.KIND: _schema(_hub_alert, "delivery_id alert_code raised_at data"),
    Welcome.KIND: _schema(_welcome, "protocol_version server_time user_id pending"),
}
_ANY_KIND = {**_FROM_USER, **_FROM_HUB}


class _RefusedValueError(ValueError):
    """Raised by the unpacker's hooks: the frame is refused, for the reason given in words."""


def _no_extension(code: int, data: bytes) -> object:
    raise _RefusedValueError("extension types (msgpack ext, timestamps included) are not allowed")


_UNPACK_LIMITS: dict[str, Any] = {
    "raw": False,  # strings are UTF-8 text; invalid UTF-8 is refused
    "strict_map_key": True,  # map keys are strings (or bytes, refused later)
    "use_list": True,
    "max_str_len": MAX_FRAME_BYTES,
    "max_bin_len": MAX_FRAME_BYTES,
    "max_array_len": MAX_ARRAY_ITEMS,
    "max_map_len": MAX_MAP_ITEMS,
    "max_ext_len": 0,  # no extension types (timestamps included): refused unread
    "ext_hook": _no_extension,  # an empty extension type passes max_ext_len: refused here
}


SEVERAL_FRAMES = b"\xc1"
"""What a driver decodes in place of a ZeroMQ message of more than one frame (0xc1 is the one
byte msgpack never uses, so no valid frame is this): it is refused with a reason saying to
send one frame. A sender of the lone byte 0xc1 as one frame is told the same, which is the one
case where that reason is not the cause."""

_TOO_MANY_FRAMES = (
    "the message has more than one ZeroMQ frame: send the message as one frame holding one "
    "msgpack map (a DEALER sends [body], with no empty delimiter frame)"
)


_MSGPACK_TYPES = {
    "int": "an integer",
    "float": "a float",
    "bool": "a boolean",
    "NoneType": "nil",
    "list": "an array",
    "tuple": "an array",
    "dict": "a map",
}
_ANNOUNCED = re.compile(r"(\d+) exceeds max_(str|bin|array|map|ext)_len\((\d+)\)")
_ANNOUNCED_WORDS = {
    "str": "a string announces {n:,} bytes, more than the {limit:,} allowed",
    "bin": "a bin announces {n:,} bytes, more than the {limit:,} allowed",
    "array": "an array announces {n:,} items, more than the {limit:,} allowed",
    "map": "a map announces {n:,} entries, more than the {limit:,} allowed",
}


def _unpack_problem(exc: Exception) -> str:
    """Why the unpacker stopped, in words the sender's developer can act on (never the
    library's own text, which names its internals)."""
    if isinstance(exc, _RefusedValueError):
        return str(exc)
    if isinstance(exc, msgpack.ExtraData):
        return "the frame holds bytes after its msgpack map: send exactly one map per frame"
    if isinstance(exc, UnicodeDecodeError):
        return "a string is not valid UTF-8 (send binary data as msgpack bin, text as UTF-8)"
    if isinstance(exc, msgpack.StackError):
        return f"maps and arrays are nested far deeper than the {MAX_VALUE_DEPTH} levels allowed"
    if isinstance(exc, msgpack.FormatError):
        return "the frame holds the byte 0xc1, which msgpack never uses"
    text = str(exc)
    if "incomplete input" in text:
        return (
            "the frame ends inside a msgpack value: it is cut short, or a length it announces "
            "is longer than what follows"
        )
    if " is not allowed for map key" in text:
        name = text.split(" ", 1)[0]
        return f"a map key is {_MSGPACK_TYPES.get(name, 'not a string')}: map keys are strings"
    announced = _ANNOUNCED.fullmatch(text)
    if announced is not None:
        n, what, limit = int(announced[1]), announced[2], int(announced[3])
        if what == "ext":
            return "extension types (msgpack ext, timestamps included) are not allowed"
        return _ANNOUNCED_WORDS[what].format(n=n, limit=limit)
    if "timestamp" in text or "code must be" in text:
        return "extension types (msgpack ext, timestamps included) are not allowed"
    return "the frame is not one well-formed msgpack value"


def _unpack(frame: bytes) -> object:
    """The one msgpack value in a frame, with at most MAX_CONTAINERS maps and arrays.

    Every container costs at least one byte on the wire and about sixty in memory, so a frame
    no longer than MAX_CONTAINERS bytes cannot exceed the limit and is unpacked directly; a
    longer one is unpacked with hooks that count containers as they are completed and stop at
    the limit, so a hostile frame cannot make the decoder build a million of them.
    """
    if len(frame) <= MAX_CONTAINERS:
        return msgpack.unpackb(frame, **_UNPACK_LIMITS)
    completed = itertools.count(1)

    def on_array(items: list[Any]) -> list[Any]:
        if next(completed) > MAX_CONTAINERS:
            raise _RefusedValueError(
                f"the frame holds more than {MAX_CONTAINERS:,} maps and arrays"
            )
        return items

    def on_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        if next(completed) > MAX_CONTAINERS:
            raise _RefusedValueError(
                f"the frame holds more than {MAX_CONTAINERS:,} maps and arrays"
            )
        return dict(pairs)

    return msgpack.unpackb(frame, list_hook=on_array, object_pairs_hook=on_map, **_UNPACK_LIMITS)


def _entries_announced(frame: bytes) -> int:
    """How many entries the frame's top-level map header announces (msgpack fixmap, map 16 or
    map 32). A decoded map with fewer entries repeated a key, which msgpack resolves silently
    by keeping the last; the header is read instead of hooking every map, which would cost
    about a third of the decoding time."""
    first = frame[0]
    if first <= 0x8F:
        return first - 0x80
    return int.from_bytes(frame[1:3] if first == 0xDE else frame[1:5], "big")


def _readable_request_id(body: _Body) -> str | None:
    request_id = body.get("request_id")
    if type(request_id) is str and REQUEST_ID_PATTERN.fullmatch(request_id) is not None:
        return request_id
    return None


def _request_id_ahead(frame: bytes) -> str | None:
    """The well-formed request id of a map frame that cannot be unpacked whole: the top-level
    map is read key by key, each other value skipped unbuilt (so a value the limits refuse
    does not stop the search); None when the frame fails before the id; never raises."""
    unpacker = msgpack.Unpacker(max_buffer_size=MAX_FRAME_BYTES, **_UNPACK_LIMITS)
    unpacker.feed(frame)
    try:
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key == "request_id":
                request_id = unpacker.unpack()
                ok = type(request_id) is str and REQUEST_ID_PATTERN.fullmatch(request_id)
                return request_id if ok else None
            unpacker.skip()
    except Exception:  # a structural fault, reached before any request id
        return None
    return None


def request_id_of(frame: bytes) -> str | None:
    """The well-formed request id a frame holds, if it can be read that far; never raises
    (used to answer a frame whose handling failed after it was decoded)."""
    if len(frame) > MAX_FRAME_BYTES or not frame:
        return None
    if not (0x80 <= frame[0] <= 0x8F or frame[0] in (0xDE, 0xDF)):
        return None
    try:
        body = _unpack(frame)
    except Exception:
        return _request_id_ahead(frame)
    return _readable_request_id(body) if type(body) is dict else None


def _refuse(code: ResponseCode, reason: str, body: _Body) -> WireError:
    return WireError(code, reason, _readable_request_id(body))


def _decode(frame: bytes, accepted: dict[str, _Schema], sender: str) -> Message:
    if len(frame) > MAX_FRAME_BYTES:
        raise WireError(
            ResponseCode.H3, f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES} bytes"
        )
    if frame == SEVERAL_FRAMES:
        raise WireError(ResponseCode.H1, _TOO_MANY_FRAMES)
    if not frame:
        raise WireError(ResponseCode.H1, "the frame is empty: the body must be a msgpack map")
    if not (0x80 <= frame[0] <= 0x8F or frame[0] in (0xDE, 0xDF)):
        # fixmap, map 16, map 32: anything else is not a map, so it is refused unread
        raise WireError(
            ResponseCode.H1, f"the body must be a msgpack map; it starts with 0x{frame[0]:02x}"
        )
    try:
        body = _unpack(frame)
    except Exception as exc:  # any failure of the unpacker is the sender's malformed frame
        reason = f"malformed msgpack: {_unpack_problem(exc)}"
        raise WireError(ResponseCode.H1, reason, _request_id_ahead(frame)) from None
    if type(body) is not dict:
        raise WireError(ResponseCode.H1, f"the body must be a msgpack map, not {show(body)}")
    if len(body) != _entries_announced(frame):
        raise _refuse(ResponseCode.H1, "the body repeats a field", body)
    if "v" not in body:
        raise _refuse(ResponseCode.H1, "missing field 'v' (the protocol version)", body)
    version = body["v"]
    if version != PROTOCOL_VERSION or type(version) is not int:
        if type(version) is not int:
            raise _refuse(ResponseCode.H1, f"v must be an integer, not {show(version)}", body)
        reason = f"protocol version {version} is not supported; this side speaks {PROTOCOL_VERSION}"
        raise _refuse(ResponseCode.H2, reason, body)
    kind = body.get("kind")
    schema = accepted.get(kind) if type(kind) is str else None
    if schema is None:
        if "kind" not in body:
            reason = "missing field 'kind'"
        elif type(kind) is str and kind in _ANY_KIND:
            reason = f"kind {kind!r} is not sent by {sender}"
        else:
            reason = f"unknown kind {show(kind)}"
        raise _refuse(ResponseCode.H1, reason, body)
    if not schema.fields.issuperset(body):
        unknown = sorted(show(name) for name in body.keys() - schema.fields)
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise _refuse(ResponseCode.H1, f"unknown field(s) in {kind}: {shown}", body)
    try:
        return schema.decoder(body)
    except KeyError as exc:
        raise _refuse(ResponseCode.H1, f"missing field {exc.args[0]!r} in {kind}", body) from None
    except InvalidMessageError as exc:
        raise _refuse(ResponseCode.H1, bounded(str(exc)), body) from None


def decode(frame: bytes) -> Message:
    """The message in one frame, of any kind.

    Raises WireError, and nothing else, for any bytes that are not a valid message: H3 for a
    frame over MAX_FRAME_BYTES (checked before unpacking), H2 for a readable ``v`` other than
    PROTOCOL_VERSION, H1 for anything else wrong.
    """
    return _decode(frame, _ANY_KIND, "anyone")


def decode_from_user(frame: bytes) -> UserMessage:
    """As ``decode``, for the hub: also refuses (H1) kinds that only the hub sends."""
    return cast("UserMessage", _decode(frame, _FROM_USER, "a service user"))


def decode_from_hub(frame: bytes) -> HubMessage:
    """As ``decode``, for a client: also refuses (H1) kinds that only users send."""
    return cast("HubMessage", _decode(frame, _FROM_HUB, "the hub"))

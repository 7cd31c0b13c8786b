"""The wire protocol between service users and the hub: typed messages and their msgpack codec.

Decides: what a well-formed message is (every field's type and limits), how each message kind
travels as one msgpack map, which code a bad frame is refused with (H1 malformed, H2 unsupported
version, H3 oversized), and the fingerprint that tells a resubmission from a reused request id.
Must never: open a socket, read a clock, or judge whether a request is allowed (access control,
the catalogue and the service parameter rules do that); never raise anything but ``WireError``
while decoding received bytes, whatever they are.

``docs/protocol.md`` is the specification; this module and that file change together.

Messages are frozen dataclasses validated on construction, so a malformed one cannot exist:
building one with a bad field raises ``InvalidMessageError`` (the local program's fault), while
``decode`` turns anything wrong in received bytes into ``WireError`` (the sender's fault).
Their map fields (``params``, ``body``, ``data``) are plain dicts for speed: treat them as
read-only once the message is built.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias, TypeVar, cast

import msgpack

from hub.reference.codes import MEANINGS, ResponseCode
from hub.reference.roles import Role
from hub.reference.standard import Instant, Value

PROTOCOL_VERSION = 1
"""The protocol version this module speaks; every body carries it as ``v``."""
MAX_FRAME_BYTES = 1 << 20
"""Largest frame (one msgpack body) accepted or produced: 1 MiB. Larger ones are refused with H3."""
MAX_REQUEST_ID_CHARS = 64
"""Longest request id."""
MAX_SIGNATURE_BYTES = 512
"""Longest signature over a critical command."""
MAX_VALUE_DEPTH = 16
"""Deepest nesting of maps and lists in params, body and data; the map itself is level 1."""
MAX_ACK_IDS = 1000
"""Most delivery ids one DeliveryAck may carry."""
MAX_IN_FLIGHT = 10_000
"""Largest ``max_in_flight`` a Hello may ask for."""
MAX_REASON_CHARS = 1024
"""Longest reason text."""
MAX_DELIVERY_ID = 2**63 - 1
"""Largest delivery id (and pending count): a signed 64-bit integer."""
MAX_INSTANT = 253_402_300_799.0
"""Latest time a message may carry: 9999-12-31T23:59:59Z, in seconds since the Unix epoch."""
MAX_RETRY_AFTER_S = 86_400.0
"""Longest 'retry after' an H8 busy refusal may ask for: one day."""
MAX_ARRAY_ITEMS = 131_072
"""Most items in any one msgpack array of a received frame."""
MAX_MAP_ITEMS = 32_768
"""Most entries in any one msgpack map of a received frame."""
MAX_CONTAINERS = 65_536
"""Most maps and arrays, all levels together, in one received frame."""
FINGERPRINT_BYTES = 32
"""Length of a request fingerprint."""

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_DEVICE_ID = re.compile(r"[0-9A-F]{16}")
_SERVICE = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,4}){0,7}")
_ALERT_CODE = re.compile(r"[0-9A-Z_]{1,16}")
_MPXN = re.compile(r"[0-9]{6,13}")
_MAX_USER_ID_CHARS = 128
_RESPONSE_CODES = frozenset(
    code
    for code in ResponseCode
    if code in (ResponseCode.I0, ResponseCode.H11) or code.value.startswith("E")
)
_FINGERPRINT_PERSON = b"dcc-hub-req-v1"


class InvalidMessageError(ValueError):
    """A message was built with a bad field: the fault of the program that built it."""


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
        reason = reason[:MAX_REASON_CHARS] or code.meaning
        super().__init__(f"{code.value}: {reason}")
        self.code = code
        self.reason = reason
        self.request_id = request_id

    def to_refusal(self) -> Refusal:
        """The Refusal that answers the frame."""
        return Refusal(request_id=self.request_id, code=self.code, reason=self.reason)


# ---------------------------------------------------------------------------------------------
# Field checks. Each raises InvalidMessageError naming the field; received values reach them too.


def _show(value: object) -> str:
    """A short, ASCII-only picture of an offending value for a reason text. Never walks a
    container or prints a huge number: a hostile value must not make the reason expensive."""
    if isinstance(value, str | bytes):
        text = ascii(value[:40])
        return text + "..." if len(value) > 40 else text
    if isinstance(value, list | dict | tuple):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if value is None or isinstance(value, int | float):
        return ascii(value)
    return f"a {type(value).__name__}"


def _check_text(value: object, name: str, max_chars: int) -> None:
    if type(value) is not str:
        raise InvalidMessageError(f"{name} must be a string, not {_show(value)}")
    if not value:
        raise InvalidMessageError(f"{name} must not be empty")
    if len(value) > max_chars:
        raise InvalidMessageError(f"{name} is longer than {max_chars} characters")
    if not value.isascii():
        _check_unicode(value, name)


def _check_unicode(text: str, name: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessageError(
            f"{name} holds a lone surrogate, which is not Unicode text"
        ) from None


def _check_pattern(value: object, name: str, pattern: re.Pattern[str], form: str) -> None:
    if type(value) is not str or pattern.fullmatch(value) is None:
        raise InvalidMessageError(f"{name} must be {form}, not {_show(value)}")


def _check_request_id(value: object) -> None:
    _check_pattern(value, "request_id", _REQUEST_ID, "1-64 characters of A-Z a-z 0-9 . _ : -")


def _check_service(value: object) -> None:
    _check_pattern(value, "service", _SERVICE, "a service reference such as '4.1.1'")


def _check_device_id(value: object, *, nullable: bool) -> None:
    if value is None and nullable:
        return
    _check_pattern(value, "device_id", _DEVICE_ID, "16 upper-case hexadecimal digits")


def _check_alert_code(value: object) -> None:
    _check_pattern(value, "alert_code", _ALERT_CODE, "1-16 characters of 0-9 A-Z _")


def _check_count(value: object, name: str, low: int, high: int) -> None:
    if type(value) is not int:  # bool is a subclass of int, and is refused here
        raise InvalidMessageError(f"{name} must be an integer, not {_show(value)}")
    if not low <= value <= high:
        raise InvalidMessageError(f"{name} must be from {low} to {high}, not {_show(value)}")


def _check_instant(value: object, name: str, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    if type(value) is not float and type(value) is not int:
        raise InvalidMessageError(f"{name} must be a number of seconds, not {_show(value)}")
    if not 0.0 <= value <= MAX_INSTANT:  # NaN fails this too
        raise InvalidMessageError(
            f"{name} must be seconds since 1970 up to year 9999, not {_show(value)}"
        )


def _check_map(value: object, name: str, depth: int = 1) -> None:
    """A msgpack map with string keys holding wire values, at most MAX_VALUE_DEPTH deep."""
    if type(value) is not dict:
        raise InvalidMessageError(f"{name} must be a map, not {_show(value)}")
    if depth > MAX_VALUE_DEPTH:
        raise InvalidMessageError(f"{name} is nested deeper than {MAX_VALUE_DEPTH} levels")
    for key, item in value.items():
        if type(key) is not str:
            raise InvalidMessageError(f"{name} has a key that is not a string: {_show(key)}")
        if not key.isascii():
            _check_unicode(key, name)
        _check_item(item, name, depth)


def _check_item(value: Any, name: str, depth: int) -> None:
    """One value inside a container at level ``depth``; exact types only (no bool for int)."""
    kind = type(value)
    if kind is str:
        if not value.isascii():
            _check_unicode(value, name)
    elif kind is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise InvalidMessageError(f"{name} holds an integer outside 64 bits: {_show(value)}")
    elif kind is float:
        if not math.isfinite(value):
            raise InvalidMessageError(f"{name} holds a number that is not finite: {value}")
    elif kind is dict:
        _check_map(value, name, depth + 1)
    elif kind is list:
        if depth + 1 > MAX_VALUE_DEPTH:
            raise InvalidMessageError(f"{name} is nested deeper than {MAX_VALUE_DEPTH} levels")
        for item in value:
            _check_item(item, name, depth + 1)
    elif value is not None and kind is not bool and kind is not bytes:
        raise InvalidMessageError(f"{name} holds a {kind.__name__}, which is not a wire value")


# ---------------------------------------------------------------------------------------------
# Messages from a service user to the hub.


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRequest:
    """A service request: run a DUIS service, now or at a future time."""

    KIND: ClassVar[str] = "service_request"

    request_id: str
    """The user's id for the request: 1-64 characters of ``A-Z a-z 0-9 . _ : -``, unique per
    user. Resubmitting the same id with the same content is safe (executed once)."""
    role: Role
    """The role the user acts in."""
    service: str
    """DUIS service reference variant, e.g. ``4.1.1`` (digit groups separated by dots)."""
    device_id: str | None = None
    """Target device EUI-64 as 16 upper-case hex digits; None for non-device services."""
    params: dict[str, Value] = field(default_factory=dict)
    """Service parameters: a map of wire values, at most ``MAX_VALUE_DEPTH`` levels deep."""
    execute_at: Instant | None = None
    """For a future-dated request, when to execute (seconds since the epoch, UTC); None: now."""
    signature: bytes = b""
    """The user's signature over a critical command (at most 512 bytes); empty otherwise."""

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        if type(self.role) is not Role:
            raise InvalidMessageError(
                f"role must be one of {', '.join(Role)}, not {_show(self.role)}"
            )
        _check_service(self.service)
        _check_device_id(self.device_id, nullable=True)
        _check_map(self.params, "params")
        _check_instant(self.execute_at, "execute_at", nullable=True)
        if type(self.signature) is not bytes:
            raise InvalidMessageError(f"signature must be bytes, not {_show(self.signature)}")
        if len(self.signature) > MAX_SIGNATURE_BYTES:
            raise InvalidMessageError(f"signature is longer than {MAX_SIGNATURE_BYTES} bytes")

    def _wire(self) -> dict[str, object]:
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.KIND,
            "request_id": self.request_id,
            "role": self.role.value,
            "service": self.service,
            "device_id": self.device_id,
            "params": self.params,
            "execute_at": None if self.execute_at is None else float(self.execute_at),
            "signature": self.signature,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryAck:
    """The user has received these responses and alerts; the hub may forget them."""

    KIND: ClassVar[str] = "delivery_ack"

    delivery_ids: tuple[int, ...]
    """The delivery ids received: 1 to 1000 of them. Acking an unknown or already acked id is
    harmless."""

    def __post_init__(self) -> None:
        ids = self.delivery_ids
        if type(ids) is not tuple:
            raise InvalidMessageError(f"delivery_ids must be a list, not {_show(ids)}")
        if not 1 <= len(ids) <= MAX_ACK_IDS:
            raise InvalidMessageError(
                f"delivery_ids must hold 1 to {MAX_ACK_IDS} ids, not {len(ids)}"
            )
        for delivery_id in ids:
            _check_count(delivery_id, "each delivery id", 0, MAX_DELIVERY_ID)

    def _wire(self) -> dict[str, object]:
        return {"v": PROTOCOL_VERSION, "kind": self.KIND, "delivery_ids": list(self.delivery_ids)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello:
    """The user is online and ready for pushed responses and alerts."""

    KIND: ClassVar[str] = "hello"

    max_in_flight: int | None = None
    """Most unacknowledged deliveries the hub may push at once (1 to 10,000); None: the hub's
    default."""

    def __post_init__(self) -> None:
        if self.max_in_flight is not None:
            _check_count(self.max_in_flight, "max_in_flight", 1, MAX_IN_FLIGHT)

    def _wire(self) -> dict[str, object]:
        return {"v": PROTOCOL_VERSION, "kind": self.KIND, "max_in_flight": self.max_in_flight}


class QuarantineAction(StrEnum):
    """What a user does with requests that anomaly detection quarantined."""

    RELEASE = "release"
    DELETE = "delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class QuarantineDecision:
    """The user releases (they are then executed) or deletes quarantined requests."""

    KIND: ClassVar[str] = "quarantine"

    action: QuarantineAction
    """``release`` or ``delete``."""
    request_ids: tuple[str, ...]
    """The quarantined requests' ids: 1 to 1000 of them; ids not held for the user are
    reported back and change nothing."""

    def __post_init__(self) -> None:
        if type(self.action) is not QuarantineAction:
            raise InvalidMessageError(f"action must be release or delete, not {_show(self.action)}")
        ids = self.request_ids
        if type(ids) is not tuple or not 1 <= len(ids) <= MAX_ACK_IDS:
            raise InvalidMessageError(f"request_ids must be a list of 1 to {MAX_ACK_IDS} ids")
        for rid in ids:
            _check_request_id(rid)

    def _wire(self) -> dict[str, object]:
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.KIND,
            "action": self.action.value,
            "request_ids": list(self.request_ids),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SetThresholds:
    """The user's own anomaly thresholds for one service: over ``warning`` requests in
    ``period_s`` the user is warned; over ``quarantine`` further requests are held."""

    KIND: ClassVar[str] = "thresholds"

    service: str
    """Service reference variant the thresholds apply to."""
    warning: int
    """Requests per period that raise a warning (1 to 100,000,000)."""
    quarantine: int
    """Requests per period beyond which requests are quarantined (at least ``warning``)."""
    period_s: float
    """The rolling period in seconds (60 to 604,800)."""

    def __post_init__(self) -> None:
        _check_service(self.service)
        _check_count(self.warning, "warning", 1, 100_000_000)
        _check_count(self.quarantine, "quarantine", 1, 100_000_000)
        if self.quarantine < self.warning:
            raise InvalidMessageError("quarantine must be at least warning")
        p = self.period_s
        if type(p) is not float or not 60.0 <= p <= 604_800.0:
            raise InvalidMessageError(f"period_s must be 60 to 604800 seconds, not {_show(p)}")

    def _wire(self) -> dict[str, object]:
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.KIND,
            "service": self.service,
            "warning": self.warning,
            "quarantine": self.quarantine,
            "period_s": float(self.period_s),
        }


# ---------------------------------------------------------------------------------------------
# Messages from the hub to a service user.


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledgement:
    """The request passed validation and access control and will be executed (I99)."""

    KIND: ClassVar[str] = "acknowledgement"

    request_id: str
    """The id of the accepted request."""
    code: ResponseCode = ResponseCode.I99
    """Always I99."""
    reason: str = MEANINGS[ResponseCode.I99]
    """A short human-readable note (1-1024 characters)."""

    def __post_init__(self) -> None:
        _check_request_id(self.request_id)
        if self.code is not ResponseCode.I99:
            raise InvalidMessageError(f"an acknowledgement's code is I99, not {_show(self.code)}")
        _check_text(self.reason, "reason", MAX_REASON_CHARS)

    def _wire(self) -> dict[str, object]:
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.KIND,
            "request_id": self.request_id,
            "code": self.code.value,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A frame or request the hub would not accept; nothing was executed or changed."""

    KIND: ClassVar[str] = "refusal"

    request_id: str | None
    """The refused request's id; None when the frame could not be read far enough to find one."""
    code: ResponseCode
    """Why, as an E or H code."""
    reason: str
    """Why, in words a person can act on (1-1024 characters)."""
    retry_after_s: float | None = None
    """With H8 (busy) only, and required there: seconds to wait before resubmitting."""

    def __post_init__(self) -> None:
        if self.request_id is not None:
            _check_request_id(self.request_id)
        if type(self.code) is not ResponseCode or self.code.value[0] not in "EH":
            raise InvalidMessageError(f"a refusal's code is an E or H code, not {_show(self.code)}")
        _check_text(self.reason, "reason", MAX_REASON_CHARS)
        if self.code is ResponseCode.H8:
            retry = self.retry_after_s
            if type(retry) is not float and type(retry) is not int:
                raise InvalidMessageError(f"an H8 refusal needs retry_after_s, not {_show(retry)}")
            if not 0.0 < retry <= MAX_RETRY_AFTER_S:
                limit = f"above 0 and at most {MAX_RETRY_AFTER_S:g}"
                raise InvalidMessageError(f"retry_after_s must be {limit}, not {_show(retry)}")
        elif self.retry_after_s is not None:
            raise InvalidMessageError("retry_after_s goes only with code H8 (busy)")

    def _wire(self) -> dict[str, object]:
        retry = self.retry_after_s
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.KIND,
            "request_id": self.request_id,
            "code": self.code.value,
            "reason": self.reason,
            "retry_after_s": None if retry is None else float(retry),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceResponse:
    """The outcome of an accepted request: held by the hub until the user acks its delivery."""

    KIND: ClassVar[str] = "service_response"

    delivery_id: int
    """The hub's id for this delivery (0 to 2**63-1), unique per user; ack it with DeliveryAck."""
    request_id: str
    """The id of the request answered."""
    service: str
    """The service answered, e.g. ``4.1.1``."""
    device_id: str | None
    """The device that answered; None for non-device services."""
    code: ResponseCode
    """I0 when the command ran; an E code when it could not (E20, E21, E30, ...); H11 when the
    device rejected it (the reason is in ``body``)."""
    body: dict[str, Value] = field(default_factory=dict)
    """Service-specific data (readings, configuration, ...); may be empty."""
    responded_at: Instant
    """When the hub received the outcome (seconds since the epoch, UTC)."""

    def __post_init__(self) -> None:
        _check_count(self.delivery_id, "delivery_id", 0, MAX_DELIVERY_ID)
        _check_request_id(self.request_id)
        _check_service(self.service)
        _check_device_id(self.device_id, nullable=True)
        if self.code not in _RESPONSE_CODES:
            raise InvalidMessageError(
                f"a service response's code is I0, an E code or H11, not {_show(self.code)}"
            )
        _check_map(self.body, "body")
        _check_instant(self.responded_at, "responded_at")

    def _wire(self) -> dict[str, object]:
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.KIND,
            "delivery_id": self.delivery_id,
            "request_id": self.request_id,
            "service": self.service,
            "device_id": self.device_id,
            "code": self.code.value,
            "body": self.body,
            "responded_at": float(self.responded_at),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceAlertNotice:
    """A device alert, forwarded to a user entitled to it; held until the user acks it."""

    KIND: ClassVar[str] = "device_alert"

    delivery_id: int
    """The hub's id for this delivery (0 to 2**63-1), unique per user; ack it with DeliveryAck."""
    device_id: str
    """The device that raised the alert (16 upper-case hex digits)."""
    alert_code: str
    """The alert in domain spelling, e.g. ``8F35`` or ``AD1`` (1-16 of ``0-9 A-Z _``)."""
    raised_at: Instant
    """When the device raised it (seconds since the epoch, UTC)."""
    data: dict[str, Value] = field(default_factory=dict)
    """Alert-specific data (e.g. the voltage measured); may be empty."""
    mpxn: str | None = None
    """The meter point (MPAN or MPRN, 6-13 digits) the device serves, if any."""

    def __post_init__(self) -> None:
        _check_count(self.delivery_id, "delivery_id", 0, MAX_DELIVERY_ID)
        _check_device_id(self.device_id, nullable=False)
        _check_alert_code(self.alert_code)
        _check_instant(self.raised_at, "raised_at")
        _check_map(self.data, "data")
        if self.mpxn is not None:
            _check_pattern(self.mpxn, "mpxn", _MPXN, "6 to 13 digits")

    def _wire(self) -> dict[str, object]:
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.KIND,
            "delivery_id": self.delivery_id,
            "device_id": self.device_id,
            "alert_code": self.alert_code,
            "raised_at": float(self.raised_at),
            "data": self.data,
            "mpxn": self.mpxn,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class HubAlert:
    """An alert raised by the hub itself; held until the user acks it."""

    KIND: ClassVar[str] = "hub_alert"

    delivery_id: int
    """The hub's id for this delivery (0 to 2**63-1), unique per user; ack it with DeliveryAck."""
    alert_code: str
    """What happened (1-16 of ``0-9 A-Z _``)."""
    raised_at: Instant
    """When the hub raised it (seconds since the epoch, UTC)."""
    data: dict[str, Value] = field(default_factory=dict)
    """Alert-specific data; may be empty."""

    def __post_init__(self) -> None:
        _check_count(self.delivery_id, "delivery_id", 0, MAX_DELIVERY_ID)
        _check_alert_code(self.alert_code)
        _check_instant(self.raised_at, "raised_at")
        _check_map(self.data, "data")

    def _wire(self) -> dict[str, object]:
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.KIND,
            "delivery_id": self.delivery_id,
            "alert_code": self.alert_code,
            "raised_at": float(self.raised_at),
            "data": self.data,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome:
    """The hub's answer to Hello."""

    KIND: ClassVar[str] = "welcome"

    protocol_version: int
    """The protocol version the hub speaks."""
    server_time: Instant
    """The hub's clock when it answered (seconds since the epoch, UTC)."""
    user_id: str
    """The user id the hub authenticated the connection as (from its CURVE key)."""
    pending: int
    """How many responses and alerts the hub holds for the user, not yet acked."""

    def __post_init__(self) -> None:
        _check_count(self.protocol_version, "protocol_version", 1, 65_535)
        _check_instant(self.server_time, "server_time")
        _check_text(self.user_id, "user_id", _MAX_USER_ID_CHARS)
        _check_count(self.pending, "pending", 0, MAX_DELIVERY_ID)

    def _wire(self) -> dict[str, object]:
        return {
            "v": PROTOCOL_VERSION,
            "kind": self.KIND,
            "protocol_version": self.protocol_version,
            "server_time": float(self.server_time),
            "user_id": self.user_id,
            "pending": self.pending,
        }


UserMessage: TypeAlias = ServiceRequest | DeliveryAck | Hello | QuarantineDecision | SetThresholds
"""Anything a service user sends to the hub."""
HubMessage: TypeAlias = (
    Acknowledgement | Refusal | ServiceResponse | DeviceAlertNotice | HubAlert | Welcome
)
"""Anything the hub sends to a service user."""
Message: TypeAlias = UserMessage | HubMessage
"""Any message of the protocol."""
DeliveryMessage: TypeAlias = ServiceResponse | DeviceAlertNotice | HubAlert
"""The messages that carry a delivery id and are held until acked."""


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


def request_fingerprint(req: ServiceRequest) -> bytes:
    """A stable 32-byte digest of everything a request asks for.

    Equal for the same request id, role, service, device, params (whatever their map key order),
    execution time and signature; different when any of them differs. The hub stores it with
    the request id to tell a resubmission (same fingerprint) from reuse of the id (H4). Stable
    across processes and releases: changing how it is computed needs a new personalisation.
    """
    canonical = [
        req.request_id,
        req.role.value,
        req.service,
        req.device_id,
        _canonical(req.params),
        None if req.execute_at is None else float(req.execute_at),
        req.signature,
    ]
    packed: bytes = msgpack.packb(canonical, use_bin_type=True)
    digest = hashlib.blake2b(packed, digest_size=FINGERPRINT_BYTES, person=_FINGERPRINT_PERSON)
    return digest.digest()


def _canonical(value: Value) -> Value:
    """The same value with every map's keys in sorted order, so key order cannot matter."""
    if type(value) is dict:
        return {key: _canonical(value[key]) for key in sorted(value)}
    if type(value) is list:
        return [_canonical(item) for item in value]
    return value


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
        raise InvalidMessageError(f"role must be one of {', '.join(Role)}, not {_show(value)}")
    return role


def _code(value: object) -> ResponseCode:
    code = _CODES.get(value) if type(value) is str else None
    if code is None:
        raise InvalidMessageError(f"code must be a response code such as 'I0', not {_show(value)}")
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
        raise InvalidMessageError(f"action must be release or delete, not {_show(action)}")
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


_UNPACK_LIMITS: dict[str, Any] = {
    "raw": False,  # strings are UTF-8 text; invalid UTF-8 is refused
    "strict_map_key": True,  # map keys are strings (or bytes, refused later)
    "use_list": True,
    "max_str_len": MAX_FRAME_BYTES,
    "max_bin_len": MAX_FRAME_BYTES,
    "max_array_len": MAX_ARRAY_ITEMS,
    "max_map_len": MAX_MAP_ITEMS,
    "max_ext_len": 0,  # no extension types (timestamps included)
}


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
            raise ValueError(f"more than {MAX_CONTAINERS} maps and arrays")
        return items

    def on_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        if next(completed) > MAX_CONTAINERS:
            raise ValueError(f"more than {MAX_CONTAINERS} maps and arrays")
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
    if type(request_id) is str and _REQUEST_ID.fullmatch(request_id) is not None:
        return request_id
    return None


def _refuse(code: ResponseCode, reason: str, body: _Body) -> WireError:
    return WireError(code, reason, _readable_request_id(body))


def _decode(frame: bytes, accepted: dict[str, _Schema], sender: str) -> Message:
    if len(frame) > MAX_FRAME_BYTES:
        raise WireError(
            ResponseCode.H3, f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES} bytes"
        )
    if not frame or not (0x80 <= frame[0] <= 0x8F or frame[0] in (0xDE, 0xDF)):
        # fixmap, map 16, map 32: anything else is not a map, so it is refused unread
        raise WireError(ResponseCode.H1, "the body must be a msgpack map")
    try:
        body = _unpack(frame)
    except Exception as exc:  # any failure of the unpacker is the sender's malformed frame
        raise WireError(ResponseCode.H1, f"not one msgpack value: {_show(str(exc))}") from None
    if type(body) is not dict:
        raise WireError(ResponseCode.H1, f"the body must be a msgpack map, not {_show(body)}")
    if len(body) != _entries_announced(frame):
        raise _refuse(ResponseCode.H1, "the body repeats a field", body)
    if "v" not in body:
        raise _refuse(ResponseCode.H1, "missing field 'v' (the protocol version)", body)
    version = body["v"]
    if version != PROTOCOL_VERSION or type(version) is not int:
        if type(version) is not int:
            raise _refuse(ResponseCode.H1, f"v must be an integer, not {_show(version)}", body)
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
            reason = f"unknown kind {_show(kind)}"
        raise _refuse(ResponseCode.H1, reason, body)
    if not schema.fields.issuperset(body):
        unknown = sorted(_show(name) for name in body.keys() - schema.fields)
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise _refuse(ResponseCode.H1, f"unknown field(s) in {kind}: {shown}", body)
    try:
        return schema.decoder(body)
    except KeyError as exc:
        raise _refuse(ResponseCode.H1, f"missing field {exc.args[0]!r} in {kind}", body) from None
    except InvalidMessageError as exc:
        raise _refuse(ResponseCode.H1, str(exc), body) from None


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

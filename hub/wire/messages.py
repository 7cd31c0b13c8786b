"""The wire messages: one frozen dataclass per kind, validated on construction.

Decides: which fields each message kind has, what each must hold, and the map each travels as
(``_wire``). A message with a bad field cannot exist: building one raises
``InvalidMessageError``, the fault of the program that built it.
Must never: pack or unpack bytes (``codec`` does), or judge whether a request is allowed
(access control, the catalogue and the service parameter rules do that).

Their map fields (``params``, ``body``, ``data``) are plain dicts for speed: treat them as
read-only once the message is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, TypeAlias

from hub.reference.codes import MEANINGS, ResponseCode
from hub.reference.roles import Role
from hub.reference.standard import Instant, Value
from hub.reference.text import show
from hub.wire.checks import (
    MPXN_PATTERN,
    InvalidMessageError,
    check_alert_code,
    check_count,
    check_device_id,
    check_instant,
    check_map,
    check_pattern,
    check_request_id,
    check_service,
    check_text,
)
from hub.wire.limits import (
    MAX_ACK_IDS,
    MAX_DELIVERY_ID,
    MAX_IN_FLIGHT,
    MAX_REASON_CHARS,
    MAX_RETRY_AFTER_S,
    MAX_SIGNATURE_BYTES,
    PROTOCOL_VERSION,
)

_MAX_USER_ID_CHARS = 128
_RESPONSE_CODES = frozenset(
    code
    for code in ResponseCode
    if code in (ResponseCode.I0, ResponseCode.H8, ResponseCode.H11, ResponseCode.H12)
    or code.value.startswith("E")
)


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
        check_request_id(self.request_id)
        if type(self.role) is not Role:
            raise InvalidMessageError(
                f"role must be one of {', '.join(Role)}, not {show(self.role)}"
            )
        check_service(self.service)
        check_device_id(self.device_id, nullable=True)
        check_map(self.params, "params")
        check_instant(self.execute_at, "execute_at", nullable=True)
        if type(self.signature) is not bytes:
            raise InvalidMessageError(
                f"signature must be msgpack bin (binary), not {show(self.signature)}"
            )
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
            raise InvalidMessageError(f"delivery_ids must be an array, not {show(ids)}")
        if not 1 <= len(ids) <= MAX_ACK_IDS:
            raise InvalidMessageError(
                f"delivery_ids must hold 1 to {MAX_ACK_IDS} ids, not {len(ids)}"
            )
        for delivery_id in ids:
            check_count(delivery_id, "each delivery id", 0, MAX_DELIVERY_ID)

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
            check_count(self.max_in_flight, "max_in_flight", 1, MAX_IN_FLIGHT)

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
            raise InvalidMessageError(f"action must be release or delete, not {show(self.action)}")
        ids = self.request_ids
        if type(ids) is not tuple or not 1 <= len(ids) <= MAX_ACK_IDS:
            raise InvalidMessageError(f"request_ids must be an array of 1 to {MAX_ACK_IDS} ids")
        for rid in ids:
            check_request_id(rid)

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
        check_service(self.service)
        check_count(self.warning, "warning", 1, 100_000_000)
        check_count(self.quarantine, "quarantine", 1, 100_000_000)
        if self.quarantine < self.warning:
            raise InvalidMessageError("quarantine must be at least warning")
        p = self.period_s
        if type(p) is not float or not 60.0 <= p <= 604_800.0:
            raise InvalidMessageError(f"period_s must be 60 to 604800 seconds, not {show(p)}")

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
        check_request_id(self.request_id)
        if self.code is not ResponseCode.I99:
            raise InvalidMessageError(f"an acknowledgement's code is I99, not {show(self.code)}")
        check_text(self.reason, "reason", MAX_REASON_CHARS)

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
            check_request_id(self.request_id)
        if type(self.code) is not ResponseCode or self.code.value[0] not in "EH":
            raise InvalidMessageError(f"a refusal's code is an E or H code, not {show(self.code)}")
        check_text(self.reason, "reason", MAX_REASON_CHARS)
        if self.code is ResponseCode.H8:
            retry = self.retry_after_s
            if type(retry) is not float and type(retry) is not int:
                raise InvalidMessageError(f"an H8 refusal needs retry_after_s, not {show(retry)}")
            if not 0.0 < retry <= MAX_RETRY_AFTER_S:
                limit = f"above 0 and at most {MAX_RETRY_AFTER_S:g}"
                raise InvalidMessageError(f"retry_after_s must be {limit}, not {show(retry)}")
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
    device rejected it (the reason is in ``body``); H8 when it was accepted but displaced by
    more urgent work before it reached the device (``body`` has ``reason`` and
    ``retry_after_s``; resubmit with a new request id); H12 when the hub failed to resume it
    after a restart."""
    body: dict[str, Value] = field(default_factory=dict)
    """Service-specific data (readings, configuration, ...); may be empty."""
    responded_at: Instant
    """When the hub received the outcome (seconds since the epoch, UTC)."""

    def __post_init__(self) -> None:
        check_count(self.delivery_id, "delivery_id", 0, MAX_DELIVERY_ID)
        check_request_id(self.request_id)
        check_service(self.service)
        check_device_id(self.device_id, nullable=True)
        if self.code not in _RESPONSE_CODES:
            raise InvalidMessageError(
                f"a service response's code is I0, an E code, H8, H11 or H12, not {show(self.code)}"
            )
        check_map(self.body, "body")
        check_instant(self.responded_at, "responded_at")

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
        check_count(self.delivery_id, "delivery_id", 0, MAX_DELIVERY_ID)
        check_device_id(self.device_id, nullable=False)
        check_alert_code(self.alert_code)
        check_instant(self.raised_at, "raised_at")
        check_map(self.data, "data")
        if self.mpxn is not None:
            check_pattern(self.mpxn, "mpxn", MPXN_PATTERN, "6 to 13 digits")

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
        check_count(self.delivery_id, "delivery_id", 0, MAX_DELIVERY_ID)
        check_alert_code(self.alert_code)
        check_instant(self.raised_at, "raised_at")
        check_map(self.data, "data")

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
        check_count(self.protocol_version, "protocol_version", 1, 65_535)
        check_instant(self.server_time, "server_time")
        check_text(self.user_id, "user_id", _MAX_USER_ID_CHARS)
        check_count(self.pending, "pending", 0, MAX_DELIVERY_ID)

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

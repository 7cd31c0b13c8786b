"""The wire protocol between service users and the hub: typed messages and their msgpack codec.

Re-exports only. The protocol's numbers live in ``limits``, the field checks in ``checks``, the
messages in ``messages``, the frame codec in ``codec`` and request fingerprints in
``fingerprint``. ``docs/protocol.md`` is the specification; this package and that file change
together.

Messages are frozen dataclasses validated on construction, so a malformed one cannot exist:
building one with a bad field raises ``InvalidMessageError`` (the local program's fault), while
``decode`` turns anything wrong in received bytes into ``WireError`` (the sender's fault).
"""

from hub.wire.checks import InvalidMessageError
from hub.wire.codec import (
    _ANY_KIND as _ANY_KIND,
)
from hub.wire.codec import (
    SEVERAL_FRAMES,
    WireError,
    decode,
    decode_from_hub,
    decode_from_user,
    encode,
    request_id_of,
)
from hub.wire.fingerprint import request_fingerprint
from hub.wire.limits import (
    FINGERPRINT_BYTES,
    MAX_ACK_IDS,
    MAX_ARRAY_ITEMS,
    MAX_CONTAINERS,
    MAX_DELIVERY_ID,
    MAX_FRAME_BYTES,
    MAX_IN_FLIGHT,
    MAX_INSTANT,
    MAX_MAP_ITEMS,
    MAX_REASON_CHARS,
    MAX_REQUEST_ID_CHARS,
    MAX_RETRY_AFTER_S,
    MAX_SIGNATURE_BYTES,
    MAX_VALUE_DEPTH,
    PROTOCOL_VERSION,
)
from hub.wire.messages import (
    Acknowledgement,
    DeliveryAck,
    DeliveryMessage,
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

__all__ = [
    "FINGERPRINT_BYTES",
    "MAX_ACK_IDS",
    "MAX_ARRAY_ITEMS",
    "MAX_CONTAINERS",
    "MAX_DELIVERY_ID",
    "MAX_FRAME_BYTES",
    "MAX_INSTANT",
    "MAX_IN_FLIGHT",
    "MAX_MAP_ITEMS",
    "MAX_REASON_CHARS",
    "MAX_REQUEST_ID_CHARS",
    "MAX_RETRY_AFTER_S",
    "MAX_SIGNATURE_BYTES",
    "MAX_VALUE_DEPTH",
    "PROTOCOL_VERSION",
    "SEVERAL_FRAMES",
    "Acknowledgement",
    "DeliveryAck",
    "DeliveryMessage",
    "DeviceAlertNotice",
    "Hello",
    "HubAlert",
    "HubMessage",
    "InvalidMessageError",
    "Message",
    "QuarantineAction",
    "QuarantineDecision",
    "Refusal",
    "ServiceRequest",
    "ServiceResponse",
    "SetThresholds",
    "UserMessage",
    "Welcome",
    "WireError",
    "decode",
    "decode_from_hub",
    "decode_from_user",
    "encode",
    "request_fingerprint",
    "request_id_of",
]

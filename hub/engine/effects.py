"""What one engine step decides, as data: the ``Effects`` bag and the records and decisions it
carries (audit records, sends, dispatches).

Decides: the shape of a step's decisions and the order a driver applies them in (persist,
then send, then dispatch), which parts must be persisted (derived from the fields, so a new
field cannot be forgotten), and the audit kinds (stored as their text values).
Must never: decide anything about a request, or apply an effect itself.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum

from hub.engine.lifecycle import RequestRecord
from hub.engine.outbox import Delivery
from hub.flows.schedules import Schedule
from hub.policies.sla import SlaRecord
from hub.reference.standard import DeviceCommand
from hub.registers.changes import StoredChange
from hub.registers.inventory import InventoryChange


class Direction(StrEnum):
    """Audit direction as seen from the hub."""

    IN = "in"
    OUT = "out"


class AuditKind(StrEnum):
    """What an audit record is about (the values are the text stored in the audit)."""

    SERVICE_REQUEST = "service_request"
    ACKNOWLEDGEMENT = "acknowledgement"
    REFUSAL = "refusal"
    REPEAT = "repeat"
    MALFORMED = "malformed"
    HELLO = "hello"
    WELCOME = "welcome"
    DELIVERY_ACK = "delivery_ack"
    RESPONSE = "response"
    """A response delivery pushed or expired (the delivery kinds share their values)."""
    DEVICE_ALERT = "device_alert"
    HUB_ALERT = "hub_alert"
    QUARANTINE_RELEASE = "quarantine_release"
    QUARANTINE_DELETE = "quarantine_delete"
    THRESHOLDS = "thresholds"
    SECURITY_ALERT = "security_alert"
    SCHEDULE_FIRING = "schedule_firing"
    UNSOLICITED_RESPONSE = "unsolicited_response"
    INTEGRITY_FAILURE = "integrity_failure"
    HANDSHAKE_REFUSED = "handshake_refused"
    KEY_REGISTERED = "key_registered"
    KEY_REVOKED = "key_revoked"
    INTERNAL_ERROR = "internal_error"
    """An engine step raised and was contained (answered H12 where it answers a frame)."""
    REGISTER_CHANGE = "register_change"
    """A change reported by an external register was applied (``hub.registers.changes``)."""
    REGISTER_CHANGE_REFUSED = "register_change_refused"
    """A register change file (or batch) was refused whole: nothing of it was applied."""
    INVENTORY_CHANGE = "inventory_change"
    """The inventory, the approved products list or an election changed (or an operator's
    inventory command was refused)."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited message, received or sent (refusals included)."""

    at: float
    """When the hub handled it."""
    direction: Direction
    """Received by the hub or sent by it."""
    user_id: str | None
    """The service user concerned (None: the hub's own, e.g. device uplinks)."""
    kind: AuditKind
    """What it is."""
    request_id: str | None = None
    """The user's request id, where there is one."""
    service: str | None = None
    """DUIS service reference, where there is one."""
    device_id: str | None = None
    """The device (or comms hub) concerned."""
    code: str | None = None
    """Response, alert or security code."""
    reason: str = ""
    """Free text for a reader."""
    delivery_id: int | None = None
    """The delivery concerned (pushes, acknowledgements, expiries)."""


@dataclass(frozen=True, slots=True)
class Send:
    """Decision: send this encoded frame to this user (after persisting)."""

    user_id: str
    """The recipient."""
    payload: bytes
    """The encoded frame."""
    push: bool = False
    """A held delivery, pushed to the user's delivery connection (the one that last said
    Hello); otherwise a direct answer to the frame being handled, sent back where it came from."""
    delivery_id: int | None = None
    """The held delivery pushed (pushes only). Its payload is empty unless the delivery was
    made in this very step: the driver fills it from its payload cache or its store."""


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Decision: hand this command to the head-end for the device, via its comms hub."""

    command: DeviceCommand
    """The standard command."""
    head_end: str
    """The head-end that translates it."""
    comms_hub: str
    """The comms hub that carries it."""
    priority: int
    """Its traffic class (lower goes first)."""


@dataclass(frozen=True, slots=True)
class EngineFault:
    """A contained failure of one engine step, for the driver to log (the engine never logs)."""

    where: str
    """The entry point that failed, e.g. ``on_frame`` or ``tick``."""
    error_type: str
    """The exception's class name."""
    message: str
    """The exception's message, bounded."""
    traceback_text: str
    """The formatted traceback, bounded (its end kept)."""


@dataclass(slots=True)
class Effects:
    """Everything one step decided, in the order a driver applies it."""

    save_requests: list[RequestRecord] = field(default_factory=list, metadata={"persist": True})
    """Requests decided on (inserted)."""
    await_requests: list[int] = field(default_factory=list, metadata={"persist": True})
    """Seqs of Device-pattern requests answered before their outcome: each now awaits its
    8F66 / 8F67 (or E30), and is stored awaiting it (applied before ``complete_requests``, so
    one answered and completed in the same batch ends completed)."""
    complete_requests: list[int] = field(default_factory=list, metadata={"persist": True})
    """Seqs of requests completed: answered (a failure included), or their awaited outcome
    arrived or was missed (E30)."""
    add_deliveries: list[Delivery] = field(default_factory=list, metadata={"persist": True})
    """Responses and alerts to hold until acknowledged."""
    remove_deliveries: list[int] = field(default_factory=list, metadata={"persist": True})
    """Deliveries acknowledged or expired."""
    audit: list[AuditRecord] = field(default_factory=list, metadata={"persist": True})
    """Audit records, in order."""
    send: list[Send] = field(default_factory=list)
    """Frames to send, after persisting."""
    dispatch: list[Dispatch] = field(default_factory=list)
    """Commands to hand to head-ends, after sending."""
    sla: list[SlaRecord] = field(default_factory=list, metadata={"persist": True})
    """SLA records of responses made."""
    save_schedules: list[Schedule] = field(default_factory=list, metadata={"persist": True})
    """Schedules created or advanced."""
    delete_schedules: list[str] = field(default_factory=list, metadata={"persist": True})
    """Ids of schedules deleted or stopped."""
    save_transfers: list[tuple[int, int]] = field(default_factory=list, metadata={"persist": True})
    """Firmware transfer progress: (request seq, next block)."""
    save_register_changes: list[StoredChange] = field(
        default_factory=list, metadata={"persist": True}
    )
    """Register changes applied (kept in the order applied), or whose effective-day
    consequences are now carried out (``done``; replacing the stored one of the same id)."""
    inventory_changes: list[InventoryChange] = field(
        default_factory=list, metadata={"persist": True}
    )
    """Inventory and election changes made, in order (replayed over the fleet at a restart)."""
    hello: list[str] = field(default_factory=list)
    """Users that said Hello in this step (their delivery connection is the frame's)."""
    faults: list[EngineFault] = field(default_factory=list)
    """Steps that raised and were contained: drivers log each with its traceback."""
    expired: int = 0
    """Deliveries expired undelivered in this step (counted by drivers)."""

    def extend(self, other: Effects) -> None:
        """Append another step's effects after these (every field, in declaration order)."""
        for name in _LISTS:
            getattr(self, name).extend(getattr(other, name))
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def needs_persisting(self) -> bool:
        """True when a driver must write to its store before sending anything."""
        return any(getattr(self, f) for f in _PERSISTED)


_LISTS: tuple[str, ...] = tuple(f.name for f in fields(Effects) if f.default_factory is not MISSING)
_COUNTS: tuple[str, ...] = tuple(f.name for f in fields(Effects) if f.default_factory is MISSING)
_PERSISTED: tuple[str, ...] = tuple(f.name for f in fields(Effects) if f.metadata.get("persist"))

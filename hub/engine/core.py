"""The hub engine: the request pipeline and delivery decisions, sans I/O.

Decides, for every frame a service user sends and every message a device sends back, what
the hub does: refuse (with a code and a reason) or accept (I99) a service request after
decoding, idempotency, parameter validation, access control and capacity checks; answer
non-device services; dispatch device commands; turn device responses and alerts into held
deliveries for the entitled users; push, retry, expire and remove deliveries. Each decision
comes back as ``Effects``: records to persist, messages to send, commands to dispatch, and
audit records, in that order of application (persist first, then send).
Must never: open a socket or a file, start a thread, read a clock (``now`` is given), or
import a driver. The live actors and the simulator both drive this same class.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum

from hub import wire
from hub.engine.outbox import (
    DEFAULT_HOLD_S,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_RETRY_S,
    Delivery,
    DeliveryKind,
    Outbox,
    Push,
)
from hub.flows.firmware import FIRMWARE_SERVICES, Transfer, parse_block_command_id, validate_update
from hub.flows.non_device import HANDLERS, SCHEDULE_SERVICES, executable
from hub.flows.schedules import (
    DEFAULT_OFFSET_WINDOW_S,
    Firing,
    Schedule,
    ScheduleError,
    Scheduler,
    parse_create,
    validate_create,
    validate_delete,
    validate_read,
)
from hub.policies.access import AccessContext, AccessRequest
from hub.policies.alert_routing import PartyIndex, recipients
from hub.policies.anomaly import (
    DEFAULT_QUARANTINE_HOLD_S,
    AnomalyConfig,
    AnomalyDetector,
    NoticeKind,
    Notification,
    Quarantine,
    Thresholds,
)
from hub.policies.security import SecurityAlert, SecurityMonitor
from hub.policies.sla import SlaRecord
from hub.policies.traffic import Busy, TrafficConfig, TrafficManager
from hub.reference.catalogue import FutureDated, PriorityClass, Service
from hub.reference.codes import ResponseCode
from hub.reference.roles import DeviceType, Role
from hub.reference.service_params import validate_params
from hub.reference.standard import CommandStatus, DeviceAlert, DeviceCommand, DeviceResponse, Value
from hub.reference.uktime import uk_date


class RequestState(StrEnum):
    """Where an accepted or refused request stands."""

    REFUSED = "refused"
    ACCEPTED = "accepted"  # I99 given, not yet answered
    COMPLETED = "completed"  # answered; its response is in the outbox


class Direction(StrEnum):
    """Audit direction as seen from the hub."""

    IN = "in"
    OUT = "out"


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Tunables of the engine (all configurable at start-up)."""

    hold_s: float = DEFAULT_HOLD_S
    """How long responses and alerts are held for an absent recipient."""
    retry_s: float = DEFAULT_RETRY_S
    """How long a pushed delivery waits for its acknowledgement before being pushed again."""
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    """Pushed-but-unacknowledged deliveries per user."""
    max_pending: int = 20_000
    """Accepted requests awaiting their device response, hub-wide; beyond it: H8."""
    max_per_comms_hub: int = 64
    """Requests queued for one comms hub; beyond it: H8."""
    busy_retry_s: float = 5.0
    """The retry-after given with H8."""
    idempotency_s: float = 24 * 3600.0
    """How long a request id is remembered for idempotent resubmission."""
    idempotency_max: int = 1_000_000
    """Most request ids remembered in memory; beyond it the oldest are forgotten early (counted
    as ``forgotten_early``) so memory stays bounded at any request rate."""
    response_timeout_s: float = 120.0
    """How long a dispatched command may go unanswered before the user gets E21."""
    quarantine_hold_s: float = DEFAULT_QUARANTINE_HOLD_S
    """How long a quarantined request waits for the user to release or delete it."""
    anomaly: AnomalyConfig | None = None
    """Anomaly thresholds (None: the documented defaults for the catalogue)."""
    traffic: TrafficConfig = field(
        default_factory=lambda: TrafficConfig(capacity_per_s=10_000.0, cell_bytes_per_s=1_000_000.0)
    )
    """Traffic management: hub rate, user shares near capacity, cell budgets, queue bounds.
    The live default assumes a cellular cell carries about 1 MB/s of hub traffic and the WAN
    side can start 10,000 commands a second (both configurable)."""
    sweep_per_tick: int = 2_000
    """Schedules and held requests checked per tick in the daily change-of-supplier sweep."""
    schedule_seed: int = 1
    """Seed of the schedules' randomised offsets (keep it across restarts)."""
    schedule_window_s: float = DEFAULT_OFFSET_WINDOW_S
    """Schedule firings are spread over this window after their nominal time."""
    batch_release: bool = False
    """Leave releasing queued commands to ``release`` (called once per driver batch)."""
    outcome_timeout_s: float = 3600.0
    """How long after its execution time a Device-pattern future-dated command may go without
    its 8F66 / 8F67 outcome alert before the user gets E30."""


@dataclass(slots=True)
class RequestRecord:
    """A service request the hub has decided on (persisted for restart and idempotency)."""

    seq: int
    """Hub-assigned sequence number; the device command id is its decimal string."""
    user_id: str
    request_id: str
    fingerprint: bytes
    """Digest of the request's content, to tell a resubmission from a reused id."""
    service: str
    role: str
    device_id: str | None
    params: dict[str, Value]
    execute_at: float | None
    received_at: float
    state: RequestState
    reply: bytes
    """The encoded first answer (acknowledgement or refusal), repeated on resubmission."""
    comms_hub: str | None = None
    """The comms hub the command goes through (device services only)."""
    head_end: str | None = None
    """The head-end that translates it (device services only)."""
    signature: bytes = b""
    scheduled: bool = False
    """A firing of a DCC schedule (travels as bulk)."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited message, received or sent (refusals included)."""

    at: float
    direction: Direction
    user_id: str | None
    kind: str
    request_id: str | None = None
    service: str | None = None
    device_id: str | None = None
    code: str | None = None
    reason: str = ""
    delivery_id: int | None = None


@dataclass(frozen=True, slots=True)
class Send:
    """Decision: send this encoded frame to this user (after persisting)."""

    user_id: str
    payload: bytes
    push: bool = False
    """A held delivery, pushed to the user's delivery connection (the one that last said
    Hello); otherwise a direct answer to the frame being handled, sent back where it came from."""


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Decision: hand this command to the head-end for the device, via its comms hub."""

    command: DeviceCommand
    head_end: str
    comms_hub: str
    priority: int


@dataclass(slots=True)
class Effects:
    """Everything one step decided, in the order a driver applies it."""

    save_requests: list[RequestRecord] = field(default_factory=list)
    complete_requests: list[int] = field(default_factory=list)
    add_deliveries: list[Delivery] = field(default_factory=list)
    remove_deliveries: list[int] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    send: list[Send] = field(default_factory=list)
    dispatch: list[Dispatch] = field(default_factory=list)
    sla: list[SlaRecord] = field(default_factory=list)
    save_schedules: list[Schedule] = field(default_factory=list)
    delete_schedules: list[str] = field(default_factory=list)
    save_transfers: list[tuple[int, int]] = field(default_factory=list)
    """Firmware transfer progress: (request seq, next block)."""
    hello: list[str] = field(default_factory=list)
    """Users that said Hello in this step (their delivery connection is the frame's)."""
    expired: int = 0

    def extend(self, other: Effects) -> None:
        """Append another step's effects after these."""
        self.save_requests += other.save_requests
        self.complete_requests += other.complete_requests
        self.add_deliveries += other.add_deliveries
        self.remove_deliveries += other.remove_deliveries
        self.audit += other.audit
        self.send += other.send
        self.dispatch += other.dispatch
        self.sla += other.sla
        self.save_schedules += other.save_schedules
        self.delete_schedules += other.delete_schedules
        self.save_transfers += other.save_transfers
        self.hello += other.hello
        self.expired += other.expired

    @property
    def needs_persisting(self) -> bool:
        """True when a driver must write to its store before sending anything."""
        return bool(
            self.save_requests
            or self.complete_requests
            or self.add_deliveries
            or self.remove_deliveries
            or self.audit
            or self.sla
            or self.save_schedules
            or self.delete_schedules
            or self.save_transfers
        )


HUB_ALERT_CODES: dict[NoticeKind, str] = {
    NoticeKind.WARNING: "ANOMALY_WARNING",
    NoticeKind.QUARANTINED: "QUARANTINED",
}
"""Hub alert codes of anomaly notices (documented in docs/protocol.md)."""


def _dt(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC)


def _uses_device(service: Service) -> bool:
    """Carried out by commands to a device: device services and firmware distribution."""
    return not service.non_device or service.code in FIRMWARE_SERVICES


def _seq_of(command_id: str) -> int | None:
    """The request seq a command id belongs to (``<seq>`` or a block's ``<seq>-<block>``)."""
    block = parse_block_command_id(command_id)
    if block is not None:
        return block[0]
    return int(command_id) if command_id.isdigit() else None


class HubEngine:
    """The pure hub: feed it frames, device messages and ticks; apply what it returns."""

    def __init__(self, access: AccessContext, config: EngineConfig | None = None) -> None:
        self.access = access
        self.config = config or EngineConfig()
        self.outbox = Outbox(self.config.hold_s, self.config.retry_s, self.config.max_in_flight)
        self.parties = PartyIndex.build(access.users.values())
        self._seen: OrderedDict[tuple[str, str], RequestRecord] = OrderedDict()
        self._pending: dict[int, RequestRecord] = {}
        self._per_hub: dict[str, int] = {}
        # Device-pattern future-dated commands awaiting 8F66 / 8F67: command id -> seq, deadline
        self._outcomes: dict[str, tuple[int, float]] = {}
        self._outcome_deadlines: list[tuple[float, str]] = []  # heap; answered ones skipped
        self._next_forget = 0.0
        self._swept_day: date | None = None  # the UK day the change-of-supplier sweep covers
        self._sweep: list[str | int] = []  # schedule ids and held request seqs still to check
        self._by_seq: dict[int, RequestRecord] = {}  # requests with a future execution time
        self._transfers: dict[int, Transfer] = {}  # firmware transfers in progress, by seq
        self._resume: dict[int, int] = {}  # seq -> next block, restored after a restart
        # DSP-pattern future-dated requests held until their execution time
        self._held: list[tuple[float, int]] = []
        self._dispatched_at: dict[int, float] = {}  # in dispatch order
        self.anomaly = AnomalyDetector(
            self.config.anomaly or AnomalyConfig.for_services(access.catalogue.services())
        )
        self.quarantine: Quarantine[wire.ServiceRequest] = Quarantine()
        self.traffic: TrafficManager[Dispatch] = TrafficManager(self.config.traffic)
        self.scheduler = Scheduler(
            seed=self.config.schedule_seed, window_s=self.config.schedule_window_s
        )
        self.security = SecurityMonitor()
        self.security_alerts: deque[SecurityAlert] = deque(maxlen=1000)
        """The most recent security alerts (also audited)."""
        self._next_seq = 1
        self._next_delivery = 1
        self.counters: dict[str, int] = {}
        """Outcome counts by code, and 'unknown_uplink', for reports."""

    # ---- restart -----------------------------------------------------------------------

    def restore(
        self,
        requests: Iterable[RequestRecord],
        deliveries: Iterable[Delivery],
        next_seq: int,
        next_delivery: int,
        now: float,
        schedules: Iterable[Schedule] = (),
        next_schedule: int = 1,
        transfers: Mapping[int, int] | None = None,
    ) -> Effects:
        """Rebuild state from the store after a restart. Requests accepted but unanswered
        are dispatched again, or held again until their execution time (nothing acknowledged
        is lost); Device-pattern commands still awaiting their outcome keep waiting."""
        self._next_seq = max(self._next_seq, next_seq)
        self._next_delivery = max(self._next_delivery, next_delivery)
        effects = Effects()
        self._resume.update(transfers or {})
        for rec in requests:
            self._seen[(rec.user_id, rec.request_id)] = rec
            if rec.execute_at is not None and rec.state is RequestState.COMPLETED:
                deadline = rec.execute_at + self.config.outcome_timeout_s
                if deadline > now and self._pattern(rec) is FutureDated.DEVICE:
                    self._by_seq[rec.seq] = rec
                    self._await_outcome(rec.seq, deadline)
            if rec.state is RequestState.ACCEPTED:
                effects.extend(self._execute(rec, now))
        for d in deliveries:
            self.outbox.restore(d)
        self.scheduler.restore(schedules, next_schedule)
        return effects

    # ---- frames from users ---------------------------------------------------------------

    def on_frame(self, user_id: str, frame: bytes, now: float) -> Effects:
        """Handle one frame from an authenticated user."""
        try:
            msg = wire.decode_from_user(frame)
        except wire.WireError as err:
            return self._refuse_frame(
                user_id, err.request_id, err.code, err.reason, now, "malformed"
            )
        if isinstance(msg, wire.ServiceRequest):
            return self.on_request(user_id, msg, now)
        if isinstance(msg, wire.DeliveryAck):
            return self.on_ack(user_id, list(msg.delivery_ids), now)
        if isinstance(msg, wire.QuarantineDecision):
            return self.on_quarantine_decision(user_id, msg, now)
        if isinstance(msg, wire.SetThresholds):
            return self.on_set_thresholds(user_id, msg, now)
        return self.on_hello(user_id, msg.max_in_flight, now)

    def _refuse_frame(
        self,
        user_id: str,
        request_id: str | None,
        code: ResponseCode,
        reason: str,
        now: float,
        kind: str,
    ) -> Effects:
        self._count(code)
        effects = self._final_refusal(user_id, request_id, code, reason, now)
        received = AuditRecord(
            now, Direction.IN, user_id, kind, request_id, code=code.value, reason=reason
        )
        effects.audit.insert(0, received)
        return effects

    def on_hello(self, user_id: str, max_in_flight: int | None, now: float) -> Effects:
        """The user is online: welcome it and push everything held for it."""
        pushes = self.outbox.online(user_id, now, max_in_flight)
        welcome = wire.encode(
            wire.Welcome(
                protocol_version=wire.PROTOCOL_VERSION,
                server_time=now,
                user_id=user_id,
                pending=self.outbox.depth(user_id),
            )
        )
        effects = Effects(
            audit=[
                AuditRecord(now, Direction.IN, user_id, "hello"),
                AuditRecord(now, Direction.OUT, user_id, "welcome"),
            ],
            send=[Send(user_id, welcome)],
            hello=[user_id],
        )
        self._pushes(pushes, effects, now)
        return effects

    def on_unreachable(self, user_id: str) -> None:
        """The transport could not route to the user: hold its deliveries until it returns."""
        self.outbox.offline(user_id)

    def on_ack(self, user_id: str, delivery_ids: list[int], now: float) -> Effects:
        """The user confirms receipt: remove those deliveries (readings go with them)."""
        done, pushes = self.outbox.ack(user_id, delivery_ids, now)
        effects = Effects(
            remove_deliveries=[d.delivery_id for d in done],
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    user_id,
                    "delivery_ack",
                    d.request_id,
                    delivery_id=d.delivery_id,
                )
                for d in done
            ],
        )
        self._pushes(pushes, effects, now)
        return effects

    def on_request(
        self, user_id: str, req: wire.ServiceRequest, now: float, *, released: bool = False
    ) -> Effects:
        """Decide on one service request (``released``: let out of quarantine by its user, so
        it is not counted again)."""
        key = (user_id, req.request_id)
        fingerprint = wire.request_fingerprint(req)
        seen = self._seen.get(key)
        if seen is not None:
            return self._resubmission(seen, fingerprint, req, now)
        code, reason, service = self._check(user_id, req, now)
        if code is ResponseCode.H8:
            return self._busy(user_id, req, reason, now)
        notes = Effects()
        if code.value in ("E1", "E2", "E3", "E4", "E5"):
            self._security(self.security.on_refusal(user_id, code, now), now, notes)
        if code is ResponseCode.I99 and not released:
            assessment = self.anomaly.observe(user_id, req.service, now)
            for notice in assessment.notices:
                notes.extend(self._notify(notice, now))
            if assessment.hold:
                held = self._quarantine(user_id, req, assessment.reason, now)
                held.extend(notes)
                return held
        if code is ResponseCode.I99 and service is not None and _uses_device(service):
            admission = self.traffic.admit(
                user_id, self._priority(service, req.execute_at, now), now
            )
            if isinstance(admission, Busy):
                busy = self._busy(
                    user_id, req, f"busy: {admission.detail}", now, admission.retry_after_s
                )
                busy.extend(notes)
                return busy
        accepted = code is ResponseCode.I99
        reply_msg: wire.Acknowledgement | wire.Refusal = (
            wire.Acknowledgement(request_id=req.request_id, code=code, reason=reason)
            if accepted
            else wire.Refusal(
                request_id=req.request_id, code=code, reason=reason, retry_after_s=None
            )
        )
        reply = wire.encode(reply_msg)
        device = self.access.inventory.device(req.device_id) if req.device_id else None
        comms_hub = self.access.inventory.sites[device.site_id].comms_hub if device else None
        rec = RequestRecord(
            seq=self._next_seq,
            user_id=user_id,
            request_id=req.request_id,
            fingerprint=fingerprint,
            service=req.service,
            role=req.role.value,
            device_id=req.device_id,
            params=dict(req.params),
            execute_at=req.execute_at,
            received_at=now,
            state=RequestState.ACCEPTED if accepted else RequestState.REFUSED,
            reply=reply,
            comms_hub=comms_hub if service and _uses_device(service) else None,
            head_end=device.head_end if device and service and _uses_device(service) else None,
            signature=req.signature,
        )
        self._next_seq += 1
        self._seen[key] = rec
        self._count(code)
        effects = Effects(
            save_requests=[rec],
            audit=self._audit_pair(now, user_id, req, code, reason),
            send=[Send(user_id, reply)],
        )
        if accepted:
            effects.extend(self._execute(rec, now, admitted=True))
        effects.extend(notes)
        return effects

    def _busy(
        self,
        user_id: str,
        req: wire.ServiceRequest,
        reason: str,
        now: float,
        retry_after_s: float | None = None,
    ) -> Effects:
        """H8: nothing done, the request id not remembered; retry after a while."""
        self._count(ResponseCode.H8)
        busy = wire.Refusal(
            request_id=req.request_id,
            code=ResponseCode.H8,
            reason=reason[:1024],
            retry_after_s=retry_after_s if retry_after_s is not None else self.config.busy_retry_s,
        )
        return Effects(
            audit=self._audit_pair(now, user_id, req, ResponseCode.H8, reason),
            send=[Send(user_id, wire.encode(busy))],
        )

    # ---- anomaly detection and security monitoring -------------------------------------------

    def _quarantine(
        self, user_id: str, req: wire.ServiceRequest, reason: str, now: float
    ) -> Effects:
        decision = self.quarantine.hold(
            user_id, req.request_id, req, now, service=req.service, reason=reason
        )
        if not decision.held:
            return self._busy(user_id, req, decision.reason, now)
        self._count(ResponseCode.H7)
        text = f"{reason}; release or delete it (quarantine message)"
        refusal = wire.Refusal(
            request_id=req.request_id, code=ResponseCode.H7, reason=text[:1024], retry_after_s=None
        )
        return Effects(
            audit=self._audit_pair(now, user_id, req, ResponseCode.H7, reason),
            send=[Send(user_id, wire.encode(refusal))],
        )

    def on_quarantine_decision(
        self, user_id: str, msg: wire.QuarantineDecision, now: float
    ) -> Effects:
        """The user releases quarantined requests (each is then decided as if just received,
        without being counted again) or deletes them (each is answered H7 'deleted')."""
        effects = Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    user_id,
                    f"quarantine_{msg.action.value}",
                    reason=", ".join(msg.request_ids)[:1024],
                )
            ]
        )
        if msg.action is wire.QuarantineAction.RELEASE:
            removal = self.quarantine.release(user_id, msg.request_ids)
            for entry in removal.removed:
                effects.extend(self.on_request(user_id, entry.item, now, released=True))
            outcome = "deleted from quarantine at the user's request"
        else:
            removal = self.quarantine.delete(user_id, msg.request_ids)
            outcome = "deleted from quarantine at the user's request"
            for entry in removal.removed:
                effects.extend(
                    self._final_refusal(user_id, entry.request_id, ResponseCode.H7, outcome, now)
                )
        for rid in removal.unknown:
            effects.extend(
                self._final_refusal(
                    user_id, rid, ResponseCode.H7, "not held in quarantine for this user", now
                )
            )
        return effects

    def _final_refusal(
        self, user_id: str, request_id: str | None, code: ResponseCode, reason: str, now: float
    ) -> Effects:
        refusal = wire.Refusal(request_id=request_id, code=code, reason=reason, retry_after_s=None)
        return Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.OUT,
                    user_id,
                    "refusal",
                    request_id,
                    code=code.value,
                    reason=reason,
                )
            ],
            send=[Send(user_id, wire.encode(refusal))],
        )

    def on_set_thresholds(self, user_id: str, msg: wire.SetThresholds, now: float) -> Effects:
        """The user sets its own warning and quarantine thresholds for a service."""
        self.anomaly.set_user_thresholds(
            user_id, msg.service, Thresholds(msg.warning, msg.quarantine, msg.period_s)
        )
        return Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    user_id,
                    "thresholds",
                    service=msg.service,
                    reason=f"warning {msg.warning}, quarantine {msg.quarantine} per {msg.period_s:.0f} s",
                )
            ]
        )

    def on_handshake_refused(self, key: str, now: float) -> Effects:
        """The transport refused a CURVE handshake (unknown or suspended key)."""
        effects = Effects()
        self._security(self.security.on_handshake_refused(key, now), now, effects)
        return effects

    def _notify(self, notice: Notification, now: float) -> Effects:
        data: dict[str, Value] = {
            "service": notice.service,
            "count": notice.count,
            "text": notice.text,
        }
        code = HUB_ALERT_CODES[notice.kind]
        if notice.user_id is None:  # hub-wide: the operator's, recorded in the audit
            return Effects(
                audit=[
                    AuditRecord(
                        now,
                        Direction.OUT,
                        None,
                        "hub_alert",
                        service=notice.service,
                        code=code,
                        reason=notice.text,
                    )
                ]
            )
        return self.hub_alert(notice.user_id, code, data, now)

    def hub_alert(
        self, user_id: str, alert_code: str, data: dict[str, Value], now: float
    ) -> Effects:
        """Deliver a hub alert to a user through the outbox."""
        effects = Effects()
        self._deliver(
            effects,
            user_id,
            DeliveryKind.HUB_ALERT,
            lambda did: wire.HubAlert(
                delivery_id=did, alert_code=alert_code, raised_at=now, data=data
            ),
            now,
        )
        return effects

    def _deliver(
        self,
        effects: Effects,
        user_id: str,
        kind: DeliveryKind,
        message: Callable[[int], wire.DeliveryMessage],
        now: float,
        request_id: str | None = None,
    ) -> None:
        """Give a response or alert the next delivery id, hold it in the outbox for its user
        (persisted with the step) and push it at once if the user is online."""
        delivery_id = self._next_delivery
        self._next_delivery += 1
        payload = wire.encode(message(delivery_id))
        d = Delivery(
            delivery_id,
            user_id,
            kind,
            payload,
            now,
            now + self.config.hold_s,
            request_id=request_id,
        )
        effects.add_deliveries.append(d)
        self._pushes(self.outbox.add(d, now), effects, now)

    def _security(self, alerts: list[SecurityAlert], now: float, into: Effects) -> None:
        for alert in alerts:
            self.security_alerts.append(alert)
            self.counters["security_alert"] = self.counters.get("security_alert", 0) + 1
            record = AuditRecord(
                now,
                Direction.OUT,
                None,
                "security_alert",
                device_id=None,
                code=alert.kind.value,
                reason=f"{alert.subject}: {alert.reason}"[:1024],
            )
            into.audit.append(record)

    def _audit_pair(
        self, now: float, user_id: str, req: wire.ServiceRequest, code: ResponseCode, reason: str
    ) -> list[AuditRecord]:
        kind = "acknowledgement" if code is ResponseCode.I99 else "refusal"
        return [
            AuditRecord(
                now,
                Direction.IN,
                user_id,
                "service_request",
                req.request_id,
                req.service,
                req.device_id,
            ),
            AuditRecord(
                now,
                Direction.OUT,
                user_id,
                kind,
                req.request_id,
                req.service,
                req.device_id,
                code.value,
                reason,
            ),
        ]

    def _resubmission(
        self, seen: RequestRecord, fingerprint: bytes, req: wire.ServiceRequest, now: float
    ) -> Effects:
        if seen.fingerprint != fingerprint:
            reason = f"request id {req.request_id} was already used for a different request"
            self._count(ResponseCode.H4)
            refusal = wire.Refusal(
                request_id=req.request_id, code=ResponseCode.H4, reason=reason, retry_after_s=None
            )
            return Effects(
                audit=self._audit_pair(now, seen.user_id, req, ResponseCode.H4, reason),
                send=[Send(seen.user_id, wire.encode(refusal))],
            )
        # same request again: the same answer, executed once
        return Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    seen.user_id,
                    "service_request",
                    req.request_id,
                    req.service,
                    req.device_id,
                    reason="resubmission",
                ),
                AuditRecord(
                    now,
                    Direction.OUT,
                    seen.user_id,
                    "repeat",
                    req.request_id,
                    req.service,
                    req.device_id,
                    reason="resubmission",
                ),
            ],
            send=[Send(seen.user_id, seen.reply)],
        )

    def _check(
        self, user_id: str, req: wire.ServiceRequest, now: float
    ) -> tuple[ResponseCode, str, Service | None]:
        service = self.access.catalogue.get(req.service)
        execute_at = req.execute_at if req.execute_at is not None else now
        decision = self.access.decide(
            AccessRequest(user_id, req.role, req.service, req.device_id, _dt(execute_at))
        )
        if not decision.accepted or service is None:
            return decision.code, decision.reason, service
        if not executable(service):
            return (
                ResponseCode.H9,
                f"{service.code} ({service.name}) is not executable by this release",
                service,
            )
        if service.code in SCHEDULE_SERVICES:
            return self._check_schedule(user_id, req, now, service)
        if service.code in FIRMWARE_SERVICES:
            problems = validate_update(req.params)
            if req.device_id is None:
                problems.append(f"{service.code} needs a target device")
            if problems:
                return ResponseCode.E12, "; ".join(problems), service
            target = self.access.inventory.device(req.device_id or "")
            ppmid = target is not None and target.device_type is DeviceType.PPMID
            if target is not None and (
                ppmid != (service.code == "11.4") or target.device_type is DeviceType.IHD
            ):
                return (
                    ResponseCode.E11,
                    f"{service.code} does not apply to a {target.device_type.value}",
                    service,
                )
            return decision.code, decision.reason, service
        if service.non_device:
            if req.device_id is None:
                return ResponseCode.E12, f"{service.code} needs a target device", service
        else:
            problems = validate_params(service.code, req.params)
            if problems:
                return ResponseCode.E12, "; ".join(problems), service
            if req.execute_at is not None and req.execute_at > now:
                if service.future_dated in (FutureDated.NONE,):
                    return ResponseCode.E12, f"{service.code} cannot be future dated", service
            elif not service.on_demand:
                return ResponseCode.E12, f"{service.code} cannot be sent on demand", service
            if service.critical and not req.signature:
                return ResponseCode.E12, f"{service.code} is critical and must be signed", service
            device = self.access.inventory.device(req.device_id or "")
            if device is not None:
                hub_id = self.access.inventory.sites[device.site_id].comms_hub
                if self._per_hub.get(hub_id, 0) >= self.config.max_per_comms_hub:
                    return (
                        ResponseCode.H8,
                        f"comms hub {hub_id} has {self.config.max_per_comms_hub} commands queued",
                        service,
                    )
            if len(self._pending) >= self.config.max_pending:
                return ResponseCode.H8, f"{len(self._pending)} requests in progress", service
        return decision.code, decision.reason, service

    def _execute(self, rec: RequestRecord, now: float, admitted: bool = False) -> Effects:
        """Carry out an accepted request: answer a non-device service, hold a DSP future-dated
        one, or queue its command with traffic management (``admitted``: a place was reserved
        by admission; otherwise it was accepted earlier and is queued regardless of bounds)."""
        service = self.access.catalogue[rec.service]
        if service.code in SCHEDULE_SERVICES:
            return self._schedule_service(rec, now)
        if service.code in FIRMWARE_SERVICES:
            return self._start_transfer(rec, now, admitted)
        if service.non_device:
            device = self.access.inventory.device(rec.device_id or "")
            if device is None:
                return self._respond(
                    rec, ResponseCode.E19, {"reason": f"device {rec.device_id} not found"}, now
                )
            return self._respond(
                rec, ResponseCode.I0, HANDLERS[rec.service](self.access.inventory, device), now
            )
        assert rec.comms_hub is not None
        assert rec.head_end is not None
        assert rec.device_id is not None
        future = rec.execute_at is not None and rec.execute_at > now
        if future and self._pattern(rec) is FutureDated.DSP:
            assert rec.execute_at is not None
            if admitted:
                self.traffic.release(self._priority(service, rec.execute_at, rec.received_at))
            heapq.heappush(self._held, (rec.execute_at, rec.seq))
            self._by_seq[rec.seq] = rec
            return Effects()
        self._pending[rec.seq] = rec
        self._per_hub[rec.comms_hub] = self._per_hub.get(rec.comms_hub, 0) + 1
        if future:
            assert rec.execute_at is not None
            self._by_seq[rec.seq] = rec
            self._await_outcome(rec.seq, rec.execute_at + self.config.outcome_timeout_s)
        command = DeviceCommand(
            command_id=str(rec.seq),
            service=rec.service,
            device_id=rec.device_id,
            params=rec.params,
            execute_at=rec.execute_at if future else None,
            signature=rec.signature,
        )
        priority = (
            PriorityClass.BULK
            if rec.scheduled
            else self._priority(service, rec.execute_at, rec.received_at)
        )
        dispatch = Dispatch(command, rec.head_end, rec.comms_hub, int(priority))
        device = self.access.inventory.devices[rec.device_id]
        cell = self.access.inventory.sites[device.site_id].cell
        size = self.config.traffic.size_of(rec.service)
        if admitted:
            self.traffic.offer(dispatch, priority, cell, size, now)
        else:
            self.traffic.restore(dispatch, priority, cell, size, now)
        return Effects(dispatch=[] if self.config.batch_release else self._ready(now))

    def release(self, now: float) -> Effects:
        """Commands traffic management lets start now (drivers with ``batch_release`` call
        this once after a batch of steps instead of once per command)."""
        return Effects(dispatch=self._ready(now))

    def _ready(self, now: float) -> list[Dispatch]:
        """Commands traffic management lets start now; their response clock starts here."""
        ready = self.traffic.ready(now)
        for d in ready:
            seq = _seq_of(d.command.command_id)
            assert seq is not None, d.command.command_id  # the engine made the id
            self._dispatched_at[seq] = now
        return ready

    # ---- DCC schedules (5.1, 5.2, 5.3) and their firings ---------------------------------------

    def _check_schedule(
        self, user_id: str, req: wire.ServiceRequest, now: float, service: Service
    ) -> tuple[ResponseCode, str, Service | None]:
        validate = {"5.1": validate_create, "5.2": validate_read, "5.3": validate_delete}[
            service.code
        ]
        problems = validate(req.params)
        if problems:
            return ResponseCode.E12, "; ".join(problems), service
        if service.code == "5.1":
            spec = parse_create(req.params)
            decision = self.access.decide(
                AccessRequest(user_id, req.role, spec.service, spec.device_id, _dt(now))
            )
            if not decision.accepted:
                return (
                    decision.code,
                    f"the scheduled service would be refused: {decision.reason}",
                    service,
                )
        return ResponseCode.I99, "accepted", service

    def _schedule_service(self, rec: RequestRecord, now: float) -> Effects:
        params = rec.params
        if rec.service == "5.1":
            try:
                schedule = self.scheduler.create(
                    rec.user_id, Role(rec.role), parse_create(params), now
                )
            except ScheduleError as err:
                return self._respond(rec, ResponseCode.E12, {"reason": str(err)}, now)
            effects = self._respond(
                rec,
                ResponseCode.I0,
                {
                    "schedule_id": schedule.schedule_id,
                    "first_firing_at": self.scheduler.fire_at(schedule),
                },
                now,
            )
            effects.save_schedules.append(schedule)
            return effects
        if rec.service == "5.2":
            sid = params.get("schedule_id")
            found = self.scheduler.read(rec.user_id, sid if isinstance(sid, str) else None)
            body: dict[str, Value] = {
                "schedules": [
                    {**s.to_record(), "next_firing_at": self.scheduler.fire_at(s)} for s in found
                ]
            }
            return self._respond(rec, ResponseCode.I0, body, now)
        sid = params.get("schedule_id")
        result = self.scheduler.delete(rec.user_id, sid if isinstance(sid, str) else "")
        if not result.ok:
            return self._respond(rec, ResponseCode.E12, {"reason": result.reason}, now)
        effects = self._respond(
            rec, ResponseCode.I0, {"schedule_id": str(sid), "deleted": True}, now
        )
        effects.delete_schedules.append(str(sid))
        return effects

    def _fire(self, f: Firing, now: float) -> Effects:
        """Run one firing as the schedule's owner, with access checked again now; a firing the
        owner no longer has a relation for (change of supplier) stops the schedule, and the
        owner is told."""
        effects = Effects()
        schedule = self.scheduler.get(f.schedule_id)
        if schedule is not None:
            effects.save_schedules.append(schedule)
        elif f.final:
            effects.delete_schedules.append(f.schedule_id)
        request_id = f"{f.schedule_id}:{f.index}"  # unique per firing; ':' is a wire id character
        key = (f.owner, request_id)
        if key in self._seen:
            return effects  # already run (for example restored after a restart)
        req = wire.ServiceRequest(
            request_id=request_id,
            role=f.role,
            service=f.service,
            device_id=f.device_id,
            params=dict(f.params),
        )
        decision = self.access.decide(
            AccessRequest(f.owner, f.role, f.service, f.device_id, _dt(now))
        )
        rec = RequestRecord(
            seq=self._next_seq,
            user_id=f.owner,
            request_id=request_id,
            fingerprint=wire.request_fingerprint(req),
            service=f.service,
            role=f.role.value,
            device_id=f.device_id,
            params=dict(f.params),
            execute_at=f.fire_at,
            received_at=now,
            state=RequestState.ACCEPTED,
            reply=b"",
            scheduled=True,
        )
        self._next_seq += 1
        self._seen[key] = rec
        effects.save_requests.append(rec)
        effects.audit.append(
            AuditRecord(
                now,
                Direction.IN,
                f.owner,
                "schedule_firing",
                request_id,
                f.service,
                f.device_id,
                decision.code.value,
                decision.reason,
            )
        )
        if not decision.accepted:
            body: dict[str, Value] = {"reason": decision.reason, "schedule_id": f.schedule_id}
            if decision.code is ResponseCode.E4:
                stopped = self.scheduler.stop_for_device(f.device_id, f.owner, decision.reason)
                gone = {s.schedule.schedule_id for s in stopped}
                effects.delete_schedules.extend(sorted(gone))
                effects.save_schedules = [
                    s for s in effects.save_schedules if s.schedule_id not in gone
                ]
                body["schedule_stopped"] = True
            effects.extend(self._respond(rec, decision.code, body, now))
            return effects
        device = self.access.inventory.device(f.device_id)
        assert device is not None
        rec.comms_hub = self.access.inventory.sites[device.site_id].comms_hub
        rec.head_end = device.head_end
        admission = self.traffic.admit(f.owner, PriorityClass.BULK, now)
        if isinstance(admission, Busy):
            reason = f"firing skipped, hub busy: {admission.detail}"
            effects.extend(self._respond(rec, ResponseCode.H8, {"reason": reason}, now))
            return effects
        effects.extend(self._execute(rec, now, admitted=True))
        return effects

    # ---- firmware distribution (11.1, 11.4) -------------------------------------------------------

    def _start_transfer(self, rec: RequestRecord, now: float, admitted: bool) -> Effects:
        """Start (or, after a restart, resume) carrying an image to the device in blocks."""
        assert rec.device_id is not None
        assert rec.comms_hub is not None
        version, size = rec.params["version"], rec.params["image_size"]
        assert isinstance(version, str)
        assert isinstance(size, int)
        transfer = Transfer(rec.seq, rec.device_id, version, size, self._resume.pop(rec.seq, 0))
        self._transfers[rec.seq] = transfer
        self._pending[rec.seq] = rec
        self._per_hub[rec.comms_hub] = self._per_hub.get(rec.comms_hub, 0) + 1
        return self._send_block(rec, transfer, now, admitted)

    def _send_block(
        self, rec: RequestRecord, transfer: Transfer, now: float, admitted: bool
    ) -> Effects:
        assert rec.comms_hub is not None
        assert rec.head_end is not None
        params = transfer.block_params()
        command = DeviceCommand(transfer.command_id(), rec.service, transfer.device_id, params)
        dispatch = Dispatch(command, rec.head_end, rec.comms_hub, int(PriorityClass.BULK))
        device = self.access.inventory.devices[transfer.device_id]
        cell = self.access.inventory.sites[device.site_id].cell
        data = params["data"]
        size = len(data) if isinstance(data, bytes) else 0
        if admitted:
            self.traffic.offer(dispatch, PriorityClass.BULK, cell, size, now)
        else:
            self.traffic.restore(dispatch, PriorityClass.BULK, cell, size, now)
        return Effects(dispatch=[] if self.config.batch_release else self._ready(now))

    def _block_answered(self, seq: int, resp: DeviceResponse, now: float) -> Effects:
        transfer = self._transfers.get(seq)
        rec = self._pending.get(seq)
        if transfer is None or rec is None:
            return Effects()
        if resp.status is CommandStatus.REJECTED:
            self._pending_for(str(seq))
            return self._respond(
                rec, ResponseCode.H11, {"reason": resp.reason, "block": transfer.next_block}, now
            )
        transfer.next_block += 1
        progress = Effects(save_transfers=[(seq, transfer.next_block)])
        self._dispatched_at.pop(seq, None)
        if transfer.done:
            self._pending_for(str(seq))
            body: dict[str, Value] = {
                "version": transfer.version,
                "blocks": transfer.blocks,
                "image_size": transfer.image_size,
            }
            progress.extend(self._respond(rec, ResponseCode.I0, body, now))
            return progress
        progress.extend(self._send_block(rec, transfer, now, admitted=False))
        return progress

    def _priority(
        self, service: Service, execute_at: float | None, received_at: float
    ) -> PriorityClass:
        """Traffic class: the catalogue's, except that diarised work (future dated when
        received) travels as bulk, so a tariff change for a million meters never starves
        on-demand traffic."""
        if (
            execute_at is not None
            and execute_at > received_at
            and service.priority is not PriorityClass.URGENT
        ):
            return PriorityClass.BULK
        return service.priority

    def _cos_sweep(self, now: float) -> Effects:
        """On each new UK day, check every schedule and held future-dated request against the
        registers, a slice per tick: a change of supplier effective today stops the losing
        supplier's ones there and then, and tells it (schedules with a SCHEDULE_STOPPED hub
        alert, held requests with an E4 response)."""
        day = uk_date(_dt(now))
        if day != self._swept_day:
            self._swept_day = day
            self._sweep = [*self.scheduler.ids(), *sorted(self._by_seq)]
        effects = Effects()
        batch, self._sweep = (
            self._sweep[: self.config.sweep_per_tick],
            self._sweep[self.config.sweep_per_tick :],
        )
        for item in batch:
            if isinstance(item, str):
                schedule = self.scheduler.get(item)
                if schedule is None:
                    continue
                spec = schedule.spec
                decision = self.access.decide(
                    AccessRequest(
                        schedule.owner, schedule.role, spec.service, spec.device_id, _dt(now)
                    )
                )
                if decision.code is not ResponseCode.E4:
                    continue
                for stopped in self.scheduler.stop_for_device(
                    spec.device_id, schedule.owner, decision.reason
                ):
                    sid = stopped.schedule.schedule_id
                    effects.delete_schedules.append(sid)
                    effects.extend(
                        self.hub_alert(
                            schedule.owner,
                            "SCHEDULE_STOPPED",
                            {"schedule_id": sid, "reason": decision.reason},
                            now,
                        )
                    )
                continue
            rec = self._by_seq.get(item)
            if (
                rec is None
                or rec.state is not RequestState.ACCEPTED
                or rec.execute_at is None
                or item in self._pending
            ):
                continue  # only requests the hub itself is holding
            decision = self.access.decide(
                AccessRequest(
                    rec.user_id, Role(rec.role), rec.service, rec.device_id, _dt(rec.execute_at)
                )
            )
            if decision.code is ResponseCode.E4:
                del self._by_seq[item]  # its heap entry is skipped when it comes due
                effects.extend(
                    self._respond(
                        rec, decision.code, {"reason": f"stopped: {decision.reason}"}, now
                    )
                )
        return effects

    def _await_outcome(self, seq: int, deadline: float) -> None:
        self._outcomes[str(seq)] = (seq, deadline)
        heapq.heappush(self._outcome_deadlines, (deadline, str(seq)))

    def _pattern(self, rec: RequestRecord) -> FutureDated:
        """How this request's future dating is carried out: the hub holds DSP requests; the
        device acts on Device ones (a service allowing both uses the device)."""
        fd = self.access.catalogue[rec.service].future_dated
        return FutureDated.DEVICE if fd is FutureDated.DSP_AND_DEVICE else fd

    def _release(self, rec: RequestRecord, now: float) -> Effects:
        """A held DSP request's time has come: check access again on the execution day (a
        change of supplier since it was accepted stops it, and the user is told), then send."""
        role = Role(rec.role)
        decision = self.access.decide(
            AccessRequest(rec.user_id, role, rec.service, rec.device_id, _dt(now))
        )
        if not decision.accepted:
            return self._respond(
                rec, decision.code, {"reason": f"stopped at execution: {decision.reason}"}, now
            )
        return self._execute(rec, now)

    # ---- messages from devices -----------------------------------------------------------

    def on_device_response(self, resp: DeviceResponse, now: float) -> Effects:
        """A head-end decoded a device's response to one of our commands."""
        block = parse_block_command_id(resp.command_id)
        if block is not None and block[0] in self._transfers:
            return self._block_answered(block[0], resp, now)
        rec = self._pending_for(resp.command_id)
        if rec is None:
            self.counters["unknown_uplink"] = self.counters.get("unknown_uplink", 0) + 1
            effects = Effects(
                audit=[
                    AuditRecord(
                        now,
                        Direction.IN,
                        None,
                        "unsolicited_response",
                        device_id=resp.device_id,
                        reason=f"no command {resp.command_id} pending",
                    )
                ]
            )
            self._security(self.security.on_unsolicited_response(resp.device_id, now), now, effects)
            return effects
        if resp.status is CommandStatus.REJECTED:
            return self._respond(rec, ResponseCode.H11, {"reason": resp.reason, **resp.body}, now)
        body = dict(resp.body)
        if resp.status is CommandStatus.SCHEDULED:
            body.setdefault("scheduled_for", rec.execute_at)
        return self._respond(rec, ResponseCode.I0, body, now)

    def on_device_failure(
        self, command_id: str, code: ResponseCode, reason: str, now: float
    ) -> Effects:
        """The comms hub could not reach the device (E20) or it never answered (E21)."""
        rec = self._pending_for(command_id)
        if rec is None:
            return Effects()
        return self._respond(rec, code, {"reason": reason}, now)

    def _pending_for(self, command_id: str) -> RequestRecord | None:
        seq = _seq_of(command_id)
        if seq is None:
            return None
        self._transfers.pop(seq, None)
        rec = self._pending.pop(seq, None)
        self._dispatched_at.pop(seq, None)
        if rec is not None and rec.comms_hub is not None:
            left = self._per_hub.get(rec.comms_hub, 1) - 1
            if left:
                self._per_hub[rec.comms_hub] = left
            else:
                self._per_hub.pop(rec.comms_hub, None)
        return rec

    def _respond(
        self, rec: RequestRecord, code: ResponseCode, body: dict[str, Value], now: float
    ) -> Effects:
        rec.state = RequestState.COMPLETED
        self._count(code, prefix="response:")
        future = rec.execute_at is not None and rec.execute_at > rec.received_at
        started = rec.execute_at if future and rec.execute_at is not None else rec.received_at
        target = self.access.catalogue[rec.service].target_response_s
        sla = SlaRecord(rec.service, rec.user_id, started, now, target, code.value)
        effects = Effects(complete_requests=[rec.seq], sla=[sla])
        self._deliver(
            effects,
            rec.user_id,
            DeliveryKind.RESPONSE,
            lambda did: wire.ServiceResponse(
                delivery_id=did,
                request_id=rec.request_id,
                service=rec.service,
                device_id=rec.device_id,
                code=code,
                body=body,
                responded_at=now,
            ),
            now,
            rec.request_id,
        )
        return effects

    def on_device_alert(self, alert: DeviceAlert, now: float) -> Effects:
        """Route a device alert to every user entitled to it, through the outbox."""
        device = self.access.inventory.device(alert.device_id)
        if device is None:
            self.counters["unknown_uplink"] = self.counters.get("unknown_uplink", 0) + 1
            return Effects(
                audit=[
                    AuditRecord(
                        now,
                        Direction.IN,
                        None,
                        "device_alert",
                        device_id=alert.device_id,
                        code=alert.alert_code,
                        reason="device not in inventory",
                    )
                ]
            )
        mps = self.access.meter_points_of(device)
        cmd = alert.data.get("command_id")
        originator = None
        if isinstance(cmd, str) and alert.alert_code in ("8F66", "8F67") and cmd in self._outcomes:
            seq, _ = self._outcomes.pop(cmd)
            awaited = self._by_seq.pop(seq, None)
            originator = awaited.user_id if awaited else None
        users = recipients(
            alert.alert_code, mps, uk_date(_dt(alert.raised_at)), self.parties, originator
        )
        effects = Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    None,
                    "device_alert",
                    device_id=alert.device_id,
                    code=alert.alert_code,
                )
            ]
        )
        mpxn = mps[0].mpxn if mps else None
        data = dict(alert.data)
        for user_id in users:
            self._deliver(
                effects,
                user_id,
                DeliveryKind.DEVICE_ALERT,
                lambda did: wire.DeviceAlertNotice(
                    delivery_id=did,
                    device_id=alert.device_id,
                    alert_code=alert.alert_code,
                    raised_at=alert.raised_at,
                    data=data,
                    mpxn=mpxn,
                ),
                now,
            )
        return effects

    def on_integrity_failure(
        self, comms_hub: str, head_end: str, reason: str, now: float
    ) -> Effects:
        """A frame from a comms hub failed its head-end's integrity check: audit and count it
        (the command it may have answered times out with E21)."""
        self.counters["integrity_failure"] = self.counters.get("integrity_failure", 0) + 1
        effects = Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    None,
                    "integrity_failure",
                    device_id=comms_hub,
                    reason=f"{head_end}: {reason}",
                )
            ]
        )
        self._security(self.security.on_integrity_failure(comms_hub, now, reason), now, effects)
        return effects

    # ---- time ------------------------------------------------------------------------------

    def tick(self, now: float) -> Effects:
        """Retry unacknowledged pushes, expire what outlived its hold, forget old request ids."""
        pushes, expired = self.outbox.tick(now)
        effects = Effects(expired=len(expired))
        for e in expired:
            d = e.delivery
            effects.remove_deliveries.append(d.delivery_id)
            effects.audit.append(
                AuditRecord(
                    now,
                    Direction.OUT,
                    d.user_id,
                    d.kind.value,
                    d.request_id,
                    code=ResponseCode.H10.value,
                    reason=f"expired after {self.config.hold_s:.0f} s undelivered, {d.attempts} attempts",
                    delivery_id=d.delivery_id,
                )
            )
        self._pushes(pushes, effects, now)
        deadline = now - self.config.response_timeout_s
        while self._dispatched_at:
            seq, at = next(iter(self._dispatched_at.items()))
            if at > deadline:
                break
            effects.extend(
                self.on_device_failure(
                    str(seq),
                    ResponseCode.E21,
                    f"no response within {self.config.response_timeout_s:.0f} s",
                    now,
                )
            )
        while self._held and self._held[0][0] <= now:
            _, seq = heapq.heappop(self._held)
            held = self._by_seq.pop(seq, None)
            if held is not None:
                effects.extend(self._release(held, now))
        while self._outcome_deadlines and self._outcome_deadlines[0][0] <= now:
            _, cmd = heapq.heappop(self._outcome_deadlines)
            awaiting = self._outcomes.pop(cmd, None)
            if awaiting is not None:  # (not already answered by its 8F66 / 8F67)
                awaited = self._by_seq.pop(awaiting[0], None)
                if awaited is not None:
                    reason = f"no 8F66 / 8F67 outcome within {self.config.outcome_timeout_s:.0f} s of the execution time"
                    effects.extend(
                        self._respond(awaited, ResponseCode.E30, {"reason": reason}, now)
                    )
        effects.extend(self._cos_sweep(now))
        for firing in self.scheduler.due(now):
            effects.extend(self._fire(firing, now))
        effects.dispatch += self._ready(now)
        for notice in self.quarantine.due_notifications(now):
            effects.extend(self._notify(notice, now))
        for entry in self.quarantine.expire(now, self.config.quarantine_hold_s):
            effects.extend(
                self._final_refusal(
                    entry.user_id,
                    entry.request_id,
                    ResponseCode.H7,
                    f"not released within {self.config.quarantine_hold_s:.0f} s; deleted",
                    now,
                )
            )
        if now >= self._next_forget:  # idle counters: a sweep a minute is plenty
            self.anomaly.forget_idle(now)
            self.security.forget_idle(now)
            self._next_forget = now + 60.0
        horizon = now - self.config.idempotency_s
        while self._seen:
            key, rec = next(iter(self._seen.items()))
            if rec.received_at >= horizon and len(self._seen) <= self.config.idempotency_max:
                break
            if rec.received_at >= horizon:
                self.counters["forgotten_early"] = self.counters.get("forgotten_early", 0) + 1
            del self._seen[key]
        return effects

    def _pushes(self, pushes: list[Push], effects: Effects, now: float) -> None:
        for p in pushes:
            d = p.delivery
            effects.send.append(Send(d.user_id, d.payload, push=True))
            effects.audit.append(
                AuditRecord(
                    now,
                    Direction.OUT,
                    d.user_id,
                    d.kind.value,
                    d.request_id,
                    delivery_id=d.delivery_id,
                    reason=f"attempt {d.attempts}",
                )
            )

    def _count(self, code: ResponseCode, prefix: str = "") -> None:
        key = prefix + code.value
        self.counters[key] = self.counters.get(key, 0) + 1

    @property
    def next_seq(self) -> int:
        """The sequence number the next request will get (persisted as a high-water mark)."""
        return self._next_seq

    @property
    def next_delivery(self) -> int:
        """The delivery id the next delivery will get (persisted as a high-water mark)."""
        return self._next_delivery

    @property
    def pending(self) -> int:
        """Accepted requests awaiting a device response."""
        return len(self._pending)

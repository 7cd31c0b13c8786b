"""Delivery decisions of the engine: responses, device alerts and hub alerts held in the outbox
for their users, pushed, acknowledged, retried and expired; and the engine state every part
of it shares.

Decides: the delivery id and hold time of each response and alert, who receives a device
alert (the entitled parties, and the sender of a Device-pattern command its outcome), what a
Hello, an acknowledgement and an unreachable user do to the outbox, and how each is audited.
Must never: send anything itself (it returns ``Effects``), or read a clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from hub import wire
from hub.engine.config import EngineConfig
from hub.engine.containment import contained
from hub.engine.effects import AuditKind, AuditRecord, Direction, Dispatch, Effects, Send
from hub.engine.lifecycle import RequestEvent, RequestIndex, RequestRecord, RequestState
from hub.engine.outbox import Delivery, DeliveryKind, Outbox, Push
from hub.flows.service_flow import ServiceFlow
from hub.policies.access import AccessContext
from hub.policies.alert_routing import PartyIndex, recipients
from hub.policies.anomaly import (
    AnomalyConfig,
    AnomalyDetector,
    NoticeKind,
    Notification,
    Quarantine,
)
from hub.policies.security import SecurityAlert, SecurityMonitor
from hub.policies.sla import SlaRecord
from hub.policies.traffic import TrafficManager
from hub.reference.catalogue import PriorityClass
from hub.reference.codes import ResponseCode
from hub.reference.standard import DeviceAlert, Value
from hub.reference.text import bounded
from hub.reference.uktime import uk_date

HUB_ALERT_CODES: dict[NoticeKind, str] = {
    NoticeKind.WARNING: "ANOMALY_WARNING",
    NoticeKind.QUARANTINED: "QUARANTINED",
}
"""Hub alert codes of anomaly notices (documented in docs/protocol.md)."""

OUTCOME_ALERTS = frozenset({"8F66", "8F67"})
"""Device alerts that report the outcome of a Device-pattern future-dated command."""


def dt(instant: float) -> datetime:
    """An instant as an aware UTC datetime."""
    return datetime.fromtimestamp(instant, UTC)


class DeliveryEngine:
    """The engine's shared state and its delivery decisions."""

    def __init__(self, access: AccessContext, config: EngineConfig | None = None) -> None:
        self.access = access
        self.config = config or EngineConfig()
        self.outbox = Outbox(self.config.hold_s, self.config.retry_s, self.config.max_in_flight)
        self.parties = PartyIndex.build(access.users.values())
        self.index = RequestIndex()
        """Every request the engine remembers, by its state."""
        self.anomaly = AnomalyDetector(
            self.config.anomaly or AnomalyConfig.for_services(access.catalogue.services())
        )
        self.quarantine: Quarantine[wire.ServiceRequest] = Quarantine()
        self.traffic: TrafficManager[Dispatch] = TrafficManager(self.config.traffic)
        self.security = SecurityMonitor()
        self.security_alerts: deque[SecurityAlert] = deque(maxlen=1000)
        """The most recent security alerts (also audited)."""
        self._flows: dict[str, ServiceFlow] = {}  # by service code; filled by the engine
        self._next_seq = 1
        self._next_delivery = 1
        self.counters: dict[str, int] = {}
        """Outcome counts by code, and 'unknown_uplink', for reports."""
        self._in_step = False  # inside a guarded step (hub.engine.containment)
        self._reserved_places: list[PriorityClass] = []  # traffic places the step holds
        self._withdrawn: set[int] = set()  # seqs of undone requests whose commands are queued

    def new_seq(self) -> int:
        """Take the next request sequence number."""
        seq = self._next_seq
        self._next_seq += 1
        return seq

    # ---- users online, acknowledging -------------------------------------------------------

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
                AuditRecord(now, Direction.IN, user_id, AuditKind.HELLO),
                AuditRecord(now, Direction.OUT, user_id, AuditKind.WELCOME),
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
                    AuditKind.DELIVERY_ACK,
                    d.request_id,
                    delivery_id=d.delivery_id,
                )
                for d in done
            ],
        )
        self._pushes(pushes, effects, now)
        return effects

    # ---- responses and alerts ------------------------------------------------------------

    def respond(
        self, rec: RequestRecord, code: ResponseCode, body: dict[str, Value], now: float
    ) -> Effects:
        """Answer a request: move it on in its lifecycle, record its SLA, and hold its
        response for its user (built first, then the request moved, so a failure changes
        nothing the undo of its step cannot take back)."""
        event = self.index.answer_event(rec, code)
        future = rec.execute_at is not None and rec.execute_at > rec.received_at
        started = rec.execute_at if future and rec.execute_at is not None else rec.received_at
        target = self.access.catalogue[rec.service].target_response_s
        sla = SlaRecord(rec.service, rec.user_id, started, now, target, code.value)
        effects = Effects(sla=[sla])
        if event is RequestEvent.ANSWER_BEFORE_OUTCOME:
            effects.await_requests.append(rec.seq)
        else:
            effects.complete_requests.append(rec.seq)
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
        self.index.move(rec, event)
        flow = self._flows.get(rec.service)
        if flow is not None:
            flow.forget(rec.seq)
        self._count(code, prefix="response:")
        return effects

    @contained("on_device_alert")
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
                        AuditKind.DEVICE_ALERT,
                        device_id=alert.device_id,
                        code=alert.alert_code,
                        reason="device not in inventory",
                    )
                ]
            )
        mps = self.access.meter_points_of(device)
        cmd = alert.data.get("command_id")
        originator = None
        completed: list[int] = []
        if isinstance(cmd, str) and alert.alert_code in OUTCOME_ALERTS and cmd.isdigit():
            awaited = self.index.outcome_arrived(int(cmd))
            originator = awaited.user_id if awaited else None
            if awaited is not None and awaited.state is RequestState.COMPLETED:
                completed.append(awaited.seq)  # it awaited only this: stored completed now
        users = recipients(
            alert.alert_code, mps, uk_date(dt(alert.raised_at)), self.parties, originator
        )
        effects = Effects(
            complete_requests=completed,
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    None,
                    AuditKind.DEVICE_ALERT,
                    device_id=alert.device_id,
                    code=alert.alert_code,
                )
            ],
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

    def _notify(self, notice: Notification, now: float) -> Effects:
        data: dict[str, Value] = {
            "service": notice.service,
            "count": notice.count,
            "text": bounded(notice.text),
        }
        code = HUB_ALERT_CODES[notice.kind]
        if notice.user_id is None:  # hub-wide: the operator's, recorded in the audit
            return Effects(
                audit=[
                    AuditRecord(
                        now,
                        Direction.OUT,
                        None,
                        AuditKind.HUB_ALERT,
                        service=notice.service,
                        code=code,
                        reason=bounded(notice.text),
                    )
                ]
            )
        return self.hub_alert(notice.user_id, code, data, now)

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
        self._pushes(self.outbox.add(d.held, now), effects, now, d)

    def _pushes(
        self, pushes: list[Push], effects: Effects, now: float, new: Delivery | None = None
    ) -> None:
        """Send each push (with its payload when it is the ``new`` delivery just made; any
        other is filled in by the driver from its cache or store) and audit it."""
        for p in pushes:
            d = p.delivery
            payload = new.payload if new is not None and new.delivery_id == d.delivery_id else b""
            effects.send.append(Send(d.user_id, payload, push=True, delivery_id=d.delivery_id))
            effects.audit.append(
                AuditRecord(
                    now,
                    Direction.OUT,
                    d.user_id,
                    AuditKind(d.kind.value),
                    d.request_id,
                    delivery_id=d.delivery_id,
                    reason=f"attempt {d.attempts}",
                )
            )

    def _tick_outbox(self, now: float) -> Effects:
        """Retry unacknowledged pushes and expire what outlived its hold (audited H10)."""
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
                    AuditKind(d.kind.value),
                    d.request_id,
                    code=ResponseCode.H10.value,
                    reason=f"expired after {self.config.hold_s:.0f} s undelivered, {d.attempts} attempts",
                    delivery_id=d.delivery_id,
                )
            )
        self._pushes(pushes, effects, now)
        return effects

    # ---- refusals, security, counts ---------------------------------------------------------

    def _final_refusal(
        self, user_id: str, request_id: str | None, code: ResponseCode, reason: str, now: float
    ) -> Effects:
        reason = bounded(reason)
        refusal = wire.Refusal(request_id=request_id, code=code, reason=reason, retry_after_s=None)
        return Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.OUT,
                    user_id,
                    AuditKind.REFUSAL,
                    request_id,
                    code=code.value,
                    reason=reason,
                )
            ],
            send=[Send(user_id, wire.encode(refusal))],
        )

    def _security(self, alerts: list[SecurityAlert], now: float, into: Effects) -> None:
        for alert in alerts:
            self.security_alerts.append(alert)
            self.counters["security_alert"] = self.counters.get("security_alert", 0) + 1
            record = AuditRecord(
                now,
                Direction.OUT,
                None,
                AuditKind.SECURITY_ALERT,
                device_id=None,
                code=alert.kind.value,
                reason=bounded(f"{alert.subject}: {alert.reason}"),
            )
            into.audit.append(record)

    def _count(self, code: ResponseCode, prefix: str = "") -> None:
        key = prefix + code.value
        self.counters[key] = self.counters.get(key, 0) + 1

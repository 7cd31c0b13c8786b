"""The engine's gatekeeping: frames and transport events that are not service requests to
decide on their merits.

Decides: the ingress lane of a frame at a glance (``triage``); the cheap H8 for a request
that waited past the answer bound (``on_overdue``); the E1 refusal of any frame on a
connection whose key was revoked; the audit of refused handshakes and of keys registered or
revoked on a running hub; the audit of a storage outage once it is over; a user's own anomaly
thresholds; and how a frame refused before it is decided is answered and audited
(``_refuse_frame``).
Must never: decide a service request (the pipeline does), read a clock or touch a socket.
"""

from __future__ import annotations

from hub import wire
from hub.engine.containment import contained
from hub.engine.delivery import DeliveryEngine
from hub.engine.effects import AuditKind, AuditRecord, Direction, Effects, Send
from hub.engine.ingress import Lane, Peek, lane_for, peek
from hub.policies.anomaly import Thresholds
from hub.reference.codes import ResponseCode
from hub.reference.text import bounded

STORAGE_ALERT = "STORAGE_UNAVAILABLE"
"""Code of the hub alert audited once the store works again after an outage."""


class Gatekeeping(DeliveryEngine):
    """What the engine answers before (or instead of) deciding a request."""

    def triage(self, frame: bytes) -> tuple[Peek, Lane]:
        """What a frame is at a glance and the ingress lane it waits in: control messages
        (and frames that cannot be read) first, then requests by their service's class."""
        seen = peek(frame)
        if seen.kind != "service_request":
            return seen, Lane.CONTROL
        service = self.access.catalogue.get(seen.service or "")
        return seen, lane_for(service.priority) if service else Lane.ON_DEMAND

    def on_overdue(
        self, user_id: str, seen: Peek, waited_s: float, bound_s: float, now: float
    ) -> Effects:
        """A request that waited in the front door's ingress past the answer bound (or found
        it full) is answered H8 without being decided: nothing done, its id not remembered,
        one audit record for the frame. Reads nothing but what ``peek`` read."""
        self._count(ResponseCode.H8, prefix="overdue:")
        if waited_s > bound_s:
            reason = f"busy: waited {waited_s:.1f} s to be decided (bound {bound_s:g} s)"
        else:
            reason = "busy: the hub's ingress is full"
        busy = wire.Refusal(
            request_id=seen.request_id,
            code=ResponseCode.H8,
            reason=reason,
            retry_after_s=self.config.busy_retry_s,
        )
        service = seen.service if seen.service and len(seen.service) <= 32 else None
        record = AuditRecord(
            now,
            Direction.OUT,
            user_id,
            AuditKind.REFUSAL,
            seen.request_id,
            service,
            None,
            ResponseCode.H8.value,
            reason,
        )
        return Effects(audit=[record], send=[Send(user_id, wire.encode(busy))])

    @contained("on_frame_with_revoked_key")
    def on_frame_with_revoked_key(self, user_id: str, frame: bytes, now: float) -> Effects:
        """A frame arrived on a connection whose CURVE key was revoked after its handshake:
        refuse it (E1), whatever it holds, and audit it; nothing else is decided."""
        try:
            request_id = getattr(wire.decode_from_user(frame), "request_id", None)
        except wire.WireError as err:
            request_id = err.request_id
        reason = "this connection's CURVE key has been revoked; connect with a registered key"
        return self._refuse_frame(
            user_id, request_id, ResponseCode.E1, reason, now, AuditKind.KEY_REVOKED
        )

    def _refuse_frame(
        self,
        user_id: str,
        request_id: str | None,
        code: ResponseCode,
        reason: str,
        now: float,
        kind: AuditKind,
    ) -> Effects:
        self._count(code)
        effects = self._final_refusal(user_id, request_id, code, reason, now)
        received = AuditRecord(
            now, Direction.IN, user_id, kind, request_id, code=code.value, reason=reason
        )
        effects.audit.insert(0, received)
        return effects

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
                    AuditKind.THRESHOLDS,
                    service=msg.service,
                    reason=f"warning {msg.warning}, quarantine {msg.quarantine} per {msg.period_s:.0f} s",
                )
            ]
        )

    @contained("on_handshake_refused")
    def on_handshake_refused(self, fingerprint: str, now: float, address: str = "") -> Effects:
        """The transport refused a CURVE handshake (unknown, revoked or suspended key): audit
        it with the key's fingerprint and the peer's address, and count it for security
        monitoring. (The transport bounds how many it reports per tick.)"""
        where = f" from {bounded(address, 64)}" if address else ""
        effects = Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    None,
                    AuditKind.HANDSHAKE_REFUSED,
                    code=ResponseCode.E1.value,
                    reason=f"CURVE key {bounded(fingerprint, 64)} refused{where}",
                )
            ]
        )
        self._security(self.security.on_handshake_refused(fingerprint, now), now, effects)
        return effects

    @contained("on_key_change")
    def on_key_change(
        self, user_id: str, fingerprint: str, registered: bool, now: float
    ) -> Effects:
        """A user's public key was registered or revoked on the running hub: audit it."""
        kind = AuditKind.KEY_REGISTERED if registered else AuditKind.KEY_REVOKED
        verb = "registered" if registered else "revoked"
        return Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    user_id,
                    kind,
                    reason=f"CURVE key {bounded(fingerprint, 64)} {verb}",
                )
            ]
        )

    @contained("on_storage_recovered")
    def on_storage_recovered(self, reason: str, now: float) -> Effects:
        """The store takes writes again after an outage (the driver rebuilt this engine from
        it): the operator's audit records the outage once, with what the driver reports."""
        return Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.OUT,
                    None,
                    AuditKind.HUB_ALERT,
                    code=STORAGE_ALERT,
                    reason=bounded(reason),
                )
            ]
        )

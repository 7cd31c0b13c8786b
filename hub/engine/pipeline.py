"""The request pipeline of the engine: from a user's frame to an acknowledged, refused or
queued request.

Decides, for every frame a service user sends: refuse (with a code and a reason) or accept
(I99) a service request after decoding, idempotency, parameter validation, access control,
anomaly thresholds and capacity checks; hand a service the hub handles itself to its flow
(``hub.flows.services``); hold a DSP future-dated request until its day; queue a device
command with traffic management and dispatch what it lets start.
Must never: open a socket or a file, start a thread, read a clock (``now`` is given), or
branch on a particular hub-handled service (the flows table does).
"""

from __future__ import annotations

from hub import wire
from hub.engine.containment import (
    INTERNAL_ERROR_ALERT,
    INTERNAL_ERROR_REASON,
    StepMark,
    contained,
    fault_of,
)
from hub.engine.delivery import dt
from hub.engine.effects import AuditKind, AuditRecord, Direction, Dispatch, Effects, Send
from hub.engine.gatekeeping import Gatekeeping
from hub.engine.lifecycle import Remembered, RequestEvent, RequestRecord, RequestState
from hub.flows.firmware import parse_block_command_id
from hub.flows.services import executable
from hub.policies.access import AccessRequest
from hub.policies.signatures import signature_refusal
from hub.policies.traffic import Admitted, Busy
from hub.reference.catalogue import FutureDated, PriorityClass, Service
from hub.reference.codes import ResponseCode
from hub.reference.service_params import validate_params
from hub.reference.standard import DeviceCommand, Value
from hub.reference.text import bounded, join_reasons


def seq_of(command_id: str) -> int | None:
    """The request seq a command id belongs to (``<seq>`` or a block's ``<seq>-<block>``)."""
    block = parse_block_command_id(command_id)
    if block is not None:
        return block[0]
    return int(command_id) if command_id.isdigit() else None


class RequestPipeline(Gatekeeping):
    """Frames in, requests decided and carried out."""

    @contained("on_frame", answers_frame=True)
    def on_frame(self, user_id: str, frame: bytes, now: float) -> Effects:
        """Handle one frame from an authenticated user."""
        try:
            msg = wire.decode_from_user(frame)
        except wire.WireError as err:
            return self._refuse_frame(
                user_id, err.request_id, err.code, err.reason, now, AuditKind.MALFORMED
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

    def on_request(
        self, user_id: str, req: wire.ServiceRequest, now: float, *, released: bool = False
    ) -> Effects:
        """Decide on one service request (``released``: let out of quarantine by its user, so
        it is not counted again)."""
        key = (user_id, req.request_id)
        fingerprint = wire.request_fingerprint(req)
        seen = self.index.known(*key)
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
        if code is ResponseCode.I99 and service is not None and self._uses_device(service):
            admission = self.admit(user_id, self._priority(service, req.execute_at, now), now)
            if isinstance(admission, Busy):
                busy = self._busy(
                    user_id, req, f"busy: {admission.detail}", now, admission.retry_after_s
                )
                busy.extend(notes)
                return busy
            notes.extend(self._answer_displaced(service, now))
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
            seq=self.new_seq(),
            user_id=user_id,
            request_id=req.request_id,
            fingerprint=fingerprint,
            service=req.service,
            role=req.role,
            device_id=req.device_id,
            params=dict(req.params),
            execute_at=req.execute_at,
            received_at=now,
            state=RequestState.ACCEPTED if accepted else RequestState.REFUSED,
            reply=reply,
            comms_hub=comms_hub if service and self._uses_device(service) else None,
            head_end=device.head_end if device and service and self._uses_device(service) else None,
            signature=req.signature,
        )
        self.index.add(rec)
        self._count(code)
        effects = Effects(
            save_requests=[rec],
            audit=self._audit_pair(now, user_id, req, code, reason),
            send=[Send(user_id, reply)],
        )
        if accepted:
            effects.extend(self.execute(rec, now, admitted=True))
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
            reason=bounded(reason),
            retry_after_s=retry_after_s if retry_after_s is not None else self.config.busy_retry_s,
        )
        return Effects(
            audit=self._audit_pair(now, user_id, req, ResponseCode.H8, reason),
            send=[Send(user_id, wire.encode(busy))],
        )

    def _answer_displaced(self, by: Service, now: float) -> Effects:
        """Queued commands traffic management pushed out to admit more urgent work: each was
        accepted (I99), so each request is answered now, with a ``service_response`` H8 that
        says why and when to try again (with a new request id); nothing acknowledged is lost."""
        effects = Effects()
        for d in self.traffic.take_displaced():
            seq = seq_of(d.command.command_id)
            rec = None if seq is None else self.index.get(seq)
            if rec is None or rec.state.final:
                continue
            self.index.cancel_outcome(rec.seq)  # it never reached the device
            self._count(ResponseCode.H8, prefix="displaced:")
            reason = (
                f"busy: displaced before it reached the device by more urgent work "
                f"({by.code}); resubmit with a new request id"
            )
            body: dict[str, Value] = {
                "reason": reason,
                "retry_after_s": self.config.busy_retry_s,
            }
            effects.extend(self.respond(rec, ResponseCode.H8, body, now))
        return effects

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
            request_id=req.request_id,
            code=ResponseCode.H7,
            reason=bounded(text),
            retry_after_s=None,
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
                    AuditKind(f"quarantine_{msg.action.value}"),
                    reason=join_reasons(msg.request_ids, sep=", "),
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

    def _audit_pair(
        self, now: float, user_id: str, req: wire.ServiceRequest, code: ResponseCode, reason: str
    ) -> list[AuditRecord]:
        kind = AuditKind.ACKNOWLEDGEMENT if code is ResponseCode.I99 else AuditKind.REFUSAL
        return [
            AuditRecord(
                now,
                Direction.IN,
                user_id,
                AuditKind.SERVICE_REQUEST,
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
        self, seen: Remembered, fingerprint: bytes, req: wire.ServiceRequest, now: float
    ) -> Effects:
        if not seen.same_content(fingerprint):
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
                    AuditKind.SERVICE_REQUEST,
                    req.request_id,
                    req.service,
                    req.device_id,
                    reason="resubmission",
                ),
                AuditRecord(
                    now,
                    Direction.OUT,
                    seen.user_id,
                    AuditKind.REPEAT,
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
        if req.execute_at is not None and req.execute_at < now - self.config.clock_skew_s:
            return (
                ResponseCode.E12,
                f"execute_at {dt(req.execute_at).isoformat()} is in the past (the hub's time is "
                f"{dt(now).isoformat()}; at most {self.config.clock_skew_s:g} s behind is "
                "executed now): give a future time, or omit execute_at to execute now",
                service,
            )
        execute_at = max(req.execute_at, now) if req.execute_at is not None else now
        decision = self.access.decide(
            AccessRequest(user_id, req.role, req.service, req.device_id, dt(execute_at))
        )
        if not decision.accepted or service is None:
            return decision.code, decision.reason, service
        if not executable(service):
            return (
                ResponseCode.H9,
                f"{service.code} ({service.name}) is not executable by this release",
                service,
            )
        flow = self._flows.get(service.code)
        if flow is not None:
            objection = flow.check(user_id, req, service, now)
            if objection is not None:
                return objection[0], objection[1], service
            return decision.code, decision.reason, service
        problems = validate_params(service.code, req.params)
        if problems:
            return ResponseCode.E12, join_reasons(problems), service
        if req.execute_at is not None and req.execute_at > now:
            if service.future_dated in (FutureDated.NONE,):
                return ResponseCode.E12, f"{service.code} cannot be future dated", service
        elif not service.on_demand:
            return ResponseCode.E12, f"{service.code} cannot be sent on demand", service
        refusal = signature_refusal(service, req.signature)
        if refusal is not None:
            return refusal[0], refusal[1], service
        busy = self._capacity(service, req, now)
        if busy is not None:
            return ResponseCode.H8, busy, service
        return decision.code, decision.reason, service

    def _capacity(self, service: Service, req: wire.ServiceRequest, now: float) -> str | None:
        """Room for one more request of its class at its comms hub and hub-wide, counting
        only the work of its own class and the more urgent ones (``EngineConfig.class_room``):
        why not, or None if there is room."""
        priority = self._priority(service, req.execute_at, now)
        cfg = self.config
        device = self.access.inventory.device(req.device_id or "")
        if device is not None and self._uses_device(service):
            hub_id = self.access.inventory.sites[device.site_id].comms_hub
            room = cfg.room(cfg.max_per_comms_hub, priority)
            if self.index.queued_at(hub_id, priority) >= room:
                return (
                    f"comms hub {hub_id} has {room} {priority.name} or more urgent commands queued"
                )
        room = cfg.room(cfg.max_pending, priority)
        if self.index.in_flight_from(priority) >= room:
            return f"{room} {priority.name} or more urgent requests in progress"
        return None

    def execute(self, rec: RequestRecord, now: float, admitted: bool = False) -> Effects:
        """Carry out an accepted request: hand a hub-handled service to its flow, hold a DSP
        future-dated one, or queue its command with traffic management (``admitted``: a place
        was reserved by admission; otherwise it was accepted earlier and is queued regardless
        of bounds)."""
        service = self.access.catalogue[rec.service]
        rec.priority = (
            PriorityClass.BULK
            if rec.scheduled
            else self._priority(service, rec.execute_at, rec.received_at)
        )
        flow = self._flows.get(rec.service)
        if flow is not None:
            return flow.execute(rec, now, admitted)
        assert rec.device_id is not None
        future = rec.execute_at is not None and rec.execute_at > now
        if future and self._pattern(rec) is FutureDated.DSP:
            assert rec.execute_at is not None
            if admitted:
                priority = self._priority(service, rec.execute_at, rec.received_at)
                self.traffic.release(priority)
                self._place_used(priority)
            self.index.move(rec, RequestEvent.HOLD)
            return Effects()
        if future and rec.state is RequestState.ACCEPTED:
            assert rec.execute_at is not None
            self.index.await_outcome(rec, rec.execute_at + self.config.outcome_timeout_s)
        command = DeviceCommand(
            command_id=str(rec.seq),
            service=rec.service,
            device_id=rec.device_id,
            params=rec.params,
            execute_at=rec.execute_at if future else None,
            signature=rec.signature,
        )
        self.index.move(rec, RequestEvent.QUEUE)
        size = self.config.traffic.size_of(rec.service)
        return self.offer(rec, command, rec.priority, size, now, admitted)

    def offer(
        self,
        rec: RequestRecord,
        command: DeviceCommand,
        priority: PriorityClass,
        size: int,
        now: float,
        admitted: bool,
    ) -> Effects:
        """Queue one command of a request with traffic management (``admitted``: its place
        was reserved by admission; otherwise it is queued regardless of bounds)."""
        assert rec.comms_hub is not None
        assert rec.head_end is not None
        dispatch = Dispatch(command, rec.head_end, rec.comms_hub, int(priority))
        device = self.access.inventory.devices[command.device_id]
        cell = self.access.inventory.sites[device.site_id].cell
        if admitted:
            self.traffic.offer(dispatch, priority, cell, size, now)
            self._place_used(priority)
        else:
            self.traffic.restore(dispatch, priority, cell, size, now)
        return Effects(dispatch=[] if self.config.batch_release else self._ready(now))

    @contained("release")
    def release(self, now: float) -> Effects:
        """Commands traffic management lets start now (drivers with ``batch_release`` call
        this once after a batch of steps instead of once per command)."""
        return Effects(dispatch=self._ready(now))

    def _ready(self, now: float) -> list[Dispatch]:
        """Commands traffic management lets start now; their response clock starts here."""
        ready = self.traffic.ready(now)
        if self._withdrawn:  # commands of requests a failed step undid: never sent
            ready = [d for d in ready if not self._withdraw(d)]
        for d in ready:
            seq = seq_of(d.command.command_id)
            assert seq is not None, d.command.command_id  # the engine made the id
            rec = self.index.get(seq)
            if rec is not None and rec.state is RequestState.QUEUED:
                self.index.move(rec, RequestEvent.DISPATCH)
            self.index.dispatched(seq, now)
        return ready

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

    def _pattern(self, rec: RequestRecord) -> FutureDated:
        """How this request's future dating is carried out: the hub holds DSP requests; the
        device acts on Device ones (a service allowing both uses the device)."""
        fd = self.access.catalogue[rec.service].future_dated
        return FutureDated.DEVICE if fd is FutureDated.DSP_AND_DEVICE else fd

    def _release_held(self, rec: RequestRecord, now: float) -> Effects:
        """A held DSP request's time has come: check access again on the execution day (a
        change of supplier since it was accepted stops it, and the user is told), then send."""
        decision = self.access.decide(
            AccessRequest(rec.user_id, rec.role, rec.service, rec.device_id, dt(now))
        )
        if not decision.accepted:
            return self.respond(
                rec, decision.code, {"reason": f"stopped at execution: {decision.reason}"}, now
            )
        return self.execute(rec, now)

    def _uses_device(self, service: Service) -> bool:
        """Carried out by commands to a device: device services, and hub-handled services
        whose flow sends commands (firmware distribution)."""
        flow = self._flows.get(service.code)
        return not service.non_device if flow is None else flow.uses_device

    # ---- fault containment (hub.engine.containment) -----------------------------------------

    def admit(self, user_id: str, priority: PriorityClass, now: float) -> Admitted | Busy:
        """Ask traffic management for a place for a request of this class (a place it grants
        is noted, so that a step that fails before using it gives it back)."""
        admission = self.traffic.admit(user_id, priority, now)
        if not isinstance(admission, Busy):
            self._reserved_places.append(priority)
        return admission

    def _place_used(self, priority: PriorityClass) -> None:
        places = self._reserved_places
        if priority in places:
            places.remove(priority)
        elif places:
            places.pop()

    def _withdraw(self, d: Dispatch) -> bool:
        """True (and forgotten) if this command is of a request a failed step undid."""
        seq = seq_of(d.command.command_id)
        if seq is None or seq not in self._withdrawn:
            return False
        self._withdrawn.discard(seq)
        return True

    def _step_begin(self) -> StepMark | None:
        """A guarded step begins: where the engine stands (None inside one already)."""
        if self._in_step:
            return None
        self._in_step = True
        self._reserved_places.clear()
        self.index.step_begins()
        return StepMark(self._next_seq, self._next_delivery, dict(self.counters))

    def _step_end(self) -> None:
        self._in_step = False
        self.index.step_ends()

    def _undo(self, mark: StepMark) -> None:
        """Take back what a failed step started: the requests it created (forgotten, their
        queued commands withdrawn, their flows' state dropped), the traffic places it
        reserved, the deliveries it made, and its counts."""
        for rec in self.index.discard_since(mark.seq):
            flow = self._flows.get(rec.service)
            if flow is not None:
                flow.forget(rec.seq)
            if rec.state in (RequestState.QUEUED, RequestState.TRANSFERRING):
                self._withdrawn.add(rec.seq)
        for priority in self._reserved_places:
            self.traffic.release(priority)
        self._reserved_places.clear()
        for delivery_id in range(mark.delivery, self._next_delivery):
            self.outbox.discard(delivery_id)
        self.counters.clear()
        self.counters.update(mark.counters)

    def _contain(
        self,
        where: str,
        err: Exception,
        mark: StepMark,
        frame: tuple[str, bytes] | None,
        now: float,
    ) -> Effects:
        """What a step that raised returns instead: the step undone, an H12 refusal to the
        frame's sender (if it answers a frame), an internal-error audit record, a hub-wide
        INTERNAL_ERROR hub alert in the operator's audit, a count and the fault itself."""
        fault = fault_of(where, err)
        faults = [fault]
        try:
            self._undo(mark)
        except Exception as undo_err:  # reported too; what was built is still answered
            faults.append(fault_of(f"{where} (undo)", undo_err))
        try:
            self.counters["internal_error"] = self.counters.get("internal_error", 0) + 1
            user_id, request_id = (
                (frame[0], wire.request_id_of(frame[1])) if frame else (None, None)
            )
            text = bounded(f"{where} failed: {fault.error_type}: {fault.message}")
            effects = Effects(
                audit=[
                    AuditRecord(
                        now,
                        Direction.IN,
                        user_id,
                        AuditKind.INTERNAL_ERROR,
                        request_id,
                        code=ResponseCode.H12.value if frame else None,
                        reason=text,
                    ),
                    AuditRecord(
                        now,
                        Direction.OUT,
                        None,
                        AuditKind.HUB_ALERT,
                        request_id,
                        code=INTERNAL_ERROR_ALERT,
                        reason=text,
                    ),
                ],
                faults=faults,
            )
            if user_id is not None:
                effects.extend(
                    self._final_refusal(
                        user_id, request_id, ResponseCode.H12, INTERNAL_ERROR_REASON, now
                    )
                )
            return effects
        except Exception as late:  # containment itself failed: still never raise
            return Effects(faults=[*faults, fault_of(f"{where} (containment)", late)])

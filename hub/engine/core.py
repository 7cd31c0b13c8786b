"""The hub engine: the pure hub, fed frames, device messages and ticks, sans I/O.

Decides what the hub does with a device's response or failure, with a frame that fails its
integrity check, with a restart (each request back in its lifecycle state) and with time
(response timeouts, held requests coming due, outcome deadlines, the daily change-of-supplier
sweep, register changes reported while it runs and their effective days, the flows' timers, quarantine, idempotency forgetting), and when a driver must next
tick (``next_due``). The request pipeline (``hub.engine.pipeline``), delivery
(``hub.engine.delivery``), the lifecycle (``hub.engine.lifecycle``) and the service flows
(``hub.flows.services``) make the rest of its decisions; each comes back as ``Effects``:
records to persist, messages to send, commands to dispatch, and audit records, in that order
of application (persist first, then send).
Must never: open a socket or a file, start a thread, read a clock (``now`` is given), or
import a driver. The live actors and the simulator both drive this same class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

from hub.engine.config import EngineConfig
from hub.engine.containment import contained, fault_of
from hub.engine.delivery import dt
from hub.engine.effects import AuditKind, AuditRecord, Direction, Effects
from hub.engine.lifecycle import RequestRecord, RequestState
from hub.engine.outbox import Held
from hub.engine.pipeline import RequestPipeline, seq_of
from hub.engine.register_changes import RegisterDesk
from hub.flows.inventory_changes import InventoryChangeFlow
from hub.flows.inventory_operator import OperatorCommand
from hub.flows.schedule_service import ScheduleFlow
from hub.flows.schedules import Schedule, Scheduler
from hub.flows.service_flow import ServiceFlow
from hub.flows.services import SERVICE_FLOWS
from hub.policies.access import AccessContext, AccessRequest
from hub.reference.catalogue import FutureDated
from hub.reference.codes import ResponseCode
from hub.reference.standard import CommandStatus, DeviceResponse
from hub.reference.uktime import from_uk_local, uk_date
from hub.registers.changes import ChangeBatch, StoredChange
from hub.registers.inventory import InventoryChange

RESUME_FAILED = (
    "internal error while resuming this request after a restart; nothing was done; "
    "send it again with a new request id"
)
"""The reason of the H12 response to an accepted request the hub failed to resume."""

FORGET_IDLE_EVERY_S = 60.0
"""How often idle anomaly and security counters are swept."""


class HubEngine(RequestPipeline):
    """The pure hub: feed it frames, device messages and ticks; apply what it returns."""

    def __init__(self, access: AccessContext, config: EngineConfig | None = None) -> None:
        super().__init__(access, config)
        built: dict[object, ServiceFlow] = {}
        for code, make in SERVICE_FLOWS.items():
            if make not in built:
                built[make] = make(self)
            self._flows[code] = built[make]
        self._flow_list: list[ServiceFlow] = list(built.values())
        self._next_forget = 0.0
        self._swept_day: date | None = None  # the UK day the change-of-supplier sweep covers
        self._next_sweep = 0.0  # when the next UK day (and its sweep) starts
        self._sweep: list[tuple[ServiceFlow, str] | int] = []  # flow items, held request seqs
        self.registers = RegisterDesk(self)
        """Register changes taken while running (``on_register_changes``)."""

    @property
    def schedule_flow(self) -> ScheduleFlow:
        """The flow of the DCC schedules (5.x)."""
        flow = self._flows["5.1"]
        assert isinstance(flow, ScheduleFlow)
        return flow

    @property
    def scheduler(self) -> Scheduler:
        """The DCC schedules (5.x) this engine runs."""
        return self.schedule_flow.scheduler

    @property
    def inventory_flow(self) -> InventoryChangeFlow:
        """The inventory lifecycle (``hub.flows.inventory_changes``) this engine runs."""
        flow = self._flows["12.2"]
        assert isinstance(flow, InventoryChangeFlow)
        return flow

    @contained("on_operator_command")
    def on_operator_command(self, command: OperatorCommand, now: float) -> Effects:
        """An operator's inventory command (adopt an early-smart meter, approve or suspend a
        model), carried out once and audited."""
        return self.inventory_flow.operator(command, now)

    # ---- restart -----------------------------------------------------------------------

    def restore(
        self,
        requests: Iterable[RequestRecord],
        deliveries: Iterable[Held],
        next_seq: int,
        next_delivery: int,
        now: float,
        schedules: Iterable[Schedule] = (),
        next_schedule: int = 1,
        transfers: Mapping[int, int] | None = None,
        *,
        register_changes: Iterable[StoredChange] = (),
        inventory_changes: Iterable[InventoryChange] = (),
        outcome_unrecorded: Iterable[int] = (),
    ) -> Effects:
        """Rebuild state from the store after a restart, each request back in its lifecycle
        state: the inventory changes made are replayed first, in order, over the inventory
        the engine was built with. Requests accepted but unanswered are dispatched again, or
        held again until their execution time (nothing acknowledged is lost); Device-pattern
        commands stored awaiting their outcome await it again until their deadline (one that
        passed while the hub was down is answered E30 at the next tick), and nothing else does
        (one that failed before its outcome stays completed). The register changes applied
        before are applied again over the registers, in order, and those whose effective day
        has not been carried out wait for it again.

        ``outcome_unrecorded``: seqs of requests a store of schema 4 or before kept completed
        without recording whether they awaited their outcome. For those only, the rule of those
        hubs is kept: a future-dated Device-pattern one whose deadline is still ahead awaits it
        (a few answered already, by a failure or their outcome, may get a late E30 once); the
        returned effects store each of them as decided (awaiting, or completed), so the rule
        is applied once."""
        self.inventory_flow.restore_changes(list(inventory_changes))
        self.registers.restore(register_changes)
        self._next_seq = max(self._next_seq, next_seq)
        self._next_delivery = max(self._next_delivery, next_delivery)
        schedules = list(schedules)
        for flow in self._flow_list:
            flow.restore(schedules, next_schedule, transfers or {})
        effects = Effects()
        unrecorded = set(outcome_unrecorded)
        for rec in requests:
            state = rec.state.persisted  # as the store keeps it
            if rec.seq in unrecorded and state is RequestState.COMPLETED:
                state = self._inferred_state(rec, now)
                awaits = state is RequestState.AWAITING_OUTCOME
                (effects.await_requests if awaits else effects.complete_requests).append(rec.seq)
            self.index.restore(rec, state)
            if state is RequestState.AWAITING_OUTCOME:
                assert rec.execute_at is not None
                self.index.await_outcome(rec, rec.execute_at + self.config.outcome_timeout_s)
            if state is RequestState.ACCEPTED:
                effects.extend(self._resume(rec, now))
        for d in deliveries:
            self.outbox.restore(d)
        return effects

    def _inferred_state(self, rec: RequestRecord, now: float) -> RequestState:
        """The state of a request stored completed by a hub that did not record whether it
        awaited its outcome (schema 4 and before), as those hubs inferred it at a restart:
        awaiting, if it is a future-dated Device-pattern command whose outcome deadline is
        still ahead; completed otherwise."""
        if rec.execute_at is None or self._pattern(rec) is not FutureDated.DEVICE:
            return RequestState.COMPLETED
        if rec.execute_at + self.config.outcome_timeout_s <= now:
            return RequestState.COMPLETED
        return RequestState.AWAITING_OUTCOME

    def _resume(self, rec: RequestRecord, now: float) -> Effects:
        """Carry out again a request accepted before the restart. If that raises, the failure
        is contained (undone, audited, counted, alerted) and the request answered H12, so an
        acknowledged request is never silently lost."""
        mark = self._step_begin()
        if mark is None:  # inside a guarded step: it contains this
            return self.execute(rec, now)
        try:
            return self.execute(rec, now)
        except Exception as err:
            effects = self._contain("restore", err, mark, None, now)
        finally:
            self._step_end()
        if rec.state.final or rec.state is RequestState.AWAITING_OUTCOME:
            return effects
        if rec.state is RequestState.QUEUED:
            self._withdrawn.add(rec.seq)  # its command is not sent: it is answered instead
        try:
            effects.extend(self.respond(rec, ResponseCode.H12, {"reason": RESUME_FAILED}, now))
        except Exception as err:  # the fault is recorded; the request stays accepted
            effects.faults.append(fault_of("restore (answer)", err))
        return effects

    # ---- messages from devices -----------------------------------------------------------

    @contained("on_device_response")
    def on_device_response(self, resp: DeviceResponse, now: float) -> Effects:
        """A head-end decoded a device's response to one of our commands."""
        rec = self._in_flight_for(resp.command_id)
        if rec is not None and rec.state is RequestState.TRANSFERRING:
            handled = self._flows[rec.service].on_device_response(rec, resp, now)
            if handled is not None:
                return handled
        if rec is None:
            self.counters["unknown_uplink"] = self.counters.get("unknown_uplink", 0) + 1
            effects = Effects(
                audit=[
                    AuditRecord(
                        now,
                        Direction.IN,
                        None,
                        AuditKind.UNSOLICITED_RESPONSE,
                        device_id=resp.device_id,
                        reason=f"no command {resp.command_id} pending",
                    )
                ]
            )
            self._security(self.security.on_unsolicited_response(resp.device_id, now), now, effects)
            return effects
        if resp.status is CommandStatus.REJECTED:
            return self.respond(rec, ResponseCode.H11, {"reason": resp.reason, **resp.body}, now)
        body = dict(resp.body)
        if resp.status is CommandStatus.SCHEDULED:
            body.setdefault("scheduled_for", rec.execute_at)
        else:  # done: a service with an inventory effect changes the inventory now
            changed = self.inventory_flow.after_device_success(rec, body, now)
            if changed is not None:
                return changed
        return self.respond(rec, ResponseCode.I0, body, now)

    @contained("on_device_failure")
    def on_device_failure(
        self, command_id: str, code: ResponseCode, reason: str, now: float
    ) -> Effects:
        """The comms hub could not reach the device (E20) or it never answered (E21)."""
        rec = self._in_flight_for(command_id)
        if rec is None:
            return Effects()
        return self.respond(rec, code, {"reason": reason}, now)

    def _in_flight_for(self, command_id: str) -> RequestRecord | None:
        """The request in flight (queued, dispatched or transferring) a command id is of."""
        seq = seq_of(command_id)
        rec = None if seq is None else self.index.get(seq)
        return rec if rec is not None and rec.state.in_flight else None

    @contained("on_integrity_failure")
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
                    AuditKind.INTEGRITY_FAILURE,
                    device_id=comms_hub,
                    reason=f"{head_end}: {reason}",
                )
            ]
        )
        self._security(self.security.on_integrity_failure(comms_hub, now, reason), now, effects)
        return effects

    # ---- registers ---------------------------------------------------------------------------

    @contained("on_register_changes")
    def on_register_changes(self, batch: ChangeBatch, now: float) -> Effects:
        """A register reported changes (one change file): apply them all or none, audit and
        persist them, and carry out at once those whose effective UK day has begun (the rest
        on their day). ``registers.outcome(batch.source)`` tells the driver what became of it;
        a change whose id is stored already is a repeat and does nothing."""
        return self.registers.take(batch, now)

    # ---- time ------------------------------------------------------------------------------

    @contained("tick")
    def tick(self, now: float) -> Effects:
        """Retry unacknowledged pushes, expire what outlived its hold, time out unanswered
        commands, release held requests, answer missed outcomes, sweep, carry out register
        changes whose effective day has begun, run the flows' timers, quarantine notices and
        expiry, forget old request ids."""
        effects = self._tick_outbox(now)
        timeout_s = self.config.response_timeout_s
        while (timed_out := self.index.next_timeout(now, timeout_s)) is not None:
            if timed_out.state.in_flight:
                effects.extend(
                    self.respond(
                        timed_out,
                        ResponseCode.E21,
                        {"reason": f"no response within {self.config.response_timeout_s:.0f} s"},
                        now,
                    )
                )
        for held in self.index.due_held(now):
            effects.extend(self._release_held(held, now))
        for awaited in self.index.due_outcomes(now):
            reason = f"no 8F66 / 8F67 outcome within {self.config.outcome_timeout_s:.0f} s of the execution time"
            effects.extend(self.respond(awaited, ResponseCode.E30, {"reason": reason}, now))
        effects.extend(self._cos_sweep(now))
        effects.extend(self.registers.tick(now))
        for flow in self._flow_list:
            effects.extend(flow.tick(now))
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
            self._next_forget = now + FORGET_IDLE_EVERY_S
        early = self.index.forget(now, self.config.idempotency_s, self.config.idempotency_max)
        if early:
            self.counters["forgotten_early"] = self.counters.get("forgotten_early", 0) + early
        return effects

    def next_due(self, now: float) -> float | None:
        """The earliest instant at which ``tick`` would do anything: a delivery to retry or
        expire, a response overdue, a held request or an outcome deadline come due, a flow's
        timer (schedule firings), a queued command traffic management would start, a
        quarantine notice or expiry, the effective day of a register change, the change-of-supplier sweep (``now`` while a sweep has
        work left, otherwise the next UK midnight), the forgetting of idle counters and of old
        request ids. ``now`` or earlier: tick now. Never later than anything due; it may be
        early (a timer found stale only when it comes), and after a tick at ``now`` it is later
        than ``now`` unless the sweep has slices left. None only when nothing will ever be due
        without new input. Costs the heads of the timer heaps and queues, never a scan."""
        cfg = self.config
        if self._sweep:
            return now
        due = self.index.next_due(
            now, cfg.response_timeout_s, cfg.idempotency_s, cfg.idempotency_max
        )
        for candidate in (
            self.outbox.next_due(),
            self.traffic.next_start(now),
            self.quarantine.next_due(cfg.quarantine_hold_s),
            *(flow.next_due() for flow in self._flow_list),
            self.registers.next_due(),
            self._next_sweep,
            self._next_forget,
        ):
            if candidate is not None and (due is None or candidate < due):
                due = candidate
        return due

    def _cos_sweep(self, now: float) -> Effects:
        """On each new UK day, check every flow's sweep items (schedules) and every held
        future-dated request against the registers, a slice per tick: a change of supplier
        effective today stops the losing supplier's ones there and then, and tells it
        (schedules with a SCHEDULE_STOPPED hub alert, held requests with an E4 response)."""
        day = uk_date(dt(now))
        if day != self._swept_day:
            self._swept_day = day
            self._next_sweep = _uk_midnight_after(day)
            items: list[tuple[ServiceFlow, str] | int] = [
                (flow, item) for flow in self._flow_list for item in flow.sweep_items()
            ]
            items += sorted(r.seq for r in self.index.in_state(RequestState.HELD))
            self._sweep = items
        effects = Effects()
        batch, self._sweep = (
            self._sweep[: self.config.sweep_per_tick],
            self._sweep[self.config.sweep_per_tick :],
        )
        for entry in batch:
            if isinstance(entry, tuple):
                flow, item = entry
                effects.extend(flow.sweep(item, now))
                continue
            rec = self.index.get(entry)
            if rec is None or rec.state is not RequestState.HELD or rec.execute_at is None:
                continue  # only requests the hub itself is holding
            decision = self.access.decide(
                AccessRequest(rec.user_id, rec.role, rec.service, rec.device_id, dt(rec.execute_at))
            )
            if decision.code is ResponseCode.E4:
                effects.extend(
                    self.respond(rec, decision.code, {"reason": f"stopped: {decision.reason}"}, now)
                )
        return effects

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
        return self.index.in_flight


def _uk_midnight_after(day: date) -> float:
    """The instant the UK day after ``day`` starts (epoch seconds)."""
    midnight = datetime.combine(day + timedelta(days=1), datetime.min.time())
    return from_uk_local(midnight).timestamp()

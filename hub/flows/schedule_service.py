"""The hub's handler of DCC schedules (5.1 Create, 5.2 Read, 5.3 Delete) and of their firings.

Decides: whether a 5.x request is acceptable (its parameters; for 5.1 whether the scheduled
service would be accepted for the user now; for 5.3 whether the user has a schedule of that id,
another user's being refused exactly as an unknown one), the answers to 5.1-5.3, how each
firing runs (as the schedule's owner, with access checked again at firing time, as bulk
traffic), and which schedules the change-of-supplier sweep stops (the owner is told with SCHEDULE_STOPPED).
Must never: read a clock, or send a firing's command other than through the engine's request
path (``FlowHost.execute``), so a firing is checked, shaped and answered like any request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from hub import wire
from hub.engine.effects import AuditKind, AuditRecord, Direction, Effects
from hub.engine.lifecycle import RequestRecord, RequestState
from hub.flows.schedule_spec import (
    ScheduleError,
    no_such_schedule,
    parse_create,
    validate_create,
    validate_delete,
    validate_read,
)
from hub.flows.schedules import Firing, Schedule, Scheduler
from hub.flows.service_flow import FlowHost, ServiceFlow
from hub.policies.access import AccessRequest
from hub.policies.traffic import Busy
from hub.reference.catalogue import PriorityClass, Service
from hub.reference.codes import ResponseCode
from hub.reference.standard import Value
from hub.reference.text import bounded, join_reasons

SCHEDULE_SERVICES: frozenset[str] = frozenset({"5.1", "5.2", "5.3"})
"""Create, read and delete DCC schedules."""


def _dt(instant: float) -> datetime:
    return datetime.fromtimestamp(instant, UTC)


class ScheduleFlow(ServiceFlow):
    """5.1-5.3 and the firings of the schedules they create."""

    def __init__(self, host: FlowHost) -> None:
        super().__init__(host)
        self.scheduler = Scheduler(
            seed=host.config.schedule_seed, window_s=host.config.schedule_window_s
        )

    def check(
        self, user_id: str, req: wire.ServiceRequest, service: Service, now: float
    ) -> tuple[ResponseCode, str] | None:
        """Parameters of 5.1-5.3; for 5.1, the scheduled service as if requested now."""
        validate = {"5.1": validate_create, "5.2": validate_read, "5.3": validate_delete}[
            service.code
        ]
        problems = validate(req.params)
        if problems:
            return ResponseCode.E12, join_reasons(problems)
        if service.code == "5.3":
            sid = req.params.get("schedule_id")
            assert isinstance(sid, str)  # validate_delete requires it
            if not self.scheduler.read(user_id, sid):
                return ResponseCode.E12, no_such_schedule(sid)
        if service.code == "5.1":
            spec = parse_create(req.params)
            decision = self.host.access.decide(
                AccessRequest(user_id, req.role, spec.service, spec.device_id, _dt(now))
            )
            if not decision.accepted:
                return decision.code, bounded(
                    f"the scheduled service would be refused: {decision.reason}"
                )
        return ResponseCode.I99, "accepted"

    def execute(self, rec: RequestRecord, now: float, admitted: bool) -> Effects:
        """Answer 5.1 (the new schedule and its first firing), 5.2 (the user's schedules) or
        5.3 (deleted, or why not)."""
        host, params = self.host, rec.params
        if rec.service == "5.1":
            try:
                schedule = self.scheduler.create(rec.user_id, rec.role, parse_create(params), now)
            except ScheduleError as err:
                return host.respond(rec, ResponseCode.E12, {"reason": str(err)}, now)
            effects = host.respond(
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
            return host.respond(rec, ResponseCode.I0, body, now)
        sid = params.get("schedule_id")
        result = self.scheduler.delete(rec.user_id, sid if isinstance(sid, str) else "")
        if not result.ok:  # ended or deleted since its check: the same reason as at once
            return host.respond(rec, ResponseCode.E12, {"reason": no_such_schedule(str(sid))}, now)
        effects = host.respond(
            rec, ResponseCode.I0, {"schedule_id": str(sid), "deleted": True}, now
        )
        effects.delete_schedules.append(str(sid))
        return effects

    def tick(self, now: float) -> Effects:
        """Run every firing due now."""
        effects = Effects()
        for firing in self.scheduler.due(now):
            effects.extend(self._fire(firing, now))
        return effects

    def next_due(self) -> float | None:
        """When the next firing is due."""
        return self.scheduler.next_due()

    def _fire(self, f: Firing, now: float) -> Effects:
        """Run one firing as the schedule's owner, with access checked again now; a firing the
        owner no longer has a relation for (change of supplier) stops the schedule, and the
        owner is told."""
        host = self.host
        effects = Effects()
        schedule = self.scheduler.get(f.schedule_id)
        if schedule is not None:
            effects.save_schedules.append(schedule)
        elif f.final:
            effects.delete_schedules.append(f.schedule_id)
        request_id = f"{f.schedule_id}:{f.index}"  # unique per firing; ':' is a wire id character
        if host.index.known(f.owner, request_id) is not None:
            return effects  # already run (for example restored after a restart)
        req = wire.ServiceRequest(
            request_id=request_id,
            role=f.role,
            service=f.service,
            device_id=f.device_id,
            params=dict(f.params),
        )
        decision = host.access.decide(
            AccessRequest(f.owner, f.role, f.service, f.device_id, _dt(now))
        )
        rec = RequestRecord(
            seq=host.new_seq(),
            user_id=f.owner,
            request_id=request_id,
            fingerprint=wire.request_fingerprint(req),
            service=f.service,
            role=f.role,
            device_id=f.device_id,
            params=dict(f.params),
            execute_at=f.fire_at,
            received_at=now,
            state=RequestState.ACCEPTED,
            reply=b"",
            scheduled=True,
        )
        host.index.add(rec)
        effects.save_requests.append(rec)
        effects.audit.append(
            AuditRecord(
                now,
                Direction.IN,
                f.owner,
                AuditKind.SCHEDULE_FIRING,
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
            effects.extend(host.respond(rec, decision.code, body, now))
            return effects
        device = host.access.inventory.device(f.device_id)
        assert device is not None
        rec.comms_hub = host.access.inventory.sites[device.site_id].comms_hub
        rec.head_end = device.head_end
        admission = host.admit(f.owner, PriorityClass.BULK, now)
        if isinstance(admission, Busy):
            reason = f"firing skipped, hub busy: {admission.detail}"
            effects.extend(host.respond(rec, ResponseCode.H8, {"reason": reason}, now))
            return effects
        effects.extend(host.execute(rec, now, admitted=True))
        return effects

    def sweep_items(self) -> list[str]:
        """Every schedule's id."""
        return self.scheduler.ids()

    def sweep(self, item: str, now: float) -> Effects:
        """Stop the schedules of a change of supplier effective today, telling the owner."""
        effects = Effects()
        schedule = self.scheduler.get(item)
        if schedule is None:
            return effects
        spec = schedule.spec
        decision = self.host.access.decide(
            AccessRequest(schedule.owner, schedule.role, spec.service, spec.device_id, _dt(now))
        )
        if decision.code is not ResponseCode.E4:
            return effects
        for stopped in self.scheduler.stop_for_device(
            spec.device_id, schedule.owner, decision.reason
        ):
            sid = stopped.schedule.schedule_id
            effects.delete_schedules.append(sid)
            effects.extend(
                self.host.hub_alert(
                    schedule.owner,
                    "SCHEDULE_STOPPED",
                    {"schedule_id": sid, "reason": decision.reason},
                    now,
                )
            )
        return effects

    def restore(
        self, schedules: Iterable[Schedule], next_schedule: int, transfers: Mapping[int, int]
    ) -> None:
        """Take back the persisted schedules and the id counter."""
        self.scheduler.restore(schedules, next_schedule)

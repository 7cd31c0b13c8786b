"""Register changes taken while the hub runs: applied, audited, persisted, and carried out at the
hub on their effective UK day.

Decides: whether a batch of changes (one change file) is applied (all of it, in order, or none:
a change that does not fit the registers refuses the batch, naming its file line and reason),
which changes count as repeats (their id is already in the store: nothing happens), what each
applied change is audited and persisted as, and what follows on its effective UK day (from its
first instant, or at once if that day has begun): every schedule and held future-dated request
on the meter point's devices is checked against the registers again, so the losing supplier's,
a withdrawn ESCO's or an ended agent's stop (schedules with ``SCHEDULE_STOPPED``, held requests
answered E4); a change of supplier tells the losing supplier (``SUPPLIER_LOST`` hub alert);
a meter point no longer settled half-hourly stops its suppliers' settlement profile reads
(``SCHEDULE_STOPPED``). Access itself moves by itself: the access policy reads the registers on
the day a request executes.
Must never: read a file or a clock, or change anything when a batch is refused (a batch that
fails half-way is undone before it is refused).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from hub.engine.delivery import dt
from hub.engine.effects import AuditKind, AuditRecord, Direction, Effects
from hub.engine.lifecycle import RequestState
from hub.flows.schedules import Schedule
from hub.policies.access import AccessRequest
from hub.reference.codes import ResponseCode
from hub.reference.roles import Fuel, Role
from hub.reference.text import bounded
from hub.reference.uktime import from_uk_local
from hub.registers.change_records import kind_of
from hub.registers.changes import (
    ChangeBatch,
    ElectricitySupplierChange,
    GasSupplierChange,
    RegisterChange,
    SettlementChange,
    StoredChange,
    apply_change,
    change_problem,
)
from hub.registers.registration import (
    AgentAppointment,
    Consent,
    MeterPoint,
    RegistrationData,
    Settlement,
)

if TYPE_CHECKING:
    from hub.engine.core import HubEngine

CHANGE_OF_SUPPLIER_ALERT = "SUPPLIER_LOST"
"""Hub alert code telling the losing supplier that a meter point has left it (data: ``mpxn``,
``effective``, ``change_id``)."""
SETTLEMENT_READ_SERVICES: frozenset[str] = frozenset({"4.8.1", "4.8.2", "4.8.3"})
"""Profile data reads a supplier schedules for half-hourly settlement (assumed: a supplier's
DCC schedule of one of these on a meter point is its settlement read)."""
SUPPLIER_ROLES: frozenset[Role] = frozenset({Role.IS, Role.ES, Role.GS})
"""Roles acting as a registered supplier."""
MAX_OUTCOMES = 256
"""Batch outcomes remembered for the drivers to read (the oldest are forgotten)."""


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What became of one batch, for the driver that offered it."""

    applied: int
    """Changes applied now."""
    repeated: int
    """Changes whose id was applied before (nothing done)."""
    refused: str | None = None
    """Why the whole batch was refused (``file:line: reason``); None when it was applied."""


class RegisterDesk:
    """The engine's part that takes register changes (one per engine)."""

    def __init__(self, engine: HubEngine) -> None:
        self._engine = engine
        self._persisted: set[str] = set()  # change ids in the store (or in this step's effects)
        self._due: list[tuple[float, int, str]] = []  # (first instant, order, change id)
        self._waiting: dict[str, tuple[RegisterChange, str | None]] = {}  # change, loser
        self._order = 0
        self._outcomes: OrderedDict[tuple[str, int], BatchOutcome] = OrderedDict()
        self._devices: dict[str, list[str]] | None = None  # mpxn -> device ids, built lazily
        self._devices_seen = -1

    @property
    def registration(self) -> RegistrationData:
        """The registers the engine's access policy reads."""
        return self._engine.access.registration

    def applied(self, change_id: str) -> bool:
        """True once ``change_id`` is applied and persisted (or in effects being persisted)."""
        return change_id in self._persisted

    def outcome(self, source: str, offer: int = 0) -> BatchOutcome | None:
        """What became of the batch from ``source`` offered as ``offer``, if this engine took
        it (the last ``MAX_OUTCOMES`` are remembered)."""
        return self._outcomes.get((source, offer))

    # ---- taking a batch ----------------------------------------------------------------------

    def take(self, batch: ChangeBatch, now: float) -> Effects:
        """Apply a batch all or none, audit and persist what was applied, and carry out at once
        what is effective already."""
        if batch.problem is not None:
            return self._refuse(batch, batch.problem, now)
        data = self.registration
        fresh: list[tuple[RegisterChange, str | None]] = []
        undo: list[_Undo] = []
        repeated = 0
        seen: set[str] = set()
        try:
            for change in batch.changes:
                key = str(change.change_id)
                if key in self._persisted or key in seen:
                    repeated += 1
                    continue
                seen.add(key)
                problem = change_problem(data, change)
                if problem is not None:
                    _undo_all(data, undo)
                    where = change.source or batch.source
                    return self._refuse(batch, f"{where}: {change.change_id}: {problem}", now)
                undo.append(_Undo.of(data, change))
                apply_change(data, change)  # no-op if already in memory (a rebuilt engine)
                fresh.append((change, loser_of(data, change)))
        except Exception:
            _undo_all(data, undo)
            raise
        try:
            return self._applied(batch, fresh, repeated, now)
        except Exception:  # the step is contained and its effects dropped: not persisted
            self._persisted.difference_update(str(c.change_id) for c, _ in fresh)
            for change, _ in fresh:
                self._waiting.pop(str(change.change_id), None)
            raise

    def _applied(
        self,
        batch: ChangeBatch,
        fresh: list[tuple[RegisterChange, str | None]],
        repeated: int,
        now: float,
    ) -> Effects:
        """Audit, persist and wait for the changes just applied; carry out what is due."""
        effects = Effects()
        for change, loser in fresh:
            key = str(change.change_id)
            self._persisted.add(key)
            effects.save_register_changes.append(StoredChange(change, done=False))
            effects.audit.append(
                AuditRecord(
                    now,
                    Direction.IN,
                    None,
                    AuditKind.REGISTER_CHANGE,
                    code=kind_of(change).value,
                    reason=bounded(
                        f"{change.change_id} {kind_of(change).value} {change.mpxn} "
                        f"effective {change.effective.isoformat()} ({change.source or batch.source})"
                    ),
                )
            )
            self._wait(change, loser)
        self._remember(batch, BatchOutcome(len(fresh), repeated))
        devices = {d for change, _ in fresh for d in self._devices_of(change.mpxn)}
        effects.extend(self._check_held(devices, now))  # one pass over the held requests
        effects.extend(self.tick(now))
        return effects

    def _refuse(self, batch: ChangeBatch, reason: str, now: float) -> Effects:
        self._remember(batch, BatchOutcome(0, 0, reason))
        return Effects(
            audit=[
                AuditRecord(
                    now,
                    Direction.IN,
                    None,
                    AuditKind.REGISTER_CHANGE_REFUSED,
                    reason=bounded(f"{batch.source} refused, nothing applied: {reason}"),
                )
            ]
        )

    def _remember(self, batch: ChangeBatch, outcome: BatchOutcome) -> None:
        key = (batch.source, batch.offer)
        self._outcomes[key] = outcome
        self._outcomes.move_to_end(key)
        while len(self._outcomes) > MAX_OUTCOMES:
            self._outcomes.popitem(last=False)

    def _wait(self, change: RegisterChange, loser: str | None) -> None:
        key = str(change.change_id)
        self._waiting[key] = (change, loser)
        self._order += 1
        heapq.heappush(self._due, (_day_start(change.effective), self._order, key))

    # ---- restart -----------------------------------------------------------------------------

    def restore(self, stored: Iterable[StoredChange]) -> None:
        """Reapply the stored changes over the registers, in the order they were applied, and
        wait again for the effective days of those not yet carried out."""
        data = self.registration
        for entry in stored:
            change = entry.change
            apply_change(data, change)  # a no-op when these registers hold it already
            self._persisted.add(str(change.change_id))
            if not entry.done:
                self._wait(change, loser_of(data, change))

    # ---- effective days ----------------------------------------------------------------------

    def next_due(self) -> float | None:
        """The first instant of the next effective day to carry out."""
        return self._due[0][0] if self._due else None

    def tick(self, now: float) -> Effects:
        """Carry out the changes whose effective day has begun (a bounded number per call)."""
        effects = Effects()
        devices: set[str] = set()
        budget = self._engine.config.sweep_per_tick
        while self._due and self._due[0][0] <= now and budget > 0:
            _, _, key = heapq.heappop(self._due)
            entry = self._waiting.pop(key, None)
            if entry is None:
                continue
            change, loser = entry
            budget -= 1
            effects.extend(self._carry_out(change, loser, now))
            devices.update(self._devices_of(change.mpxn))
            effects.save_register_changes.append(StoredChange(change, done=True))
        effects.extend(self._check_held(devices, now))  # one pass over the held requests
        return effects

    def _carry_out(self, change: RegisterChange, loser: str | None, now: float) -> Effects:
        engine = self._engine
        effects = Effects()
        devices = self._devices_of(change.mpxn)
        if isinstance(change, SettlementChange) and change.settlement is Settlement.NON_HALF_HOURLY:
            for device_id in devices:
                effects.extend(self._stop_settlement_reads(device_id, change, now))
        flow = engine.schedule_flow
        for device_id in devices:
            for schedule_id in engine.scheduler.on_device(device_id):
                effects.extend(flow.sweep(schedule_id, now))
        if loser is not None and isinstance(change, ElectricitySupplierChange | GasSupplierChange):
            mp = self.registration.meter_point(change.mpxn)
            for user_id in self._supplier_users(loser, mp):
                effects.extend(
                    engine.hub_alert(
                        user_id,
                        CHANGE_OF_SUPPLIER_ALERT,
                        {
                            "mpxn": change.mpxn,
                            "effective": change.effective.isoformat(),
                            "change_id": str(change.change_id),
                        },
                        now,
                    )
                )
        return effects

    def _check_held(self, devices: set[str], now: float) -> Effects:
        """Answer E4 every future-dated request held for these devices whose user has no
        relation left at its execution time (it is stopped)."""
        engine = self._engine
        effects = Effects()
        if not devices:
            return effects
        held = [r for r in engine.index.in_state(RequestState.HELD) if r.device_id in devices]
        for rec in sorted(held, key=lambda r: r.seq):
            if rec.execute_at is None or rec.state is not RequestState.HELD:
                continue
            decision = engine.access.decide(
                AccessRequest(rec.user_id, rec.role, rec.service, rec.device_id, dt(rec.execute_at))
            )
            if decision.code is ResponseCode.E4:
                reason = f"stopped: {decision.reason}"
                effects.extend(engine.respond(rec, decision.code, {"reason": reason}, now))
        return effects

    def _stop_settlement_reads(
        self, device_id: str, change: SettlementChange, now: float
    ) -> Effects:
        engine = self._engine
        reason = (
            f"meter point {change.mpxn} is settled non-half-hourly from "
            f"{change.effective.isoformat()}: its settlement profile reads stop"
        )

        def keep(schedule: Schedule) -> bool:
            return not (
                schedule.spec.service in SETTLEMENT_READ_SERVICES
                and schedule.role in SUPPLIER_ROLES
            )

        effects = Effects()
        for stopped in engine.scheduler.stop_where(device_id, keep, reason):
            sid = stopped.schedule.schedule_id
            effects.delete_schedules.append(sid)
            effects.extend(
                engine.hub_alert(
                    stopped.schedule.owner,
                    "SCHEDULE_STOPPED",
                    {"schedule_id": sid, "reason": reason},
                    now,
                )
            )
        return effects

    def _supplier_users(self, party: str, mp: MeterPoint | None) -> list[str]:
        """The users of ``party`` that act as supplier for meter points of this kind."""
        if mp is None:
            return []
        role = Role.GS if mp.fuel is Fuel.GAS else Role.ES if mp.export else Role.IS
        users = self._engine.access.users.values()
        return sorted(u.user_id for u in users if u.party_id == party and role in u.roles)

    def _devices_of(self, mpxn: str) -> list[str]:
        """The devices serving a meter point: its meters and every device at their sites."""
        inventory = self._engine.access.inventory
        if self._devices is None or self._devices_seen != len(inventory.devices):
            index: dict[str, list[str]] = {}
            for device in inventory.devices.values():
                if device.mpxn:
                    index.setdefault(device.mpxn, []).append(device.device_id)
            self._devices, self._devices_seen = index, len(inventory.devices)
        out: list[str] = []
        for device_id in self._devices.get(mpxn, []):
            meter = inventory.device(device_id)
            if meter is None:
                continue
            for other in inventory.site_devices(meter.site_id):
                if other.device_id not in out:
                    out.append(other.device_id)
        return out


def loser_of(data: RegistrationData, change: RegisterChange) -> str | None:
    """The supplier a change of supplier, already applied to ``data``, took the meter point
    from (the registration ending on its effective day); None for other changes."""
    if not isinstance(change, ElectricitySupplierChange | GasSupplierChange):
        return None
    mp = data.meter_point(change.mpxn)
    if mp is None:
        return None
    ended = [r.supplier for r in mp.registrations if r.effective_to == change.effective]
    loser = ended[-1] if ended else None
    return None if loser == change.supplier else loser


@dataclass(slots=True)
class _Undo:
    """What one change may touch, as it stood before (to undo a refused batch)."""

    change_id: str
    mpxn: str
    meter_point: MeterPoint | None
    appointments: list[AgentAppointment] | None
    consents: list[Consent] | None
    was_applied: bool

    @classmethod
    def of(cls, data: RegistrationData, change: RegisterChange) -> _Undo:
        mpxn = change.mpxn
        appointments = data.appointments.get(mpxn)
        consents = data.consents.get(mpxn)
        return cls(
            str(change.change_id),
            mpxn,
            data.meter_points.get(mpxn),
            None if appointments is None else list(appointments),
            None if consents is None else list(consents),
            str(change.change_id) in data.applied,
        )


def _undo_all(data: RegistrationData, undo: list[_Undo]) -> None:
    for u in reversed(undo):
        if u.meter_point is None:
            data.meter_points.pop(u.mpxn, None)
        else:
            data.meter_points[u.mpxn] = u.meter_point
        if u.appointments is None:
            data.appointments.pop(u.mpxn, None)
        else:
            data.appointments[u.mpxn] = u.appointments
        if u.consents is None:
            data.consents.pop(u.mpxn, None)
        else:
            data.consents[u.mpxn] = u.consents
        if not u.was_applied:
            data.applied.discard(u.change_id)


def _day_start(day: date) -> float:
    """The first instant of a UK day (epoch seconds)."""
    return from_uk_local(datetime.combine(day, datetime.min.time())).timestamp()

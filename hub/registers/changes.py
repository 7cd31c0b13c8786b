"""Changes the external registers report while the hub runs, as typed values, and how each one
changes a ``RegistrationData`` snapshot.

Decides: the kinds of register change (a change of electricity supplier as ECOES reports it, a
change of gas supplier at a supply point, an agent appointment and its end, an ESCO consent and
its withdrawal, a change of tenancy, a new meter point, a change of the settlement flag), that
each carries a unique, ordered id (its register and the sequence number the register's file
carries) and an effective UK day, whether a change fits the registers it is applied to
(``change_problem``), and what applying it does (``apply_change``: deterministic, no I/O; the
same id applied twice is a no-op).
Must never: read a file or a clock, or decide what follows from a change at the hub (access
moves by itself, since access reads the registers on the request's day; stopping schedules and
telling the losing supplier are the engine's, ``hub.engine.register_changes``). The plain
records changes are stored as are ``hub.registers.change_records``'s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from functools import total_ordering

from hub.reference.roles import Fuel
from hub.registers.registration import (
    AgentAppointment,
    Consent,
    MeterPoint,
    RegistrationData,
    Settlement,
    SupplierRegistration,
)


class Register(StrEnum):
    """The register (and change file family) a change comes from."""

    ELECTRICITY = "electricity"
    """The ECOES-like electricity register."""
    GAS = "gas"
    """The gas supply-point register."""
    APPOINTMENTS = "appointments"
    """Suppliers' appointments of agents."""
    CONSENTS = "consents"
    """Customers' consents for ESCOs."""


_REGISTER_ORDER = {r: i for i, r in enumerate(Register)}


@total_ordering
@dataclass(frozen=True, slots=True)
class ChangeId:
    """A change's identity: its register and the sequence number its file carries. Ordered by
    register, then sequence number."""

    register: Register
    """The register that reported it."""
    seq: int
    """The register's sequence number of the change (positive, increasing in a file)."""

    def __post_init__(self) -> None:
        if self.seq < 1:
            raise ValueError(f"change sequence number must be positive, not {self.seq}")

    def __str__(self) -> str:
        return f"{self.register.value}:{self.seq}"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ChangeId):
            return NotImplemented
        return (_REGISTER_ORDER[self.register], self.seq) < (
            _REGISTER_ORDER[other.register],
            other.seq,
        )

    @classmethod
    def parse(cls, text: str) -> ChangeId:
        """The id written as ``register:seq`` (``ValueError`` if it is not one)."""
        register, _, seq = text.partition(":")
        if not seq.isdigit():
            raise ValueError(f"change id {text!r} is not register:sequence")
        return cls(Register(register), int(seq))


class ChangeError(ValueError):
    """A change that does not fit the registers it is applied to; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ElectricitySupplierChange:
    """A change of electricity supplier as ECOES reports it: the gaining supplier's
    registration of the MPAN starts on ``effective``; the one in force then ends that day."""

    change_id: ChangeId
    """Unique, ordered id."""
    effective: date
    """First UK day of the gaining supplier's registration."""
    mpxn: str
    """The MPAN core."""
    supplier: str
    """Party id of the gaining supplier."""
    source: str = ""
    """Where it was read (file:line), for the audit; not part of its identity."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GasSupplierChange:
    """A change of gas supplier at a supply point, as the gas register reports it."""

    change_id: ChangeId
    """Unique, ordered id."""
    effective: date
    """First UK day of the gaining supplier's registration."""
    mpxn: str
    """The MPRN."""
    supplier: str
    """Party id of the gaining supplier."""
    source: str = ""
    """Where it was read (file:line), for the audit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentAppointed:
    """A supplier appoints an agent (RSA) to a meter point from ``effective``."""

    change_id: ChangeId
    """Unique, ordered id."""
    effective: date
    """First UK day of the appointment."""
    agent: str
    """Party id of the agent."""
    supplier: str
    """Party id of the appointing supplier."""
    mpxn: str
    """The meter point."""
    ends: date | None = None
    """First day after the appointment (None: open ended)."""
    source: str = ""
    """Where it was read (file:line), for the audit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentAppointmentEnded:
    """A supplier's appointment of an agent to a meter point ends: ``effective`` is the first
    day it no longer applies."""

    change_id: ChangeId
    """Unique, ordered id."""
    effective: date
    """First UK day without the appointment."""
    agent: str
    """Party id of the agent."""
    supplier: str
    """Party id of the appointing supplier."""
    mpxn: str
    """The meter point."""
    source: str = ""
    """Where it was read (file:line), for the audit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentGiven:
    """A customer gives an ESCO consent to reach a meter point from ``effective``."""

    change_id: ChangeId
    """Unique, ordered id."""
    effective: date
    """First UK day of the consent."""
    esco: str
    """Party id of the ESCO or other user."""
    mpxn: str
    """The meter point."""
    expires: date | None = None
    """First day it no longer applies (None: until a change of tenancy)."""
    source: str = ""
    """Where it was read (file:line), for the audit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentWithdrawn:
    """A customer withdraws an ESCO's consent: ``effective`` is the first day without it."""

    change_id: ChangeId
    """Unique, ordered id."""
    effective: date
    """First UK day without the consent."""
    esco: str
    """Party id of the ESCO or other user."""
    mpxn: str
    """The meter point."""
    source: str = ""
    """Where it was read (file:line), for the audit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TenancyChange:
    """A new occupier takes over the premises of a meter point on ``effective`` (every ESCO
    consent given before ends that day)."""

    change_id: ChangeId
    """Unique, ordered id."""
    effective: date
    """The UK day the new occupier takes over."""
    mpxn: str
    """The meter point."""
    source: str = ""
    """Where it was read (file:line), for the audit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewMeterPoint:
    """A new connection: a meter point enters the register, with its first supplier's
    registration (if any) starting on ``effective``."""

    change_id: ChangeId
    """Unique, ordered id."""
    effective: date
    """First UK day of the first registration."""
    meter_point: MeterPoint
    """The new meter point as the register shows it (its registrations start on
    ``effective``; no tenancy or settlement changes yet)."""
    source: str = ""
    """Where it was read (file:line), for the audit."""

    @property
    def mpxn(self) -> str:
        """The new MPAN or MPRN."""
        return self.meter_point.mpxn


@dataclass(frozen=True, slots=True, kw_only=True)
class SettlementChange:
    """An electricity meter point's settlement flag changes (half-hourly or not) from
    ``effective``."""

    change_id: ChangeId
    """Unique, ordered id."""
    effective: date
    """First UK day settled the new way."""
    mpxn: str
    """The MPAN core."""
    settlement: Settlement
    """How it is settled from then on."""
    source: str = ""
    """Where it was read (file:line), for the audit."""


RegisterChange = (
    ElectricitySupplierChange
    | GasSupplierChange
    | AgentAppointed
    | AgentAppointmentEnded
    | ConsentGiven
    | ConsentWithdrawn
    | TenancyChange
    | NewMeterPoint
    | SettlementChange
)
"""Any one register change."""

SupplierChange = ElectricitySupplierChange | GasSupplierChange
"""A change of supplier, of either fuel."""


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """The changes of one change file (or one scenario event), applied all or none, in order.
    A file that could not be read is a batch with a ``problem`` and no changes (refused and
    audited, nothing applied)."""

    source: str
    """Where the batch comes from (the file's name), for the audit and the answer."""
    changes: tuple[RegisterChange, ...] = ()
    """The changes, in file order."""
    problem: str | None = None
    """Why the file was refused before any change was read (``file:line: reason``)."""
    offer: int = 0
    """The driver's number for this offer of the batch (a file offered again gets a new one),
    so that it can tell the engine's answer to it from the answer to an earlier offer."""


@dataclass(frozen=True, slots=True)
class StoredChange:
    """A change as the store keeps it: applied, and whether its effective-day consequences at
    the hub (schedules re-checked, the losing supplier told) have been carried out."""

    change: RegisterChange
    """The change applied."""
    done: bool
    """Its effective day's consequences are carried out."""


# ---- checking and applying -----------------------------------------------------------------


def change_problem(data: RegistrationData, change: RegisterChange) -> str | None:
    """What makes ``change`` unfit for the registers ``data`` holds, or None (an id already
    applied is always fit: applying it again does nothing)."""
    if str(change.change_id) in data.applied:
        return None
    if isinstance(change, NewMeterPoint):
        if change.mpxn in data.meter_points:
            return f"meter point {change.mpxn} is already in the register"
        return None
    mp = data.meter_points.get(change.mpxn)
    if mp is None:
        return f"meter point {change.mpxn} is not in any register"
    check = _CHECKS.get(type(change))
    return None if check is None else check(data, mp, change)


def apply_change(data: RegistrationData, change: RegisterChange) -> bool:
    """Apply ``change`` to ``data`` in place (no I/O; the same inputs give the same result).
    False, and nothing changed, if its id was applied already; ``ChangeError`` if it does not
    fit (nothing changed)."""
    key = str(change.change_id)
    if key in data.applied:
        return False
    problem = change_problem(data, change)
    if problem is not None:
        raise ChangeError(f"{change.change_id}: {problem}")
    _APPLY[type(change)](data, change)
    data.applied.add(key)
    return True


def losing_supplier(data: RegistrationData, change: SupplierChange) -> str | None:
    """The supplier a change of supplier takes the meter point from: the one registered on its
    effective day as the registers stand before it is applied (else the last one before)."""
    mp = data.meter_points.get(change.mpxn)
    if mp is None:
        return None
    loser = mp.supplier_on(change.effective)
    if loser is None:
        before = [r for r in mp.registrations if r.effective_from < change.effective]
        loser = before[-1].supplier if before else None
    return None if loser == change.supplier else loser


def _check_supplier(data: RegistrationData, mp: MeterPoint, change: RegisterChange) -> str | None:
    assert isinstance(change, ElectricitySupplierChange | GasSupplierChange)
    fuel = Fuel.ELECTRICITY if isinstance(change, ElectricitySupplierChange) else Fuel.GAS
    if mp.fuel is not fuel:
        return f"{change.mpxn} is a {mp.fuel.value} meter point, not {fuel.value}"
    if mp.supplier_on(change.effective) == change.supplier:
        return f"{change.supplier} is already registered for {change.mpxn} on {change.effective}"
    return None


def _check_settlement(data: RegistrationData, mp: MeterPoint, change: RegisterChange) -> str | None:
    assert isinstance(change, SettlementChange)
    if mp.fuel is not Fuel.ELECTRICITY:
        return f"{change.mpxn} is a gas meter point: gas is not settled half-hourly"
    return None


def _check_appointment_end(
    data: RegistrationData, mp: MeterPoint, change: RegisterChange
) -> str | None:
    assert isinstance(change, AgentAppointmentEnded)
    if not _ending(data.appointments.get(change.mpxn, []), change):
        return (
            f"{change.agent} holds no appointment by {change.supplier} to {change.mpxn} "
            f"in force on or after {change.effective}"
        )
    return None


def _check_withdrawal(data: RegistrationData, mp: MeterPoint, change: RegisterChange) -> str | None:
    assert isinstance(change, ConsentWithdrawn)
    if not _withdrawn(data.consents.get(change.mpxn, []), change):
        return f"{change.esco} holds no consent for {change.mpxn} on or after {change.effective}"
    return None


def _check_dates(data: RegistrationData, mp: MeterPoint, change: RegisterChange) -> str | None:
    ends = change.ends if isinstance(change, AgentAppointed) else None
    if isinstance(change, ConsentGiven):
        ends = change.expires
    if ends is not None and ends <= change.effective:
        return f"it ends ({ends}) on or before it starts ({change.effective})"
    return None


_CHECKS: Mapping[type, Callable[[RegistrationData, MeterPoint, RegisterChange], str | None]] = {
    ElectricitySupplierChange: _check_supplier,
    GasSupplierChange: _check_supplier,
    SettlementChange: _check_settlement,
    AgentAppointmentEnded: _check_appointment_end,
    ConsentWithdrawn: _check_withdrawal,
    AgentAppointed: _check_dates,
    ConsentGiven: _check_dates,
}


def _ending(appointments: list[AgentAppointment], change: AgentAppointmentEnded) -> list[int]:
    """Indexes of the appointments the end applies to: this agent's by this supplier, in force
    on or after the end day."""
    return [
        i
        for i, a in enumerate(appointments)
        if a.agent == change.agent
        and a.supplier == change.supplier
        and (a.effective_to is None or a.effective_to > change.effective)
    ]


def _withdrawn(consents: list[Consent], change: ConsentWithdrawn) -> list[int]:
    return [
        i
        for i, c in enumerate(consents)
        if c.esco == change.esco and (c.expires is None or c.expires > change.effective)
    ]


def _apply_supplier(data: RegistrationData, change: RegisterChange) -> None:
    assert isinstance(change, ElectricitySupplierChange | GasSupplierChange)
    mp = data.meter_points[change.mpxn]
    day = change.effective
    kept: list[SupplierRegistration] = []
    for reg in mp.registrations:
        if reg.effective_from >= day:
            continue  # a booked registration the new change supersedes (the latest report wins)
        if reg.effective_to is None or reg.effective_to > day:
            reg = replace(reg, effective_to=day)
        kept.append(reg)
    kept.append(SupplierRegistration(change.supplier, day))
    data.meter_points[change.mpxn] = replace(mp, registrations=tuple(kept))


def _apply_tenancy(data: RegistrationData, change: RegisterChange) -> None:
    assert isinstance(change, TenancyChange)
    mp = data.meter_points[change.mpxn]
    days = tuple(sorted({*mp.tenancy_changes, change.effective}))
    data.meter_points[change.mpxn] = replace(mp, tenancy_changes=days)


def _apply_settlement(data: RegistrationData, change: RegisterChange) -> None:
    assert isinstance(change, SettlementChange)
    mp = data.meter_points[change.mpxn]
    others = [(d, s) for d, s in mp.settlement_changes if d != change.effective]
    history = tuple(sorted([*others, (change.effective, change.settlement)]))
    data.meter_points[change.mpxn] = replace(mp, settlement_changes=history)


def _apply_new(data: RegistrationData, change: RegisterChange) -> None:
    assert isinstance(change, NewMeterPoint)
    data.meter_points[change.mpxn] = change.meter_point


def _apply_appointed(data: RegistrationData, change: RegisterChange) -> None:
    assert isinstance(change, AgentAppointed)
    data.appointments.setdefault(change.mpxn, []).append(
        AgentAppointment(change.agent, change.supplier, change.mpxn, change.effective, change.ends)
    )


def _apply_appointment_end(data: RegistrationData, change: RegisterChange) -> None:
    assert isinstance(change, AgentAppointmentEnded)
    appointments = data.appointments[change.mpxn]
    for i in _ending(appointments, change):
        a = appointments[i]
        appointments[i] = replace(a, effective_to=max(a.effective_from, change.effective))


def _apply_consent(data: RegistrationData, change: RegisterChange) -> None:
    assert isinstance(change, ConsentGiven)
    data.consents.setdefault(change.mpxn, []).append(
        Consent(change.esco, change.mpxn, change.effective, change.expires)
    )


def _apply_withdrawal(data: RegistrationData, change: RegisterChange) -> None:
    assert isinstance(change, ConsentWithdrawn)
    consents = data.consents[change.mpxn]
    for i in _withdrawn(consents, change):
        c = consents[i]
        consents[i] = replace(c, expires=max(c.granted, change.effective))


_APPLY: Mapping[type, Callable[[RegistrationData, RegisterChange], None]] = {
    ElectricitySupplierChange: _apply_supplier,
    GasSupplierChange: _apply_supplier,
    TenancyChange: _apply_tenancy,
    SettlementChange: _apply_settlement,
    NewMeterPoint: _apply_new,
    AgentAppointed: _apply_appointed,
    AgentAppointmentEnded: _apply_appointment_end,
    ConsentGiven: _apply_consent,
    ConsentWithdrawn: _apply_withdrawal,
}


__all__ = [
    "AgentAppointed",
    "AgentAppointmentEnded",
    "ChangeBatch",
    "ChangeError",
    "ChangeId",
    "ConsentGiven",
    "ConsentWithdrawn",
    "ElectricitySupplierChange",
    "GasSupplierChange",
    "NewMeterPoint",
    "Register",
    "RegisterChange",
    "SettlementChange",
    "StoredChange",
    "SupplierChange",
    "TenancyChange",
    "apply_change",
    "change_problem",
    "losing_supplier",
]

"""Registration data read from external registers, and the port the drivers implement.

Decides: who is registered supplier of a meter point on a date, which agents a supplier has
appointed on a date, whether an ESCO's customer consent is live on a date (consent ends
at its expiry or at the first change of tenancy after it was given), and how a meter point is
settled on a date. The changes the registers report while the hub runs are applied to this
snapshot by ``hub.registers.changes``, which records their ids here.
Must never: change registration on its own account; the hub reads the registers, it never
runs them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Protocol

from hub.reference.mpxn import mpan_problem, mprn_problem
from hub.reference.roles import Fuel

HUB_DATA_COLLECTOR = "DCC"
"""Data collector code the registers show when the hub reads the smart meter."""


@dataclass(frozen=True, slots=True)
class SupplierRegistration:
    """One supplier's registration of a meter point, for a half-open range of days."""

    supplier: str
    """Party id of the registered supplier."""
    effective_from: date
    """First day of the registration."""
    effective_to: date | None = None
    """First day after the registration ends (None: open ended)."""

    def covers(self, day: date) -> bool:
        """True when the registration is in force on ``day``."""
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)


class Settlement(StrEnum):
    """How consumption at the meter point is settled."""

    HALF_HOURLY = "HH"
    NON_HALF_HOURLY = "NHH"


@dataclass(frozen=True, slots=True)
class MeterPoint:
    """One meter point as the external register shows it."""

    mpxn: str
    """MPAN core (electricity) or MPRN (gas)."""
    fuel: Fuel
    """Electricity or gas."""
    area: str
    """Distributor id 10-23 (electricity) or local distribution zone code (gas)."""
    network_operator: str
    """Party id of the distributor or gas transporter for the area."""
    registrations: tuple[SupplierRegistration, ...]
    """Supplier registrations in date order (change of supplier appears here)."""
    data_collector: str = HUB_DATA_COLLECTOR
    """Appointed data collector: the hub, or another agent's code."""
    smart: bool = True
    """A smart meter is installed."""
    settlement: Settlement = Settlement.HALF_HOURLY
    """Half-hourly settlement (smart electricity) or not."""
    domestic: bool = True
    """Domestic or non-domestic customer."""
    export: bool = False
    """An export MPAN (its supplier acts as export supplier)."""
    tenancy_changes: tuple[date, ...] = ()
    """Days on which a new occupier took over (change of tenancy), in order."""
    settlement_changes: tuple[tuple[date, Settlement], ...] = ()
    """Changes of the settlement flag reported while the hub runs: (first day, settlement),
    in date order; before the first, ``settlement`` holds."""

    def __post_init__(self) -> None:
        problem = (
            mpan_problem(self.mpxn) if self.fuel is Fuel.ELECTRICITY else mprn_problem(self.mpxn)
        )
        if problem:
            raise ValueError(problem)
        if self.export and self.fuel is not Fuel.ELECTRICITY:
            raise ValueError(f"{self.mpxn}: only electricity meter points export")
        for a, b in zip(self.registrations, self.registrations[1:], strict=False):
            if a.effective_to is None or a.effective_to > b.effective_from:
                raise ValueError(f"{self.mpxn}: supplier registrations overlap")

    def supplier_on(self, day: date) -> str | None:
        """The registered supplier on ``day``, or None if nobody is."""
        for reg in self.registrations:
            if reg.covers(day):
                return reg.supplier
        return None

    def is_future_supplier(self, party: str, day: date) -> bool:
        """True when ``party`` holds a registration that starts after ``day``."""
        return any(r.supplier == party and r.effective_from > day for r in self.registrations)

    def settlement_on(self, day: date) -> Settlement:
        """How the meter point is settled on ``day``."""
        current = self.settlement
        for first, settlement in self.settlement_changes:
            if first > day:
                break
            current = settlement
        return current

    @property
    def served_by_hub(self) -> bool:
        """The hub is the appointed data collector."""
        return self.data_collector == HUB_DATA_COLLECTOR


@dataclass(frozen=True, slots=True)
class AgentAppointment:
    """A supplier's appointment of an agent (RSA) to a meter point for a range of days."""

    agent: str
    """Party id of the agent."""
    supplier: str
    """Party id of the appointing supplier."""
    mpxn: str
    """The meter point."""
    effective_from: date
    """First day of the appointment."""
    effective_to: date | None = None
    """First day after it ends (None: open ended)."""

    def covers(self, day: date) -> bool:
        """True when the appointment is in force on ``day``."""
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)


@dataclass(frozen=True, slots=True)
class Consent:
    """A customer's consent for an ESCO (OU) to access a meter point."""

    esco: str
    """Party id of the ESCO or other user."""
    mpxn: str
    """The meter point."""
    granted: date
    """Day the consent starts."""
    expires: date | None = None
    """First day it no longer applies (None: until a change of tenancy)."""


@dataclass(slots=True)
class RegistrationData:
    """An indexed snapshot of the registers, appointments and consents."""

    meter_points: dict[str, MeterPoint] = field(default_factory=dict)
    appointments: dict[str, list[AgentAppointment]] = field(default_factory=dict)
    consents: dict[str, list[Consent]] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)
    """Ids of the register changes applied to this snapshot (``hub.registers.changes``)."""

    @classmethod
    def build(
        cls,
        meter_points: Iterable[MeterPoint],
        appointments: Iterable[AgentAppointment] = (),
        consents: Iterable[Consent] = (),
    ) -> RegistrationData:
        """Index records by meter point; a duplicate meter point is an error."""
        data = cls()
        for mp in meter_points:
            if mp.mpxn in data.meter_points:
                raise ValueError(f"meter point {mp.mpxn} appears twice")
            data.meter_points[mp.mpxn] = mp
        for ap in appointments:
            data.appointments.setdefault(ap.mpxn, []).append(ap)
        for c in consents:
            data.consents.setdefault(c.mpxn, []).append(c)
        return data

    def meter_point(self, mpxn: str) -> MeterPoint | None:
        """The meter point record, or None if no register knows it."""
        return self.meter_points.get(mpxn)

    def agent_appointed(self, agent: str, mpxn: str, day: date) -> bool:
        """True when the supplier registered on ``day`` has appointed ``agent`` on that day."""
        mp = self.meter_points.get(mpxn)
        if mp is None:
            return False
        supplier = mp.supplier_on(day)
        return any(
            a.agent == agent and a.supplier == supplier and a.covers(day)
            for a in self.appointments.get(mpxn, ())
        )

    def consent_live(self, esco: str, mpxn: str, day: date) -> bool:
        """True when ``esco`` holds customer consent for ``mpxn`` on ``day``."""
        mp = self.meter_points.get(mpxn)
        if mp is None:
            return False
        for c in self.consents.get(mpxn, ()):
            if c.esco != esco or day < c.granted:
                continue
            if c.expires is not None and day >= c.expires:
                continue
            if any(c.granted < t <= day for t in mp.tenancy_changes):
                continue  # a new occupier has moved in since consent was given
            return True
        return False


class RegistrationSource(Protocol):
    """Port for an external register provider (ECOES-like, gas supply-point register): the
    first load. The changes the registers report while the hub runs come as batches of
    ``hub.registers.changes`` to ``HubEngine.on_register_changes`` (the live driver reads them
    from change files: ``actors.register_feed``)."""

    def load(self) -> RegistrationData:
        """Read the registers and return an indexed snapshot."""
        ...

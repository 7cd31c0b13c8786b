"""The plain record each register change is stored as, and its kind's name.

Decides: the kind names (``ChangeKind``, the text the audit and the store use) and the record
of each change kind (a flat mapping of strings, booleans and lists; ``change_from_record``
reads back exactly what ``change_record`` wrote).
Must never: open a file or a database (the stores serialise the record), or apply a change.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum

from hub.reference.roles import Fuel
from hub.registers.changes import (
    AgentAppointed,
    AgentAppointmentEnded,
    ChangeId,
    ConsentGiven,
    ConsentWithdrawn,
    ElectricitySupplierChange,
    GasSupplierChange,
    NewMeterPoint,
    RegisterChange,
    SettlementChange,
    TenancyChange,
)
from hub.registers.registration import MeterPoint, Settlement, SupplierRegistration


class ChangeKind(StrEnum):
    """The kind of a change, as its stored record names it."""

    ELECTRICITY_SUPPLIER = "electricity_supplier"
    GAS_SUPPLIER = "gas_supplier"
    AGENT_APPOINTED = "agent_appointed"
    AGENT_APPOINTMENT_ENDED = "agent_appointment_ended"
    CONSENT_GIVEN = "consent_given"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    TENANCY = "tenancy"
    NEW_METER_POINT = "new_meter_point"
    SETTLEMENT = "settlement"


_KIND_OF: Mapping[type, ChangeKind] = {
    ElectricitySupplierChange: ChangeKind.ELECTRICITY_SUPPLIER,
    GasSupplierChange: ChangeKind.GAS_SUPPLIER,
    AgentAppointed: ChangeKind.AGENT_APPOINTED,
    AgentAppointmentEnded: ChangeKind.AGENT_APPOINTMENT_ENDED,
    ConsentGiven: ChangeKind.CONSENT_GIVEN,
    ConsentWithdrawn: ChangeKind.CONSENT_WITHDRAWN,
    TenancyChange: ChangeKind.TENANCY,
    NewMeterPoint: ChangeKind.NEW_METER_POINT,
    SettlementChange: ChangeKind.SETTLEMENT,
}


def kind_of(change: RegisterChange) -> ChangeKind:
    """The kind of ``change``."""
    return _KIND_OF[type(change)]


Record = dict[str, "str | bool | list[list[str | None]] | None"]


def _day(text: object) -> date | None:
    return None if text is None else date.fromisoformat(str(text))


def _text(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def change_record(change: RegisterChange) -> Record:
    """The plain record a change is stored as (``change_from_record`` reads it back)."""
    record: Record = {
        "kind": kind_of(change).value,
        "change_id": str(change.change_id),
        "effective": change.effective.isoformat(),
        "source": change.source,
    }
    if isinstance(change, NewMeterPoint):
        mp = change.meter_point
        record.update(
            mpxn=mp.mpxn,
            fuel=mp.fuel.value,
            area=mp.area,
            network_operator=mp.network_operator,
            data_collector=mp.data_collector,
            smart=mp.smart,
            settlement=mp.settlement.value,
            domestic=mp.domestic,
            export=mp.export,
            registrations=[
                [r.supplier, r.effective_from.isoformat(), _text(r.effective_to)]
                for r in mp.registrations
            ],
        )
        return record
    record["mpxn"] = change.mpxn
    if isinstance(change, ElectricitySupplierChange | GasSupplierChange):
        record["supplier"] = change.supplier
    elif isinstance(change, AgentAppointed | AgentAppointmentEnded):
        record.update(agent=change.agent, supplier=change.supplier)
        if isinstance(change, AgentAppointed):
            record["ends"] = _text(change.ends)
    elif isinstance(change, ConsentGiven | ConsentWithdrawn):
        record["esco"] = change.esco
        if isinstance(change, ConsentGiven):
            record["expires"] = _text(change.expires)
    elif isinstance(change, SettlementChange):
        record["settlement"] = change.settlement.value
    return record


def change_from_record(record: Mapping[str, object]) -> RegisterChange:
    """The change a stored record holds (``ValueError`` or ``KeyError`` if it holds none)."""
    kind = ChangeKind(str(record["kind"]))
    cid = ChangeId.parse(str(record["change_id"]))
    eff = date.fromisoformat(str(record["effective"]))
    src = str(record.get("source", ""))
    s = {k: v for k, v in record.items() if isinstance(v, str)}
    if kind is ChangeKind.NEW_METER_POINT:
        raw = record["registrations"]
        if not isinstance(raw, list):
            raise ValueError("registrations must be a list")
        mp = MeterPoint(
            mpxn=s["mpxn"],
            fuel=Fuel(s["fuel"]),
            area=s["area"],
            network_operator=s["network_operator"],
            registrations=tuple(
                SupplierRegistration(str(sup), date.fromisoformat(str(f)), _day(t))
                for sup, f, t in raw
            ),
            data_collector=s["data_collector"],
            smart=bool(record["smart"]),
            settlement=Settlement(s["settlement"]),
            domestic=bool(record["domestic"]),
            export=bool(record["export"]),
        )
        return NewMeterPoint(change_id=cid, effective=eff, meter_point=mp, source=src)
    mpxn = s["mpxn"]
    if kind is ChangeKind.ELECTRICITY_SUPPLIER:
        return ElectricitySupplierChange(
            change_id=cid, effective=eff, mpxn=mpxn, supplier=s["supplier"], source=src
        )
    if kind is ChangeKind.GAS_SUPPLIER:
        return GasSupplierChange(
            change_id=cid, effective=eff, mpxn=mpxn, supplier=s["supplier"], source=src
        )
    if kind is ChangeKind.AGENT_APPOINTED:
        return AgentAppointed(
            change_id=cid,
            effective=eff,
            agent=s["agent"],
            supplier=s["supplier"],
            mpxn=mpxn,
            ends=_day(record.get("ends")),
            source=src,
        )
    if kind is ChangeKind.AGENT_APPOINTMENT_ENDED:
        return AgentAppointmentEnded(
            change_id=cid,
            effective=eff,
            agent=s["agent"],
            supplier=s["supplier"],
            mpxn=mpxn,
            source=src,
        )
    if kind is ChangeKind.CONSENT_GIVEN:
        return ConsentGiven(
            change_id=cid,
            effective=eff,
            esco=s["esco"],
            mpxn=mpxn,
            expires=_day(record.get("expires")),
            source=src,
        )
    if kind is ChangeKind.CONSENT_WITHDRAWN:
        return ConsentWithdrawn(change_id=cid, effective=eff, esco=s["esco"], mpxn=mpxn, source=src)
    if kind is ChangeKind.TENANCY:
        return TenancyChange(change_id=cid, effective=eff, mpxn=mpxn, source=src)
    return SettlementChange(
        change_id=cid,
        effective=eff,
        mpxn=mpxn,
        settlement=Settlement(s["settlement"]),
        source=src,
    )

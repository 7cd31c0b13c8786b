"""The change files the registers drop into a fleet's inbox: one CSV format per register, parsed
into typed changes (``hub.registers.changes``) and written back.

Decides: which file name prefix is which register, each register's columns and events, which
columns an event needs and which it must leave empty, that sequence numbers rise strictly down a
file, and the bounds on one file (``MAX_CHANGE_FILE_BYTES``, ``MAX_CHANGE_ROWS``). A whole file is
parsed before anything of it is used: a bad row refuses the file with ``RecordError(file, line,
reason)``. The format is in ``docs/fleet-files.md``.
Must never: open a file (the drivers' adapters do), or check a change against the registers
(``hub.registers.changes.change_problem`` does, in the engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date

from hub.reference.mpxn import DISTRIBUTOR_IDS, mpan_problem, mprn_problem
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
    Register,
    RegisterChange,
    SettlementChange,
    TenancyChange,
)
from hub.registers.records._common import csv_line, date_parser, day_text, flag, flag_text, table
from hub.registers.records.formats import GAS_LDZS, RecordError
from hub.registers.registration import MeterPoint, Settlement, SupplierRegistration

MAX_CHANGE_FILE_BYTES = 16 * 1024 * 1024
"""A change file larger than this is refused unread (the adapter checks its size)."""
MAX_CHANGE_ROWS = 100_000
"""A change file with more data rows than this is refused."""

HEADERS: Mapping[Register, tuple[str, ...]] = {
    Register.ELECTRICITY: (
        "seq",
        "event",
        "effective",
        "mpan",
        "supplier",
        "area",
        "network_operator",
        "data_collector",
        "smart",
        "settlement",
        "domestic",
        "export",
    ),
    Register.GAS: (
        "seq",
        "event",
        "effective",
        "mprn",
        "supplier",
        "ldz",
        "network_operator",
        "data_collector",
        "smart",
        "domestic",
    ),
    Register.APPOINTMENTS: ("seq", "event", "effective", "agent", "supplier", "mpxn", "ends"),
    Register.CONSENTS: ("seq", "event", "effective", "esco", "mpxn", "expires"),
}
"""Each register's header row."""

_NEW_ELECTRICITY = (
    "area",
    "network_operator",
    "data_collector",
    "smart",
    "settlement",
    "domestic",
    "export",
)
_NEW_GAS = ("ldz", "network_operator", "data_collector", "smart", "domestic")

EVENTS: Mapping[Register, Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    Register.ELECTRICITY: {
        "supplier": (("supplier",), ()),
        "tenancy": ((), ()),
        "settlement": (("settlement",), ()),
        "new": (_NEW_ELECTRICITY, ("supplier",)),
    },
    Register.GAS: {
        "supplier": (("supplier",), ()),
        "tenancy": ((), ()),
        "new": (_NEW_GAS, ("supplier",)),
    },
    Register.APPOINTMENTS: {
        "appoint": (("agent", "supplier", "mpxn"), ("ends",)),
        "end": (("agent", "supplier", "mpxn"), ()),
    },
    Register.CONSENTS: {
        "give": (("esco", "mpxn"), ("expires",)),
        "withdraw": (("esco", "mpxn"), ()),
    },
}
"""Per register and event: the columns it needs and those it may fill (every other column
after ``effective`` must be empty)."""

_KEY = {Register.ELECTRICITY: "mpan", Register.GAS: "mprn"}
_AREAS = frozenset(DISTRIBUTOR_IDS)
_LDZS = frozenset(GAS_LDZS)
_SETTLEMENTS = {s.value: s for s in Settlement}


def register_of(name: str) -> Register | None:
    """The register a change file's name says it holds (``<register>-<anything>.csv``), or
    None for a name that is no change file's."""
    if not name.endswith(".csv"):
        return None
    prefix, dash, _ = name.partition("-")
    if not dash:
        return None
    try:
        return Register(prefix)
    except ValueError:
        return None


def parse_change_file(
    lines: Iterable[str], file: str, register: Register
) -> tuple[RegisterChange, ...]:
    """Every change of one change file, in file order; ``RecordError(file, line, reason)`` for
    the first bad row (and nothing is returned)."""
    header = HEADERS[register]
    events = EVENTS[register]
    parse_date = date_parser()
    out: list[RegisterChange] = []
    last_seq = 0
    with table(lines, file, header) as (rows, reader):
        for row in rows:
            if len(out) >= MAX_CHANGE_ROWS:
                raise ValueError(f"more than {MAX_CHANGE_ROWS} changes in one file")
            cells = dict(zip(header, row, strict=True))
            seq_text = cells["seq"]
            if not seq_text.isdigit() or int(seq_text) < 1:
                raise ValueError(f"seq must be a positive whole number, not {seq_text!r}")
            seq = int(seq_text)
            if seq <= last_seq:
                raise ValueError(f"seq {seq} does not follow {last_seq} (it must rise)")
            last_seq = seq
            event = cells["event"]
            if event not in events:
                raise ValueError(f"event must be one of {' '.join(events)}, not {event!r}")
            needed, optional = events[event]
            for column in needed:
                if not cells[column]:
                    raise ValueError(f"{column} is empty (a {event} change needs it)")
            for column in header[4 if register in _KEY else 3 :]:
                if cells[column] and column not in needed and column not in optional:
                    raise ValueError(f"{column} must be empty in a {event} change")
            effective = parse_date(cells["effective"], "effective")
            source = f"{file}:{reader.line_num}"
            out.append(
                _BUILD[register](
                    ChangeId(register, seq), effective, event, cells, source, parse_date
                )
            )
    return tuple(out)


def _number(cells: Mapping[str, str], register: Register) -> str:
    column = _KEY[register]
    number = cells[column]
    problem = mpan_problem(number) if register is Register.ELECTRICITY else mprn_problem(number)
    if problem:
        raise ValueError(f"{column}: {problem}")
    return number


def _new(
    cid: ChangeId, effective: date, cells: Mapping[str, str], source: str, fuel: Fuel, mpxn: str
) -> NewMeterPoint:
    registrations = (
        (SupplierRegistration(cells["supplier"], effective),) if cells["supplier"] else ()
    )
    if fuel is Fuel.ELECTRICITY:
        area = cells["area"]
        if area not in _AREAS:
            raise ValueError(f"area {area!r} is not a distributor id 10-23")
        if not mpxn.startswith(area):
            raise ValueError(f"area {area} does not match MPAN {mpxn}")
        settlement = _SETTLEMENTS.get(cells["settlement"])
        if settlement is None:
            raise ValueError(f"settlement must be HH or NHH, not {cells['settlement']!r}")
        export = flag(cells["export"], "export")
    else:
        area = cells["ldz"]
        if area not in _LDZS:
            raise ValueError(f"ldz {area!r} is not one of {' '.join(GAS_LDZS)}")
        settlement, export = Settlement.NON_HALF_HOURLY, False
    mp = MeterPoint(
        mpxn,
        fuel,
        area,
        cells["network_operator"],
        registrations,
        cells["data_collector"],
        flag(cells["smart"], "smart"),
        settlement,
        flag(cells["domestic"], "domestic"),
        export,
    )
    return NewMeterPoint(change_id=cid, effective=effective, meter_point=mp, source=source)


DateParser = Callable[[str, str], date]


def _electricity(
    cid: ChangeId,
    effective: date,
    event: str,
    cells: Mapping[str, str],
    source: str,
    parse_date: DateParser,
) -> RegisterChange:
    mpan = _number(cells, Register.ELECTRICITY)
    if event == "supplier":
        return ElectricitySupplierChange(
            change_id=cid, effective=effective, mpxn=mpan, supplier=cells["supplier"], source=source
        )
    if event == "tenancy":
        return TenancyChange(change_id=cid, effective=effective, mpxn=mpan, source=source)
    if event == "settlement":
        settlement = _SETTLEMENTS.get(cells["settlement"])
        if settlement is None:
            raise ValueError(f"settlement must be HH or NHH, not {cells['settlement']!r}")
        return SettlementChange(
            change_id=cid, effective=effective, mpxn=mpan, settlement=settlement, source=source
        )
    return _new(cid, effective, cells, source, Fuel.ELECTRICITY, mpan)


def _gas(
    cid: ChangeId,
    effective: date,
    event: str,
    cells: Mapping[str, str],
    source: str,
    parse_date: DateParser,
) -> RegisterChange:
    mprn = _number(cells, Register.GAS)
    if event == "supplier":
        return GasSupplierChange(
            change_id=cid, effective=effective, mpxn=mprn, supplier=cells["supplier"], source=source
        )
    if event == "tenancy":
        return TenancyChange(change_id=cid, effective=effective, mpxn=mprn, source=source)
    return _new(cid, effective, cells, source, Fuel.GAS, mprn)


def _any_number(mpxn: str) -> str:
    problem = mpan_problem(mpxn) if len(mpxn) == 13 else mprn_problem(mpxn)
    if problem:
        raise ValueError(f"mpxn: {problem}")
    return mpxn


def _end_after(start: date, end: date | None, column: str) -> date | None:
    if end is not None and end <= start:
        raise ValueError(f"{column} {end} is not after effective {start}")
    return end


def _appointments(
    cid: ChangeId,
    effective: date,
    event: str,
    cells: Mapping[str, str],
    source: str,
    parse_date: DateParser,
) -> RegisterChange:
    mpxn = _any_number(cells["mpxn"])
    if event == "appoint":
        ends = parse_date(cells["ends"], "ends") if cells["ends"] else None
        return AgentAppointed(
            change_id=cid,
            effective=effective,
            agent=cells["agent"],
            supplier=cells["supplier"],
            mpxn=mpxn,
            ends=_end_after(effective, ends, "ends"),
            source=source,
        )
    return AgentAppointmentEnded(
        change_id=cid,
        effective=effective,
        agent=cells["agent"],
        supplier=cells["supplier"],
        mpxn=mpxn,
        source=source,
    )


def _consents(
    cid: ChangeId,
    effective: date,
    event: str,
    cells: Mapping[str, str],
    source: str,
    parse_date: DateParser,
) -> RegisterChange:
    mpxn = _any_number(cells["mpxn"])
    if event == "give":
        expires = parse_date(cells["expires"], "expires") if cells["expires"] else None
        return ConsentGiven(
            change_id=cid,
            effective=effective,
            esco=cells["esco"],
            mpxn=mpxn,
            expires=_end_after(effective, expires, "expires"),
            source=source,
        )
    return ConsentWithdrawn(
        change_id=cid, effective=effective, esco=cells["esco"], mpxn=mpxn, source=source
    )


_BUILD: Mapping[
    Register,
    Callable[[ChangeId, date, str, Mapping[str, str], str, DateParser], RegisterChange],
] = {
    Register.ELECTRICITY: _electricity,
    Register.GAS: _gas,
    Register.APPOINTMENTS: _appointments,
    Register.CONSENTS: _consents,
}


# ---- writing -------------------------------------------------------------------------------


def change_file_lines(register: Register, changes: Iterable[RegisterChange]) -> Iterable[str]:
    """The lines of a change file of ``register`` holding ``changes`` (header first); a change
    of another register is a ``ValueError``."""
    header = HEADERS[register]
    yield csv_line(header)
    for change in changes:
        if change.change_id.register is not register:
            raise ValueError(f"change {change.change_id} is not of the {register} register")
        cells = dict.fromkeys(header, "")
        cells["seq"] = str(change.change_id.seq)
        cells["effective"] = change.effective.isoformat()
        _fill(cells, change, register)
        yield csv_line(cells[c] for c in header)


def _fill(cells: dict[str, str], change: RegisterChange, register: Register) -> None:
    if isinstance(change, NewMeterPoint):
        mp = change.meter_point
        cells.update(
            event="new",
            network_operator=mp.network_operator,
            data_collector=mp.data_collector,
            smart=flag_text(mp.smart),
            domestic=flag_text(mp.domestic),
        )
        cells[_KEY[register]] = mp.mpxn
        if mp.registrations:
            cells["supplier"] = mp.registrations[0].supplier
        if register is Register.ELECTRICITY:
            cells.update(area=mp.area, settlement=mp.settlement.value, export=flag_text(mp.export))
        else:
            cells["ldz"] = mp.area
        return
    if isinstance(change, ElectricitySupplierChange | GasSupplierChange):
        cells.update(event="supplier", supplier=change.supplier)
    elif isinstance(change, TenancyChange):
        cells["event"] = "tenancy"
    elif isinstance(change, SettlementChange):
        cells.update(event="settlement", settlement=change.settlement.value)
    elif isinstance(change, AgentAppointed):
        cells.update(
            event="appoint",
            agent=change.agent,
            supplier=change.supplier,
            ends=day_text(change.ends),
        )
    elif isinstance(change, AgentAppointmentEnded):
        cells.update(event="end", agent=change.agent, supplier=change.supplier)
    elif isinstance(change, ConsentGiven):
        cells.update(event="give", esco=change.esco, expires=day_text(change.expires))
    else:
        cells.update(event="withdraw", esco=change.esco)
    cells[_KEY.get(register, "mpxn")] = change.mpxn


__all__ = [
    "EVENTS",
    "HEADERS",
    "MAX_CHANGE_FILE_BYTES",
    "MAX_CHANGE_ROWS",
    "RecordError",
    "change_file_lines",
    "parse_change_file",
    "register_of",
]

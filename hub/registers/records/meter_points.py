"""Fleet file records of meter points: the electricity and gas registers and the supplier
registrations joined to them, both ways.

Decides: whether a register line is a well-formed meter point (area or gas zone, one network
operator per area, settlement, tenancy changes in order), that a meter point's registrations do
not overlap, that every registration names a meter point of a register, and which meter point a
record of another file names.
Must never: decide who is registered on a given day (the registration register does) or open
a file.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from hub.reference.mpxn import DISTRIBUTOR_IDS
from hub.reference.roles import Fuel
from hub.registers.records._common import (
    csv_line,
    date_parser,
    day_text,
    flag,
    flag_text,
    mpxn_problem,
    require,
    table,
)
from hub.registers.records.formats import (
    ELECTRICITY_REGISTER_FILE,
    ELECTRICITY_REGISTER_HEADER,
    GAS_LDZS,
    GAS_REGISTER_FILE,
    GAS_REGISTER_HEADER,
    LIST_SEPARATOR,
    REGISTRATIONS_FILE,
    REGISTRATIONS_HEADER,
    RecordError,
)
from hub.registers.registration import (
    MeterPoint,
    Settlement,
    SupplierRegistration,
)

_SETTLEMENTS = {s.value: s for s in Settlement}
_AREAS = frozenset(DISTRIBUTOR_IDS)
_LDZS = frozenset(GAS_LDZS)


@dataclass(frozen=True, slots=True)
class RegistrationTable:
    """Parsed ``registrations.csv``: each meter point's supplier registrations, in date order."""

    file: str
    """Label of the file the registrations came from."""
    by_mpxn: dict[str, tuple[SupplierRegistration, ...]]
    """Registrations per meter point, ordered by start day, checked not to overlap."""
    first_line: dict[str, int]
    """The first line naming each meter point (for errors found when joining)."""


def parse_registrations(lines: Iterable[str], file: str = REGISTRATIONS_FILE) -> RegistrationTable:
    """Parse ``registrations.csv``; a meter point's registrations must not overlap.

    Meter point numbers are checked when the registers are joined (see
    ``parse_electricity_register``, ``parse_gas_register`` and ``check_registrations_joined``).
    """
    parse_date = date_parser()
    found: dict[str, list[tuple[date, date | None, str, int]]] = {}
    shared: dict[str, str] = {}
    one = shared.setdefault
    with table(lines, file, REGISTRATIONS_HEADER) as (rows, reader):
        for mpxn, supplier, start_text, end_text in rows:
            if not (mpxn and supplier):
                require(mpxn=mpxn, supplier=supplier)
            start = parse_date(start_text, "effective_from")
            end = parse_date(end_text, "effective_to") if end_text else None
            if end is not None and end <= start:
                raise ValueError(
                    f"effective_to {end_text} is not after effective_from {start_text}"
                )
            entry = (start, end, one(supplier, supplier), reader.line_num)
            entries = found.get(mpxn)
            if entries is None:
                found[mpxn] = [entry]
            else:
                entries.append(entry)
    by_mpxn: dict[str, tuple[SupplierRegistration, ...]] = {}
    first_line: dict[str, int] = {}
    for mpxn, entries in found.items():
        if len(entries) == 1:  # the common case, kept fast
            start, end, supplier, line = entries[0]
            first_line[mpxn] = line
            by_mpxn[mpxn] = (SupplierRegistration(supplier, start, end),)
            continue
        first_line[mpxn] = entries[0][3]
        entries.sort(key=lambda e: (e[0], e[3]))
        for before, after in pairwise(entries):
            if before[1] is None or before[1] > after[0]:
                raise RecordError(
                    file,
                    max(before[3], after[3]),
                    f"registrations of {mpxn} overlap (lines {before[3]} and {after[3]})",
                )
        by_mpxn[mpxn] = tuple(SupplierRegistration(s, f, t) for f, t, s, _ in entries)
    return RegistrationTable(file, by_mpxn, first_line)


def _tenancy(text: str, parse_date: Callable[[str, str], date]) -> tuple[date, ...]:
    if not text:
        return ()
    days = tuple(parse_date(t, "tenancy_changes") for t in text.split(LIST_SEPARATOR))
    for a, b in pairwise(days):
        if b <= a:
            raise ValueError("tenancy_changes must be in increasing date order")
    return days


def _check_operator(operators: dict[str, str], area: str, operator: str, kind: str) -> None:
    known = operators.setdefault(area, operator)
    if known != operator:
        raise ValueError(
            f"{kind} {area} has network operator {operator} here but {known} on an earlier line"
        )


def parse_electricity_register(
    lines: Iterable[str],
    file: str = ELECTRICITY_REGISTER_FILE,
    *,
    registrations: RegistrationTable,
) -> list[MeterPoint]:
    """Parse ``electricity_register.csv``, joining each MPAN's rows of ``registrations``."""
    parse_date = date_parser()
    seen: set[str] = set()
    operators: dict[str, str] = {}
    out: list[MeterPoint] = []
    regs = registrations.by_mpxn
    shared: dict[str, str] = {}
    one = shared.setdefault
    with table(lines, file, ELECTRICITY_REGISTER_HEADER) as (rows, _):
        for row in rows:
            mpan, area, operator, collector, smart, settlement, domestic, export, tenancy = row
            if mpan in seen:
                raise ValueError(f"MPAN {mpan} appears twice")
            if not (operator and collector):
                require(network_operator=operator, data_collector=collector)
            settle = _SETTLEMENTS.get(settlement)
            if settle is None:
                raise ValueError(f"settlement must be HH or NHH, not {settlement!r}")
            mp = MeterPoint(
                mpan,
                Fuel.ELECTRICITY,
                one(area, area),
                one(operator, operator),
                regs.get(mpan, ()),
                one(collector, collector),
                flag(smart, "smart"),
                settle,
                flag(domestic, "domestic"),
                flag(export, "export"),
                _tenancy(tenancy, parse_date),
            )
            if area not in _AREAS:
                raise ValueError(f"area {area!r} is not a distributor id 10-23")
            if not mpan.startswith(area):
                raise ValueError(
                    f"area {area} does not match MPAN {mpan} (distributor id {mpan[:2]})"
                )
            if operators.get(area) != operator:
                _check_operator(operators, area, operator, "area")
            seen.add(mpan)
            out.append(mp)
    return out


def parse_gas_register(
    lines: Iterable[str],
    file: str = GAS_REGISTER_FILE,
    *,
    registrations: RegistrationTable,
) -> list[MeterPoint]:
    """Parse ``gas_register.csv``, joining each MPRN's rows of ``registrations``.

    Gas is not settled half-hourly: every gas meter point gets ``Settlement.NON_HALF_HOURLY``.
    """
    parse_date = date_parser()
    seen: set[str] = set()
    operators: dict[str, str] = {}
    out: list[MeterPoint] = []
    regs = registrations.by_mpxn
    shared: dict[str, str] = {}
    one = shared.setdefault
    with table(lines, file, GAS_REGISTER_HEADER) as (rows, _):
        for mprn, ldz, operator, collector, smart, domestic, tenancy in rows:
            if mprn in seen:
                raise ValueError(f"MPRN {mprn} appears twice")
            if not (operator and collector):
                require(network_operator=operator, data_collector=collector)
            mp = MeterPoint(
                mprn,
                Fuel.GAS,
                one(ldz, ldz),
                one(operator, operator),
                regs.get(mprn, ()),
                one(collector, collector),
                flag(smart, "smart"),
                Settlement.NON_HALF_HOURLY,
                flag(domestic, "domestic"),
                False,
                _tenancy(tenancy, parse_date),
            )
            if ldz not in _LDZS:
                raise ValueError(f"ldz {ldz!r} is not one of {' '.join(GAS_LDZS)}")
            if operators.get(ldz) != operator:
                _check_operator(operators, ldz, operator, "ldz")
            seen.add(mprn)
            out.append(mp)
    return out


def check_registrations_joined(
    registrations: RegistrationTable, meter_points: Container[str]
) -> None:
    """Refuse a registration whose meter point is in neither register."""
    for mpxn, line in registrations.first_line.items():
        if mpxn not in meter_points:
            problem = mpxn_problem(mpxn)
            reason = problem or f"meter point {mpxn} is in neither register"
            raise RecordError(registrations.file, line, reason)


def known_meter_point(
    mpxn: str, meter_points: Mapping[str, MeterPoint] | None
) -> MeterPoint | None:
    if meter_points is None:
        problem = mpxn_problem(mpxn)
        if problem:
            raise ValueError(problem)
        return None
    mp = meter_points.get(mpxn)
    if mp is None:
        problem = mpxn_problem(mpxn)
        raise ValueError(problem or f"meter point {mpxn} is in neither register")
    return mp


def _tenancy_text(mp: MeterPoint) -> str:
    return LIST_SEPARATOR.join(d.isoformat() for d in mp.tenancy_changes)


def format_electricity_register(meter_points: Iterable[MeterPoint]) -> Iterator[str]:
    """Lines of ``electricity_register.csv`` for the electricity meter points given."""
    yield csv_line(ELECTRICITY_REGISTER_HEADER)
    for mp in meter_points:
        if mp.fuel is Fuel.ELECTRICITY:
            yield csv_line(
                (
                    mp.mpxn,
                    mp.area,
                    mp.network_operator,
                    mp.data_collector,
                    flag_text(mp.smart),
                    mp.settlement.value,
                    flag_text(mp.domestic),
                    flag_text(mp.export),
                    _tenancy_text(mp),
                )
            )


def format_gas_register(meter_points: Iterable[MeterPoint]) -> Iterator[str]:
    """Lines of ``gas_register.csv`` for the gas meter points given."""
    yield csv_line(GAS_REGISTER_HEADER)
    for mp in meter_points:
        if mp.fuel is Fuel.GAS:
            yield csv_line(
                (
                    mp.mpxn,
                    mp.area,
                    mp.network_operator,
                    mp.data_collector,
                    flag_text(mp.smart),
                    flag_text(mp.domestic),
                    _tenancy_text(mp),
                )
            )


def format_registrations(meter_points: Iterable[MeterPoint]) -> Iterator[str]:
    """Lines of ``registrations.csv``: every registration of every meter point given."""
    yield csv_line(REGISTRATIONS_HEADER)
    for mp in meter_points:
        for r in mp.registrations:
            yield csv_line(
                (mp.mpxn, r.supplier, day_text(r.effective_from), day_text(r.effective_to))
            )

"""Fleet file records: pure parsers (and writers) for the CSV files of a fleet directory.

Decides: whether each line of a fleet file is a well-formed record, and turns good lines into
the hub's typed records (``User``, ``MeterPoint``, ``AgentAppointment``, ``Consent``,
``Product``, ``Site``, ``Device``). A bad record is refused with ``RecordError(file, line,
reason)``, the line being 1-based with the header on line 1. Checks that span files (a
registration naming an unknown meter point, a device naming an unknown site) take the already
parsed records of the other file. The formats are written down in ``docs/fleet-files.md``.
Must never: open files or read the clock; callers pass lines (any iterable of ``str``, such
as an open text file) and a label naming where they came from.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Container, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from itertools import pairwise
from typing import Protocol

from hub.reference.mpxn import DISTRIBUTOR_IDS, mpan_problem, mprn_problem
from hub.reference.parties import User, UserStatus
from hub.reference.roles import DeviceType, Fuel, Role
from hub.registers.inventory import Device, DeviceStatus, Product, Site
from hub.registers.registration import (
    AgentAppointment,
    Consent,
    MeterPoint,
    Settlement,
    SupplierRegistration,
)

# The files of a fleet directory (docs/fleet-files.md).
USERS_FILE = "users.csv"
ELECTRICITY_REGISTER_FILE = "electricity_register.csv"
GAS_REGISTER_FILE = "gas_register.csv"
REGISTRATIONS_FILE = "registrations.csv"
APPOINTMENTS_FILE = "appointments.csv"
CONSENTS_FILE = "consents.csv"
PRODUCTS_FILE = "approved_products.csv"
SITES_FILE = "sites.csv"
DEVICES_FILE = "devices.csv"
CANDIDATES_FILE = "early_smart_candidates.csv"
CANDIDATE_SITES_FILE = "early_smart_sites.csv"
MANIFEST_FILE = "fleet.json"

USERS_HEADER = ("user_id", "party_id", "name", "roles", "status", "public_key")
"""Columns of ``users.csv``."""
ELECTRICITY_REGISTER_HEADER = (
    "mpan",
    "area",
    "network_operator",
    "data_collector",
    "smart",
    "settlement",
    "domestic",
    "export",
    "tenancy_changes",
)
"""Columns of ``electricity_register.csv`` (ECOES-like)."""
GAS_REGISTER_HEADER = (
    "mprn",
    "ldz",
    "network_operator",
    "data_collector",
    "smart",
    "domestic",
    "tenancy_changes",
)
"""Columns of ``gas_register.csv``."""
REGISTRATIONS_HEADER = ("mpxn", "supplier", "effective_from", "effective_to")
"""Columns of ``registrations.csv``."""
APPOINTMENTS_HEADER = ("agent", "supplier", "mpxn", "effective_from", "effective_to")
"""Columns of ``appointments.csv``."""
CONSENTS_HEADER = ("esco", "mpxn", "granted", "expires")
"""Columns of ``consents.csv``."""
PRODUCTS_HEADER = ("manufacturer", "model", "device_type", "head_end", "early_smart")
"""Columns of ``approved_products.csv``."""
SITES_HEADER = ("site_id", "comms_hub", "lead_supplier", "region", "cell")
"""Columns of ``sites.csv`` and ``early_smart_sites.csv``."""
DEVICES_HEADER = (
    "device_id",
    "device_type",
    "site_id",
    "manufacturer",
    "model",
    "firmware",
    "head_end",
    "status",
    "mpxn",
    "early_smart",
    "payment_mode",
)
"""Columns of ``devices.csv`` and ``early_smart_candidates.csv``."""

WAN_REGIONS = ("North", "Central", "South")
"""The WAN regions a site's comms hub may be in."""
GAS_LDZS = ("SC", "NO", "NW", "NE", "EM", "WM", "WN", "WS", "EA", "NT", "SE", "SO", "SW")
"""The 13 GB gas local distribution zones."""
LIST_SEPARATOR = ";"
"""Joins the items of a list inside one CSV field."""


class RecordError(ValueError):
    """A bad record in a fleet file: which file, which 1-based line, and why."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(file, line, reason)  # picklable: args rebuild the error
        self.file = file
        """Label of the file (usually its path or name)."""
        self.line = line
        """1-based line number; the header is line 1."""
        self.reason = reason
        """What is wrong, in words a person can act on."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class PaymentMode(StrEnum):
    """How a meter is paid for; seeds the simulated meter (the hub inventory ignores it)."""

    CREDIT = "credit"
    PREPAYMENT = "prepayment"


@dataclass(frozen=True, slots=True)
class RegistrationTable:
    """Parsed ``registrations.csv``: each meter point's supplier registrations, in date order."""

    file: str
    """Label of the file the registrations came from."""
    by_mpxn: dict[str, tuple[SupplierRegistration, ...]]
    """Registrations per meter point, ordered by start day, checked not to overlap."""
    first_line: dict[str, int]
    """The first line naming each meter point (for errors found when joining)."""


@dataclass(frozen=True, slots=True)
class DeviceTable:
    """Parsed ``devices.csv`` (or ``early_smart_candidates.csv``)."""

    devices: list[Device]
    """Devices in file order."""
    payment_modes: dict[str, PaymentMode] = field(default_factory=dict)
    """Payment mode per meter device id (ESME and GSME only)."""


# ---------------------------------------------------------------------------- field parsers

_ROLES = {r.value: r for r in Role}
_USER_STATUSES = {s.value: s for s in UserStatus}
_DEVICE_TYPES = {t.value: t for t in DeviceType}
_DEVICE_STATUSES = {s.value: s for s in DeviceStatus}
_SETTLEMENTS = {s.value: s for s in Settlement}
_PAYMENT_MODES = {m.value: m for m in PaymentMode}
_FLAGS = {"Y": True, "N": False}
_AREAS = frozenset(DISTRIBUTOR_IDS)
_LDZS = frozenset(GAS_LDZS)
_REGIONS = frozenset(WAN_REGIONS)
_HEX = frozenset("0123456789ABCDEF")
_LIVE = frozenset({DeviceStatus.COMMISSIONED, DeviceStatus.INSTALLED_NOT_COMMISSIONED})


def _flag(text: str, column: str) -> bool:
    value = _FLAGS.get(text)
    if value is None:
        raise ValueError(f"{column} must be Y or N, not {text!r}")
    return value


def _date_parser() -> Callable[[str, str], date]:
    """A strict yyyy-mm-dd parser with a cache (fleet files repeat the same days often)."""
    cache: dict[str, date] = {}

    def parse(text: str, column: str) -> date:
        day = cache.get(text)
        if day is not None:
            return day
        if len(text) != 10 or text[4] != "-" or text[7] != "-":
            raise ValueError(f"{column} {text!r} is not a date yyyy-mm-dd")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{column} {text!r} is not a valid date") from None
        cache[text] = day
        return day

    return parse


def _empty(**fields: str) -> str | None:
    """The name of the first empty field, or None."""
    return next((name for name, value in fields.items() if not value), None)


def _require(**fields: str) -> None:
    name = _empty(**fields)
    if name is not None:
        raise ValueError(f"{name} is empty")


def _mpxn_problem(mpxn: str) -> str | None:
    return mpan_problem(mpxn) if len(mpxn) == 13 else mprn_problem(mpxn)


class _Lines(Protocol):
    """What the parsers need of a csv reader: the number of lines read so far."""

    @property
    def line_num(self) -> int: ...


def _rows(reader: Iterator[list[str]], width: int) -> Iterator[list[str]]:
    for row in reader:
        if len(row) != width:
            if not row:
                continue  # blank line
            raise ValueError(f"expected {width} columns, found {len(row)}")
        yield row


@contextmanager
def _table(
    lines: Iterable[str], file: str, header: tuple[str, ...]
) -> Iterator[tuple[Iterator[list[str]], _Lines]]:
    """The rows after a checked header, and the reader (for line numbers).

    A ``ValueError`` raised while the rows are read becomes a ``RecordError`` naming the line
    being read, so the parsers below just raise ``ValueError(reason)``.
    """
    reader = csv.reader(lines, strict=True)
    try:
        first = next(reader, None)
        if first is None:
            raise RecordError(file, 1, f"missing header row {','.join(header)}")
        if first:
            first[0] = first[0].removeprefix("\ufeff")
        if tuple(first) != header:
            raise RecordError(file, 1, f"header must be {','.join(header)}, not {','.join(first)}")
        yield _rows(reader, len(header)), reader
    except RecordError:
        raise
    except csv.Error as exc:
        raise RecordError(file, reader.line_num, f"malformed CSV: {exc}") from None
    except ValueError as exc:
        raise RecordError(file, reader.line_num, str(exc)) from None


# ---------------------------------------------------------------------------- parsers


def parse_users(lines: Iterable[str], file: str = USERS_FILE) -> dict[str, User]:
    """Parse ``users.csv`` into users keyed by user id."""
    users: dict[str, User] = {}
    with _table(lines, file, USERS_HEADER) as (rows, _):
        for user_id, party_id, name, roles_text, status_text, key in rows:
            if user_id in users:
                raise ValueError(f"user {user_id} appears twice")
            roles = set()
            for text in roles_text.split(LIST_SEPARATOR) if roles_text else ():
                role = _ROLES.get(text)
                if role is None:
                    raise ValueError(f"unknown role {text!r}")
                roles.add(role)
            status = _USER_STATUSES.get(status_text)
            if status is None:
                raise ValueError(f"unknown user status {status_text!r}")
            users[user_id] = User(user_id, party_id, name, frozenset(roles), status, key)
    return users


def parse_registrations(lines: Iterable[str], file: str = REGISTRATIONS_FILE) -> RegistrationTable:
    """Parse ``registrations.csv``; a meter point's registrations must not overlap.

    Meter point numbers are checked when the registers are joined (see
    ``parse_electricity_register``, ``parse_gas_register`` and ``check_registrations_joined``).
    """
    parse_date = _date_parser()
    found: dict[str, list[tuple[date, date | None, str, int]]] = {}
    shared: dict[str, str] = {}
    one = shared.setdefault
    with _table(lines, file, REGISTRATIONS_HEADER) as (rows, reader):
        for mpxn, supplier, start_text, end_text in rows:
            if not (mpxn and supplier):
                _require(mpxn=mpxn, supplier=supplier)
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
    parse_date = _date_parser()
    seen: set[str] = set()
    operators: dict[str, str] = {}
    out: list[MeterPoint] = []
    regs = registrations.by_mpxn
    shared: dict[str, str] = {}
    one = shared.setdefault
    with _table(lines, file, ELECTRICITY_REGISTER_HEADER) as (rows, _):
        for row in rows:
            mpan, area, operator, collector, smart, settlement, domestic, export, tenancy = row
            if mpan in seen:
                raise ValueError(f"MPAN {mpan} appears twice")
            if not (operator and collector):
                _require(network_operator=operator, data_collector=collector)
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
                _flag(smart, "smart"),
                settle,
                _flag(domestic, "domestic"),
                _flag(export, "export"),
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
    parse_date = _date_parser()
    seen: set[str] = set()
    operators: dict[str, str] = {}
    out: list[MeterPoint] = []
    regs = registrations.by_mpxn
    shared: dict[str, str] = {}
    one = shared.setdefault
    with _table(lines, file, GAS_REGISTER_HEADER) as (rows, _):
        for mprn, ldz, operator, collector, smart, domestic, tenancy in rows:
            if mprn in seen:
                raise ValueError(f"MPRN {mprn} appears twice")
            if not (operator and collector):
                _require(network_operator=operator, data_collector=collector)
            mp = MeterPoint(
                mprn,
                Fuel.GAS,
                one(ldz, ldz),
                one(operator, operator),
                regs.get(mprn, ()),
                one(collector, collector),
                _flag(smart, "smart"),
                Settlement.NON_HALF_HOURLY,
                _flag(domestic, "domestic"),
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
            problem = _mpxn_problem(mpxn)
            reason = problem or f"meter point {mpxn} is in neither register"
            raise RecordError(registrations.file, line, reason)


def _meter_point(mpxn: str, meter_points: Mapping[str, MeterPoint] | None) -> MeterPoint | None:
    if meter_points is None:
        problem = _mpxn_problem(mpxn)
        if problem:
            raise ValueError(problem)
        return None
    mp = meter_points.get(mpxn)
    if mp is None:
        problem = _mpxn_problem(mpxn)
        raise ValueError(problem or f"meter point {mpxn} is in neither register")
    return mp


def parse_appointments(
    lines: Iterable[str],
    file: str = APPOINTMENTS_FILE,
    *,
    meter_points: Mapping[str, MeterPoint] | None = None,
) -> list[AgentAppointment]:
    """Parse ``appointments.csv``. With ``meter_points``, each meter point must be known and the
    appointing supplier must hold (or have held) a registration of it."""
    parse_date = _date_parser()
    out: list[AgentAppointment] = []
    with _table(lines, file, APPOINTMENTS_HEADER) as (rows, _):
        for agent, supplier, mpxn, start_text, end_text in rows:
            _require(agent=agent, supplier=supplier)
            start = parse_date(start_text, "effective_from")
            end = parse_date(end_text, "effective_to") if end_text else None
            if end is not None and end <= start:
                raise ValueError(
                    f"effective_to {end_text} is not after effective_from {start_text}"
                )
            mp = _meter_point(mpxn, meter_points)
            if mp is not None and all(r.supplier != supplier for r in mp.registrations):
                raise ValueError(f"supplier {supplier} was never registered for {mpxn}")
            out.append(AgentAppointment(agent, supplier, mpxn, start, end))
    return out


def parse_consents(
    lines: Iterable[str],
    file: str = CONSENTS_FILE,
    *,
    meter_points: Mapping[str, MeterPoint] | None = None,
) -> list[Consent]:
    """Parse ``consents.csv``. With ``meter_points``, each meter point must be known."""
    parse_date = _date_parser()
    out: list[Consent] = []
    with _table(lines, file, CONSENTS_HEADER) as (rows, _):
        for esco, mpxn, granted_text, expires_text in rows:
            _require(esco=esco)
            granted = parse_date(granted_text, "granted")
            expires = parse_date(expires_text, "expires") if expires_text else None
            if expires is not None and expires <= granted:
                raise ValueError(f"expires {expires_text} is not after granted {granted_text}")
            _meter_point(mpxn, meter_points)
            out.append(Consent(esco, mpxn, granted, expires))
    return out


def parse_products(lines: Iterable[str], file: str = PRODUCTS_FILE) -> list[Product]:
    """Parse ``approved_products.csv``; a (manufacturer, model) pair may appear once."""
    seen: set[tuple[str, str]] = set()
    out: list[Product] = []
    with _table(lines, file, PRODUCTS_HEADER) as (rows, _):
        for manufacturer, model, type_text, head_end, early in rows:
            _require(manufacturer=manufacturer, model=model, head_end=head_end)
            if (manufacturer, model) in seen:
                raise ValueError(f"product {manufacturer}/{model} appears twice")
            device_type = _DEVICE_TYPES.get(type_text)
            if device_type is None:
                raise ValueError(f"unknown device type {type_text!r}")
            seen.add((manufacturer, model))
            out.append(
                Product(manufacturer, model, device_type, head_end, _flag(early, "early_smart"))
            )
    return out


def parse_sites(
    lines: Iterable[str], file: str = SITES_FILE, *, taken: Container[str] = ()
) -> dict[str, Site]:
    """Parse ``sites.csv`` (or ``early_smart_sites.csv``) into sites keyed by site id.

    ``taken`` holds site ids another file already uses; a site reusing one is refused.
    """
    sites: dict[str, Site] = {}
    hubs: set[str] = set()
    shared: dict[str, str] = {}
    one = shared.setdefault
    with _table(lines, file, SITES_HEADER) as (rows, _):
        for site_id, comms_hub, lead, region, cell in rows:
            if not (site_id and lead and cell):
                _require(site_id=site_id, lead_supplier=lead, cell=cell)
            if site_id in sites:
                raise ValueError(f"site {site_id} appears twice")
            if site_id in taken:
                raise ValueError(f"site {site_id} is already used by another file")
            if len(comms_hub) != 16 or not _HEX.issuperset(comms_hub):
                raise ValueError(
                    f"comms_hub {comms_hub!r} is not 16 upper-case hex digits (EUI-64)"
                )
            if comms_hub in hubs:
                raise ValueError(f"comms hub {comms_hub} serves another site")
            if region not in _REGIONS:
                raise ValueError(f"region {region!r} is not one of {', '.join(WAN_REGIONS)}")
            hubs.add(comms_hub)
            sites[site_id] = Site(
                site_id, comms_hub, one(lead, lead), one(region, region), one(cell, cell)
            )
    return sites


def _check_product(device: Device, products: Mapping[tuple[str, str], Product]) -> None:
    product = products.get((device.manufacturer, device.model))
    if product is None:
        raise ValueError(
            f"{device.status.value} device of model {device.manufacturer}/{device.model}, "
            "which is not on the approved products list"
        )
    if product.device_type is not device.device_type:
        raise ValueError(
            f"model {device.model} is a {product.device_type.value}, not a {device.device_type.value}"
        )
    if product.head_end != device.head_end:
        raise ValueError(
            f"model {device.model} uses head end {product.head_end}, not {device.head_end}"
        )
    if device.early_smart and not product.early_smart:
        raise ValueError(f"model {device.model} is not approved as an early-smart model")


_FUEL_OF = {DeviceType.ESME: Fuel.ELECTRICITY, DeviceType.GSME: Fuel.GAS}


def parse_devices(
    lines: Iterable[str],
    file: str = DEVICES_FILE,
    *,
    sites: Mapping[str, Site],
    meter_points: Mapping[str, MeterPoint] | None = None,
    products: Mapping[tuple[str, str], Product] | None = None,
    taken: Container[str] = (),
) -> DeviceTable:
    """Parse ``devices.csv`` (or ``early_smart_candidates.csv``).

    Every device must name a site in ``sites``; each CHF must be its site's comms hub, and every
    site's comms hub must appear. ESME and GSME carry a meter point (of their fuel, and known,
    when ``meter_points`` is given) and a payment mode; other types carry neither. With
    ``products``, Commissioned and Installed Not Commissioned devices must be of an approved
    model of their type, head end and early-smart standing. ``taken`` holds device ids
    another file already uses; a device reusing one is refused.
    """
    devices: dict[str, Device] = {}
    modes: dict[str, PaymentMode] = {}
    hubs_seen = 0
    chf = DeviceType.CHF
    shared: dict[str, str] = {}  # one copy of each repeated text (memory for big fleets)
    one = shared.setdefault
    last = 1
    with _table(lines, file, DEVICES_HEADER) as (rows, reader):
        for row in rows:
            device_id, type_text, site_id, manufacturer, model, firmware, head_end = row[:7]
            status_text, mpxn, early, mode_text = row[7:]
            if device_id in devices:
                raise ValueError(f"device {device_id} appears twice")
            if device_id in taken:
                raise ValueError(f"device {device_id} is already used by another file")
            device_type = _DEVICE_TYPES.get(type_text)
            if device_type is None:
                raise ValueError(f"unknown device type {type_text!r}")
            status = _DEVICE_STATUSES.get(status_text)
            if status is None:
                raise ValueError(f"unknown device status {status_text!r}")
            site = sites.get(site_id)
            if site is None:
                raise ValueError(f"device {device_id} names unknown site {site_id!r}")
            if not (manufacturer and model and firmware and head_end):
                _require(
                    manufacturer=manufacturer, model=model, firmware=firmware, head_end=head_end
                )
            fuel = _FUEL_OF.get(device_type)
            if fuel is not None:
                mode = _PAYMENT_MODES.get(mode_text)
                if mode is None:
                    raise ValueError(
                        f"payment_mode of {type_text} must be credit or prepayment, not {mode_text!r}"
                    )
                modes[device_id] = mode
                if meter_points is not None:
                    mp = _meter_point(mpxn, meter_points)
                    if mp is not None:
                        if mp.fuel is not fuel:
                            raise ValueError(
                                f"{type_text} {device_id} names {mp.fuel.value} meter point {mpxn}"
                            )
                        mpxn = mp.mpxn
            else:
                if mpxn:
                    raise ValueError(
                        f"{type_text} {device_id} carries meter point {mpxn}; only meters do"
                    )
                if mode_text:
                    raise ValueError(
                        f"{type_text} {device_id} carries a payment mode; only meters do"
                    )
                if device_type is chf:
                    if site.comms_hub != device_id:
                        raise ValueError(
                            f"site {site_id} has comms hub {site.comms_hub}, not {device_id}"
                        )
                    hubs_seen += 1
            device = Device(
                device_id,
                device_type,
                site.site_id,
                one(manufacturer, manufacturer),
                one(model, model),
                one(firmware, firmware),
                one(head_end, head_end),
                status,
                mpxn,
                _flag(early, "early_smart"),
            )
            if products is not None and status in _LIVE:
                _check_product(device, products)
            devices[device_id] = device
        last = reader.line_num
    if hubs_seen != len(sites):
        hubs = {d.site_id for d in devices.values() if d.device_type is chf}
        missing = next(s for s in sites.values() if s.site_id not in hubs)
        raise RecordError(
            file, last, f"site {missing.site_id}'s comms hub {missing.comms_hub} is not in the file"
        )
    return DeviceTable(list(devices.values()), modes)


# ---------------------------------------------------------------------------- writers


def _field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(fields: Iterable[str]) -> str:
    """One CSV line (with its LF ending), quoting only fields that need it."""
    return ",".join(_field(f) for f in fields) + "\n"


def _flag_text(value: bool) -> str:
    return "Y" if value else "N"


def _day(value: date | None) -> str:
    return "" if value is None else value.isoformat()


def format_users(users: Iterable[User]) -> Iterator[str]:
    """Lines of ``users.csv`` (header first), roles in their declared order."""
    yield csv_line(USERS_HEADER)
    order = {r: i for i, r in enumerate(Role)}
    for u in users:
        roles = LIST_SEPARATOR.join(r.value for r in sorted(u.roles, key=order.__getitem__))
        yield csv_line((u.user_id, u.party_id, u.name, roles, u.status.value, u.public_key))


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
                    _flag_text(mp.smart),
                    mp.settlement.value,
                    _flag_text(mp.domestic),
                    _flag_text(mp.export),
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
                    _flag_text(mp.smart),
                    _flag_text(mp.domestic),
                    _tenancy_text(mp),
                )
            )


def format_registrations(meter_points: Iterable[MeterPoint]) -> Iterator[str]:
    """Lines of ``registrations.csv``: every registration of every meter point given."""
    yield csv_line(REGISTRATIONS_HEADER)
    for mp in meter_points:
        for r in mp.registrations:
            yield csv_line((mp.mpxn, r.supplier, _day(r.effective_from), _day(r.effective_to)))


def format_appointments(appointments: Iterable[AgentAppointment]) -> Iterator[str]:
    """Lines of ``appointments.csv``."""
    yield csv_line(APPOINTMENTS_HEADER)
    for a in appointments:
        yield csv_line((a.agent, a.supplier, a.mpxn, _day(a.effective_from), _day(a.effective_to)))


def format_consents(consents: Iterable[Consent]) -> Iterator[str]:
    """Lines of ``consents.csv``."""
    yield csv_line(CONSENTS_HEADER)
    for c in consents:
        yield csv_line((c.esco, c.mpxn, _day(c.granted), _day(c.expires)))


def format_products(products: Iterable[Product]) -> Iterator[str]:
    """Lines of ``approved_products.csv``."""
    yield csv_line(PRODUCTS_HEADER)
    for p in products:
        yield csv_line(
            (p.manufacturer, p.model, p.device_type.value, p.head_end, _flag_text(p.early_smart))
        )


def format_sites(sites: Iterable[Site]) -> Iterator[str]:
    """Lines of ``sites.csv`` (or ``early_smart_sites.csv``)."""
    yield csv_line(SITES_HEADER)
    for s in sites:
        yield csv_line((s.site_id, s.comms_hub, s.lead_supplier, s.region, s.cell))


def format_devices(
    devices: Iterable[Device], payment_modes: Mapping[str, PaymentMode]
) -> Iterator[str]:
    """Lines of ``devices.csv`` (or ``early_smart_candidates.csv``)."""
    yield csv_line(DEVICES_HEADER)
    for d in devices:
        mode = payment_modes.get(d.device_id)
        yield csv_line(
            (
                d.device_id,
                d.device_type.value,
                d.site_id,
                d.manufacturer,
                d.model,
                d.firmware,
                d.head_end,
                d.status.value,
                d.mpxn,
                _flag_text(d.early_smart),
                "" if mode is None else mode.value,
            )
        )

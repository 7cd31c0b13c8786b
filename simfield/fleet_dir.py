"""The file adapter for a fleet directory: registers, users and inventory read from CSV files.

Decides: which file of a fleet directory holds what, and how a missing one is reported.
Parsing and cross-file checks are ``hub.registers.records``'s; this module only opens the files.
Must never: write to a fleet directory or decide anything about access.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from hub.reference.parties import User
from hub.registers import records
from hub.registers.inventory import Device, Inventory, Site
from hub.registers.records import PaymentMode
from hub.registers.registration import RegistrationData

T = TypeVar("T")


def _directory(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"fleet directory {path} does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"fleet directory {path} is not a directory")
    return path


@contextmanager
def _open(directory: Path, name: str) -> Iterator[IO[str]]:
    path = directory / name
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"fleet file {path} is missing (see docs/fleet-files.md for what a fleet directory holds)"
        ) from None
    with fh:
        yield fh


def _read(directory: Path, name: str, parse: Callable[[IO[str], str], T]) -> T:
    with _open(directory, name) as fh:
        return parse(fh, str(directory / name))


class FileRegisters:
    """A ``hub.registers.registration.RegistrationSource`` reading the register files of a fleet
    directory: electricity and gas registers, registrations, appointments and consents."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        """The fleet directory."""

    def load(self) -> RegistrationData:
        """Read and check the register files and return an indexed snapshot."""
        d = _directory(self.directory)
        regs = _read(d, records.REGISTRATIONS_FILE, records.parse_registrations)
        electricity = _read(
            d,
            records.ELECTRICITY_REGISTER_FILE,
            lambda fh, label: records.parse_electricity_register(fh, label, registrations=regs),
        )
        gas = _read(
            d,
            records.GAS_REGISTER_FILE,
            lambda fh, label: records.parse_gas_register(fh, label, registrations=regs),
        )
        meter_points = {mp.mpxn: mp for mp in electricity}
        meter_points.update((mp.mpxn, mp) for mp in gas)
        records.check_registrations_joined(regs, meter_points)
        appointments = _read(
            d,
            records.APPOINTMENTS_FILE,
            lambda fh, label: records.parse_appointments(fh, label, meter_points=meter_points),
        )
        consents = _read(
            d,
            records.CONSENTS_FILE,
            lambda fh, label: records.parse_consents(fh, label, meter_points=meter_points),
        )
        data = RegistrationData(meter_points=meter_points)
        for ap in appointments:
            data.appointments.setdefault(ap.mpxn, []).append(ap)
        for c in consents:
            data.consents.setdefault(c.mpxn, []).append(c)
        return data


@dataclass(frozen=True, slots=True)
class Fleet:
    """Everything a fleet directory holds, parsed, checked and indexed."""

    users: dict[str, User]
    """Service users keyed by user id."""
    registration: RegistrationData
    """The registers, appointments and consents."""
    inventory: Inventory
    """The hub's inventory: approved products, sites and devices."""
    early_smart_candidates: list[Device]
    """Early-smart devices still talking to their supplier; not in the inventory."""
    early_smart_sites: dict[str, Site]
    """The sites of the candidates, keyed by site id; not in the inventory."""
    payment_modes: dict[str, PaymentMode]
    """Payment mode per meter device id (inventory meters and candidates)."""
    manifest: dict[str, object]
    """The contents of ``fleet.json`` (seed, as_of, counts, shares)."""


def load_fleet(directory: str | Path) -> Fleet:
    """Read a whole fleet directory (format in ``docs/fleet-files.md``).

    Raises FileNotFoundError naming a missing directory or file, and
    ``hub.registers.records.RecordError`` naming the file and line of a bad record.
    """
    d = _directory(Path(directory))
    manifest_path = d / records.MANIFEST_FILE
    with _open(d, records.MANIFEST_FILE) as fh:
        try:
            manifest = json.load(fh)
        except json.JSONDecodeError as exc:
            raise records.RecordError(str(manifest_path), exc.lineno, exc.msg) from None
    if not isinstance(manifest, dict):
        raise records.RecordError(str(manifest_path), 1, "fleet.json must hold a JSON object")
    users = _read(d, records.USERS_FILE, records.parse_users)
    registration = FileRegisters(d).load()
    meter_points = registration.meter_points
    products = _read(d, records.PRODUCTS_FILE, records.parse_products)
    by_model = {(p.manufacturer, p.model): p for p in products}
    sites = _read(d, records.SITES_FILE, records.parse_sites)
    devices = _read(
        d,
        records.DEVICES_FILE,
        lambda fh, label: records.parse_devices(
            fh, label, sites=sites, meter_points=meter_points, products=by_model
        ),
    )
    inventory = Inventory.build(products, sites.values(), devices.devices)
    candidate_sites = _read(
        d,
        records.CANDIDATE_SITES_FILE,
        lambda fh, label: records.parse_sites(fh, label, taken=sites),
    )
    candidates = _read(
        d,
        records.CANDIDATES_FILE,
        lambda fh, label: records.parse_devices(
            fh, label, sites=candidate_sites, meter_points=meter_points, taken=inventory.devices
        ),
    )
    modes = dict(devices.payment_modes)
    modes.update(candidates.payment_modes)
    return Fleet(
        users=users,
        registration=registration,
        inventory=inventory,
        early_smart_candidates=candidates.devices,
        early_smart_sites=candidate_sites,
        payment_modes=modes,
        manifest=manifest,
    )

"""Helpers for live-hub tests: a small generated fleet with keys, and finders of devices
that play given parts (a supplier's own meter, someone else's, a decommissioned one)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from hub.reference.roles import DeviceType, Role
from hub.registers.inventory import Device, DeviceStatus
from sdk.keys import create_keys
from simfield.fleet import generate_fleet
from simfield.fleet_dir import Fleet, load_fleet
from simfield.fleet_files import write_fleet


def today() -> date:
    """The UK day of now (the fleet is generated as of today so registrations are current)."""
    return datetime.now(UTC).date()


def make_fleet(directory: Path, sites: int = 80, seed: int = 3) -> Fleet:
    """Generate, write and key a small fleet; return it loaded."""
    write_fleet(generate_fleet(sites, seed, today()), directory)
    fleet = load_fleet(directory)
    create_keys(directory, sorted(fleet.users))
    return fleet


def free_port() -> int:
    """A free loopback port (for a hub that must come back on the same endpoint)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(
    predicate: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition"
) -> None:
    """Poll until ``predicate`` holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def supplier_meter(
    fleet: Fleet, device_type: DeviceType = DeviceType.ESME, role: Role = Role.IS
) -> tuple[str, Device]:
    """A (user id, device) pair: an active supplier user and a commissioned meter of a
    domestic meter point it is registered to today, served by the hub."""
    day = today()
    by_party = {
        u.party_id: u.user_id
        for u in fleet.users.values()
        if role in u.roles and u.status.value == "active"
    }
    for device in fleet.inventory.devices.values():
        if device.device_type is not device_type or device.status is not DeviceStatus.COMMISSIONED:
            continue
        mp = fleet.registration.meter_point(device.mpxn)
        if mp is None or not mp.served_by_hub or mp.export:
            continue
        supplier = mp.supplier_on(day)
        if supplier in by_party and not mp.is_future_supplier(supplier, day):
            return by_party[supplier], device
    raise LookupError("no suitable supplier meter in the fleet")


def other_supplier(fleet: Fleet, user_id: str) -> str:
    """An active import supplier user other than ``user_id``."""
    for u in fleet.users.values():
        if Role.IS in u.roles and u.user_id != user_id and u.status.value == "active":
            return u.user_id
    raise LookupError("no other supplier")


def network_user(fleet: Fleet, role: Role = Role.ED) -> str:
    """An active network operator user."""
    return next(
        u.user_id for u in fleet.users.values() if role in u.roles and u.status.value == "active"
    )


def device_with_status(
    fleet: Fleet, status: DeviceStatus, device_type: DeviceType = DeviceType.ESME
) -> Device | None:
    """A device of a type in a status, if the fleet has one."""
    return next(
        (
            d
            for d in fleet.inventory.devices.values()
            if d.status is status and d.device_type is device_type
        ),
        None,
    )

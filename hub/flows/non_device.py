"""Non-device services the hub answers from its own data, without a device.

Decides: the body of the answer to 8.2 Read Inventory (the target device and the other
devices at its site, with technical details and statuses, never readings), which device a
meter point names when 8.2 is asked by meter point (device discovery), and 12.1 Request WAN
Matrix (the WAN region and cell serving the target's comms hub).
Must never: touch a device, or return transaction data (readings) of any kind.
"""

from __future__ import annotations

from collections.abc import Callable

from hub.reference.standard import Value
from hub.registers.inventory import Device, DeviceStatus, Inventory


def _device_view(d: Device) -> dict[str, Value]:
    return {
        "device_id": d.device_id,
        "device_type": d.device_type.value,
        "status": d.status.value,
        "manufacturer": d.manufacturer,
        "model": d.model,
        "firmware": d.firmware,
        "head_end": d.head_end,
        "mpxn": d.mpxn or None,
        "early_smart": d.early_smart,
    }


def read_inventory(inventory: Inventory, device: Device) -> dict[str, Value]:
    """8.2: the device (the target, or the meter at the meter point asked for), its site and
    every device at the site."""
    site = inventory.sites[device.site_id]
    return {
        "device": _device_view(device),
        "site": {
            "site_id": site.site_id,
            "comms_hub": site.comms_hub,
            "lead_supplier": site.lead_supplier,
        },
        "site_devices": [_device_view(d) for d in inventory.site_devices(site.site_id)],
    }


_PREFERRED = (
    DeviceStatus.COMMISSIONED,
    DeviceStatus.INSTALLED_NOT_COMMISSIONED,
    DeviceStatus.WHITELISTED,
    DeviceStatus.PENDING,
    DeviceStatus.SUSPENDED,
    DeviceStatus.RECOVERED,
    DeviceStatus.DECOMMISSIONED,
    DeviceStatus.WITHDRAWN,
)
"""Which meter a meter point names when several devices record it (a replaced meter stays in
the inventory): the first status in this order wins, then the lowest device id."""


def meter_at(inventory: Inventory, mpxn: str) -> Device | None:
    """The meter (ESME or GSME) at meter point ``mpxn``, or None when the inventory holds none.

    Scans the inventory: an 8.2 by meter point is an occasional lookup (discovery), and the
    inventory keeps no index by meter point."""
    found = [d for d in inventory.devices.values() if d.mpxn == mpxn]
    if not found:
        return None
    rank = {status: n for n, status in enumerate(_PREFERRED)}
    return min(found, key=lambda d: (rank.get(d.status, len(rank)), d.device_id))


def wan_matrix(inventory: Inventory, device: Device) -> dict[str, Value]:
    """12.1: the WAN coverage that serves the device's comms hub."""
    site = inventory.sites[device.site_id]
    return {"comms_hub": site.comms_hub, "region": site.region, "cell": site.cell, "covered": True}


HANDLERS: dict[str, Callable[[Inventory, Device], dict[str, Value]]] = {
    "8.2": read_inventory,
    "12.1": wan_matrix,
}
"""Answer functions by service code (keys equal ``ANSWERED``)."""

ANSWERED: frozenset[str] = frozenset(HANDLERS)
"""Non-device services this release answers; the others are refused with H9."""

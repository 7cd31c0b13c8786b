"""The hub's own inventory: sites, comms hubs, devices, their statuses, and approved products.

Decides: which device status transitions are allowed, whether a device may be commissioned
(its model must be on the approved products list), and whether an 'early smart' meter may be
adopted (only when it starts communicating via the hub, and only if its model complies).
Must never: hold asset-management data or transaction data (readings); never bulk-migrate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from hub.reference.roles import DeviceType


class DeviceStatus(StrEnum):
    """Smart metering inventory statuses."""

    PENDING = "Pending"
    WHITELISTED = "Whitelisted"
    INSTALLED_NOT_COMMISSIONED = "InstalledNotCommissioned"
    COMMISSIONED = "Commissioned"
    DECOMMISSIONED = "Decommissioned"
    WITHDRAWN = "Withdrawn"
    SUSPENDED = "Suspended"
    RECOVERED = "Recovered"


_S = DeviceStatus
TRANSITIONS: dict[DeviceStatus, frozenset[DeviceStatus]] = {
    _S.PENDING: frozenset(
        {_S.WHITELISTED, _S.INSTALLED_NOT_COMMISSIONED, _S.WITHDRAWN, _S.SUSPENDED}
    ),
    _S.WHITELISTED: frozenset({_S.INSTALLED_NOT_COMMISSIONED, _S.WITHDRAWN, _S.SUSPENDED}),
    _S.INSTALLED_NOT_COMMISSIONED: frozenset(
        {_S.COMMISSIONED, _S.DECOMMISSIONED, _S.WITHDRAWN, _S.SUSPENDED}
    ),
    _S.COMMISSIONED: frozenset({_S.DECOMMISSIONED, _S.SUSPENDED, _S.RECOVERED}),
    _S.SUSPENDED: frozenset({_S.COMMISSIONED, _S.DECOMMISSIONED, _S.WITHDRAWN}),
    _S.RECOVERED: frozenset({_S.COMMISSIONED, _S.DECOMMISSIONED}),
    _S.DECOMMISSIONED: frozenset(),
    _S.WITHDRAWN: frozenset(),
}
"""Allowed status transitions: from status -> statuses it may move to."""


_HEX_DIGITS = frozenset("0123456789ABCDEF")


class InventoryError(ValueError):
    """An inventory change that is not allowed; the message says why."""


@dataclass(frozen=True, slots=True)
class Product:
    """An entry on the approved products list."""

    manufacturer: str
    model: str
    device_type: DeviceType
    head_end: str
    """The head-end type that translates for this model."""
    early_smart: bool = False
    """An early-smart (SMETS1) model approved for adoption."""


@dataclass(frozen=True, slots=True)
class Device:
    """A device the hub communicates with."""

    device_id: str
    """EUI-64 as 16 upper-case hex digits."""
    device_type: DeviceType
    site_id: str
    manufacturer: str
    model: str
    firmware: str
    head_end: str
    status: DeviceStatus
    mpxn: str = ""
    """Meter point the device meters (ESME, GSME); empty for CHF, GPF, PPMID, IHD."""
    early_smart: bool = False
    """Adopted early-smart meter (SMETS1)."""

    def __post_init__(self) -> None:
        if len(self.device_id) != 16 or not _HEX_DIGITS.issuperset(self.device_id):
            raise ValueError(f"device id {self.device_id!r} is not 16 upper-case hex digits")
        if self.device_type in (DeviceType.ESME, DeviceType.GSME) and not self.mpxn:
            raise ValueError(f"{self.device_type.value} {self.device_id} has no meter point")


@dataclass(frozen=True, slots=True)
class Site:
    """A premises with at least one smart meter, reached through one comms hub."""

    site_id: str
    comms_hub: str
    """Device id of the comms hub function (the WAN comms unit's address)."""
    lead_supplier: str
    """Party id of the lead supplier (gas or electricity) for the comms hub."""
    region: str
    """WAN region: North, Central or South."""
    cell: str
    """WAN cell the comms hub is attached to."""


@dataclass(slots=True)
class Inventory:
    """The hub's inventory, indexed for the lookups access control and routing need."""

    products: dict[tuple[str, str], Product] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)
    devices: dict[str, Device] = field(default_factory=dict)
    by_site: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, products: Iterable[Product], sites: Iterable[Site], devices: Iterable[Device]
    ) -> Inventory:
        """Index a whole inventory; every device must name a known site."""
        inv = cls()
        for p in products:
            inv.products[(p.manufacturer, p.model)] = p
        for s in sites:
            if s.site_id in inv.sites:
                raise InventoryError(f"site {s.site_id} appears twice")
            inv.sites[s.site_id] = s
        for d in devices:
            inv._put_new(d)
        return inv

    def _put_new(self, device: Device) -> None:
        if device.device_id in self.devices:
            raise InventoryError(f"device {device.device_id} appears twice")
        if device.site_id not in self.sites:
            raise InventoryError(f"device {device.device_id} names unknown site {device.site_id}")
        self.devices[device.device_id] = device
        self.by_site.setdefault(device.site_id, []).append(device.device_id)

    def device(self, device_id: str) -> Device | None:
        """The device, or None if the inventory does not hold it."""
        return self.devices.get(device_id)

    def site_devices(self, site_id: str) -> list[Device]:
        """Every device at a site."""
        return [self.devices[d] for d in self.by_site.get(site_id, ())]

    def approved(self, manufacturer: str, model: str) -> Product | None:
        """The approved products list entry for a model, or None."""
        return self.products.get((manufacturer, model))

    def add_device(self, device: Device) -> None:
        """Add a newly installed device (status Pending, Whitelisted or Installed Not
        Commissioned); sites are added as meters are installed."""
        if device.status not in (
            DeviceStatus.PENDING,
            DeviceStatus.WHITELISTED,
            DeviceStatus.INSTALLED_NOT_COMMISSIONED,
        ):
            raise InventoryError(f"a new device cannot start as {device.status.value}")
        self._put_new(device)

    def add_site(self, site: Site) -> None:
        """Add a site when its first smart meter is installed."""
        if site.site_id in self.sites:
            raise InventoryError(f"site {site.site_id} already exists")
        self.sites[site.site_id] = site

    def transition(self, device_id: str, to: DeviceStatus) -> Device:
        """Move a device to a new status, if the transition table allows it."""
        device = self.devices.get(device_id)
        if device is None:
            raise InventoryError(f"device {device_id} does not exist")
        if to not in TRANSITIONS[device.status]:
            raise InventoryError(
                f"device {device_id} cannot move from {device.status.value} to {to.value}"
            )
        if (
            to is DeviceStatus.COMMISSIONED
            and self.approved(device.manufacturer, device.model) is None
        ):
            raise InventoryError(
                f"model {device.manufacturer}/{device.model} is not on the approved products list"
            )
        updated = replace(device, status=to)
        self.devices[device_id] = updated
        return updated

    def adopt_early_smart(self, device: Device) -> Device:
        """Enter an early-smart meter that has started communicating via the hub.

        Only compliant models (on the approved products list as early-smart) are adopted;
        adopted meters enter as Commissioned because they are already installed and in use.
        """
        product = self.approved(device.manufacturer, device.model)
        if product is None or not product.early_smart:
            raise InventoryError(
                f"early-smart model {device.manufacturer}/{device.model} does not comply with "
                "the approved specification"
            )
        adopted = replace(
            device, status=DeviceStatus.COMMISSIONED, early_smart=True, head_end=product.head_end
        )
        self._put_new(adopted)
        return adopted

    def suspend_model(self, manufacturer: str, model: str) -> list[str]:
        """Remove a model from the approved products list; its commissioned devices become
        Suspended. Returns the ids of the devices suspended."""
        self.products.pop((manufacturer, model), None)
        suspended = []
        for d in list(self.devices.values()):
            if (d.manufacturer, d.model) == (manufacturer, model) and d.status in (
                DeviceStatus.COMMISSIONED,
                DeviceStatus.INSTALLED_NOT_COMMISSIONED,
            ):
                self.devices[d.device_id] = replace(d, status=DeviceStatus.SUSPENDED)
                suspended.append(d.device_id)
        return suspended

"""The hub's own inventory: sites, comms hubs, devices, their statuses, and approved products.

Decides: which device status transitions are allowed, whether a device may be commissioned
(its model must be on the approved products list), and whether an 'early smart' meter may be
adopted (only when it starts communicating via the hub, and only if its model complies); and
how one recorded ``InventoryChange`` is applied (``Inventory.apply``), so that the changes a
running hub made, replayed in order over the fleet's initial inventory, rebuild it exactly.
Must never: hold asset-management data or transaction data (readings); never bulk-migrate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import cast

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
    joined: tuple[str, ...] = ()
    """HAN devices this device is joined to (8.7 Join Service), in the order joined."""

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

    def copy(self) -> Inventory:
        """An independent copy (records are immutable; only the indexes are copied)."""
        return Inventory(
            dict(self.products),
            dict(self.sites),
            dict(self.devices),
            {site: list(ids) for site, ids in self.by_site.items()},
        )

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

    def approve_model(self, product: Product) -> None:
        """Put a model on the approved products list (replacing its entry if it has one)."""
        self.products[(product.manufacturer, product.model)] = product

    def apply(self, change: InventoryChange) -> list[str]:
        """Apply one recorded change (``InventoryError`` if it is not allowed now, and then
        nothing changes); returns the ids of the devices whose status it changed. Election
        changes are not the inventory's (``hub.registers.election``): they change nothing
        here."""
        kind = change.kind
        if kind is ChangeKind.SITE_ADDED:
            assert change.site is not None
            self.add_site(change.site)
            return []
        if kind is ChangeKind.DEVICE_ADDED:
            assert change.device is not None
            self.add_device(change.device)
            return [change.device.device_id]
        if kind is ChangeKind.ADOPTED:
            assert change.device is not None
            if change.site is not None and change.site.site_id not in self.sites:
                self.add_site(change.site)
            return [self.adopt_early_smart(change.device).device_id]
        if kind is ChangeKind.STATUS:
            assert change.status is not None
            self.transition(change.device_id, change.status)
            return [change.device_id]
        if kind is ChangeKind.DEVICE_UPDATED:
            self._update(change.device_id, change.details)
            return []
        if kind in (ChangeKind.JOINED, ChangeKind.UNJOINED):
            self._join(change.device_id, change.other_device_id, kind is ChangeKind.JOINED)
            return []
        if kind is ChangeKind.MODEL_APPROVED:
            assert change.product is not None
            self.approve_model(change.product)
            return []
        if kind is ChangeKind.MODEL_SUSPENDED:
            manufacturer, _, model = change.model.partition("/")
            return self.suspend_model(manufacturer, model)
        return []  # election changes and refusals change nothing in the inventory

    def _update(self, device_id: str, details: Mapping[str, str]) -> None:
        device = self.devices.get(device_id)
        if device is None:
            raise InventoryError(f"device {device_id} does not exist")
        unknown = sorted(set(details) - set(UPDATABLE))
        if unknown:
            raise InventoryError(f"{', '.join(unknown)} cannot be updated in the inventory")
        self.devices[device_id] = replace(device, **details)  # type: ignore[arg-type]

    def _join(self, device_id: str, other: str, join: bool) -> None:
        device = self.devices.get(device_id)
        if device is None or other not in self.devices:
            raise InventoryError(f"device {device_id if device is None else other} does not exist")
        if join and other in device.joined:
            raise InventoryError(f"device {device_id} is already joined to {other}")
        if not join and other not in device.joined:
            raise InventoryError(f"device {device_id} is not joined to {other}")
        joined = (*device.joined, other) if join else tuple(d for d in device.joined if d != other)
        self.devices[device_id] = replace(device, joined=joined)


UPDATABLE: tuple[str, ...] = ("firmware", "manufacturer", "model", "head_end")
"""Technical details 8.4 Update Inventory may correct (status, type and site never; the
head-end follows a corrected model)."""


class ChangeKind(StrEnum):
    """What one recorded inventory change does."""

    SITE_ADDED = "site_added"
    """A premises enters the inventory (with its comms hub's pre-notification)."""
    DEVICE_ADDED = "device_added"
    """A device enters the inventory, Pending (12.2 Device Pre-notification)."""
    STATUS = "status"
    """A device moves to another status through the transition table."""
    DEVICE_UPDATED = "device_updated"
    """A device's technical details are corrected (8.4 Update Inventory)."""
    JOINED = "joined"
    """A device is joined to another HAN device (8.7.x)."""
    UNJOINED = "unjoined"
    """A device is unjoined from another HAN device (8.8.x)."""
    ADOPTED = "adopted"
    """An early-smart meter that started communicating via the hub is adopted."""
    ADOPTION_REFUSED = "adoption_refused"
    """An early-smart meter's model does not comply: not adopted (recorded for its history)."""
    MODEL_APPROVED = "model_approved"
    """A model is put on the approved products list."""
    MODEL_SUSPENDED = "model_suspended"
    """A model is taken off the approved products list; its devices become Suspended."""
    OPTED_OUT = "opted_out"
    """A non-domestic meter point's supplier elects not to use the hub (8.5)."""
    OPTED_IN = "opted_in"
    """A non-domestic meter point's supplier elects to use the hub (8.6)."""


@dataclass(frozen=True, slots=True)
class InventoryChange:
    """One change of the hub's inventory or election, as recorded (durably) and replayed."""

    kind: ChangeKind
    """What it does."""
    at: float
    """When the hub made it."""
    by: str
    """Who asked: a user id, or ``operator`` for operator commands and field events."""
    ref: str = ""
    """What caused it: ``<user>/<request id>`` of a request, or an operator command's id."""
    device_id: str = ""
    """The device concerned (empty for site, model and election changes)."""
    site_id: str = ""
    """The site concerned, where there is one."""
    mpxn: str = ""
    """The meter point concerned, where there is one."""
    status: DeviceStatus | None = None
    """The status moved to (``STATUS``)."""
    other_device_id: str = ""
    """The other HAN device (``JOINED`` and ``UNJOINED``)."""
    model: str = ""
    """``<manufacturer>/<model>`` (model changes, adoptions and refusals)."""
    device: Device | None = None
    """The device entering (``DEVICE_ADDED``, ``ADOPTED``)."""
    site: Site | None = None
    """The site entering (``SITE_ADDED``; ``ADOPTED`` when its site is new)."""
    product: Product | None = None
    """The approved products list entry (``MODEL_APPROVED``)."""
    details: Mapping[str, str] = field(default_factory=dict)
    """Corrected technical details (``DEVICE_UPDATED``)."""
    reason: str = ""
    """Why, for a reader of the history."""

    def to_record(self) -> dict[str, object]:
        """A plain record (strings, numbers, maps) for a store to keep."""
        return {
            "kind": self.kind.value,
            "at": self.at,
            "by": self.by,
            "ref": self.ref,
            "device_id": self.device_id,
            "site_id": self.site_id,
            "mpxn": self.mpxn,
            "status": self.status.value if self.status else None,
            "other_device_id": self.other_device_id,
            "model": self.model,
            "device": _device_record(self.device) if self.device else None,
            "site": _site_record(self.site) if self.site else None,
            "product": _product_record(self.product) if self.product else None,
            "details": dict(self.details),
            "reason": self.reason,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> InventoryChange:
        """The change a plain record (``to_record``) holds."""
        r = dict(record)
        status = r.get("status")
        device, site, product = r.get("device"), r.get("site"), r.get("product")
        return cls(
            kind=ChangeKind(str(r["kind"])),
            at=float(cast(float, r["at"])),
            by=str(r["by"]),
            ref=str(r.get("ref", "")),
            device_id=str(r.get("device_id", "")),
            site_id=str(r.get("site_id", "")),
            mpxn=str(r.get("mpxn", "")),
            status=DeviceStatus(str(status)) if status else None,
            other_device_id=str(r.get("other_device_id", "")),
            model=str(r.get("model", "")),
            device=_device_of(cast(dict[str, object], device)) if device else None,
            site=Site(**cast(dict[str, str], site)) if site else None,
            product=_product_of(cast(dict[str, object], product)) if product else None,
            details={str(k): str(v) for k, v in cast(dict[str, str], r.get("details", {})).items()},
            reason=str(r.get("reason", "")),
        )


def _device_record(d: Device) -> dict[str, object]:
    return {
        "device_id": d.device_id,
        "device_type": d.device_type.value,
        "site_id": d.site_id,
        "manufacturer": d.manufacturer,
        "model": d.model,
        "firmware": d.firmware,
        "head_end": d.head_end,
        "status": d.status.value,
        "mpxn": d.mpxn,
        "early_smart": d.early_smart,
        "joined": list(d.joined),
    }


def _device_of(r: dict[str, object]) -> Device:
    return Device(
        device_id=str(r["device_id"]),
        device_type=DeviceType(str(r["device_type"])),
        site_id=str(r["site_id"]),
        manufacturer=str(r["manufacturer"]),
        model=str(r["model"]),
        firmware=str(r["firmware"]),
        head_end=str(r["head_end"]),
        status=DeviceStatus(str(r["status"])),
        mpxn=str(r.get("mpxn", "")),
        early_smart=bool(r.get("early_smart", False)),
        joined=tuple(str(x) for x in cast(list[str], r.get("joined", []))),
    )


def _site_record(s: Site) -> dict[str, object]:
    return {
        "site_id": s.site_id,
        "comms_hub": s.comms_hub,
        "lead_supplier": s.lead_supplier,
        "region": s.region,
        "cell": s.cell,
    }


def _product_record(p: Product) -> dict[str, object]:
    return {
        "manufacturer": p.manufacturer,
        "model": p.model,
        "device_type": p.device_type.value,
        "head_end": p.head_end,
        "early_smart": p.early_smart,
    }


def _product_of(r: dict[str, object]) -> Product:
    return Product(
        str(r["manufacturer"]),
        str(r["model"]),
        DeviceType(str(r["device_type"])),
        str(r["head_end"]),
        bool(r.get("early_smart", False)),
    )

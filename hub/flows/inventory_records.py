"""How the inventory lifecycle's changes are built, checked and replayed: the status moves
of a device along the status table, the all-or-nothing application of a list of changes
(``Snapshot``), a refusal with the domain's code (``ChangeRefusedError``), and the replay of
recorded changes over an inventory and an election (``replay``: a restart, ``dcc
inventory``).
Must never: change an inventory except by applying ``InventoryChange`` records, or decide
whether a service may run (``hub.flows.inventory_changes`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from hub.reference.codes import ResponseCode
from hub.registers.election import ELECTION_KINDS, Election
from hub.registers.inventory import (
    TRANSITIONS,
    ChangeKind,
    Device,
    DeviceStatus,
    Inventory,
    InventoryChange,
    Product,
    Site,
)

OPERATOR = "operator"
"""Who the inventory history names for operator commands and field events."""

_K = TypeVar("_K")
_V = TypeVar("_V")


def replay(inventory: Inventory, election: Election, changes: list[InventoryChange]) -> None:
    """Apply recorded changes in order to an inventory and an election (what a restart does,
    for readers such as ``dcc inventory``); ``InventoryError`` if one does not apply."""
    for change in changes:
        if change.kind in ELECTION_KINDS:
            election.apply(change)
        else:
            inventory.apply(change)


class ChangeRefusedError(Exception):
    """A change the inventory, the registers or the status table does not allow."""

    def __init__(self, code: ResponseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        """The refusal code (E5 for the status table, E4, E11, E12, E19, H6)."""
        self.reason = reason
        """Why, in words a person can act on."""


def path_to(start: DeviceStatus, end: DeviceStatus) -> list[DeviceStatus]:
    """The statuses a device passes to reach ``end``: through Whitelisted from Pending when
    the move to Installed Not Commissioned is asked (each a move of the status table)."""
    if start is end:
        return []
    if start is DeviceStatus.PENDING and end is DeviceStatus.INSTALLED_NOT_COMMISSIONED:
        return [DeviceStatus.WHITELISTED, end]
    return [end]


def moves(
    device: Device,
    path: list[DeviceStatus] | tuple[DeviceStatus, ...],
    user_id: str,
    ref: str,
    now: float,
    why: str,
) -> list[InventoryChange]:
    """One recorded status change per step of ``path``, each checked against the table."""
    changes = []
    status = device.status
    for to in path:
        if to is not status and to not in allowed(status):
            raise ChangeRefusedError(
                ResponseCode.E5,
                f"device {device.device_id} is {status.value}; it cannot move to {to.value}",
            )
        changes.append(
            InventoryChange(
                ChangeKind.STATUS,
                now,
                user_id,
                ref,
                device_id=device.device_id,
                site_id=device.site_id,
                mpxn=device.mpxn,
                status=to,
                reason=f"{why}: {status.value} -> {to.value}",
            )
        )
        status = to
    return changes


def allowed(status: DeviceStatus) -> frozenset[DeviceStatus]:
    return TRANSITIONS[status]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The inventory records a list of changes may touch, as they were (so a list refused
    half-way is taken back; a model suspension, which cannot be refused, is not kept)."""

    devices: dict[str, Device | None]
    sites: dict[str, Site | None]
    by_site: dict[str, list[str] | None]
    products: dict[tuple[str, str], Product | None]

    @classmethod
    def of(cls, inventory: Inventory, changes: list[InventoryChange]) -> Snapshot:
        device_ids = {c.device_id for c in changes} | {c.other_device_id for c in changes}
        device_ids |= {c.device.device_id for c in changes if c.device is not None}
        site_ids = {c.site_id for c in changes} | {c.site.site_id for c in changes if c.site}
        site_ids |= {c.device.site_id for c in changes if c.device is not None}
        models = {(c.product.manufacturer, c.product.model) for c in changes if c.product}
        return cls(
            {d: inventory.devices.get(d) for d in device_ids if d},
            {s: inventory.sites.get(s) for s in site_ids if s},
            {
                s: list(inventory.by_site[s]) if s in inventory.by_site else None
                for s in site_ids
                if s
            },
            {m: inventory.products.get(m) for m in models},
        )

    def restore(self, inventory: Inventory) -> None:
        _put_back(inventory.devices, self.devices)
        _put_back(inventory.sites, self.sites)
        _put_back(inventory.by_site, self.by_site)
        _put_back(inventory.products, self.products)


def _put_back(table: dict[_K, _V], old: dict[_K, _V | None]) -> None:
    for key, value in old.items():
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value


def refusal_of(change: InventoryChange, reason: str) -> InventoryChange:
    return InventoryChange(
        ChangeKind.ADOPTION_REFUSED,
        change.at,
        change.by,
        change.ref,
        device_id=change.device_id,
        site_id=change.site_id,
        mpxn=change.mpxn,
        model=change.model,
        reason=reason,
    )


def describe(change: InventoryChange) -> str:
    return f"{change.kind.value}: {change.reason}" if change.reason else change.kind.value

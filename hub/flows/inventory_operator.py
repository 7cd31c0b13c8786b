"""The operator's inventory commands, as the engine receives them: adopt an early-smart meter
that has started communicating via the hub, put a model on the approved products list, take
one off.

Decides: what each command records (an adoption only of a model approved as early-smart, with
its premises when new; a refusal otherwise, told to every supplier user of the meter's
registered supplier with the hub alert ``NOT_ADOPTED``), as ``InventoryChange`` records for
the inventory flow to apply.
Must never: apply a change itself, or run a command twice (the flow keeps the ids carried out).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from hub.engine.effects import Effects
from hub.flows.inventory_records import OPERATOR
from hub.flows.service_flow import FlowHost
from hub.reference.roles import Role
from hub.reference.standard import Value
from hub.reference.text import bounded
from hub.reference.uktime import uk_date
from hub.registers.inventory import ChangeKind, Device, InventoryChange, Product, Site

EARLY_SMART_REFUSED = "NOT_ADOPTED"
"""Hub alert code sent to the registered supplier of an early-smart meter not adopted."""


class OperatorAction(StrEnum):
    """What an operator's inventory command asks."""

    ADOPT = "adopt"
    """Adopt an early-smart meter that has started communicating via the hub."""
    SUSPEND_MODEL = "suspend_model"
    """Take a model off the approved products list."""
    APPROVE_MODEL = "approve_model"
    """Put a model on the approved products list."""


@dataclass(frozen=True, slots=True)
class OperatorCommand:
    """An operator's (or the simulated field's) inventory command, carried out once."""

    command_id: str
    """Unique id; a command whose id is already in the inventory history is not run again."""
    action: OperatorAction
    """What it asks."""
    device: Device | None = None
    """The early-smart meter (``ADOPT``), as the field and registers know it."""
    site: Site | None = None
    """Its premises (``ADOPT``), entered with it when the inventory lacks it."""
    product: Product | None = None
    """The approved products list entry to add (``APPROVE_MODEL``)."""
    model: str = ""
    """``<manufacturer>/<model>`` taken off the list (``SUSPEND_MODEL``)."""
    reason: str = ""
    """Why, for the audit and the history."""


def operator_changes(
    host: FlowHost, command: OperatorCommand, now: float
) -> tuple[list[InventoryChange], Effects]:
    """The changes a command records, and the alerts it sends (a refused adoption's)."""
    inventory = host.access.inventory
    ref = command.command_id
    if command.action is OperatorAction.APPROVE_MODEL:
        product = command.product
        assert product is not None
        approved = InventoryChange(
            ChangeKind.MODEL_APPROVED,
            now,
            OPERATOR,
            ref,
            model=f"{product.manufacturer}/{product.model}",
            product=product,
            reason=command.reason or "approved",
        )
        return [approved], Effects()
    if command.action is OperatorAction.SUSPEND_MODEL:
        suspended = InventoryChange(
            ChangeKind.MODEL_SUSPENDED,
            now,
            OPERATOR,
            ref,
            model=command.model,
            reason=command.reason or "suspended",
        )
        return [suspended], Effects()
    device, site = command.device, command.site
    assert device is not None
    product = inventory.approved(device.manufacturer, device.model)
    model = f"{device.manufacturer}/{device.model}"
    refused = ""
    alerts = Effects()
    if inventory.device(device.device_id) is not None:
        refused = f"device {device.device_id} is already in the inventory"
    elif product is None or not product.early_smart:
        refused = f"early-smart model {model} is not on the approved products list as compliant"
        alerts = _tell_supplier(host, device, refused, now)
    new_site = site if site is not None and site.site_id not in inventory.sites else None
    change = InventoryChange(
        ChangeKind.ADOPTION_REFUSED if refused else ChangeKind.ADOPTED,
        now,
        OPERATOR,
        ref,
        device_id=device.device_id,
        site_id=device.site_id,
        mpxn=device.mpxn,
        model=model,
        device=None if refused else device,
        site=None if refused else new_site,
        reason=refused or command.reason or "started communicating via the hub",
    )
    return [change], alerts


def _tell_supplier(host: FlowHost, device: Device, reason: str, now: float) -> Effects:
    access = host.access
    mp = access.registration.meter_point(device.mpxn) if device.mpxn else None
    party = mp.supplier_on(uk_date(datetime.fromtimestamp(now, UTC))) if mp else None
    effects = Effects()
    if party is None:
        return effects
    data: dict[str, Value] = {
        "device_id": device.device_id,
        "mpxn": device.mpxn,
        "model": f"{device.manufacturer}/{device.model}",
        "reason": bounded(reason),
    }
    for user in sorted(access.users.values(), key=lambda u: u.user_id):
        if user.party_id == party and (Role.IS in user.roles or Role.GS in user.roles):
            effects.extend(host.hub_alert(user.user_id, EARLY_SMART_REFUSED, data, now))
    return effects

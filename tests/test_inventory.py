"""Inventory: status transitions, the approved products list, early-smart adoption."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hub.reference.roles import DeviceType
from hub.registers.inventory import TRANSITIONS, Device, DeviceStatus, InventoryError
from tests.world import ESME, inventory


def test_every_status_has_a_row_in_the_transition_table() -> None:
    assert set(TRANSITIONS) == set(DeviceStatus)


def test_a_device_on_the_approved_list_can_be_commissioned() -> None:
    inv = inventory()
    inv.devices[ESME] = replace(inv.devices[ESME], status=DeviceStatus.INSTALLED_NOT_COMMISSIONED)
    assert inv.transition(ESME, DeviceStatus.COMMISSIONED).status is DeviceStatus.COMMISSIONED


def test_a_device_whose_model_is_not_approved_cannot_be_commissioned() -> None:
    inv = inventory()
    inv.devices[ESME] = replace(
        inv.devices[ESME], status=DeviceStatus.INSTALLED_NOT_COMMISSIONED, model="ROGUE"
    )
    with pytest.raises(InventoryError, match="not on the approved products list"):
        inv.transition(ESME, DeviceStatus.COMMISSIONED)
    assert inv.devices[ESME].status is DeviceStatus.INSTALLED_NOT_COMMISSIONED


def test_a_decommissioned_device_cannot_come_back() -> None:
    inv = inventory()
    inv.transition(ESME, DeviceStatus.DECOMMISSIONED)
    with pytest.raises(InventoryError, match="cannot move from Decommissioned"):
        inv.transition(ESME, DeviceStatus.COMMISSIONED)


def test_removing_a_model_from_the_approved_list_suspends_its_devices() -> None:
    inv = inventory()
    suspended = inv.suspend_model("Acme", "E1")
    assert ESME in suspended
    assert inv.devices[ESME].status is DeviceStatus.SUSPENDED


def _early(model: str) -> Device:
    return Device(
        "00000000000000F1",
        DeviceType.ESME,
        "S1",
        "Oldco",
        model,
        "0.9",
        "",
        DeviceStatus.PENDING,
        "1200000000019",
    )


def test_a_compliant_early_smart_meter_is_adopted_when_it_starts_communicating() -> None:
    inv = inventory()
    adopted = inv.adopt_early_smart(_early("S1"))
    assert adopted.status is DeviceStatus.COMMISSIONED
    assert adopted.early_smart
    assert adopted.head_end == "text"
    assert inv.device(adopted.device_id) == adopted


def test_a_non_compliant_early_smart_meter_is_not_adopted() -> None:
    inv = inventory()
    with pytest.raises(InventoryError, match="does not comply"):
        inv.adopt_early_smart(_early("S0-UNAPPROVED"))
    assert inv.device("00000000000000F1") is None


def test_a_new_device_cannot_be_added_as_already_commissioned() -> None:
    inv = inventory()
    with pytest.raises(InventoryError):
        inv.add_device(replace(_early("S1"), status=DeviceStatus.COMMISSIONED))


def test_device_ids_must_be_eui64_hex() -> None:
    with pytest.raises(ValueError, match="16 upper-case hex"):
        replace(_early("S1"), device_id="xyz")

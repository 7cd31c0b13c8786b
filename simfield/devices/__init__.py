"""Simulated smart metering devices: state that commands change and reads show.

Decides nothing itself; re-exports the device package: ``Premises`` (one site's devices,
the simulator's entry point), the device classes, their state enums and helpers.
Must never: hold logic; each module says what it decides.
"""

from .base import ALERTS, NO_ANCHORS, Device, PublicKey, RefusedError, TrustAnchors
from .chf import CHF
from .esme import ESME, LoadLimit, VoltageConfig
from .gas import GPF, GSME
from .han import IHD, PPMID
from .load import SLOT_S, ElectricityLoad, GasLoad
from .meter import EmergencyCredit, Meter, SupplyCause, SupplyState, SupplyTamperState
from .premises import (
    DeviceUnreachableError,
    Layout,
    Premises,
    UnknownDeviceError,
    device_id_for,
)
from .tariff import BillingPeriod, PrepayConfig, Tariff, make_tariff

__all__ = [
    "ALERTS",
    "CHF",
    "ESME",
    "GPF",
    "GSME",
    "IHD",
    "NO_ANCHORS",
    "PPMID",
    "SLOT_S",
    "BillingPeriod",
    "Device",
    "DeviceUnreachableError",
    "ElectricityLoad",
    "EmergencyCredit",
    "GasLoad",
    "Layout",
    "LoadLimit",
    "Meter",
    "Premises",
    "PrepayConfig",
    "PublicKey",
    "RefusedError",
    "SupplyCause",
    "SupplyState",
    "SupplyTamperState",
    "Tariff",
    "TrustAnchors",
    "UnknownDeviceError",
    "VoltageConfig",
    "device_id_for",
    "make_tariff",
]

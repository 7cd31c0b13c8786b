"""A small hand-built world for core unit tests: two suppliers, a distributor, a transporter,
an agent, an ESCO, one dual-fuel site and one non-domestic site."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

from hub.policies.access import AccessContext, AccessDecision, AccessRequest
from hub.reference.catalogue import CATALOGUE
from hub.reference.mpxn import make_mpan
from hub.reference.parties import User, UserStatus
from hub.reference.roles import DeviceType, Fuel, Role
from hub.registers.inventory import Device, DeviceStatus, Inventory, Product, Site
from hub.registers.registration import (
    AgentAppointment,
    Consent,
    MeterPoint,
    RegistrationData,
    SupplierRegistration,
)

COS_DAY = date(2026, 6, 1)  # SUPB takes over the electricity meter point from SUPA
COT_DAY = date(2026, 4, 1)  # a new tenant moves in
MPAN = make_mpan("12", 1)
EXPORT_MPAN = make_mpan("12", 2)
MPRN = "7000000001"
ND_MPAN = make_mpan("10", 3)

ESME, GSME, CHF, GPF, IHD, PPMID = (f"00000000000000{n:02X}" for n in range(1, 7))
ND_ESME = "00000000000000A1"
ND_CHF = "00000000000000A2"


def at(day: date, hour: int = 12) -> datetime:
    """Noon UTC on a day (well inside the UK day)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


USERS = {
    u.user_id: u
    for u in (
        User("u-supa", "SUPA", "Supplier A", frozenset({Role.IS, Role.GS})),
        User("u-supb", "SUPB", "Supplier B", frozenset({Role.IS, Role.GS})),
        User("u-expo", "EXPO", "Export Co", frozenset({Role.ES})),
        User("u-ukpn", "UKPN", "Distributor", frozenset({Role.ED})),
        User("u-nged", "NGED", "Other distributor", frozenset({Role.ED})),
        User("u-cadent", "CADENT", "Transporter", frozenset({Role.GT})),
        User("u-agent", "AGT1", "Agent", frozenset({Role.RSA})),
        User("u-esco", "ESCO1", "ESCO", frozenset({Role.OU})),
        User("u-gone", "GONE", "Suspended supplier", frozenset({Role.IS}), UserStatus.SUSPENDED),
    )
}


def meter_points() -> list[MeterPoint]:
    return [
        MeterPoint(
            MPAN,
            Fuel.ELECTRICITY,
            "12",
            "UKPN",
            (
                SupplierRegistration("SUPA", date(2020, 1, 1), COS_DAY),
                SupplierRegistration("SUPB", COS_DAY),
            ),
            tenancy_changes=(COT_DAY,),
        ),
        MeterPoint(
            EXPORT_MPAN,
            Fuel.ELECTRICITY,
            "12",
            "UKPN",
            (SupplierRegistration("EXPO", date(2020, 1, 1)),),
            export=True,
        ),
        MeterPoint(
            MPRN, Fuel.GAS, "NT", "CADENT", (SupplierRegistration("SUPA", date(2020, 1, 1)),)
        ),
        MeterPoint(
            ND_MPAN,
            Fuel.ELECTRICITY,
            "10",
            "UKPN",
            (SupplierRegistration("SUPA", date(2020, 1, 1)),),
            data_collector="OTHERDC",
            domestic=False,
        ),
    ]


PRODUCTS = [
    Product("Acme", "E1", DeviceType.ESME, "tlv"),
    Product("Acme", "G1", DeviceType.GSME, "tlv"),
    Product("Acme", "C1", DeviceType.CHF, "tlv"),
    Product("Acme", "P1", DeviceType.GPF, "tlv"),
    Product("Acme", "D1", DeviceType.IHD, "tlv"),
    Product("Acme", "M1", DeviceType.PPMID, "tlv"),
    Product("Oldco", "S1", DeviceType.ESME, "text", early_smart=True),
]


def _device(did: str, dtype: DeviceType, model: str, mpxn: str = "", site: str = "S1") -> Device:
    return Device(did, dtype, site, "Acme", model, "1.0", "tlv", DeviceStatus.COMMISSIONED, mpxn)


def inventory() -> Inventory:
    sites = [
        Site("S1", CHF, "SUPA", "South", "S-0001"),
        Site("S2", ND_CHF, "SUPA", "South", "S-0001"),
    ]
    devices = [
        _device(ESME, DeviceType.ESME, "E1", MPAN),
        _device(GSME, DeviceType.GSME, "G1", MPRN),
        _device(CHF, DeviceType.CHF, "C1"),
        _device(GPF, DeviceType.GPF, "P1"),
        _device(IHD, DeviceType.IHD, "D1"),
        _device(PPMID, DeviceType.PPMID, "M1"),
        _device("00000000000000E7", DeviceType.ESME, "E1", EXPORT_MPAN),
        _device(ND_ESME, DeviceType.ESME, "E1", ND_MPAN, "S2"),
        _device(ND_CHF, DeviceType.CHF, "C1", "", "S2"),
    ]
    return Inventory.build(PRODUCTS, sites, devices)


@dataclass
class World:
    """Access control over the hand-built world, with helpers to ask it questions."""

    users: dict[str, User] = field(default_factory=lambda: dict(USERS))
    registration: RegistrationData = field(
        default_factory=lambda: RegistrationData.build(
            meter_points(),
            [AgentAppointment("AGT1", "SUPA", MPAN, date(2021, 1, 1), date(2027, 1, 1))],
            [Consent("ESCO1", MPAN, date(2025, 1, 1), date(2030, 1, 1))],
        )
    )
    inventory: Inventory = field(default_factory=inventory)

    @property
    def access(self) -> AccessContext:
        return AccessContext(self.users, CATALOGUE, self.registration, self.inventory)

    def ask(
        self, user: str, role: Role, service: str, device: str | None, when: datetime
    ) -> AccessDecision:
        return self.access.decide(AccessRequest(user, role, service, device, when))

    def set_status(self, device_id: str, status: DeviceStatus) -> None:
        d = self.inventory.devices[device_id]
        self.inventory.devices[device_id] = replace(d, status=status)

"""User roles and device types, in domain spelling.

Decides: which roles and device types exist.
Must never: decide what a role may do; that is the catalogue's and access control's job.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The role a service user acts in (DUIS business originator role)."""

    IS = "IS"  # import supplier
    ES = "ES"  # export supplier
    GS = "GS"  # gas supplier
    ED = "ED"  # electricity distributor (network operator)
    GT = "GT"  # gas transporter (network operator)
    RSA = "RSA"  # registered supplier agent
    OU = "OU"  # other user: ESCO or third party acting with customer consent


SUPPLIER_ROLES = frozenset({Role.IS, Role.ES, Role.GS})
NETWORK_ROLES = frozenset({Role.ED, Role.GT})


class DeviceType(StrEnum):
    """Smart metering device types held in the inventory."""

    ESME = "ESME"  # electricity smart metering equipment
    GSME = "GSME"  # gas smart metering equipment
    CHF = "CHF"  # communications hub function (the WAN comms unit)
    GPF = "GPF"  # gas proxy function on the comms hub
    PPMID = "PPMID"  # prepayment meter interface device
    IHD = "IHD"  # in-home display


class Fuel(StrEnum):
    """The fuel of a meter point."""

    ELECTRICITY = "electricity"
    GAS = "gas"

"""Alert routing: which service users receive a device alert.

Decides: the recipients of each alert code: the registered supplier of the meter point (credit,
tamper, top-up, firmware and future-dated outcome alerts), the network operator of its area
(power outage and voltage quality, electricity only), or both (supply restored); a future-dated outcome
(8F66 / 8F67) goes to the user whose command it reports on.
Must never: deliver anything (the outbox does) or look at the clock (the day is given).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from hub.reference.parties import User
from hub.reference.roles import NETWORK_ROLES, SUPPLIER_ROLES, Fuel
from hub.registers.registration import MeterPoint


class Audience(StrEnum):
    """Who an alert code is for."""

    SUPPLIER = "supplier"
    NETWORK_OPERATOR = "network operator"
    SUPPLIER_AND_NETWORK = "supplier and network operator"
    ORIGINATOR = "originator"


ALERT_AUDIENCE: dict[str, Audience] = {
    "AD1": Audience.NETWORK_OPERATOR,  # power outage (comms hub without power > 3 minutes)
    "8F35": Audience.SUPPLIER_AND_NETWORK,  # supply restored
    "8F36": Audience.SUPPLIER_AND_NETWORK,  # supply restored (outage > 3 minutes)
    "8095": Audience.NETWORK_OPERATOR,  # voltage below extreme-under threshold
    "8099": Audience.NETWORK_OPERATOR,  # voltage sag
    "808D": Audience.NETWORK_OPERATOR,  # voltage above over-voltage threshold
    "8091": Audience.NETWORK_OPERATOR,  # voltage swell
    "8F66": Audience.ORIGINATOR,  # future-dated command actioned
    "8F67": Audience.ORIGINATOR,  # future-dated command not actioned
}
"""Alert codes not listed here go to the registered supplier."""

ELECTRICAL = frozenset({"AD1", "8095", "8099", "808D", "8091"})
"""Power outage and voltage quality: about the electricity network only, so never sent to a
gas transporter even when the comms hub also serves a gas meter."""


def audience(alert_code: str) -> Audience:
    """Who an alert code is for."""
    return ALERT_AUDIENCE.get(alert_code, Audience.SUPPLIER)


@dataclass(frozen=True, slots=True)
class PartyIndex:
    """Users by the party they act for, split into supplier and network roles."""

    suppliers: dict[str, tuple[str, ...]]
    networks: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, users: Iterable[User]) -> PartyIndex:
        """Index active and inactive users alike: a suspended user's alerts are still held."""
        sup: dict[str, list[str]] = {}
        net: dict[str, list[str]] = {}
        for u in users:
            if u.roles & SUPPLIER_ROLES:
                sup.setdefault(u.party_id, []).append(u.user_id)
            if u.roles & NETWORK_ROLES:
                net.setdefault(u.party_id, []).append(u.user_id)
        return cls(
            {k: tuple(sorted(v)) for k, v in sup.items()},
            {k: tuple(sorted(v)) for k, v in net.items()},
        )


def recipients(
    alert_code: str,
    meter_points: Iterable[MeterPoint],
    day: date,
    parties: PartyIndex,
    originator: str | None = None,
) -> list[str]:
    """User ids that receive an alert raised at the given meter points on ``day``."""
    aud = audience(alert_code)
    if aud is Audience.ORIGINATOR:
        return [originator] if originator else []
    out: list[str] = []
    for mp in meter_points:
        if aud in (Audience.SUPPLIER, Audience.SUPPLIER_AND_NETWORK):
            supplier = mp.supplier_on(day)
            if supplier is not None:
                out.extend(parties.suppliers.get(supplier, ()))
        if aud in (Audience.NETWORK_OPERATOR, Audience.SUPPLIER_AND_NETWORK):
            if alert_code in ELECTRICAL and mp.fuel is not Fuel.ELECTRICITY:
                continue
            out.extend(parties.networks.get(mp.network_operator, ()))
    return sorted(set(out))

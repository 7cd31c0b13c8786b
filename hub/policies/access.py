"""Access control: may this user, acting in this role, send this service to this device at
this execution date and time?

Decides: accept (with the relation that allowed it) or refuse (with a response code and a
reason a person can read). Checks run in a fixed order: user and role (E1), user status (E3),
service known (E12) and in scope (H5), role eligible (E2), device known (E19), device type
(E11), meter point served by the hub (H6), relation at the execution date (E4), device
status (E5). The relation is judged on the execution day, so a future-dated request that runs
after a change of supplier belongs to the gaining supplier.
Must never: look at the wall clock (``execute_at`` is given) or change any state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from hub.reference.catalogue import Catalogue, Service
from hub.reference.codes import ResponseCode
from hub.reference.parties import User, UserStatus
from hub.reference.roles import DeviceType, Fuel, Role
from hub.reference.text import bounded
from hub.reference.uktime import uk_date
from hub.registers.election import Election
from hub.registers.inventory import Device, DeviceStatus, Inventory
from hub.registers.registration import MeterPoint, RegistrationData


class Relation(StrEnum):
    """Why a user may act on a meter point."""

    REGISTERED_SUPPLIER = "registered supplier"
    FUTURE_SUPPLIER = "future registered supplier"
    APPOINTED_AGENT = "appointed agent"
    NETWORK_OPERATOR = "network operator for the area"
    CONSENTED_ESCO = "customer consent"
    NONE_NEEDED = "non-device service with no target"


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What access control is asked about."""

    user_id: str
    """The sending user."""
    role: Role
    """The role the user acts in."""
    service: str
    """Service reference variant, e.g. ``4.1.1``."""
    device_id: str | None
    """Target device; None for non-device services without a target."""
    execute_at: datetime
    """When the request executes (now for on demand; the execution time if future dated)."""


@dataclass(frozen=True, slots=True)
class AccessDecision:
    """The outcome: accepted with a relation, or refused with a code and a reason."""

    code: ResponseCode
    """I99 when accepted, else the refusal code."""
    reason: str
    """Why, in words a person can act on."""
    relation: Relation | None = None
    """Which relation allowed it (accepted only)."""
    mpxn: str | None = None
    """The meter point the decision was judged on, if any."""

    @property
    def accepted(self) -> bool:
        """True when the request may go ahead."""
        return self.code is ResponseCode.I99


# Device statuses each service needs; default for device services is Commissioned only.
_ANY_STATUS = frozenset(DeviceStatus)
_LIVE = frozenset({DeviceStatus.COMMISSIONED, DeviceStatus.INSTALLED_NOT_COMMISSIONED})
STATUS_NEEDED: dict[str, frozenset[DeviceStatus]] = {
    "8.1.1": frozenset({DeviceStatus.INSTALLED_NOT_COMMISSIONED}),
    "8.2": _ANY_STATUS,
    "8.3": frozenset({*_LIVE, DeviceStatus.SUSPENDED, DeviceStatus.RECOVERED}),
    "8.4": _ANY_STATUS,
    "8.7.1": _LIVE,
    "8.7.2": _LIVE,
    "8.14.1": _ANY_STATUS,
    "8.14.2": _ANY_STATUS,
    "8.14.3": _ANY_STATUS,
    "8.14.4": _ANY_STATUS,
    "11.2": _LIVE,
    "6.15.1": _LIVE,
    "6.15.2": _LIVE,
    "6.23": _LIVE,
    "12.2": _ANY_STATUS,
}
_DEFAULT_STATUS = frozenset({DeviceStatus.COMMISSIONED})
# Services a future supplier may send before its registration starts.
FUTURE_SUPPLIER_SERVICES = frozenset({"8.2"})
# Non-domestic election services: opt-in reaches a meter point the hub does not serve.
ELECTION_SERVICES = frozenset({"8.5", "8.6"})


@dataclass(frozen=True, slots=True)
class AccessContext:
    """The data access control reads: users, catalogue, registers and inventory."""

    users: dict[str, User]
    catalogue: Catalogue
    registration: RegistrationData
    inventory: Inventory
    election: Election = field(default_factory=Election)
    """The hub's own record of non-domestic opt-outs and opt-ins (beside the registers)."""

    def decide(self, req: AccessRequest) -> AccessDecision:
        """Judge one request. Pure: same inputs, same decision."""
        user = self.users.get(req.user_id)
        if user is None:
            return _refuse(ResponseCode.E1, f"user {req.user_id} is not a registered service user")
        if req.role not in user.roles:
            return _refuse(
                ResponseCode.E1, f"user {user.user_id} does not hold role {req.role.value}"
            )
        if user.status is not UserStatus.ACTIVE:
            return _refuse(ResponseCode.E3, f"user {user.user_id} is {user.status.value}")
        service = self.catalogue.get(req.service)
        if service is None:
            return _refuse(ResponseCode.E12, f"service {req.service} is not in the catalogue")
        if not service.in_scope:
            return _refuse(
                ResponseCode.H5,
                f"service {service.code} ({service.name}) is an evolved smart grid service, "
                "outside the hub's scope",
            )
        if req.role not in service.roles:
            return _refuse(
                ResponseCode.E2,
                f"role {req.role.value} may not send {service.code} ({service.name})",
            )
        if req.role is Role.RSA and not service.read_only:
            return _refuse(
                ResponseCode.E2, f"agents may send read-only services only, not {service.code}"
            )
        if req.device_id is None:
            if service.non_device:
                return AccessDecision(ResponseCode.I99, "non-device service", Relation.NONE_NEEDED)
            return _refuse(ResponseCode.E12, f"service {service.code} needs a target device")
        device = self.inventory.device(req.device_id)
        if device is None:
            return _refuse(ResponseCode.E19, f"device {req.device_id} is not in the inventory")
        if service.device_types and device.device_type not in service.device_types:
            allowed = ", ".join(sorted(t.value for t in service.device_types))
            return _refuse(
                ResponseCode.E11,
                f"{service.code} applies to {allowed}, not to {device.device_type.value}",
            )
        meter_points = self.meter_points_of(device)
        if not meter_points:
            return _refuse(
                ResponseCode.E4, f"device {device.device_id} has no registered meter point"
            )
        served = [mp for mp in meter_points if self.election.served(mp)]
        if service.code in ELECTION_SERVICES:
            domestic = [mp for mp in meter_points if mp.domestic]
            if domestic:
                return _refuse(
                    ResponseCode.E12,
                    f"{service.code} is for non-domestic meter points; {domestic[0].mpxn} is "
                    "domestic",
                    mpxn=domestic[0].mpxn,
                )
            if service.code == "8.6":
                served = meter_points  # opting in reaches a meter point not served yet
        if not served:
            mp = meter_points[0]
            kind = "non-domestic " if not mp.domestic else ""
            why = (
                "its supplier opted out of the hub (8.5)"
                if self.election.elected.get(mp.mpxn) is False
                else f"has data collector {mp.data_collector}: its supplier has not opted in to the hub"
            )
            return _refuse(ResponseCode.H6, f"{kind}meter point {mp.mpxn} {why}", mpxn=mp.mpxn)
        meter_points = served
        day = uk_date(req.execute_at)
        found = None
        for mp in meter_points:
            relation = self._relation(user, req.role, service, mp, day)
            if relation is not None:
                found = (relation, mp)
                break
        if found is None:
            mpxns = ", ".join(mp.mpxn for mp in meter_points)
            return _refuse(
                ResponseCode.E4,
                f"{user.user_id} as {req.role.value} has no relation with meter point {mpxns} "
                f"on {day.isoformat()}",
            )
        relation, mp = found
        needed = STATUS_NEEDED.get(
            service.code, _ANY_STATUS if service.non_device else _DEFAULT_STATUS
        )
        if device.status not in needed:
            return _refuse(
                ResponseCode.E5,
                f"device {device.device_id} is {device.status.value}; {service.code} needs "
                + " or ".join(sorted(s.value for s in needed)),
                mpxn=mp.mpxn,
            )
        return AccessDecision(
            ResponseCode.I99, f"{relation.value} on {day.isoformat()}", relation, mp.mpxn
        )

    def meter_points_of(self, device: Device) -> list[MeterPoint]:
        """The meter points a device serves: its own, or those at its site (CHF, PPMID,
        IHD), or the site's gas meter points (GPF)."""
        reg = self.registration
        if device.mpxn:
            mp = reg.meter_point(device.mpxn)
            return [mp] if mp else []
        out = []
        for other in self.inventory.site_devices(device.site_id):
            if not other.mpxn:
                continue
            if device.device_type is DeviceType.GPF and other.device_type is not DeviceType.GSME:
                continue
            mp = reg.meter_point(other.mpxn)
            if mp is not None and mp not in out:
                out.append(mp)
        return out

    def _relation(
        self, user: User, role: Role, service: Service, mp: MeterPoint, day: date
    ) -> Relation | None:
        party = user.party_id
        if role in (Role.IS, Role.ES, Role.GS):
            if not _supplier_role_fits(role, mp):
                return None
            if mp.supplier_on(day) == party:
                return Relation.REGISTERED_SUPPLIER
            if service.code in FUTURE_SUPPLIER_SERVICES and mp.is_future_supplier(party, day):
                return Relation.FUTURE_SUPPLIER
            return None
        if role in (Role.ED, Role.GT):
            fuel = Fuel.ELECTRICITY if role is Role.ED else Fuel.GAS
            ok = mp.fuel is fuel and mp.network_operator == party
            return Relation.NETWORK_OPERATOR if ok else None
        if role is Role.RSA:
            ok = self.registration.agent_appointed(party, mp.mpxn, day)
            return Relation.APPOINTED_AGENT if ok else None
        ok = self.registration.consent_live(party, mp.mpxn, day)
        return Relation.CONSENTED_ESCO if ok else None


def _supplier_role_fits(role: Role, mp: MeterPoint) -> bool:
    if role is Role.GS:
        return mp.fuel is Fuel.GAS
    if role is Role.ES:
        return mp.fuel is Fuel.ELECTRICITY and mp.export
    return mp.fuel is Fuel.ELECTRICITY and not mp.export


def _refuse(code: ResponseCode, reason: str, mpxn: str | None = None) -> AccessDecision:
    return AccessDecision(code, bounded(reason), None, mpxn)

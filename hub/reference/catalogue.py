"""The service catalogue: typed services and the queries the rest of the hub asks of them.

Decides: which services exist, which roles may send each, which device types each applies to,
its priority class, target response time and charge class, and whether it is in scope.
Must never: decide access for a particular user or meter point (see ``hub.policies.access``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum

from hub.reference.catalogue_data import ROWS
from hub.reference.roles import DeviceType, Role


class FutureDated(StrEnum):
    """How a future-dated request is handled, if at all."""

    NONE = "-"  # cannot be future dated
    DSP = "DSP"  # the hub holds it and releases it at the execution time
    DEVICE = "Device"  # sent now; the device acts at the date and raises 8F66 / 8F67
    DSP_AND_DEVICE = "DSP+Device"  # both patterns are allowed


class PriorityClass(int, Enum):
    """Traffic priority; lower is served first. Alerts travel in their own class."""

    ALERT = 0
    URGENT = 1  # prepayment and supply operations
    ON_DEMAND = 2
    BULK = 3  # scheduled bulk reads, firmware


class ChargeClass(StrEnum):
    """How use of a service is charged."""

    CORE = "core"  # covered by the fixed monthly charge per meter
    EXPLICIT = "explicit"  # charged per use


# The seed's 'evolved smart grid' services (remote management of smart appliances).
_OUT_OF_SCOPE_PREFIXES = ("6.14.",)
_OUT_OF_SCOPE = frozenset(f"7.{n}" for n in range(5, 17))
_URGENT = frozenset({"1.5", "1.6", "2.1", "2.2", "2.3", "2.5", "7.1", "7.2", "7.3"})
_BULK = frozenset({"11.1", "11.4", "12.1"})
_EXPLICIT = frozenset({"11.1", "11.4", "12.1", "12.2"})
_READ_ONLY_PREFIXES = ("Read ", "Retrieve ", "Request WAN Matrix")
# Retired in the real regime (no roles in the facts); here the non-domestic supplier sends them.
_OPT_OUT_IN_ROLES = frozenset({Role.IS, Role.GS})
_OPT_OUT_IN = frozenset({"8.5", "8.6"})
DEFAULT_TARGET_S = 30.0
FIRMWARE_TARGET_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Service:
    """One service request reference variant."""

    code: str
    """DUIS service reference variant, e.g. ``4.1.1``."""
    name: str
    """DUIS service name."""
    critical: bool
    """The user must sign the command; the device verifies the signature."""
    on_demand: bool
    """May be sent for immediate execution."""
    future_dated: FutureDated
    """Whether and how it may be future dated."""
    schedulable: bool
    """May be run by a recurring DCC schedule (5.1)."""
    non_device: bool
    """Answered by the hub without a device."""
    roles: frozenset[Role]
    """Roles that may send it."""
    device_types: frozenset[DeviceType]
    """Device types it applies to; empty for non-device services."""
    in_scope: bool
    """False for the seed's excluded 'evolved smart grid' services."""
    read_only: bool
    """Changes nothing on a device or in the hub (agents may send only these)."""
    priority: PriorityClass
    """Traffic priority class."""
    target_response_s: float
    """Default target response time, seconds (configurable at run time)."""
    charge_class: ChargeClass
    """How its use is charged."""

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description, as printed by ``dcc catalogue --json``."""
        return {
            "code": self.code,
            "name": self.name,
            "roles": sorted(r.value for r in self.roles),
            "critical": self.critical,
            "on_demand": self.on_demand,
            "future_dated": None
            if self.future_dated is FutureDated.NONE
            else self.future_dated.value,
            "schedulable": self.schedulable,
            "non_device": self.non_device,
            "in_scope": self.in_scope,
            "read_only": self.read_only,
            "device_types": sorted(d.value for d in self.device_types),
            "priority": self.priority.name,
            "target_response_s": self.target_response_s,
            "charge_class": self.charge_class.value,
        }


def _parse_roles(code: str, text: str) -> frozenset[Role]:
    if code in _OPT_OUT_IN:
        return _OPT_OUT_IN_ROLES
    return frozenset(Role(r) for r in text.split(",") if r)


def _in_scope(code: str) -> bool:
    return code not in _OUT_OF_SCOPE and not code.startswith(_OUT_OF_SCOPE_PREFIXES)


def _service(row: tuple[str, str, bool, bool, str, bool, bool, str, str]) -> Service:
    code, name, critical, on_demand, fd, schedulable, non_device, roles, device_types = row
    return Service(
        code=code,
        name=name,
        critical=critical,
        on_demand=on_demand,
        future_dated=FutureDated(fd or "-"),
        schedulable=schedulable,
        non_device=non_device,
        roles=_parse_roles(code, roles),
        device_types=frozenset(DeviceType(d) for d in device_types.split()),
        in_scope=_in_scope(code),
        read_only=name.startswith(_READ_ONLY_PREFIXES),
        priority=(
            PriorityClass.URGENT
            if code in _URGENT
            else PriorityClass.BULK
            if code in _BULK
            else PriorityClass.ON_DEMAND
        ),
        target_response_s=FIRMWARE_TARGET_S if code in {"11.1", "11.4"} else DEFAULT_TARGET_S,
        charge_class=ChargeClass.EXPLICIT if code in _EXPLICIT else ChargeClass.CORE,
    )


def _code_key(code: str) -> tuple[int, ...]:
    return tuple(int(part) for part in code.split("."))


class Catalogue(Mapping[str, Service]):
    """All services, looked up by code, iterated in catalogue order."""

    def __init__(self, services: tuple[Service, ...]) -> None:
        self._by_code = {s.code: s for s in sorted(services, key=lambda s: _code_key(s.code))}

    def __getitem__(self, code: str) -> Service:
        return self._by_code[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_code)

    def __len__(self) -> int:
        return len(self._by_code)

    def services(self) -> tuple[Service, ...]:
        """Every service in catalogue order."""
        return tuple(self._by_code.values())

    def for_role(self, role: Role) -> tuple[Service, ...]:
        """The services a role may send."""
        return tuple(s for s in self._by_code.values() if role in s.roles)


CATALOGUE = Catalogue(tuple(_service(row) for row in ROWS))
"""The hub's catalogue, built once at import from the facts table."""

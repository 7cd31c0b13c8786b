"""COSEM objects: which COSEM object, and which request kind, stands for each service.

Decides: the class id, OBIS logical name and attribute or method id each service addresses,
whether it is reached with GET (reads), SET (updates) or ACTION (operations), and which objects
carry the high-priority bit (urgent services and alerts).
Must never: lay out bytes or check a MAC (the head-end does); it is a mapping, nothing more.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from hub.reference.catalogue import CATALOGUE, PriorityClass


class Access(StrEnum):
    """How a service reaches its COSEM object."""

    GET = "get"  # reads
    SET = "set"  # updates
    ACTION = "action"  # operations


@dataclass(frozen=True, slots=True)
class CosemObject:
    """The COSEM object a service addresses, and how."""

    access: Access
    """GET, SET or ACTION."""
    class_id: int
    """COSEM interface class (1 Data, 3 Register, 7 Profile generic, 70 Disconnect control...)."""
    logical_name: str
    """OBIS code in six groups, e.g. ``1.0.1.8.0.255``."""
    index: int
    """Attribute id for GET and SET, method id for ACTION."""
    high_priority: bool = False
    """Sent with the high-priority bit (urgent services)."""

    @property
    def obis(self) -> bytes:
        """The logical name as the six bytes on the wire."""
        return bytes(int(group) for group in self.logical_name.split("."))


_A = Access
# service: (access, class id, logical name, attribute or method id)
_OBJECTS: Final[dict[str, tuple[Access, int, str, int]]] = {
    "1.1.1": (_A.SET, 20, "0.0.13.0.0.255", 9),  # activity calendar, passive season
    "1.1.2": (_A.SET, 20, "0.0.13.0.1.255", 9),
    "1.2.1": (_A.SET, 113, "0.0.19.20.0.255", 2),  # charge
    "1.2.2": (_A.SET, 113, "0.0.19.20.1.255", 2),
    "1.5": (_A.SET, 111, "0.0.19.0.0.255", 7),  # account, balance
    "1.6": (_A.SET, 111, "0.0.19.0.0.255", 3),  # account, payment mode
    "2.2": (_A.ACTION, 115, "0.0.19.40.0.255", 1),  # token gateway, enter
    "3.1": (_A.SET, 1, "0.0.96.13.0.255", 2),  # consumer message text
    "3.3": (_A.ACTION, 7, "0.0.99.98.0.255", 1),  # event log, reset
    "4.1.1": (_A.GET, 3, "1.0.1.8.0.255", 2),  # active energy import, total
    "4.1.2": (_A.GET, 3, "1.0.1.8.1.255", 2),  # active energy import, rate 1
    "4.2": (_A.GET, 3, "1.0.2.8.0.255", 2),  # active energy export, total
    "4.3": (_A.GET, 111, "0.0.19.0.0.255", 2),  # account
    "4.6.1": (_A.GET, 7, "1.0.99.2.0.255", 2),  # daily read profile
    "4.8.1": (_A.GET, 7, "1.0.99.1.0.255", 2),  # load profile
    "4.16": (_A.GET, 3, "1.0.1.7.0.255", 2),  # instantaneous active power import
    "4.18": (_A.GET, 111, "0.0.19.0.0.255", 7),  # account, balance
    "6.2.4": (_A.GET, 1, "0.0.96.1.0.255", 2),  # device identity
    "6.11": (_A.ACTION, 8, "0.0.1.0.0.255", 6),  # clock, adjust
    "6.13": (_A.GET, 7, "0.0.99.98.0.255", 2),  # event log
    "7.1": (_A.ACTION, 70, "0.0.96.3.10.255", 2),  # disconnect control, reconnect
    "7.2": (_A.ACTION, 70, "0.0.96.3.10.255", 1),  # disconnect control, disconnect
    "7.3": (_A.ACTION, 70, "0.0.96.3.10.255", 2),
    "7.4": (_A.GET, 70, "0.0.96.3.10.255", 2),  # disconnect control, output state
    "11.1": (_A.ACTION, 18, "0.0.44.0.0.255", 2),  # image transfer, transfer block
    "11.2": (_A.GET, 1, "1.0.0.2.0.255", 2),  # active firmware identifier
    "11.3": (_A.ACTION, 18, "0.0.44.0.0.255", 4),  # image transfer, activate
}
_UPDATE_VERBS: Final = ("Update ", "Set ", "Configure ")
_MANUFACTURER_GROUP_C: Final = 128

ALERT_OBJECT: Final = CosemObject(Access.GET, 1, "0.0.97.98.0.255", 2, high_priority=True)
"""The object an alert's event notification names: alarm register 1, value."""


@functools.lru_cache(maxsize=1024)
def service_object(service: str) -> CosemObject:
    """The COSEM object that stands for ``service``.

    Known services have their own object. Other catalogue services get a manufacturer-specific
    Data object ``0.128.A.B.C.255`` from their code ``A.B.C``, read with GET when read-only,
    written with SET when their name starts with Update, Set or Configure, and ACTION otherwise.
    A service outside the catalogue is an ACTION on ``0.128.0.0.0.255``.
    """
    known = CATALOGUE.get(service)
    urgent = known is not None and known.priority is PriorityClass.URGENT
    entry = _OBJECTS.get(service)
    if entry is not None:
        access, class_id, logical_name, index = entry
        return CosemObject(access, class_id, logical_name, index, urgent)
    if known is None:
        return CosemObject(Access.ACTION, 1, "0.128.0.0.0.255", 1)
    if known.read_only:
        access = Access.GET
    elif known.name.startswith(_UPDATE_VERBS):
        access = Access.SET
    else:
        access = Access.ACTION
    groups = [int(part) for part in service.split(".")]
    groups += [0] * (3 - len(groups))
    logical_name = f"0.{_MANUFACTURER_GROUP_C}.{groups[0]}.{groups[1]}.{groups[2]}.255"
    return CosemObject(access, 1, logical_name, 1 if access is Access.ACTION else 2, urgent)

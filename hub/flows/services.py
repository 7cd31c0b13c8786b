"""The one table of services the hub carries out itself, keyed by DUIS service reference.

Decides: which flow handles each such service (adding a non-device service is one line here
and its flow module), and whether this release carries a service out at all (``executable``).
Must never: hold state (each engine builds its own flows from this table).
"""

from __future__ import annotations

from collections.abc import Callable

from hub.flows.firmware import FIRMWARE_SERVICES
from hub.flows.firmware_service import FirmwareFlow
from hub.flows.inventory_changes import INVENTORY_SERVICES, InventoryChangeFlow
from hub.flows.inventory_service import InventoryFlow
from hub.flows.non_device import ANSWERED
from hub.flows.schedule_service import SCHEDULE_SERVICES, ScheduleFlow
from hub.flows.service_flow import FlowHost, ServiceFlow
from hub.reference.catalogue import Service
from hub.reference.service_params import schema_for

SERVICE_FLOWS: dict[str, Callable[[FlowHost], ServiceFlow]] = {
    **dict.fromkeys(sorted(ANSWERED), InventoryFlow),
    **dict.fromkeys(sorted(SCHEDULE_SERVICES), ScheduleFlow),
    **dict.fromkeys(sorted(FIRMWARE_SERVICES), FirmwareFlow),
    **dict.fromkeys(sorted(INVENTORY_SERVICES), InventoryChangeFlow),
}
"""The flow of each service the hub handles itself; codes sharing a flow share one instance
per engine."""


def executable(service: Service) -> bool:
    """Whether this hub release carries the service out: device services with a parameter
    schema (the simulated devices implement every one, as their tests show), and the non-device
    services the hub handles itself. Anything else is refused with H9, never faked."""
    if not service.in_scope:
        return False
    if service.non_device:
        return service.code in SERVICE_FLOWS
    return schema_for(service.code) is not None

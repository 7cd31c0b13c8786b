"""The hub's handler of the non-device services it answers from its own registers (8.2 Read
Inventory, 12.1 Request WAN Matrix; the answers are in ``hub.flows.non_device``).

Decides: that such a request names a target device, and the answer (E19 when the device is
not in the inventory).
Must never: touch a device, or return readings of any kind.
"""

from __future__ import annotations

from hub.engine.effects import Effects
from hub.engine.lifecycle import RequestRecord
from hub.flows.non_device import HANDLERS
from hub.flows.service_flow import ServiceFlow
from hub.reference.catalogue import Service
from hub.reference.codes import ResponseCode
from hub.wire import ServiceRequest


class InventoryFlow(ServiceFlow):
    """8.2 and 12.1: answered at once from the inventory."""

    def check(
        self, user_id: str, req: ServiceRequest, service: Service, now: float
    ) -> tuple[ResponseCode, str] | None:
        """A target device is needed."""
        if req.device_id is None:
            return ResponseCode.E12, f"{service.code} needs a target device"
        return None

    def execute(self, rec: RequestRecord, now: float, admitted: bool) -> Effects:
        """Answer from the inventory."""
        inventory = self.host.access.inventory
        device = inventory.device(rec.device_id or "")
        if device is None:
            return self.host.respond(
                rec, ResponseCode.E19, {"reason": f"device {rec.device_id} not found"}, now
            )
        return self.host.respond(
            rec, ResponseCode.I0, HANDLERS[rec.service](inventory, device), now
        )

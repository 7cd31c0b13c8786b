"""The hub's handler of the non-device services it answers from its own registers (8.2 Read
Inventory, 12.1 Request WAN Matrix; the answers are in ``hub.flows.non_device``).

Decides: that such a request names its target, a device (8.2 may name a meter point in
``params.mpxn`` instead: device discovery), that access control allows the user the meter
point of a device found by meter point, and the answer (E19 when no device is found).
Must never: touch a device, return readings of any kind, or tell a user without a relation
to a meter point which devices are there.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hub.engine.effects import Effects
from hub.engine.lifecycle import RequestRecord
from hub.flows.non_device import HANDLERS, meter_at
from hub.flows.service_flow import ServiceFlow
from hub.policies.access import AccessRequest
from hub.reference.catalogue import Service
from hub.reference.codes import ResponseCode
from hub.reference.service_params import HUB_SCHEMAS, validate_params
from hub.reference.text import join_reasons, show
from hub.registers.inventory import Device
from hub.wire import ServiceRequest

BY_METER_POINT = frozenset({"8.2"})
"""The services that may name a meter point (``params.mpxn``) instead of a target device."""


class InventoryFlow(ServiceFlow):
    """8.2 and 12.1: answered at once from the inventory."""

    def check(
        self, user_id: str, req: ServiceRequest, service: Service, now: float
    ) -> tuple[ResponseCode, str] | None:
        """The parameters are valid and the target is given once: a device, or (8.2) a meter
        point whose meter exists and whose registration the user has a relation with."""
        if service.code in HUB_SCHEMAS:
            problems = validate_params(service.code, req.params)
            if problems:
                return ResponseCode.E12, join_reasons(problems)
        mpxn = req.params.get("mpxn") if service.code in BY_METER_POINT else None
        if not isinstance(mpxn, str):
            if req.device_id is None:
                if service.code in BY_METER_POINT:
                    return (
                        ResponseCode.E12,
                        f"{service.code} needs a target: a device_id, or a meter point as "
                        "params.mpxn with device_id nil",
                    )
                return ResponseCode.E12, f"{service.code} needs a target device"
            return None
        if req.device_id is not None:
            return ResponseCode.E12, (
                f"{service.code} takes a device_id or params.mpxn, not both: leave device_id "
                "nil to read a meter point's site"
            )
        access = self.host.access
        if access.registration.meter_point(mpxn) is None:
            return ResponseCode.E19, f"meter point {mpxn} is not in the registers"
        meter = meter_at(access.inventory, mpxn)
        if meter is None:
            return ResponseCode.E19, f"no device in the inventory meters meter point {mpxn}"
        decision = access.decide(
            AccessRequest(
                user_id, req.role, service.code, meter.device_id, datetime.fromtimestamp(now, UTC)
            )
        )
        return None if decision.accepted else (decision.code, decision.reason)

    def execute(self, rec: RequestRecord, now: float, admitted: bool) -> Effects:
        """Answer from the inventory."""
        inventory = self.host.access.inventory
        device: Device | None
        if rec.device_id is None:
            mpxn = rec.params.get("mpxn")
            device = meter_at(inventory, mpxn) if isinstance(mpxn, str) else None
            missing = f"no device in the inventory meters meter point {show(mpxn)}"
        else:
            device = inventory.device(rec.device_id)
            missing = f"device {rec.device_id} not found"
        if device is None:
            return self.host.respond(rec, ResponseCode.E19, {"reason": missing}, now)
        return self.host.respond(
            rec, ResponseCode.I0, HANDLERS[rec.service](inventory, device), now
        )

"""The hub's handler of firmware distribution (11.1 Update Firmware, 11.4 Update PPMID
Firmware): the request is carried to the device as a transfer of blocks.

Decides: whether an update request applies to its target (11.4 to a PPMID, 11.1 to any other
device but an IHD), how the transfer starts or resumes after a restart, and what each block's
answer means (next block, done with I0, or H11 when the device rejects a block).
Must never: activate firmware (11.3 does, on the device), or send a block except through the
engine's traffic management (``FlowHost.offer``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hub.engine.effects import Effects
from hub.engine.lifecycle import RequestEvent, RequestRecord
from hub.flows.firmware import Transfer, validate_update
from hub.flows.schedules import Schedule
from hub.flows.service_flow import FlowHost, ServiceFlow
from hub.reference.catalogue import PriorityClass, Service
from hub.reference.codes import ResponseCode
from hub.reference.roles import DeviceType
from hub.reference.standard import CommandStatus, DeviceCommand, DeviceResponse, Value
from hub.reference.text import join_reasons
from hub.wire import ServiceRequest


class FirmwareFlow(ServiceFlow):
    """11.1 and 11.4: block transfers in progress, and where restarted ones resume."""

    uses_device = True

    def __init__(self, host: FlowHost) -> None:
        super().__init__(host)
        self._transfers: dict[int, Transfer] = {}
        self._resume: dict[int, int] = {}  # seq -> next block, restored after a restart

    def check(
        self, user_id: str, req: ServiceRequest, service: Service, now: float
    ) -> tuple[ResponseCode, str] | None:
        """Version and image size, a target device, and the right kind of device."""
        problems = validate_update(req.params)
        if req.device_id is None:
            problems.append(f"{service.code} needs a target device")
        if problems:
            return ResponseCode.E12, join_reasons(problems)
        target = self.host.access.inventory.device(req.device_id or "")
        ppmid = target is not None and target.device_type is DeviceType.PPMID
        if target is not None and (
            ppmid != (service.code == "11.4") or target.device_type is DeviceType.IHD
        ):
            return (
                ResponseCode.E11,
                f"{service.code} does not apply to a {target.device_type.value}",
            )
        return None

    def execute(self, rec: RequestRecord, now: float, admitted: bool) -> Effects:
        """Start (or, after a restart, resume) carrying the image to the device in blocks."""
        assert rec.device_id is not None
        version, size = rec.params["version"], rec.params["image_size"]
        assert isinstance(version, str)
        assert isinstance(size, int)
        transfer = Transfer(rec.seq, rec.device_id, version, size, self._resume.pop(rec.seq, 0))
        self._transfers[rec.seq] = transfer
        self.host.index.move(rec, RequestEvent.TRANSFER)
        return self._send_block(rec, transfer, now, admitted)

    def _send_block(
        self, rec: RequestRecord, transfer: Transfer, now: float, admitted: bool
    ) -> Effects:
        params = transfer.block_params()
        command = DeviceCommand(transfer.command_id(), rec.service, transfer.device_id, params)
        data = params["data"]
        size = len(data) if isinstance(data, bytes) else 0
        return self.host.offer(rec, command, PriorityClass.BULK, size, now, admitted)

    def on_device_response(
        self, rec: RequestRecord, resp: DeviceResponse, now: float
    ) -> Effects | None:
        """A block was answered: send the next, or answer the request (I0 when every block
        is acknowledged, H11 when the device rejects one)."""
        transfer = self._transfers.get(rec.seq)
        if transfer is None:
            return None
        if resp.status is CommandStatus.REJECTED:
            return self.host.respond(
                rec, ResponseCode.H11, {"reason": resp.reason, "block": transfer.next_block}, now
            )
        transfer.next_block += 1
        progress = Effects(save_transfers=[(rec.seq, transfer.next_block)])
        self.host.index.answered_block(rec.seq)
        if transfer.done:
            body: dict[str, Value] = {
                "version": transfer.version,
                "blocks": transfer.blocks,
                "image_size": transfer.image_size,
            }
            progress.extend(self.host.respond(rec, ResponseCode.I0, body, now))
            return progress
        progress.extend(self._send_block(rec, transfer, now, admitted=False))
        return progress

    def restore(
        self, schedules: Iterable[Schedule], next_schedule: int, transfers: Mapping[int, int]
    ) -> None:
        """Take back where each unfinished transfer stopped."""
        self._resume.update(transfers)

    def forget(self, seq: int) -> None:
        """The request was answered: its transfer is over."""
        self._transfers.pop(seq, None)

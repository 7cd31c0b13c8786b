"""HAN devices without a meter: the device-log keepers (CHF, GPF) and the in-home devices
(PPMID, IHD).

Decides: how a device log (the list of HAN devices allowed to talk to the comms hub or the gas
proxy) is read (8.9), updated (8.11) and restored (8.12.x), raising the log-changed alert; what
a PPMID and an IHD answer (identity, joins, firmware, handover).
Must never: read the clock or hold unbounded lists.
"""

from __future__ import annotations

from typing import ClassVar

from hub.reference.roles import DeviceType
from hub.reference.standard import Value

from .base import (
    DEVICE_HANDLERS,
    NO_ANCHORS,
    Body,
    Ctx,
    Device,
    Handler,
    RefusedError,
    TrustAnchors,
    p_str,
    p_strs,
)

MAX_DEVICE_LOG = 16
"""HAN devices a device log holds."""


class LogKeeper(Device):
    """A device that keeps a HAN device log (the CHF's, or the GPF's for the gas side)."""

    __slots__ = ("_device_log",)

    LOG_CHANGED_ALERT: ClassVar[str]
    """Alert raised when the log changes."""
    LOG_LIMIT: ClassVar[int] = MAX_DEVICE_LOG
    """Entries the log holds."""

    def __init__(
        self,
        device_id: str,
        key: int,
        *,
        supplier_key_id: str,
        network_key_id: str,
        device_log: tuple[str, ...] = (),
        anchors: TrustAnchors = NO_ANCHORS,
    ) -> None:
        super().__init__(
            device_id,
            key,
            supplier_key_id=supplier_key_id,
            network_key_id=network_key_id,
            anchors=anchors,
        )
        self._device_log = device_log

    def set_device_log(self, device_ids: tuple[str, ...]) -> None:
        """Set the log without alerts (installation)."""
        self._device_log = device_ids

    @property
    def device_log(self) -> tuple[str, ...]:
        """The HAN devices in the log."""
        return self._device_log

    def h_read_device_log(self, ctx: Ctx) -> Body:
        """8.9 Read Device Log."""
        devices: list[Value] = [*self._device_log]
        return {"devices": devices, "count": len(self._device_log)}

    def h_update_device_log(self, ctx: Ctx) -> Body:
        """8.11 Update HAN Device Log: add or remove one device."""
        action = p_str(ctx.params, "action")
        other = p_str(ctx.params, "other_device_id")
        log = self._device_log
        if action == "add":
            if other in log:
                return {"action": action, "other_device_id": other, "changed": False}
            if len(log) >= self.LOG_LIMIT:
                raise RefusedError(f"the device log is full ({self.LOG_LIMIT} devices)")
            self._device_log = (*log, other)
        else:
            if other not in log:
                raise RefusedError(f"device {other} is not in the device log")
            self._device_log = tuple(d for d in log if d != other)
        self.alert(ctx.alerts, self.LOG_CHANGED_ALERT, ctx.now, {"action": action, "device": other})
        return {"action": action, "other_device_id": other, "changed": True}

    def h_restore_device_log(self, ctx: Ctx) -> Body:
        """8.12.1 / 8.12.2 Restore the device log (after a comms hub replacement)."""
        devices = p_strs(ctx.params, "device_ids")
        if len(devices) > self.LOG_LIMIT:
            raise RefusedError(f"the device log holds at most {self.LOG_LIMIT} devices")
        self._device_log = devices
        self.alert(ctx.alerts, self.LOG_CHANGED_ALERT, ctx.now, {"action": "restore"})
        restored: list[Value] = [*devices]
        return {"devices": restored, "count": len(devices)}


LOG_KEEPER_HANDLERS: dict[str, Handler] = {
    **DEVICE_HANDLERS,
    "8.9": LogKeeper.h_read_device_log,
    "8.11": LogKeeper.h_update_device_log,
}


class PPMID(Device):
    """A prepayment meter interface device (the customer's top-up and credit display)."""

    __slots__ = ()

    DEVICE_TYPE: ClassVar[DeviceType] = DeviceType.PPMID
    HANDLERS: ClassVar[dict[str, Handler]] = dict(DEVICE_HANDLERS)


class IHD(Device):
    """An in-home display."""

    __slots__ = ()

    DEVICE_TYPE: ClassVar[DeviceType] = DeviceType.IHD
    HANDLERS: ClassVar[dict[str, Handler]] = dict(DEVICE_HANDLERS)

"""Head-end actors: one per head-end type, translating between standard and vendor messages.

Decides: nothing about access or delivery; it encodes commands with its head-end plugin and
sends them to the comms hub pool, and decodes device frames into standard responses and
alerts for the front door. A frame that fails its integrity check is reported, never passed on.
Must never: share its uplink socket with another thread (it creates it in its own thread).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import pykka

from actors.messages import Decoded, DeviceFailure, Encode, IntegrityFailure, Transmit, UplinkFrame
from actors.uplinks import Uplinks, UplinkSender
from hub.headends.base import FrameError, HeadEnd, HeadEndError, IntegrityError
from hub.reference.codes import ResponseCode


def pool_index(comms_hub: str, pools: int) -> int:
    """Which comms hub pool actor hosts a comms hub (stable across runs)."""
    return zlib.crc32(comms_hub.encode()) % pools


class HeadEndActor(pykka.ThreadingActor):
    """Translates for one head-end type."""

    def __init__(
        self,
        head_end: HeadEnd,
        pools: Sequence[Any],
        uplinks: Uplinks,
    ) -> None:
        super().__init__()
        self.head_end = head_end
        self._pools = list(pools)
        self._uplinks = uplinks
        self._push: UplinkSender | None = None
        self.encoded = 0
        self.decoded = 0

    def on_start(self) -> None:
        self._push = self._uplinks.sender()

    def on_stop(self) -> None:
        if self._push is not None:
            self._push.close()

    def set_pools(self, pools: Sequence[Any]) -> None:
        """Wire the comms hub pools (they are started after the head-ends)."""
        self._pools = list(pools)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Encode):
            self._encode(message)
        elif isinstance(message, UplinkFrame):
            self._decode(message)
        return None

    def _encode(self, message: Encode) -> None:
        d = message.dispatch
        try:
            frame = self.head_end.encode_command(d.command)
        except HeadEndError as err:
            # the engine validated the command; a head-end that cannot encode it is a fault
            # of the plugin: answer the request rather than lose it
            self._send(
                DeviceFailure(
                    d.command.command_id,
                    ResponseCode.E20,
                    f"head-end {self.head_end.name} cannot encode: {err}",
                )
            )
            return
        self.encoded += 1
        pool = self._pools[pool_index(d.comms_hub, len(self._pools))]
        pool.tell(
            Transmit(
                frame,
                d.command.command_id,
                d.command.device_id,
                d.comms_hub,
                d.head_end,
                d.priority,
            )
        )

    def _decode(self, message: UplinkFrame) -> None:
        try:
            uplink = self.head_end.decode_uplink(message.frame)
        except IntegrityError as err:
            self._send(
                IntegrityFailure(
                    message.comms_hub, self.head_end.name, f"integrity check failed: {err}"
                )
            )
            return
        except FrameError as err:
            self._send(
                IntegrityFailure(message.comms_hub, self.head_end.name, f"malformed frame: {err}")
            )
            return
        self.decoded += 1
        self._send(Decoded(uplink))

    def _send(self, obj: object) -> None:
        assert self._push is not None
        self._push.post(obj)

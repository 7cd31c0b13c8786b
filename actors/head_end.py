"""Head-end actors: one per head-end type, the front door's entrance to the comms hub pools
and the hub's side of the devices' frames.

Decides: which comms hub pool actor hosts a comms hub (a stable hash), and sends each command
of its head-end type there (the comms hub's line, ``simfield.line``, encodes it); decodes the
frames the lines hand back with ``simfield.line.decode``, the same function the simulator's
lines call, so a frame that fails its integrity check is reported with the comms hub id and
never passed on. Decoding here spreads the head-end cost over more threads than the pools.
Must never: share its uplink socket with another thread (it creates it in its own thread).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import pykka

from actors.messages import Decoded, Encode, IntegrityFailure, Offer, UplinkFrame
from actors.uplinks import Uplinks, UplinkSender
from hub.headends.base import HeadEnd
from simfield.line import Deliver, decode


def pool_index(comms_hub: str, pools: int) -> int:
    """Which comms hub pool actor hosts a comms hub (stable across runs)."""
    return zlib.crc32(comms_hub.encode()) % pools


class HeadEndActor(pykka.ThreadingActor):
    """Routes the commands of one head-end type and decodes its devices' frames."""

    def __init__(self, head_end: HeadEnd, pools: Sequence[Any], uplinks: Uplinks) -> None:
        super().__init__()
        self.head_end = head_end
        self._pools = list(pools)
        self._uplinks = uplinks
        self._push: UplinkSender | None = None

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
            d = message.dispatch
            self._pools[pool_index(d.comms_hub, len(self._pools))].tell(Offer(d))
        elif isinstance(message, UplinkFrame):
            assert self._push is not None
            result = decode(self.head_end, message.comms_hub, message.frame)
            if isinstance(result, Deliver):
                self._push.post(Decoded(result.uplink))
            else:
                self._push.post(IntegrityFailure(result.comms_hub, result.head_end, result.reason))
        return None

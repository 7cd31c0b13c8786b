"""Head-end actors: one per head-end type, the front door's entrance to the comms hub pools.

Decides: which comms hub pool actor hosts a comms hub (a stable hash), and sends each command
of its head-end type there. The translation itself (encode, and decode of the devices' frames
with its integrity check) runs in the comms hub's line (``simfield.line``) on the pool's
thread, so a device round trip crosses two thread hand-offs fewer than when the head-end
actor translated in both directions.
Must never: translate or decide anything for a command (the line does), or block.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import pykka

from actors.messages import Encode, Offer
from hub.headends.base import HeadEnd


def pool_index(comms_hub: str, pools: int) -> int:
    """Which comms hub pool actor hosts a comms hub (stable across runs)."""
    return zlib.crc32(comms_hub.encode()) % pools


class HeadEndActor(pykka.ThreadingActor):
    """Sends the commands of one head-end type on to their comms hubs' pools."""

    def __init__(self, head_end: HeadEnd, pools: Sequence[Any]) -> None:
        super().__init__()
        self.head_end = head_end
        self._pools = list(pools)

    def set_pools(self, pools: Sequence[Any]) -> None:
        """Wire the comms hub pools (they are started after the head-ends)."""
        self._pools = list(pools)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Encode):
            d = message.dispatch
            self._pools[pool_index(d.comms_hub, len(self._pools))].tell(Offer(d))
        return None

"""Comms hub pool actors: many logical comms hubs hosted on one pykka actor each.

Decides: nothing about the carrying itself; each comms hub's ``simfield.line.Line`` (the same
one the simulator drives) decides the order, the WAN outcome, the device's answer and every
failure. The pool only waits: WAN delays and future-dated wake-ups become timers that tell
the pool when they are over, the devices' frames go to the head-end actors for decoding
(``simfield.line.decode``), and failures go to the front door.
Must never: block its thread waiting for the WAN (delays are timers), or make a decision the
line makes.

pykka gives each actor an OS thread, and thousands of threads collapse under the GIL, so a
few pool actors host every comms hub: the actor semantics per comms hub (one mailbox order,
one command in flight, or ``WanProfile.line_channels``) are kept by each comms hub's line.
The WAN's standing corruption (``WanProfile.corrupt_share``, ``dcc serve --wan-corrupt``)
is the line's too: corrupted uplinks reach the head-end actors, whose check refuses them.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from actors.messages import Decoded, DeviceFailure, IntegrityFailure, Offer, UplinkFrame
from actors.timers import TimerService
from actors.uplinks import Uplinks, UplinkSender
from hub.headends.base import HeadEnd
from hub.reference.standard import DeviceAlert
from simfield.line import (
    MAX_QUEUE_PER_HUB,
    Action,
    Decode,
    Deliver,
    DeviceHost,
    Fail,
    Integrity,
    Line,
    Lost,
    Wait,
    WakeAt,
)
from simfield.wan import WanProfile

__all__ = ["MAX_QUEUE_PER_HUB", "CommsHubPoolActor", "DeviceHost", "Inject", "SetOnline"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Arrived:
    comms_hub: str
    token: int


@dataclass(frozen=True, slots=True)
class _Wake:
    comms_hub: str


@dataclass(frozen=True, slots=True)
class SetOnline:
    """Take a comms hub off the WAN (False) or bring it back (True)."""

    comms_hub: str
    """The comms hub."""
    online: bool
    """Whether it is on the WAN."""


@dataclass(frozen=True, slots=True)
class Inject:
    """Apply an event to the devices behind a comms hub (outage, voltage, tamper, ...)."""

    comms_hub: str
    """The comms hub whose devices the event hits."""
    action: Callable[[Any, float], list[DeviceAlert]]
    """Called with the device host and now; returns alerts raised."""


class CommsHubPoolActor(pykka.ThreadingActor):
    """Hosts many comms hubs' lines and performs what they ask: waits and hand-offs."""

    def __init__(
        self,
        host_for: Callable[[str], DeviceHost],
        codecs: Mapping[str, HeadEnd],
        head_ends: Mapping[str, Any],
        uplinks: Uplinks,
        timers: TimerService,
        wan: WanProfile,
        seed: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._host_for = host_for
        self._codecs = codecs
        self._head_ends = head_ends
        self._uplinks = uplinks
        self._timers = timers
        self._wan = wan
        self._rng = random.Random(seed)
        self._clock = clock
        self._lines: dict[str, Line] = {}
        self._push: UplinkSender | None = None

    def on_start(self) -> None:
        self._push = self._uplinks.sender()

    def on_stop(self) -> None:
        if self._push is not None:
            self._push.close()

    def _line(self, comms_hub: str) -> Line:
        line = self._lines.get(comms_hub)
        if line is None:
            line = self._lines[comms_hub] = Line(
                comms_hub,
                self._host_for(comms_hub),
                self._codecs,
                self._wan,
                self._rng,
                decode_uplinks=False,  # the head-end actors decode
            )
        return line

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Offer):
            d = message.dispatch
            self._perform(self._line(d.comms_hub).offer(d, self._clock()))
        elif isinstance(message, _Arrived):
            line = self._lines[message.comms_hub]
            self._perform(line.arrived(message.token, self._clock()))
        elif isinstance(message, _Wake):
            self._perform(self._line(message.comms_hub).wake(self._clock()))
        elif isinstance(message, SetOnline):
            self._perform(self._line(message.comms_hub).set_online(message.online))
        elif isinstance(message, Inject):
            line = self._line(message.comms_hub)
            self._perform(line.inject(message.action, self._clock()))
        return None

    def _perform(self, actions: list[Action]) -> None:
        assert self._push is not None
        push = self._push.post
        todo = deque(actions)
        while todo:
            a = todo.popleft()
            if isinstance(a, Decode):
                self._head_ends[a.head_end].tell(UplinkFrame(a.frame, a.comms_hub))
            elif isinstance(a, Wait):
                if a.delay_s <= 0.0:  # no WAN delay: no timer, carry on at once
                    todo.extend(self._lines[a.comms_hub].arrived(a.token, self._clock()))
                else:
                    tell = functools.partial(self.actor_ref.tell, _Arrived(a.comms_hub, a.token))
                    self._timers.call_later(a.delay_s, tell)
            elif isinstance(a, Fail):
                push(DeviceFailure(a.command_id, a.code, a.reason))
            elif isinstance(a, Deliver):
                push(Decoded(a.uplink))
            elif isinstance(a, Integrity):
                push(IntegrityFailure(a.comms_hub, a.head_end, a.reason))
            elif isinstance(a, WakeAt):
                tell = functools.partial(self.actor_ref.tell, _Wake(a.comms_hub))
                self._timers.call_later(max(0.0, a.at - self._clock()), tell)
            elif isinstance(a, Lost):
                log.warning(
                    "alert from the devices behind this comms hub lost: %s: %s",
                    a.head_end,
                    a.reason,
                    extra={"device": a.comms_hub},
                )
            # Carried: the live hub keeps no WAN byte counts

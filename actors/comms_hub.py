"""Comms hub pool actors: many logical comms hubs hosted on one pykka actor each.

Decides: the order commands reach the devices behind each comms hub (one command at a time
per comms hub, highest priority first, then first come), and carries each over the WAN model
(delay, loss with retries, comms hub offline) to the simulated devices, whose frames go back
to the head-end for decoding.
Must never: block its thread waiting for the WAN (delays are timers), or let one comms hub's
queue grow without bound (the engine refuses with H8 before that; the pool enforces a cap too).

pykka gives each actor an OS thread, and thousands of threads collapse under the GIL, so a
few pool actors host every comms hub: the actor semantics per comms hub (one mailbox order,
one command in flight) are kept by the per-hub queue below.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import pykka

from actors.messages import DeviceFailure, Transmit, UplinkFrame
from actors.timers import TimerService
from actors.uplinks import Uplinks, UplinkSender
from hub.headends.base import FrameError, HeadEnd
from hub.reference.codes import ResponseCode
from hub.reference.standard import DeviceAlert, DeviceCommand, DeviceResponse
from simfield.site import NoAnswerError
from simfield.wan import Outcome, Transit, WanProfile, transit

log = logging.getLogger(__name__)

MAX_QUEUE_PER_HUB = 256
"""Commands held per comms hub; the engine's own cap is lower, so this is a safety net."""


class DeviceHost(Protocol):
    """The devices behind one comms hub (a simulated premises)."""

    def execute(self, cmd: DeviceCommand, now: float) -> tuple[DeviceResponse, list[DeviceAlert]]:
        """Run one command; return the response and any alerts it raised."""
        ...

    def advance(self, now: float) -> list[DeviceAlert]:
        """Let time pass; return alerts raised meanwhile."""
        ...

    def head_end_of(self, device_id: str) -> str:
        """The head-end type of a device at this premises (alerts use its format)."""
        ...


@dataclass(slots=True)
class _Hub:
    host: DeviceHost
    queue: list[tuple[int, int, Transmit]] = field(default_factory=list)
    busy: bool = False
    online: bool = True


@dataclass(frozen=True, slots=True)
class _Arrived:
    comms_hub: str
    transmit: Transmit
    transit: Transit


@dataclass(frozen=True, slots=True)
class _Wake:
    comms_hub: str


@dataclass(frozen=True, slots=True)
class SetOnline:
    """Take a comms hub off the WAN (False) or bring it back (True)."""

    comms_hub: str
    online: bool


@dataclass(frozen=True, slots=True)
class Inject:
    """Apply an event to the devices behind a comms hub (outage, voltage, tamper, ...)."""

    comms_hub: str
    action: Callable[[Any, float], list[DeviceAlert]]
    """Called with the device host and now; returns alerts raised."""


class CommsHubPoolActor(pykka.ThreadingActor):
    """Hosts many comms hubs, each with one command in flight."""

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
        self._hubs: dict[str, _Hub] = {}
        self._order = itertools.count()
        self._push: UplinkSender | None = None
        self.executed = 0

    def on_start(self) -> None:
        self._push = self._uplinks.sender()

    def on_stop(self) -> None:
        if self._push is not None:
            self._push.close()

    def _hub(self, comms_hub: str) -> _Hub:
        hub = self._hubs.get(comms_hub)
        if hub is None:
            hub = self._hubs[comms_hub] = _Hub(self._host_for(comms_hub))
        return hub

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Transmit):
            self._enqueue(message)
        elif isinstance(message, _Arrived):
            self._arrived(message)
        elif isinstance(message, _Wake):
            self._wake(message.comms_hub)
        elif isinstance(message, SetOnline):
            self._hub(message.comms_hub).online = message.online
        elif isinstance(message, Inject):
            hub = self._hub(message.comms_hub)
            self._uplink_alerts(message.comms_hub, message.action(hub.host, self._clock()), hub)
        return None

    def _enqueue(self, t: Transmit) -> None:
        hub = self._hub(t.comms_hub)
        if len(hub.queue) >= MAX_QUEUE_PER_HUB:
            self._send(
                DeviceFailure(t.command_id, ResponseCode.E20, f"comms hub {t.comms_hub} queue full")
            )
            return
        heapq.heappush(hub.queue, (t.priority, next(self._order), t))
        if not hub.busy:
            self._start_next(t.comms_hub, hub)

    def _start_next(self, comms_hub: str, hub: _Hub) -> None:
        while hub.queue and not hub.busy:
            _, _, t = heapq.heappop(hub.queue)
            trip = transit(self._wan, self._rng, reachable=hub.online)
            hub.busy = True
            if trip.delay_s <= 0.0:
                self._arrived(_Arrived(comms_hub, t, trip))
            else:
                self._timers.call_later(
                    trip.delay_s,
                    functools.partial(self.actor_ref.tell, _Arrived(comms_hub, t, trip)),
                )

    def _arrived(self, a: _Arrived) -> None:
        hub = self._hubs[a.comms_hub]
        t = a.transmit
        try:
            if a.transit.outcome is Outcome.UNREACHABLE:
                self._send(
                    DeviceFailure(
                        t.command_id,
                        ResponseCode.E20,
                        f"comms hub {a.comms_hub} unreachable on the WAN",
                    )
                )
            elif a.transit.outcome is Outcome.NO_RESPONSE:
                self._send(
                    DeviceFailure(
                        t.command_id,
                        ResponseCode.E21,
                        f"no response after {a.transit.attempts} attempts",
                    )
                )
            else:
                self._execute(a.comms_hub, hub, t)
        finally:
            hub.busy = False
            self._start_next(a.comms_hub, hub)

    def _execute(self, comms_hub: str, hub: _Hub, t: Transmit) -> None:
        codec = self._codecs[t.head_end]
        now = self._clock()
        try:
            cmd = codec.decode_command(t.frame)  # the device's side of the head-end format
        except FrameError as err:
            self._send(
                DeviceFailure(
                    t.command_id, ResponseCode.E21, f"device could not read the command: {err}"
                )
            )
            return
        try:
            alerts = hub.host.advance(now)
            response, raised = hub.host.execute(cmd, now)
        except NoAnswerError as err:
            self._send(DeviceFailure(t.command_id, ResponseCode.E21, f"no response: {err}"))
            return
        except Exception as err:  # a fault in one simulated device must not stop the pool
            log.exception("simulated device failed on command %s", t.command_id)
            self._send(DeviceFailure(t.command_id, ResponseCode.E21, f"device fault: {err}"))
            return
        self.executed += 1
        head_end = self._head_ends[t.head_end]
        head_end.tell(UplinkFrame(codec.encode_uplink(response), comms_hub, t.head_end))
        self._uplink_alerts(comms_hub, alerts + raised, hub)
        if cmd.execute_at is not None and cmd.execute_at > now:
            ref = self.actor_ref
            self._timers.call_later(
                cmd.execute_at - now + 0.001, lambda: ref.tell(_Wake(comms_hub))
            )

    def _wake(self, comms_hub: str) -> None:
        hub = self._hub(comms_hub)
        self._uplink_alerts(comms_hub, hub.host.advance(self._clock()), hub)

    def _uplink_alerts(self, comms_hub: str, alerts: list[DeviceAlert], hub: _Hub) -> None:
        for alert in alerts:
            name = hub.host.head_end_of(alert.device_id)
            frame = self._codecs[name].encode_uplink(alert)
            self._head_ends[name].tell(UplinkFrame(frame, comms_hub, name))

    def _send(self, obj: object) -> None:
        assert self._push is not None
        self._push.post(obj)

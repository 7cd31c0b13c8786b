"""The simulated-time driver: SimPy runs the same hub engine as the live hub, with simulated
devices behind simulated comms hubs and a simulated WAN.

Decides: how the engine's effects play out in simulated time: frames to users are delivered at
once (users acknowledge after a configurable delay); commands are carried by each comms hub's
``simfield.line.Line``, the same line the live pools drive (queue, one command at a time, head-end
formats, the WAN model of the site's region, the simulated devices, every failure), and this
driver only waits in simulated time and counts commands and WAN bytes per cell; the engine ticks
on a fixed simulated interval. Every answer, response and alert is logged as a
``Decision`` so runs can be compared with each other and with the live hub.
Must never: make a hub decision (the engine does), read the wall clock, or persist anything:
the store is the engine's own memory, so a run is reproducible from its seed.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import simpy

from hub import wire
from hub.engine.core import Dispatch, Effects, EngineConfig, HubEngine
from hub.headends.base import HeadEnd
from hub.policies.access import AccessContext
from hub.policies.sla import SlaRecord
from hub.reference.catalogue import CATALOGUE
from hub.reference.parties import User
from hub.reference.standard import DeviceAlert
from hub.registers.inventory import Inventory
from hub.registers.records import PaymentMode
from hub.registers.registration import RegistrationData
from simfield.line import Action, Carried, Deliver, Fail, Integrity, Line, Lost, Wait, WakeAt
from simfield.site import FieldBuilder, SiteHost
from simfield.wan import WanProfile


@dataclass(frozen=True, slots=True)
class Decision:
    """One thing the hub told a user, as seen by the user."""

    at: float
    """Simulated time it was sent."""
    kind: str
    """``answer`` (I99 or a refusal), ``response``, ``device_alert`` or ``hub_alert``."""
    user_id: str
    request_id: str | None
    code: str
    """The response code, or the alert code."""
    service: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How a simulation runs."""

    start: float
    """Simulated start time, epoch seconds UTC."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """The hub engine's configuration (the same type the live hub uses)."""
    wan: Mapping[str, WanProfile] = field(default_factory=dict)
    """WAN profile per region (North, Central, South); missing regions get the default."""
    seed: int = 1
    """Seed of the devices and the WAN model."""
    tick_s: float = 1.0
    """How often the engine's timers are looked at, simulated seconds."""
    ack_delay_s: float = 0.0
    """How long a user takes to acknowledge a delivery."""


@dataclass(slots=True)
class _Hub:
    line: Line
    cell: str


class Simulation:
    """A hub, its field and its users in simulated time."""

    def __init__(
        self,
        users: Mapping[str, User],
        registration: RegistrationData,
        inventory: Inventory,
        payment_modes: dict[str, PaymentMode],
        head_ends: Mapping[str, HeadEnd],
        config: SimConfig,
    ) -> None:
        self.config = config
        self.env = simpy.Environment(initial_time=config.start)
        access = AccessContext(dict(users), CATALOGUE, registration, inventory)
        self.engine = HubEngine(access, config.engine)
        self._inventory = inventory
        self._field = FieldBuilder(
            inventory, registration, payment_modes, config.seed, config.start
        )
        self._codecs = head_ends
        self._rng = random.Random(config.seed)
        self._hubs: dict[str, _Hub] = {}
        self._site_of = {s.comms_hub: s for s in inventory.sites.values()}
        self._seen_deliveries: set[tuple[str, int]] = set()
        self.log: list[Decision] = []
        """Everything users were told, in order."""
        self.counters: dict[str, int] = {
            "commands": 0,
            "uplinks": 0,
            "frames_to_users": 0,
            "expired": 0,
            "lost_alerts": 0,
        }
        self.sla: list[SlaRecord] = []
        """Every response's timing, for SLA reports."""
        self.cell_bytes: dict[tuple[str, int], int] = {}
        """(cell, interval index) -> command bytes carried, for WAN utilisation."""
        self.interval_s = 900.0
        self.env.process(self._ticker())

    # ---- driving -------------------------------------------------------------------------------

    def run(self, until: float) -> None:
        """Run the simulation until simulated time ``until``."""
        self.env.run(until=until)

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Do ``action`` at simulated time ``when``."""

        def proc() -> Generator[simpy.Event, Any, None]:
            yield self.env.timeout(max(0.0, when - self.env.now))
            action()

        self.env.process(proc())

    def hello(self, user_id: str) -> None:
        """The user connects and says Hello (held deliveries are pushed)."""
        self.frame(user_id, wire.encode(wire.Hello()))

    def frame(self, user_id: str, frame: bytes) -> None:
        """A frame arrives from an authenticated user now."""
        self._apply(self.engine.on_frame(user_id, frame, self.env.now))

    def request(self, user_id: str, req: wire.ServiceRequest) -> None:
        """A service request arrives from a user now."""
        self.frame(user_id, wire.encode(req))

    def inject(
        self, comms_hub: str, action: Callable[[SiteHost, float], list[DeviceAlert]]
    ) -> None:
        """Apply an event (outage, voltage excursion, tamper) to a site's devices now."""
        self._perform(self._hub(comms_hub).line.inject(action, self.env.now))

    def set_online(self, comms_hub: str, online: bool) -> None:
        """Take a comms hub off the WAN, or bring it back."""
        self._perform(self._hub(comms_hub).line.set_online(online))

    # ---- the engine's effects ---------------------------------------------------------------------

    def _apply(self, effects: Effects) -> None:
        self.sla += effects.sla
        self.counters["expired"] += effects.expired
        for send in effects.send:
            self._deliver(send.user_id, send.payload)
        for d in effects.dispatch:
            self._carry(d)

    def _deliver(self, user_id: str, payload: bytes) -> None:
        self.counters["frames_to_users"] += 1
        msg = wire.decode_from_hub(payload)
        now = self.env.now
        if isinstance(msg, wire.Acknowledgement | wire.Refusal):
            self.log.append(Decision(now, "answer", user_id, msg.request_id, msg.code.value))
            return
        if isinstance(msg, wire.Welcome):
            return
        key = (user_id, msg.delivery_id)
        if key not in self._seen_deliveries:  # a user drops redeliveries, as the SDK does
            self._seen_deliveries.add(key)
            if isinstance(msg, wire.ServiceResponse):
                self.log.append(
                    Decision(
                        now,
                        "response",
                        user_id,
                        msg.request_id,
                        msg.code.value,
                        msg.service,
                        msg.device_id,
                    )
                )
            elif isinstance(msg, wire.DeviceAlertNotice):
                self.log.append(
                    Decision(
                        now, "device_alert", user_id, None, msg.alert_code, None, msg.device_id
                    )
                )
            else:
                self.log.append(Decision(now, "hub_alert", user_id, None, msg.alert_code))
        ack = wire.encode(wire.DeliveryAck(delivery_ids=(msg.delivery_id,)))
        if self.config.ack_delay_s <= 0:
            self._apply(self.engine.on_frame(user_id, ack, now))
        else:
            self.at(now + self.config.ack_delay_s, lambda: self.frame(user_id, ack))

    def _hub(self, comms_hub: str) -> _Hub:
        hub = self._hubs.get(comms_hub)
        if hub is None:
            site = self._site_of[comms_hub]
            profile = self.config.wan.get(site.region, WanProfile())
            line = Line(comms_hub, self._field(comms_hub), self._codecs, profile, self._rng)
            hub = self._hubs[comms_hub] = _Hub(line, site.cell)
        return hub

    def _carry(self, d: Dispatch) -> None:
        """One command offered to its comms hub's line (the same line the live hub drives)."""
        self._perform(self._hub(d.comms_hub).line.offer(d, self.env.now))

    def _perform(self, actions: list[Action]) -> None:
        """Do what a line asks: wait in simulated time, count, and hand answers to the engine."""
        now = self.env.now
        for a in actions:
            if isinstance(a, Deliver):
                self.counters["uplinks"] += 1
                if isinstance(a.uplink, DeviceAlert):
                    self._apply(self.engine.on_device_alert(a.uplink, now))
                else:
                    self._apply(self.engine.on_device_response(a.uplink, now))
            elif isinstance(a, Wait):
                self.env.timeout(a.delay_s).callbacks.append(
                    functools.partial(self._arrived, a.comms_hub, a.token)
                )
            elif isinstance(a, Carried):
                self.counters["commands"] += 1
                slot = (
                    self._hubs[a.comms_hub].cell,
                    int((now - self.config.start) // self.interval_s),
                )
                self.cell_bytes[slot] = self.cell_bytes.get(slot, 0) + a.frame_bytes
            elif isinstance(a, Fail):
                self._apply(self.engine.on_device_failure(a.command_id, a.code, a.reason, now))
            elif isinstance(a, Integrity):
                self.counters["uplinks"] += 1
                self._apply(
                    self.engine.on_integrity_failure(a.comms_hub, a.head_end, a.reason, now)
                )
            elif isinstance(a, WakeAt):
                self.env.timeout(max(0.0, a.at - now)).callbacks.append(
                    functools.partial(self._wake, a.comms_hub)
                )
            elif isinstance(a, Lost):
                self.counters["uplinks"] += 1
                self.counters["lost_alerts"] += 1

    def _arrived(self, comms_hub: str, token: int, _: simpy.Event) -> None:
        self._perform(self._hubs[comms_hub].line.arrived(token, self.env.now))

    def _wake(self, comms_hub: str, _: simpy.Event) -> None:
        self._perform(self._hubs[comms_hub].line.wake(self.env.now))

    def _ticker(self) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.env.timeout(self.config.tick_s)
            self._apply(self.engine.tick(self.env.now))

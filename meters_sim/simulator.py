"""The simulated-time driver: SimPy runs the same hub engine as the live hub, with simulated
devices behind simulated comms hubs and a simulated WAN.

Decides: how the engine's effects play out in simulated time: users connect and say Hello as
they do live; answers go back to the connection the frame came from, pushed deliveries to the
user's latest connection that said Hello (falling back to earlier ones, held for the next Hello
when none is left) by the same routing policy as the live front door; frames reach a
connection at once; a user's default connection takes them one after another at its
recipient profile's push rate and acknowledges each after its acknowledgement delay (the
simulation's ``ack_delay_s`` by default), says Hello with the profile's in-flight window, and
closes when the user goes offline (its deliveries are then held by the engine's outbox until
the next Hello); other connections keep what they get in an inbox until asked; each comms
hub's WAN model draws from its own random stream (``meters_sim.streams``, named by the comms
hub), so what happens at one site does not move the draws of another; commands are carried by each comms
hub's ``simfield.line.Line``, the same line the live pools drive (queue, one command at a time,
head-end formats, the WAN model of the site's region, the simulated devices, every failure),
each cell a ``simfield.wan.CellLink`` where its region's profile gives the cell a capacity
(its channels and service-time law: the queue theory checks), the WAN integrity events of
``SimConfig.integrity`` corrupting the frames of their cells' comms hubs for their period
(``Line.set_corruption``), and this driver only waits in simulated time and measures: commands, WAN bytes per cell and
interval both ways (command frames down, response and alert frames up), the time each comms
hub's line is busy, the outbox's true peak, and each response's timing with the request and
device it answers (``Answered``); the engine ticks when it says something is due
(``HubEngine.next_due``), woken sooner by a step that makes something due sooner. Every answer, response and alert is logged as a
``Decision`` so runs can be compared with each other and with the live hub.
Must never: make a hub decision (the engine does), read the wall clock, or persist anything:
the store is the engine's own memory, so a run is reproducible from its seed.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
import sys
from collections import Counter, deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import simpy

from hub import wire
from hub.engine import DeliveryKind, Dispatch, Effects, EngineConfig, HubEngine
from hub.flows.inventory_operator import OperatorCommand
from hub.headends.base import HeadEnd
from hub.policies.access import AccessContext
from hub.policies.connections import DeliveryRoutes
from hub.policies.sla import SlaRecord
from hub.reference.catalogue import CATALOGUE
from hub.reference.parties import User
from hub.reference.standard import DeviceAlert
from hub.registers.changes import ChangeBatch
from hub.registers.inventory import Inventory
from hub.registers.records import PaymentMode
from hub.registers.registration import RegistrationData
from meters_sim.scenario import IntegrityEvent
from meters_sim.streams import Streams
from simfield.devices import PublicKey
from simfield.line import Action, Carried, Deliver, Fail, Integrity, Line, Lost, Wait, WakeAt
from simfield.site import FieldBuilder, SiteHost
from simfield.wan import CellLink, WanProfile


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
    raised_at: float | None = None
    """When the device (or the hub) raised it (alerts only)."""
    held_at: float | None = None
    """When the hub first held it in the outbox for this user (responses and alerts)."""


@dataclass(frozen=True, slots=True)
class Answered:
    """One response's SLA timing, with what it answered."""

    sla: SlaRecord
    """The engine's timing of the response (service, user, clock start, response, target)."""
    request_id: str | None
    """The request it answers (a schedule's firing: ``S<n>:<index>``)."""
    device_id: str | None
    """The device the request was for (None for services the hub answers itself)."""


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
    ack_delay_s: float = 0.0
    """How long a user takes to acknowledge a delivery."""
    integrity: tuple[IntegrityEvent, ...] = ()
    """WAN integrity events (``[[load.integrity]]``): the frames of the affected cells'
    comms hubs are corrupted with the event's share for its period."""


FromHub = (
    wire.Acknowledgement
    | wire.Refusal
    | wire.Welcome
    | wire.ServiceResponse
    | wire.DeviceAlertNotice
    | wire.HubAlert
)
"""Anything the hub sends to a user."""


@dataclass(eq=False, slots=True)
class Connection:
    """One simulated connection of a user to the hub (compared by identity, like a socket)."""

    user_id: str
    """The user it authenticated as."""
    auto_ack: bool
    """Acknowledge every delivery on arrival (after the simulation's ``ack_delay_s``) and
    keep nothing; otherwise keep everything in ``inbox`` and acknowledge only when told."""
    number: int
    """A serial number, for reading logs."""
    inbox: deque[FromHub] = field(default_factory=deque)
    """What reached this connection and was not yet taken (connections without auto-ack):
    answers, Welcomes and first deliveries; redeliveries are acknowledged again and dropped,
    as the SDK does."""
    open: bool = True
    """False once disconnected: nothing reaches it or comes from it any more."""
    duplicates: int = 0
    """Redeliveries of deliveries already in the inbox, dropped (connections without
    auto-ack)."""
    seen: set[int] = field(default_factory=set)
    """Delivery ids already put in the inbox."""
    ack_delay_s: float | None = None
    """How long this connection takes to acknowledge a delivery (auto-ack only; None: the
    simulation's ``ack_delay_s``)."""
    push_rate_per_s: float | None = None
    """Deliveries a second this connection takes, one after another (None: any number at
    once); a delivery waits for the one before it to be taken before its acknowledgement
    delay starts."""
    free_at: float = -math.inf
    """When the connection has taken every delivery that reached it so far (with a push
    rate)."""


@dataclass(frozen=True, slots=True)
class RecipientProfile:
    """How a user takes its deliveries: what ``[[recipients]]`` says of it."""

    ack_delay_s: float = 0.0
    """How long it takes to acknowledge a delivery pushed to it."""
    push_rate_per_s: float | None = None
    """Deliveries a second its connection takes (None: not limited)."""
    max_in_flight: int | None = None
    """The in-flight window its Hello asks for (None: the hub's default)."""


def _shared(text: str | None) -> str | None:
    """One copy of a string the log repeats (service codes, device ids, alert codes): each
    decoded frame brings its own, and a day's log holds millions of them."""
    return None if text is None else sys.intern(text)


@dataclass(frozen=True, slots=True)
class _Do:
    """A timeout's callback that does an action (smaller than a closure or a process)."""

    action: Callable[[], None]

    def __call__(self, _: simpy.Event) -> None:
        self.action()


@dataclass(slots=True)
class _Hub:
    line: Line
    cell: str
    region: str
    busy_s: float = 0.0  # time its line spent carrying commands


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
        anchors: Mapping[str, PublicKey] | None = None,
    ) -> None:
        """``anchors``: the parties' public signing keys the simulated devices hold
        (``simfield.site.load_trust_anchors``); without them no critical command verifies."""
        self.config = config
        self.env = simpy.Environment(initial_time=config.start)
        access = AccessContext(dict(users), CATALOGUE, registration, inventory)
        self.engine = HubEngine(access, config.engine)
        self._inventory = inventory
        self._field = FieldBuilder(
            inventory,
            registration,
            payment_modes,
            config.seed,
            config.start,
            anchors=anchors or {},
        )
        self._codecs = head_ends
        self._streams = Streams(config.seed)
        self._hubs: dict[str, _Hub] = {}
        self._site_of = {s.comms_hub: s for s in inventory.sites.values()}
        self._cells: dict[str, CellLink] = {}
        self._corrupting: dict[str, list[float]] = {}  # cell -> shares of its events under way
        self._seen_deliveries: set[int] = set()  # delivered and still held (ids are hub-wide)
        self._payloads: dict[int, bytes] = {}  # held deliveries' payloads: the in-memory store
        self._held_at: dict[int, float] = {}  # held deliveries: when the hub first held them
        self._routes = DeliveryRoutes[Connection]()
        self._default: dict[str, Connection] = {}
        self._profiles: dict[str, RecipientProfile] = {}
        self._numbers = itertools.count(1)
        self.log: list[Decision] = []
        """Everything users were told, in order."""
        self.counters: dict[str, int] = {
            "commands": 0,
            "uplinks": 0,
            "frames_to_users": 0,
            "expired": 0,
            "lost_alerts": 0,
            "redeliveries": 0,
        }
        self.sla: list[SlaRecord] = []
        """Every response's timing, for SLA reports."""
        self.answered: list[Answered] = []
        """Every response's timing with the request and device it answers (``sla`` in the
        same order)."""
        self.cell_bytes: dict[tuple[str, int], int] = {}
        """(cell, interval index) -> bytes carried both ways (command frames to the devices,
        response and alert frames from them), for WAN utilisation."""
        self.hub_busy_s: dict[tuple[str, int], float] = {}
        """(region, interval index) -> seconds the region's comms hub lines spent carrying
        commands started in that interval, for comms-hub utilisation."""
        self.alerts_raised: dict[tuple[str, str], int] = {}
        """(region, alert code) -> device alerts that reached the hub from the region's comms
        hubs."""
        self.offered: Counter[tuple[str | None, str, str]] = Counter()
        """(device id, request id up to its first ``-``, service) -> service requests users
        sent (whatever the hub answered)."""
        self._device_of: dict[tuple[str, str], str] = {}  # (user, request id) -> device, unanswered
        self.uncovered: set[str] = set()
        """Comms hubs the WAN does not reach for the whole run (set by the workload)."""
        self.outbox_peak = 0
        """Most deliveries the outbox held at any moment, the workload's set-up aside
        (``outbox_depth``)."""
        self.drains: dict[str, list[float | None]] = {}
        """Recipient entry (``user u-supa``) -> after each of its returns, seconds its backlog
        took to drain (``watch_drain``; None: not within the run)."""
        self._setup_prefixes: tuple[str, ...] = ()  # request ids of the workload's set-up
        self._setup_held: set[int] = set()  # held responses to set-up requests
        self.interval_s = 900.0
        self.corrupted_cells: dict[int, list[str]] = {}
        """Integrity event (its index in ``SimConfig.integrity``) -> the cells it corrupts."""
        for index, event in enumerate(config.integrity):
            self._plan_integrity(index, event)
        self._planned = -math.inf  # when the ticker wakes next (-inf: running or not started)
        self._nudge = self.env.event()  # wakes the ticker before its plan
        self.env.process(self._ticker())

    # ---- driving -------------------------------------------------------------------------------

    def run(self, until: float) -> None:
        """Run the simulation until simulated time ``until``."""
        self.env.run(until=until)

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Do ``action`` at simulated time ``when`` (one timeout event, not a process: a day's
        workload schedules millions of these up front)."""
        env = self.env
        delay = max(0.0, when - env.now)
        # a process would first run its initialisation (an urgent event now) and only then
        # schedule its timeout; the same order of timeouts is kept by scheduling it now
        env.timeout(delay).callbacks.append(_Do(action))

    def setup_requests(self, prefix: str) -> None:
        """Requests whose id starts with ``prefix`` set the run up (the 5.1 schedules the
        workload creates at the start stand for schedules a hub running for years already
        holds): their responses are delivered like any other but not counted in the outbox's
        depth (``outbox_depth``, ``outbox_peak``), which is the run's own traffic."""
        if prefix and prefix not in self._setup_prefixes:
            self._setup_prefixes += (prefix,)

    def outbox_depth(self) -> int:
        """Deliveries the outbox holds now, the responses to set-up requests aside."""
        return len(self.engine.outbox) - len(self._setup_held)

    def watch_drain(
        self,
        label: str,
        index: int,
        users: tuple[str, ...],
        away: float | None,
        back: float,
        every_s: float,
    ) -> None:
        """Measure the ``index``-th drain of a recipient entry's backlog: from ``back`` (its
        users say Hello again), checked every ``every_s``, the seconds until the deliveries
        held for ``users`` (queued or pushed and unacknowledged) are no more than they were as
        they went away at ``away`` (None: away from the start, so none), into ``drains``."""
        slots = self.drains.setdefault(label, [])
        slots.extend([None] * (index + 1 - len(slots)))
        outbox = self.engine.outbox
        level = [0]

        def held() -> int:
            return sum(outbox.depth(u) for u in users)

        def went_away() -> None:
            level[0] = held()

        def check() -> None:
            now = self.env.now
            if held() <= level[0]:
                slots[index] = round(now - back, 6)
            else:
                self.at(now + every_s, check)

        if away is not None:
            self.at(away, went_away)
        self.at(back, check)

    def connect(self, user_id: str, auto_ack: bool = False) -> Connection:
        """Open a new connection for the user (it says nothing until told to; a Hello from it
        makes it the user's first choice for pushed deliveries)."""
        return Connection(user_id, auto_ack, next(self._numbers))

    def disconnect(self, conn: Connection) -> None:
        """Close a connection: pushes fall back to the user's earlier connections, or are held
        for the next Hello when none is left."""
        conn.open = False
        self._routes.gone(conn.user_id, conn)
        if self._default.get(conn.user_id) is conn:
            del self._default[conn.user_id]

    def hello(self, user_id: str, conn: Connection | None = None) -> None:
        """The user says Hello on ``conn`` (default: its auto-acknowledging default
        connection, opened on first use), asking for its profile's in-flight window; held
        deliveries are pushed."""
        profile = self._profiles.get(user_id)
        window = profile.max_in_flight if profile is not None else None
        self.frame(user_id, wire.encode(wire.Hello(max_in_flight=window)), conn)

    def set_recipient(self, user_id: str, profile: RecipientProfile) -> None:
        """How the user's default connections take deliveries from now on (acknowledgement
        delay, push rate, the in-flight window of its next Hello)."""
        self._profiles[user_id] = profile
        conn = self._default.get(user_id)
        if conn is not None:
            conn.ack_delay_s = profile.ack_delay_s
            conn.push_rate_per_s = profile.push_rate_per_s

    def go_offline(self, user_id: str) -> None:
        """The user's gateway goes away: its default connection closes (what was pushed to it
        and not acknowledged is pushed again after its next Hello); it still sends requests,
        whose answers reach a new connection that takes no pushes until it says Hello."""
        conn = self._default.get(user_id)
        if conn is not None:
            self.disconnect(conn)

    def frame(self, user_id: str, frame: bytes, conn: Connection | None = None) -> None:
        """A frame arrives now from an authenticated user on ``conn`` (default: the user's
        default connection); its answer goes back there. Nothing comes from a closed one."""
        source = conn if conn is not None else self._default_connection(user_id)
        if not source.open:
            return
        effects = self.engine.on_frame(user_id, frame, self.env.now)
        if effects.hello:
            self._routes.hello(user_id, source)
        self._apply(effects, source)

    def request(
        self, user_id: str, req: wire.ServiceRequest, conn: Connection | None = None
    ) -> None:
        """A service request arrives from a user now (on ``conn``, as for ``frame``)."""
        self.offered[req.device_id, req.request_id.split("-", 1)[0], req.service] += 1
        if req.device_id is not None:
            self._device_of[user_id, req.request_id] = req.device_id
        self.frame(user_id, wire.encode(req), conn)

    def ack(self, conn: Connection, delivery_ids: list[int]) -> None:
        """The connection acknowledges deliveries now."""
        for i in range(0, len(delivery_ids), wire.MAX_ACK_IDS):
            ids = tuple(delivery_ids[i : i + wire.MAX_ACK_IDS])
            self.frame(conn.user_id, wire.encode(wire.DeliveryAck(delivery_ids=ids)), conn)

    def _default_connection(self, user_id: str) -> Connection:
        conn = self._default.get(user_id)
        if conn is None:
            conn = self._default[user_id] = self.connect(user_id, auto_ack=True)
            profile = self._profiles.get(user_id)
            if profile is not None:
                conn.ack_delay_s = profile.ack_delay_s
                conn.push_rate_per_s = profile.push_rate_per_s
        return conn

    def inject(
        self, comms_hub: str, action: Callable[[SiteHost, float], list[DeviceAlert]]
    ) -> None:
        """Apply an event (outage, voltage excursion, tamper) to a site's devices now."""
        self._perform(comms_hub, self._hub(comms_hub).line.inject(action, self.env.now))

    def set_online(self, comms_hub: str, online: bool) -> None:
        """Take a comms hub off the WAN, or bring it back."""
        self._perform(comms_hub, self._hub(comms_hub).line.set_online(online))

    def register_changes(self, batch: ChangeBatch) -> None:
        """A register reports changes now (churn, new meter points), as the live feed does."""
        self._apply(self.engine.on_register_changes(batch, self.env.now))

    def operator_command(self, command: OperatorCommand) -> None:
        """An operator's or the field's inventory command arrives now (an early-smart meter
        starting to communicate via the hub), as through the live operator inbox."""
        self._apply(self.engine.on_operator_command(command, self.env.now))

    # ---- the engine's effects ---------------------------------------------------------------------

    def _apply(self, effects: Effects, source: Connection | None = None) -> None:
        """Play out one engine step; ``source`` is the connection whose frame it answers."""
        if effects.sla:
            self._answered(effects)
        self.counters["expired"] += effects.expired
        setup = self._setup_prefixes
        for made in effects.add_deliveries:
            self._payloads[made.delivery_id] = made.payload
            self._held_at[made.delivery_id] = self.env.now
            if setup and made.request_id is not None and made.request_id.startswith(setup):
                self._setup_held.add(made.delivery_id)
        if effects.add_deliveries:
            self.outbox_peak = max(self.outbox_peak, self.outbox_depth())
        if effects.faults:  # contained engine failures (answered, audited by the engine)
            self.counters["faults"] = self.counters.get("faults", 0) + len(effects.faults)
        for send in effects.send:
            if send.push:
                payload = send.payload
                if not payload and send.delivery_id is not None:
                    payload = self._payloads[send.delivery_id]
                if not self._routes.push(send.user_id, partial(self._deliver, payload=payload)):
                    # nobody to take it: deliveries stay held and are pushed again after Hello
                    self.engine.on_unreachable(send.user_id)
            elif source is not None:
                self._deliver(source, send.payload)  # an answer lost here is resubmitted
        for delivery_id in effects.remove_deliveries:
            self._payloads.pop(delivery_id, None)
            self._seen_deliveries.discard(delivery_id)  # never pushed again once removed
            self._held_at.pop(delivery_id, None)
            self._setup_held.discard(delivery_id)
        for d in effects.dispatch:
            self._carry(d)
        self._replan()

    def _answered(self, effects: Effects) -> None:
        """Keep each response's timing with its request and device: the engine makes one
        response delivery per SLA record, in the same order; the device is the one the
        request named, or the firing schedule's."""
        self.sla += effects.sla
        made = [d for d in effects.add_deliveries if d.kind is DeliveryKind.RESPONSE]
        if len(made) != len(effects.sla):  # not one to one: keep the timings alone
            self.answered += [Answered(r, None, None) for r in effects.sla]
            return
        for record, d in zip(effects.sla, made, strict=True):
            rid = d.request_id
            device = self._device_of.pop((record.user_id, rid or ""), None)
            if device is None and rid is not None and ":" in rid:  # a schedule's firing
                schedule = self.engine.scheduler.get(rid.split(":", 1)[0])
                device = schedule.spec.device_id if schedule is not None else None
            self.answered.append(Answered(record, rid, device))

    def _deliver(self, conn: Connection, payload: bytes) -> bool:
        """One frame reaches a connection (False: it is closed, the frame is lost)."""
        if not conn.open:
            return False
        self.counters["frames_to_users"] += 1
        msg = wire.decode_from_hub(payload)
        now = self.env.now
        user_id = conn.user_id
        if isinstance(msg, wire.Acknowledgement | wire.Refusal):
            self.log.append(Decision(now, "answer", user_id, msg.request_id, msg.code.value))
            if not conn.auto_ack:
                conn.inbox.append(msg)
            return True
        if isinstance(msg, wire.Welcome):
            if not conn.auto_ack:
                conn.inbox.append(msg)
            return True
        key = msg.delivery_id  # delivery ids are hub-wide
        if key in self._seen_deliveries:
            self.counters["redeliveries"] += 1
        else:  # a user drops redeliveries, as the SDK does
            self._seen_deliveries.add(key)
            if isinstance(msg, wire.ServiceResponse):
                self.log.append(
                    Decision(
                        now,
                        "response",
                        user_id,
                        msg.request_id,
                        msg.code.value,
                        _shared(msg.service),
                        _shared(msg.device_id),
                    )
                )
            elif isinstance(msg, wire.DeviceAlertNotice):
                self.log.append(
                    Decision(
                        now,
                        "device_alert",
                        user_id,
                        None,
                        sys.intern(msg.alert_code),
                        None,
                        _shared(msg.device_id),
                        msg.raised_at,
                        self._held_at.get(msg.delivery_id),
                    )
                )
            else:
                self.log.append(
                    Decision(
                        now,
                        "hub_alert",
                        user_id,
                        None,
                        sys.intern(msg.alert_code),
                        None,
                        None,
                        msg.raised_at,
                        self._held_at.get(msg.delivery_id),
                    )
                )
        if not conn.auto_ack:
            if msg.delivery_id in conn.seen:  # a redelivery: confirmed again and dropped
                conn.duplicates += 1
                self.ack(conn, [msg.delivery_id])
            else:
                conn.seen.add(msg.delivery_id)
                conn.inbox.append(msg)
            return True
        ack = wire.encode(wire.DeliveryAck(delivery_ids=(msg.delivery_id,)))
        delay = conn.ack_delay_s if conn.ack_delay_s is not None else self.config.ack_delay_s
        taken = now
        if conn.push_rate_per_s is not None:  # taken one after another at the push rate
            taken = max(now, conn.free_at) + 1.0 / conn.push_rate_per_s
            conn.free_at = taken
        if taken + delay <= now:
            self._apply(self.engine.on_frame(user_id, ack, now), conn)
        else:
            self.at(taken + delay, lambda: self.frame(user_id, ack, conn))
        return True

    def _hub(self, comms_hub: str) -> _Hub:
        hub = self._hubs.get(comms_hub)
        if hub is None:
            if comms_hub not in self._site_of:  # a premises fitted during the run
                self._site_of = {s.comms_hub: s for s in self._inventory.sites.values()}
            site = self._site_of[comms_hub]
            profile = self.config.wan.get(site.region, WanProfile())
            cell = self._cells.get(site.cell)
            if cell is None and profile.cell_bytes_per_s > 0:
                # each cell draws its service times from its own stream
                cell_rng = random.Random(
                    int(self._streams.generator("cell", site.cell).integers(2**63))
                )
                cell = self._cells[site.cell] = CellLink(profile, cell_rng)
            rng = random.Random(int(self._streams.generator("wan", comms_hub).integers(2**63)))
            line = Line(comms_hub, self._field(comms_hub), self._codecs, profile, rng, cell=cell)
            if self._corrupting.get(site.cell):
                line.set_corruption(self._corrupt_share(site.cell))
            hub = self._hubs[comms_hub] = _Hub(line, site.cell, site.region)
        return hub

    def _plan_integrity(self, index: int, event: IntegrityEvent) -> None:
        """Draw the cells an integrity event reaches (from its own stream, so other draws
        stay as they are) and corrupt their comms hubs' frames for its period."""
        name = event.region.value.capitalize()
        cells = sorted({s.cell for s in self._site_of.values() if s.region == name})
        if event.cell is not None:
            hit = [c for c in cells if c == event.cell]
        else:
            draw = random.Random(
                f"{self.config.seed}:integrity:{event.start.isoformat()}:{event.region.value}"
            )
            hit = [c for c in cells if draw.random() < event.cells]
        self.corrupted_cells[index] = hit
        begin = event.start.timestamp()
        self.at(begin, partial(self._corrupt, hit, event.share, True))
        self.at(begin + event.duration_s, partial(self._corrupt, hit, event.share, False))

    def _corrupt(self, cells: list[str], share: float, begins: bool) -> None:
        """An integrity event begins (or ends) on ``cells``: their comms hubs' lines corrupt
        the combined share of every event under way there."""
        for cell in cells:
            shares = self._corrupting.setdefault(cell, [])
            if begins:
                shares.append(share)
            else:
                shares.remove(share)
        affected = set(cells)
        for comms_hub, hub in self._hubs.items():
            if hub.cell in affected:
                self._perform(comms_hub, hub.line.set_corruption(self._corrupt_share(hub.cell)))

    def _corrupt_share(self, cell: str) -> float:
        """The share of frames corrupted on a cell now (independent events combined)."""
        clean = 1.0
        for share in self._corrupting.get(cell, ()):
            clean *= 1.0 - share
        return 1.0 - clean

    def hub_busy(self) -> dict[str, float]:
        """Seconds each comms hub's line spent carrying commands so far (used hubs only)."""
        return {k: h.busy_s for k, h in self._hubs.items() if h.busy_s > 0}

    def _carry(self, d: Dispatch) -> None:
        """One command offered to its comms hub's line (the same line the live hub drives)."""
        self._perform(d.comms_hub, self._hub(d.comms_hub).line.offer(d, self.env.now))

    def _perform(self, comms_hub: str, actions: list[Action]) -> None:
        """Do what a comms hub's line asks: wait in simulated time, count, and hand answers
        to the engine."""
        now = self.env.now
        for a in actions:
            if isinstance(a, Deliver):
                self.counters["uplinks"] += 1
                hub = self._hubs[comms_hub]
                if a.frame_bytes:
                    slot = (hub.cell, int((now - self.config.start) // self.interval_s))
                    self.cell_bytes[slot] = self.cell_bytes.get(slot, 0) + a.frame_bytes
                if isinstance(a.uplink, DeviceAlert):
                    raised = (hub.region, a.uplink.alert_code)
                    self.alerts_raised[raised] = self.alerts_raised.get(raised, 0) + 1
                    self._apply(self.engine.on_device_alert(a.uplink, now))
                else:
                    self._apply(self.engine.on_device_response(a.uplink, now))
            elif isinstance(a, Wait):
                hub = self._hubs[a.comms_hub]
                hub.busy_s += a.delay_s
                busy = (hub.region, int((now - self.config.start) // self.interval_s))
                self.hub_busy_s[busy] = self.hub_busy_s.get(busy, 0.0) + a.delay_s
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
                self.counters["integrity_failures"] = self.counters.get("integrity_failures", 0) + 1
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
        self._perform(comms_hub, self._hubs[comms_hub].line.arrived(token, self.env.now))

    def _wake(self, comms_hub: str, _: simpy.Event) -> None:
        self._perform(comms_hub, self._hubs[comms_hub].line.wake(self.env.now))

    def _replan(self) -> None:
        """After a step: wake the ticker now if the step made something due before its plan."""
        due = self.engine.next_due(self.env.now)
        if due is not None and due < self._planned:
            self._planned = due
            if not self._nudge.triggered:
                self._nudge.succeed()

    def _ticker(self) -> Generator[simpy.Event, Any, None]:
        """Tick the engine whenever it says something is due, and sleep until the next
        instant it names (or until a step makes something due sooner)."""
        env, engine = self.env, self.engine
        while True:
            now = env.now
            due = engine.next_due(now)
            if due is not None and due <= now:
                self._planned = -math.inf  # its own effects need no wake-up
                self._apply(engine.tick(now))
                due = engine.next_due(now)
                if due is not None and due <= now:  # sweep slices left: after this instant's
                    yield env.timeout(0)  # other events, tick again
                    continue
            self._planned = math.inf if due is None else due
            self._nudge = env.event()
            yield self._nudge if due is None else env.timeout(due - now) | self._nudge

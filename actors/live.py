"""The live hub's composition root: builds and wires every part, starts, watches and stops them.

Decides: what is checked before anything starts (settings, fleet, keys), the order parts start
(ZAP, store and restore, head-ends, comms hub pools, front door) and stop (front door first, so
nothing new arrives; then head-ends and pools, timers, ZAP, the store), which parts the hub
cannot run without (``failure`` names the first one found dead), and where the data lives.
A start that fails stops what it started and raises one ``StartError`` saying what failed and
what to do.
Must never: hold hub decisions (those are the engine's), or carry on quietly without a part:
the caller (``dcc serve``) ends the process when ``failure`` reports one.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import pykka
import zmq
from pykka.messages import ProxySetAttr

from actors.comms_hub import CommsHubPoolActor, DeviceHost, Inject, SetOnline
from actors.field_journal import FieldJournal, FieldJournalError, field_file
from actors.front_door import DEFAULT_ANSWER_WITHIN_S, BindError, FrontDoor
from actors.head_end import HeadEndActor, pool_index
from actors.operator_inbox import (
    CommandError,
    Fitting,
    OperatorInbox,
    fittings_dir,
    read_fittings,
    write_fitting,
)
from actors.register_feed import (
    ANSWER_WAIT_S,
    DEFAULT_POLL_S,
    INBOX_DIR,
    RegisterBatch,
    RegisterFeed,
)
from actors.security import UserKeyAuthenticator, user_public_keys
from actors.store import StoreOpenError, Synchronous, open_store, store_file
from actors.timers import TimerService
from actors.uplinks import Uplinks
from hub.engine import Effects, EngineConfig, HubEngine
from hub.flows.inventory_operator import OperatorCommand
from hub.policies.access import AccessContext
from hub.ports.store import Store
from hub.reference.catalogue import CATALOGUE
from hub.registers.changes import ChangeBatch
from hub.registers.election import Election
from hub.registers.inventory import Device, Inventory, Site
from sdk.keys import KeyPair, hub_keypair, keys_dir
from simfield.early_smart import METERS as EARLY_SMART
from simfield.early_smart import contacts
from simfield.fleet_dir import Fleet, load_fleet
from simfield.headend_plugins import load_head_ends
from simfield.site import FieldBuilder, SiteHost, load_trust_anchors
from simfield.wan import WanProfile

log = logging.getLogger(__name__)

_instances = itertools.count()
_T = TypeVar("_T")

MAX_POOLS = 256
"""Most comms hub pool actors (each is an OS thread; a few host every comms hub)."""
STOP_TIMEOUT_S = 10.0
"""How long one part may take to stop before the hub stops the next one anyway."""
_ENDPOINT = re.compile(
    r"tcp://(?P<host>\*|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})"
)


class StartFault(Enum):
    """Whose fault a failed start is."""

    BAD_INPUT = "bad input"
    """The settings, fleet, keys or store given are wrong: starting again will not help."""
    RUNTIME = "runtime"
    """The machine refused (the port is in use, ...): it may work once that is cleared."""


class StartError(Exception):
    """The hub could not start. ``str()`` is one line: what failed and what to do."""

    def __init__(self, message: str, fault: StartFault) -> None:
        super().__init__(message)
        self.fault = fault
        """Bad input, or a runtime failure."""


class Part(Enum):
    """The parts the hub cannot run without."""

    FRONT_DOOR = "front-door"
    """The thread that owns the ROUTER socket, the engine and the store."""
    TIMERS = "timers"
    """The timer thread (WAN delays, wake-ups)."""
    POOL = "pool"
    """A comms hub pool actor."""
    HEAD_END = "head-end"
    """A head-end actor."""
    AUTHENTICATOR = "authenticator"
    """The ZAP thread that checks every CURVE handshake."""
    REGISTER_FEED = "register-feed"
    """The thread that offers the register change files of the fleet's inbox."""


@dataclass(frozen=True, slots=True)
class DeadPart:
    """A part found dead while the hub was meant to be running."""

    part: Part
    """Which kind of part."""
    name: str
    """Which one (an actor's name, a thread's name)."""
    reason: str
    """Why, as far as is known (the exception that ended it)."""

    def __str__(self) -> str:
        return f"{self.part.value} {self.name} died: {self.reason}"


class InjectedFaultError(RuntimeError):
    """Raised inside a part by ``LiveHub.inject_fault`` (tests of supervision only)."""


def check_settings(settings: HubSettings) -> None:
    """Refuse settings the hub cannot run with, before anything starts (``StartError``,
    bad input): an endpoint that is not ``tcp://host:port``, out-of-range counts and times."""
    problems = []
    m = _ENDPOINT.fullmatch(settings.endpoint)
    if m is None or int(m["port"]) > 65535:
        problems.append(
            f"endpoint {settings.endpoint!r} is not tcp://HOST:PORT (e.g. tcp://127.0.0.1:5570)"
        )
    if not 1 <= settings.pools <= MAX_POOLS:
        problems.append(f"pools must be 1 to {MAX_POOLS}, not {settings.pools}")
    if not (math.isfinite(settings.tick_s) and settings.tick_s > 0):
        problems.append(f"tick must be a positive number of seconds, not {settings.tick_s}")
    if not (math.isfinite(settings.answer_within_s) and 0 < settings.answer_within_s <= 3600):
        problems.append(
            f"answer-within must be above 0 and at most 3600 seconds, not {settings.answer_within_s}"
        )
    e = settings.engine
    if not (math.isfinite(e.hold_s) and e.hold_s > 0):
        problems.append(f"hold must be a positive number of seconds, not {e.hold_s}")
    if not (math.isfinite(settings.early_smart_per_day) and settings.early_smart_per_day >= 0):
        problems.append(
            f"early-smart contacts a day must be 0 or more, not {settings.early_smart_per_day}"
        )
    if not (math.isfinite(e.schedule_window_s) and e.schedule_window_s >= 0):
        problems.append(f"schedule window must be 0 seconds or more, not {e.schedule_window_s}")
    if problems:
        raise StartError("; ".join(problems), StartFault.BAD_INPUT)


def _load_fleet(directory: Path) -> Fleet:
    try:
        return load_fleet(directory)
    except Exception as err:
        raise StartError(
            f"cannot read the fleet in {directory}: {err}; "
            "pass --fleet a directory written by 'dcc fleet generate' (format: docs/fleet-files.md)",
            StartFault.BAD_INPUT,
        ) from err


def _load_keys(fleet_dir: Path) -> tuple[KeyPair, dict[bytes, str]]:
    try:
        hub_keys = hub_keypair(fleet_dir)
        users = user_public_keys(fleet_dir)
    except Exception as err:
        raise StartError(
            f"cannot read the hub's keys: {err}; create them with 'dcc keys --fleet {fleet_dir}'",
            StartFault.BAD_INPUT,
        ) from err
    if not users:
        raise StartError(
            f"no user keys under {keys_dir(fleet_dir) / 'users'}, so nobody could connect; "
            f"create them with 'dcc keys --fleet {fleet_dir}'",
            StartFault.BAD_INPUT,
        )
    return hub_keys, users


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Where the hub's data lives and how it runs."""

    fleet_dir: Path
    """A directory written by ``dcc fleet generate`` (with keys from ``dcc keys``)."""
    data_dir: Path
    """Where the store lives (``hub.sqlite``), and the simulated field's memory
    (``field.sqlite``)."""
    endpoint: str = "tcp://127.0.0.1:5570"
    """Where service users connect (port 0: a random free port)."""
    pools: int = 4
    """Comms hub pool actors."""
    wan: WanProfile = field(default_factory=WanProfile)
    """The WAN model between the hub and the comms hubs."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Engine tunables."""
    seed: int = 1
    """Seed of the simulated devices and the WAN model."""
    tick_s: float = 1.0
    """Longest wait between checks of the housekeeping the engine does not time (refused
    handshakes); the engine itself is ticked when it says something is due."""
    synchronous: Synchronous = Synchronous.FULL
    """How durable each commit of the store is (FULL: an acknowledged request survives a
    power cut; NORMAL: it survives the process being killed; see docs/design.md)."""
    remember_field: bool = True
    """The simulated devices keep their state across restarts in ``field.sqlite`` (False:
    every start rebuilds them as the fleet says)."""
    field_synchronous: Synchronous = Synchronous.NORMAL
    """How durable each write of the field's memory is (NORMAL: it survives the hub being
    killed, as the restart tests need, at a small fraction of FULL's cost per state-changing
    command; FULL: a power cut too; see docs/design.md)."""
    answer_within_s: float = DEFAULT_ANSWER_WITHIN_S
    """Requests the front door has not decided this long after reading them are answered H8
    (busy, retry after) instead of late, so every frame is answered within about this bound."""
    feed_poll_s: float = DEFAULT_POLL_S
    """How often the register change inbox (``<fleet>/inbox/``) is looked at."""
    early_smart_per_day: float = 0.0
    """Early-smart meters of the field (``early_smart_candidates.csv``) that first call the hub
    a day, at seeded instants from the start (``simfield.early_smart.contacts``), until all
    have (0: none call on their own; ``early_smart_contact`` still plays one)."""

    @property
    def store_path(self) -> Path:
        """The SQLite file."""
        return store_file(self.data_dir)


class LiveHub:
    """A running hub: start it, point clients at ``endpoint``, watch ``failure``, stop it."""

    def __init__(
        self,
        settings: HubSettings,
        fleet: Fleet | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Check the settings and read the fleet and keys (``StartError`` if they will not do);
        nothing is started yet."""
        check_settings(settings)
        self.settings = settings
        self.fleet = fleet or _load_fleet(settings.fleet_dir)
        self._keys, self._user_keys = _load_keys(settings.fleet_dir)
        self._clock = clock
        self._stopping = False
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._auth: UserKeyAuthenticator | None = None
        self._store: Store | None = None
        self._field: FieldJournal | None = None
        self._timers: TimerService | None = None
        self._head_ends: dict[str, Any] = {}
        self._pools: list[Any] = []
        self.front_door: FrontDoor | None = None
        self._engine: HubEngine | None = None
        self._access: AccessContext | None = None
        self._uplinks: Uplinks | None = None
        self._offers = itertools.count(1)  # numbers of the feed's offers (``ChangeBatch.offer``)
        self.feed: RegisterFeed | None = None
        """The register change feed, once started."""
        self.field = Inventory.build(
            self.fleet.inventory.products.values(),
            [*self.fleet.inventory.sites.values(), *self.fleet.early_smart_sites.values()],
            [*self.fleet.inventory.devices.values(), *self.fleet.early_smart_candidates],
        )
        """What is physically in the field: the fleet's inventory, the early-smart meters
        still talking to their suppliers, and what ``install`` and the fittings of the
        operator inbox fit (the simulated devices are built from it; the hub's own inventory
        is the engine's)."""
        try:
            fitted = read_fittings(fittings_dir(settings.data_dir), self.fleet.inventory.products)
        except CommandError as err:
            raise StartError(
                f"{err}; restore it from a backup, or move it aside to rebuild the field "
                "without that premises",
                StartFault.BAD_INPUT,
            ) from err
        for fitting in fitted:
            self.install(fitting.site, list(fitting.devices))
        self._fit_lock = threading.Lock()
        self.early_smart_calls = 0
        """Early-smart contacts the field has made since the start (``early_smart_contact``,
        the seeded schedule's included)."""
        self.inbox = OperatorInbox(
            settings.fleet_dir,
            {d.device_id: d for d in self.fleet.early_smart_candidates},
            self.fleet.early_smart_sites,
            products=self.fleet.inventory.products,
            fit=self.fit,
        )
        """The operator's inventory commands (``dcc inventory`` drops them into the fleet's
        ``operator/inbox/``), the field engineer's fittings, and the field's early-smart
        contacts."""

    @property
    def endpoint(self) -> str:
        """The bound endpoint, with its real port."""
        assert self.front_door is not None, "hub not started"
        return self.front_door.endpoint

    @property
    def engine(self) -> HubEngine | None:
        """The engine the front door drives (a new one, rebuilt from the store, after each
        storage outage); None before the start."""
        if self.front_door is not None:
            return self.front_door.engine
        return self._engine

    def in_store_thread(self, fn: Callable[[Store], _T]) -> _T:
        """Run ``fn`` on the store, in the front door's thread that owns it, and return what
        it returns (tests and maintenance; e.g. the full-store test hook
        ``SqliteStore.max_pages``)."""
        assert self.front_door is not None, "hub not started"
        assert self._store is not None, "hub not started"
        store = self._store
        return self.front_door.call_in_loop(lambda: fn(store))

    @property
    def handshakes_refused(self) -> int:
        """CURVE handshakes refused by ZAP (unknown or inactive keys)."""
        return self._auth.refused if self._auth else 0

    @property
    def public_key(self) -> str:
        """The hub's CURVE public key in Z85 (what service users set as the server key)."""
        return self._keys.public.decode("ascii")

    def start(self) -> LiveHub:
        """Start everything; returns self once clients can connect. If a part cannot start,
        the parts already started are stopped and ``StartError`` says what failed."""
        try:
            self._start()
        except StartError:
            self.stop()
            raise
        except Exception as err:
            failed = self._start_error(err)
            log.debug("start failed", exc_info=True)
            self.stop()
            raise failed from err
        return self

    def _start_error(self, err: Exception) -> StartError:
        if isinstance(err, StoreOpenError | FieldJournalError):  # names the file, what to do
            return StartError(str(err), StartFault.BAD_INPUT)
        if isinstance(err, BindError):
            where = self.settings.endpoint
            if err.errno == errno.EADDRINUSE:
                return StartError(
                    f"cannot listen on {where}: the address is already in use; stop the process "
                    "using that port or choose another --endpoint",
                    StartFault.RUNTIME,
                )
            return StartError(
                f"cannot listen on {where}: {err.strerror}; give --endpoint an address of this "
                "machine, as tcp://HOST:PORT",
                StartFault.BAD_INPUT,
            )
        if self._auth is not None and self._timers is None:  # between ZAP and the timers
            return StartError(
                f"cannot open the store {self.settings.store_path}: {err}; check the data "
                "directory (--data), or if the file is damaged restore a backup or move it aside",
                StartFault.BAD_INPUT,
            )
        return StartError(f"cannot start the hub: {type(err).__name__}: {err}", StartFault.RUNTIME)

    def _start(self) -> None:
        s = self.settings
        fleet = self.fleet
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._ctx = ctx
        auth = UserKeyAuthenticator(ctx, s.fleet_dir, fleet.users)
        auth.start()
        self._auth = auth
        store = open_store(s.data_dir, synchronous=s.synchronous)
        self._store = store
        engine, startup = self._restored_engine(self._clock())
        self._engine = engine
        self._timers = TimerService()
        uplink = Uplinks(ctx, f"inproc://dcc-uplink-{next(_instances)}")
        self._uplinks = uplink
        codecs = load_head_ends()
        self._head_ends = {
            name: HeadEndActor.start(codec, [], uplink) for name, codec in codecs.items()
        }

        if s.remember_field:
            self._field = FieldJournal(field_file(s.data_dir), s.field_synchronous, self._clock)
        host_for: Callable[[str], DeviceHost] = FieldBuilder(
            self.field,
            fleet.registration,
            fleet.payment_modes,
            s.seed,
            self._clock(),
            anchors=load_trust_anchors(s.fleet_dir),
            memory=self._field,
        )
        self._pools = [
            CommsHubPoolActor.start(
                host_for,
                codecs,
                self._head_ends,
                uplink,
                self._timers,
                s.wan,
                s.seed * 1000 + i,
                self._clock,
            )
            for i in range(s.pools)
        ]
        for ref in self._head_ends.values():
            ref.proxy().set_pools(self._pools).get()
        self.front_door = FrontDoor(
            ctx,
            engine,
            store,
            s.endpoint,
            self._keys,
            self._head_ends,
            uplink,
            self._clock,
            s.tick_s,
            initial=startup,
            gate=auth,
            rebuild=self._restored_engine,
            answer_within_s=s.answer_within_s,
            inbox=self.inbox,
        )
        self.front_door.start()
        self.feed = RegisterFeed(s.fleet_dir / INBOX_DIR, self._offer_changes, s.feed_poll_s)
        self.feed.start()
        self._plan_early_smart(self._clock())

    def _plan_early_smart(self, now: float) -> None:
        """Put the field's early-smart contacts on the timers (``early_smart_per_day``): the
        same seeded instants, counted from this start, at every start; a meter adopted or
        refused before is a command carried out already, so calling again does nothing."""
        rate = self.settings.early_smart_per_day
        meters = [d for d in self.fleet.early_smart_candidates if d.device_type in EARLY_SMART]
        if rate <= 0 or not meters or self._timers is None:
            return
        for contact in contacts(meters, now, len(meters) / rate * 86_400.0, self.settings.seed):
            self._timers.call_later(
                contact.at - now, functools.partial(self.early_smart_contact, contact.device_id)
            )

    def _offer_changes(self, batch: ChangeBatch) -> tuple[int, int, str | None] | None:
        """Hand one change file's batch to the front door (in the feed's thread) and wait for
        the engine's answer, given only once the store has committed it (None: no answer in
        time, or the store is out: the file is offered again later)."""
        assert self._uplinks is not None
        assert self.front_door is not None
        door = self.front_door
        batch = replace(batch, offer=next(self._offers))
        sender = self._uplinks.sender()
        try:
            sender.post(RegisterBatch(batch))
        finally:
            sender.close()

        def answer() -> tuple[int, int, str | None] | None:
            if door.storage_unavailable_since is not None:
                return None
            outcome = door.engine.registers.outcome(batch.source, batch.offer)
            return None if outcome is None else (outcome.applied, outcome.repeated, outcome.refused)

        deadline = time.monotonic() + ANSWER_WAIT_S
        while time.monotonic() < deadline and not self._stopping:
            found = door.call_in_loop(answer)
            if found is not None:
                return found
            time.sleep(0.02)  # the next turns of the front door's loop
        return None

    def _restored_engine(self, now: float) -> tuple[HubEngine, Effects]:
        """A new engine holding what the store holds, as at a start (and after a storage
        outage, in the front door's thread): the engine, and what restoring it decided
        (accepted requests dispatched again)."""
        assert self._store is not None
        s = self.settings
        fleet = self.fleet
        # each engine starts from the fleet's initial inventory and replays the stored changes
        access = AccessContext(
            fleet.users, CATALOGUE, fleet.registration, fleet.inventory.copy(), Election()
        )
        engine = HubEngine(access, replace(s.engine, batch_release=True))
        restored = self._store.load(since=now - s.engine.idempotency_s)
        startup = engine.restore(
            restored.requests,
            restored.deliveries,
            restored.next_seq,
            restored.next_delivery,
            now,
            restored.schedules,
            restored.next_schedule,
            restored.transfers,
            register_changes=restored.register_changes,
            inventory_changes=restored.inventory_changes,
            outcome_unrecorded=restored.outcome_unrecorded,
        )
        return engine, startup

    def stop(self) -> None:
        """Stop every part in order and release the store: the front door (nothing new
        arrives), the head-ends' pending commands, the comms hub pools, the head-ends, the
        timers, ZAP, the store, the ZeroMQ context. Safe on a partly started or failed hub,
        and when called again; each part gets ``STOP_TIMEOUT_S``."""
        if self._stopping and self._ctx is None:
            return
        dead = self.failure()
        self._stopping = True
        if self.feed is not None:
            self.feed.stop()
        if self.front_door is not None:
            self.front_door.stop()
        # commands the front door handed the head-ends reach the pools before the pools stop
        for ref in self._head_ends.values():
            with contextlib.suppress(Exception):
                ref.ask(_Drained(), timeout=STOP_TIMEOUT_S)
        _stop_actors(self._pools)
        _stop_actors(self._head_ends.values())
        if self._timers is not None:
            self._timers.stop()
        if self._auth is not None and self._auth.is_alive():
            self._auth.stop()  # a dead ZAP thread cannot take its TERMINATE: leave it
        if self._store is not None:
            self._store.close()
        if self._field is not None:
            self._field.close()
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            if dead is not None:  # it holds its sockets open: term() would wait for ever
                return
            term = threading.Thread(target=ctx.term, name="dcc-zmq-term", daemon=True)
            term.start()
            term.join(STOP_TIMEOUT_S)
            if term.is_alive():
                log.warning("ZeroMQ context not released: a part left a socket open")

    # ---- supervision --------------------------------------------------------------------

    def failure(self) -> DeadPart | None:
        """The first part found dead, or None while every part runs (and once stopping)."""
        if self._stopping:
            return None
        if self.front_door is not None and not self.front_door.is_alive():
            err = self.front_door.error
            return DeadPart(Part.FRONT_DOOR, "dcc-front-door", _reason(err))
        if self._timers is not None and not self._timers.is_alive():
            return DeadPart(Part.TIMERS, "dcc-timers", _reason(self._timers.error))
        if self._auth is not None and not self._auth.is_alive():
            return DeadPart(Part.AUTHENTICATOR, "zap", "the ZAP thread ended")
        if self.feed is not None and not self.feed.is_alive():
            return DeadPart(Part.REGISTER_FEED, "dcc-register-feed", _reason(self.feed.error))
        for i, ref in enumerate(self._pools):
            if not ref.is_alive():
                return DeadPart(Part.POOL, f"pool-{i}", "the actor stopped (see its traceback)")
        for name, ref in self._head_ends.items():
            if not ref.is_alive():
                return DeadPart(Part.HEAD_END, name, "the actor stopped (see its traceback)")
        return None

    def inject_fault(self, part: Part) -> None:
        """Make one part fail from inside, as a bug would (for tests of supervision only):
        its thread raises ``InjectedFaultError`` and ends; ``failure`` reports it soon after."""
        fault = InjectedFaultError(f"{part.value} fault injected for a test")
        if part is Part.FRONT_DOOR and self.front_door is not None:
            self.front_door.inject_fault(fault)
        elif part is Part.TIMERS and self._timers is not None:
            self._timers.call_later(0.0, functools.partial(_raise, fault))
        elif part in (Part.POOL, Part.HEAD_END):
            ref = self._pools[0] if part is Part.POOL else next(iter(self._head_ends.values()))
            # in the actor's own thread: its next message handler raises
            ref.tell(ProxySetAttr(("on_receive",), functools.partial(_raise, fault)))
            ref.tell(_Drained())
        elif part is Part.AUTHENTICATOR and self._auth is not None:
            self._auth.configure_curve_callback(domain="*", credentials_provider=_Faulty(fault))
            self._handshake()  # the ZAP thread raises on this handshake

    def _handshake(self) -> None:
        assert self._ctx is not None
        public, secret = zmq.curve_keypair()
        sock = self._ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.curve_serverkey = self._keys.public
        try:
            sock.connect(self.endpoint)
            deadline = time.monotonic() + 5.0
            while self._auth is not None and self._auth.is_alive():
                if time.monotonic() > deadline:
                    break
                sock.poll(20)
        finally:
            sock.close()

    def __enter__(self) -> LiveHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- operations on the simulated field --------------------------------------------------

    def _pool_for(self, comms_hub: str) -> Any:
        return self._pools[pool_index(comms_hub, len(self._pools))]

    def set_comms_hub_online(self, comms_hub: str, online: bool) -> None:
        """Take a comms hub off the WAN or bring it back."""
        self._pool_for(comms_hub).tell(SetOnline(comms_hub, online))

    def inject(self, comms_hub: str, action: Callable[[Any, float], list[Any]]) -> None:
        """Apply an event (outage, voltage excursion, tamper) to a premises' devices; the
        site remembers it before its alerts leave."""
        self._pool_for(comms_hub).tell(Inject(comms_hub, functools.partial(_remembered, action)))

    def install(self, site: Site, devices: list[Device]) -> None:
        """Fit a new premises' devices in the field (a new connection): they answer once the
        hub's inventory knows them. Only before the hub first reaches that comms hub; a
        premises the field holds already is left as it is. Not remembered across restarts
        (``fit`` is)."""
        if site.site_id in self.field.sites:
            return
        self.field.add_site(site)
        for device in devices:
            self.field.add_device(device)

    def fit(self, fitting: Fitting) -> None:
        """Fit a new premises' devices in the field and remember it in the data directory
        (written aside, synced and renamed before the field holds it), so that a restarted
        hub, even after a kill, rebuilds the premises; the same premises fitted again is left
        as it is. Called from the front door's thread (the operator inbox's ``fit``)."""
        with self._fit_lock:
            if fitting.site.site_id in self.field.sites:
                return
            write_fitting(fittings_dir(self.settings.data_dir), fitting)
            self.install(fitting.site, list(fitting.devices))

    def early_smart_contact(self, device_id: str) -> None:
        """An early-smart meter of the field starts communicating via the hub: the hub adopts
        it if its model is approved as compliant, else refuses it and alerts its supplier
        (once, however often the meter calls: the command id is the device's)."""
        self.inbox.offer(self.early_smart_command(device_id))
        self.early_smart_calls += 1

    def early_smart_command(self, device_id: str) -> OperatorCommand:
        """The adoption command of the field's first contact from an early-smart meter."""
        return self.inbox.adoption(
            device_id, f"contact-{device_id}", "started communicating via the hub"
        )


@dataclass(frozen=True, slots=True)
class _Drained:
    """Asked of an actor: answered once every message before it was handled (ignored by
    ``on_receive``)."""


class _Faulty:
    """A CURVE key check that raises (``inject_fault`` of the authenticator)."""

    def __init__(self, fault: Exception) -> None:
        self._fault = fault

    def callback(self, domain: str, z85_key: bytes) -> bool:
        """Raise instead of deciding."""
        raise self._fault


def _remembered(
    action: Callable[[Any, float], list[Any]], host: DeviceHost, now: float
) -> list[Any]:
    """Apply an injected event, then write the site's memory (a site without one, or a
    host that is not a simulated site, is left as it is)."""
    alerts = action(host, now)
    if isinstance(host, SiteHost):
        host.persist()
    return alerts


def _raise(fault: Exception, *_: object) -> None:
    raise fault


def _reason(err: BaseException | None) -> str:
    return f"{type(err).__name__}: {err}" if err is not None else "its thread ended"


def _stop_actors(refs: Iterable[Any]) -> None:
    """Ask every actor to stop at once, then wait for each (a dead one is skipped)."""
    futures = []
    for ref in refs:
        with contextlib.suppress(pykka.ActorDeadError):
            futures.append((ref, ref.stop(block=False)))
    for ref, future in futures:
        try:
            future.get(timeout=STOP_TIMEOUT_S)
        except pykka.Timeout:
            log.warning("%s did not stop within %s s", ref, STOP_TIMEOUT_S)
        except pykka.ActorDeadError:
            pass

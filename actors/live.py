"""The live hub's composition root: builds and wires every part, starts and stops them.

Decides: the order parts start (store and restore, ZAP, head-ends, comms hub pools, front door)
and stop (front door first, so nothing new arrives), and where the data lives.
Must never: hold hub decisions; those are the engine's.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pykka
import zmq

from actors.comms_hub import CommsHubPoolActor, DeviceHost, Inject, SetOnline
from actors.front_door import FrontDoor
from actors.head_end import HeadEndActor, pool_index
from actors.security import UserKeyAuthenticator, user_public_keys
from actors.store import SqliteStore
from actors.timers import TimerService
from actors.uplinks import Uplinks
from hub.engine.core import EngineConfig, HubEngine
from hub.policies.access import AccessContext
from hub.reference.catalogue import CATALOGUE
from sdk.keys import hub_keypair
from simfield.fleet_dir import Fleet, load_fleet
from simfield.headend_plugins import load_head_ends
from simfield.site import FieldBuilder
from simfield.wan import WanProfile

_instances = itertools.count()


@dataclass(frozen=True, slots=True)
class HubSettings:
    """Where the hub's data lives and how it runs."""

    fleet_dir: Path
    """A directory written by ``dcc fleet generate`` (with keys from ``dcc keys``)."""
    data_dir: Path
    """Where the store lives (``hub.sqlite``)."""
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
    """How often retries, expiries and timeouts are looked at."""

    @property
    def store_path(self) -> Path:
        """The SQLite file."""
        return self.data_dir / "hub.sqlite"


class LiveHub:
    """A running hub: start it, point clients at ``endpoint``, stop it."""

    def __init__(
        self,
        settings: HubSettings,
        fleet: Fleet | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.fleet = fleet or load_fleet(settings.fleet_dir)
        self._clock = clock
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._auth: UserKeyAuthenticator | None = None
        self._store: SqliteStore | None = None
        self._timers: TimerService | None = None
        self._head_ends: dict[str, Any] = {}
        self._pools: list[Any] = []
        self.front_door: FrontDoor | None = None
        self.engine: HubEngine | None = None

    @property
    def endpoint(self) -> str:
        """The bound endpoint, with its real port."""
        assert self.front_door is not None, "hub not started"
        return self.front_door.endpoint

    @property
    def handshakes_refused(self) -> int:
        """CURVE handshakes refused by ZAP (unknown or inactive keys)."""
        return self._auth.refused if self._auth else 0

    def start(self) -> LiveHub:
        """Start everything; returns self once clients can connect."""
        s = self.settings
        fleet = self.fleet
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._ctx = ctx
        auth = UserKeyAuthenticator(ctx, user_public_keys(s.fleet_dir), fleet.users)
        auth.start()
        self._auth = auth
        store = SqliteStore(s.store_path)
        self._store = store
        access = AccessContext(fleet.users, CATALOGUE, fleet.registration, fleet.inventory)
        engine = HubEngine(access, replace(s.engine, batch_release=True))
        self.engine = engine
        restored = store.load(since=self._clock() - s.engine.idempotency_s)
        startup = engine.restore(
            restored.requests,
            restored.deliveries,
            restored.next_seq,
            restored.next_delivery,
            self._clock(),
            restored.schedules,
            restored.next_schedule,
            restored.transfers,
        )
        self._timers = TimerService()
        uplink = Uplinks(ctx, f"inproc://dcc-uplink-{next(_instances)}")
        codecs = load_head_ends()
        self._head_ends = {
            name: HeadEndActor.start(codec, [], uplink) for name, codec in codecs.items()
        }

        host_for: Callable[[str], DeviceHost] = FieldBuilder(
            fleet.inventory, fleet.registration, fleet.payment_modes, s.seed, self._clock()
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
            hub_keypair(s.fleet_dir),
            self._head_ends,
            uplink,
            self._clock,
            s.tick_s,
            initial=startup,
            refused_keys=auth.drain_refused,
        )
        self.front_door.start()
        return self

    def stop(self) -> None:
        """Stop every part (front door first) and release the store."""
        if self.front_door is not None:
            self.front_door.stop()
        for ref in self._pools + list(self._head_ends.values()):
            with contextlib.suppress(pykka.ActorDeadError):
                ref.stop(timeout=10)
        if self._timers is not None:
            self._timers.stop()
        if self._auth is not None:
            self._auth.stop()
        if self._store is not None:
            self._store.close()
        if self._ctx is not None:
            self._ctx.term()

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
        """Apply an event (outage, voltage excursion, tamper) to a premises' devices."""
        self._pool_for(comms_hub).tell(Inject(comms_hub, action))

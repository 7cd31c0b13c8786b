"""Both hub drivers behind one small interface, so a decision test runs under each and the
two must agree: the live hub (real CURVE sockets on a random loopback port, real pykka actors,
a real SQLite file, the SDK's ``HubClient``) and the simulator (SimPy time, the same engine).

A test speaks to a ``Driver`` (connect a user, read the hub's clock, move it on, wait for a
condition) and to the ``Conn`` it returns (request, next delivery, ack, close). Waiting means
polling the socket in real time live, and running simulated time in the simulator, so the same
``timeout_s`` bounds both. Neither side sleeps to synchronise.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from actors.live import HubSettings, LiveHub
from hub import wire
from hub.engine import EngineConfig
from hub.reference.roles import DeviceType, Role
from hub.registers.inventory import Device, DeviceStatus
from meters_sim.simulator import Connection, SimConfig, Simulation
from sdk.client import Delivered, HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.fleet_dir import Fleet
from simfield.headend_plugins import load_head_ends
from simfield.site import load_trust_anchors

Answer = wire.Acknowledgement | wire.Refusal
POLL_S = 0.02
"""How often the live driver looks at a condition while waiting for it."""


@dataclass(frozen=True, slots=True)
class DriverSettings:
    """The engine settings a test runs with, the same under both drivers."""

    retry_s: float = 1.0
    """How long a pushed delivery waits for its acknowledgement before being pushed again."""
    hold_s: float = 3600.0
    """How long deliveries are held for an absent user."""
    tick_s: float = 0.1
    """The live hub's longest wait between checks of the housekeeping the engine does not time
    (the simulator ticks when the engine says something is due)."""
    schedule_window_s: float = 1.0
    """Schedule firings are spread over this window after their nominal time."""

    def engine(self) -> EngineConfig:
        """The engine configuration both drivers are given."""
        return EngineConfig(
            retry_s=self.retry_s, hold_s=self.hold_s, schedule_window_s=self.schedule_window_s
        )


class Conn(Protocol):
    """One connection of a user to the hub, which said Hello on connecting."""

    user_id: str

    @property
    def duplicates(self) -> int:
        """Redeliveries of deliveries already handed over, acknowledged again and dropped."""
        ...

    @property
    def welcome(self) -> wire.Welcome | None:
        """The hub's last Welcome on this connection."""
        ...

    def request(self, req: wire.ServiceRequest, timeout_s: float = 10.0) -> Answer:
        """Send a request; return its acknowledgement (I99) or refusal."""
        ...

    def next_delivery(self, timeout_s: float) -> Delivered | None:
        """The next response or alert pushed to this connection (redeliveries removed), or
        None when ``timeout_s`` of the hub's time passes first."""
        ...

    def ack(self, delivery_ids: list[int]) -> None:
        """Acknowledge deliveries."""
        ...

    def close(self) -> None:
        """Close the connection (the hub is not told; it finds out when it pushes)."""
        ...


class Driver(Protocol):
    """A running hub of either kind, with the fleet it serves."""

    name: str
    fleet: Fleet

    def connect(self, user_id: str, auto_ack: bool = False) -> Conn:
        """A new connection for the user, once the hub has welcomed it; with ``auto_ack``
        every delivery is acknowledged as it is handed over."""
        ...

    def now(self) -> float:
        """The hub's clock."""
        ...

    def advance(self, seconds: float) -> None:
        """Move the hub's clock forward (live: the clock jumps; simulated: time runs)."""
        ...

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 20.0) -> bool:
        """Let the hub run until ``predicate`` holds (True) or ``timeout_s`` passes (False)."""
        ...

    def close(self) -> None:
        """Close every connection and stop the hub."""
        ...


# ---- live ------------------------------------------------------------------------------------


class MovableClock:
    """Wall-clock time plus an offset a test can move forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


class LiveConn:
    """A ``Conn`` over the SDK's ``HubClient``."""

    def __init__(self, client: HubClient, user_id: str, auto_ack: bool) -> None:
        self.user_id = user_id
        self._client = client
        self._auto_ack = auto_ack
        self._closed = False

    @property
    def duplicates(self) -> int:
        return self._client.duplicates

    @property
    def welcome(self) -> wire.Welcome | None:
        return self._client.welcome

    def request(self, req: wire.ServiceRequest, timeout_s: float = 10.0) -> Answer:
        return self._client.request(
            req.role,
            req.service,
            req.device_id,
            dict(req.params),
            req.execute_at,
            req.signature,
            request_id=req.request_id,
            timeout_s=timeout_s,
        )

    def next_delivery(self, timeout_s: float) -> Delivered | None:
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self._client.receive(max(0.0, deadline - time.monotonic()))
            if msg is None:
                return None
            if isinstance(msg, wire.ServiceResponse | wire.DeviceAlertNotice | wire.HubAlert):
                if self._auto_ack:
                    self._client.ack([msg.delivery_id])
                return msg

    def ack(self, delivery_ids: list[int]) -> None:
        self._client.ack(delivery_ids)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()


class LiveDriver:
    """The live hub on a random loopback port, its store in ``data_dir``."""

    name = "live"

    def __init__(
        self, fleet_dir: Path, fleet: Fleet, data_dir: Path, settings: DriverSettings
    ) -> None:
        self.fleet = fleet
        self._fleet_dir = fleet_dir
        self._clock = MovableClock()
        hub_settings = HubSettings(
            fleet_dir=fleet_dir,
            data_dir=data_dir,
            endpoint="tcp://127.0.0.1:0",
            pools=2,
            tick_s=settings.tick_s,
            engine=settings.engine(),
        )
        self.hub = LiveHub(hub_settings, fleet, clock=self._clock).start()
        self._conns: list[LiveConn] = []

    def connect(self, user_id: str, auto_ack: bool = False) -> Conn:
        client = HubClient(
            self.hub.endpoint,
            hub_keypair(self._fleet_dir).public,
            user_keypair(self._fleet_dir, user_id),
        )
        conn = LiveConn(client, user_id, auto_ack)
        self._conns.append(conn)
        client.connect()
        return conn

    def now(self) -> float:
        return self._clock()

    def advance(self, seconds: float) -> None:
        self._clock.offset += seconds

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL_S)  # polling a condition, not synchronising on a duration
        return True

    def close(self) -> None:
        try:
            for conn in self._conns:
                conn.close()
        finally:
            self.hub.stop()


# ---- simulated -------------------------------------------------------------------------------


class SimConn:
    """A ``Conn`` over one of the simulator's connections."""

    def __init__(self, driver: SimDriver, conn: Connection, auto_ack: bool) -> None:
        self.user_id = conn.user_id
        self._driver = driver
        self._conn = conn
        self._auto_ack = auto_ack
        self._deliveries: deque[Delivered] = deque()
        self._answers: dict[str, Answer] = {}
        self._welcome: wire.Welcome | None = None

    @property
    def duplicates(self) -> int:
        return self._conn.duplicates

    @property
    def welcome(self) -> wire.Welcome | None:
        self._sort()
        return self._welcome

    def _sort(self) -> None:
        inbox = self._conn.inbox
        while inbox:
            msg = inbox.popleft()
            if isinstance(msg, wire.Welcome):
                self._welcome = msg
            elif isinstance(msg, wire.Acknowledgement | wire.Refusal):
                if msg.request_id is not None:
                    self._answers[msg.request_id] = msg
            else:
                self._deliveries.append(msg)

    def request(self, req: wire.ServiceRequest, timeout_s: float = 10.0) -> Answer:
        sim = self._driver.sim
        sim.request(self.user_id, req, self._conn)
        rid = req.request_id

        def answered() -> bool:
            self._sort()
            return rid in self._answers

        if not self._driver.wait_until(answered, timeout_s):
            raise TimeoutError(f"no answer to request {rid}")
        return self._answers.pop(rid)

    def next_delivery(self, timeout_s: float) -> Delivered | None:
        def arrived() -> bool:
            self._sort()
            return bool(self._deliveries)

        if not self._driver.wait_until(arrived, timeout_s):
            return None
        msg = self._deliveries.popleft()
        if self._auto_ack:
            self.ack([msg.delivery_id])
        return msg

    def ack(self, delivery_ids: list[int]) -> None:
        self._driver.sim.ack(self._conn, delivery_ids)

    def close(self) -> None:
        self._driver.sim.disconnect(self._conn)


class SimDriver:
    """The simulator, starting at the wall-clock time it is made (the fleet is as of today);
    its devices hold the public signing keys of ``fleet_dir``, as the live hub's do."""

    name = "sim"

    def __init__(self, fleet: Fleet, settings: DriverSettings, fleet_dir: Path) -> None:
        self.fleet = fleet
        config = SimConfig(start=time.time(), engine=settings.engine())
        self.sim = Simulation(
            fleet.users,
            fleet.registration,
            fleet.inventory,
            fleet.payment_modes,
            load_head_ends(),
            config,
            anchors=load_trust_anchors(fleet_dir),
        )
        self._conns: list[SimConn] = []

    def connect(self, user_id: str, auto_ack: bool = False) -> Conn:
        raw = self.sim.connect(user_id)
        conn = SimConn(self, raw, auto_ack)
        self._conns.append(conn)
        self.sim.hello(user_id, raw)
        if conn.welcome is None:
            raise TimeoutError(f"the hub did not welcome {user_id}")
        return conn

    def now(self) -> float:
        return float(self.sim.env.now)

    def advance(self, seconds: float) -> None:
        self.sim.run(until=self.sim.env.now + seconds)

    def wait_until(self, predicate: Callable[[], bool], timeout_s: float = 20.0) -> bool:
        env = self.sim.env
        deadline = env.now + timeout_s
        while not predicate():
            if env.peek() > deadline:  # nothing more happens before the deadline
                if deadline > env.now:
                    env.run(until=deadline)
                return predicate()
            env.step()
        return True

    def close(self) -> None:
        for conn in self._conns:
            conn.close()


# ---- finding parts to play -------------------------------------------------------------------


def not_opted_in_meter(fleet: Fleet) -> tuple[str, Device]:
    """A (user id, device) pair: an active import supplier user and a commissioned meter at a
    non-domestic meter point that has not opted in to the hub."""
    suppliers = [
        u.user_id for u in fleet.users.values() if Role.IS in u.roles and u.status.value == "active"
    ]
    for device in fleet.inventory.devices.values():
        if (
            device.device_type is not DeviceType.ESME
            or device.status is not DeviceStatus.COMMISSIONED
        ):
            continue
        mp = fleet.registration.meter_point(device.mpxn)
        if mp is not None and not mp.domestic and not mp.served_by_hub and suppliers:
            return suppliers[0], device
    raise LookupError("no meter at a non-domestic meter point outside the hub in the fleet")

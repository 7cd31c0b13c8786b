"""The front door: the ZeroMQ ROUTER service users connect to, driving the hub engine.

Decides: how frames, device uplinks and ticks are batched into engine steps, and the order
of applying a step (persist in one transaction, then send, then dispatch), so nothing is
acknowledged before it is durable.
Must never: make a hub decision itself (the engine does), or let a socket be touched by
another thread (ZeroMQ sockets are single-threaded: this thread owns the ROUTER and the
uplink PULL socket), or die quietly: an exception that ends the loop is logged with its
traceback and kept in ``error``, and ``is_alive`` turns false for the hub's watchdog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import zmq

from actors.messages import Decoded, DeviceFailure, Encode, IntegrityFailure
from actors.security import KeyChangeKind, KeyGate, split_zap_id
from actors.uplinks import Uplinks
from hub import wire
from hub.engine import Effects, HubEngine
from hub.policies.connections import MAX_CONNECTIONS_PER_USER, DeliveryRoutes
from hub.ports.payloads import PayloadCache
from hub.ports.store import Store
from hub.reference.standard import DeviceAlert
from sdk.keys import KeyPair

log = logging.getLogger(__name__)

BATCH = 512
"""Frames taken from one socket per loop turn before applying the step."""
PURGE_EVERY_S = 600.0
"""How often answered requests past the idempotency window are deleted from the store."""
MAX_DELIVERY_CONNECTIONS = MAX_CONNECTIONS_PER_USER
"""Connections per user remembered for pushed deliveries."""
HARD_FRAME_CAP = 2 * wire.MAX_FRAME_BYTES
"""Frames above this are dropped by ZeroMQ itself (the peer is disconnected)."""
RCV_BYTES_PER_CONNECTION = 128 << 20
"""Most bytes ZeroMQ queues from one connection before the front door reads them: the
ROUTER's receive high-water mark times the largest frame it lets through (``MAXMSGSIZE``).
Beyond it libzmq stops reading that connection, so TCP pushes back on the sender."""
RCV_HWM = max(1, RCV_BYTES_PER_CONNECTION // HARD_FRAME_CAP)
"""The ROUTER's receive high-water mark, in frames per connection (64)."""


class BindError(Exception):
    """The front door could not bind its endpoint (in use, not an address of this machine)."""

    def __init__(self, endpoint: str, err: zmq.ZMQError) -> None:
        super().__init__(f"cannot bind {endpoint}: {err.strerror}")
        self.endpoint = endpoint
        """The endpoint asked for."""
        self.errno = err.errno
        """The ZeroMQ / OS error number (``errno.EADDRINUSE``: the port is taken)."""
        self.strerror = err.strerror
        """The error's text."""


class FrontDoor:
    """The thread that owns the ROUTER socket, the store and the engine."""

    def __init__(
        self,
        context: zmq.Context[zmq.Socket[bytes]],
        engine: HubEngine,
        store: Store,
        endpoint: str,
        keys: KeyPair,
        head_ends: Mapping[str, Any],
        uplinks: Uplinks,
        clock: Callable[[], float] = time.time,
        tick_s: float = 1.0,
        initial: Effects | None = None,
        gate: KeyGate | None = None,
    ) -> None:
        self._ctx = context
        self._initial = initial or Effects()
        self._gate = gate
        self.engine = engine
        self._store = store
        self._endpoint = endpoint
        self._keys = keys
        self._head_ends = head_ends
        self._uplinks = uplinks
        self._clock = clock
        self._tick_s = tick_s
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._fault: Exception | None = None
        self.endpoint = ""
        """The bound endpoint (with the real port) once started."""
        self.stats: dict[str, int] = {
            "frames_in": 0,
            "frames_out": 0,
            "unroutable": 0,
            "bad_multipart": 0,
        }
        # ROUTER identities that said Hello, per user; pushes go to the most recent one still
        # connected (a short-lived second connection does not strand a listener)
        self._routes = DeliveryRoutes[bytes](MAX_DELIVERY_CONNECTIONS)
        self.payloads = PayloadCache(store)
        """Payloads of held deliveries recently made or pushed (the rest are in the store)."""
        self._direct: list[tuple[bytes, bytes]] = []  # answers to frames, to their senders
        self._thread = threading.Thread(target=self._run, name="dcc-front-door", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and wait until the sockets are bound."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("front door did not start")
        if isinstance(self._error, zmq.ZMQError):
            raise BindError(self._endpoint, self._error) from self._error
        if self._error is not None:
            raise RuntimeError(f"front door failed to start: {self._error}") from self._error

    def stop(self) -> None:
        """Stop the loop and close the sockets."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def is_alive(self) -> bool:
        """Whether the loop still runs (false once stopped, or once it died)."""
        return self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the loop (or failed the start), if any."""
        return self._error

    def inject_fault(self, fault: Exception) -> None:
        """Make the loop raise ``fault`` on its next turn (tests of supervision only)."""
        self._fault = fault

    # ---- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        router = uplink = None
        try:
            router = self._ctx.socket(zmq.ROUTER)
            router.curve_server = True
            router.curve_publickey = self._keys.public
            router.curve_secretkey = self._keys.secret
            router.setsockopt(zmq.ROUTER_MANDATORY, 1)
            router.setsockopt(zmq.MAXMSGSIZE, HARD_FRAME_CAP)
            router.setsockopt(zmq.SNDHWM, 100_000)
            router.setsockopt(zmq.RCVHWM, RCV_HWM)  # x MAXMSGSIZE: RCV_BYTES_PER_CONNECTION
            router.linger = 0
            router.bind(self._endpoint)
            self.endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
            uplink = self._ctx.socket(zmq.PULL)
            uplink.linger = 0
            uplink.bind(self._uplinks.endpoint)  # doorbells only; messages come by queue
        except BaseException as err:  # reported to start()
            for sock in (router, uplink):
                if sock is not None:
                    sock.close(0)
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(uplink, zmq.POLLIN)
        next_tick = self._clock() + self._tick_s
        next_purge = self._clock() + PURGE_EVERY_S
        try:
            self._apply(router, self._initial)  # work restored from the store
            while not self._stop.is_set():
                if self._fault is not None:
                    raise self._fault
                events = dict(poller.poll(0 if not self._uplinks.queue.empty() else 100))
                now = self._clock()
                effects = Effects()
                if router in events:
                    self._drain_router(router, effects, now)
                if uplink in events:
                    self._ring_off(uplink)
                self._drain_uplink(effects, now)
                effects.extend(self.engine.release(now))
                if now >= next_tick:
                    if self._gate is not None:
                        self._gatekeeping(effects, now)
                    effects.extend(self.engine.tick(now))
                    next_tick = now + self._tick_s
                self._apply(router, effects)
                if now >= next_purge:  # answered requests older than the idempotency window
                    self._store.purge_requests(now - self.engine.config.idempotency_s)
                    next_purge = now + PURGE_EVERY_S
        except Exception as err:  # kept for the watchdog; the thread ends
            self._error = err
            log.exception("front door loop failed; the front door thread ends")
        finally:
            router.close(0)
            uplink.close(0)

    def _drain_router(self, router: zmq.Socket[bytes], effects: Effects, now: float) -> None:
        for _ in range(BATCH):
            try:
                parts = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.stats["frames_in"] += 1
            identity = parts[0].bytes
            user_id, key_fingerprint = split_zap_id(str(parts[0].get("User-Id")))
            if self._gate is not None and not self._gate.current(user_id, key_fingerprint):
                step = self.engine.on_frame_with_revoked_key(user_id, parts[-1].bytes, now)
            elif len(parts) != 2:
                self.stats["bad_multipart"] += 1
                step = self.engine.on_frame(user_id, b"" if len(parts) == 1 else b"\xc1", now)
            else:
                step = self.engine.on_frame(user_id, parts[1].bytes, now)
            if step.hello:
                self._routes.hello(user_id, identity)
            # answers go back to the connection the frame came from; pushes stay in the step
            self._direct += [(identity, s.payload) for s in step.send if not s.push]
            step.send = [s for s in step.send if s.push]
            effects.extend(step)

    def _gatekeeping(self, effects: Effects, now: float) -> None:
        """Audit refused handshakes, and apply and audit keys registered or revoked."""
        assert self._gate is not None
        for refused in self._gate.drain_refused():
            effects.extend(
                self.engine.on_handshake_refused(refused.fingerprint, now, refused.address)
            )
        for change in self._gate.reload():
            registered = change.kind is KeyChangeKind.REGISTERED
            log.info("key %s for user %s", change.kind.value, change.user_id)
            effects.extend(
                self.engine.on_key_change(change.user_id, change.fingerprint, registered, now)
            )

    @staticmethod
    def _ring_off(uplink: zmq.Socket[bytes]) -> None:
        while True:
            try:
                uplink.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def _drain_uplink(self, effects: Effects, now: float) -> None:
        for msg in self._uplinks.take(BATCH):
            if isinstance(msg, Decoded):
                if isinstance(msg.uplink, DeviceAlert):
                    effects.extend(self.engine.on_device_alert(msg.uplink, now))
                else:
                    effects.extend(self.engine.on_device_response(msg.uplink, now))
            elif isinstance(msg, DeviceFailure):
                effects.extend(
                    self.engine.on_device_failure(msg.command_id, msg.code, msg.reason, now)
                )
            elif isinstance(msg, IntegrityFailure):
                effects.extend(
                    self.engine.on_integrity_failure(msg.comms_hub, msg.head_end, msg.reason, now)
                )

    def _send(self, router: zmq.Socket[bytes], identity: bytes, payload: bytes) -> bool:
        try:
            router.send_multipart([identity, payload], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as err:
            if err.errno not in (zmq.EHOSTUNREACH, zmq.EAGAIN):
                raise
            self.stats["unroutable"] += 1
            return False
        self.stats["frames_out"] += 1
        return True

    def _push(self, router: zmq.Socket[bytes], user_id: str, payload: bytes) -> bool:
        # a connection that is gone (or full) is forgotten and the previous one tried
        return self._routes.push(user_id, lambda identity: self._send(router, identity, payload))

    def _apply(self, router: zmq.Socket[bytes], effects: Effects) -> None:
        if effects.needs_persisting:
            self._store.apply(
                effects,
                self.engine.next_seq,
                self.engine.next_delivery,
                self.engine.scheduler.next_number if effects.save_schedules else None,
            )
        self.payloads.made(effects)
        direct, self._direct = self._direct, []
        for identity, payload in direct:
            self._send(router, identity, payload)  # an answer lost here is resubmitted (idempotent)
        for send in self.payloads.filled(effects.send):  # payloads from the cache or the store
            if not self._push(router, send.user_id, send.payload):
                # nobody to take it: deliveries stay held and are pushed again after Hello
                self.engine.on_unreachable(send.user_id)
        self.payloads.removed(effects)
        for d in effects.dispatch:
            self._head_ends[d.head_end].tell(Encode(d))

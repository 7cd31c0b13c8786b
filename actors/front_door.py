"""The front door: the ZeroMQ ROUTER service users connect to, driving the hub engine.

Decides: how frames, device uplinks and ticks are batched into engine steps, and the order
of applying a step (persist in one transaction, then send, then dispatch), so nothing is
acknowledged before it is durable; and what happens when the store fails a commit (a storage
outage): nothing of that batch is sent, frames are answered H8 "storage unavailable" without
reaching the engine (control messages and device alerts are kept, bounded; device responses
are dropped, since the rebuilt engine dispatches every accepted request again), the store is
probed every ``PROBE_EVERY_S``, and once it takes writes the engine is rebuilt from the store
exactly as a restart does, so what the hub holds in memory is what is durable.
Must never: make a hub decision itself (the engine does), or let a socket be touched by
another thread (ZeroMQ sockets are single-threaded: this thread owns the ROUTER and the
uplink PULL socket), or die quietly: an exception that ends the loop is logged with its
traceback and kept in ``error``, and ``is_alive`` turns false for the hub's watchdog.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import zmq

from actors.messages import Decoded, DeviceFailure, Encode, IntegrityFailure
from actors.operator_inbox import OperatorInbox
from actors.register_feed import RegisterBatch
from actors.security import KeyChangeKind, KeyGate, split_zap_id
from actors.uplinks import Uplinks
from hub import wire
from hub.engine import Effects, HubEngine
from hub.engine.ingress import REQUEST_LANES, Ingress, Lane, Waiting
from hub.policies.connections import MAX_CONNECTIONS_PER_USER, DeliveryRoutes
from hub.policies.storage_outage import answer_during_outage, busy_instead_of
from hub.ports.payloads import PayloadCache
from hub.ports.store import Store, StoreFailedError
from hub.reference.standard import DeviceAlert
from sdk.keys import KeyPair

log = logging.getLogger(__name__)

BATCH = 512
"""Requests decided (and uplinks taken) per loop turn before applying the step."""
READ_PER_TURN = 4_096
"""Most frames read off the ROUTER into the ingress per loop turn."""
INGRESS_FRAMES = 20_000
"""Most frames waiting in the front door's ingress."""
INGRESS_BYTES = 64 << 20
"""Most bytes waiting in the front door's ingress."""
RCVHWM = 1_000
"""Most frames ZeroMQ queues per connection before the front door reads them (then the sender
waits); the socket uses fewer (``RCV_HWM``) so the bytes are bounded too, and in practice a
few wait, since the front door reads every turn."""
DEFAULT_ANSWER_WITHIN_S = 1.0
"""Requests not decided this long after they were read are answered H8."""
POLL_MAX_MS = 100
"""Longest wait for a frame in one loop turn (how soon a stop is noticed)."""
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
RCV_HWM = max(1, min(RCVHWM, RCV_BYTES_PER_CONNECTION // HARD_FRAME_CAP))
"""The ROUTER's receive high-water mark in frames per connection: ``RCVHWM``, or fewer so
that it stays within ``RCV_BYTES_PER_CONNECTION`` (64 frames)."""
PROBE_EVERY_S = 1.0
"""How often a store that failed a commit is tried again."""
STILL_UNAVAILABLE_LOG_S = 60.0
"""How often a storage outage that goes on is logged again (at ERROR)."""
MAX_KEPT_FRAMES = 10_000
"""Control frames (Hello, DeliveryAck, ...) kept for the rebuilt engine during an outage."""
MAX_KEPT_FRAME_BYTES = 16 << 20
"""Bytes of kept control frames during an outage; beyond either bound they are dropped."""
MAX_KEPT_UPLINKS = 10_000
"""Device alerts and integrity failures kept during an outage; beyond it they are dropped."""

_T = TypeVar("_T")
Rebuild = Callable[[float], tuple[HubEngine, Effects]]
"""Builds a new engine from the store as a restart does, at ``now``: the engine and the
effects of its restoring (accepted requests dispatched again)."""


@dataclass(slots=True)
class _Outage:
    """A storage outage under way: since when, why, and what is kept for afterwards."""

    since: float
    error: str
    next_probe: float
    next_log: float
    last_error: str = ""
    answered: int = 0
    frames: deque[tuple[bytes, str, bytes]] = field(default_factory=deque)
    frame_bytes: int = 0
    uplinks: list[object] = field(default_factory=list)
    dropped_frames: int = 0
    dropped_uplinks: int = 0


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
        rebuild: Rebuild | None = None,
        answer_within_s: float = DEFAULT_ANSWER_WITHIN_S,
        inbox: OperatorInbox | None = None,
    ) -> None:
        """``rebuild`` makes a new engine from the store after a storage outage (without
        one, a failed commit ends the loop); ``inbox`` brings the operator's inventory
        commands."""
        self._inbox = inbox
        self._ctx = context
        self._rebuild = rebuild
        self._outage: _Outage | None = None
        self._committed: dict[str, int] = dict(engine.counters)  # as of the last commit
        self._hellos: dict[str, bytes] = {}  # each user's last Hello, said again after a rebuild
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
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
        self._answer_within_s = answer_within_s
        # frames read off the ROUTER, waiting to be decided: (connection, user id, frame)
        self._ingress: Ingress[tuple[bytes, str, bytes]] = Ingress(INGRESS_FRAMES, INGRESS_BYTES)
        self.stats: dict[str, int] = {
            "frames_in": 0,
            "frames_out": 0,
            "unroutable": 0,
            "bad_multipart": 0,
            "storage_failures": 0,
            "storage_busy": 0,
            "storage_recoveries": 0,
            "storage_dropped": 0,
            "overdue": 0,
            "ingress_full": 0,
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

    @property
    def storage_unavailable_since(self) -> float | None:
        """When the store failed the commit that started the outage under way (None: the
        store takes writes)."""
        outage = self._outage
        return outage.since if outage is not None else None

    def call_in_loop(self, fn: Callable[[], _T], timeout: float = 10.0) -> _T:
        """Run ``fn`` on the front door's thread between two turns and return what it returns
        (the store is used from that thread only: tests and maintenance reach it this way)."""
        future: Future[_T] = Future()
        self._calls.put((fn, future))
        return future.result(timeout)

    def _run_calls(self) -> None:
        while True:
            try:
                fn, future = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(fn())
            except Exception as err:  # handed to the caller
                future.set_exception(err)

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
        next_housekeeping = self._clock() + self._tick_s
        next_purge = self._clock() + PURGE_EVERY_S
        try:
            self._apply(router, self._initial)  # work restored from the store
            due = self.engine.next_due(self._clock())
            while not self._stop.is_set():
                if self._fault is not None:
                    raise self._fault
                self._run_calls()
                wake = next_housekeeping if due is None else min(due, next_housekeeping)
                wait_ms = min(POLL_MAX_MS, math.ceil((wake - self._clock()) * 1000))
                busy = not self._uplinks.queue.empty() or len(self._ingress) > 0
                events = dict(poller.poll(0 if busy else max(0, wait_ms)))
                now = self._clock()
                if (
                    self._outage is not None
                ):  # the store takes no writes: nothing reaches the engine
                    self._while_unavailable(router, uplink, events, now)
                    continue
                effects = Effects()
                if router in events or len(self._ingress) > 0:
                    self._drain_router(router, effects, now)
                if uplink in events:
                    self._ring_off(uplink)
                self._drain_uplink(effects, now)
                effects.extend(self.engine.release(now))
                if now >= next_housekeeping:  # what the engine does not time
                    if self._gate is not None:
                        self._gatekeeping(effects, now)
                    if self._inbox is not None:
                        for command in self._inbox.take():
                            effects.extend(self.engine.on_operator_command(command, now))
                        effects.audit.extend(self._inbox.refusals(now))  # unreadable files
                    next_housekeeping = now + self._tick_s
                if due is not None and now >= due:
                    effects.extend(self.engine.tick(now))
                self._apply(router, effects)
                if self._inbox is not None and self._outage is None:
                    self._inbox.commit()  # command files go once their batch is durable
                elif self._inbox is not None:
                    self._inbox.retry()
                due = self.engine.next_due(now)
                if now >= next_purge:  # answered requests older than the idempotency window
                    self._purge(now)
                    next_purge = now + PURGE_EVERY_S
        except Exception as err:  # kept for the watchdog; the thread ends
            self._error = err
            log.exception(
                "front door loop failed; the front door thread ends", extra={"part": "front-door"}
            )
        finally:
            router.close(0)
            uplink.close(0)

    def _drain_router(self, router: zmq.Socket[bytes], effects: Effects, now: float) -> None:
        """Read what has arrived into the ingress (stamped on arrival), decide every control
        message, then up to ``BATCH`` requests, most urgent first; answer H8 to requests
        that would be decided later than the answer bound, and to those the full ingress
        sheds."""
        self._read(router, effects)
        for waiting in self._ingress.take(Lane.CONTROL, INGRESS_FRAMES):
            self._decide(waiting, effects, now)
        room = BATCH
        for lane in REQUEST_LANES:
            for waiting in self._ingress.take(lane, room):
                self._decide(waiting, effects, now)
                room -= 1
        late = self._clock()
        for waiting in self._ingress.overdue(late, self._answer_within_s):
            self.stats["overdue"] += 1
            self._shed(waiting, late - waiting.arrived_at, effects, late)

    def _read(self, router: zmq.Socket[bytes], effects: Effects) -> None:
        for _ in range(READ_PER_TURN):
            try:
                parts = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            arrived = self._clock()
            self.stats["frames_in"] += 1
            identity = parts[0].bytes
            user_id, key_fingerprint = split_zap_id(str(parts[0].get("User-Id")))
            if self._gate is not None and not self._gate.current(user_id, key_fingerprint):
                step = self.engine.on_frame_with_revoked_key(user_id, parts[-1].bytes, arrived)
                self._answer(identity, user_id, b"", step, effects)
                continue
            if len(parts) != 2:
                self.stats["bad_multipart"] += 1
                bad = b"" if len(parts) == 1 else wire.SEVERAL_FRAMES
                step = self.engine.on_frame(user_id, bad, arrived)
                self._answer(identity, user_id, bad, step, effects)
                continue
            frame = parts[1].bytes
            seen, lane = self.engine.triage(frame)
            waiting = Waiting((identity, user_id, frame), seen, lane, len(frame), arrived)
            shed = self._ingress.put(waiting)
            if shed is not None:
                self.stats["ingress_full"] += 1
                self._shed(shed, arrived - shed.arrived_at, effects, arrived)

    def _decide(
        self, waiting: Waiting[tuple[bytes, str, bytes]], effects: Effects, now: float
    ) -> None:
        identity, user_id, frame = waiting.item
        self._answer(identity, user_id, frame, self.engine.on_frame(user_id, frame, now), effects)

    def _shed(
        self,
        waiting: Waiting[tuple[bytes, str, bytes]],
        waited_s: float,
        effects: Effects,
        now: float,
    ) -> None:
        """A frame the ingress gives up on: a request is answered busy without being decided;
        anything else (a control message) is decided now, never dropped."""
        identity, user_id, frame = waiting.item
        if waiting.peek.kind != "service_request":
            self._decide(waiting, effects, now)
            return
        step = self.engine.on_overdue(user_id, waiting.peek, waited_s, self._answer_within_s, now)
        self._answer(identity, user_id, frame, step, effects)

    def _answer(
        self, identity: bytes, user_id: str, frame: bytes, step: Effects, effects: Effects
    ) -> None:
        if step.hello:
            self._routes.hello(user_id, identity)
            self._hellos[user_id] = frame  # said again to a rebuilt engine
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
            log.info("user key %s", change.kind.value, extra={"user": change.user_id})
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
        self._on_uplinks(self._uplinks.take(BATCH), effects, now)

    def _on_uplinks(self, messages: list[object], effects: Effects, now: float) -> None:
        for msg in messages:
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
            elif isinstance(msg, RegisterBatch):
                effects.extend(self.engine.on_register_changes(msg.batch, now))

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
        for fault in effects.faults:  # contained by the engine; answered, audited, counted
            log.error("engine step %s failed (contained):\n%s", fault.where, fault.traceback_text)
        if effects.needs_persisting:
            try:
                self._store.apply(
                    effects,
                    self.engine.next_seq,
                    self.engine.next_delivery,
                    self.engine.scheduler.next_number if effects.save_schedules else None,
                )
            except StoreFailedError as err:
                self._unavailable(router, err)
                return
            self._committed = dict(self.engine.counters)
        self.payloads.made(effects)
        direct, self._direct = self._direct, []
        for identity, payload in direct:
            self._send(router, identity, payload)  # an answer lost here is resubmitted (idempotent)
        try:  # payloads from the cache or the store
            sends = list(self.payloads.filled(effects.send))
        except StoreFailedError as err:  # what the cache lacks is pushed again at its retry
            log.warning("reading held payloads from the store failed: %s", err)
            sends = list(self.payloads.filled(effects.send, from_store=False))
        for send in sends:
            if not self._push(router, send.user_id, send.payload):
                # nobody to take it: deliveries stay held and are pushed again after Hello
                self.engine.on_unreachable(send.user_id)
        self.payloads.removed(effects)
        for d in effects.dispatch:
            self._head_ends[d.head_end].tell(Encode(d))

    # ---- storage outages -------------------------------------------------------------------

    def _purge(self, now: float) -> None:
        try:
            self._store.purge_requests(now - self.engine.config.idempotency_s)
        except StoreFailedError as err:  # tried again at the next purge
            log.warning("purging old request ids failed: %s", err)

    def _unavailable(self, router: zmq.Socket[bytes], err: StoreFailedError) -> None:
        """The store failed a commit: void the batch, answer its frames H8, start the outage."""
        if self._rebuild is None:
            raise err
        now = self._clock()
        # nothing of the batch counts: the engine is rebuilt from the store before it is used
        self.engine.counters.clear()
        self.engine.counters.update(self._committed)
        self.stats["storage_failures"] += 1
        self._outage = _Outage(
            since=now,
            error=str(err),
            next_probe=now + PROBE_EVERY_S,
            next_log=now + STILL_UNAVAILABLE_LOG_S,
        )
        retry = self.engine.config.busy_retry_s
        direct, self._direct = self._direct, []
        for identity, payload in direct:  # the outage is under way before anyone hears of it
            busy = busy_instead_of(payload, retry)
            if busy is not None:
                self.stats["storage_busy"] += 1
                self._send(router, identity, busy)
        log.error(
            "storage unavailable: a commit to the store failed (%s); nothing more is "
            "acknowledged, requests are answered H8 and the store is tried every %g s",
            err,
            PROBE_EVERY_S,
        )

    def _while_unavailable(
        self,
        router: zmq.Socket[bytes],
        uplink: zmq.Socket[bytes],
        events: dict[Any, int],
        now: float,
    ) -> None:
        """One loop turn of an outage: answer or keep frames, keep alerts, probe the store."""
        outage = self._outage
        assert outage is not None
        if uplink in events:
            self._ring_off(uplink)
        if router in events:
            self._busy_frames(router, outage)
        for msg in self._uplinks.take(BATCH):
            alert = isinstance(msg, IntegrityFailure) or (
                isinstance(msg, Decoded) and isinstance(msg.uplink, DeviceAlert)
            )
            if alert and len(outage.uplinks) < MAX_KEPT_UPLINKS:
                outage.uplinks.append(msg)
            elif alert:
                outage.dropped_uplinks += 1
            # a response or failure is dropped: its request is dispatched again after the rebuild
        if now >= outage.next_log:
            outage.next_log = now + STILL_UNAVAILABLE_LOG_S
            log.error(
                "storage still unavailable after %.0f s (first error: %s; last: %s); %d frames "
                "answered H8 so far",
                now - outage.since,
                outage.error,
                outage.last_error or outage.error,
                outage.answered,
            )
        if now < outage.next_probe:
            return
        outage.next_probe = now + PROBE_EVERY_S
        assert self._rebuild is not None
        try:
            self._store.probe()
            engine, startup = self._rebuild(now)
        except StoreFailedError as err:
            outage.last_error = str(err)
            return
        self._resume(router, outage, engine, startup, now)

    def _busy_frames(self, router: zmq.Socket[bytes], outage: _Outage) -> None:
        retry = self.engine.config.busy_retry_s
        for _ in range(BATCH):
            try:
                parts = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.stats["frames_in"] += 1
            identity = parts[0].bytes
            user_id = str(parts[0].get("User-Id"))
            frame = parts[1].bytes if len(parts) == 2 else b""
            answer = answer_during_outage(frame, retry)
            if answer is not None:
                outage.answered += 1
                self.stats["storage_busy"] += 1
                self._send(router, identity, answer)
            elif (
                len(outage.frames) < MAX_KEPT_FRAMES
                and outage.frame_bytes + len(frame) <= MAX_KEPT_FRAME_BYTES
            ):
                outage.frames.append((identity, user_id, frame))
                outage.frame_bytes += len(frame)
            else:
                outage.dropped_frames += 1

    def _resume(
        self,
        router: zmq.Socket[bytes],
        outage: _Outage,
        engine: HubEngine,
        startup: Effects,
        now: float,
    ) -> None:
        """The store takes writes again: drive the engine rebuilt from it, audit the outage,
        say each connected user's Hello again, hand it what was kept, and go on."""
        self._outage = None
        for key, count in self._committed.items():
            engine.counters[key] = engine.counters.get(key, 0) + count
        self.engine = engine
        self._committed = dict(engine.counters)
        dropped = outage.dropped_frames + outage.dropped_uplinks
        self.stats["storage_recoveries"] += 1
        self.stats["storage_dropped"] += dropped
        reason = (
            f"storage unavailable for {now - outage.since:.1f} s: {outage.error}; "
            f"{outage.answered} frames answered H8, {dropped} control frames or alerts dropped "
            "beyond the bounds; the engine was rebuilt from the store"
        )
        effects = startup
        effects.extend(engine.on_storage_recovered(reason, now))
        for user_id, hello in self._hellos.items():
            if self._routes.targets(user_id):  # its Welcome is pushed to that connection
                effects.extend(engine.on_frame(user_id, hello, now))
        for identity, user_id, frame in outage.frames:
            self._answer(identity, user_id, frame, engine.on_frame(user_id, frame, now), effects)
        self._on_uplinks(outage.uplinks, effects, now)
        log.warning("storage works again: %s", reason)
        self._apply(router, effects)
        again = self._outage
        if again is not None:  # failed at once: what was kept waits for the next rebuild
            again.frames.extendleft(reversed(outage.frames))
            again.frame_bytes += outage.frame_bytes
            again.uplinks[:0] = outage.uplinks

"""Client SDK for integrators: connect with CURVE keys, send requests, receive and
acknowledge responses and alerts, with redeliveries removed.

Decides: how a client announces itself (Hello after every successful handshake, so a hub
restart or a reconnection gets held deliveries pushed again), which deliveries are
duplicates (delivery ids already handed to the caller are acknowledged again and dropped),
that a critical command sent without a signature is signed with the client's signing key when
it was given one, and, with a send window, when to hold back a request locally (more than the
window unanswered) instead of queueing it where the hub cannot see it.
Must never: share its socket between threads; use one HubClient per thread.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import OrderedDict, deque
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from hub import wire
from hub.reference.catalogue import CATALOGUE
from hub.reference.roles import Role
from hub.reference.standard import Value
from sdk.keys import KeyPair
from sdk.signing import SigningKey

Inbound = (
    wire.Acknowledgement
    | wire.Refusal
    | wire.ServiceResponse
    | wire.DeviceAlertNotice
    | wire.HubAlert
    | wire.Welcome
)


class SendWindowFullError(Exception):
    """The client's send window is full: ``window`` requests are sent and not yet answered
    (I99 or a refusal). Nothing was sent; receive answers, then submit again."""


Delivered = wire.ServiceResponse | wire.DeviceAlertNotice | wire.HubAlert


class HubClient:
    """One service user's connection to the hub."""

    def __init__(
        self,
        endpoint: str,
        server_public: bytes,
        keys: KeyPair,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        max_in_flight: int | None = None,
        dedup_window: int = 1_000_000,
        auto_hello: bool = True,
        signing_key: SigningKey | None = None,
        send_window: int | None = None,
        window_timeout_s: float = 60.0,
    ) -> None:
        """Connect to ``endpoint``. With ``auto_hello`` (the default) the client says Hello
        after every handshake and so becomes the user's delivery connection; a connection that
        only sends requests can leave that to another (answers still come back to it). With a
        ``signing_key`` (the user's party's), critical commands sent unsigned are signed.
        With a ``send_window``, ``submit`` raises ``SendWindowFullError`` instead of sending
        while that many requests are unanswered; a request unanswered for ``window_timeout_s``
        stops counting (the hub answers every frame it reads, so that means it was lost with a
        connection: resubmit it with the same id)."""
        if send_window is not None and send_window < 1:
            raise ValueError("send_window must be at least 1")
        self._send_window = send_window
        self._window_timeout_s = window_timeout_s
        self._unanswered: OrderedDict[str, float] = OrderedDict()
        self._signing_key = signing_key
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        sock = self._ctx.socket(zmq.DEALER)
        sock.curve_serverkey = server_public
        sock.curve_publickey = keys.public
        sock.curve_secretkey = keys.secret
        sock.linger = 0
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        self._monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sock.connect(endpoint)
        self._sock = sock
        self._poller = zmq.Poller()
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._max_in_flight = max_in_flight
        self._auto_hello = auto_hello
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._dedup_window = dedup_window
        self._inbox: deque[Inbound] = deque()
        self._ids = itertools.count(1)
        self._token = secrets.token_hex(6)
        self.welcome: wire.Welcome | None = None
        """The hub's last Welcome (None until the first handshake completes)."""
        self.duplicates = 0
        """Redelivered messages dropped because they were already handed over."""
        self.handshakes = 0
        """Completed CURVE handshakes (1 + reconnections)."""

    def close(self) -> None:
        """Close the socket (and the context if this client made it)."""
        self._sock.disable_monitor()
        self._monitor.close(0)
        self._sock.close(0)
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- sending ---------------------------------------------------------------------------

    def next_request_id(self, prefix: str = "r") -> str:
        """A fresh request id: a random token per client object and a counter, so ids do not
        repeat across runs (the hub remembers ids for a day and refuses reuse with H4)."""
        return f"{prefix}-{self._token}-{next(self._ids)}"

    def submit(
        self,
        request_id: str,
        role: Role | str,
        service: str,
        device_id: str | None = None,
        params: dict[str, Value] | None = None,
        execute_at: float | None = None,
        signature: bytes = b"",
    ) -> None:
        """Send a service request without waiting (the answer arrives through ``receive``).
        A critical command without ``signature`` is signed with the client's signing key, if
        it has one. Raises ``SendWindowFullError``, sending nothing, when the send window is
        full."""
        if self._send_window is not None:
            self._make_room()
        service_entry = CATALOGUE.get(service)
        if (
            not signature
            and self._signing_key is not None
            and device_id is not None
            and service_entry is not None
            and service_entry.critical
        ):
            signature = self._signing_key.sign(service, device_id, params or {})
        req = wire.ServiceRequest(
            request_id=request_id,
            role=Role(role),
            service=service,
            device_id=device_id,
            params=params or {},
            execute_at=execute_at,
            signature=signature,
        )
        self._sock.send(wire.encode(req))
        if self._send_window is not None:
            self._unanswered[request_id] = time.monotonic()
            self._unanswered.move_to_end(request_id)

    @property
    def unanswered(self) -> int:
        """Requests sent and not yet answered (counted only with a send window)."""
        return len(self._unanswered)

    def _make_room(self) -> None:
        assert self._send_window is not None
        if len(self._unanswered) < self._send_window:
            return
        stale = time.monotonic() - self._window_timeout_s
        while self._unanswered and next(iter(self._unanswered.values())) < stale:
            self._unanswered.popitem(last=False)
        if len(self._unanswered) >= self._send_window:
            raise SendWindowFullError(
                f"{len(self._unanswered)} requests are unanswered (send window "
                f"{self._send_window}): receive their answers, then submit again"
            )

    def send_raw(self, frame: bytes) -> None:
        """Send bytes as they are (for tests of the hub's handling of bad input)."""
        self._sock.send(frame)

    def ack(self, delivery_ids: list[int]) -> None:
        """Confirm receipt; the hub then deletes them."""
        for i in range(0, len(delivery_ids), wire.MAX_ACK_IDS):
            self._sock.send(
                wire.encode(
                    wire.DeliveryAck(delivery_ids=tuple(delivery_ids[i : i + wire.MAX_ACK_IDS]))
                )
            )

    def set_thresholds(self, service: str, warning: int, quarantine: int, period_s: float) -> None:
        """Set this user's own anomaly thresholds for a service (no answer is sent)."""
        msg = wire.SetThresholds(
            service=service, warning=warning, quarantine=quarantine, period_s=float(period_s)
        )
        self._sock.send(wire.encode(msg))

    def release(self, request_ids: list[str]) -> None:
        """Release quarantined requests: each is then decided afresh (I99 or a refusal)."""
        msg = wire.QuarantineDecision(
            action=wire.QuarantineAction.RELEASE, request_ids=tuple(request_ids)
        )
        self._sock.send(wire.encode(msg))

    def delete_quarantined(self, request_ids: list[str]) -> None:
        """Delete quarantined requests: each is answered with a final H7 refusal."""
        msg = wire.QuarantineDecision(
            action=wire.QuarantineAction.DELETE, request_ids=tuple(request_ids)
        )
        self._sock.send(wire.encode(msg))

    def hello(self) -> None:
        """Announce readiness for pushed deliveries (done automatically after handshakes)."""
        self._sock.send(wire.encode(wire.Hello(max_in_flight=self._max_in_flight)))

    # ---- receiving -------------------------------------------------------------------------

    def receive(self, timeout_s: float = 5.0) -> Inbound | None:
        """The next message from the hub, or None after ``timeout_s``; duplicates of
        deliveries already returned are acknowledged again and skipped."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._inbox:
                return self._inbox.popleft()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            events = dict(self._poller.poll(max(1, int(left * 1000))))
            if self._monitor in events:
                while self._monitor.poll(0):
                    recv_monitor_message(self._monitor)
                    self.handshakes += 1
                    if self._auto_hello:
                        self.hello()
            if self._sock in events:
                while True:
                    try:
                        frame = self._sock.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._take(frame)

    def _take(self, frame: bytes) -> None:
        msg: Any = wire.decode_from_hub(frame)
        if isinstance(msg, wire.Welcome):
            self.welcome = msg
        if isinstance(msg, (wire.Acknowledgement, wire.Refusal)) and msg.request_id:
            self._unanswered.pop(msg.request_id, None)
        if isinstance(msg, (wire.ServiceResponse, wire.DeviceAlertNotice, wire.HubAlert)):
            if msg.delivery_id in self._seen:
                self.duplicates += 1
                self.ack([msg.delivery_id])
                return
            self._seen[msg.delivery_id] = None
            if len(self._seen) > self._dedup_window:
                self._seen.popitem(last=False)
        self._inbox.append(msg)

    def wait_for(
        self, kind: type[Any], timeout_s: float = 10.0, request_id: str | None = None
    ) -> Any:
        """Receive until a message of ``kind`` (and ``request_id``, if given) arrives; other
        messages stay queued for later ``receive`` calls. None on timeout."""
        deadline = time.monotonic() + timeout_s
        held: list[Inbound] = []
        try:
            while True:
                msg = self.receive(max(0.0, deadline - time.monotonic()))
                if msg is None:
                    return None
                if isinstance(msg, kind) and (
                    request_id is None or getattr(msg, "request_id", None) == request_id
                ):
                    return msg
                held.append(msg)
        finally:
            self._inbox.extendleft(reversed(held))

    def connect(self, timeout_s: float = 10.0) -> wire.Welcome:
        """Wait until the hub has welcomed this client."""
        msg = self.wait_for(wire.Welcome, timeout_s)
        if msg is None:
            raise TimeoutError("the hub did not welcome this client (wrong keys or endpoint?)")
        assert isinstance(msg, wire.Welcome)
        return msg

    def request(
        self,
        role: Role | str,
        service: str,
        device_id: str | None = None,
        params: dict[str, Value] | None = None,
        execute_at: float | None = None,
        signature: bytes = b"",
        request_id: str | None = None,
        timeout_s: float = 10.0,
    ) -> wire.Acknowledgement | wire.Refusal:
        """Send a request and wait for its acknowledgement (I99) or refusal."""
        rid = request_id or self.next_request_id()
        self.submit(rid, role, service, device_id, params, execute_at, signature)
        deadline = time.monotonic() + timeout_s
        held: list[Inbound] = []
        try:
            while True:
                msg = self.receive(max(0.0, deadline - time.monotonic()))
                if msg is None:
                    raise TimeoutError(f"no answer to request {rid}")
                if isinstance(msg, (wire.Acknowledgement, wire.Refusal)) and msg.request_id == rid:
                    return msg
                held.append(msg)
        finally:
            self._inbox.extendleft(reversed(held))

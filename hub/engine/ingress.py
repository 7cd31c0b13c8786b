"""The front door's ingress: frames read off the socket, waiting to be decided, in lanes.

Decides: what a frame is at a glance (``peek``: its kind, request id and service, read
without decoding the rest), which lane it waits in (control messages first, then requests by
the priority class of their service), which waiting frame gives way when the ingress is full
(the newest of the lowest lane below the newcomer, or the newcomer itself), the order frames
are taken to be decided, and which requests have waited longer than the answer bound.
Must never: decide a frame itself (the engine does; frames shed here are answered busy by
``RequestPipeline.on_overdue``), read a clock (arrival times and ``now`` are given), or hold
more than its bounds in frames and bytes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum
from typing import Generic, TypeVar

import msgpack

from hub.reference.catalogue import PriorityClass
from hub.wire.checks import REQUEST_ID_PATTERN

T = TypeVar("T")

PEEK_MAX_ENTRIES = 16
"""Top-level entries ``peek`` looks through (a service request has fewer)."""


class Lane(IntEnum):
    """Where a frame waits; lower lanes are decided first and shed last."""

    CONTROL = 0
    """Acknowledgements, hello, quarantine decisions, thresholds, and frames that cannot be
    read (the engine refuses those cheaply): never shed for requests."""
    URGENT = 1
    """Requests for urgent services (prepayment, supply)."""
    ON_DEMAND = 2
    """Requests for on-demand services (and services the catalogue does not know)."""
    BULK = 3
    """Requests for bulk services (firmware, bulk reads)."""


REQUEST_LANES: tuple[Lane, ...] = (Lane.URGENT, Lane.ON_DEMAND, Lane.BULK)
"""The lanes of service requests, most urgent first."""


def lane_for(priority: PriorityClass) -> Lane:
    """The lane of a request whose service is of this priority class."""
    return Lane.URGENT if priority <= PriorityClass.URGENT else Lane(int(priority))


@dataclass(frozen=True, slots=True)
class Peek:
    """What a frame is, read at a glance (None where it could not be read)."""

    kind: str | None
    """The ``kind`` field, if it is a string."""
    request_id: str | None
    """The ``request_id`` field, if it is a well-formed request id."""
    service: str | None
    """The ``service`` field, if it is a string."""

    @property
    def is_request(self) -> bool:
        """A service request with a readable request id (a candidate for a busy answer)."""
        return self.kind == "service_request" and self.request_id is not None


UNREADABLE = Peek(None, None, None)


def peek(frame: bytes) -> Peek:
    """Read ``kind``, ``request_id`` and ``service`` from a msgpack map, skipping every other
    value unread; anything unexpected gives ``UNREADABLE`` (never raises)."""
    if not frame or not (0x80 <= frame[0] <= 0x8F or frame[0] in (0xDE, 0xDF)):
        return UNREADABLE
    kind = request_id = service = None
    try:
        unpacker = msgpack.Unpacker(max_buffer_size=len(frame))
        unpacker.feed(frame)
        entries = unpacker.read_map_header()
        for _ in range(min(entries, PEEK_MAX_ENTRIES)):
            key = unpacker.unpack()
            if key == "kind" or key == "request_id" or key == "service":
                value = unpacker.unpack()
                if type(value) is str:
                    if key == "kind":
                        kind = value
                    elif key == "service":
                        service = value
                    elif REQUEST_ID_PATTERN.fullmatch(value) is not None:
                        request_id = value
            else:
                unpacker.skip()
    except Exception:  # any failure of the unpacker: the engine will say what is wrong
        return UNREADABLE
    return Peek(kind, request_id, service)


@dataclass(frozen=True, slots=True)
class Waiting(Generic[T]):
    """A frame in the ingress."""

    item: T
    """What the driver keeps for it (the frame, its sender and connection)."""
    peek: Peek
    """What it is."""
    lane: Lane
    """Where it waits."""
    size: int
    """Its bytes, counted against the byte bound."""
    arrived_at: float
    """When it was read off the socket."""


class Ingress(Generic[T]):
    """Bounded lanes of frames waiting to be decided."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        if max_frames < 1 or max_bytes < 1:
            raise ValueError("the ingress needs room for at least one frame and one byte")
        self.max_frames = max_frames
        """Most frames waiting."""
        self.max_bytes = max_bytes
        """Most bytes waiting."""
        self._lanes: list[deque[Waiting[T]]] = [deque() for _ in Lane]
        self._frames = 0
        self._bytes = 0

    def __len__(self) -> int:
        return self._frames

    @property
    def bytes(self) -> int:
        """Bytes waiting."""
        return self._bytes

    def depth(self, lane: Lane) -> int:
        """Frames waiting in one lane."""
        return len(self._lanes[lane])

    def put(self, waiting: Waiting[T]) -> Waiting[T] | None:
        """Let a frame wait. When the ingress is full, the newest frame of the lowest lane
        below it gives way (returned: the caller answers it) if that makes room; otherwise
        the frame itself is returned. Nothing else changes."""
        if self._fits(waiting.size, 0, 0):
            self._append(waiting)
            return None
        for low in range(len(Lane) - 1, waiting.lane, -1):
            queue = self._lanes[low]
            if queue:
                if not self._fits(waiting.size, 1, queue[-1].size):
                    return waiting
                victim = queue.pop()
                self._frames -= 1
                self._bytes -= victim.size
                self._append(waiting)
                return victim
        return waiting

    def _fits(self, size: int, freed_frames: int, freed_bytes: int) -> bool:
        return (
            self._frames - freed_frames < self.max_frames
            and self._bytes - freed_bytes + size <= self.max_bytes
        )

    def _append(self, waiting: Waiting[T]) -> None:
        self._lanes[waiting.lane].append(waiting)
        self._frames += 1
        self._bytes += waiting.size

    def take(self, lane: Lane, most: int) -> list[Waiting[T]]:
        """Up to ``most`` frames of one lane, oldest first, to be decided."""
        queue = self._lanes[lane]
        out: list[Waiting[T]] = []
        while queue and len(out) < most:
            waiting = queue.popleft()
            self._frames -= 1
            self._bytes -= waiting.size
            out.append(waiting)
        return out

    def overdue(self, now: float, bound_s: float) -> list[Waiting[T]]:
        """Requests that arrived more than ``bound_s`` before ``now`` (taken out, oldest first
        per lane): too late to decide within the answer bound."""
        out: list[Waiting[T]] = []
        horizon = now - bound_s
        for lane in REQUEST_LANES:
            queue = self._lanes[lane]
            while queue and queue[0].arrived_at < horizon:
                waiting = queue.popleft()
                self._frames -= 1
                self._bytes -= waiting.size
                out.append(waiting)
        return out

    def oldest(self) -> float | None:
        """Arrival time of the oldest waiting request (None when none waits)."""
        heads = [self._lanes[lane][0].arrived_at for lane in REQUEST_LANES if self._lanes[lane]]
        return min(heads) if heads else None

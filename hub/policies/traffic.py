"""Traffic management: who may queue a command, and which queued commands may start now.

Decides: whether a request is admitted or refused as busy (with a meaningful retry-after),
shedding the lowest priorities first when the hub fills up and capping each user's share
while the hub is near capacity; and which queued commands start now, highest priority
first, FIFO within a priority, within the hub's command rate and each WAN cell's byte budget.
Must never: hold more items than its bounds (every queue is bounded, and so is the state kept
per user and per cell); drop an item it has queued (an admitted item is started, never
discarded); open a file or socket, start a thread, read a clock (``now`` is given), or know
what the items it queues are (it is generic over them).

How the engine uses it (one ``TrafficManager[Dispatch]`` per hub):

1. ``admit(user_id, priority, now)`` after access control and anomaly checks, before the
   request is accepted. ``Busy`` becomes H8 'busy, retry after ``retry_after_s`` s' (nothing
   done, request id not remembered). ``Admitted`` reserves one place in the queue of that
   priority: the engine must then either ``offer`` the item or ``release`` the place.
2. ``offer(dispatch, priority, site.cell, config.size_of(service), now)`` when the request is
   accepted (I99) and its command is ready to go: it takes the reserved place and never fails.
3. ``ready(now)`` on every engine step and tick: the commands returned may start now; hand
   them to the comms hub actors. Start any response timer from this moment, not from accept.
   One command at a time per comms hub stays the comms hub actor's job; this module only
   shapes what leaves the hub towards the WAN.
4. ``restore(...)`` after a restart, for accepted requests that were never answered
   (nothing acknowledged is lost; they were within the bounds when accepted).

Bounds hold exactly: for every priority, queued + reserved <= its bound, and over all
priorities queued + reserved <= the hub-wide bound (``restore`` aside). Classes without a
shed level (ALERT and URGENT by default) have room for their whole bound set aside inside the
hub-wide bound, so they are refused only when their own bound is hit; the other classes share
the rest, and each is refused once the hub-wide occupancy reaches its shed level (BULK before
ON_DEMAND). State per user (a token bucket) is kept only while it differs from a fresh one,
up to ``max_tracked_users``; state per cell only while the cell has queued commands or has
been used within its budget window.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from heapq import heapify, heappop, heappush, heapreplace
from typing import Generic, TypeVar

from hub.reference.catalogue import PriorityClass

T = TypeVar("T")

_EPS = 1e-9
"""Relative tolerance on token counts, so that waiting exactly ``retry_after`` always works."""

_CLASSES: tuple[PriorityClass, ...] = tuple(sorted(PriorityClass))
assert [int(p) for p in _CLASSES] == list(range(len(_CLASSES))), "priorities index lists"


class TrafficError(Exception):
    """The caller broke the admission protocol (e.g. ``offer`` without a reserved place)."""


# ---- token bucket ------------------------------------------------------------------------


class TokenBucket:
    """A token bucket driven by the caller's clock.

    It starts full (``burst`` tokens) at the first instant it is used and refills at
    ``rate_per_s`` up to ``burst``. A request for more than ``burst`` tokens is let through
    when the bucket is full and leaves it in debt, so an oversize request waits for a full
    bucket instead of starving. An instant earlier than one already seen counts as that one.
    """

    __slots__ = ("_at", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            raise ValueError(f"token bucket rate must be positive and finite, got {rate_per_s}")
        if not (burst > 0 and math.isfinite(burst)):
            raise ValueError(f"token bucket burst must be positive and finite, got {burst}")
        self.rate_per_s = float(rate_per_s)
        """Tokens added per second."""
        self.burst = float(burst)
        """Most tokens the bucket holds."""
        self._tokens = self.burst
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        at = self._at
        if at is None:
            self._at = now
        elif now > at:
            tokens = self._tokens + (now - at) * self.rate_per_s
            self._tokens = tokens if tokens < self.burst else self.burst
            self._at = now

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (negative while in debt)."""
        self._refill(now)
        return self._tokens

    def is_full(self, now: float) -> bool:
        """True when the bucket is indistinguishable from a fresh one."""
        self._refill(now)
        return self._tokens >= self.burst

    def take(self, now: float, n: float = 1.0) -> bool:
        """Take ``n`` tokens if available at ``now``; False (and nothing taken) otherwise."""
        if n <= 0:
            raise ValueError(f"take needs a positive number of tokens, got {n}")
        self._refill(now)
        need = n if n < self.burst else self.burst
        if self._tokens < need - _EPS * max(1.0, need):
            return False
        self._tokens -= n
        return True

    def retry_after(self, now: float, n: float = 1.0) -> float:
        """Seconds from ``now`` until ``take(n)`` would succeed (0.0 if it would now)."""
        if n <= 0:
            raise ValueError(f"retry_after needs a positive number of tokens, got {n}")
        self._refill(now)
        need = n if n < self.burst else self.burst
        floor = need - _EPS * max(1.0, need)
        tokens = self._tokens
        if tokens >= floor:
            return 0.0
        at = self._at if self._at is not None and self._at > now else now
        rate = self.rate_per_s
        ready_at = at + (need - tokens) / rate
        # Instants are floats (a Unix time has a resolution near 1e-7 s): step to the first
        # representable instant at which ``take`` really finds the tokens.
        while tokens + (ready_at - at) * rate < floor:
            ready_at = math.nextafter(ready_at, math.inf)
        wait = ready_at - now
        while now + wait < ready_at:
            wait = math.nextafter(wait, math.inf)
        return wait


# ---- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserAllocation:
    """One user's share while the hub is near capacity, as a token bucket."""

    rate_per_s: float
    """Requests per second the user may have admitted, sustained."""
    burst: float
    """Requests the user may have admitted at once."""


def _default_command_bytes() -> dict[str, int]:
    # Placeholders to be calibrated against the WAN model: a firmware image block is large,
    # profile and log reads are middling, everything else is a few hundred bytes.
    return {
        "11.1": 100_000,  # Update Firmware: one image block
        "11.4": 100_000,  # Update PPMID Firmware
        "4.8": 4_096,  # profile data reads (4.8.1 to 4.8.3)
        "4.6": 2_048,  # daily read logs
        "4.4": 2_048,  # billing data logs
        "4.17": 2_048,  # daily consumption log
    }


def _default_queue_bounds() -> dict[PriorityClass, int]:
    return {
        PriorityClass.ALERT: 50_000,
        PriorityClass.URGENT: 10_000,
        PriorityClass.ON_DEMAND: 50_000,
        PriorityClass.BULK: 200_000,
    }


def _default_shed_at() -> dict[PriorityClass, float]:
    return {PriorityClass.ON_DEMAND: 1.0, PriorityClass.BULK: 0.8}


@dataclass(frozen=True, slots=True)
class TrafficConfig:
    """Tunables of traffic management (all configurable at start-up)."""

    capacity_per_s: float = 1_000.0
    """Hub capacity: commands per second the WAN side can start."""
    capacity_burst: float | None = None
    """Commands that may start at once after a pause; None: one second of capacity."""
    near_capacity_share: float = 0.8
    """The hub is near capacity when its load reaches this share of capacity."""
    load_window_s: float = 10.0
    """Sliding window over which load (requests offered, commands started) is measured."""
    window_slots: int = 10
    """Slots per sliding window (load and cell utilisation); more slots, finer windows."""
    user_rate_per_s: float | None = None
    """Each user's sustained allocation near capacity; None: ``user_share`` of capacity."""
    user_share: float = 0.1
    """Each user's allocation near capacity as a share of capacity (if no rate is set)."""
    user_burst: float = 100.0
    """Requests a user may have admitted at once near capacity."""
    user_allocations: Mapping[str, UserAllocation] = field(default_factory=dict)
    """Allocations for particular users, overriding the defaults above."""
    user_exempt: frozenset[PriorityClass] = frozenset({PriorityClass.ALERT, PriorityClass.URGENT})
    """Classes never limited by user allocation (top-ups and supply operations go through)."""
    max_tracked_users: int = 100_000
    """Most user buckets kept; beyond it the least recently used is forgotten (reset)."""
    cell_bytes_per_s: float = 20_000.0
    """WAN cell budget: bytes per second of commands started towards one cell."""
    cell_budget_window_s: float = 10.0
    """A cell may spend up to this many seconds of its budget at once (and utilisation is
    reported over this window)."""
    cell_bytes_overrides: Mapping[str, float] = field(default_factory=dict)
    """Bytes per second for particular cells (e.g. long-range radio), overriding the default."""
    command_bytes: Mapping[str, int] = field(default_factory=_default_command_bytes)
    """Size estimate per service reference; a prefix (``4.8``) covers its variants."""
    default_command_bytes: int = 256
    """Size estimate for services not listed in ``command_bytes``."""
    queue_bounds: Mapping[PriorityClass, int] = field(default_factory=_default_queue_bounds)
    """Most items queued or reserved per priority class (every class must have one)."""
    hub_bound: int = 310_000
    """Most items queued or reserved over all classes."""
    shed_at: Mapping[PriorityClass, float] = field(default_factory=_default_shed_at)
    """Per sheddable class, the share of the shared room (hub bound less the bounds of the
    classes not listed) at which its requests are refused. Unlisted classes are refused only
    at their own bound; lower priorities must not shed later than higher ones."""
    min_retry_after_s: float = 1.0
    """Floor under every retry-after (the default when the estimate is shorter)."""
    max_retry_after_s: float = 86_400.0
    """Ceiling on every retry-after (the wire protocol's limit)."""

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ValueError("invalid traffic configuration: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        if not self.capacity_per_s > 0:
            out.append("capacity_per_s must be positive")
        if self.capacity_burst is not None and not self.capacity_burst >= 1:
            out.append("capacity_burst must be at least 1")
        if not 0 < self.near_capacity_share <= 1:
            out.append("near_capacity_share must be in (0, 1]")
        if not (self.load_window_s > 0 and self.cell_budget_window_s > 0):
            out.append("windows must be positive")
        if self.window_slots < 1:
            out.append("window_slots must be at least 1")
        if self.user_rate_per_s is not None and not self.user_rate_per_s > 0:
            out.append("user_rate_per_s must be positive")
        if not 0 < self.user_share <= 1:
            out.append("user_share must be in (0, 1]")
        if not self.user_burst > 0:
            out.append("user_burst must be positive")
        if self.max_tracked_users < 1:
            out.append("max_tracked_users must be at least 1")
        if not self.cell_bytes_per_s > 0 or any(
            not v > 0 for v in self.cell_bytes_overrides.values()
        ):
            out.append("cell budgets must be positive")
        if self.default_command_bytes < 1 or any(v < 1 for v in self.command_bytes.values()):
            out.append("command size estimates must be at least 1 byte")
        missing = [p.name for p in _CLASSES if p not in self.queue_bounds]
        if missing:
            out.append(f"queue_bounds lacks {', '.join(missing)}")
        elif any(b < 1 for b in self.queue_bounds.values()):
            out.append("queue bounds must be at least 1")
        elif self.hub_bound - self.protected_room() < 1:
            out.append("hub_bound must exceed the bounds of the classes without a shed level")
        if any(not 0 < s <= 1 for s in self.shed_at.values()):
            out.append("shed_at shares must be in (0, 1]")
        sheddable = sorted(self.shed_at)
        if sheddable and any(p not in self.shed_at for p in _CLASSES if p > sheddable[0]):
            out.append("a class without a shed level is below one with a shed level")
        levels = [self.shed_at[p] for p in sheddable]
        if levels != sorted(levels, reverse=True):
            out.append("a lower priority must not shed at a higher share than a higher one")
        if not 0 < self.min_retry_after_s <= self.max_retry_after_s:
            out.append("retry-after floor must be positive and not above the ceiling")
        return out

    def protected_room(self) -> int:
        """Places set aside inside the hub bound for the classes without a shed level."""
        return sum(b for p, b in self.queue_bounds.items() if p not in self.shed_at)

    def shed_level(self, priority: PriorityClass) -> int | None:
        """Hub-wide occupancy at which this class is refused (None: only its own bound)."""
        share = self.shed_at.get(priority)
        if share is None:
            return None
        return max(1, int(share * (self.hub_bound - self.protected_room())))

    def allocation_for(self, user_id: str) -> UserAllocation:
        """The user's token bucket while the hub is near capacity."""
        special = self.user_allocations.get(user_id)
        if special is not None:
            return special
        rate = self.user_rate_per_s
        if rate is None:
            rate = self.user_share * self.capacity_per_s
        return UserAllocation(rate, self.user_burst)

    def cell_budget(self, cell: str) -> float:
        """Bytes per second of commands that may start towards this cell."""
        return self.cell_bytes_overrides.get(cell, self.cell_bytes_per_s)

    def size_of(self, service: str) -> int:
        """Estimated bytes a command for this service puts on the WAN (longest prefix wins)."""
        code = service
        while True:
            size = self.command_bytes.get(code)
            if size is not None:
                return size
            cut = code.rfind(".")
            if cut < 0:
                return self.default_command_bytes
            code = code[:cut]


# ---- decisions ----------------------------------------------------------------------------


class BusyReason(StrEnum):
    """Why a request was refused as busy."""

    QUEUE_FULL = "queue_full"  # the queue of its priority class is at its bound
    HUB_FULL = "hub_full"  # the hub-wide occupancy reached the shed level of its class
    USER_ALLOCATION = "user_allocation"  # near capacity, and the user's share is used up


@dataclass(frozen=True, slots=True)
class Admitted:
    """Decision: accept; one place in the queue of this class is reserved for the item."""

    priority: PriorityClass
    """The class whose queue holds the reserved place (``offer`` or ``release`` it)."""


@dataclass(frozen=True, slots=True)
class Busy:
    """Decision: refuse with H8; nothing was reserved or done."""

    retry_after_s: float
    """Seconds the user should wait before resubmitting: time for a token of its share,
    or the time the hub needs to drain enough queued work at capacity."""
    reason: BusyReason
    """Which limit refused it."""
    detail: str
    """A sentence for the refusal's reason text."""


_ADMITTED = tuple(Admitted(p) for p in _CLASSES)


@dataclass(frozen=True, slots=True)
class TrafficStats:
    """A snapshot for reports and dashboards (cumulative counts since start)."""

    at: float
    """The instant of the snapshot."""
    offered_per_s: float
    """Requests offered to ``admit`` per second over the load window."""
    started_per_s: float
    """Commands started per second over the load window."""
    load: float
    """The larger of the two rates as a share of capacity."""
    near_capacity: bool
    """Whether user allocations apply now."""
    depth: dict[PriorityClass, int]
    """Items queued per class."""
    reserved: dict[PriorityClass, int]
    """Places admitted but not yet offered or released, per class."""
    max_depth: dict[PriorityClass, int]
    """Highest queued + reserved count seen per class."""
    admitted: dict[PriorityClass, int]
    """Requests admitted per class."""
    shed: dict[PriorityClass, int]
    """Requests refused as busy per class."""
    shed_by_reason: dict[BusyReason, int]
    """Requests refused as busy per reason."""
    started: dict[PriorityClass, int]
    """Commands started per class."""
    cell_utilisation: dict[str, float]
    """Per cell used within the budget window: bytes started over the window as a share of
    the cell's budget for the window (cells not listed used nothing)."""
    cells_waiting: int
    """Cells whose next command waits for byte budget."""
    tracked_users: int
    """User buckets held."""
    tracked_cells: int
    """Cells with state held."""


# ---- internals --------------------------------------------------------------------------------


class _SlidingCounter:
    """Sum of amounts added over the last ``window_s``, in ``slots`` steps (bounded memory)."""

    __slots__ = ("_counts", "_current", "_slot_s", "_total")

    def __init__(self, window_s: float, slots: int) -> None:
        self._slot_s = window_s / slots
        self._counts = [0] * slots
        self._current: int | None = None
        self._total = 0

    def _advance(self, now: float) -> int:
        slot = math.floor(now / self._slot_s)
        current = self._current
        if current is None:
            self._current = slot
            return slot
        if slot <= current:
            return current
        counts = self._counts
        n = len(counts)
        if slot - current >= n:
            for i in range(n):
                counts[i] = 0
            self._total = 0
        else:
            for s in range(current + 1, slot + 1):
                i = s % n
                self._total -= counts[i]
                counts[i] = 0
        self._current = slot
        return slot

    def add(self, now: float, amount: int) -> None:
        """Count ``amount`` at ``now``."""
        slot = self._advance(now)
        self._counts[slot % len(self._counts)] += amount
        self._total += amount

    def total(self, now: float) -> int:
        """Sum over the window ending at ``now``."""
        self._advance(now)
        return self._total


_Entry = tuple[int, T, int]  # (arrival sequence, item, size in bytes)


@dataclass(slots=True, eq=False)
class _Cell(Generic[T]):
    """Queues and budget of one WAN cell."""

    cell_id: str
    """The cell's name."""
    budget: TokenBucket
    """Byte budget; burst is one budget window's worth."""
    used: _SlidingCounter
    """Bytes started over the budget window (utilisation)."""
    queues: list[deque[_Entry[T]] | None]
    """Per priority class, this cell's items in arrival order (None when empty)."""
    queued: int = 0
    """Items queued over all classes."""
    parked: int = 0
    """Id of the pending wake-up while the next command waits for budget; 0: not waiting."""
    blocked_priority: int = 0
    """While waiting: the class of the command that waits."""
    suspended: list[int] = field(default_factory=list)
    """While waiting: the classes whose scheduling entry is held back until the wake-up."""
    last_used: float = 0.0
    """When the cell last had a command started or became empty."""


def _check_size(size_bytes: int) -> None:
    if size_bytes < 1:
        raise ValueError(f"size_bytes must be at least 1, got {size_bytes}")


class TrafficManager(Generic[T]):
    """Bounded priority queues in front of the WAN, with admission, shedding and shaping."""

    def __init__(self, config: TrafficConfig | None = None) -> None:
        cfg = config or TrafficConfig()
        self.config = cfg
        """The configuration in force."""
        n = len(_CLASSES)
        self._bound = [cfg.queue_bounds[p] for p in _CLASSES]
        self._shed_level = [cfg.shed_level(p) for p in _CLASSES]
        self._user_limited = [p not in cfg.user_exempt for p in _CLASSES]
        self._hub = TokenBucket(
            cfg.capacity_per_s,
            cfg.capacity_burst if cfg.capacity_burst is not None else max(1.0, cfg.capacity_per_s),
        )
        self._near_rate = cfg.near_capacity_share * cfg.capacity_per_s * cfg.load_window_s
        self._offered = _SlidingCounter(cfg.load_window_s, cfg.window_slots)
        self._started_window = _SlidingCounter(cfg.load_window_s, cfg.window_slots)
        self._users: OrderedDict[str, TokenBucket] = OrderedDict()
        self._cells: dict[str, _Cell[T]] = {}
        self._idle: OrderedDict[str, _Cell[T]] = OrderedDict()
        self._heaps: list[list[tuple[int, _Cell[T]]]] = [[] for _ in range(n)]
        self._wakeups: list[tuple[float, int, _Cell[T]]] = []
        self._waiting = 0
        self._next_wakeup = 1
        self._seq = 0
        self._depth = [0] * n
        self._reserved = [0] * n
        self._occupancy = 0
        self._max_depth = [0] * n
        self._admitted = [0] * n
        self._shed = [0] * n
        self._shed_by_reason = dict.fromkeys(BusyReason, 0)
        self._started = [0] * n

    # ---- admission ------------------------------------------------------------------------

    def admit(self, user_id: str, priority: PriorityClass, now: float) -> Admitted | Busy:
        """Decide whether a request of this class from this user may be accepted now.

        ``Admitted`` reserves one place in the class's queue (bounds hold exactly); the
        caller must ``offer`` the item or ``release`` the place.
        """
        p = int(priority)
        self._offered.add(now, 1)
        occupied = self._depth[p] + self._reserved[p]
        if occupied >= self._bound[p]:
            ahead = sum(self._depth[q] + self._reserved[q] for q in range(p))
            return self._busy(
                p,
                BusyReason.QUEUE_FULL,
                (ahead + occupied - self._bound[p] + 1) / self.config.capacity_per_s,
                f"{priority.name} queue is full ({occupied} of {self._bound[p]})",
            )
        level = self._shed_level[p]
        if level is not None and self._occupancy >= level:
            return self._busy(
                p,
                BusyReason.HUB_FULL,
                (self._occupancy - level + 1) / self.config.capacity_per_s,
                f"hub is shedding {priority.name} requests "
                f"({self._occupancy} of {self.config.hub_bound} places taken)",
            )
        if self._user_limited[p] and self.near_capacity(now):
            bucket = self._user_bucket(user_id)
            if not bucket.take(now):
                return self._busy(
                    p,
                    BusyReason.USER_ALLOCATION,
                    bucket.retry_after(now),
                    f"hub is near capacity and {user_id} has used its allocation "
                    f"({bucket.rate_per_s:g} requests/s)",
                )
            self._prune_users(now)
        self._reserved[p] += 1
        self._occupancy += 1
        self._admitted[p] += 1
        if occupied + 1 > self._max_depth[p]:
            self._max_depth[p] = occupied + 1
        return _ADMITTED[p]

    def _busy(self, p: int, reason: BusyReason, estimate_s: float, detail: str) -> Busy:
        self._shed[p] += 1
        self._shed_by_reason[reason] += 1
        cfg = self.config
        retry = min(max(estimate_s, cfg.min_retry_after_s), cfg.max_retry_after_s)
        return Busy(retry, reason, detail)

    def release(self, priority: PriorityClass) -> None:
        """Give back a place reserved by ``admit`` whose item will not be offered."""
        p = int(priority)
        if self._reserved[p] <= 0:
            raise TrafficError(f"no {priority.name} place is reserved")
        self._reserved[p] -= 1
        self._occupancy -= 1

    def _user_bucket(self, user_id: str) -> TokenBucket:
        users = self._users
        bucket = users.get(user_id)
        if bucket is None:
            alloc = self.config.allocation_for(user_id)
            bucket = users[user_id] = TokenBucket(alloc.rate_per_s, alloc.burst)
            if len(users) > self.config.max_tracked_users:
                users.popitem(last=False)
        else:
            users.move_to_end(user_id)
        return bucket

    def _prune_users(self, now: float) -> None:
        # A full bucket is the same as no bucket: forget it. Oldest-used first.
        users = self._users
        while users:
            bucket = next(iter(users.values()))
            if not bucket.is_full(now):
                return
            users.popitem(last=False)

    # ---- queueing ---------------------------------------------------------------------------

    def offer(
        self, item: T, priority: PriorityClass, cell: str, size_bytes: int, now: float
    ) -> None:
        """Queue an admitted item: it takes the place ``admit`` reserved, so it never fails.

        ``size_bytes`` is what it will spend of its cell's budget (``config.size_of``);
        ``now`` is not needed by the current policy and keeps every call alike.
        """
        p = int(priority)
        if self._reserved[p] <= 0:
            raise TrafficError(f"offer of a {priority.name} item without an admitted place")
        _check_size(size_bytes)
        self._reserved[p] -= 1
        self._occupancy -= 1
        self._enqueue(item, p, cell, size_bytes)

    def restore(
        self, item: T, priority: PriorityClass, cell: str, size_bytes: int, now: float
    ) -> None:
        """Queue an item accepted before a restart, regardless of the bounds (it was within
        them when accepted; admission stays closed until the queues drain below them)."""
        _check_size(size_bytes)
        self._enqueue(item, int(priority), cell, size_bytes)

    def _enqueue(self, item: T, p: int, cell_id: str, size: int) -> None:
        cell = self._cells.get(cell_id)
        if cell is None:
            cfg = self.config
            rate = cfg.cell_budget(cell_id)
            cell = self._cells[cell_id] = _Cell(
                cell_id,
                TokenBucket(rate, rate * cfg.cell_budget_window_s),
                _SlidingCounter(cfg.cell_budget_window_s, cfg.window_slots),
                [None] * len(_CLASSES),
            )
        elif cell.queued == 0:
            del self._idle[cell_id]
        seq = self._seq
        self._seq = seq + 1
        queue = cell.queues[p]
        first = queue is None
        if queue is None:
            queue = cell.queues[p] = deque()
        queue.append((seq, item, size))
        cell.queued += 1
        self._depth[p] += 1
        self._occupancy += 1
        occupied = self._depth[p] + self._reserved[p]
        if occupied > self._max_depth[p]:
            self._max_depth[p] = occupied
        if first:
            if cell.parked:
                cell.suspended.append(p)
                if p < cell.blocked_priority:  # more urgent than what waits: look again
                    self._unpark(cell)
            else:
                heappush(self._heaps[p], (seq, cell))

    # ---- starting ---------------------------------------------------------------------------

    def ready(self, now: float) -> list[T]:
        """The items that may start now: highest priority first, FIFO within a priority,
        within the hub's rate and each cell's byte budget. A cell short of budget waits
        (with everything behind it in that cell) without holding up other cells."""
        self._wake(now)
        hub = self._hub
        allowance = int(hub.tokens(now) + _EPS)
        out: list[T] = []
        if allowance > 0:
            for p, heap in enumerate(self._heaps):
                if heap:
                    self._start(p, now, allowance, out)
                    if len(out) >= allowance:
                        break
        if out:
            hub.take(now, len(out))
            self._started_window.add(now, len(out))
        self._prune_cells(now)
        self._prune_users(now)
        return out

    def _start(self, p: int, now: float, allowance: int, out: list[T]) -> None:
        heap = self._heaps[p]
        started = 0
        while heap and len(out) < allowance:
            cell = heap[0][1]
            if cell.parked:  # its cell waits for budget for a command ahead of this one
                heappop(heap)
                cell.suspended.append(p)
                continue
            queue = cell.queues[p]
            assert queue is not None
            _, item, size = queue[0]
            budget = cell.budget
            if not budget.take(now, size):
                heappop(heap)
                cell.suspended.append(p)
                self._park(cell, p, now + budget.retry_after(now, size))
                continue
            queue.popleft()
            out.append(item)
            started += 1
            cell.used.add(now, size)
            cell.queued -= 1
            if queue:
                heapreplace(heap, (queue[0][0], cell))
            else:
                heappop(heap)
                cell.queues[p] = None
                if cell.queued == 0:
                    cell.last_used = now
                    self._idle[cell.cell_id] = cell
        self._depth[p] -= started
        self._occupancy -= started
        self._started[p] += started

    def _park(self, cell: _Cell[T], p: int, wake_at: float) -> None:
        wakeup = self._next_wakeup
        self._next_wakeup = wakeup + 1
        cell.parked = wakeup
        cell.blocked_priority = p
        self._waiting += 1
        heappush(self._wakeups, (wake_at, wakeup, cell))

    def _unpark(self, cell: _Cell[T]) -> None:
        cell.parked = 0
        self._waiting -= 1
        for p in cell.suspended:
            queue = cell.queues[p]
            assert queue is not None
            heappush(self._heaps[p], (queue[0][0], cell))
        cell.suspended.clear()
        # wake-ups of cells unparked early stay in the heap until due; keep them few
        if len(self._wakeups) > 2 * self._waiting + 64:
            self._wakeups = [w for w in self._wakeups if w[2].parked == w[1]]
            heapify(self._wakeups)

    def _wake(self, now: float) -> None:
        wakeups = self._wakeups
        while wakeups and wakeups[0][0] <= now:
            _, wakeup, cell = heappop(wakeups)
            if cell.parked == wakeup:
                self._unpark(cell)

    def _prune_cells(self, now: float) -> None:
        # A cell with nothing queued, unused for a window and with a full budget is the
        # same as a cell never seen: forget it. Oldest-emptied first.
        idle = self._idle
        horizon = now - self.config.cell_budget_window_s
        while idle:
            cell = next(iter(idle.values()))
            if cell.last_used > horizon or not cell.budget.is_full(now):
                return
            del idle[cell.cell_id]
            del self._cells[cell.cell_id]

    # ---- observation ------------------------------------------------------------------------

    def depth(self, priority: PriorityClass) -> int:
        """Items queued in this class (reserved places not included)."""
        return self._depth[int(priority)]

    def occupancy(self) -> int:
        """Items queued plus places reserved, over all classes (never above the hub bound)."""
        return self._occupancy

    def load(self, now: float) -> float:
        """Requests offered or commands started per second (the larger), as a share of
        capacity, over the load window."""
        busiest = max(self._offered.total(now), self._started_window.total(now))
        return busiest / (self.config.capacity_per_s * self.config.load_window_s)

    def near_capacity(self, now: float) -> bool:
        """True while user allocations apply."""
        return max(self._offered.total(now), self._started_window.total(now)) >= self._near_rate

    def cell_utilisation(self, cell: str, now: float) -> float:
        """Bytes started towards the cell over the budget window, as a share of its budget."""
        state = self._cells.get(cell)
        if state is None:
            return 0.0
        cfg = self.config
        return state.used.total(now) / (cfg.cell_budget(cell) * cfg.cell_budget_window_s)

    def stats(self, now: float) -> TrafficStats:
        """Depths, counts, load and cell utilisation at ``now``."""
        window = self.config.load_window_s
        offered = self._offered.total(now) / window
        started = self._started_window.total(now) / window
        utilisation: dict[str, float] = {}
        for cell_id in self._cells:
            used = self.cell_utilisation(cell_id, now)
            if used > 0:
                utilisation[cell_id] = used
        return TrafficStats(
            at=now,
            offered_per_s=offered,
            started_per_s=started,
            load=max(offered, started) / self.config.capacity_per_s,
            near_capacity=self.near_capacity(now),
            depth={p: self._depth[p] for p in _CLASSES},
            reserved={p: self._reserved[p] for p in _CLASSES},
            max_depth={p: self._max_depth[p] for p in _CLASSES},
            admitted={p: self._admitted[p] for p in _CLASSES},
            shed={p: self._shed[p] for p in _CLASSES},
            shed_by_reason=dict(self._shed_by_reason),
            started={p: self._started[p] for p in _CLASSES},
            cell_utilisation=utilisation,
            cells_waiting=self._waiting,
            tracked_users=len(self._users),
            tracked_cells=len(self._cells),
        )

    def footprint(self) -> dict[str, int]:
        """Sizes of the internal structures that grow with load (all bounded), for tests
        and dashboards."""
        return {
            "queued": sum(self._depth),
            "reserved": sum(self._reserved),
            "users": len(self._users),
            "cells": len(self._cells),
            "idle_cells": len(self._idle),
            "schedule_entries": sum(len(h) for h in self._heaps),
            "wakeups": len(self._wakeups),
        }

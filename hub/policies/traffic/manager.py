"""Traffic manager: who may queue a command, and which queued commands may start now.

Decides: whether a request is admitted or refused as busy (with a meaningful retry-after),
shedding the lowest priorities first when the hub fills up (a request refused for hub-wide
room displaces the newest queued item of a lower class instead, if there is one) and capping
each user's share while the hub is near capacity; and which queued commands start now,
highest priority first, FIFO within a priority, within the hub's command rate and each WAN
cell's byte budget, and, while commands wait, when the next may start (``next_start``). Lower
classes keep part of each user's allocation and of each cell's budget back for more urgent
work (``user_reserve``, ``cell_reserve``).
Must never: hold more items than its bounds (every queue is bounded, and so is the state kept
per user and per cell); drop an item it has queued silently (an admitted item is started, or,
displaced, handed back by ``take_displaced`` for its caller to answer); open a file or socket,
start a thread, read a clock (``now`` is given), or know what the items it queues are (it is
generic over them).

How the engine uses it (one ``TrafficManager[Dispatch]`` per hub):

1. ``admit(user_id, priority, now)`` after access control and anomaly checks, before the
   request is accepted. ``Busy`` becomes H8 'busy, retry after ``retry_after_s`` s' (nothing
   done, request id not remembered). ``Admitted`` reserves one place in the queue of that
   priority: the engine must then either ``offer`` the item or ``release`` the place. Then
   ``take_displaced()``: queued items of lower classes that admission pushed out to make
   room; each was accepted earlier, so the engine must answer it (busy, retry after).
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

from collections import OrderedDict, deque
from heapq import heapify, heappop, heappush, heapreplace
from typing import Generic, TypeVar

from hub.policies.traffic.budgets import EPS, SlidingCounter, TokenBucket
from hub.policies.traffic.config import CLASSES, TrafficConfig, TrafficError
from hub.policies.traffic.decisions import Admitted, Busy, BusyReason, TrafficStats
from hub.policies.traffic.queues import Cell, check_size
from hub.reference.catalogue import PriorityClass

T = TypeVar("T")


_ADMITTED = tuple(Admitted(p) for p in CLASSES)


class TrafficManager(Generic[T]):
    """Bounded priority queues in front of the WAN, with admission, shedding and shaping."""

    def __init__(self, config: TrafficConfig | None = None) -> None:
        cfg = config or TrafficConfig()
        self.config = cfg
        """The configuration in force."""
        n = len(CLASSES)
        self._bound = [cfg.queue_bounds[p] for p in CLASSES]
        self._shed_level = [cfg.shed_level(p) for p in CLASSES]
        self._user_limited = [p not in cfg.user_exempt for p in CLASSES]
        self._hub = TokenBucket(
            cfg.capacity_per_s,
            cfg.capacity_burst if cfg.capacity_burst is not None else max(1.0, cfg.capacity_per_s),
        )
        self._near_rate = cfg.near_capacity_share * cfg.capacity_per_s * cfg.load_window_s
        self._offered = SlidingCounter(cfg.load_window_s, cfg.window_slots)
        self._started_window = SlidingCounter(cfg.load_window_s, cfg.window_slots)
        self._users: OrderedDict[str, TokenBucket] = OrderedDict()
        self._cells: dict[str, Cell[T]] = {}
        self._idle: OrderedDict[str, Cell[T]] = OrderedDict()
        self._heaps: list[list[tuple[int, Cell[T]]]] = [[] for _ in range(n)]
        self._wakeups: list[tuple[float, int, Cell[T]]] = []
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
        self._displaced: list[T] = []
        self._displaced_count = [0] * n
        self._user_reserve = [cfg.user_reserve.get(p, 0.0) * cfg.user_burst for p in CLASSES]
        self._cell_reserve = [cfg.cell_reserve.get(p, 0.0) for p in CLASSES]

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
        if level is not None and self._occupancy >= level and not self._displace_below(p):
            return self._busy(
                p,
                BusyReason.HUB_FULL,
                (self._occupancy - level + 1) / self.config.capacity_per_s,
                f"hub is shedding {priority.name} requests "
                f"({self._occupancy} of {self.config.hub_bound} places taken)",
            )
        if self._user_limited[p] and self.near_capacity(now):
            bucket = self._user_bucket(user_id)
            reserve = self._user_reserve[p] * bucket.burst / self.config.user_burst
            if not bucket.take(now, 1.0, reserve):
                return self._busy(
                    p,
                    BusyReason.USER_ALLOCATION,
                    bucket.retry_after(now, 1.0, reserve),
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

    def _displace_below(self, p: int) -> bool:
        """Make room for class ``p``: take the newest queued item of the lowest class below
        it out of its queue, to be answered by the caller (``take_displaced``). False if no
        lower class has anything queued."""
        lower = range(len(CLASSES) - 1, p, -1)  # the lowest class first
        return any(self._depth[q] and self._drop_newest(q) for q in lower)

    def _drop_newest(self, q: int) -> bool:
        newest: Cell[T] | None = None
        newest_seq = -1
        for cell in self._cells.values():
            queue = cell.queues[q]
            if queue is not None and queue[-1][0] > newest_seq:
                newest, newest_seq = cell, queue[-1][0]
        if newest is None:
            return False
        cell = newest
        queue = cell.queues[q]
        assert queue is not None
        _, item, _ = queue.pop()
        cell.queued -= 1
        if not queue:  # its scheduling entry (keyed by the head, this item) goes too
            cell.queues[q] = None
            if q in cell.suspended:
                cell.suspended.remove(q)
            else:
                heap = self._heaps[q]
                heap.remove((newest_seq, cell))
                heapify(heap)
            if cell.parked and cell.blocked_priority == q:
                self._unpark(cell)  # it waited for budget for this very item
            if cell.queued == 0:
                self._idle[cell.cell_id] = cell
        self._depth[q] -= 1
        self._occupancy -= 1
        self._displaced_count[q] += 1
        self._displaced.append(item)
        return True

    def take_displaced(self) -> list[T]:
        """Queued items pushed out by admissions since the last call (oldest displacement
        first); they leave the manager here and their caller must answer them."""
        out, self._displaced = self._displaced, []
        return out

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
        check_size(size_bytes)
        self._reserved[p] -= 1
        self._occupancy -= 1
        self._enqueue(item, p, cell, size_bytes)

    def restore(
        self, item: T, priority: PriorityClass, cell: str, size_bytes: int, now: float
    ) -> None:
        """Queue an item accepted before a restart, regardless of the bounds (it was within
        them when accepted; admission stays closed until the queues drain below them)."""
        check_size(size_bytes)
        self._enqueue(item, int(priority), cell, size_bytes)

    def _enqueue(self, item: T, p: int, cell_id: str, size: int) -> None:
        cell = self._cells.get(cell_id)
        if cell is None:
            cfg = self.config
            rate = cfg.cell_budget(cell_id)
            cell = self._cells[cell_id] = Cell(
                cell_id,
                TokenBucket(rate, rate * cfg.cell_budget_window_s),
                SlidingCounter(cfg.cell_budget_window_s, cfg.window_slots),
                [None] * len(CLASSES),
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
        allowance = int(hub.tokens(now) + EPS)
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
            reserve = self._cell_reserve[p] * budget.burst
            if not budget.take(now, size, reserve):
                heappop(heap)
                cell.suspended.append(p)
                self._park(cell, p, now + budget.retry_after(now, size, reserve))
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

    def _park(self, cell: Cell[T], p: int, wake_at: float) -> None:
        wakeup = self._next_wakeup
        self._next_wakeup = wakeup + 1
        cell.parked = wakeup
        cell.blocked_priority = p
        self._waiting += 1
        heappush(self._wakeups, (wake_at, wakeup, cell))

    def _unpark(self, cell: Cell[T]) -> None:
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

    def next_start(self, now: float) -> float | None:
        """When ``ready`` may next start a queued command: ``now`` or the instant the hub's
        rate next allows one, while a cell has a command ready to go; the next wake-up of a
        cell waiting for budget; None when nothing is queued. Costs the heads of the heaps
        (wake-ups found stale are dropped on the way); early, never late."""
        if not any(self._depth):
            return None
        wakeups = self._wakeups
        while wakeups and wakeups[0][2].parked != wakeups[0][1]:
            heappop(wakeups)
        due = wakeups[0][0] if wakeups else None
        if any(self._heaps):
            start = self._hub.whole_token_at(now)
            if due is None or start < due:
                due = start
        return due

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
            depth={p: self._depth[p] for p in CLASSES},
            reserved={p: self._reserved[p] for p in CLASSES},
            max_depth={p: self._max_depth[p] for p in CLASSES},
            admitted={p: self._admitted[p] for p in CLASSES},
            shed={p: self._shed[p] for p in CLASSES},
            shed_by_reason=dict(self._shed_by_reason),
            displaced={p: self._displaced_count[p] for p in CLASSES},
            started={p: self._started[p] for p in CLASSES},
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
            "displaced_unanswered": len(self._displaced),
            "wakeups": len(self._wakeups),
        }

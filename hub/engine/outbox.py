"""Store-and-forward delivery of responses and alerts to service users.

Decides: which held deliveries to push to a user now (while it is online, within its
in-flight window), when to retry an unacknowledged push, when a delivery expires (its hold
time ended: counted and audited, never silently dropped), and what an acknowledgement removes.
Must never: lose an entry it has not been told is acknowledged or expired; send anything
itself (it returns decisions); read the clock (``now`` is given).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_HOLD_S = 2 * 24 * 3600.0
"""How long an undelivered response or alert is held (2 days, configurable)."""
DEFAULT_RETRY_S = 60.0
"""How long a pushed delivery may stay unacknowledged before it is pushed again."""
DEFAULT_MAX_IN_FLIGHT = 1000
"""Pushed-but-unacknowledged deliveries allowed per user."""
COMPACT_SLACK = 10_000
"""Stale timer entries tolerated before the timer heaps are rebuilt."""


class DeliveryKind(StrEnum):
    """What a delivery carries."""

    RESPONSE = "response"
    DEVICE_ALERT = "device_alert"
    HUB_ALERT = "hub_alert"


@dataclass(slots=True)
class Delivery:
    """One held message for one recipient."""

    delivery_id: int
    """Hub-wide unique id; the user acknowledges it by this id."""
    user_id: str
    """The recipient."""
    kind: DeliveryKind
    """Response, device alert or hub alert."""
    payload: bytes
    """The encoded wire message, ready to send."""
    created_at: float
    """When the hub stored it."""
    expires_at: float
    """When its hold time ends."""
    attempts: int = 0
    """How many times it has been pushed."""
    sent_at: float | None = None
    """When it was last pushed (None: not in flight)."""
    request_id: str | None = None
    """The request it answers, if a response."""


@dataclass(frozen=True, slots=True)
class Push:
    """Decision: send this delivery's payload to its user now."""

    delivery: Delivery


@dataclass(frozen=True, slots=True)
class Expired:
    """Decision: this delivery's hold time ended undelivered; remove, count and audit it."""

    delivery: Delivery


@dataclass(slots=True)
class _UserQueue:
    pending: OrderedDict[int, Delivery] = field(default_factory=OrderedDict)
    in_flight: OrderedDict[int, Delivery] = field(default_factory=OrderedDict)
    online: bool = False
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT


class Outbox:
    """Every held delivery, per user, with the push / retry / expiry decisions."""

    def __init__(
        self,
        hold_s: float = DEFAULT_HOLD_S,
        retry_s: float = DEFAULT_RETRY_S,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.hold_s = hold_s
        self.retry_s = retry_s
        self.max_in_flight = max_in_flight
        self._users: dict[str, _UserQueue] = {}
        self._by_id: dict[int, Delivery] = {}
        # timers as heaps with lazy deletion: a popped entry whose delivery has gone (or been
        # pushed again since) is skipped, so tick costs what is due, not what is held
        self._expiries: list[tuple[float, int]] = []
        self._retries: list[tuple[float, int, int]] = []  # (due, delivery id, attempt)
        self.expired_count = 0
        """Deliveries that expired undelivered since start."""

    def __len__(self) -> int:
        return len(self._by_id)

    def holds(self, delivery_id: int) -> bool:
        """True while a delivery is held (not yet acknowledged or expired)."""
        return delivery_id in self._by_id

    def depth(self, user_id: str) -> int:
        """Held deliveries (pending and in flight) for one user."""
        q = self._users.get(user_id)
        return 0 if q is None else len(q.pending) + len(q.in_flight)

    def _queue(self, user_id: str) -> _UserQueue:
        q = self._users.get(user_id)
        if q is None:
            q = self._users[user_id] = _UserQueue(max_in_flight=self.max_in_flight)
        return q

    def _hold(self, delivery: Delivery) -> _UserQueue:
        q = self._queue(delivery.user_id)
        q.pending[delivery.delivery_id] = delivery
        self._by_id[delivery.delivery_id] = delivery
        heapq.heappush(self._expiries, (delivery.expires_at, delivery.delivery_id))
        return q

    def restore(self, delivery: Delivery) -> None:
        """Re-hold a delivery loaded from the store after a restart (not in flight)."""
        delivery.sent_at = None
        self._hold(delivery)

    def discard(self, delivery_id: int) -> None:
        """Drop a delivery as if it had never been made (the undo of an engine step that
        failed); its timer entries go stale and are skipped."""
        d = self._by_id.pop(delivery_id, None)
        if d is None:
            return
        q = self._users[d.user_id]
        q.pending.pop(delivery_id, None)
        q.in_flight.pop(delivery_id, None)

    def add(self, delivery: Delivery, now: float) -> list[Push]:
        """Hold a new delivery and push it at once if the user is online with room."""
        q = self._hold(delivery)
        return self._fill(q, now) if q.online else []

    def online(self, user_id: str, now: float, max_in_flight: int | None = None) -> list[Push]:
        """The user announced itself: everything it has not acknowledged is pushed again."""
        q = self._queue(user_id)
        q.online = True
        if max_in_flight is not None:
            q.max_in_flight = max_in_flight
        # whatever was in flight on an old connection may never have arrived
        for d in reversed(q.in_flight.values()):
            d.sent_at = None
            q.pending[d.delivery_id] = d
            q.pending.move_to_end(d.delivery_id, last=False)
        q.in_flight.clear()
        return self._fill(q, now)

    def offline(self, user_id: str) -> None:
        """The user can no longer be reached; hold everything until it returns."""
        q = self._users.get(user_id)
        if q is None:
            return
        q.online = False
        for d in reversed(q.in_flight.values()):
            d.sent_at = None
            q.pending[d.delivery_id] = d
            q.pending.move_to_end(d.delivery_id, last=False)
        q.in_flight.clear()

    def ack(
        self, user_id: str, delivery_ids: list[int], now: float
    ) -> tuple[list[Delivery], list[Push]]:
        """Remove what the user acknowledged (its own deliveries only; unknown ids are ignored,
        so a repeated ack is harmless) and push what now fits in its window."""
        q = self._users.get(user_id)
        if q is None:
            return [], []
        done = []
        for did in delivery_ids:
            d = self._by_id.get(did)
            if d is None or d.user_id != user_id:
                continue
            q.in_flight.pop(did, None)
            q.pending.pop(did, None)
            del self._by_id[did]
            done.append(d)
        return done, (self._fill(q, now) if q.online else [])

    def tick(self, now: float) -> tuple[list[Push], list[Expired]]:
        """Retry pushes left unacknowledged for ``retry_s``; expire what outlived its hold.
        Costs what is due (heaps), not what is held."""
        pushes: list[Push] = []
        expired: list[Expired] = []
        freed: set[str] = set()
        while self._expiries and self._expiries[0][0] <= now:
            _, did = heapq.heappop(self._expiries)
            d = self._by_id.pop(did, None)
            if d is None:
                continue  # acknowledged meanwhile
            q = self._users[d.user_id]
            if q.in_flight.pop(did, None) is not None:
                freed.add(d.user_id)
            q.pending.pop(did, None)
            expired.append(Expired(d))
        while self._retries and self._retries[0][0] <= now:
            _, did, attempt = heapq.heappop(self._retries)
            d = self._by_id.get(did)
            if d is None or d.attempts != attempt or d.sent_at is None:
                continue  # acknowledged, expired, pushed again or taken back meanwhile
            q = self._users[d.user_id]
            if not q.online or did not in q.in_flight:
                continue
            self._sent(d, now)
            pushes.append(Push(d))
        for user_id in freed:
            q = self._users[user_id]
            if q.online:
                pushes.extend(self._fill(q, now))
        self.expired_count += len(expired)
        self._compact()
        return pushes, expired

    def next_due(self) -> float | None:
        """When ``tick`` next has a retry or an expiry to look at (None: nothing held). Timer
        entries already known to be stale are dropped first, so the answer is the head of live
        work; one found stale only later makes it early, never late."""
        expiries, retries, held = self._expiries, self._retries, self._by_id
        while expiries and expiries[0][1] not in held:
            heapq.heappop(expiries)
        while retries:
            _, did, attempt = retries[0]
            d = held.get(did)
            if d is not None and d.attempts == attempt and d.sent_at is not None:
                break
            heapq.heappop(retries)  # acknowledged, expired, pushed again or taken back
        due = expiries[0][0] if expiries else None
        if retries and (due is None or retries[0][0] < due):
            due = retries[0][0]
        return due

    def _compact(self) -> None:
        """Drop timer entries of deliveries already gone once they outnumber the live ones,
        so memory follows what is held, not what has passed through."""
        if len(self._expiries) > 2 * len(self._by_id) + COMPACT_SLACK:
            self._expiries = [(d.expires_at, did) for did, d in self._by_id.items()]
            heapq.heapify(self._expiries)
        if len(self._retries) > 2 * len(self._by_id) + COMPACT_SLACK:
            self._retries = [
                (d.sent_at + self.retry_s, did, d.attempts)
                for did, d in self._by_id.items()
                if d.sent_at is not None
            ]
            heapq.heapify(self._retries)

    def _sent(self, d: Delivery, now: float) -> None:
        d.sent_at = now
        d.attempts += 1
        heapq.heappush(self._retries, (now + self.retry_s, d.delivery_id, d.attempts))

    def _fill(self, q: _UserQueue, now: float) -> list[Push]:
        pushes = []
        while q.pending and len(q.in_flight) < q.max_in_flight:
            did, d = q.pending.popitem(last=False)
            self._sent(d, now)
            q.in_flight[did] = d
            pushes.append(Push(d))
        return pushes

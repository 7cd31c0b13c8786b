"""Store-and-forward delivery of responses and alerts to service users.

Decides: which held deliveries to push to a user now (while it is online, within its
in-flight window), when to retry an unacknowledged push, when a delivery expires (its hold
time ended: counted and audited, never silently dropped), and what an acknowledgement removes.
It keeps only what scheduling needs, in compact columns (delivery id, user, kind, request id,
expiry, attempts; send times only while in flight): about 50 bytes per held delivery, so a
backlog of millions costs tens of megabytes. Payloads live in the store; a push names its
delivery id and the driver fills the payload from its cache or its store.
Must never: lose an entry it has not been told is acknowledged or expired; hold a payload;
send anything itself (it returns decisions); read the clock (``now`` is given).
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from enum import StrEnum

DEFAULT_HOLD_S = 2 * 24 * 3600.0
"""How long an undelivered response or alert is held (2 days, configurable)."""
DEFAULT_RETRY_S = 60.0
"""How long a pushed delivery may stay unacknowledged before it is pushed again."""
DEFAULT_MAX_IN_FLIGHT = 1000
"""Pushed-but-unacknowledged deliveries allowed per user."""
COMPACT_SLACK = 10_000
"""Stale timer entries (and removed column slots) tolerated before they are rebuilt."""
_MAX_ATTEMPTS = 2**32 - 1  # the attempts column is 32-bit; a count this high stays put


class DeliveryKind(StrEnum):
    """What a delivery carries."""

    RESPONSE = "response"
    DEVICE_ALERT = "device_alert"
    HUB_ALERT = "hub_alert"


_KINDS: tuple[DeliveryKind, ...] = tuple(DeliveryKind)
_KIND_CODE: dict[DeliveryKind, int] = {k: i + 1 for i, k in enumerate(_KINDS)}  # 0: removed


@dataclass(frozen=True, slots=True)
class Held:
    """What the outbox keeps of one held delivery (its payload lives in the store)."""

    delivery_id: int
    """Hub-wide unique id; the user acknowledges it by this id."""
    user_id: str
    """The recipient."""
    kind: DeliveryKind
    """Response, device alert or hub alert."""
    expires_at: float
    """When its hold time ends."""
    request_id: str | None = None
    """The request it answers, if a response."""
    attempts: int = 0
    """How many times it has been pushed (0 after a restart)."""


@dataclass(slots=True)
class Delivery:
    """One held message for one recipient, as it is stored (with its payload)."""

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
    request_id: str | None = None
    """The request it answers, if a response."""

    @property
    def held(self) -> Held:
        """What the outbox keeps of it (everything but the payload and creation time)."""
        return Held(self.delivery_id, self.user_id, self.kind, self.expires_at, self.request_id)


@dataclass(frozen=True, slots=True)
class Push:
    """Decision: send this delivery to its user now (the driver fills in its payload)."""

    delivery: Held
    """The delivery, with the attempt this push is."""


@dataclass(frozen=True, slots=True)
class Expired:
    """Decision: this delivery's hold time ended undelivered; remove, count and audit it."""

    delivery: Held
    """The delivery, with the attempts made."""


@dataclass(slots=True)
class _UserQueue:
    number: int
    """The user's number in the ``user`` column."""
    ids: array[int] = field(default_factory=lambda: array("q"))
    """The user's delivery ids in id order (removed ones linger until compacted)."""
    head: int = 0
    """Position in ``ids`` of the first that may wait to be pushed: those before it are in
    flight or removed, those from it on are pending or removed."""
    in_flight: dict[int, float] = field(default_factory=dict)
    """Pushed and unacknowledged: delivery id -> when last pushed (bounded by the window)."""
    live: int = 0
    """Held deliveries of the user."""
    online: bool = False
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT


class Outbox:
    """Every held delivery, per user, with the push / retry / expiry decisions.

    Columns in delivery id order (ids only grow, so appending keeps them sorted and a lookup
    is a bisection): id, expiry, attempts, kind (0 once removed), user number, request id
    (offsets into one byte arena). Timers are heaps with lazy deletion, so a tick costs what
    is due, not what is held: ``_expiries`` holds (expiry, id) for the earliest held delivery
    in id order that is not yet removed (the head: every later one expires no sooner, as hold
    times are equal and time moves on) and for each delivery that expires before one held
    earlier (a clock step back, a hold time changed across a restart); ``_retries`` holds
    (due, id, attempt) for pushes. Once entries whose delivery has gone are dropped, the head
    of each heap is the earliest time it has something due.
    """

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
        self._names: list[str] = []  # user number -> user id
        self._ids: array[int] = array("q")
        self._exp: array[float] = array("d")
        self._att: array[int] = array("I")
        self._kind = bytearray()
        self._user: array[int] = array("I")
        self._rid_at: array[int] = array("q")  # arena offset of the request id; -1: none
        self._rid_len: array[int] = array("H")
        self._rids = bytearray()
        self._live = 0
        self._cursor = 0  # position of the head (every held delivery before it is removed)
        self._head: int | None = None  # delivery id of the head, None when nothing is held
        self._latest_expiry = float("-inf")
        self._expiries: list[tuple[float, int]] = []
        self._retries: list[tuple[float, int, int]] = []  # (due, delivery id, attempt)
        self.expired_count = 0
        """Deliveries that expired undelivered since start."""

    def __len__(self) -> int:
        return self._live

    def holds(self, delivery_id: int) -> bool:
        """True while a delivery is held (not yet acknowledged or expired)."""
        return self._pos(delivery_id) is not None

    def depth(self, user_id: str) -> int:
        """Held deliveries (pending and in flight) for one user."""
        q = self._users.get(user_id)
        return 0 if q is None else q.live

    def current_retry(self, delivery_id: int, attempt: int) -> bool:
        """True when a retry timer set at push ``attempt`` of this delivery still stands (the
        delivery is held, in flight, and was not pushed again since)."""
        pos = self._pos(delivery_id)
        if pos is None or self._att[pos] != attempt:
            return False
        return delivery_id in self._users[self._names[self._user[pos]]].in_flight

    # ---- columns -------------------------------------------------------------------------

    def _pos(self, delivery_id: int) -> int | None:
        ids = self._ids
        i = bisect_left(ids, delivery_id)
        if i < len(ids) and ids[i] == delivery_id and self._kind[i]:
            return i
        return None

    def _view(self, pos: int) -> Held:
        at = self._rid_at[pos]
        rid = None if at < 0 else self._rids[at : at + self._rid_len[pos]].decode()
        return Held(
            self._ids[pos],
            self._names[self._user[pos]],
            _KINDS[self._kind[pos] - 1],
            self._exp[pos],
            rid,
            self._att[pos],
        )

    def _queue(self, user_id: str) -> _UserQueue:
        q = self._users.get(user_id)
        if q is None:
            q = self._users[user_id] = _UserQueue(
                len(self._names), max_in_flight=self.max_in_flight
            )
            self._names.append(user_id)
        return q

    def _hold(self, held: Held) -> _UserQueue:
        did = held.delivery_id
        if self._ids and did <= self._ids[-1]:
            raise ValueError(f"delivery {did} is not above the last held id {self._ids[-1]}")
        q = self._queue(held.user_id)
        pos = len(self._ids)
        self._ids.append(did)
        self._exp.append(held.expires_at)
        self._att.append(min(held.attempts, _MAX_ATTEMPTS))
        self._kind.append(_KIND_CODE[held.kind])
        self._user.append(q.number)
        if held.request_id is None:
            self._rid_at.append(-1)
            self._rid_len.append(0)
        else:
            rid = held.request_id.encode()
            self._rid_at.append(len(self._rids))
            self._rid_len.append(len(rid))
            self._rids += rid
        q.ids.append(did)
        q.live += 1
        self._live += 1
        if held.expires_at < self._latest_expiry:  # expires before one held earlier
            heapq.heappush(self._expiries, (held.expires_at, did))
        self._latest_expiry = max(self._latest_expiry, held.expires_at)
        if self._head is None:
            self._cursor, self._head = pos, did
            heapq.heappush(self._expiries, (held.expires_at, did))
        return q

    def _remove(self, pos: int, q: _UserQueue) -> None:
        self._kind[pos] = 0
        q.live -= 1
        self._live -= 1
        if self._ids[pos] == self._head:  # the next held one becomes the head
            cursor, kind, n = pos + 1, self._kind, len(self._ids)
            while cursor < n and not kind[cursor]:
                cursor += 1
            self._cursor = cursor
            if cursor < n:
                self._head = self._ids[cursor]
                heapq.heappush(self._expiries, (self._exp[cursor], self._head))
            else:
                self._head = None

    # ---- decisions -----------------------------------------------------------------------

    def restore(self, held: Held) -> None:
        """Re-hold a delivery loaded from the store after a restart (not in flight), in
        delivery id order."""
        self._hold(held)

    def discard(self, delivery_id: int) -> None:
        """Drop a delivery as if it had never been made (the undo of an engine step that
        failed); its timer entries go stale and are skipped."""
        pos = self._pos(delivery_id)
        if pos is None:
            return
        q = self._users[self._names[self._user[pos]]]
        q.in_flight.pop(delivery_id, None)
        self._remove(pos, q)

    def add(self, held: Held, now: float) -> list[Push]:
        """Hold a new delivery and push it at once if the user is online with room."""
        q = self._hold(held)
        return self._fill(q, now) if q.online else []

    def online(self, user_id: str, now: float, max_in_flight: int | None = None) -> list[Push]:
        """The user announced itself: everything it has not acknowledged is pushed again."""
        q = self._queue(user_id)
        q.online = True
        if max_in_flight is not None:
            q.max_in_flight = max_in_flight
        # whatever was in flight on an old connection may never have arrived
        q.in_flight.clear()
        q.head = 0
        return self._fill(q, now)

    def offline(self, user_id: str) -> None:
        """The user can no longer be reached; hold everything until it returns."""
        q = self._users.get(user_id)
        if q is None:
            return
        q.online = False
        q.in_flight.clear()
        q.head = 0

    def ack(
        self, user_id: str, delivery_ids: list[int], now: float
    ) -> tuple[list[Held], list[Push]]:
        """Remove what the user acknowledged (its own deliveries only; unknown ids are ignored,
        so a repeated ack is harmless) and push what now fits in its window."""
        q = self._users.get(user_id)
        if q is None:
            return [], []
        done = []
        for did in delivery_ids:
            pos = self._pos(did)
            if pos is None or self._user[pos] != q.number:
                continue
            q.in_flight.pop(did, None)
            done.append(self._view(pos))
            self._remove(pos, q)
        return done, (self._fill(q, now) if q.online else [])

    def tick(self, now: float) -> tuple[list[Push], list[Expired]]:
        """Retry pushes left unacknowledged for ``retry_s``; expire what outlived its hold.
        Costs what is due (heaps), not what is held."""
        pushes: list[Push] = []
        expired: list[Expired] = []
        freed: set[int] = set()
        while self._expiries and self._expiries[0][0] <= now:
            _, did = heapq.heappop(self._expiries)
            pos = self._pos(did)
            if pos is None or self._exp[pos] > now:
                continue  # acknowledged or expired meanwhile
            q = self._users[self._names[self._user[pos]]]
            if q.in_flight.pop(did, None) is not None:
                freed.add(q.number)
            expired.append(Expired(self._view(pos)))
            self._remove(pos, q)
        while self._retries and self._retries[0][0] <= now:
            _, did, attempt = heapq.heappop(self._retries)
            if not self.current_retry(did, attempt):
                continue  # acknowledged, expired, pushed again or taken back meanwhile
            pos = self._pos(did)
            assert pos is not None
            q = self._users[self._names[self._user[pos]]]
            if not q.online:
                continue
            pushes.append(self._sent(pos, q, now))
        for number in freed:
            q = self._users[self._names[number]]
            if q.online:
                pushes.extend(self._fill(q, now))
        self.expired_count += len(expired)
        self._compact()
        return pushes, expired

    def next_due(self) -> float | None:
        """When ``tick`` next has a retry or an expiry to look at (None: nothing held). Timer
        entries already known to be stale are dropped first, so the answer is the head of live
        work; one found stale only later makes it early, never late."""
        expiries, retries = self._expiries, self._retries
        while expiries and not self.holds(expiries[0][1]):
            heapq.heappop(expiries)
        while retries and not self.current_retry(retries[0][1], retries[0][2]):
            heapq.heappop(retries)  # acknowledged, expired, pushed again or taken back
        due = expiries[0][0] if expiries else None
        if retries and (due is None or retries[0][0] < due):
            due = retries[0][0]
        return due

    # ---- upkeep --------------------------------------------------------------------------

    def _compact(self) -> None:
        """Drop timer entries and column slots of deliveries already gone once they outnumber
        the live ones, so memory follows what is held, not what has passed through."""
        if len(self._expiries) > 2 * self._live + COMPACT_SLACK:
            self._expiries = [(t, did) for t, did in self._expiries if self.holds(did)]
            heapq.heapify(self._expiries)
        if len(self._retries) > 2 * self._live + COMPACT_SLACK:
            self._retries = [r for r in self._retries if self.current_retry(r[1], r[2])]
            heapq.heapify(self._retries)
        if len(self._ids) > 2 * self._live + COMPACT_SLACK:
            self._compact_columns()

    def _compact_columns(self) -> None:
        keep = [i for i, k in enumerate(self._kind) if k]
        rids = bytearray()
        rid_at: array[int] = array("q")
        for i in keep:
            at = self._rid_at[i]
            if at < 0:
                rid_at.append(-1)
            else:
                rid_at.append(len(rids))
                rids += self._rids[at : at + self._rid_len[i]]
        self._ids = array("q", (self._ids[i] for i in keep))
        self._exp = array("d", (self._exp[i] for i in keep))
        self._att = array("I", (self._att[i] for i in keep))
        self._kind = bytearray(self._kind[i] for i in keep)
        self._user = array("I", (self._user[i] for i in keep))
        self._rid_len = array("H", (self._rid_len[i] for i in keep))
        self._rid_at, self._rids = rid_at, rids
        self._cursor = 0  # every slot left is held, the head first
        for q in self._users.values():
            self._compact_queue(q)

    def _compact_queue(self, q: _UserQueue) -> None:
        """Drop the ids of removed deliveries from a user's queue, keeping its head."""
        kept: array[int] = array("q")
        head = 0
        for i, did in enumerate(q.ids):
            if self._pos(did) is not None:
                kept.append(did)
                if i < q.head:
                    head += 1
        q.ids, q.head = kept, head

    def _sent(self, pos: int, q: _UserQueue, now: float) -> Push:
        attempts = min(self._att[pos] + 1, _MAX_ATTEMPTS)
        self._att[pos] = attempts
        did = self._ids[pos]
        q.in_flight[did] = now
        heapq.heappush(self._retries, (now + self.retry_s, did, attempts))
        return Push(self._view(pos))

    def _fill(self, q: _UserQueue, now: float) -> list[Push]:
        if len(q.ids) > 2 * q.live + COMPACT_SLACK:
            self._compact_queue(q)
        pushes = []
        ids = q.ids
        while q.head < len(ids) and len(q.in_flight) < q.max_in_flight:
            did = ids[q.head]
            q.head += 1
            pos = self._pos(did)
            if pos is not None:
                pushes.append(self._sent(pos, q, now))
        return pushes

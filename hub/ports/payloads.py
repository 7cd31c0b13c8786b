"""Payloads of held deliveries for a driver's pushes: a cache bounded in bytes, in front of the
store that holds them all.

Decides: which payloads stay in memory (the most recently made or pushed, up to a byte
budget, so a backlog of any size costs the budget at most), and how a step's pushes get their
payloads (from the step itself, the cache, or one read of the store for the rest).
Must never: grow beyond its budget, keep a payload its delivery no longer needs (acknowledged
or expired), or do I/O itself (the store it is given does).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import replace

from hub.engine import Effects, Send
from hub.ports.store import Store

DEFAULT_CACHE_BYTES = 32 << 20
"""Bytes the cache may take by default (32 MiB)."""
ENTRY_OVERHEAD = 200
"""Bytes counted per cached payload beyond its length: the bytes object's header (33), its int
key (28 to 32), the ordered map's node (32) and its share of the map's arrays (40 to 85, most
just after the map grows), and the allocator's rounding. ``tracemalloc`` measures 140 to 181
before rounding (``tests/test_memory_bounds.py`` holds the count to at least that)."""


class PayloadCache:
    """The payloads of recently made or pushed deliveries, least recently used out first."""

    def __init__(self, store: Store, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        if max_bytes < 0:
            raise ValueError(f"a payload cache of {max_bytes} bytes")
        self._store = store
        self.max_bytes = max_bytes
        """The budget: bytes kept at most, payloads and ``ENTRY_OVERHEAD`` each."""
        self._cached: OrderedDict[int, bytes] = OrderedDict()
        self.bytes = 0
        """Bytes counted now (payloads and ``ENTRY_OVERHEAD`` each)."""
        self.store_reads = 0
        """Payloads read back from the store since start."""

    def __len__(self) -> int:
        return len(self._cached)

    def put(self, delivery_id: int, payload: bytes) -> None:
        """Keep a payload (it becomes the most recently used), evicting the oldest beyond the
        budget; a payload larger than the whole budget is not kept."""
        self.discard(delivery_id)
        size = len(payload) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        self._cached[delivery_id] = payload
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._cached.popitem(last=False)
            self.bytes -= len(old) + ENTRY_OVERHEAD

    def discard(self, delivery_id: int) -> None:
        """Forget a payload (its delivery was acknowledged or expired)."""
        old = self._cached.pop(delivery_id, None)
        if old is not None:
            self.bytes -= len(old) + ENTRY_OVERHEAD

    def made(self, effects: Effects) -> None:
        """Keep the payloads of the deliveries a step made (call once the step is stored)."""
        for d in effects.add_deliveries:
            self.put(d.delivery_id, d.payload)

    def removed(self, effects: Effects) -> None:
        """Forget the payloads of the deliveries a step removed (call after its sends)."""
        for delivery_id in effects.remove_deliveries:
            self.discard(delivery_id)

    def filled(self, sends: list[Send], *, from_store: bool = True) -> Iterator[Send]:
        """The sends of a step, each push with its payload: from the step, else the cache,
        else the store (one read for all the step needs; none when ``from_store`` is False).
        A push whose payload is not found is left out (its delivery was removed meanwhile,
        or the store could not be read: the outbox pushes it again at its retry)."""
        missing = [
            s.delivery_id
            for s in sends
            if s.push and not s.payload and s.delivery_id is not None
            if s.delivery_id not in self._cached
        ]
        read = self._store.payloads(missing) if missing and from_store else {}
        self.store_reads += len(read)
        for s in sends:
            if not s.push or s.payload or s.delivery_id is None:
                yield s
                continue
            payload = self._cached.get(s.delivery_id)
            if payload is not None:
                self._cached.move_to_end(s.delivery_id)
            else:
                payload = read.get(s.delivery_id)
                if payload is None:
                    continue
                self.put(s.delivery_id, payload)
            yield replace(s, payload=payload)

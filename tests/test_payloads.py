"""The payload cache of a driver: bounded in bytes, filled from the store for what it lacks."""

from __future__ import annotations

from hub.engine import Delivery, DeliveryKind, Effects, Send
from hub.ports.memory_store import MemoryStore
from hub.ports.payloads import ENTRY_OVERHEAD, PayloadCache


def _made(*ids: int, size: int = 100) -> Effects:
    return Effects(
        add_deliveries=[
            Delivery(i, "u1", DeliveryKind.RESPONSE, bytes([i % 256]) * size, 0.0, 100.0)
            for i in ids
        ]
    )


def _push(delivery_id: int) -> Send:
    return Send("u1", b"", push=True, delivery_id=delivery_id)


def test_the_cache_never_holds_more_bytes_than_its_budget() -> None:
    store = MemoryStore()
    cache = PayloadCache(store, max_bytes=10 * (100 + ENTRY_OVERHEAD))
    made = _made(*range(1, 101))
    store.apply(made, 1, 101)
    cache.made(made)
    assert len(cache) == 10
    assert cache.bytes <= cache.max_bytes
    cache.put(999, b"x" * (cache.max_bytes + 1))  # larger than the whole budget: not kept
    assert len(cache) == 10


def test_pushes_get_their_payloads_from_the_cache_or_one_read_of_the_store() -> None:
    store = MemoryStore()
    cache = PayloadCache(store, max_bytes=2 * (100 + ENTRY_OVERHEAD))
    made = _made(1, 2, 3, 4)
    store.apply(made, 1, 5)
    cache.made(made)  # only 3 and 4 stay cached
    answer = Send("u1", b"welcome")
    sent = list(cache.filled([answer, _push(1), _push(4), _push(2)]))
    assert sent[0] is answer
    assert [(s.delivery_id, s.payload) for s in sent[1:]] == [
        (1, b"\x01" * 100),
        (4, b"\x04" * 100),
        (2, b"\x02" * 100),
    ]
    assert cache.store_reads == 2


def test_a_push_whose_delivery_is_gone_is_left_out_and_removed_payloads_are_forgotten() -> None:
    store = MemoryStore()
    cache = PayloadCache(store)
    made = _made(1, 2)
    store.apply(made, 1, 3)
    cache.made(made)
    gone = Effects(remove_deliveries=[1])
    store.apply(gone, 1, 3)
    cache.removed(gone)
    assert len(cache) == 1
    cache.discard(2)
    assert [s.delivery_id for s in cache.filled([_push(1), _push(2)])] == [2]
    assert cache.store_reads == 1

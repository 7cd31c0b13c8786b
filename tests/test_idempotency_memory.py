"""What is remembered of a request for idempotency: compact, whatever the request's size, and a
refusal never with its parameters, in memory and in the store."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

from actors.store import SqliteStore
from hub import wire
from hub.engine import Effects, RequestIndex, RequestRecord, RequestState
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from tests.test_engine import T0, _engine
from tests.world import ESME


def _big_refused_frame(request_id: str) -> bytes:
    return wire.encode(
        wire.ServiceRequest(
            request_id=request_id,
            service="4.1.1",
            role=Role.IS,
            device_id=ESME,
            params={"junk": "x" * 100_000},
        )
    )


def test_a_refused_request_is_stored_without_its_parameters_and_still_answers_the_same(
    tmp_path: Path,
) -> None:
    eng = _engine()
    first = eng.on_frame("u-supa", _big_refused_frame("big-1"), T0)
    refusal = wire.decode_from_hub(first.send[0].payload)
    assert isinstance(refusal, wire.Refusal)
    store = SqliteStore(tmp_path / "hub.sqlite")
    store.apply(first, eng.next_seq, eng.next_delivery)
    [saved] = store.load(since=0.0).requests
    assert (saved.state, saved.params, saved.signature) == (RequestState.REFUSED, {}, b"")
    assert len(saved.reply) < 400
    fresh = _engine()
    fresh.restore([saved], [], store.load(since=0.0).next_seq, 1, T0 + 1)
    again = fresh.on_frame("u-supa", _big_refused_frame("big-1"), T0 + 2)
    assert wire.decode_from_hub(again.send[0].payload) == refusal
    other = fresh.on_frame("u-supa", wire.encode(wire.Hello()), T0 + 3)
    assert other.send  # still serving
    store.close()


def test_a_reused_request_id_is_still_told_from_a_resubmission_once_compact() -> None:
    eng = _engine()
    eng.on_frame("u-supa", _big_refused_frame("big-2"), T0)
    reused = wire.encode(
        wire.ServiceRequest(
            request_id="big-2", service="4.1.1", role=Role.IS, device_id=ESME, params={}
        )
    )
    answer = wire.decode_from_hub(eng.on_frame("u-supa", reused, T0 + 1).send[0].payload)
    assert isinstance(answer, wire.Refusal)
    assert answer.code is ResponseCode.H4


def test_a_completed_request_keeps_no_parameters_in_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "hub.sqlite")
    rec = RequestRecord(
        1, "u-supa", "r1", bytes(32), "4.1.1", Role.IS, ESME, {"window_s": 60}, None, T0,
        RequestState.ACCEPTED, wire.encode(wire.Acknowledgement(request_id="r1")), signature=b"sig",
    )  # fmt: skip
    store.apply(Effects(save_requests=[rec]), 2, 1)
    store.apply(Effects(complete_requests=[1]), 2, 1)
    [done] = store.load(since=0.0).requests
    assert (done.state, done.params, done.signature) == (RequestState.COMPLETED, {}, b"")
    store.close()


def test_a_remembered_request_id_costs_under_200_bytes_whatever_the_request_size() -> None:
    eng = _engine()
    frames = [_big_refused_frame(f"big-{i:06d}") for i in range(3)]
    refused = [eng.on_frame("u-supa", f, T0).save_requests[0] for f in frames]
    index = RequestIndex()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(20_000):
            template = refused[i % 3]
            rec = RequestRecord(
                i, "u-supa", f"big-{i:06d}", bytes([i % 256]) * 32, "4.1.1", Role.IS, ESME,
                {"junk": "x" * 10_000}, None, T0 + i, RequestState.REFUSED, template.reply,
            )  # fmt: skip
            index.add(rec)
        del rec
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert index.remembered == 20_000
    assert grown / 20_000 < 200, grown / 20_000


def _refused(seq: int, request_id: str, at: float, reply: bytes) -> RequestRecord:
    return RequestRecord(
        seq, "u-supa", request_id, bytes([seq]) * 32, "4.1.1", Role.IS, ESME, {}, None, at,
        RequestState.REFUSED, reply,
    )  # fmt: skip


def test_what_a_failed_step_added_is_forgotten_and_what_came_before_is_kept() -> None:
    reply = _engine().on_frame("u-supa", _big_refused_frame("x"), T0).save_requests[0].reply
    index = RequestIndex()
    index.add(_refused(1, "before", T0, reply))  # outside any step: kept, not noted
    index.step_begins()
    index.add(_refused(2, "r2", T0 + 0.5, reply))
    index.add(_refused(3, "r3", T0 + 2.5, reply))
    gone = index.discard_since(2)
    index.step_ends()
    assert [r.request_id for r in gone] == ["r3", "r2"]
    assert index.known("u-supa", "r2") is None
    assert index.known("u-supa", "r3") is None
    assert index.known("u-supa", "before") is not None
    assert (index.remembered, index.oldest_remembered_at()) == (1, float(math.ceil(T0)))
    # the forgetting order is intact: the one left goes when due, and nothing else is counted
    assert index.forget(T0 + 9, keep_s=10.0, most=10) == 0
    assert index.remembered == 1
    assert index.forget(T0 + 10, keep_s=10.0, most=10) == 0
    assert (index.remembered, index.oldest_remembered_at()) == (0, None)


def test_a_request_id_is_forgotten_keep_s_after_it_was_received_and_next_due_says_when() -> None:
    reply = _engine().on_frame("u-supa", _big_refused_frame("x"), T0).save_requests[0].reply
    index = RequestIndex()
    index.add(_refused(1, "r1", T0, reply))
    assert index.next_due(T0, timeout_s=60.0, keep_s=100.0, most=10) == T0 + 100
    assert index.next_due(T0, timeout_s=60.0, keep_s=100.0, most=0) == T0  # over the bound
    index.forget(T0 + 99.5, keep_s=100.0, most=10)
    assert index.remembered == 1
    index.forget(T0 + 100, keep_s=100.0, most=10)
    assert index.remembered == 0
    assert index.next_due(T0 + 100, timeout_s=60.0, keep_s=100.0, most=10) is None

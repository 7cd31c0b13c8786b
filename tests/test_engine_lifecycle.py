"""The request lifecycle table: legal moves allowed, illegal ones refused, restore puts a
request back in its state, and docs/design.md carries the rendered table."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.engine import (
    TRANSITIONS,
    IllegalMoveError,
    RequestEvent,
    RequestIndex,
    RequestRecord,
    RequestState,
    lifecycle_markdown,
)
from hub.reference.catalogue import PriorityClass
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role

DESIGN = Path(__file__).resolve().parent.parent / "docs" / "design.md"


def _record(state: RequestState, seq: int = 1, execute_at: float | None = 50.0) -> RequestRecord:
    return RequestRecord(
        seq=seq,
        user_id="u1",
        request_id=f"r{seq}",
        fingerprint=b"",
        service="4.1.1",
        role=Role.IS,
        device_id="D1",
        params={},
        execute_at=execute_at,
        received_at=0.0,
        state=state,
        reply=b"",
        comms_hub="CH1",
        head_end="tlv",
        priority=PriorityClass.ON_DEMAND,
    )


def _placed(state: RequestState) -> tuple[RequestIndex, RequestRecord]:
    """An index holding one request brought into ``state`` by legal moves."""
    index = RequestIndex()
    rec = _record(RequestState.ACCEPTED)
    index.add(rec)
    path = {
        RequestState.ACCEPTED: [],
        RequestState.HELD: [RequestEvent.HOLD],
        RequestState.QUEUED: [RequestEvent.QUEUE],
        RequestState.DISPATCHED: [RequestEvent.QUEUE, RequestEvent.DISPATCH],
        RequestState.TRANSFERRING: [RequestEvent.TRANSFER],
        RequestState.AWAITING_OUTCOME: [RequestEvent.QUEUE, RequestEvent.ANSWER_BEFORE_OUTCOME],
        RequestState.COMPLETED: [RequestEvent.ANSWER],
    }
    if state is RequestState.REFUSED:
        index = RequestIndex()
        rec = _record(RequestState.REFUSED)
        index.add(rec)
        return index, rec
    for event in path[state]:
        index.move(rec, event)
    assert rec.state is state
    return index, rec


@pytest.mark.parametrize(("move", "target"), list(TRANSITIONS.items()))
def test_every_move_in_the_table_is_allowed_and_lands_where_the_table_says(
    move: tuple[RequestState, RequestEvent], target: RequestState
) -> None:
    state, event = move
    index, rec = _placed(state)
    assert index.move(rec, event) is target
    assert rec.state is target


@pytest.mark.parametrize(
    "move",
    [(s, e) for s in RequestState for e in RequestEvent if (s, e) not in TRANSITIONS],
)
def test_every_move_missing_from_the_table_raises_and_changes_nothing(
    move: tuple[RequestState, RequestEvent],
) -> None:
    state, event = move
    index, rec = _placed(state)
    with pytest.raises(IllegalMoveError):
        index.move(rec, event)
    assert rec.state is state


def test_a_request_cannot_be_decided_straight_into_a_later_state() -> None:
    with pytest.raises(IllegalMoveError):
        RequestIndex().add(_record(RequestState.DISPATCHED))


def test_requests_in_flight_count_against_their_comms_hub_until_answered() -> None:
    index, rec = _placed(RequestState.DISPATCHED)
    assert (index.in_flight, index.queued_at("CH1")) == (1, 1)
    index.move(rec, RequestEvent.ANSWER)
    assert (index.in_flight, index.queued_at("CH1")) == (0, 0)
    assert index.get(rec.seq) is None
    assert index.known("u1", "r1") is not None  # its id is still remembered


def test_a_held_request_comes_due_at_its_execution_time_and_not_before() -> None:
    index, rec = _placed(RequestState.HELD)
    assert index.due_held(49.0) == []
    assert index.due_held(50.0) == [rec]


def test_a_dispatched_command_times_out_once() -> None:
    index, rec = _placed(RequestState.DISPATCHED)
    index.dispatched(rec.seq, 10.0)
    assert index.next_timeout(9.0) is None
    assert index.next_timeout(10.0) is rec
    assert index.next_timeout(10.0) is None


def test_an_answer_before_the_outcome_waits_for_it_and_the_outcome_completes_it() -> None:
    index, rec = _placed(RequestState.QUEUED)
    index.await_outcome(rec, 100.0)
    index.move(rec, index.answer_event(rec, ResponseCode.I0))
    assert rec.state is RequestState.AWAITING_OUTCOME
    assert index.outcome_arrived(rec.seq) is rec
    assert rec.state is RequestState.COMPLETED
    assert index.due_outcomes(200.0) == []


@pytest.mark.parametrize("code", [ResponseCode.E20, ResponseCode.E21, ResponseCode.H11])
def test_a_failure_before_the_outcome_ends_the_request_and_no_outcome_is_awaited(
    code: ResponseCode,
) -> None:
    index, rec = _placed(RequestState.DISPATCHED)
    index.await_outcome(rec, 100.0)
    assert index.answer_event(rec, code) is RequestEvent.ANSWER
    index.move(rec, RequestEvent.ANSWER)
    assert rec.state is RequestState.COMPLETED
    assert index.due_outcomes(200.0) == []


def test_a_missed_outcome_comes_due_at_its_deadline() -> None:
    index, rec = _placed(RequestState.AWAITING_OUTCOME)
    index.await_outcome(rec, 100.0)
    assert index.due_outcomes(99.0) == []
    assert index.due_outcomes(100.0) == [rec]
    assert index.answer_event(rec, ResponseCode.I0) is RequestEvent.OUTCOME


@pytest.mark.parametrize(
    ("stored", "restored"),
    [
        (RequestState.ACCEPTED, RequestState.ACCEPTED),
        (RequestState.REFUSED, RequestState.REFUSED),
        (RequestState.COMPLETED, RequestState.COMPLETED),
        (RequestState.AWAITING_OUTCOME, RequestState.AWAITING_OUTCOME),
        (RequestState.COMPLETED, RequestState.AWAITING_OUTCOME),  # inferred (schema 4)
    ],
)
def test_restore_puts_a_stored_request_back_in_its_state(
    stored: RequestState, restored: RequestState
) -> None:
    index = RequestIndex()
    rec = _record(stored)
    index.restore(rec, restored)
    assert rec.state is restored
    assert index.known("u1", "r1") is not None
    assert (index.get(rec.seq) is rec) is not restored.final


@pytest.mark.parametrize(
    ("stored", "restored"),
    [
        (RequestState.ACCEPTED, RequestState.COMPLETED),
        (RequestState.ACCEPTED, RequestState.DISPATCHED),
        (RequestState.ACCEPTED, RequestState.HELD),
        (RequestState.REFUSED, RequestState.ACCEPTED),
        (RequestState.ACCEPTED, RequestState.AWAITING_OUTCOME),
        (RequestState.AWAITING_OUTCOME, RequestState.COMPLETED),
    ],
)
def test_restore_refuses_a_state_the_stored_one_cannot_stand_for(
    stored: RequestState, restored: RequestState
) -> None:
    with pytest.raises(IllegalMoveError):
        RequestIndex().restore(_record(stored), restored)


def test_every_state_persists_as_one_the_store_keeps() -> None:
    kept = {
        RequestState.ACCEPTED,
        RequestState.AWAITING_OUTCOME,
        RequestState.COMPLETED,
        RequestState.REFUSED,
    }
    assert {s.persisted for s in RequestState} == kept


def test_the_design_document_carries_the_lifecycle_table_as_rendered() -> None:
    text = DESIGN.read_text(encoding="utf-8")
    start = text.index("<!-- lifecycle table: begin -->\n") + len(
        "<!-- lifecycle table: begin -->\n"
    )
    end = text.index("<!-- lifecycle table: end -->")
    assert text[start:end] == lifecycle_markdown()

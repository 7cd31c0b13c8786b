"""The SQLite store: one transaction per step, restart data, and purging old requests."""

from __future__ import annotations

from pathlib import Path

from actors.store import SqliteStore
from hub.engine import RequestRecord, RequestState
from tests.test_engine import T0, _engine, _req


def _records(path: Path) -> list[RequestRecord]:
    return SqliteStore(path).load(since=0.0).requests


def test_a_step_is_written_and_read_back_after_a_restart(tmp_path: Path) -> None:
    eng = _engine()
    eff = eng.on_frame("u-supa", _req("r1"), T0)
    store = SqliteStore(tmp_path / "hub.sqlite")
    store.apply(eff, eng.next_seq, eng.next_delivery)
    store.close()
    again = SqliteStore(tmp_path / "hub.sqlite").load(since=0.0)
    assert [r.request_id for r in again.requests] == ["r1"]
    assert again.requests[0].state is RequestState.ACCEPTED
    assert again.next_seq == eng.next_seq


def test_answered_requests_older_than_the_window_are_purged_but_unanswered_ones_stay(
    tmp_path: Path,
) -> None:
    eng = _engine()
    store = SqliteStore(tmp_path / "hub.sqlite")
    answered = eng.on_frame("u-supa", _req("old", service="8.2"), T0)  # answered at once
    pending = eng.on_frame("u-supa", _req("waiting"), T0)  # accepted, no device answer yet
    for eff in (answered, pending):
        store.apply(eff, eng.next_seq, eng.next_delivery)
    assert store.purge_requests(before=T0 + 1) == 1
    store.close()
    assert [r.request_id for r in _records(tmp_path / "hub.sqlite")] == ["waiting"]

"""The SQLite store itself: restart data on a real file, reopening, and read-only reports.

What every store must do is in ``test_store_contract``; these are the file's own properties.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from actors.store import STORE_FILE, SqliteStore, open_store, store_file
from hub.engine import Effects, RequestRecord, RequestState
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


def test_a_second_store_on_the_same_file_keeps_the_schema_and_sees_the_first_ones_records(
    tmp_path: Path,
) -> None:
    eng = _engine()
    first = open_store(tmp_path / "data")
    first.apply(eng.on_frame("u-supa", _req("r1"), T0), eng.next_seq, eng.next_delivery)
    second = open_store(tmp_path / "data")  # the schema script runs again, changing nothing
    try:
        assert [r.request_id for r in second.load(since=0.0).requests] == ["r1"]
    finally:
        second.close()
        first.close()
    assert store_file(tmp_path / "data") == tmp_path / "data" / STORE_FILE


def test_a_report_on_a_data_directory_where_no_hub_ran_is_refused_and_creates_nothing(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError, match="no hub store at"):
        open_store(tmp_path / "nothing", read_only=True)
    assert not (tmp_path / "nothing").exists()


def test_a_read_only_store_sees_what_the_hub_commits_and_cannot_write(tmp_path: Path) -> None:
    eng = _engine()
    with closing(open_store(tmp_path)) as hub_store:
        hub_store.apply(Effects(), 1, 1)
        with closing(open_store(tmp_path, read_only=True)) as report:
            assert report.audit_records() == []
            step = eng.on_frame("u-supa", _req("r1"), T0)
            hub_store.apply(step, eng.next_seq, eng.next_delivery)
            assert report.audit_records(limit=-1, oldest_first=True) == step.audit
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                report.apply(step, eng.next_seq + 1, eng.next_delivery)
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                report.purge_requests(before=T0 + 1)
        assert [r.request_id for r in hub_store.load(since=0.0).requests] == ["r1"]

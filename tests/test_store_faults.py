"""The SQLite store when its storage fails or its file cannot be used: a full store (SQLite's
``PRAGMA max_page_count`` makes one on demand, no root needed) keeps its first error, writes
nothing of the failed batch and works again once there is room; a file that is not a store, a
damaged one or one from a newer hub is refused at open with one line naming it and what to do;
an unversioned store is migrated; the durability level is the one asked for."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from actors.store import (
    SCHEMA_VERSION,
    SqliteStore,
    StoreOpenError,
    Synchronous,
)
from hub.engine import Effects, HubEngine
from hub.ports.store import StoreFailedError
from tests.test_engine import T0, _engine, _req
from tests.test_store_layout import write_schema_1_store


def _batch(eng: HubEngine, prefix: str, count: int) -> Effects:
    """``count`` accepted read requests as one batch."""
    effects = Effects()
    for i in range(count):
        effects.extend(eng.on_frame("u-supa", _req(f"{prefix}{i}"), T0 + i))
    return effects


def _request_ids(path: Path) -> list[str]:
    with closing(SqliteStore(path)) as store:
        return [r.request_id for r in store.load(since=0.0).requests]


def test_a_commit_on_a_full_store_raises_its_first_error_and_writes_nothing_of_the_batch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite"
    eng = _engine()
    store = SqliteStore(path)
    first = _batch(eng, "ok", 3)
    store.apply(first, eng.next_seq, eng.next_delivery)
    store.max_pages(1)  # never below what it holds: full at its present size
    failed = _batch(eng, "lost", 400)
    with pytest.raises(StoreFailedError) as caught:
        store.apply(failed, eng.next_seq, eng.next_delivery)
    assert "full" in str(caught.value), caught.value  # not "no transaction is active"
    assert "SQLITE_FULL" in str(caught.value)
    store.close()
    assert _request_ids(path) == ["ok0", "ok1", "ok2"]


def test_a_full_store_is_usable_again_once_there_is_room_and_takes_the_same_batch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite"
    eng = _engine()
    with closing(SqliteStore(path)) as store:
        default_limit = store.max_pages()
        store.max_pages(1)
        batch = _batch(eng, "r", 400)
        with pytest.raises(StoreFailedError):
            store.apply(batch, eng.next_seq, eng.next_delivery)
        with pytest.raises(StoreFailedError):
            store.probe()
        assert store.max_pages(default_limit) == default_limit
        store.probe()
        store.apply(batch, eng.next_seq, eng.next_delivery)
        saved = [r.request_id for r in batch.save_requests]
        assert [r.request_id for r in store.load(since=0.0).requests] == saved
        assert store.audit_records(limit=-1, oldest_first=True) == batch.audit


def test_a_probe_changes_nothing_a_restart_or_a_report_reads(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    eng = _engine()
    with closing(SqliteStore(path)) as store:
        batch = _batch(eng, "r", 5)
        store.apply(batch, eng.next_seq, eng.next_delivery)
        before = store.load(since=0.0)
        store.probe()
        store.probe()
        assert store.load(since=0.0) == before
        assert store.audit_records(limit=-1, oldest_first=True) == batch.audit


def test_a_file_that_is_not_a_store_is_refused_naming_it_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    path.write_bytes(b"not a database at all " * 200)
    with pytest.raises(StoreOpenError) as caught:
        SqliteStore(path)
    line = str(caught.value)
    assert str(path) in line
    assert "backup" in line
    assert "move it aside" in line
    assert "\n" not in line


def test_a_truncated_store_fails_its_integrity_check_and_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    eng = _engine()
    with closing(SqliteStore(path)) as store:
        store.apply(_batch(eng, "r", 300), eng.next_seq, eng.next_delivery)
    with closing(sqlite3.connect(path)) as db:  # fold the WAL into the file, then cut it
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(StoreOpenError) as caught:
        SqliteStore(path)
    assert str(path) in str(caught.value)
    assert "backup" in str(caught.value)


def test_a_store_written_by_a_newer_hub_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite"
    SqliteStore(path).close()
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    for read_only in (False, True):
        with pytest.raises(StoreOpenError, match="newer version of the hub"):
            SqliteStore(path, read_only=read_only)
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_an_unversioned_store_is_migrated_to_the_current_schema_keeping_its_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite"
    eng = _engine()
    write_schema_1_store(path, _batch(eng, "r", 2).save_requests, version=0)  # no probe table
    with closing(SqliteStore(path)) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [r.request_id for r in store.load(since=0.0).requests] == ["r0", "r1"]
        store.probe()


def test_a_new_store_records_its_schema_version(tmp_path: Path) -> None:
    with closing(SqliteStore(tmp_path / "hub.sqlite")) as store:
        assert store.schema_version == SCHEMA_VERSION


@pytest.mark.parametrize("level", list(Synchronous))
def test_the_store_commits_with_the_durability_asked_for(
    tmp_path: Path, level: Synchronous
) -> None:
    with closing(SqliteStore(tmp_path / "hub.sqlite", synchronous=level)) as store:
        assert store.synchronous_in_force is level


def test_the_default_durability_survives_a_power_cut(tmp_path: Path) -> None:
    with closing(SqliteStore(tmp_path / "hub.sqlite")) as store:
        assert store.synchronous_in_force is Synchronous.FULL

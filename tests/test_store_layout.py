"""The SQLite store's layout: what a remembered request costs in the file (schema 2 keeps a
final one in about 130 bytes, whatever the request's size), the migration of a schema 1 store
(every request kept, final ones made compact), and the audit trail read newest first from the
end of an index, never sorted whole."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest

from actors import store as store_module
from actors.store import SCHEMA, SCHEMA_VERSION, SqliteStore
from hub import wire
from hub.engine import Effects, RequestRecord, RequestState
from hub.ports.store import StoreConflictError, compact
from hub.reference.codes import ResponseCode
from tests.test_engine import T0, _engine, _req
from tests.test_store_contract import _audit, _request
from tests.world import ESME

REMEMBERED_BYTES_GOAL = 150
"""What one remembered request may cost in the file (issue 9: about 150 bytes)."""


def _table_bytes(path: Path, table: str) -> int:
    """Bytes of a table's pages and of its indexes' pages (SQLite's ``dbstat``)."""
    with closing(sqlite3.connect(path)) as db:
        (size,) = db.execute(
            "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat WHERE name IN "
            "(SELECT name FROM sqlite_master WHERE tbl_name = ?)",
            (table,),
        ).fetchone()
    return int(size)


def write_schema_1_store(path: Path, requests: list[RequestRecord], version: int = 1) -> None:
    """A store as schema 1 wrote it (``version`` 0: as stores were before versions were
    recorded, without the probe table), holding ``requests``."""
    with closing(sqlite3.connect(path)) as db:
        db.executescript(SCHEMA)
        db.executemany(
            "INSERT INTO requests VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    r.seq,
                    r.user_id,
                    r.request_id,
                    r.fingerprint,
                    r.service,
                    r.role.value,
                    r.device_id,
                    msgpack.packb(r.params if open_ else {}, use_bin_type=True),
                    r.execute_at,
                    r.received_at,
                    r.state.persisted.value,
                    r.reply,
                    r.comms_hub,
                    r.head_end,
                    r.signature if open_ else b"",
                    int(r.scheduled),
                )
                for r in requests
                for open_ in (r.state.persisted is RequestState.ACCEPTED,)
            ],
        )
        db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("next_seq", max(r.seq for r in requests) + 1), ("next_delivery", 1)],
        )
        if not version:
            db.execute("DROP TABLE probe")
        db.execute(f"PRAGMA user_version={version}")
        db.commit()


def _refusal(request_id: str, reason: str) -> bytes:
    return wire.encode(
        wire.Refusal(
            request_id=request_id, code=ResponseCode.E12, reason=reason, retry_after_s=None
        )
    )


def test_a_remembered_request_costs_about_150_bytes_in_the_store_whatever_its_size(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite"
    count = 3000
    big = {"junk": "x" * 20_000, **{f"k{i}": "v" * 200 for i in range(20)}}
    with closing(SqliteStore(path)) as store:
        for start in range(1, count + 1, 500):
            refused = [
                _request(
                    seq,
                    request_id=f"fz-{seq:08d}-{seq * 2654435761 % 2**32:08x}",  # 20 characters
                    params=big,
                    fingerprint=bytes(32),
                    signature=b"s" * 512,
                    state=RequestState.REFUSED,
                    reply=_refusal(f"fz-{seq:08d}", "E12: unknown parameter"),
                )
                for seq in range(start, start + 500)
            ]
            store.apply(Effects(save_requests=refused), start + 500, 1)
    per_request = _table_bytes(path, "requests") / count
    assert per_request <= REMEMBERED_BYTES_GOAL


def test_an_answered_request_loses_its_parameters_and_keeps_its_route_only_while_awaiting(
    tmp_path: Path,
) -> None:
    plain = _request(1)
    dated = _request(2, execute_at=T0 + 86400)
    with closing(SqliteStore(tmp_path / "hub.sqlite")) as store:
        store.apply(Effects(save_requests=[plain, dated]), 3, 1)
        store.apply(Effects(complete_requests=[1], await_requests=[2]), 3, 1)
        loaded = store.load(since=0.0).requests
        assert loaded == [
            compact(replace(plain, state=RequestState.COMPLETED)),
            compact(replace(dated, state=RequestState.AWAITING_OUTCOME)),
        ]
        assert (loaded[0].params, loaded[0].signature, loaded[0].device_id) == ({}, b"", None)
        assert (loaded[1].params, loaded[1].signature) == ({}, b"")
        assert (loaded[1].device_id, loaded[1].comms_hub, loaded[1].head_end) == (
            ESME,
            "CHF-1",
            "tlv",
        )
        store.apply(Effects(complete_requests=[2]), 3, 1)  # its outcome came
        done = store.load(since=0.0).requests[1]
    assert done.state is RequestState.COMPLETED
    assert (done.device_id, done.comms_hub, done.head_end) == (None, None, None)


@pytest.mark.parametrize("version", [0, 1])
def test_a_schema_1_store_is_migrated_keeping_every_request_and_its_first_answer(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "hub.sqlite"
    long_reason = "E12: " + "unknown parameter k, " * 20
    old = [
        _request(1),  # still owed an answer: kept whole
        _request(2, state=RequestState.COMPLETED),
        _request(3, state=RequestState.REFUSED, reply=_refusal("r3", long_reason)),
        _request(4, state=RequestState.COMPLETED, reply=b""),  # a schedule firing
    ]
    write_schema_1_store(path, old, version)
    with closing(SqliteStore(path)) as store:
        assert store.schema_version == SCHEMA_VERSION
        loaded = store.load(since=0.0)
        assert loaded.requests == [compact(r) for r in old]
        assert loaded.requests[0] == old[0]
        assert loaded.next_seq == 5
        store.probe()
    with closing(sqlite3.connect(path)) as db:
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"audit_user", "audit_device"} <= indexes
    assert not {"requests_state", "audit_user_at", "audit_device_at"} & indexes


def test_a_migrated_store_still_refuses_a_request_id_reused_and_repeats_its_first_answer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite"
    eng = _engine()
    first = eng.on_frame("u-supa", _req("r1"), T0)
    write_schema_1_store(path, first.save_requests)
    with closing(SqliteStore(path)) as store:
        restored = store.load(since=0.0)
    fresh = _engine()
    fresh.restore(restored.requests, [], restored.next_seq, restored.next_delivery, T0 + 1)
    again = fresh.on_frame("u-supa", _req("r1"), T0 + 2)
    assert [s.payload for s in again.send] == [s.payload for s in first.send]


@pytest.mark.parametrize(
    "where",
    [
        {},
        {"user_id": "u-supa"},
        {"device_id": ESME},
        {"user_id": "u-supa", "device_id": ESME},
    ],
)
def test_the_newest_audit_records_are_read_from_an_index_without_sorting_the_trail(
    tmp_path: Path, where: dict[str, str]
) -> None:
    path = tmp_path / "hub.sqlite"
    with closing(SqliteStore(path)) as store:
        store.apply(Effects(audit=[_audit(T0 + i, "u-supa", ESME) for i in range(50)]), 1, 1)
        newest = store.audit_records(limit=3, **where)  # type: ignore[arg-type]
    assert [r.at for r in newest] == [T0 + 49, T0 + 48, T0 + 47]
    # the shape of the store's query: equality filters, the newest first, a limit
    clauses = " AND ".join(f"{column} = ?" for column in where) or "1"
    with closing(sqlite3.connect(path)) as db:
        plan = db.execute(
            f"EXPLAIN QUERY PLAN SELECT * FROM audit WHERE {clauses} ORDER BY id DESC LIMIT 3",
            list(where.values()),
        ).fetchall()
    steps = " / ".join(str(step[-1]) for step in plan)
    assert "TEMP B-TREE" not in steps, steps


def test_reasons_beyond_the_shared_ones_stay_with_their_request_and_all_load_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_SHARED_REASONS", 2)
    refused = [
        _request(
            seq, state=RequestState.REFUSED, reply=_refusal(f"r{seq}", f"E12: reason {seq % 4}")
        )
        for seq in range(1, 9)
    ]
    path = tmp_path / "hub.sqlite"
    with closing(SqliteStore(path)) as store:
        store.apply(Effects(save_requests=refused[:4]), 5, 1)
        store.apply(Effects(save_requests=refused[4:]), 9, 1)
    with closing(SqliteStore(path)) as store:
        assert store.load(since=0.0).requests == [compact(r) for r in refused]
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM reasons").fetchone() == (2,)
        assert db.execute("SELECT count(*) FROM requests WHERE reason_id IS NULL").fetchone() == (
            4,
        )


def test_a_reason_first_seen_in_a_batch_that_failed_is_kept_again_by_the_next(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.sqlite"
    reply = _refusal("r2", "E12: first seen here")
    with closing(SqliteStore(path)) as store:
        store.apply(Effects(save_requests=[_request(1)]), 2, 1)
        with pytest.raises(StoreConflictError):  # seq 1 again: nothing of the batch is applied
            store.apply(
                Effects(
                    save_requests=[
                        _request(2, reply=reply, state=RequestState.REFUSED),
                        _request(1),
                    ]
                ),
                3,
                1,
            )
        later = _request(3, request_id="r3", reply=reply, state=RequestState.REFUSED)
        store.apply(Effects(save_requests=[later]), 4, 1)
    with closing(SqliteStore(path)) as store:
        assert store.load(since=0.0).requests == [_request(1), compact(later)]

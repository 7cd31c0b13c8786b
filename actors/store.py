"""The embedded default store: one SQLite file (WAL) for requests, deliveries and audit.

Decides: the schema and its version (``PRAGMA user_version``: an older store is migrated when
opened, a newer one refused), how compactly a request is kept (schema 2: what
``hub.ports.store.compact`` keeps, a digest as its unique key, shared reasons: about 130 bytes
per remembered request whatever its size), how one step's effects become one transaction (group commit: the
front door applies a whole batch of decisions at once, then sends), how durable a commit is
(``Synchronous``: FULL by default, so an acknowledged request survives a power cut), what a
failed commit raises (``StoreFailedError`` with the first error; the connection stays usable),
how a damaged or foreign file is refused at open (``StoreOpenError`` naming the file and what
to do), the file's name under a data directory, how reports open it read-only, and what a
row of an older schema stands for (schema 4 did not record which future-dated completed
requests still awaited their outcome: those rows are marked so, for the engine to decide).
It implements ``hub.ports.Store``.
Must never: decide anything about a request; it records what the engine decided. A writable
store is used from one thread only (the front door's), so it keeps a single connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import msgpack

from hub.engine import AuditKind, AuditRecord, Direction, Effects, RequestRecord, RequestState
from hub.engine.lifecycle import MAX_SHARED_REASONS, REMEMBERED_FINGERPRINT_BYTES
from hub.engine.outbox import DeliveryKind, Held
from hub.flows.schedules import Schedule
from hub.policies.sla import SlaRecord
from hub.ports.store import (
    KEPT_WHOLE,
    OPEN_STATES,
    Restored,
    Store,
    StoreConflictError,
    StoreFailedError,
    answer_bytes,
    compact,
    first_answer,
)
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.registers.change_records import change_from_record, change_record
from hub.registers.changes import StoredChange
from hub.registers.inventory import InventoryChange

log = logging.getLogger(__name__)

STORE_FILE = "hub.sqlite"
"""The store's file name inside a data directory."""
PROBE_BYTES = 1 << 20
"""What ``probe`` writes (then removes) to check the file takes a large batch again: 1 MiB."""
_UNIQUE_FAILURES = frozenset({"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"})
_STATES: tuple[RequestState, ...] = (
    RequestState.ACCEPTED,
    RequestState.COMPLETED,
    RequestState.REFUSED,
    RequestState.AWAITING_OUTCOME,
)
"""The persisted request states, by the number the ``requests`` table keeps (schema 2; 3,
awaiting outcome, since schema 5)."""
_STATE_NUMBERS = {state: number for number, state in enumerate(_STATES)}
_UNRECORDED = len(_STATES)
"""The state number of a request a hub of schema 4 or before kept completed while it was
future dated: whether it still awaited its outcome was not recorded (``OUTCOMES_SCHEMA``).
Loaded completed, its seq listed in ``Restored.outcome_unrecorded``."""
_LOADED_STATES = (*_STATES, RequestState.COMPLETED)  # by number, _UNRECORDED included
_OPEN = tuple(sorted(_STATE_NUMBERS[s] for s in OPEN_STATES))
_OPEN_IN = "(" + ",".join("?" * len(_OPEN)) + ")"
_COMPLETED = _STATE_NUMBERS[RequestState.COMPLETED]
_AWAITING = _STATE_NUMBERS[RequestState.AWAITING_OUTCOME]
_REQUEST_COLUMNS = (
    "seq, key, user_id, request_id, fingerprint, service, role, received_at, state, code, "
    "reason_id, reason, execute_at, device_id, comms_hub, head_end, params, signature, "
    "scheduled"
)
_LOADED_COLUMNS = (  # as _REQUEST_COLUMNS, a shared reason read from ``reasons``
    "seq, key, user_id, request_id, fingerprint, service, role, received_at, state, code, "
    "requests.reason_id, coalesce(requests.reason, reasons.reason), execute_at, device_id, "
    "comms_hub, head_end, params, signature, scheduled"
)
_MARKS = ",".join("?" * len(_REQUEST_COLUMNS.split(",")))
_MIGRATE_AT_ONCE = 2000  # requests converted per statement by the schema 2 migration
_KINDS = {k.value: k for k in DeliveryKind}
_PAYLOADS_AT_ONCE = 500  # ids per query (below SQLite's bound on parameters)
_WHAT_TO_DO = (
    "restore it from a backup, or move it aside to start with an empty store "
    "(what it held is then lost)"
)


class Synchronous(StrEnum):
    """How durable a commit is (SQLite's ``PRAGMA synchronous`` in WAL mode)."""

    FULL = "full"
    """The WAL is synced at every commit: an acknowledged request survives a power cut or an
    operating-system crash (the default)."""
    NORMAL = "normal"
    """The WAL is synced only at checkpoints: a commit survives the hub process being killed,
    but the last commits before a power cut or an operating-system crash may be lost."""


class StoreOpenError(Exception):
    """The store's file cannot be used: not a SQLite file, damaged (it fails ``PRAGMA
    quick_check``), or written by a newer version of the hub. ``str()`` is one line naming the
    file and what to do."""

    def __init__(self, path: Path, problem: str, what_to_do: str = _WHAT_TO_DO) -> None:
        super().__init__(f"cannot open the store {path}: {problem}; {what_to_do}")
        self.path = path
        """The file."""
        self.problem = problem
        """What is wrong with it."""


SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    service TEXT NOT NULL,
    role TEXT NOT NULL,
    device_id TEXT,
    params BLOB NOT NULL,
    execute_at REAL,
    received_at REAL NOT NULL,
    state TEXT NOT NULL,
    reply BLOB NOT NULL,
    comms_hub TEXT,
    head_end TEXT,
    signature BLOB NOT NULL,
    scheduled INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, request_id)
);
CREATE TABLE IF NOT EXISTS schedules (schedule_id TEXT PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS transfers (seq INTEGER PRIMARY KEY, next_block INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    request_id TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    direction TEXT NOT NULL,
    user_id TEXT,
    kind TEXT NOT NULL,
    request_id TEXT,
    service TEXT,
    device_id TEXT,
    code TEXT,
    reason TEXT NOT NULL,
    delivery_id INTEGER
);
CREATE INDEX IF NOT EXISTS audit_user_at ON audit (user_id, at);
CREATE INDEX IF NOT EXISTS audit_device_at ON audit (device_id, at);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE TABLE IF NOT EXISTS sla (
    service TEXT NOT NULL,
    user_id TEXT NOT NULL,
    started_at REAL NOT NULL,
    responded_at REAL NOT NULL,
    target_s REAL NOT NULL,
    code TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sla_responded ON sla (responded_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS probe (filler BLOB NOT NULL);
"""
"""Schema version 1. Stores written before versions were recorded have ``user_version`` 0 and
every table but ``probe``: running this script on them is their migration to version 1."""

REQUESTS_2 = """
CREATE TABLE requests_2 (
    seq INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    service TEXT NOT NULL,
    role TEXT NOT NULL,
    received_at REAL NOT NULL,
    state INTEGER NOT NULL,
    code TEXT,
    reason_id INTEGER,
    reason TEXT,
    execute_at REAL,
    device_id TEXT,
    comms_hub TEXT,
    head_end TEXT,
    params BLOB,
    signature BLOB,
    scheduled INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reasons (reason_id INTEGER PRIMARY KEY, reason TEXT NOT NULL UNIQUE);
DROP INDEX IF EXISTS audit_user_at;
DROP INDEX IF EXISTS audit_device_at;
CREATE INDEX IF NOT EXISTS audit_user ON audit (user_id);
CREATE INDEX IF NOT EXISTS audit_device ON audit (device_id);
"""
"""Schema version 2: requests kept compactly, about 130 bytes per remembered request whatever
the request's size (with an id of 20 characters; each character more costs one byte):

- ``key``: a 16-byte digest of (user id, request id), unique: the idempotency key, indexed
  once instead of both texts;
- ``state``: the persisted state as a number (``_STATES``); no index (a restart and a purge
  read the table through);
- ``code`` and ``reason``: the first answer as ``hub.ports.store.first_answer`` keeps it
  (the reason NULL when it is the code's meaning), instead of its encoded bytes; the first
  ``MAX_SHARED_REASONS`` distinct reasons are kept once, in ``reasons``, and a request
  holds the number (``reason_id``) instead of the text;
- once final: ``fingerprint`` cut to its first 16 bytes, ``params`` and ``signature`` NULL,
  and ``device_id``, ``comms_hub``, ``head_end`` NULL unless the request is future dated.

The audit trail is indexed by user and by device alone (SQLite orders each by rowid), so the
newest records of a user or device are read from the end of the index, without a sort."""


def _requests_2(db: sqlite3.Connection) -> None:
    """Migration to schema 2: ``REQUESTS_2``, every request converted, the old table gone."""
    for statement in REQUESTS_2.split(";"):
        if statement.strip():
            db.execute(statement)
    reasons = _Reasons(db)
    rows = db.execute(
        "SELECT seq, user_id, request_id, fingerprint, service, role, device_id, params, "
        "execute_at, received_at, state, reply, comms_hub, head_end, signature, scheduled "
        "FROM requests ORDER BY seq"
    )
    while chunk := rows.fetchmany(_MIGRATE_AT_ONCE):
        db.executemany(
            f"INSERT INTO requests_2 ({_REQUEST_COLUMNS}) VALUES ({_MARKS})",
            [
                _request_row(
                    RequestRecord(
                        seq=r[0],
                        user_id=r[1],
                        request_id=r[2],
                        fingerprint=r[3],
                        service=r[4],
                        role=Role(r[5]),
                        device_id=r[6],
                        params=msgpack.unpackb(r[7], raw=False),
                        execute_at=r[8],
                        received_at=r[9],
                        state=RequestState(r[10]),
                        reply=r[11],
                        comms_hub=r[12],
                        head_end=r[13],
                        signature=r[14],
                        scheduled=bool(r[15]),
                    ),
                    reasons,
                )
                for r in chunk
            ],
        )
    reasons.committed()
    db.execute("DROP TABLE requests")  # and its indexes
    db.execute("ALTER TABLE requests_2 RENAME TO requests")


Migration = str | Callable[[sqlite3.Connection], None]
"""One schema step: a script of statements, or a function given the connection."""

REGISTER_CHANGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS register_changes (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL,
    done INTEGER NOT NULL
);
"""
"""Schema version 3: the register changes applied (``hub.registers.changes``), in the order
first applied, as JSON records, with whether their effective day has been carried out."""

INVENTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS inventory_changes (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    device_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    mpxn TEXT NOT NULL,
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS inventory_changes_device ON inventory_changes (device_id);
CREATE INDEX IF NOT EXISTS inventory_changes_site ON inventory_changes (site_id);
CREATE INDEX IF NOT EXISTS inventory_changes_mpxn ON inventory_changes (mpxn);
"""
"""Schema version 4: the inventory changes a running hub made, in order (``id``)."""

OUTCOMES_SCHEMA = f"""
UPDATE requests SET state = {_UNRECORDED} WHERE state = {_COMPLETED} AND execute_at IS NOT NULL;
"""
"""Schema version 5: a request awaiting its Device-pattern outcome is stored as such (state 3,
its device, comms hub and head-end kept; they are dropped once it completes), so a restart
awaits exactly those. Schema 4 stored them completed and a restart inferred the wait for
every completed future-dated one, a failed one too; which of those still awaited is not in
the file, so each is marked ``_UNRECORDED`` and the engine applies that old rule to these
alone, once (its restore effects store each as it decided)."""

MIGRATIONS: tuple[Migration, ...] = (
    SCHEMA,
    _requests_2,
    REGISTER_CHANGES_SCHEMA,
    INVENTORY_SCHEMA,
    OUTCOMES_SCHEMA,
)
"""``MIGRATIONS[n]`` takes a store from version ``n`` to ``n + 1`` (0: a new or unversioned
store); each runs in the same transaction as the version it records."""
SCHEMA_VERSION = len(MIGRATIONS)
"""The schema this code reads and writes, kept in the file as ``PRAGMA user_version``."""


def _key(user_id: str, request_id: str) -> bytes:
    """The 16-byte idempotency key the ``requests`` table keeps unique."""
    both = f"{user_id}\x00{request_id}".encode()
    return hashlib.blake2b(both, digest_size=16, person=b"dcc-hub-store").digest()


class _Reasons:
    """The reasons a store keeps once (the ``reasons`` table), by their numbers: the first
    ``MAX_SHARED_REASONS`` distinct ones; later ones stay inline in their request's row."""

    def __init__(self, db: sqlite3.Connection, known: bool = True) -> None:
        """The reasons of this connection's store (``known``: read those it holds; a report's
        read-only view, which never adds any, need not)."""
        self._db = db
        self._numbers: dict[str, int] = (
            dict(db.execute("SELECT reason, reason_id FROM reasons")) if known else {}
        )
        self._pending: dict[str, int] = {}  # added by the transaction under way

    def number(self, reason: str) -> int | None:
        """The number of a reason, added to ``reasons`` if there is room (None: none)."""
        number = self._numbers.get(reason) or self._pending.get(reason)
        if number is None and len(self._numbers) + len(self._pending) < MAX_SHARED_REASONS:
            self._db.execute(
                "INSERT INTO reasons (reason) VALUES (?) ON CONFLICT (reason) DO NOTHING",
                (reason,),
            )
            (number,) = self._db.execute(
                "SELECT reason_id FROM reasons WHERE reason = ?", (reason,)
            ).fetchone()
            self._pending[reason] = number
        return number

    def committed(self) -> None:
        """The transaction that added the pending reasons committed: they are known."""
        self._numbers.update(self._pending)
        self._pending.clear()

    def rolled_back(self) -> None:
        """The transaction that added the pending reasons failed: they are gone."""
        self._pending.clear()


def _request_row(rec: RequestRecord, reasons: _Reasons) -> tuple[object, ...]:
    """The ``requests`` row of a request: what ``compact`` keeps of it."""
    r = compact(rec)
    code, reason = first_answer(r.reply)
    reason_id = None if reason is None else reasons.number(reason)
    whole = r.state in KEPT_WHOLE
    return (
        r.seq,
        _key(r.user_id, r.request_id),
        r.user_id,
        r.request_id,
        r.fingerprint,
        r.service,
        r.role.value,
        r.received_at,
        _STATE_NUMBERS[r.state],
        None if code is None else code.value,
        reason_id,
        None if reason_id is not None else reason,
        r.execute_at,
        r.device_id,
        r.comms_hub,
        r.head_end,
        msgpack.packb(r.params, use_bin_type=True) if whole else None,
        r.signature if whole else None,
        int(r.scheduled),
    )


def _request_of(r: Any) -> RequestRecord:
    """The request a loaded row holds (columns as ``_LOADED_COLUMNS``)."""
    code = None if r[9] is None else ResponseCode(r[9])
    return RequestRecord(
        seq=r[0],
        user_id=r[2],
        request_id=r[3],
        fingerprint=r[4],
        service=r[5],
        role=Role(r[6]),
        received_at=r[7],
        state=_LOADED_STATES[r[8]],
        reply=answer_bytes(r[3], code, r[11]),
        execute_at=r[12],
        device_id=r[13],
        comms_hub=r[14],
        head_end=r[15],
        params={} if r[16] is None else msgpack.unpackb(r[16], raw=False),
        signature=b"" if r[17] is None else r[17],
        scheduled=bool(r[18]),
    )


def store_file(data_dir: Path) -> Path:
    """Where the store of a data directory lives."""
    return data_dir / STORE_FILE


def open_store(
    data_dir: Path, read_only: bool = False, synchronous: Synchronous = Synchronous.FULL
) -> Store:
    """The store of a data directory: writable (created if absent) for the hub, or read-only
    for reports (``FileNotFoundError`` when the hub never ran there)."""
    return SqliteStore(store_file(data_dir), read_only=read_only, synchronous=synchronous)


class SqliteStore(Store):
    """Requests, deliveries and audit in one SQLite file (the default ``Store``)."""

    def __init__(
        self, path: Path, read_only: bool = False, synchronous: Synchronous = Synchronous.FULL
    ) -> None:
        """Open (or create) the file. A writable store is checked (``PRAGMA quick_check``) and
        migrated to ``SCHEMA_VERSION``; ``StoreOpenError`` if it cannot be used."""
        self.path = path
        self.read_only = read_only
        """A report's view: every write raises ``sqlite3.OperationalError`` (readonly)."""
        self.synchronous = synchronous
        """How durable each commit is."""
        if read_only:
            if not path.exists():
                raise FileNotFoundError(f"no hub store at {path}")
            self._db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            self._open(read_only)
            self._reasons = _Reasons(self._db, known=not read_only)
        except BaseException:
            self._db.close()
            raise
        self._next_seq = 1
        self._next_delivery = 1

    def _open(self, read_only: bool) -> None:
        db = self._db
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreOpenError(
                    self.path,
                    f"it was written by a newer version of the hub (schema {version}; this one "
                    f"reads up to {SCHEMA_VERSION})",
                    "run the hub version that wrote it, or restore a backup made by this one",
                )
            if read_only:
                return
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.synchronous.name}")
            problems = [r[0] for r in db.execute("PRAGMA quick_check(5)").fetchall()]
            if problems != ["ok"]:
                raise StoreOpenError(
                    self.path, "it fails its integrity check: " + "; ".join(problems)[:300]
                )
            if version < SCHEMA_VERSION:
                self._migrate(version)
        except sqlite3.DatabaseError as err:
            raise StoreOpenError(self.path, str(err)) from err

    def _migrate(self, version: int) -> None:
        """Run the migrations from ``version`` up to ``SCHEMA_VERSION`` in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for step in MIGRATIONS[version:SCHEMA_VERSION]:
                if callable(step):
                    step(db)
                    continue
                for statement in step.split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if version:
            log.warning(
                "store %s migrated from schema %d to %d", self.path, version, SCHEMA_VERSION
            )

    @property
    def synchronous_in_force(self) -> Synchronous:
        """The durability the connection really uses (read back from SQLite)."""
        level = int(self._db.execute("PRAGMA synchronous").fetchone()[0])
        return Synchronous.FULL if level >= 2 else Synchronous.NORMAL

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the file."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def max_pages(self, pages: int | None = None) -> int:
        """Limit the file to ``pages`` pages (never below what it holds; None: leave the limit)
        and return the limit in force. Lowering it makes the store full on demand: the test
        hook for a full disk."""
        if pages is not None:
            self._db.execute(f"PRAGMA max_page_count={int(pages)}")
        return int(self._db.execute("PRAGMA max_page_count").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def load(self, since: float) -> Restored:
        """Requests received since ``since`` or still open, and every held delivery."""
        try:
            return self._load(since)
        except sqlite3.OperationalError as err:
            raise StoreFailedError(f"{err} ({err.sqlite_errorname})") from err

    def _load(self, since: float) -> Restored:
        requests: list[RequestRecord] = []
        unrecorded: list[int] = []  # stored by schema 4: awaiting their outcome or not
        for r in self._db.execute(
            f"SELECT {_LOADED_COLUMNS} FROM requests LEFT JOIN reasons USING (reason_id) "
            f"WHERE received_at >= ? OR state IN {_OPEN_IN} ORDER BY seq",
            (since, *_OPEN),
        ):
            requests.append(_request_of(r))
            if r[8] == _UNRECORDED:
                unrecorded.append(r[0])
        users: dict[str, str] = {}  # one string per user, however many deliveries it holds
        deliveries = [
            Held(r[0], users.setdefault(r[1], r[1]), _KINDS[r[2]], r[3], r[4])
            for r in self._db.execute(
                "SELECT delivery_id, user_id, kind, expires_at, request_id "
                "FROM deliveries ORDER BY delivery_id"
            )
        ]
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        max_seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM requests").fetchone()[0]
        max_del = max((d.delivery_id for d in deliveries), default=0)
        self._next_seq = max(int(meta.get("next_seq", 1)), max_seq + 1)
        self._next_delivery = max(int(meta.get("next_delivery", 1)), max_del + 1)
        schedules = [
            Schedule.from_record(msgpack.unpackb(r[0], raw=False))
            for r in self._db.execute("SELECT record FROM schedules")
        ]
        max_schedule = max((int(x.schedule_id[1:]) for x in schedules), default=0)
        next_schedule = max(int(meta.get("next_schedule", 1)), max_schedule + 1)
        transfers = dict(self._db.execute("SELECT seq, next_block FROM transfers").fetchall())
        register_changes = [
            StoredChange(change_from_record(json.loads(r[0])), bool(r[1]))
            for r in self._db.execute("SELECT record, done FROM register_changes ORDER BY position")
        ]
        return Restored(
            requests,
            deliveries,
            self._next_seq,
            self._next_delivery,
            schedules,
            next_schedule,
            transfers,
            register_changes,
            self._changes("", ()),
            unrecorded,
        )

    def _changes(self, where: str, args: tuple[str, ...]) -> list[InventoryChange]:
        return [
            InventoryChange.from_record(msgpack.unpackb(r[0], raw=False))
            for r in self._db.execute(
                f"SELECT record FROM inventory_changes{where} ORDER BY id", args
            )
        ]

    def inventory_history(
        self, device_id: str | None = None, site_id: str | None = None, mpxn: str | None = None
    ) -> list[InventoryChange]:
        """The inventory changes of a device, site or meter point, in the order made."""
        clauses: list[str] = []
        args: list[str] = []
        for column, value in (("device_id", device_id), ("site_id", site_id), ("mpxn", mpxn)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = (" WHERE " + " OR ".join(clauses)) if clauses else ""
        try:
            return self._changes(where, tuple(args))
        except sqlite3.OperationalError as err:
            raise StoreFailedError(f"{err} ({err.sqlite_errorname})") from err

    def apply(
        self, effects: Effects, next_seq: int, next_delivery: int, next_schedule: int | None = None
    ) -> None:
        """Write one step's decisions in one transaction (durable before anything is sent).

        ``StoreConflictError`` on a uniqueness rule broken; ``StoreFailedError`` with the first
        error when the storage fails (disk full, I/O error); either way nothing of the batch
        is written and the store can be used again."""
        try:
            self._apply(effects, next_seq, next_delivery, next_schedule)
        except sqlite3.IntegrityError as err:
            if err.sqlite_errorname in _UNIQUE_FAILURES:
                raise StoreConflictError(str(err)) from err
            raise
        except sqlite3.OperationalError as err:  # full, I/O, locked, gone: the storage's fault
            if self.read_only:
                raise  # writing through a report's view is the caller's mistake
            raise StoreFailedError(f"{err} ({err.sqlite_errorname})") from err
        self._next_seq, self._next_delivery = next_seq, next_delivery

    def _rollback(self) -> None:
        """End a failed transaction, if SQLite has not ended it already; a failure here is
        logged and never hides the error that made the transaction fail."""
        if not self._db.in_transaction:
            return
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error as err:
            log.warning("rollback of a failed batch failed too: %s", err)

    def _apply(
        self, effects: Effects, next_seq: int, next_delivery: int, next_schedule: int | None
    ) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            if effects.save_requests:
                db.executemany(
                    f"INSERT INTO requests ({_REQUEST_COLUMNS}) VALUES ({_MARKS})",
                    [_request_row(r, self._reasons) for r in effects.save_requests],
                )
            if effects.await_requests:
                db.executemany(  # answered, awaiting its outcome: ``compact``, route kept
                    "UPDATE requests SET state = ?, fingerprint = substr(fingerprint, 1, ?), "
                    "params = NULL, signature = NULL WHERE seq = ?",
                    [
                        (_AWAITING, REMEMBERED_FINGERPRINT_BYTES, seq)
                        for seq in effects.await_requests
                    ],
                )
            if effects.complete_requests:
                db.executemany(  # completed: only what ``compact`` keeps
                    "UPDATE requests SET state = ?, fingerprint = substr(fingerprint, 1, ?), "
                    "params = NULL, signature = NULL, device_id = NULL, comms_hub = NULL, "
                    "head_end = NULL WHERE seq = ?",
                    [
                        (_COMPLETED, REMEMBERED_FINGERPRINT_BYTES, seq)
                        for seq in effects.complete_requests
                    ],
                )
            if effects.add_deliveries:
                db.executemany(
                    "INSERT INTO deliveries VALUES (?,?,?,?,?,?,?)",
                    [
                        (
                            d.delivery_id,
                            d.user_id,
                            d.kind.value,
                            d.payload,
                            d.created_at,
                            d.expires_at,
                            d.request_id,
                        )
                        for d in effects.add_deliveries
                    ],
                )
            if effects.remove_deliveries:
                db.executemany(
                    "DELETE FROM deliveries WHERE delivery_id = ?",
                    [(i,) for i in effects.remove_deliveries],
                )
            if effects.audit:
                db.executemany(
                    "INSERT INTO audit (at, direction, user_id, kind, request_id, service, device_id, "
                    "code, reason, delivery_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [
                        (
                            a.at,
                            a.direction.value,
                            a.user_id,
                            a.kind,
                            a.request_id,
                            a.service,
                            a.device_id,
                            a.code,
                            a.reason,
                            a.delivery_id,
                        )
                        for a in effects.audit
                    ],
                )
            if effects.sla:
                db.executemany(
                    "INSERT INTO sla VALUES (?,?,?,?,?,?)",
                    [
                        (r.service, r.user_id, r.started_at, r.responded_at, r.target_s, r.code)
                        for r in effects.sla
                    ],
                )
            if effects.save_schedules:
                db.executemany(
                    "INSERT OR REPLACE INTO schedules VALUES (?, ?)",
                    [
                        (x.schedule_id, msgpack.packb(x.to_record(), use_bin_type=True))
                        for x in effects.save_schedules
                    ],
                )
            if effects.delete_schedules:
                db.executemany(
                    "DELETE FROM schedules WHERE schedule_id = ?",
                    [(i,) for i in effects.delete_schedules],
                )
            if effects.save_transfers:
                db.executemany(
                    "INSERT OR REPLACE INTO transfers VALUES (?, ?)", effects.save_transfers
                )
            if effects.save_register_changes:
                db.executemany(
                    "INSERT INTO register_changes (change_id, record, done) VALUES (?, ?, ?) "
                    "ON CONFLICT (change_id) DO UPDATE SET done = excluded.done",
                    [
                        (
                            str(x.change.change_id),
                            json.dumps(change_record(x.change), sort_keys=True),
                            int(x.done),
                        )
                        for x in effects.save_register_changes
                    ],
                )
            if effects.inventory_changes:
                db.executemany(
                    "INSERT INTO inventory_changes (at, kind, device_id, site_id, mpxn, record) "
                    "VALUES (?,?,?,?,?,?)",
                    [
                        (
                            c.at,
                            c.kind.value,
                            c.device_id,
                            c.site_id,
                            c.mpxn,
                            msgpack.packb(c.to_record(), use_bin_type=True),
                        )
                        for c in effects.inventory_changes
                    ],
                )
            if next_schedule is not None:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('next_schedule', ?)", (next_schedule,)
                )
            if next_seq != self._next_seq or next_delivery != self._next_delivery:
                db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("next_seq", next_seq), ("next_delivery", next_delivery)],
                )
            db.execute("COMMIT")
        except BaseException:
            self._reasons.rolled_back()
            self._rollback()
            raise
        self._reasons.committed()

    def probe(self) -> None:
        """Write ``PROBE_BYTES`` into the ``probe`` table and delete them in one committed
        transaction (the file must find room for them, and the WAL must take them); nothing a
        load or a report reads changes. ``StoreFailedError`` while that fails."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT INTO probe VALUES (zeroblob(?))", (PROBE_BYTES,))
                db.execute("DELETE FROM probe")
                db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.OperationalError as err:
            raise StoreFailedError(f"{err} ({err.sqlite_errorname})") from err

    def payloads(self, delivery_ids: list[int]) -> dict[int, bytes]:
        """The payloads of these held deliveries, by delivery id (ids not held are left out;
        ``StoreFailedError`` if the storage cannot be read)."""
        found: dict[int, bytes] = {}
        try:
            for i in range(0, len(delivery_ids), _PAYLOADS_AT_ONCE):
                chunk = delivery_ids[i : i + _PAYLOADS_AT_ONCE]
                marks = ",".join("?" * len(chunk))
                found.update(
                    self._db.execute(
                        f"SELECT delivery_id, payload FROM deliveries WHERE delivery_id IN ({marks})",
                        chunk,
                    ).fetchall()
                )
        except sqlite3.OperationalError as err:
            raise StoreFailedError(f"{err} ({err.sqlite_errorname})") from err
        return found

    def purge_requests(self, before: float) -> int:
        """Forget answered and refused requests older than the idempotency window."""
        cur = self._db.execute(
            f"DELETE FROM requests WHERE received_at < ? AND state NOT IN {_OPEN_IN}",
            (before, *_OPEN),
        )
        return cur.rowcount

    def audit_records(
        self,
        user_id: str | None = None,
        device_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        oldest_first: bool = False,
    ) -> list[AuditRecord]:
        """Audit records filtered by user, device and time, newest first unless
        ``oldest_first``; the order and the limit are the query's (``ORDER BY id DESC LIMIT``,
        by the ``audit_user`` / ``audit_device`` indexes when filtered by user or device), so
        only the rows returned are read."""
        clauses: list[str] = []
        args: list[object] = []
        for column, value in (("user_id", user_id), ("device_id", device_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            clauses.append("at >= ?")
            args.append(since)
        if until is not None:
            clauses.append("at < ?")
            args.append(until)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._db.execute(
            "SELECT at, direction, user_id, kind, request_id, service, device_id, code, reason, delivery_id "
            f"FROM audit{where} ORDER BY id {'ASC' if oldest_first else 'DESC'} LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [
            AuditRecord(
                r[0], Direction(r[1]), r[2], AuditKind(r[3]), r[4], r[5], r[6], r[7], r[8], r[9]
            )
            for r in rows
        ]

    def sla_records(
        self, since: float | None = None, until: float | None = None, service: str | None = None
    ) -> list[SlaRecord]:
        """SLA records of responses made in a time range, of one service or all."""
        where = "responded_at >= ? AND responded_at < ?"
        args: list[object] = [
            since if since is not None else 0.0,
            until if until is not None else float("inf"),
        ]
        if service is not None:
            where += " AND service = ?"
            args.append(service)
        rows = self._db.execute(
            "SELECT service, user_id, started_at, responded_at, target_s, code FROM sla "
            f"WHERE {where} ORDER BY rowid",
            args,
        ).fetchall()
        return [SlaRecord(*r) for r in rows]

"""The live hub's simulated field memory: each site's latest snapshot in a SQLite file of the
field's own (``field.sqlite``) beside the hub's store, as a meter's non-volatile memory.

Decides: where the field's memory lives in a data directory, its schema (one row per part of
a site's snapshot, ``simfield.memory``: the site's own and one per device, keyed by comms hub
and part, with the format version and when it was written; a write replaces its parts in one
transaction), and
how durable a write is (``Synchronous``, as the hub store's: NORMAL survives the process being
killed, FULL a power cut too; the live hub takes NORMAL unless told otherwise). A write has committed when ``remember`` returns, so a
device's answer, which leaves only afterwards, never runs ahead of what the device remembers.
Must never: be the hub's store (the hub's decisions never read it; deleting it is replacing
every simulated meter), decode snapshots (``simfield.memory`` does), or be opened by the
simulator (simulated runs keep no memory and stay fast and deterministic).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from actors.store import Synchronous
from simfield.memory import SNAPSHOT_VERSION

FIELD_FILE = "field.sqlite"
"""The field's memory in a data directory."""
SCHEMA_VERSION = 1
"""The table layout, kept in the file as ``PRAGMA user_version``."""


class FieldJournalError(Exception):
    """The field's memory file cannot be used (``str()`` names it and what to do)."""


def field_file(data_dir: Path) -> Path:
    """Where the field's memory of a data directory lives."""
    return data_dir / FIELD_FILE


class FieldJournal:
    """A ``simfield.memory.FieldMemory`` in SQLite (WAL), shared by the comms hub pools'
    threads: one connection, one write at a time."""

    def __init__(
        self,
        path: Path,
        synchronous: Synchronous = Synchronous.FULL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (or create) the file; ``FieldJournalError`` if it is not this journal."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        """The SQLite file."""
        self._clock = clock
        self._lock = threading.Lock()
        try:
            db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        except sqlite3.Error as err:
            raise FieldJournalError(f"cannot open the field's memory {path}: {err}") from err
        self._db = db
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous.name}")
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version not in (0, SCHEMA_VERSION):
                raise FieldJournalError(
                    f"{path} holds a field memory of layout {version}; this hub reads "
                    f"{SCHEMA_VERSION}: move it aside (the simulated meters start afresh)"
                )
            db.execute(
                "CREATE TABLE IF NOT EXISTS parts ("
                " comms_hub TEXT NOT NULL,"
                " part TEXT NOT NULL,"
                " version INTEGER NOT NULL,"
                " written_at REAL NOT NULL,"
                " snapshot BLOB NOT NULL,"
                " PRIMARY KEY (comms_hub, part)) WITHOUT ROWID"
            )
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except FieldJournalError:
            db.close()
            raise
        except sqlite3.Error as err:
            db.close()
            raise FieldJournalError(
                f"cannot use the field's memory {path}: {err}; move it aside "
                "(the simulated meters start afresh)"
            ) from err

    def recall(self, comms_hub: str) -> dict[str, bytes]:
        """Every part of the site's snapshot (empty: none)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT part, snapshot FROM parts WHERE comms_hub = ?", (comms_hub,)
            ).fetchall()
        return {str(part): bytes(data) for part, data in rows}

    def remember(self, comms_hub: str, parts: Mapping[str, bytes]) -> None:
        """Replace these parts of the site's snapshot in one transaction (committed when this
        returns)."""
        at = self._clock()
        rows = [(comms_hub, name, SNAPSHOT_VERSION, at, data) for name, data in parts.items()]
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO parts (comms_hub, part, version, written_at, snapshot)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (comms_hub, part) DO UPDATE SET"
                    " version = excluded.version, written_at = excluded.written_at,"
                    " snapshot = excluded.snapshot",
                    rows,
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def sites(self) -> int:
        """How many sites the memory holds."""
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(DISTINCT comms_hub) FROM parts").fetchone()[0]
            )

    def close(self) -> None:
        """Close the file (safe to call again)."""
        with self._lock:
            self._db.close()

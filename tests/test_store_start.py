"""``dcc serve`` with a store it cannot use, run as a real process: a damaged file (cut short)
and one written by a newer hub each give one line naming the file and what to do, and exit
status 2 at once; the file is left as it was."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from actors.store import SCHEMA_VERSION, SqliteStore
from tests.live_support import free_port, make_fleet
from tests.test_engine import T0, _engine, _req

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory, sites=10)
    return directory


def _serve(fleet: Path, data: Path, *options: str) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "cli", "serve", "--fleet", str(fleet), "--data", str(data)]
    endpoint = ["--endpoint", f"tcp://127.0.0.1:{free_port()}"]
    done = subprocess.run([*cmd, *endpoint, *options], capture_output=True, timeout=60, check=False)
    return done.returncode, done.stderr.decode()


def _store_with_records(path: Path) -> None:
    eng = _engine()
    with closing(SqliteStore(path)) as store:
        for i in range(60):
            store.apply(
                eng.on_frame("u-supa", _req(f"r{i}"), T0 + i), eng.next_seq, eng.next_delivery
            )
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_store_cut_short_stops_the_start_with_one_line_naming_it_and_status_2(
    fleet_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / "hub.sqlite"
    _store_with_records(path)
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)
    size = path.stat().st_size
    status, err = _serve(fleet_dir, data)
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0]
    assert "backup" in lines[0]
    assert "move it aside" in lines[0]
    assert path.stat().st_size == size


def test_a_store_from_a_newer_hub_stops_the_start_with_one_line_and_status_2(
    fleet_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = data / "hub.sqlite"
    _store_with_records(path)
    with closing(sqlite3.connect(path)) as db:
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 3}")
    status, err = _serve(fleet_dir, data)
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0]
    assert "newer version" in lines[0]


def test_an_unknown_durability_level_is_refused_before_anything_starts(
    fleet_dir: Path, tmp_path: Path
) -> None:
    status, err = _serve(fleet_dir, tmp_path / "data", "--synchronous", "sometimes")
    assert status == 2
    assert "--synchronous" in err
    assert not (tmp_path / "data").exists()

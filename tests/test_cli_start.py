"""The dcc command line starts light: the help imports no driver, no numpy and no matplotlib
(each command imports what it uses when it runs), and ``dcc keys`` reads the users alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli_errors import ROOT, dcc

pytestmark = pytest.mark.timeout(120)

HEAVY = ("matplotlib", "numpy", "zmq", "pykka", "simpy", "sqlite3", "actors", "meters_sim")

PROBE = """
import json, sys
from cli.app import main
heavy = json.loads(sys.argv[1])
sys.argv = ["dcc", *sys.argv[2:]]
try:
    main()
except SystemExit:
    pass
sys.stderr.write(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & set(heavy))))
"""


def _loaded_by(*args: str) -> list[str]:
    """The heavy packages a run of ``dcc ARGS`` imported."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=90,
        check=False,
    )
    loaded: list[str] = json.loads(result.stderr.splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "args", [("--help",), ("send", "--help"), ("simulate", "--help"), ("--version",)]
)
def test_help_imports_no_driver_nor_numpy_nor_matplotlib(args: tuple[str, ...]) -> None:
    assert _loaded_by(*args) == []


def test_the_catalogue_draws_nothing_so_imports_no_matplotlib() -> None:
    assert "matplotlib" not in _loaded_by("catalogue", "--json")


def test_keys_needs_only_the_users_file(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet"
    fleet.mkdir()
    (fleet / "users.csv").write_text(
        "user_id,party_id,name,roles,status,public_key\n"
        "u-one,SUPA,Ashdown Energy,IS;GS,active,\n"
        "u-two,NETA,Northern Wires,ED,active,\n"
    )
    result = dcc("keys", "--json", "--fleet", str(fleet))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["users"] == 2
    curve = sorted(c for c in doc["created"] if not c.startswith("signing:"))
    assert curve == ["hub", "u-one", "u-two"]
    assert (fleet / "keys" / "users" / "u-two.key_secret").exists()

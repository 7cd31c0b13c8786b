"""dcc simulate: a newcomer's quickstart runs, is reproducible, and bad files are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app

pytestmark = pytest.mark.timeout(300)
ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_quickstart_runs_in_event_mode_and_gives_identical_files_for_the_same_seed(
    tmp_path: Path,
) -> None:
    first = runner.invoke(
        app, ["simulate", str(ROOT / "scenarios" / "quickstart.toml"), "--out", str(tmp_path / "a")]
    )
    assert first.exit_code == 0, first.output
    second = runner.invoke(
        app, ["simulate", str(ROOT / "scenarios" / "quickstart.toml"), "--out", str(tmp_path / "b")]
    )
    assert second.exit_code == 0, second.output
    for name in ("summary.json", "services.csv", "outbox_depth.csv", "wan_utilisation.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for plot in ("wan_utilisation.png", "outbox_depth.png"):
        assert (tmp_path / "a" / plot).read_bytes().startswith(b"\x89PNG")
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["mode"] == "event"
    assert summary["answers"].get("I99", 0) > 0
    assert summary["responses"].get("I0", 0) > 0


def test_a_small_scenario_runs_in_bulk_mode_too(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "simulate",
            str(ROOT / "scenarios" / "quickstart.toml"),
            "--mode",
            "bulk",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "bulk"
    assert summary["messages"] > 0


def test_a_bad_scenario_file_is_refused_with_file_key_and_reason(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[scenario]\nname = "x"\nstart = 2025-01-01T00:00:00Z\nduration = "1h"\nseed = "seven"\n[fleet]\nsites = 10\n'
    )
    result = runner.invoke(app, ["simulate", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.toml" in result.output
    assert "seed" in result.output


def test_an_sla_threshold_breach_makes_the_exit_code_non_zero(tmp_path: Path) -> None:
    text = (ROOT / "scenarios" / "quickstart.toml").read_text()
    strict = tmp_path / "strict.toml"
    strict.write_text(
        text
        + "\n[sla]\nmax_busy_share = 0.0\nmax_outbox_depth = 0\nmin_within_target = 1.0\n\n[hub]\ncapacity_per_s = 0.01\n"
    )
    result = runner.invoke(app, ["simulate", str(strict), "--out", str(tmp_path / "o")])
    assert result.exit_code == 3, result.output
    assert "SLA breach" in result.output


CELL_OUTAGE = """
[scenario]
name = "cell-outage"
seed = 3
start = 2025-03-03T09:00:00Z
duration = "2h"
[fleet]
sites = 200
[load.on_demand]
per_meter_per_day = 60.0
services = { "4.1.1" = 1.0 }
[load.daily_reads]
share = 0.0
[[load.cell_outages]]
start = 2025-03-03T09:30:00Z
region = "south"
share = 1.0
duration = "30m"
[sla]
min_within_target = 0.0
"""


def test_a_cell_outage_makes_requests_to_its_comms_hubs_fail_in_both_models(tmp_path: Path) -> None:
    path = tmp_path / "cell-outage.toml"
    path.write_text(CELL_OUTAGE)
    event = runner.invoke(
        app, ["simulate", str(path), "--mode", "event", "--out", str(tmp_path / "e")]
    )
    assert event.exit_code == 0, event.output
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert summary["planned"]["cells_down"] >= 1
    assert summary["responses"].get("E20", 0) > 0
    assert summary["responses"].get("I0", 0) > summary["responses"]["E20"]
    bulk = runner.invoke(
        app, ["simulate", str(path), "--mode", "bulk", "--out", str(tmp_path / "b")]
    )
    assert bulk.exit_code == 0, bulk.output
    rows = (tmp_path / "b" / "flows.csv").read_text().splitlines()
    south = next(r for r in rows if r.startswith("South,on demand"))
    north = next(r for r in rows if r.startswith("North,on demand"))
    assert float(south.split(",")[-1]) < 0.9  # a quarter of the run, every South cell down
    assert float(north.split(",")[-1]) > 0.95

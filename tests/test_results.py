"""One results schema for both models: what an event run reports per region, flow and service,
schedule creations kept out of the responses, comms-hub utilisation, and the bulk model's
return values mapped into the same rows."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.app import app
from meters_sim.bulk import BulkRun, FlowResult, RegionWan
from meters_sim.results import FILES, Mode, bulk_results, columns
from meters_sim.scenario import load_scenario

pytestmark = pytest.mark.timeout(300)

READS = """
[scenario]
name = "reads"
seed = 4
start = 2025-03-03T01:00:00Z
duration = "3h"
[fleet]
sites = 120
[load.on_demand]
per_meter_per_day = 24.0
services = { "4.1.1" = 1.0 }
[load.daily_reads]
share = 1.0
window = "2h"
[load.alerts]
per_meter_per_day = 6.0
[sla]
min_within_target = 0.0
"""


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_an_event_run_reports_every_region_flow_and_service_and_no_schedule_creation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "reads.toml"
    path.write_text(READS)
    result = CliRunner().invoke(
        app, ["simulate", str(path), "--mode", "event", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    rows = _rows(tmp_path / "o" / "services.csv")
    assert not [r for r in rows if r["service"] in ("5.1", "5.2", "5.3")]
    assert summary["schedules_created"] == summary["planned"]["schedules"] > 100
    assert "5.1" not in {r["service"] for r in rows}
    flows = {r["flow"] for r in rows}
    assert {"on demand", "daily reads 4.6.1", "device alerts"} <= flows
    assert {r["region"] for r in rows if r["flow"] == "daily reads 4.6.1"} == {
        "North",
        "Central",
        "South",
    }
    for r in rows:
        if int(r["messages"]):
            assert float(r["mean_s"]) >= 0
            assert float(r["p50_s"]) <= float(r["p95_s"]) <= float(r["p99_s"])
            assert 0 <= float(r["within_target"]) <= 1
        assert int(r["offered"]) >= int(r["messages"])
    assert summary["messages"] == sum(int(r["messages"]) for r in rows)
    assert summary["offered"] == sum(int(r["offered"]) for r in rows)
    # reads answered at 0 s (the creations) would pull the mean down to nearly nothing
    assert summary["mean_response_s"] > 0.5
    busy = _rows(tmp_path / "o" / "comms_hub_utilisation.csv")
    assert sum(float(r["busy_s"]) for r in busy) > 0
    assert all(0 < u < 1 for u in summary["comms_hub_utilisation"].values())
    assert all(0 < c <= 1 for c in summary["coverage"].values())


def _flow(flow: str, count: int, mean: float, p50: float, within: float) -> FlowResult:
    return FlowResult("North", flow, flow, count, 0, 0, mean, p50, p50 * 3, p50 * 4, within, 30.0)


def test_bulk_results_map_the_bulk_models_regions_into_the_same_rows() -> None:
    scenario = load_scenario(READS, "reads.toml")
    run = BulkRun(
        flows=(
            _flow("on demand", 120, 4.0, 3.0, 0.97),
            _flow("device alerts", 80, 2.5, 2.0, 1.0),
            _flow("hub alerts", 0, float("nan"), float("nan"), 1.0),
        ),
        regions=(
            RegionWan("North", 200, np.array([0.1, 0.2]), np.array([[0.1, 0.0], [0.3, 0.4]]), 0.4),
        ),
        outboxes=(),
        interval_s=900.0,
        requests=120,
        busy_answers=0,
        integrity_failures=0,
        security_alerts=0,
        lost_alerts=0,
        breaches=(),
        partial=True,
    )
    results = bulk_results(scenario, run)
    assert results.summary.mode is Mode.BULK
    assert results.summary.partial is True
    quiet = next(r for r in results.services if r.flow == "hub alerts")
    assert quiet.messages == 0
    assert quiet.within_target is None  # nothing carried: no share, never 100%
    assert results.summary.within_target == 0.97  # service responses only, alerts aside
    assert results.summary.mean_response_s == 4.0
    assert results.summary.messages == 200
    assert set(results.summary.coverage) == {"North"}  # the regions run, no others
    assert [(c.cell, c.interval_start_s) for c in results.cells] == [
        ("N-0001", 0.0),
        ("N-0002", 0.0),
        ("N-0002", 900.0),
    ]
    assert [w.mean_cell_utilisation for w in results.wan] == [0.1, 0.2]


def _empty_run() -> BulkRun:
    return BulkRun((), (), (), 900.0, 0, 0, 0, 0, 0, ())


def test_every_result_file_starts_with_the_mode_column_and_the_files_are_written(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(READS, "reads.toml")
    doc = bulk_results(scenario, _empty_run()).write(tmp_path)
    assert doc["schema"] == 3
    assert doc["mode"] == "bulk"
    for name, row_type in FILES.items():
        with (tmp_path / name).open(encoding="utf-8") as f:
            assert next(csv.reader(f)) == list(columns(row_type))
        assert columns(row_type)[0] == "mode"
    assert json.loads((tmp_path / "summary.json").read_text()) == doc

"""The event model (SimPy driving the real hub) and the bulk model agree on a scenario small
enough for both: the same load (requests sent) and the same WAN response times, within the
stated tolerances (Poisson noise of about 2%, and the event fleet's meter count differing from
the bulk model's expected count by a few per cent)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app

pytestmark = pytest.mark.timeout(300)

SCENARIO = """
[scenario]
name = "agreement"
seed = 11
start = 2025-03-04T08:00:00Z
duration = "4h"
report_interval = "30m"

[fleet]
sites = 300

[load.on_demand]
per_meter_per_day = 20.0
services = { "4.1.1" = 1.0 }

[load.daily_reads]
share = 0.0

[load.top_ups]
per_prepayment_meter_per_day = 0.0
"""


def test_event_and_bulk_models_agree_on_load_and_response_time(tmp_path: Path) -> None:
    path = tmp_path / "agreement.toml"
    path.write_text(SCENARIO)
    runner = CliRunner()
    event = runner.invoke(
        app, ["simulate", str(path), "--mode", "event", "--out", str(tmp_path / "e")]
    )
    assert event.exit_code == 0, event.output
    bulk = runner.invoke(
        app, ["simulate", str(path), "--mode", "bulk", "--out", str(tmp_path / "b")]
    )
    assert bulk.exit_code == 0, bulk.output
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    sent_event = summary["planned"]["on_demand"]
    with (tmp_path / "b" / "services.csv").open() as f:
        flows = [r for r in csv.DictReader(f) if r["flow"] == "on demand"]
    sent_bulk = sum(int(r["messages"]) for r in flows)
    assert sent_event > 1000
    assert abs(sent_event - sent_bulk) / sent_bulk < 0.15, (sent_event, sent_bulk)
    with (tmp_path / "e" / "services.csv").open() as f:
        # on-demand load: the suppliers' reads and the network operators' share of them
        reads = [r for r in csv.DictReader(f) if r["flow"] in ("on demand", "network operator")]
    answered = sum(int(r["messages"]) for r in reads)
    p50_event = sum(float(r["p50_s"]) * int(r["messages"]) for r in reads) / answered
    p50_bulk = sum(float(r["p50_s"]) * int(r["messages"]) for r in flows) / sent_bulk
    assert abs(p50_event - p50_bulk) / p50_bulk < 0.4, (p50_event, p50_bulk)
    assert answered >= 0.95 * sent_event
    assert sum(int(r["offered"]) for r in reads) == sent_event

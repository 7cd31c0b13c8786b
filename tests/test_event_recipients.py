"""The event model plays ``[[recipients]]``, judges responses by request class and draws its
randomness per part of the scenario: all through the public scenario format and
``dcc simulate``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.app import app

pytestmark = pytest.mark.timeout(600)
runner = CliRunner()

BASE = """
[scenario]
name = "recipients"
seed = 5
start = 2025-03-04T09:00:00Z
duration = "3h"
report_interval = "5m"

[fleet]
sites = 200

[load.on_demand]
per_meter_per_day = 24.0
services = { "4.1.1" = 1.0 }

[load.daily_reads]
share = 0.0

[load.top_ups]
per_prepayment_meter_per_day = 0.0

[load.alerts]
per_meter_per_day = 2.0
"""

SUPA_OFFLINE = """
[[recipients]]
user = "u-supa"
reconnect_after = "1m"
[[recipients.offline]]
start = 2025-03-04T10:00:00Z
end = 2025-03-04T11:00:00Z
"""


def simulate(tmp_path: Path, name: str, text: str, expect: int = 0) -> Path:
    """Run a scenario in event mode; the results directory."""
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    out = tmp_path / name
    result = runner.invoke(app, ["simulate", str(path), "--mode", "event", "--out", str(out)])
    assert result.exit_code == expect, result.output
    return out


def summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


def rows(out: Path, name: str) -> list[dict[str, str]]:
    with (out / name).open() as f:
        return list(csv.DictReader(f))


def test_a_supplier_offline_for_an_hour_builds_a_backlog_that_drains_with_nothing_lost(
    tmp_path: Path,
) -> None:
    always = simulate(tmp_path, "always", BASE)
    away = simulate(tmp_path, "away", BASE + SUPA_OFFLINE)
    held = {float(r["t_s"]): int(r["held"]) for r in rows(away, "outbox_depth.csv")}
    before = max(h for t, h in held.items() if t <= 3600)
    during = held[7200.0]  # the end of the offline hour
    assert during > 20 * max(5, before)
    assert held[7200.0] > held[5400.0] > held[3900.0]  # it grows while the supplier is away
    assert held[10800.0] <= before + 5  # and drains once it is back
    s = summary(away)
    assert s["planned"]["offline_users"] == 1
    assert s["max_outbox_depth"] >= during  # the true peak, not a sample
    assert s["expired"] == 0
    [drain] = s["outbox_drain_s"]["user u-supa"]  # one offline interval, one drain
    assert drain is not None
    assert 0 <= drain < 600
    assert summary(always)["outbox_drain_s"] is None  # nobody went away
    # nothing lost: every response and alert reached its user, as without the outage
    assert s["responses"] == summary(always)["responses"]
    assert s["alerts_delivered"] == summary(always)["alerts_delivered"]


def test_acks_later_than_the_push_retry_cause_redeliveries(tmp_path: Path) -> None:
    prompt = simulate(tmp_path, "prompt", BASE + '[[recipients]]\nrole = "IS"\nack_delay = "5s"\n')
    late = simulate(
        tmp_path,
        "late",
        BASE + '[[recipients]]\nrole = "IS"\nack_delay = "90s"\n[hub]\npush_retry = "30s"\n',
    )
    assert summary(prompt)["redeliveries"] == 0
    assert summary(late)["redeliveries"] > 100
    assert summary(late)["responses"] == summary(prompt)["responses"]


def test_a_short_hold_makes_deliveries_to_an_absent_supplier_expire_and_breach(
    tmp_path: Path,
) -> None:
    out = simulate(
        tmp_path,
        "short",
        BASE + SUPA_OFFLINE + '[hub]\nhold = "20m"\n[sla]\nmax_expiries = 0\n',
        expect=3,
    )
    s = summary(out)
    assert s["expired"] > 0
    assert any("expired" in b for b in s["breaches"])


def test_every_sla_threshold_breached_is_listed_and_exits_3(tmp_path: Path) -> None:
    out = simulate(
        tmp_path,
        "strict",
        BASE
        + SUPA_OFFLINE
        + '[sla]\nmax_outbox_depth = 10\nservices = { "4.1" = 1.0 }\n'
        + '[sla.targets]\non_demand = "1s"\n',
        expect=3,
    )
    breaches = summary(out)["breaches"]
    assert any("outbox held" in b for b in breaches)
    assert any(b.startswith("service 4.1:") for b in breaches)
    assert any("of responses within target" in b for b in breaches)


def test_within_target_follows_the_request_class_targets_of_the_scenario(tmp_path: Path) -> None:
    tight = simulate(
        tmp_path, "tight", BASE + '[sla.targets]\non_demand = "1s"\nalerts = "1s"\n', 3
    )
    loose = simulate(tmp_path, "loose", BASE + '[sla.targets]\non_demand = "10m"\n')
    on_demand = [r for r in rows(tight, "services.csv") if r["flow"] == "on demand"]
    assert on_demand
    assert all(float(r["within_target"]) < 0.5 for r in on_demand)
    assert summary(loose)["within_target"] > 0.95
    assert summary(tight)["within_target"] < 0.5


STORM = """
[[load.outages]]
start = 2025-03-04T10:30:00Z
region = "north"
share = 0.5
duration = "1h"
restore_over = "10m"
"""


def test_adding_a_storm_leaves_every_draw_it_cannot_reach_unchanged(tmp_path: Path) -> None:
    without = rows(simulate(tmp_path, "calm", BASE), "services.csv")
    with_storm = rows(simulate(tmp_path, "storm", BASE + STORM, expect=3), "services.csv")
    for region in ("Central", "South"):
        assert [r for r in without if r["region"] == region] == [
            r for r in with_storm if r["region"] == region
        ]
    assert [r for r in without if r["region"] == "North"] != [
        r for r in with_storm if r["region"] == "North"
    ]


SCHEDULES_ONLY = """
[scenario]
name = "set-up"
seed = 5
start = 2025-03-04T09:00:00Z
duration = "30m"
report_interval = "5m"

[fleet]
sites = 200

[load.on_demand]
per_meter_per_day = 0.0

[load.daily_reads]
share = 1.0
window_start = "01:00"

[load.top_ups]
per_prepayment_meter_per_day = 0.0

[load.change_of_supplier]
churn_per_day = 0.0

[load.alerts]
per_meter_per_day = 0.0
hub_per_meter_per_day = 0.0

[[recipients]]
role = "IS"
ack_delay = "5s"
max_in_flight = 10
"""


def test_the_schedules_the_workload_creates_at_the_start_are_not_counted_in_the_outbox_depth(
    tmp_path: Path,
) -> None:
    out = simulate(tmp_path, "set-up", SCHEDULES_ONLY)
    s = summary(out)
    # hundreds of 5.1 responses were held while the slow recipients took them 10 at a time,
    # but they stand for schedules a running hub already holds: no outbox depth of the run's
    assert s["schedules_created"] >= 200
    assert s["max_outbox_depth"] == 0
    assert all(int(r["held"]) == 0 for r in rows(out, "outbox_depth.csv"))

"""Event-mode load: the scenario's users and field events reach the real engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from meters_sim.scenario import Region, load_scenario
from meters_sim.simulator import SimConfig, Simulation
from meters_sim.workload import schedule_load
from sdk.keys import create_keys, signing_keys
from simfield.fleet import generate_fleet
from simfield.fleet_dir import load_fleet
from simfield.fleet_files import write_fleet
from simfield.headend_plugins import load_head_ends
from simfield.site import load_trust_anchors

pytestmark = pytest.mark.timeout(300)

CHURN = """
[scenario]
name = "churn"
seed = 5
start = 2025-10-01T12:00:00Z
duration = "1d"
[fleet]
sites = 200
[load.change_of_supplier]
churn_per_day = 0.05
[load.daily_reads]
share = 0.3
"""


def test_change_of_supplier_churn_moves_meter_points_and_the_gaining_supplier_is_accepted(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(CHURN, "churn.toml")
    write_fleet(
        generate_fleet(
            scenario.fleet.sites, scenario.run.seed, scenario.run.as_of, scenario.fleet.mix
        ),
        tmp_path,
    )
    fleet = load_fleet(tmp_path)
    create_keys(tmp_path, [])
    before = {k: v.registrations for k, v in fleet.registration.meter_points.items()}
    wan = {r.value.capitalize(): scenario.wan_profile(r) for r in Region}
    config = SimConfig(
        start=scenario.run.start.timestamp(), engine=scenario.to_engine_config(), wan=wan, seed=5
    )
    sim = Simulation(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        load_head_ends(),
        config,
        anchors=load_trust_anchors(tmp_path),
    )
    planned = schedule_load(
        sim,
        scenario,
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        signing_keys=signing_keys(tmp_path),
    )
    sim.run(until=config.start + scenario.run.duration_s)
    assert planned["changes_of_supplier"] > 0
    moved = [k for k, v in fleet.registration.meter_points.items() if v.registrations != before[k]]
    assert moved
    gaining = [d for d in sim.log if d.kind == "answer" and (d.request_id or "").startswith("cos-")]
    assert gaining
    assert all(d.code == "I99" for d in gaining)
    # the daily reads created as schedules fired and were answered
    assert any(d.kind == "response" and (d.request_id or "").startswith("S") for d in sim.log)

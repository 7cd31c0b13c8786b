"""Register churn, installations and early-smart contacts played by the event model through
the public scenario format: each reaches the same engine entry points as live (the register
change feed, the DUIS inventory services, the operator's adoption command)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from hub.engine.register_changes import CHANGE_OF_SUPPLIER_ALERT
from hub.flows.inventory_operator import EARLY_SMART_REFUSED
from hub.registers.inventory import DeviceStatus
from meters_sim.scenario import Region, Scenario, ScenarioError, load_scenario
from meters_sim.simulator import SimConfig, Simulation
from meters_sim.workload import INSTALLATION_STEPS, schedule_load
from sdk.keys import create_keys, signing_keys
from simfield.fleet import generate_fleet
from simfield.fleet_dir import Fleet, load_fleet
from simfield.fleet_files import write_fleet
from simfield.headend_plugins import load_head_ends
from simfield.site import load_trust_anchors

pytestmark = pytest.mark.timeout(300)

BASE = """
[scenario]
name = "field-changes"
seed = 11
start = 2025-10-01T06:00:00Z
duration = "1d"
[fleet]
sites = 80
[load.daily_reads]
share = 0.2
"""
NO_CHURN = "[load.change_of_supplier]\nchurn_per_day = 0.0\n"
"""The scenarios here play no change of supplier unless they say so."""


def _run(tmp_path: Path, extra: str) -> tuple[Simulation, dict[str, int], Fleet]:
    if "change_of_supplier" not in extra:
        extra += NO_CHURN
    scenario = load_scenario(BASE + extra, "field-changes.toml")
    write_fleet(
        generate_fleet(
            scenario.fleet.sites, scenario.run.seed, scenario.run.as_of, scenario.fleet.mix
        ),
        tmp_path,
    )
    create_keys(tmp_path, [])
    fleet = load_fleet(tmp_path)
    sim = _simulation(scenario, fleet, tmp_path)
    planned = schedule_load(
        sim,
        scenario,
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        signing_keys=signing_keys(tmp_path),
        early_smart=fleet.early_smart_candidates,
        early_smart_sites=fleet.early_smart_sites,
    )
    sim.run(until=scenario.run.start.timestamp() + scenario.run.duration_s)
    return sim, planned, fleet


def _simulation(scenario: Scenario, fleet: Fleet, fleet_dir: Path) -> Simulation:
    wan = {r.value.capitalize(): scenario.wan_profile(r) for r in Region}
    config = SimConfig(
        start=scenario.run.start.timestamp(),
        engine=scenario.to_engine_config(),
        wan=wan,
        seed=scenario.run.seed,
    )
    return Simulation(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        load_head_ends(),
        config,
        anchors=load_trust_anchors(fleet_dir),
    )


def _responses(sim: Simulation, prefix: str) -> Counter[tuple[str | None, str]]:
    return Counter(
        (d.service, d.code)
        for d in sim.log
        if d.kind == "response" and (d.request_id or "").startswith(prefix)
    )


def test_installations_enter_the_register_and_are_pre_notified_commissioned_and_served(
    tmp_path: Path,
) -> None:
    sim, planned, fleet = _run(tmp_path, "[load.installations]\nper_day = 40\nstep = '2m'\n")
    installed = planned["installations"]
    assert installed > 10
    responses = _responses(sim, "in-")
    # every step of every installation made before the last hour was answered I0
    assert responses["8.1.1", "I0"] >= installed - 3
    assert responses["4.1.1", "I0"] >= installed - 3
    assert responses["12.2", "I0"] >= 2 * (installed - 3)
    assert sum(n for (_, code), n in responses.items() if code != "I0") == 0
    # the new meter points came through the register feed, the devices through the services
    new_points = [k for k in sim.engine.registers.registration.applied if k.startswith("elec")]
    assert len(new_points) == installed
    fitted = [
        d for d in sim.engine.access.inventory.devices.values() if d.site_id.startswith("NEW-")
    ]
    commissioned = [d for d in fitted if d.status is DeviceStatus.COMMISSIONED]
    assert len(commissioned) >= 2 * (installed - 3)  # the comms hub and the meter of each
    assert fleet.inventory is sim.engine.access.inventory


def test_the_same_installation_scenario_and_seed_give_the_same_decisions(
    tmp_path: Path,
) -> None:
    extra = "[load.installations]\nper_day = 20\n[load.tenancy]\nchurn_per_day = 0.05\n"
    first, planned, _ = _run(tmp_path / "a", extra)
    again, planned_again, _ = _run(tmp_path / "b", extra)
    assert planned == planned_again
    assert planned["installations"] > 0
    assert first.log == again.log
    assert len(INSTALLATION_STEPS) * planned["installations"] >= len(_responses(first, "in-"))


def test_changes_of_supplier_reach_the_engine_through_the_register_feed_and_the_loser_is_told(
    tmp_path: Path,
) -> None:
    sim, planned, fleet = _run(
        tmp_path, "[load.change_of_supplier]\nchurn_per_day = 0.1\nmessages_per_change = 2\n"
    )
    assert planned["changes_of_supplier"] > 0
    applied = sim.engine.registers.registration.applied
    assert any(k.startswith("electricity:") for k in applied)
    gaining = [d for d in sim.log if d.kind == "answer" and (d.request_id or "").startswith("cos-")]
    assert gaining
    assert all(d.code == "I99" for d in gaining)
    told = [d for d in sim.log if d.kind == "hub_alert" and d.code == CHANGE_OF_SUPPLIER_ALERT]
    assert told  # the losing suppliers hear of their losses on the effective day
    moved = {
        mp.mpxn for mp in fleet.registration.meter_points.values() if len(mp.registrations) > 1
    }
    assert moved


def test_changes_of_tenancy_are_reported_through_the_feed(tmp_path: Path) -> None:
    _, planned, fleet = _run(tmp_path, "[load.tenancy]\nchurn_per_day = 0.1\n")
    assert planned["changes_of_tenancy"] > 0
    start_day = date(2025, 10, 1)
    tenancies = [
        mp
        for mp in fleet.registration.meter_points.values()
        if any(day > start_day for day in mp.tenancy_changes)
    ]
    assert tenancies  # each effective the UK day after it was reported
    assert len(tenancies) <= planned["changes_of_tenancy"]  # a meter point may be drawn twice


def test_early_smart_contacts_are_adopted_or_refused_by_the_hub(tmp_path: Path) -> None:
    sim, planned, fleet = _run(tmp_path, "[load.early_smart]\ncontacts_per_day = 1000\n")
    candidates = [
        d for d in fleet.early_smart_candidates if d.device_type.value in ("ESME", "GSME")
    ]
    if not candidates:
        pytest.skip("the generated fleet has no early-smart meters")
    assert planned["early_smart_contacts"] == len(candidates)
    inventory = sim.engine.access.inventory
    adopted = [d for d in candidates if inventory.device(d.device_id) is not None]
    compliant = [
        d
        for d in candidates
        if (p := inventory.approved(d.manufacturer, d.model)) is not None and p.early_smart
    ]
    assert adopted
    assert {d.device_id for d in adopted} == {d.device_id for d in compliant}
    refused = [d for d in sim.log if d.kind == "hub_alert" and d.code == EARLY_SMART_REFUSED]
    assert len(refused) >= 1 if len(compliant) < len(candidates) else not refused


def test_the_new_load_keys_are_checked_with_their_dotted_names() -> None:
    bad = (
        BASE + "[load.installations]\nper_day = -1\nsteps = 3\n[load.tenancy]\nchurn_per_day = 2\n"
    )
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad + "[load.early_smart]\ncontacts_per_day = 'many'\n", "bad.toml")
    text = str(err.value)
    assert "load.installations.per_day" in text
    assert "load.installations.steps: unknown key" in text
    assert "load.tenancy.churn_per_day" in text
    assert "load.early_smart.contacts_per_day" in text

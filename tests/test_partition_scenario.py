"""Partitioned event runs honour the whole scenario: a WAN integrity event corrupts the frames
of its region in every partition that holds it, and the early-smart candidates call the hub
from the partition that holds their premises, as in the run of the whole fleet."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from hub.flows.inventory_operator import EARLY_SMART_REFUSED
from meters_sim.event_run import EventRun, run_event, write_event_fleet
from meters_sim.partition import plan, registers_of, simulate_partition
from meters_sim.results import EventMeasures, event_measures, merge_measures
from meters_sim.scenario import Scenario, load_scenario
from simfield.early_smart import METERS as EARLY_SMART_METERS
from simfield.fleet_dir import load_fleet
from tests.test_wan_integrity import SCENARIO as INTEGRITY

pytestmark = pytest.mark.timeout(600)

EARLY_SMART = """
[scenario]
name = "early-smart-parts"
seed = 12
start = 2025-10-01T06:00:00Z
duration = "2h"
[fleet]
sites = 300
[load.on_demand]
per_meter_per_day = 2.0
[load.daily_reads]
share = 0.0
[load.change_of_supplier]
churn_per_day = 0.0
[load.early_smart]
contacts_per_day = 1000
"""
"""Every early-smart candidate meter of the fleet calls within the first half hour."""


def _north_answers(run: EventRun) -> Counter[str]:
    sites = run.inventory.sites
    north = {
        d.device_id for d in run.inventory.devices.values() if sites[d.site_id].region == "North"
    }
    return Counter(
        d.code for d in run.sim.log if d.kind == "response" and (d.device_id or "") in north
    )


def _measures(run: EventRun) -> EventMeasures:
    return event_measures(
        run.scenario, run.sim, run.inventory, run.planned, run.outbox, partial=run.partial
    )


def _whole_and_parts(scenario: Scenario, fleet_dir: Path) -> tuple[EventRun, list[EventRun]]:
    arrays = write_event_fleet(scenario, fleet_dir)
    partitions = plan(arrays)
    assert len(partitions) >= 2
    whole = run_event(scenario, fleet_dir)
    parts = [simulate_partition(str(fleet_dir), scenario, p) for p in partitions]
    return whole, parts


def test_a_partitioned_run_counts_the_integrity_failures_and_e21s_of_the_corrupted_region(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(INTEGRITY, "integrity.toml")
    whole, parts = _whole_and_parts(scenario, tmp_path / "fleet")
    whole_north = _north_answers(whole)
    part_north: Counter[str] = Counter()
    for p in parts:
        part_north.update(_north_answers(p))
    assert whole_north["E21"] > 100
    # the same order of magnitude: the partitions draw from seeds of their own
    assert 0.5 < part_north["E21"] / whole_north["E21"] < 2.0
    failures = whole.sim.counters["integrity_failures"]
    part_failures = sum(p.sim.counters.get("integrity_failures", 0) for p in parts)
    assert failures > 30
    assert 0.5 < part_failures / failures < 2.0
    # the merged measures say so too: the E21s (every one in the North: no WAN loss, full
    # coverage) and the security monitoring's alerts on the failing comms hubs
    merged = merge_measures([_measures(p) for p in parts])
    assert merged.responses["E21"] == part_north["E21"]
    assert merged.security_alerts > 0
    assert 0.5 < merged.responses["E21"] / _measures(whole).responses["E21"] < 2.0


def test_every_early_smart_candidate_is_in_the_partition_holding_its_premises_once(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(EARLY_SMART, "early.toml")
    arrays = write_event_fleet(scenario, tmp_path)
    fleet = load_fleet(tmp_path)
    assert fleet.early_smart_candidates
    seen: list[str] = []
    shares = 0.0
    for p in plan(arrays):
        part = registers_of(str(tmp_path), p)
        regs = part.registers
        seen += [d.device_id for d in regs.early_smart]
        assert {d.site_id for d in regs.early_smart} <= set(regs.early_smart_sites)
        for d in regs.early_smart:
            if d.mpxn:
                assert d.mpxn in regs.registration.meter_points
            assert d.device_id in regs.payment_modes or not d.mpxn
        shares += part.early_smart_share
    assert sorted(seen) == sorted(d.device_id for d in fleet.early_smart_candidates)
    assert shares == pytest.approx(1.0)


def test_a_partitioned_run_plays_the_early_smart_contacts_the_whole_run_plays(
    tmp_path: Path,
) -> None:
    scenario = load_scenario(EARLY_SMART, "early.toml")
    whole, parts = _whole_and_parts(scenario, tmp_path)
    fleet = load_fleet(tmp_path)
    candidates = [d for d in fleet.early_smart_candidates if d.device_type in EARLY_SMART_METERS]
    if not candidates:
        pytest.skip("the generated fleet has no early-smart meters")
    compliant = {
        d.device_id
        for d in candidates
        if (p := fleet.inventory.approved(d.manufacturer, d.model)) is not None and p.early_smart
    }
    assert compliant
    for run in (whole, *parts):
        assert not run.partial
    # every candidate meter calls, once, in the partition holding its premises
    assert whole.planned["early_smart_contacts"] == len(candidates)
    assert sum(p.planned["early_smart_contacts"] for p in parts) == len(candidates)
    assert merge_measures([_measures(p) for p in parts]).planned["early_smart_contacts"] == len(
        candidates
    )
    # the hub adopts the compliant ones and refuses the others, whole or partitioned
    for runs in ([whole], parts):
        adopted = {
            d.device_id
            for run in runs
            for d in candidates
            if run.sim.engine.access.inventory.device(d.device_id) is not None
        }
        assert adopted == compliant
        refused = [
            d
            for run in runs
            for d in run.sim.log
            if d.kind == "hub_alert" and d.code == EARLY_SMART_REFUSED
        ]
        assert (len(refused) >= 1) if len(compliant) < len(candidates) else not refused

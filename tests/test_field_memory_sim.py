"""The simulator builds its field through the same code as the live hub, without a memory:
simulated runs write no snapshots, and giving the field a memory changes none of their
results (same seed, same decisions, counters and timings)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest

import meters_sim.simulator
from meters_sim.scenario import Region, load_scenario
from meters_sim.simulator import SimConfig, Simulation
from meters_sim.workload import schedule_load
from sdk.keys import create_keys, signing_keys
from simfield.fleet import generate_fleet
from simfield.fleet_dir import load_fleet
from simfield.fleet_files import write_fleet
from simfield.headend_plugins import load_head_ends
from simfield.memory import InMemoryFieldMemory
from simfield.site import FieldBuilder, load_trust_anchors

pytestmark = pytest.mark.timeout(300)

SCENARIO = """
[scenario]
name = "field-memory"
seed = 11
start = 2025-03-03T09:00:00Z
duration = "2h"
[fleet]
sites = 60
[load.on_demand]
per_meter_per_day = 6.0
[load.top_ups]
per_prepayment_meter_per_day = 4.0
"""


def _run(fleet_dir: Path) -> tuple[Simulation, list[Any], dict[str, int], list[Any]]:
    scenario = load_scenario(SCENARIO, "field-memory.toml")
    fleet = load_fleet(fleet_dir)
    wan = {r.value.capitalize(): scenario.wan_profile(r) for r in Region}
    config = SimConfig(
        start=scenario.run.start.timestamp(), engine=scenario.to_engine_config(), wan=wan, seed=11
    )
    sim = Simulation(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        load_head_ends(),
        config,
        anchors=load_trust_anchors(fleet_dir),
    )
    schedule_load(
        sim,
        scenario,
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        signing_keys=signing_keys(fleet_dir),
    )
    sim.run(until=config.start + scenario.run.duration_s)
    return sim, list(sim.log), dict(sim.counters), list(sim.sla)


def test_a_simulated_run_keeps_no_memory_and_one_with_memory_decides_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(SCENARIO, "field-memory.toml")
    write_fleet(
        generate_fleet(
            scenario.fleet.sites, scenario.run.seed, scenario.run.as_of, scenario.fleet.mix
        ),
        tmp_path,
    )
    create_keys(tmp_path, [])
    plain, log, counters, sla = _run(tmp_path)
    assert plain._field._memory is None  # the simulator's field remembers nothing
    assert any(d.service == "2.2" and d.kind == "response" for d in log)
    memory = InMemoryFieldMemory()
    monkeypatch.setattr(
        meters_sim.simulator, "FieldBuilder", functools.partial(FieldBuilder, memory=memory)
    )
    _, log_with_memory, counters_with_memory, sla_with_memory = _run(tmp_path)
    assert memory.writes > 0  # the same field code, now remembering
    assert log_with_memory == log
    assert counters_with_memory == counters
    assert sla_with_memory == sla

"""Helpers for event-model tests: a scenario's fleet generated, written and keyed into a
directory, and the scenario run through the event model as ``dcc simulate`` runs it (the real
engine, head-ends and simulated devices, the scenario's WAN and integrity events)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meters_sim.scenario import Region, Scenario
from meters_sim.simulator import SimConfig, Simulation
from meters_sim.workload import schedule_load
from sdk.keys import create_keys, signing_keys
from simfield.fleet import generate_fleet
from simfield.fleet_dir import Fleet, load_fleet
from simfield.fleet_files import write_fleet
from simfield.headend_plugins import load_head_ends
from simfield.site import load_trust_anchors


@dataclass(frozen=True)
class EventRun:
    """A finished event-model run."""

    sim: Simulation
    """The simulation, run to the scenario's end."""
    fleet: Fleet
    """The fleet it ran on."""
    planned: dict[str, int]
    """What the workload scheduled."""


def run_event(scenario: Scenario, directory: Path) -> EventRun:
    """Generate the scenario's fleet into ``directory`` (with the parties' signing keys) and
    run the scenario through the event model to its end."""
    write_fleet(
        generate_fleet(
            scenario.fleet.sites, scenario.run.seed, scenario.run.as_of, scenario.fleet.mix
        ),
        directory,
    )
    fleet = load_fleet(directory)
    create_keys(directory, [])
    cells = sorted({s.cell for s in fleet.inventory.sites.values()})
    config = SimConfig(
        start=scenario.run.start.timestamp(),
        engine=scenario.to_engine_config(cells),
        wan={r.value.capitalize(): scenario.wan_profile(r) for r in Region},
        seed=scenario.run.seed,
        integrity=scenario.load.integrity,
    )
    sim = Simulation(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        load_head_ends(),
        config,
        anchors=load_trust_anchors(directory),
    )
    planned = schedule_load(
        sim,
        scenario,
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        signing_keys=signing_keys(directory),
    )
    sim.run(until=config.start + scenario.run.duration_s)
    return EventRun(sim, fleet, dict(planned))

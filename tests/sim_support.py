"""Helpers for event-model tests: a scenario's fleet generated, written and keyed into a
directory, and the scenario run through the event model as ``dcc simulate`` runs it
(``meters_sim.event_run``: the real engine, head-ends and simulated devices, the scenario's
WAN, integrity events and early-smart contacts)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meters_sim import event_run
from meters_sim.scenario import Scenario
from meters_sim.simulator import Simulation
from simfield.fleet_dir import Fleet, load_fleet


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
    event_run.write_event_fleet(scenario, directory)
    fleet = load_fleet(directory)
    run = event_run.run_event(scenario, directory, event_run.fleet_registers(fleet))
    return EventRun(run.sim, fleet, dict(run.planned))

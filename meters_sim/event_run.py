"""One event-model run, built and played the one way ``dcc simulate`` runs it, whole or as a
partition.

Decides: what an event run is made of, from a scenario and a fleet directory (the fleet
written and the parties' keys created: ``write_event_fleet``): the ``SimConfig`` (the
scenario's engine settings over the run's own cells, as the caller's ``limits`` adjust them:
a partition's share of the hub-wide limits, ``meters_sim.partition.split_config``; its WAN per
region, its seed and its
``[[load.integrity]]`` events), the ``Simulation`` over the run's registers with the fleet's
head-ends and trust anchors, and the workload (``schedule_load``, with the early-smart
candidates of the run's own sites and their premises); and how it is played
(``play_event``): report interval by report interval to the scenario's end, the outbox
recorded at the end of each, stopped at a step by Ctrl-C or when ``stop`` says so, and then
marked partial with what it did so far.
Must never: make a hub decision (the engine does), measure or lay out results
(``meters_sim.results`` does), decide how a fleet is split or a limit shared
(``meters_sim.partition`` does), print anything, or read the whole fleet when it is given a
partition's registers (a worker process holds its partition only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hub.engine import EngineConfig
from hub.headends.base import HeadEnd
from hub.reference.parties import User
from hub.registers.inventory import Device, Inventory, Site
from hub.registers.records import PaymentMode
from hub.registers.registration import RegistrationData
from meters_sim.results import OutboxRow
from meters_sim.scenario import Region, Scenario
from meters_sim.simulator import SimConfig, Simulation
from meters_sim.workload import schedule_load
from sdk.keys import create_keys, signing_keys
from sdk.signing import SigningKey
from simfield.devices import PublicKey
from simfield.fleet import FleetArrays, generate_fleet
from simfield.fleet_dir import Fleet, load_fleet
from simfield.fleet_files import write_fleet
from simfield.headend_plugins import load_head_ends
from simfield.site import load_trust_anchors

EngineLimits = Callable[[EngineConfig], EngineConfig]
"""Adjusts the scenario's engine settings for a run (a partition's share of the limits)."""

StopCheck = Callable[[], bool]
"""Asked after every report step: True stops the run there (marked partial)."""


@dataclass(frozen=True, slots=True)
class EventRegisters:
    """What an event run plays of a fleet: the whole fleet's, or one partition's."""

    users: dict[str, User]
    """Every service user."""
    registration: RegistrationData
    """The meter points (and their appointments and consents) of the run's meters, the
    early-smart candidates' included."""
    inventory: Inventory
    """The run's sites and their devices."""
    payment_modes: dict[str, PaymentMode]
    """Payment mode of the run's meters (inventory meters and early-smart candidates)."""
    early_smart: tuple[Device, ...] = ()
    """Early-smart devices of the run's sites that may start communicating via the hub."""
    early_smart_sites: dict[str, Site] = field(default_factory=dict)
    """The premises of ``early_smart``, by site id."""


def fleet_registers(fleet: Fleet) -> EventRegisters:
    """The registers of a whole fleet, as an event run plays them."""
    return EventRegisters(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        tuple(fleet.early_smart_candidates),
        dict(fleet.early_smart_sites),
    )


def write_event_fleet(scenario: Scenario, directory: Path) -> FleetArrays:
    """Generate the scenario's fleet into ``directory`` with the parties' signing keys (the
    simulated suppliers sign their critical commands, the simulated devices verify them) and
    return the generated arrays (what a partitioned run plans with)."""
    arrays = generate_fleet(
        scenario.fleet.sites, scenario.run.seed, scenario.run.as_of, scenario.fleet.mix
    )
    write_fleet(arrays, directory)
    create_keys(directory, [])
    return arrays


@dataclass(slots=True)
class EventRun:
    """An event run: built (``build_event``), then played (``play_event``) as far as it got."""

    scenario: Scenario
    """The scenario as the run plays it (a partition's: its own seed and rates)."""
    sim: Simulation
    """The simulation."""
    inventory: Inventory
    """The run's inventory (the sites and devices the measures are about)."""
    planned: dict[str, int]
    """What the workload scheduled."""
    outbox: list[OutboxRow] = field(default_factory=list)
    """The outbox at the end of each report interval played."""
    partial: bool = False
    """True when Ctrl-C or ``stop`` ended it before the scenario's end."""

    @property
    def start(self) -> float:
        """Simulated start, epoch seconds UTC."""
        return self.sim.config.start

    @property
    def end(self) -> float:
        """Simulated end, epoch seconds UTC."""
        return self.start + self.scenario.run.duration_s


def build_event(
    scenario: Scenario,
    fleet_dir: Path | str,
    registers: EventRegisters | None = None,
    *,
    limits: EngineLimits | None = None,
    keys: tuple[Mapping[str, PublicKey], Mapping[str, SigningKey]] | None = None,
) -> EventRun:
    """Build the event run of ``scenario`` over ``registers`` (default: the whole fleet read
    from ``fleet_dir``), its engine settings as ``limits`` adjusts them (a partition's share
    of the hub-wide limits; None: the scenario's own), its trust anchors and signing keys
    ``keys`` (default: read from ``fleet_dir``), with every workload event scheduled; nothing
    has run yet."""
    regs = registers if registers is not None else fleet_registers(load_fleet(Path(fleet_dir)))
    anchors, signing = keys if keys is not None else read_keys(fleet_dir)
    cells = sorted({s.cell for s in regs.inventory.sites.values()})
    engine = scenario.to_engine_config(cells)
    config = SimConfig(
        start=scenario.run.start.timestamp(),
        engine=engine if limits is None else limits(engine),
        wan={r.value.capitalize(): scenario.wan_profile(r) for r in Region},
        seed=scenario.run.seed,
        integrity=scenario.load.integrity,
    )
    head_ends: Mapping[str, HeadEnd] = load_head_ends()
    sim = Simulation(
        regs.users,
        regs.registration,
        regs.inventory,
        regs.payment_modes,
        head_ends,
        config,
        anchors=anchors,
    )
    planned = schedule_load(
        sim,
        scenario,
        regs.users,
        regs.registration,
        regs.inventory,
        regs.payment_modes,
        signing_keys=signing,
        early_smart=regs.early_smart,
        early_smart_sites=regs.early_smart_sites,
    )
    return EventRun(scenario, sim, regs.inventory, dict(planned))


def read_keys(fleet_dir: Path | str) -> tuple[dict[str, PublicKey], dict[str, SigningKey]]:
    """The fleet's trust anchors and the parties' private signing keys."""
    path = Path(fleet_dir)
    return load_trust_anchors(path), signing_keys(path)


def play_event(
    run: EventRun,
    *,
    stop: StopCheck | None = None,
    on_step: Callable[[float], None] | None = None,
) -> EventRun:
    """Play ``run`` report interval by report interval to its scenario's end, recording the
    outbox at the end of each and telling ``on_step`` the simulated seconds reached. Ctrl-C
    (between two events) or ``stop`` (asked after each step) ends it there, marked partial;
    what it did so far is kept."""
    step = min(run.scenario.run.report_interval_s, run.scenario.run.duration_s)
    t = run.start + (run.outbox[-1].t_s if run.outbox else 0.0)
    try:
        while t < run.end:
            t = min(run.end, t + step)
            run.sim.run(until=t)
            run.outbox.append(OutboxRow(round(t - run.start, 6), run.sim.outbox_depth()))
            if on_step is not None:
                on_step(t - run.start)
            if t < run.end and stop is not None and stop():
                run.partial = True
                break
    except KeyboardInterrupt:
        run.partial = True
    return run


def run_event(
    scenario: Scenario,
    fleet_dir: Path | str,
    registers: EventRegisters | None = None,
    *,
    limits: EngineLimits | None = None,
    keys: tuple[Mapping[str, PublicKey], Mapping[str, SigningKey]] | None = None,
    stop: StopCheck | None = None,
    on_step: Callable[[float], None] | None = None,
) -> EventRun:
    """Build the event run (``build_event``) and play it (``play_event``)."""
    run = build_event(scenario, fleet_dir, registers, limits=limits, keys=keys)
    return play_event(run, stop=stop, on_step=on_step)

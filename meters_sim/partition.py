"""Partitioned event-model runs: the fleet split by GB distribution area, each part run by the
real hub engine in its own process, the parts' measures merged into one set of results.

Decides: the partitions of a fleet (``plan``: every WAN cell goes whole to the distribution
area that holds most of its sites, so each partition has its own cells, sites and comms hubs),
each partition's seed stream (``seed_for``: derived from the scenario's seed and the
partition's name alone, so it does not depend on how many partitions or workers there are),
how the hub's hub-wide and per-user limits are split (``split_config``: by the partition's
share of the fleet's meters; per comms hub, per cell and per delivery limits stay exact), what
a partition holds (``registers_of``: its cells' sites and devices, their meter points, and
the early-smart candidates whose premises are in its cells), the scenario a partition plays
(``partition_scenario``: its own seed, and the fleet-wide early-smart first contacts a day by
its share of the candidates; every other part of the scenario, its integrity events
included, as it is), how one partition runs (``run_partition``: built and played by
``meters_sim.event_run``, as a whole run is), and where the partitions run
(``run_partitioned``: one after another in this process for one worker, otherwise on a local
Dask cluster of processes started and stopped by the run). The merged results are the same bytes whatever the number of
workers: the parts are merged in the order of the plan, never in the order they finish.
Must never: make a hub decision (each partition's engine does), lay out result files
(``meters_sim.results`` does), print anything, or leave a process running after it returns
or raises.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hub.engine import EngineConfig
from hub.policies.traffic.config import UserAllocation
from hub.registers.inventory import Device, Inventory, Site
from hub.registers.registration import RegistrationData
from meters_sim.event_run import (
    EventRegisters,
    EventRun,
    StopCheck,
    build_event,
    play_event,
    read_keys,
)
from meters_sim.results import INTERVAL_S, EventMeasures, event_measures, merge_measures
from meters_sim.scenario import Scenario
from sdk.signing import SigningKey
from simfield.devices import PublicKey
from simfield.fleet import AREAS, REGIONS, FleetArrays
from simfield.fleet_dir import Fleet, load_fleet

CellKey = tuple[str, int]
"""A WAN cell by its region's name and its number within the region (``("North", 3)``)."""


@dataclass(frozen=True, slots=True)
class Partition:
    """One part of a fleet, run by an engine of its own."""

    name: str
    """The distribution area's distributor id and name (``10 Eastern``); its seed stream is
    derived from it."""
    cells: frozenset[CellKey]
    """The WAN cells it holds, whole (every site of a cell is in the same partition)."""
    sites: int
    """Hub sites in it."""


class PartitionError(Exception):
    """A partition failed: its name and the error, as one line."""

    def __init__(self, partition: str, error: BaseException) -> None:
        first = next(iter(str(error).splitlines()), "")
        super().__init__(f"partition {partition} failed: {type(error).__name__}: {first}")
        self.partition = partition
        """The name of the partition that failed."""


def plan(fleet: FleetArrays) -> list[Partition]:
    """The partitions of a generated fleet, one per distribution area that holds a cell, in
    distributor id order. A cell goes to the area with most of its sites (ties: the lowest
    distributor id), so an area at a cell boundary may lend a few sites to its neighbour. A
    cell of early-smart candidates alone (no hub site) goes to the partition holding most of
    its candidates' areas (none: the first partition), so every candidate is in one."""
    n = fleet.sites
    region, cell, area = fleet.site_region[:n], fleet.site_cell[:n], fleet.site_area[:n]
    owner: dict[CellKey, int] = {}
    sites_in: dict[int, int] = {}
    for r in range(len(REGIONS)):
        for c in np.unique(cell[region == r]).tolist():
            members = (region == r) & (cell == c)
            counts = np.bincount(area[members], minlength=len(AREAS))
            a = int(np.argmax(counts))  # the first of the largest: the lowest distributor id
            owner[REGIONS[r], int(c)] = a
            sites_in[a] = sites_in.get(a, 0) + int(members.sum())
    held = np.zeros(len(AREAS), dtype=bool)
    held[list(sites_in)] = True
    rest = slice(n, n + fleet.candidates)
    c_region, c_cell, c_area = fleet.site_region[rest], fleet.site_cell[rest], fleet.site_area[rest]
    for r in range(len(REGIONS)):
        for c in np.unique(c_cell[c_region == r]).tolist():
            if (REGIONS[r], int(c)) in owner or not sites_in:
                continue
            members = (c_region == r) & (c_cell == c)
            counts = np.bincount(c_area[members], minlength=len(AREAS)) * held
            a = int(np.argmax(counts)) if counts.any() else min(sites_in)
            owner[REGIONS[r], int(c)] = a
    out = []
    for a in sorted(sites_in):
        spec = AREAS[a]
        cells = frozenset(k for k, v in owner.items() if v == a)
        out.append(Partition(f"{spec.distributor_id} {spec.name}", cells, sites_in[a]))
    return out


def seed_for(seed: int, name: str) -> int:
    """A partition's seed: derived from the scenario's seed and the partition's name only."""
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # 63 bits: fine for random and numpy


def _share(value: float, share: float) -> int:
    """A count limit's part: never below one."""
    return max(1, math.ceil(value * share))


def split_config(config: EngineConfig, share: float) -> EngineConfig:
    """The engine settings of a partition holding ``share`` of the load: every hub-wide limit
    (capacity and its burst, the bound on accepted requests, the queue bounds, the request
    ids remembered, the user buckets tracked) and every per-user limit (the rate and burst
    near capacity, particular users' allocations, deliveries in flight) takes that share;
    per comms hub and per cell limits, hold and retry times and timeouts stay as they are."""
    if not 0 < share <= 1:
        raise ValueError(f"a partition's share must be in (0, 1], got {share}")
    t = config.traffic
    bounds = {p: _share(b, share) for p, b in t.queue_bounds.items()}
    protected = sum(b for p, b in bounds.items() if p not in t.shed_at)
    traffic = replace(
        t,
        capacity_per_s=t.capacity_per_s * share,
        capacity_burst=None if t.capacity_burst is None else max(1.0, t.capacity_burst * share),
        user_rate_per_s=None if t.user_rate_per_s is None else t.user_rate_per_s * share,
        user_burst=t.user_burst * share,
        user_allocations={
            u: UserAllocation(a.rate_per_s * share, a.burst * share)
            for u, a in t.user_allocations.items()
        },
        max_tracked_users=_share(t.max_tracked_users, share),
        queue_bounds=bounds,
        hub_bound=max(_share(t.hub_bound, share), protected + 1),
    )
    return replace(
        config,
        traffic=traffic,
        max_pending=_share(config.max_pending, share),
        max_in_flight=_share(config.max_in_flight, share),
        idempotency_max=_share(config.idempotency_max, share),
    )


@dataclass(frozen=True, slots=True)
class PartRegisters:
    """The registers of one partition: fresh containers over the fleet's records (what a
    worker process is sent, so that it never holds the whole fleet)."""

    registers: EventRegisters
    """Every service user (each partition has them all), the partition's meter points (and
    their appointments and consents), sites and devices, its meters' payment modes, and the
    early-smart candidates of its cells with their premises."""
    share: float
    """The partition's share of the fleet's meters (its share of the hub-wide limits)."""
    early_smart_share: float
    """The partition's share of the fleet's early-smart candidate meters (its share of the
    scenario's early-smart first contacts a day)."""


def _cell_key(cell: str) -> CellKey:
    letter, _, number = cell.partition("-")
    region = next(r for r in REGIONS if r[0] == letter)
    return region, int(number)


def _early_smart_meters(candidates: Sequence[Device]) -> int:
    from simfield.early_smart import METERS

    return sum(1 for d in candidates if d.device_type in METERS)


def _part(fleet: Fleet, cells: frozenset[CellKey]) -> PartRegisters:
    inv, reg = fleet.inventory, fleet.registration
    sites = [s for s in inv.sites.values() if _cell_key(s.cell) in cells]
    site_ids = {s.site_id for s in sites}
    devices = [d for d in inv.devices.values() if d.site_id in site_ids]
    inventory = Inventory.build(inv.products.values(), sites, devices)
    early_sites: dict[str, Site] = {
        k: s for k, s in fleet.early_smart_sites.items() if _cell_key(s.cell) in cells
    }
    early = tuple(d for d in fleet.early_smart_candidates if d.site_id in early_sites)
    mpxns = {d.mpxn for d in (*devices, *early) if d.mpxn}
    registration = RegistrationData(
        meter_points={k: v for k, v in reg.meter_points.items() if k in mpxns},
        appointments={k: list(v) for k, v in reg.appointments.items() if k in mpxns},
        consents={k: list(v) for k, v in reg.consents.items() if k in mpxns},
        applied=set(reg.applied),
    )
    meters = sum(1 for d in inv.devices.values() if d.mpxn)
    mine = sum(1 for d in devices if d.mpxn)
    ids = {d.device_id for d in (*devices, *early)}
    all_early = _early_smart_meters(fleet.early_smart_candidates)
    registers = EventRegisters(
        dict(fleet.users),
        registration,
        inventory,
        {k: v for k, v in fleet.payment_modes.items() if k in ids},
        early,
        early_sites,
    )
    return PartRegisters(
        registers,
        mine / meters if meters else 1.0,
        _early_smart_meters(early) / all_early if all_early else 0.0,
    )


@functools.lru_cache(maxsize=1)
def _fleet(fleet_dir: str) -> Fleet:
    """The fleet, read once per process (partitions run in the same process share its
    read-only records, never its containers)."""
    return load_fleet(Path(fleet_dir))


@functools.lru_cache(maxsize=1)
def _keys(fleet_dir: str) -> tuple[dict[str, PublicKey], dict[str, SigningKey]]:
    """The fleet's trust anchors and the parties' signing keys, read once per process (key
    objects do not travel between processes: each reads the few small files)."""
    return read_keys(fleet_dir)


def registers_of(fleet_dir: str, partition: Partition) -> PartRegisters:
    """A partition's registers, from the fleet in ``fleet_dir`` (read once per process)."""
    return _part(_fleet(fleet_dir), partition.cells)


def partition_scenario(
    scenario: Scenario, partition: Partition, early_smart_share: float = 1.0
) -> Scenario:
    """The scenario as a partition runs it: the same, with the partition's own seed, and the
    fleet-wide early-smart first contacts a day taken by the partition's share of the
    candidates (so the candidates call over the same span as in the whole run)."""
    early = scenario.load.early_smart
    return replace(
        scenario,
        run=replace(scenario.run, seed=seed_for(scenario.run.seed, partition.name)),
        load=replace(
            scenario.load,
            early_smart=replace(early, contacts_per_day=early.contacts_per_day * early_smart_share),
        ),
    )


def run_partition(
    fleet_dir: str,
    scenario: Scenario,
    partition: Partition,
    registers: PartRegisters | None = None,
    stop: StopCheck | None = None,
) -> EventMeasures:
    """Run one partition of the scenario over the fleet in ``fleet_dir`` (its ``registers``
    when given, else read from there) with an engine of its own and return what it measured
    (Ctrl-C, or ``stop`` answering True after a report step, stops it and gives the measures
    so far, marked partial)."""
    done = simulate_partition(fleet_dir, scenario, partition, registers, stop)
    return event_measures(
        done.scenario, done.sim, done.inventory, done.planned, done.outbox, partial=done.partial
    )


def simulate_partition(
    fleet_dir: str,
    scenario: Scenario,
    partition: Partition,
    registers: PartRegisters | None = None,
    stop: StopCheck | None = None,
) -> EventRun:
    """Simulate one partition (``run_partition`` without the measuring: for memory studies and
    tests that look at the simulation itself)."""
    part = registers if registers is not None else registers_of(fleet_dir, partition)
    own = partition_scenario(scenario, partition, part.early_smart_share)
    run = build_event(own, fleet_dir, part.registers, share=part.share, keys=_keys(fleet_dir))
    return play_event(run, stop=stop)


@dataclass(frozen=True, slots=True)
class PartitionedRun:
    """What a partitioned run produced."""

    measures: EventMeasures
    """The merged measures of the partitions done (all of them unless interrupted)."""
    done: int
    """Partitions done."""
    total: int
    """Partitions planned."""


Runner = Callable[[str, Scenario, Partition, PartRegisters | None], EventMeasures]
"""Runs one partition (``run_partition``; tests give one that fails)."""


def empty_measures() -> EventMeasures:
    """The measures of a run stopped before any partition was done (marked partial)."""
    return EventMeasures(reached_s=0.0, interval_s=INTERVAL_S, partial=True, meters=0)


def run_partitioned(
    scenario: Scenario,
    fleet_dir: Path,
    partitions: Sequence[Partition],
    workers: int,
    *,
    on_done: Callable[[Partition], None] | None = None,
    runner: Runner | None = None,
) -> PartitionedRun:
    """Run every partition and merge their measures in the order given. One worker: one
    partition after another in this process (Ctrl-C stops the one running, which keeps what
    it measured so far, marked partial). More: a local Dask cluster of ``workers`` processes
    with one thread each, started here and stopped before this returns or raises (Ctrl-C
    stops the cluster and keeps the partitions done, marked partial). A partition's failure
    stops the run: ``PartitionError`` names it. ``on_done`` is told of each partition done."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    run = runner or run_partition
    done: dict[str, EventMeasures] = {}
    interrupted = False
    if workers == 1:
        try:
            for p in partitions:
                try:
                    m = run(str(fleet_dir), scenario, p, None)
                except KeyboardInterrupt:  # between two steps: nothing kept of this partition
                    interrupted = True
                    break
                except Exception as exc:
                    raise PartitionError(p.name, exc) from exc
                done[p.name] = m
                if m.partial:  # stopped by Ctrl-C: what it measured so far is kept
                    interrupted = True
                    break
                if on_done is not None:
                    on_done(p)
        finally:
            _fleet.cache_clear()  # the fleet read for the partitions is not kept after them
    else:
        try:
            for p, m in _on_dask(run, str(fleet_dir), scenario, partitions, workers):
                done[p.name] = m
                if on_done is not None:
                    on_done(p)
        except KeyboardInterrupt:
            interrupted = True
    parts = [done[p.name] for p in partitions if p.name in done]
    merged = merge_measures(parts) if parts else empty_measures()
    if interrupted or len(parts) < len(partitions):
        merged.partial = True
    return PartitionedRun(merged, len(parts), len(partitions))


def _on_dask(
    run: Runner, fleet_dir: str, scenario: Scenario, partitions: Sequence[Partition], workers: int
) -> Iterator[tuple[Partition, EventMeasures]]:
    """Each partition run on a local cluster of processes, as they finish; the cluster is
    stopped when the iteration ends, fails or is abandoned."""

    import dask

    # the cluster's own start and stop chatter is not the run's output (distributed reads
    # this when it is first imported)
    with dask.config.set({"logging.distributed": "critical"}):
        import distributed  # noqa: F401
    yield from _cluster_run(run, fleet_dir, scenario, partitions, workers)


def _cluster_run(
    run: Runner, fleet_dir: str, scenario: Scenario, partitions: Sequence[Partition], workers: int
) -> Iterator[tuple[Partition, EventMeasures]]:
    from distributed import Client, LocalCluster, as_completed

    with (
        LocalCluster(
            n_workers=min(workers, max(1, len(partitions))),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit=0,  # the run bounds its own memory; no worker is paused or killed
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        futures = {}
        try:
            # this process reads the fleet once and sends each worker its partitions' registers
            # only, then lets go of the fleet: no worker ever holds the whole of it
            for p in partitions:
                [registers] = client.scatter([registers_of(fleet_dir, p)], hash=False)
                task = client.submit(
                    run, fleet_dir, scenario, p, registers, key=f"partition-{p.name}", pure=False
                )
                futures[task] = p
                del registers
            _fleet.cache_clear()
            for future in as_completed(futures):
                p = futures[future]
                try:
                    measures = future.result()
                except Exception as exc:
                    raise PartitionError(p.name, exc) from exc
                yield p, measures
        finally:
            _fleet.cache_clear()
            client.cancel(list(futures))

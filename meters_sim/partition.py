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
(``partition_scenario``: its own seed, the fleet-wide early-smart first contacts a day by its
share of the candidates, and the fleet-wide installations a day and each recipient's push
rate and in-flight window by its share of the meters; every other part of the scenario, its
integrity events included, as it is), how one partition runs (``run_partition``: built and played by
``meters_sim.event_run``, as a whole run is), and where the partitions run
(``run_partitioned``: one after another in this process for one worker, otherwise on a local
Dask cluster of processes started and stopped by the run), and what Ctrl-C keeps (the
partitions done and those running, which a ``distributed.Event`` set by the client stops at
their next report step with their measures so far, each awaited for ``STOP_TIMEOUT_S`` at
most; the workers themselves ignore Ctrl-C, which is the client's). The merged results are
the same bytes whatever the number of workers: the parts are merged in the order of the
plan, never in the order they finish.
Must never: make a hub decision (each partition's engine does), lay out result files
(``meters_sim.results`` does), print anything, or leave a process running after it returns
or raises.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import signal
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

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
from simfield.early_smart import METERS as EARLY_SMART_METERS
from simfield.fleet import AREAS, REGIONS, FleetArrays
from simfield.fleet_dir import Fleet, load_fleet

if TYPE_CHECKING:
    from distributed import Client, Future

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
    return sum(1 for d in candidates if d.device_type in EARLY_SMART_METERS)


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
    scenario: Scenario,
    partition: Partition,
    early_smart_share: float = 1.0,
    share: float = 1.0,
) -> Scenario:
    """The scenario as a partition runs it: the same, with the partition's own seed, the
    fleet-wide early-smart first contacts a day taken by the partition's share of the
    candidates (so the candidates call over the same span as in the whole run), and the
    fleet-wide installations a day and each ``[[recipients]]`` entry's push rate and in-flight
    window by its ``share`` of the fleet's meters (each partition's engine has a connection of
    its own for every user, so the parts together take what the user's one connection takes;
    every other rate of the scenario is per meter or per site already)."""
    early = scenario.load.early_smart
    installs = scenario.load.installations
    recipients = tuple(
        replace(
            r,
            push_rate_per_s=None if r.push_rate_per_s is None else r.push_rate_per_s * share,
            max_in_flight=_share(r.max_in_flight, share),
        )
        for r in scenario.recipients
    )
    return replace(
        scenario,
        recipients=recipients,
        run=replace(scenario.run, seed=seed_for(scenario.run.seed, partition.name)),
        load=replace(
            scenario.load,
            early_smart=replace(early, contacts_per_day=early.contacts_per_day * early_smart_share),
            installations=replace(installs, per_day=installs.per_day * share),
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
    own = partition_scenario(scenario, partition, part.early_smart_share, part.share)
    share = part.share
    run = build_event(
        own,
        fleet_dir,
        part.registers,
        limits=None if share == 1.0 else functools.partial(split_config, share=share),
        keys=_keys(fleet_dir),
    )
    return play_event(run, stop=stop)


@dataclass(frozen=True, slots=True)
class PartitionedRun:
    """What a partitioned run produced."""

    measures: EventMeasures
    """The merged measures of the partitions kept: every partition unless interrupted; when
    interrupted, those done and those stopped partway (marked partial)."""
    done: int
    """Partitions run to the scenario's end."""
    total: int
    """Partitions planned."""
    stopped: tuple[str, ...] = ()
    """Partitions Ctrl-C stopped partway, kept with what they measured so far."""
    dropped: tuple[str, ...] = ()
    """Partitions running when Ctrl-C came that did not answer within the stop timeout (or
    a second Ctrl-C came first): left out."""


class Runner(Protocol):
    """Runs one partition (``run_partition``; tests give one that fails)."""

    def __call__(
        self,
        fleet_dir: str,
        scenario: Scenario,
        partition: Partition,
        registers: PartRegisters | None = None,
        stop: StopCheck | None = None,
        /,
    ) -> EventMeasures: ...


STOP_TIMEOUT_S = 300.0
"""How long a run on Dask waits, after Ctrl-C, for its running partitions to reach their next
report step and answer with their measures so far (a second Ctrl-C stops waiting)."""


def empty_measures() -> EventMeasures:
    """The measures of a run stopped before any partition was done (marked partial)."""
    return EventMeasures(reached_s=0.0, interval_s=INTERVAL_S, partial=True, meters=0)


@dataclass(slots=True)
class _Kept:
    """The partitions' measures as they come in, by name."""

    measures: dict[str, EventMeasures] = field(default_factory=dict)
    started: set[str] = field(default_factory=set)
    """Partitions a worker has started (told on the client's own thread on Dask)."""
    interrupted: bool = False
    dropped: list[str] = field(default_factory=list)


def run_partitioned(
    scenario: Scenario,
    fleet_dir: Path,
    partitions: Sequence[Partition],
    workers: int,
    *,
    on_started: Callable[[Partition], None] | None = None,
    on_done: Callable[[Partition], None] | None = None,
    on_stopping: Callable[[int], None] | None = None,
    runner: Runner | None = None,
    stop_timeout_s: float = STOP_TIMEOUT_S,
) -> PartitionedRun:
    """Run every partition and merge their measures in the order given. One worker: one
    partition after another in this process (Ctrl-C stops the one running, which keeps what
    it measured so far, marked partial). More: a local Dask cluster of ``workers`` processes
    with one thread each, started here and stopped before this returns or raises; Ctrl-C
    asks the partitions running to stop at their next report step (``on_stopping`` is told
    how many are awaited) and keeps what they measured so far, marked partial, with the
    partitions done; one that does not answer within ``stop_timeout_s`` is left out and named
    in ``dropped``. A partition's failure stops the run: ``PartitionError`` names it.
    ``on_started`` is told of each partition as it starts (on Dask, from the client's own
    thread), ``on_done`` of each run to its end."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    run = runner or run_partition
    kept = _Kept()
    if workers == 1:
        try:
            _in_process(run, str(fleet_dir), scenario, partitions, kept, on_started, on_done)
        finally:
            _fleet.cache_clear()  # the fleet read for the partitions is not kept after them
    else:
        try:
            _on_dask(
                run,
                str(fleet_dir),
                scenario,
                partitions,
                workers,
                kept,
                _Hooks(on_started, on_done, on_stopping),
                stop_timeout_s,
            )
        except KeyboardInterrupt:  # while the cluster started or stopped
            kept.interrupted = True
    parts = [kept.measures[p.name] for p in partitions if p.name in kept.measures]
    merged = merge_measures(parts) if parts else empty_measures()
    if kept.interrupted or len(parts) < len(partitions):
        merged.partial = True
    stopped = tuple(
        p.name for p in partitions if p.name in kept.measures and kept.measures[p.name].partial
    )
    return PartitionedRun(
        merged, len(parts) - len(stopped), len(partitions), stopped, tuple(kept.dropped)
    )


def _in_process(
    run: Runner,
    fleet_dir: str,
    scenario: Scenario,
    partitions: Sequence[Partition],
    kept: _Kept,
    on_started: Callable[[Partition], None] | None,
    on_done: Callable[[Partition], None] | None,
) -> None:
    for p in partitions:
        if on_started is not None:
            on_started(p)
        try:
            m = run(fleet_dir, scenario, p, None, None)
        except KeyboardInterrupt:  # while it was built: nothing kept of this partition
            kept.interrupted = True
            return
        except Exception as exc:
            raise PartitionError(p.name, exc) from exc
        kept.measures[p.name] = m
        if m.partial:  # stopped by Ctrl-C: what it measured so far is kept
            kept.interrupted = True
            return
        if on_done is not None:
            on_done(p)


@dataclass(frozen=True, slots=True)
class _Hooks:
    """What the caller of a run on Dask is told."""

    started: Callable[[Partition], None] | None
    done: Callable[[Partition], None] | None
    stopping: Callable[[int], None] | None


def _ignore_ctrl_c() -> None:
    """Run on each worker's event loop (its main thread): Ctrl-C at a terminal reaches the
    whole process group, and it is the client's to handle (it asks the partitions to stop);
    a worker that took it would die with its partition."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_check(name: str) -> StopCheck:
    """Whether the run's stop event (a ``distributed.Event`` the client sets on Ctrl-C) is
    set; a scheduler that cannot be asked any more means stop too."""
    from distributed import Event

    event = Event(name)

    def stop() -> bool:
        try:
            return bool(event.is_set())
        except Exception:
            return True

    return stop


def _stop_event(run_id: str) -> str:
    return f"dcc-stop-{run_id}"


def _started_topic(run_id: str) -> str:
    return f"dcc-started-{run_id}"


def _on_worker(
    run: Runner,
    fleet_dir: str,
    scenario: Scenario,
    partition: Partition,
    registers: PartRegisters,
    run_id: str,
) -> EventMeasures | None:
    """A partition as a worker runs it: the client told it has started, then stopped at a
    report step once the client asks; None when the client had asked before it started (it
    never ran)."""
    from distributed import get_client

    stop = _stop_check(_stop_event(run_id))
    if stop():
        return None
    get_client().log_event(_started_topic(run_id), partition.name)
    return run(fleet_dir, scenario, partition, registers, stop)


def _take(
    kept: _Kept,
    partition: Partition,
    future: Future[EventMeasures | None],
    on_done: Callable[[Partition], None] | None,
) -> None:
    """A finished partition's measures kept (nothing when it never started)."""
    try:
        measures = future.result()
    except Exception as exc:
        raise PartitionError(partition.name, exc) from exc
    if measures is None:
        return
    kept.measures[partition.name] = measures
    if on_done is not None and not measures.partial:
        on_done(partition)


def _on_dask(
    run: Runner,
    fleet_dir: str,
    scenario: Scenario,
    partitions: Sequence[Partition],
    workers: int,
    kept: _Kept,
    hooks: _Hooks,
    stop_timeout_s: float,
) -> None:
    """Each partition run on a local cluster of processes; the cluster is stopped when the
    run ends, fails or is interrupted."""
    import dask

    # the cluster's own start and stop chatter is not the run's output (distributed reads
    # this when it is first imported)
    with dask.config.set({"logging.distributed": "critical"}):
        from distributed import Client, LocalCluster, as_completed

    with (
        LocalCluster(
            n_workers=min(workers, max(1, len(partitions))),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            # the scheduler's HTTP server (health routes, no dashboard) on any free port: the
            # default 8787 may be another cluster's on this machine
            scheduler_kwargs={"dashboard_address": ":0"},
            memory_limit=0,  # the run bounds its own memory; no worker is paused or killed
            silence_logs=logging.CRITICAL,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_ignore_ctrl_c)
        run_id = uuid.uuid4().hex
        by_name = {p.name: p for p in partitions}

        def on_started(event: tuple[float, str]) -> None:  # on the client's own thread
            kept.started.add(event[1])
            if hooks.started is not None:
                hooks.started(by_name[event[1]])

        client.subscribe_topic(_started_topic(run_id), on_started)  # before any is submitted
        futures: dict[Future[EventMeasures | None], Partition] = {}
        try:
            try:
                # this process reads the fleet once and sends each worker its partitions'
                # registers only, then lets go of the fleet: no worker ever holds the whole
                for p in partitions:
                    [registers] = client.scatter([registers_of(fleet_dir, p)], hash=False)
                    task = client.submit(
                        _on_worker,
                        run,
                        fleet_dir,
                        scenario,
                        p,
                        registers,
                        run_id,
                        key=f"partition-{p.name}",
                        pure=False,
                    )
                    futures[task] = p
                    del registers
                _fleet.cache_clear()
                for future in as_completed(futures):
                    _take(kept, futures[future], future, hooks.done)
            except KeyboardInterrupt:
                kept.interrupted = True
                _stop_running(client, _stop_event(run_id), futures, kept, hooks, stop_timeout_s)
        finally:
            _fleet.cache_clear()
            client.cancel(list(futures))


def _stop_running(
    client: Client,
    stop_event: str,
    futures: dict[Future[EventMeasures | None], Partition],
    kept: _Kept,
    hooks: _Hooks,
    timeout_s: float,
) -> None:
    """After Ctrl-C: ask every partition to stop at its next report step and keep what each
    answers within ``timeout_s`` (the partitions that had not started answer at once, with
    nothing); one started that does not answer in time, or before a second Ctrl-C, is
    dropped."""
    from distributed import Event, wait

    Event(stop_event, client=client).set()
    waiting = {f: p for f, p in futures.items() if p.name not in kept.measures}
    if hooks.stopping is not None:
        hooks.stopping(sum(1 for p in waiting.values() if p.name in kept.started))
    try:
        wait(list(waiting), timeout=timeout_s)
    except TimeoutError:
        pass
    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
        pass
    for future, p in waiting.items():
        if future.done():
            _take(kept, p, future, None)
        elif p.name in kept.started:
            kept.dropped.append(p.name)

"""The results of a simulation run in one schema for both models (event and bulk).

Decides: the rows of every result file (one typed row per file), the keys of ``summary.json``,
how each model's measurements become them under one set of definitions (offered and carried
messages, response time and its mean and percentiles, within-target share, WAN and comms-hub
utilisation, coverage per site; the column dictionary is in docs/scenarios.md), and how they
are written (CSV and JSON, byte-identical for the same scenario and seed, a run stopped early
marked partial).
Must never: run a model, make a hub decision or a queueing calculation (it maps what the models
measured), or print anything.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from hub.policies.sla import SlaRecord, summarise
from hub.registers.inventory import Inventory
from meters_sim.bulk import BulkRun
from meters_sim.flows import region_links
from meters_sim.scenario import RequestClass, Scenario
from meters_sim.simulator import Simulation
from meters_sim.workload import flow_of, request_class

SCHEMA = 3
"""Version of the result files' layout (``schema`` in summary.json, docs/scenarios.md); raised
whenever a file, a column or a summary key changes meaning or goes away."""
INTERVAL_S = 900.0
"""Width of a utilisation interval (15 minutes) in both models."""
SCHEDULE_SERVICES = frozenset({"5.1", "5.2", "5.3"})
"""Schedule management the hub answers itself at once: counted as ``schedules_created`` (5.1),
never as responses (their 0 s would flatter every figure)."""
ALERT_FLOWS: Mapping[str, str] = {
    "AD1": "outage AD1",
    "8F35": "supply restored 8F36",
    "8F36": "supply restored 8F36",
}
"""The flow of a device alert by its code, as the bulk model names its outage flows; every
other code is ``device alerts``."""


class Mode(StrEnum):
    """Which model produced a run's results (the first column of every row)."""

    EVENT = "event"
    BULK = "bulk"


@dataclass(frozen=True, slots=True)
class ServiceRow:
    """``services.csv``: one flow (and, in the event model, service) in one region."""

    region: str | None
    """WAN region (``North``, ``Central``, ``South``); empty for what the hub answers itself
    (no device) and for hub alerts."""
    flow: str
    """Flow class (``on demand``, ``daily reads 4.6.1``, ``device alerts``, ...)."""
    service: str | None
    """DUIS service reference (event model); empty where the model counts flows only."""
    offered: int
    """Messages that arose in the run: requests sent, scheduled firings, alerts raised."""
    messages: int
    """Messages with an outcome in the run: responses of any code (E20, E21 included) and
    alert deliveries."""
    mean_s: float | None
    """Mean response time, s (empty where the model reports percentiles only)."""
    p50_s: float | None
    """Median response time, s."""
    p95_s: float | None
    """95th percentile response time, s."""
    p99_s: float | None
    """99th percentile response time, s."""
    within_target: float | None
    """Share of ``messages`` answered successfully within their target (empty: none)."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """``outbox_depth.csv``: the outbox at the end of a report interval."""

    t_s: float
    """Seconds from the start."""
    held: int
    """Responses and alerts held, not yet acknowledged."""


@dataclass(frozen=True, slots=True)
class WanRow:
    """``wan_utilisation.csv``: one region in one 15-minute interval."""

    region: str
    """WAN region."""
    interval_start_s: float
    """Start of the interval, seconds from the start."""
    mean_cell_utilisation: float
    """Bytes carried both ways over what the region's cells could carry (idle cells count)."""


@dataclass(frozen=True, slots=True)
class CellRow:
    """``cell_utilisation.csv``: one busy cell in one 15-minute interval."""

    region: str
    """WAN region of the cell."""
    cell: str
    """Cell id (``S-0001``)."""
    interval_start_s: float
    """Start of the interval, seconds from the start."""
    bytes: int | None
    """Bytes carried both ways (event model; the bulk model counts messages)."""
    utilisation: float
    """Bytes carried over what the cell could carry in the interval."""


@dataclass(frozen=True, slots=True)
class CommsHubRow:
    """``comms_hub_utilisation.csv``: one region's comms hubs in one 15-minute interval."""

    region: str
    """WAN region."""
    interval_start_s: float
    """Start of the interval, seconds from the start."""
    comms_hubs: int
    """Comms hubs in the region."""
    busy_s: float
    """Seconds their lines spent carrying commands started in the interval."""
    mean_utilisation: float
    """``busy_s`` over ``comms_hubs`` x the interval: the share of time a line is busy."""


Row = ServiceRow | OutboxRow | WanRow | CellRow | CommsHubRow
"""A row of any result file."""
FILES: Mapping[str, type[Row]] = {
    "services.csv": ServiceRow,
    "outbox_depth.csv": OutboxRow,
    "wan_utilisation.csv": WanRow,
    "cell_utilisation.csv": CellRow,
    "comms_hub_utilisation.csv": CommsHubRow,
}
"""Every CSV file a run writes, in both models, with the row type of its lines."""


def columns(row_type: type[Row]) -> tuple[str, ...]:
    """The header of a result file: ``mode``, then the row's fields."""
    return ("mode", *(f.name for f in dataclasses.fields(row_type)))


@dataclass(frozen=True, slots=True)
class Summary:
    """``summary.json``: every key present in both models (null where a model cannot say)."""

    scenario: str
    """The scenario's name."""
    mode: Mode
    """The model that ran."""
    seed: int
    """The scenario's seed."""
    sites: int
    """Sites in the scenario's fleet."""
    simulated_s: float
    """The scenario's duration, s."""
    reached_s: float
    """Simulated time covered, s (less than ``simulated_s`` when the run was stopped)."""
    partial: bool
    """True when the run was stopped (Ctrl-C) before its end: the figures cover
    ``reached_s`` (event) or the regions done (bulk)."""
    service_messages_per_meter_per_month: float
    """The scenario's service messages per meter per month (``Scenario.message_rates``)."""
    alerts_per_meter_per_month: float
    """The scenario's alerts per meter per month."""
    meters: int | None = None
    """Event: meters of the generated fleet; bulk: the expected count."""
    offered: int | None = None
    """Total of ``services.csv``'s ``offered``."""
    messages: int | None = None
    """Total of ``services.csv``'s ``messages``."""
    within_target: float | None = None
    """Share of service responses (alerts aside) within target; null when there were none."""
    mean_response_s: float | None = None
    """Mean response time of the service responses, s (null where the model cannot say)."""
    peak_cell_utilisation: dict[str, float] = field(default_factory=dict)
    """Per region: the busiest cell's utilisation in its busiest interval."""
    coverage: dict[str, float] = field(default_factory=dict)
    """Per region: share of the sites the WAN reaches (event: drawn site by site; bulk: the
    scenario's coverage)."""
    comms_hub_utilisation: dict[str, float] | None = None
    """Per region: share of the run the comms hubs' lines were busy, on average (event)."""
    peak_comms_hub_utilisation: dict[str, float] | None = None
    """Per region: the busiest comms hub's share of the run busy (event)."""
    planned: dict[str, int] | None = None
    """What the workload scheduled (event)."""
    answers: dict[str, int] | None = None
    """Acknowledgements and refusals by code (event)."""
    responses: dict[str, int] | None = None
    """Responses by code, schedule management aside (event)."""
    alerts_delivered: dict[str, int] | None = None
    """Device alerts delivered to users, by code (event)."""
    schedules_created: int | None = None
    """5.1 Create Schedule requests answered (event)."""
    quarantined: int | None = None
    """H7 answers (event)."""
    expired: int | None = None
    """Deliveries that outlived their hold time (H10; event; bulk: of the recipients)."""
    redeliveries: int | None = None
    """Pushes repeated because no acknowledgement came within ``[hub] push_retry`` or the
    recipient went away (event; bulk: of the recipients)."""
    max_outbox_depth: int | None = None
    """Most deliveries the outbox held at any moment (event; the true peak, not a sample)."""
    outbox_drain_s: dict[str, list[float | None]] | None = None
    """Per ``[[recipients]]`` entry (``user u-supa``, ``role IS``), after each of its returns
    (the end of each offline interval within the run), seconds until the deliveries held for
    it were back to no more than when it went away, to ``[scenario] step`` (null: not within
    the run; the key is null with no offline recipients)."""
    commands: int | None = None
    """Commands carried to devices (event)."""
    integrity_failures: int | None = None
    """Frames that failed a head-end's integrity check (responses and alerts; a corrupted
    command frame is dropped by its device, unseen)."""
    security_alerts: int | None = None
    """Security alerts the hub raised (bulk: the hub's monitor fed the bulk model's integrity
    failures)."""
    breaches: list[str] = field(default_factory=list)
    """Each ``[sla]`` threshold breached."""

    def document(self) -> dict[str, Any]:
        """The summary as summary.json holds it (with the schema version)."""
        out = {"schema": SCHEMA, **dataclasses.asdict(self)}
        out["mode"] = self.mode.value
        return out


@dataclass(frozen=True, slots=True)
class Results:
    """One run's rows of every result file, and its summary."""

    summary: Summary
    """summary.json."""
    services: list[ServiceRow] = field(default_factory=list)
    """services.csv."""
    outbox: list[OutboxRow] = field(default_factory=list)
    """outbox_depth.csv."""
    wan: list[WanRow] = field(default_factory=list)
    """wan_utilisation.csv."""
    cells: list[CellRow] = field(default_factory=list)
    """cell_utilisation.csv."""
    comms_hubs: list[CommsHubRow] = field(default_factory=list)
    """comms_hub_utilisation.csv."""

    def rows(self, name: str) -> Sequence[Row]:
        """The rows of one result file by its name."""
        by_name: dict[str, Sequence[Row]] = {
            "services.csv": self.services,
            "outbox_depth.csv": self.outbox,
            "wan_utilisation.csv": self.wan,
            "cell_utilisation.csv": self.cells,
            "comms_hub_utilisation.csv": self.comms_hubs,
        }
        return by_name[name]

    def write(self, directory: Path) -> dict[str, Any]:
        """Write every file of the schema into ``directory``; returns summary.json's content."""
        mode = self.summary.mode.value
        for name, row_type in FILES.items():
            with (directory / name).open("w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(columns(row_type))
                for row in self.rows(name):
                    values = (getattr(row, c.name) for c in dataclasses.fields(row_type))
                    w.writerow([mode, *("" if v is None else v for v in values)])
        doc = self.summary.document()
        (directory / "summary.json").write_text(
            json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        return doc


def _r(x: float) -> float | None:
    """A figure for the files: rounded to 6 places; None when not finite."""
    x = float(x)
    return round(x, 6) if math.isfinite(x) else None


def _scenario_summary(
    scenario: Scenario, mode: Mode, reached_s: float, partial: bool
) -> dict[str, Any]:
    rates = scenario.message_rates()
    return {
        "scenario": scenario.run.name,
        "mode": mode,
        "seed": scenario.run.seed,
        "sites": scenario.fleet.sites,
        "simulated_s": scenario.run.duration_s,
        "reached_s": _r(reached_s) or 0.0,
        "partial": partial,
        "service_messages_per_meter_per_month": _r(rates.service_per_month) or 0.0,
        "alerts_per_meter_per_month": _r(rates.alerts_per_month) or 0.0,
    }


def _timed_row(
    region: str | None,
    flow: str,
    service: str | None,
    offered: int,
    elapsed: Sequence[float],
    within: int,
) -> ServiceRow:
    """A row from response times (``within``: how many of them met their target)."""
    if not elapsed:
        return ServiceRow(region, flow, service, offered, 0, None, None, None, None, None)
    times = np.asarray(elapsed, dtype=float)
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return ServiceRow(
        region,
        flow,
        service,
        max(offered, len(elapsed)),
        len(elapsed),
        _r(times.mean()),
        _r(p50),
        _r(p95),
        _r(p99),
        _r(within / len(elapsed)),
    )


def _sort_key(row: ServiceRow) -> tuple[str, str, str]:
    return (row.region or "", row.flow, row.service or "")


ServiceKey = tuple[str | None, str, str]
"""(region, flow, service) of a row of service responses."""
AlertKey = tuple[str | None, str]
"""(region, flow) of a row of alert deliveries."""


@dataclass(slots=True)
class EventMeasures:
    """What an event-model run, or one partition of it, measured: every figure in a form that
    merges exactly (counts and sums add, samples concatenate, peaks of disjoint parts add or
    take the maximum as documented per field), so a partitioned run's results are computed
    from all its samples, never from averaged summaries."""

    reached_s: float
    """Simulated time covered, s."""
    interval_s: float
    """Width of a utilisation interval, s."""
    partial: bool
    """True when the run was stopped before its end."""
    meters: int
    """Meters of the (part of the) fleet."""
    times: dict[ServiceKey, list[float]] = field(default_factory=dict)
    """Response times, s, per region, flow and service (schedule management aside)."""
    within: Counter[ServiceKey] = field(default_factory=Counter)
    """Responses within their target, per region, flow and service."""
    offered: Counter[ServiceKey] = field(default_factory=Counter)
    """Service requests the users sent, per region, flow and service."""
    records: list[SlaRecord] = field(default_factory=list)
    """Every response's SLA timing (schedule management aside), for the SLA verdict."""
    schedules_created: int = 0
    """5.1 Create Schedule requests answered."""
    alert_times: dict[AlertKey, list[float]] = field(default_factory=dict)
    """Time from an alert being raised to its delivery, s, per region and flow."""
    alert_codes: Counter[str] = field(default_factory=Counter)
    """Device alerts delivered to users, by code."""
    raised: Counter[AlertKey] = field(default_factory=Counter)
    """Device alerts that reached the hub, per region and flow."""
    cell_bytes: dict[tuple[str, int], int] = field(default_factory=dict)
    """(cell, interval index) -> bytes carried both ways."""
    cell_budget: dict[str, float] = field(default_factory=dict)
    """Bytes per second each cell with traffic could carry."""
    cell_region: dict[str, str] = field(default_factory=dict)
    """Every cell of the (part of the) fleet -> its WAN region."""
    hubs_in: Counter[str] = field(default_factory=Counter)
    """Comms hubs per region."""
    hub_busy_s: dict[tuple[str, int], float] = field(default_factory=dict)
    """(region, interval index) -> seconds the region's comms hub lines were busy."""
    busy_total: dict[str, float] = field(default_factory=dict)
    """Per region: seconds all its comms hub lines were busy."""
    busy_peak: dict[str, float] = field(default_factory=dict)
    """Per region: seconds its busiest comms hub's line was busy (merged: the maximum)."""
    uncovered: Counter[str] = field(default_factory=Counter)
    """Per region: comms hubs the WAN does not reach."""
    answers: Counter[str] = field(default_factory=Counter)
    """Acknowledgements and refusals by code."""
    responses: Counter[str] = field(default_factory=Counter)
    """Responses by code, schedule management aside."""
    planned: Counter[str] = field(default_factory=Counter)
    """What the workload scheduled."""
    outbox: list[OutboxRow] = field(default_factory=list)
    """The outbox at the end of each report interval (merged: summed at the same times)."""
    outbox_peak: int = 0
    """Most deliveries the outbox held at any moment (merged: the sum of the parts' peaks, an
    upper bound of the whole's, exact when the parts peak at the same moment)."""
    expired: int = 0
    """Deliveries that outlived their hold time."""
    redeliveries: int = 0
    """Pushes repeated (no acknowledgement within the push retry, or the recipient went away)."""
    commands: int = 0
    """Commands carried to devices."""
    integrity_failures: int = 0
    """Frames that failed a head-end's integrity check."""
    security_alerts: int = 0
    """Security alerts the hub raised."""
    drains: dict[str, list[float | None]] = field(default_factory=dict)
    """Recipient entry -> after each of its returns, seconds its backlog took to drain (None:
    not within the run; merged: the slowest part's, None if any part's is)."""


def merge_drains(
    into: dict[str, list[float | None]], part: Mapping[str, Sequence[float | None]]
) -> None:
    """Merge a part's drain times into ``into``: the whole has drained when every part has."""
    for label, times in part.items():
        have = into.get(label)
        if have is None:
            into[label] = list(times)
            continue
        into[label] = [
            None if a is None or b is None else max(a, b) for a, b in zip(have, times, strict=True)
        ]


def event_measures(
    scenario: Scenario,
    sim: Simulation,
    inventory: Inventory,
    planned: Mapping[str, int],
    outbox: Sequence[OutboxRow],
    *,
    partial: bool = False,
) -> EventMeasures:
    """What an event-model run measured (``sim`` as far as it got), ready to merge with the
    measures of other partitions or to become results (``results_of``)."""
    start = sim.config.start
    site_region = {s.site_id: s.region for s in inventory.sites.values()}
    hub_region = {s.comms_hub: s.region for s in inventory.sites.values()}

    def region_of(device_id: str | None) -> str | None:
        d = inventory.devices.get(device_id or "")
        return site_region.get(d.site_id) if d is not None else None

    m = EventMeasures(
        reached_s=max(0.0, sim.env.now - start),
        interval_s=sim.interval_s,
        partial=partial,
        meters=len([d for d in inventory.devices.values() if d.mpxn]),
    )
    # service responses, by region, flow and service
    times: dict[ServiceKey, list[float]] = defaultdict(list)
    targets = scenario.sla.targets
    for a in sim.answered:
        service = a.sla.service
        if service in SCHEDULE_SERVICES:
            m.schedules_created += service == "5.1"
            continue
        # judged against its request class's target, as the bulk model judges its flows
        record = dataclasses.replace(
            a.sla, target_s=targets.target_s(request_class(a.request_id, service))
        )
        m.records.append(record)
        key = (region_of(a.device_id), flow_of(a.request_id, service, scenario), service)
        times[key].append(record.elapsed_s)
        m.within[key] += record.within_target
    m.times = dict(times)
    for (device_id, prefix, service), n in sim.offered.items():
        if service not in SCHEDULE_SERVICES:
            m.offered[region_of(device_id), flow_of(f"{prefix}-", service, scenario), service] += n
    # alerts: from being raised to the hub holding it for its users (the outbox's own wait
    # is in the outbox figures), each alert once however many users it goes to
    alert_times: dict[AlertKey, list[float]] = defaultdict(list)
    alerts_seen: set[tuple[str, str | None, str, float | None]] = set()
    for d in sim.log:
        if d.kind == "device_alert":
            m.alert_codes[d.code] += 1
            akey = (region_of(d.device_id), ALERT_FLOWS.get(d.code, "device alerts"))
        elif d.kind == "hub_alert":
            akey = (None, "hub alerts")
        elif d.kind == "answer":
            m.answers[d.code] += 1
            continue
        else:
            if d.kind == "response" and (d.service or "") not in SCHEDULE_SERVICES:
                m.responses[d.code] += 1
            continue
        alert = (d.kind, d.device_id, d.code, d.raised_at)
        if alert in alerts_seen:
            continue
        alerts_seen.add(alert)
        raised_at = d.raised_at if d.raised_at is not None else d.at
        held_at = d.held_at if d.held_at is not None else d.at
        alert_times[akey].append(max(0.0, held_at - raised_at))
    m.alert_times = dict(alert_times)
    for (alert_region, code), count in sim.alerts_raised.items():
        m.raised[alert_region, ALERT_FLOWS.get(code, "device alerts")] += count
    # WAN cells and comms hubs
    traffic = sim.config.engine.traffic
    m.cell_bytes = dict(sim.cell_bytes)
    m.cell_budget = {cell: traffic.cell_budget(cell) for cell, _ in sim.cell_bytes}
    m.cell_region = {s.cell: s.region for s in inventory.sites.values()}
    m.hubs_in = Counter(hub_region.values())
    m.hub_busy_s = dict(sim.hub_busy_s)
    m.busy_total = dict.fromkeys(m.hubs_in, 0.0)
    m.busy_peak = dict.fromkeys(m.hubs_in, 0.0)
    for hub, busy in sim.hub_busy().items():
        region = hub_region[hub]
        m.busy_total[region] += busy
        m.busy_peak[region] = max(m.busy_peak[region], busy)
    m.uncovered = Counter(hub_region[h] for h in sim.uncovered)
    m.planned = Counter(planned)
    m.outbox = list(outbox)
    m.outbox_peak = sim.outbox_peak
    m.expired = sim.counters["expired"]
    m.redeliveries = sim.counters["redeliveries"]
    m.commands = sim.counters["commands"]
    m.integrity_failures = sim.counters.get("integrity_failures", 0)
    # counted: the engine's list of them keeps the last ones only
    m.security_alerts = sim.engine.counters.get("security_alert", 0)
    m.drains = {label: list(times) for label, times in sim.drains.items()}
    return m


def _add(into: dict[Any, Any], part: Mapping[Any, Any]) -> None:
    for k, v in part.items():
        into[k] = into.get(k, 0) + v


def merge_measures(parts: Sequence[EventMeasures]) -> EventMeasures:
    """The measures of a whole run from those of its partitions (in the order given: samples
    concatenate in that order, so the same parts in the same order give the same bytes).
    Counts, bytes and busy time add; samples concatenate; the busiest comms hub is the
    busiest of all; the outbox series adds at each report time and its peak is the sum of
    the parts' peaks; the run is as far as its least advanced part, partial if any part is."""
    if not parts:
        raise ValueError("nothing to merge")
    out = EventMeasures(
        reached_s=min(p.reached_s for p in parts),
        interval_s=parts[0].interval_s,
        partial=any(p.partial for p in parts),
        meters=sum(p.meters for p in parts),
    )
    depth: dict[float, int] = {}
    for p in parts:
        if p.interval_s != out.interval_s:
            raise ValueError("partitions measured different utilisation intervals")
        for key, ts in p.times.items():
            out.times.setdefault(key, []).extend(ts)
        for akey, ats in p.alert_times.items():
            out.alert_times.setdefault(akey, []).extend(ats)
        out.records.extend(p.records)
        pairs: list[tuple[Counter[Any], Counter[Any]]] = [
            (out.within, p.within),
            (out.offered, p.offered),
            (out.alert_codes, p.alert_codes),
            (out.raised, p.raised),
            (out.hubs_in, p.hubs_in),
            (out.uncovered, p.uncovered),
            (out.answers, p.answers),
            (out.responses, p.responses),
            (out.planned, p.planned),
        ]
        for counter, part in pairs:
            counter.update(part)
        _add(out.cell_bytes, p.cell_bytes)
        _add(out.hub_busy_s, p.hub_busy_s)
        _add(out.busy_total, p.busy_total)
        out.cell_budget.update(p.cell_budget)
        out.cell_region.update(p.cell_region)
        for region, busy in p.busy_peak.items():
            out.busy_peak[region] = max(out.busy_peak.get(region, 0.0), busy)
        for row in p.outbox:
            depth[row.t_s] = depth.get(row.t_s, 0) + row.held
        out.schedules_created += p.schedules_created
        out.outbox_peak += p.outbox_peak
        out.expired += p.expired
        out.redeliveries += p.redeliveries
        out.commands += p.commands
        out.integrity_failures += p.integrity_failures
        out.security_alerts += p.security_alerts
        merge_drains(out.drains, p.drains)
    reached = round(out.reached_s, 6)
    out.outbox = [OutboxRow(t, n) for t, n in sorted(depth.items()) if t <= reached]
    return out


def event_results(
    scenario: Scenario,
    sim: Simulation,
    inventory: Inventory,
    planned: Mapping[str, int],
    outbox: Sequence[OutboxRow],
    *,
    partial: bool = False,
) -> Results:
    """The results of an event-model run (``sim`` as far as it got: a run stopped early gives
    the figures up to its simulated time, marked partial)."""
    return results_of(
        scenario, event_measures(scenario, sim, inventory, planned, outbox, partial=partial)
    )


def results_of(scenario: Scenario, m: EventMeasures) -> Results:
    """The results of an event-model run from what it measured (one run's measures, or the
    merged measures of a partitioned run)."""
    reached = m.reached_s
    services = [
        _timed_row(k[0], k[1], k[2], m.offered.get(k, 0), m.times.get(k, []), m.within.get(k, 0))
        for k in set(m.times) | set(m.offered)
    ]
    alert_target_s = scenario.sla.targets.target_s(RequestClass.ALERTS)
    for akey in set(m.alert_times) | set(m.raised):
        elapsed = m.alert_times.get(akey, [])
        services.append(
            _timed_row(
                akey[0],
                akey[1],
                None,
                m.raised.get(akey, 0),
                elapsed,
                sum(1 for t in elapsed if t <= alert_target_s),
            )
        )
    services.sort(key=_sort_key)
    # WAN cells, both ways
    width = m.interval_s
    intervals = max(1, math.ceil(max(reached, 1e-9) / width))
    regions = sorted(m.hubs_in)
    cells_in = Counter(m.cell_region.values())
    used: dict[tuple[str, int], float] = defaultdict(float)
    peaks = dict.fromkeys(regions, 0.0)
    cells: list[CellRow] = []
    for (cell, i), b in sorted(m.cell_bytes.items()):
        region = m.cell_region[cell]
        u = b / (m.cell_budget[cell] * width)
        cells.append(CellRow(region, cell, i * width, b, _r(u) or 0.0))
        used[region, i] += u
        peaks[region] = max(peaks[region], u)
    wan = [
        WanRow(region, k * width, _r(used.get((region, k), 0.0) / cells_in[region]) or 0.0)
        for region in regions
        for k in range(intervals)
    ]
    # comms hubs: the share of time their lines carry a command
    comms_hubs = [
        CommsHubRow(
            region,
            k * width,
            m.hubs_in[region],
            _r(m.hub_busy_s.get((region, k), 0.0)) or 0.0,
            _r(m.hub_busy_s.get((region, k), 0.0) / (m.hubs_in[region] * width)) or 0.0,
        )
        for region in regions
        for k in range(intervals)
    ]
    span = reached if reached > 0 else 1.0
    # the hub's own figures
    records = m.records
    total_answers = sum(m.answers.values())
    breaches = scenario.sla.breaches(
        summarise(records),
        max_outbox_depth=m.outbox_peak,
        expiries=m.expired,
        busy_share=m.answers.get("H8", 0) / total_answers if total_answers else 0.0,
    )
    n = len(records)
    summary = Summary(
        **_scenario_summary(scenario, Mode.EVENT, reached, m.partial),
        meters=m.meters,
        offered=sum(r.offered for r in services),
        messages=sum(r.messages for r in services),
        within_target=_r(sum(r.within_target for r in records) / n) if n else None,
        mean_response_s=_r(sum(r.elapsed_s for r in records) / n) if n else None,
        peak_cell_utilisation={r: _r(p) or 0.0 for r, p in peaks.items()},
        coverage={r: _r(1.0 - m.uncovered[r] / m.hubs_in[r]) or 0.0 for r in regions},
        comms_hub_utilisation={
            r: _r(m.busy_total.get(r, 0.0) / (m.hubs_in[r] * span)) or 0.0 for r in regions
        },
        peak_comms_hub_utilisation={r: _r(m.busy_peak.get(r, 0.0) / span) or 0.0 for r in regions},
        planned=dict(sorted(m.planned.items())),
        answers=dict(sorted(m.answers.items())),
        responses=dict(sorted(m.responses.items())),
        alerts_delivered=dict(sorted(m.alert_codes.items())),
        schedules_created=m.schedules_created,
        quarantined=m.answers.get("H7", 0),
        expired=m.expired,
        redeliveries=m.redeliveries,
        max_outbox_depth=m.outbox_peak,
        outbox_drain_s=dict(sorted(m.drains.items())) or None,
        commands=m.commands,
        integrity_failures=m.integrity_failures,
        security_alerts=m.security_alerts,
        breaches=breaches,
    )
    return Results(summary, services, list(m.outbox), wan, cells, comms_hubs)


def is_alert_flow(name: str) -> bool:
    """Whether a bulk flow class carries alerts (not service responses)."""
    return "alert" in name or name.startswith(("outage ", "supply restored"))


def bulk_results(scenario: Scenario, bulk: BulkRun) -> Results:
    """The results of a bulk-model run from what ``meters_sim.bulk.run_bulk`` returned (a run
    stopped by Ctrl-C has fewer regions, marked partial)."""
    services: list[ServiceRow] = []
    answered = 0
    within = 0.0
    timed = 0
    total_s = 0.0
    for f in bulk.flows:
        services.append(
            ServiceRow(
                f.region,
                f.flow,
                f.service,
                f.count,
                f.count,
                _r(f.mean_s) if f.count else None,
                _r(f.p50_s) if f.count else None,
                _r(f.p95_s) if f.count else None,
                _r(f.p99_s) if f.count else None,
                _r(f.within_target) if f.count else None,
            )
        )
        if not is_alert_flow(f.flow):
            answered += f.count
            within += f.count * f.within_target
            done = f.count - f.failed
            if done > 0 and math.isfinite(f.mean_s):
                timed += done
                total_s += done * f.mean_s
    interval = bulk.interval_s
    wan: list[WanRow] = []
    cells: list[CellRow] = []
    for region in bulk.regions:
        wan += [
            WanRow(region.region, k * interval, _r(u) or 0.0)
            for k, u in enumerate(region.utilisation)
        ]
        busy_cells, busy_slots = np.nonzero(region.cell_utilisation)
        cells += [
            CellRow(
                region.region,
                f"{region.region[0]}-{c + 1:04d}",
                k * interval,
                None,
                _r(region.cell_utilisation[c, k]) or 0.0,
            )
            for c, k in zip(busy_cells.tolist(), busy_slots.tolist(), strict=True)
        ]
    outbox = (
        [OutboxRow((k + 1) * interval, round(float(h))) for k, h in enumerate(bulk.outbox_held)]
        if bulk.outboxes
        else []
    )
    done_regions = {r.region for r in bulk.regions}
    share = within / answered if answered else None
    summary = Summary(
        **_scenario_summary(scenario, Mode.BULK, scenario.run.duration_s, bulk.partial),
        meters=round(scenario.fleet.meters),
        offered=sum(r.offered for r in services),
        messages=sum(r.messages for r in services),
        within_target=None if share is None else _r(share),
        mean_response_s=_r(total_s / timed) if timed else None,
        peak_cell_utilisation={r.region: _r(r.peak) or 0.0 for r in bulk.regions},
        coverage={
            links.name: _r(links.coverage) or 0.0
            for links in region_links(scenario)
            if links.name in done_regions
        },
        # the bulk model keeps outboxes for the [[recipients]] only (others ack at once)
        expired=bulk.expiries if bulk.outboxes else None,
        redeliveries=sum(o.redelivered for o in bulk.outboxes) if bulk.outboxes else None,
        max_outbox_depth=bulk.max_outbox_depth if bulk.outboxes else None,
        outbox_drain_s=dict(
            sorted(
                (o.recipient, [None if d is None else _r(d) for d in o.drain_s])
                for o in bulk.outboxes
                if o.drain_s
            )
        )
        or None,
        integrity_failures=bulk.integrity_failures,
        security_alerts=bulk.security_alerts,
        breaches=list(bulk.breaches),
    )
    return Results(summary, services, outbox, wan, cells, [])

"""Bulk-flow model of a whole scenario, vectorised with numpy: the hub, the WAN, the outbox.

Decides, for every flow of a scenario (``meters_sim.flows``) and region by region: how many
messages arise and when (Poisson counts over each flow's piecewise-constant rates, uniform
within a stretch), at which site (so coverage, outage storms, AD1 and integrity failures are
per comms hub); how the hub admits and starts the requests (counted per ``[scenario] step``
across the fleet: a start rate of ``[hub] capacity_per_s`` served by priority class, at most
``max_pending`` accepted and unanswered, the excess answered busy (H8) and retried by its
user after ``busy_retry``); how long each waits on its cell (Lindley recursion over every cell
at once; several channels by the exact earliest-free-channel recursion), with the cell's
service-time law, the WAN round trip, losses and retries; how long each command waits for
its comms hub's line (``[wan.<region>] line_channels`` commands at a time, each busy for its
cell sojourn and WAN trip: Lindley over every comms hub at once for one channel, the exact
recursion per comms hub with two commands or more for several); which requests the hub answers
E20 (site uncovered, cell down) or E21 (premises without power, corrupted frames, no answer
within ``response_timeout``); which frames fail a head-end's integrity check (a command's
response, an alert; a corrupted command frame is dropped by its device) and the security
alerts the hub's own monitor (``hub.policies.security``) raises for them; which devices raise
a Device-pattern command's 8F66 outcome at its execution time (each one its command reached,
from its site: the command itself is answered on the device's acknowledgement, as the hub
answers it); the response-time figures of each flow against its request class's target;
each region's cell utilisation per report interval; and each ``[[recipients]]`` entry's
outbox per step: held deliveries, growth while it is absent, the drain after it reconnects
(limited by its push rate and in-flight window), redeliveries, expiries (H10) and the true
peak over every step. The run's SLA verdict comes from ``SlaThresholds.breaches``, the same
check as the event model's.
Must never: loop over messages in Python (loops run over steps, rounds of retries, cells of a
multi-channel link, comms hubs of a multi-channel line, events, or integrity failures through
the security monitor), hold more than one region's messages at once, or draw a random
number from anything but its part's named stream (``meters_sim.streams``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from hub.policies.security import SecurityConfig, SecurityMonitor
from hub.policies.sla import SlaSummary
from hub.reference.catalogue import PriorityClass
from meters_sim.flows import (
    LAST_GASP_S,
    Flow,
    RegionLinks,
    flows,
    recipient_label,
    recipient_shares,
    region_links,
    storm_flows,
)
from meters_sim.queueing import fifo_departures, multi_server_departures
from meters_sim.scenario import Scenario, ServiceLaw, ServiceTime, region_of_cell
from meters_sim.streams import Streams
from simfield.wan import LatencyKind, WanProfile

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BLOCK_BYTES = 48 * 1024
"""Bulk messages cross the WAN in blocks of this size (as firmware images do)."""
MAX_BUSY_ROUNDS = 64
"""Busy answers one request may get before the model stops retrying it (it then counts as
never admitted within the run)."""
PRIORITIES = (PriorityClass.URGENT, PriorityClass.ON_DEMAND, PriorityClass.BULK)
"""Request priority classes, highest first (alerts are not admitted as requests)."""


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class FlowResult:
    """Response times of one flow in one region."""

    region: str
    """Region name (``North``)."""
    flow: str
    """Flow label."""
    service: str
    """Service reference (or alert label) the flow carries."""
    count: int
    """Messages of the flow: requests submitted (each once, however often it was refused
    busy), alerts the hub received."""
    failed: int
    """Of them, answered with a failure (E20, E21), or still refused busy at the run's end."""
    busy: int
    """Busy answers (H8) its requests got before admission."""
    mean_s: float
    """Mean response time of those answered in time, seconds (nan: none)."""
    p50_s: float
    """Median response time, seconds."""
    p95_s: float
    """95th percentile, seconds."""
    p99_s: float
    """99th percentile, seconds."""
    within_target: float
    """Share of ``count`` answered within the target (failures count against it)."""
    target_s: float
    """The target of its request class."""


@dataclass(frozen=True, slots=True)
class RegionWan:
    """One region's WAN figures."""

    region: str
    """Region name."""
    messages: int
    """Messages its cells carried."""
    utilisation: FloatArray
    """Mean cell utilisation per report interval (carried bytes over capacity)."""
    cell_utilisation: FloatArray
    """Utilisation per cell (rows) and report interval (columns)."""
    peak: float
    """The busiest cell's utilisation in its busiest interval."""


@dataclass(frozen=True, slots=True)
class OutboxResult:
    """The outbox of one ``[[recipients]]`` entry over the run."""

    recipient: str
    """``role IS`` or ``user u-supa``."""
    deliveries: int
    """Responses and alerts that became ready for it."""
    peak_held: int
    """Most deliveries held at once (the maximum over every step, not a sample)."""
    peak_at_s: float
    """When that peak was reached, seconds from the start."""
    expired: int
    """Deliveries held past ``[hub] hold`` (H10: counted, never silently dropped)."""
    redelivered: int
    """Pushes repeated because no acknowledgement came within ``[hub] push_retry``."""
    drain_s: tuple[float | None, ...]
    """After each reconnection, seconds until it held no more than as it went away (None: not
    within the run)."""
    held: FloatArray
    """Deliveries held at the end of each report interval."""


@dataclass(frozen=True, slots=True)
class BulkRun:
    """Everything a bulk run found."""

    flows: tuple[FlowResult, ...]
    """Per region and flow."""
    regions: tuple[RegionWan, ...]
    """Per region."""
    outboxes: tuple[OutboxResult, ...]
    """Per ``[[recipients]]`` entry."""
    interval_s: float
    """Length of the report intervals (``[scenario] report_interval``)."""
    requests: int
    """Requests submitted (first attempts)."""
    busy_answers: int
    """Busy answers (H8) given, retries included."""
    integrity_failures: int
    """Frames that failed a head-end's integrity check: commands' responses and alerts (a
    corrupted command frame the device drops, unseen by the hub)."""
    security_alerts: int
    """Security alerts the hub's monitor raises for those failures (per comms hub and
    window, and across the hub)."""
    lost_alerts: int
    """Alerts that never reached the hub (uncovered sites, cells down, corrupted frames)."""
    breaches: tuple[str, ...]
    """Every ``[sla]`` threshold broken (empty: the run passes)."""
    outbox_held: FloatArray = field(default_factory=lambda: np.zeros(0))
    """Deliveries held over all recipients at the end of each report interval."""
    partial: bool = False
    """True when Ctrl-C stopped the run: only the regions in ``regions`` were run."""

    @property
    def messages(self) -> int:
        """Messages handled (every flow, every region)."""
        return sum(f.count for f in self.flows)

    @property
    def busy_share(self) -> float:
        """Busy answers over requests submitted."""
        return self.busy_answers / self.requests if self.requests else 0.0

    @property
    def max_outbox_depth(self) -> int:
        """The highest true peak of any recipient's outbox."""
        return max((o.peak_held for o in self.outboxes), default=0)

    @property
    def expiries(self) -> int:
        """Deliveries expired over all recipients."""
        return sum(o.expired for o in self.outboxes)


# ---------------------------------------------------------------------------- arrivals


def _arrivals(
    flow: Flow, units: int, sites: int, span: float, rng: np.random.Generator
) -> tuple[FloatArray, npt.NDArray[np.int32]]:
    """A flow's arrival times (seconds from the start, within the run) and sites."""
    if not flow.segments or units <= 0:
        return np.zeros(0), np.zeros(0, dtype=np.int32)
    start = np.array([s.start_s for s in flow.segments])
    length = np.array([s.end_s - s.start_s for s in flow.segments])
    counts = rng.poisson(np.array([s.per_unit for s in flow.segments]) * units)
    seg = np.repeat(np.arange(start.size), counts)
    times = start[seg] + rng.random(seg.size) * length[seg]
    if flow.jitter_s > 0:
        times += rng.random(seg.size) * flow.jitter_s
    site = rng.integers(0, max(1, sites), seg.size, dtype=np.int32)
    keep = (times >= 0.0) & (times < span)
    if keep.all():
        return times, site
    return times[keep], site[keep]


@dataclass(slots=True)
class _Sites:
    """Per-site facts of one region, each from its own stream."""

    uncovered: npt.NDArray[np.bool_]
    storm_from: list[tuple[float, FloatArray, npt.NDArray[np.bool_], str]]
    """Per storm: its start, each site's restoration time, which sites lose power, and its
    stream name."""


def _sites(scenario: Scenario, links: RegionLinks, streams: Streams) -> _Sites:
    region = links.region.value
    covered = streams.generator("coverage", region).random(links.sites) < links.coverage
    storms = []
    start = scenario.run.start
    for storm in scenario.load.outages:
        if storm.region is not links.region:
            continue
        name = f"{storm.start.isoformat()} {storm.share} {storm.duration_s} {storm.restore_over_s}"
        u = streams.generator("outage", name, region).random(links.sites)
        hit = u < storm.share
        begin = (storm.start - start).total_seconds()
        restore = begin + storm.duration_s + (u / storm.share) * storm.restore_over_s
        storms.append((begin, restore, hit, name))
    return _Sites(~covered, storms)


def _without_power(
    sites: _Sites, site: npt.NDArray[np.int32], t: FloatArray
) -> npt.NDArray[np.bool_]:
    """Messages whose site has no power at their time."""
    dark = np.zeros(t.size, dtype=bool)
    for begin, restore, hit, _ in sites.storm_from:
        dark |= hit[site] & (t >= begin) & (t < restore[site])
    return dark


def _storm_alerts(
    scenario: Scenario, links: RegionLinks, sites: _Sites, streams: Streams, span: float
) -> list[tuple[FloatArray, npt.NDArray[np.int32]]]:
    """AD1 (one per comms hub out for more than 3 minutes) and 8F36 (one per restored
    electricity supply) of the region's storms."""
    ad1_t, ad1_s, back_t, back_s = [], [], [], []
    electricity = scenario.fleet.mix.dual_fuel + scenario.fleet.mix.electricity_only
    for begin, restore, hit, name in sites.storm_from:
        idx = np.flatnonzero(hit & (restore - begin > LAST_GASP_S)).astype(np.int32)
        ad1_t.append(np.full(idx.size, begin + LAST_GASP_S))
        ad1_s.append(idx)
        rng = streams.generator("restoration", name, links.region.value)
        back = np.flatnonzero(hit).astype(np.int32)
        back = back[rng.random(back.size) < electricity]
        back_t.append(restore[back])
        back_s.append(back)
    out = []
    for ts, ss in ((ad1_t, ad1_s), (back_t, back_s)):
        t = np.concatenate(ts) if ts else np.zeros(0)
        s = np.concatenate(ss) if ss else np.zeros(0, dtype=np.int32)
        keep = t < span
        order = np.argsort(t[keep], kind="stable")
        out.append((t[keep][order], s[keep][order]))
    return out


def _region_flows(
    scenario: Scenario, links: RegionLinks, streams: Streams, all_flows: Sequence[Flow]
) -> list[tuple[FloatArray, npt.NDArray[np.int32]]]:
    """Arrival times and sites of every flow (storm flows last) in one region."""
    span = scenario.run.duration_s
    out = []
    for flow in all_flows[:-2]:
        if flow.outcome_of is not None:  # its request flow's sites, once admitted (below)
            out.append((np.zeros(0), np.zeros(0, dtype=np.int32)))
            continue
        units = links.sites if flow.per_site else links.meters
        rng = streams.generator("arrivals", flow.key, links.region.value)
        out.append(_arrivals(flow, units, links.sites, span, rng))
    out += _storm_alerts(scenario, links, _sites(scenario, links, streams), streams, span)
    return out


# ---------------------------------------------------------------------------- the hub


@dataclass(slots=True)
class _Admission:
    """The hub's admission and start of requests per step and priority class."""

    step: float
    offered: FloatArray  # (P, n) first attempts and retries
    busy: FloatArray  # (P, n)
    cum_admitted: FloatArray  # (P, n)
    cum_started: FloatArray  # (P, n)

    waits: bool = True
    """False when every request starts in the step it is admitted (no queue at the hub)."""

    @classmethod
    def instant(cls, step: float, n: int) -> _Admission:
        """A hub never near its bounds: no busy answers, no waits."""
        zeros = np.zeros((len(PRIORITIES), n))
        return cls(step, zeros, zeros, zeros, zeros, waits=False)

    @property
    def any_busy(self) -> bool:
        """True if any request was answered busy."""
        return bool(self.busy.any())

    def busy_share(self, p: int, k: IntArray) -> FloatArray:
        off = self.offered[p, k]
        return np.asarray(
            np.divide(self.busy[p, k], off, out=np.zeros(k.size), where=off > 0), dtype=np.float64
        )

    def start_delay(self, p: int, k: IntArray, u: FloatArray) -> FloatArray:
        """Seconds from admission in step ``k`` to start, FIFO within the class."""
        if not self.waits:
            return np.zeros(k.size)
        cum = self.cum_admitted[p]
        before = np.where(k > 0, cum[np.maximum(k - 1, 0)], 0.0)
        position = before + u * (cum[k] - before)
        started = np.searchsorted(self.cum_started[p], position, side="left")
        return np.asarray(np.maximum(0, started - k) * self.step, dtype=np.float64)


def _admission(scenario: Scenario, offered_first: FloatArray, round_trip_s: float) -> _Admission:
    """Per step, by priority: the hub starts at most ``capacity_per_s`` a second, highest
    class first; it accepts while fewer than ``max_pending`` requests are accepted and
    unanswered (queued, or started within the last round trip), and answers the rest busy;
    a busy request comes back ``busy_retry`` later."""
    hub = scenario.hub
    step = scenario.run.step_s
    p_count, n = offered_first.shape
    per_step = hub.capacity_per_s * step
    window = max(1, math.ceil(round_trip_s / step))
    delay = max(1, round(hub.busy_retry_s / step))
    # fast path: never near a bound, no busy answers and every request starts in its step
    totals = offered_first.sum(axis=0)
    rolling = np.convolve(totals, np.ones(window + 1))[:n]
    if totals.max(initial=0.0) <= per_step and rolling.max(initial=0.0) <= hub.max_pending:
        cum = np.cumsum(offered_first, axis=1)
        return _Admission(step, offered_first, np.zeros_like(offered_first), cum, cum, False)
    offered = offered_first.copy()
    busy = np.zeros_like(offered)
    admitted = np.zeros_like(offered)
    started = np.zeros_like(offered)
    backlog = [0.0] * p_count
    recent: list[float] = [0.0] * window
    in_flight = 0.0
    for k in range(n):
        pending = sum(backlog) + in_flight
        room = max(0.0, hub.max_pending - pending)
        for p in range(p_count):
            o = float(offered[p, k])
            a = min(o, room)
            room -= a
            admitted[p, k] = a
            backlog[p] += a
            if o > a:
                busy[p, k] = o - a
                if k + delay < n:
                    offered[p, k + delay] += o - a
        capacity = per_step
        began = 0.0
        for p in range(p_count):
            s = min(backlog[p], capacity)
            backlog[p] -= s
            capacity -= s
            started[p, k] = s
            began += s
        in_flight += began - recent[k % window]
        recent[k % window] = began
    return _Admission(step, offered, busy, np.cumsum(admitted, axis=1), np.cumsum(started, axis=1))


# ---------------------------------------------------------------------------- the WAN


def _latency(wan: WanProfile, n: int, rng: np.random.Generator) -> FloatArray:
    if wan.latency is LatencyKind.ZERO or n == 0:
        return np.zeros(n)
    if wan.latency is LatencyKind.FIXED:
        return np.full(n, wan.median_s)
    if wan.latency is LatencyKind.UNIFORM:
        return np.maximum(0.0, rng.uniform(wan.median_s - wan.spread, wan.median_s + wan.spread, n))
    return np.asarray(wan.median_s * np.exp(rng.normal(0.0, wan.spread, n)), dtype=np.float64)


def _retries(wan: WanProfile, n: int, rng: np.random.Generator) -> FloatArray:
    """Extra delay from lost attempts (each costs a retry timeout); inf when every attempt is
    lost."""
    if wan.loss <= 0 or n == 0:
        return np.zeros(n)
    lost = rng.geometric(1.0 - wan.loss, n) - 1
    extra = lost * wan.retry_timeout_s
    return np.where(lost > wan.retries, np.inf, extra).astype(np.float64)


def _service_factor(law: ServiceTime, n: int, rng: np.random.Generator) -> FloatArray:
    """Multipliers of the mean service time, mean 1, drawn from the cell's law."""
    if law.law is ServiceLaw.DETERMINISTIC:
        return np.ones(n)
    if law.law is ServiceLaw.EXPONENTIAL:
        return rng.exponential(1.0, n)
    if law.law is ServiceLaw.LOGNORMAL:
        return np.exp(rng.normal(-0.5 * law.sigma**2, law.sigma, n))
    return np.asarray(law.samples)[rng.integers(0, len(law.samples), n)]


def _sojourn(
    times: FloatArray,
    cell: npt.NDArray[np.integer[Any]],
    service: FloatArray,
    span: float,
    channels: int,
) -> FloatArray:
    """Time in system on each cell's link, for messages sorted by (cell, time)."""
    if times.size == 0:
        return np.zeros(0)
    if channels == 1:  # cells laid end to end in time: one Lindley pass never mixes them
        shifted = times + cell * (span * 4.0 + 1.0)
        return fifo_departures(shifted, service).departures - shifted
    out = np.empty(times.size)
    edges = np.flatnonzero(np.diff(cell)) + 1
    for lo, hi in zip(np.r_[0, edges], np.r_[edges, times.size], strict=True):
        q = multi_server_departures(times[lo:hi], service[lo:hi], channels)
        out[lo:hi] = q.departures - times[lo:hi]
    return out


def _line_waits(
    times: FloatArray,
    site: npt.NDArray[np.integer[Any]],
    busy: FloatArray,
    channels: int,
    span: float,
) -> FloatArray:
    """How long each command waits for a free channel of its comms hub's line (in the order
    given), the line busy ``busy`` seconds for each command it carries."""
    out = np.zeros(times.size)
    if times.size < 2:
        return out
    # the longest a comms hub's line is busy over the run bounds each hub's stretch of time
    per_site = np.bincount(site, weights=busy)
    horizon = span * 4.0 + 1.0 + float(per_site.max())
    order = np.argsort(site.astype(np.float64) * horizon + times, kind="stable")
    t, s, b = times[order], site[order], busy[order]
    if channels == 1:  # comms hubs laid end to end in time: one Lindley pass never mixes them
        shifted = t + s.astype(np.float64) * horizon
        out[order] = fifo_departures(shifted, b).waits
        return out
    edges = np.flatnonzero(np.diff(s)) + 1
    for lo, hi in zip(np.r_[0, edges], np.r_[edges, t.size], strict=True):
        if hi - lo > channels:  # fewer commands than channels never wait
            q = multi_server_departures(t[lo:hi], b[lo:hi], channels)
            out[order[lo:hi]] = q.departures - t[lo:hi] - b[lo:hi]
    return out


# ---------------------------------------------------------------------------- one region


@dataclass(frozen=True, slots=True)
class IntegrityFailures:
    """One region's integrity failures: when each frame reached the hub, from which site."""

    region: str
    """Region name (``North``): with a site number, names a comms hub."""
    times: FloatArray
    """When each failing frame reached the hub, seconds from the start."""
    sites: npt.NDArray[np.int32]
    """The site (comms hub) each came from, numbered within the region."""


def security_alerts(
    failures: Sequence[IntegrityFailures], config: SecurityConfig | None = None
) -> int:
    """The security alerts the hub raises for these integrity failures: every failure, in
    time order over every region, through the hub's own monitor (``SecurityMonitor``, its
    rule per comms hub and across the hub), each site a comms hub."""
    monitor = SecurityMonitor(config)
    times = np.concatenate([f.times for f in failures]) if failures else np.zeros(0)
    region = np.repeat(np.arange(len(failures)), [f.times.size for f in failures])
    sites = np.concatenate([f.sites for f in failures]) if failures else np.zeros(0, np.int32)
    names = [f.region for f in failures]
    order = np.argsort(times, kind="stable")
    alerts = 0
    for t, r, site in zip(
        times[order].tolist(), region[order].tolist(), sites[order].tolist(), strict=True
    ):
        alerts += len(monitor.on_integrity_failure(f"{names[r]} {site}", t))
    return alerts


@dataclass(slots=True)
class _Ready:
    """Delivery counts per recipient and step, summed over the regions."""

    counts: FloatArray  # (recipients, n)


def _percentiles(ok: FloatArray) -> tuple[float, float, float, float]:
    if ok.size == 0:
        return (math.nan, math.nan, math.nan, math.nan)
    p50, p95, p99 = np.percentile(ok, [50.0, 95.0, 99.0])
    return float(ok.mean()), float(p50), float(p95), float(p99)


def _outcome_rows(
    all_flows: Sequence[Flow], first_row: Sequence[int], rows: int
) -> list[tuple[IntArray, IntArray]]:
    """Rows (in the order flows were laid out) of each Device-pattern request flow and of
    its outcome flow, request by request (the outcomes are laid out in the requests' order)."""
    ends = [*first_row[1:], rows]
    flow_of = {fl.key: f for f, fl in enumerate(all_flows)}
    out = []
    for g, fl in enumerate(all_flows):
        f = flow_of.get(fl.outcome_of) if fl.outcome_of is not None else None
        if f is None:
            continue
        req = np.arange(first_row[f], ends[f], dtype=np.int64)
        outcome = np.arange(first_row[g], ends[g], dtype=np.int64)
        if req.size != outcome.size:
            raise AssertionError(f"{fl.key}: {outcome.size} outcomes for {req.size} requests")
        out.append((req, outcome))
    return out


def _simulate_region(
    scenario: Scenario,
    links: RegionLinks,
    all_flows: Sequence[Flow],
    admission: _Admission,
    streams: Streams,
    ready: _Ready,
    interval_s: float,
) -> tuple[list[FlowResult], RegionWan, int, int, IntegrityFailures, int]:
    run, hub = scenario.run, scenario.hub
    span, step = run.duration_s, run.step_s
    n_steps = admission.offered.shape[1]
    region = links.region.value
    wan_settings = scenario.wan[links.region]
    law = wan_settings.service_time
    varied = law.law is not ServiceLaw.DETERMINISTIC
    sites = _sites(scenario, links, streams)
    arrivals = _region_flows(scenario, links, streams, all_flows)
    cells = max(1, links.cells)
    parts: dict[str, list[npt.NDArray[np.generic]]] = {
        k: [] for k in ("t", "clock", "klass", "site", "wan", "factor", "u")
    }
    busy_counts: list[int] = []
    never: list[int] = []  # requests still refused busy at the run's end (or after the rounds)
    requests = busy_total = 0
    admitted_sites: dict[str, npt.NDArray[np.int32]] = {}
    first_row: list[int] = []  # each flow's first row in the concatenated arrays
    rows = 0
    for f, (flow, (t, site)) in enumerate(zip(all_flows, arrivals, strict=True)):
        if flow.outcome_of is not None:  # one outcome per request admitted, at `at`
            site = admitted_sites.get(flow.outcome_of, np.zeros(0, dtype=np.int32))
            at = flow.segments[0].start_s
            site = site if 0.0 <= at < span else site[:0]
            t = np.full(site.size, at)
        # every per-message draw comes from the flow's own streams, so a message keeps its
        # draws whatever else the scenario adds (common random numbers)
        w = streams.generator("wan", flow.key, region)
        delay = _latency(links.wan, t.size, w) + _retries(links.wan, t.size, w)
        factor = (
            _service_factor(law, t.size, streams.generator("service", flow.key, region))
            if varied
            else None
        )
        u = (
            streams.generator("recipients", flow.key, region).random(t.size)
            if scenario.recipients
            else np.zeros(0)
        )
        if flow.is_request:
            rng = streams.generator("hub", flow.key, region)
            n_busy = np.zeros(t.size, dtype=np.int64)
            requests += t.size
            p = PRIORITIES.index(flow.priority)
            admitted = np.ones(t.size, dtype=bool)
            refused = np.zeros(t.size, dtype=bool)
            for _ in range(MAX_BUSY_ROUNDS):
                if not admission.any_busy:
                    break
                k = np.minimum((t // step).astype(np.int64), n_steps - 1)
                refused = admitted & (rng.random(t.size) < admission.busy_share(p, k))
                if not refused.any():
                    break
                n_busy += refused
                t = np.where(refused, t + hub.busy_retry_s, t)
                admitted &= t < span
            else:  # still refused after every round: never admitted
                admitted &= ~refused
            busy_total += int(n_busy.sum())
            busy_counts.append(int(n_busy.sum()))
            never.append(int(np.count_nonzero(~admitted)))
            if not admitted.all():
                t, site, delay = t[admitted], site[admitted], delay[admitted]
                u = u[admitted] if u.size else u
                factor = None if factor is None else factor[admitted]
            k = np.minimum((t // step).astype(np.int64), n_steps - 1)
            clock = t if flow.clock_from_s is None else np.maximum(t, flow.clock_from_s)
            t = t + admission.start_delay(p, k, rng.random(t.size))
            admitted_sites[flow.key] = site
        else:
            clock = t
            busy_counts.append(0)
            never.append(0)
        first_row.append(rows)
        rows += t.size
        parts["t"].append(t)
        parts["clock"].append(clock)
        parts["klass"].append(np.full(t.size, f, dtype=np.int16))
        parts["site"].append(site)
        parts["wan"].append(delay)
        parts["u"].append(u)
        if factor is not None:
            parts["factor"].append(factor)
    del arrivals
    t = np.concatenate(parts.pop("t")).astype(np.float64)
    klass = np.concatenate(parts.pop("klass")).astype(np.int16)
    site = np.concatenate(parts.pop("site")).astype(np.int32)
    lut_request = np.array([fl.is_request for fl in all_flows])
    is_request = lut_request[klass]
    # unreachable: sites outside coverage, cells down (E20); alerts from them never arrive
    cell = ((site.astype(np.int64) * cells) // max(1, links.sites)).astype(np.int32)
    unreachable = sites.uncovered[site]
    start = run.start
    for outage in scenario.load.cell_outages:
        if outage.region is not links.region:
            continue
        down = streams.generator(
            "cell outage", outage.start.isoformat(), outage.share, outage.duration_s, region
        ).random(cells)
        a = (outage.start - start).total_seconds()
        unreachable |= (down < outage.share)[cell] & (t >= a) & (t < a + outage.duration_s)
    dark = _without_power(sites, site, t)
    if dark.any():
        dark &= ~np.array([fl.last_gasp for fl in all_flows])[klass]
    # integrity: the first frame (a command's, or an alert's) corrupted, and a command's
    # response frame corrupted although its command got through; one draw per message and
    # event: u < share, the first frame; share <= u < command_share, the response frame only
    first_frame = np.zeros(t.size, dtype=bool)
    response_frame = np.zeros(t.size, dtype=bool)
    for event in scenario.load.integrity:
        if event.region is not links.region:
            continue
        g = streams.generator(
            "integrity", event.start.isoformat(), event.share, event.duration_s, region
        )
        if event.cell is not None:
            hit_cells = np.zeros(cells, dtype=bool)
            number = int(event.cell.split("-")[1]) - 1
            if region_of_cell(event.cell) is links.region and number < cells:
                hit_cells[number] = True
        else:
            hit_cells = g.random(cells) < event.cells
        a = (event.start - start).total_seconds()
        during = hit_cells[cell] & (t >= a) & (t < a + event.duration_s)
        u = g.random(t.size)
        first_frame |= during & (u < event.share)
        response_frame |= during & is_request & (u >= event.share) & (u < event.command_share)
    corrupted = first_frame | response_frame
    reached = ~unreachable & ~dark
    # the head-ends see a corrupted response frame (a corrupted command frame the device
    # drops, unseen by the hub) and a corrupted alert frame: each one integrity failure
    detected = reached & np.where(is_request, response_frame & ~first_frame, first_frame)
    failures_t = [t[detected & ~is_request]]
    failures_site = [site[detected & ~is_request]]
    detected &= is_request  # timed below, when their responses reach the hub
    # an outcome (8F66) is raised only by a device its Device-pattern command reached
    unraised = np.zeros(t.size, dtype=bool)
    outcome_rows = _outcome_rows(all_flows, first_row, rows)
    for req, out in outcome_rows:
        unraised[out] = unreachable[req] | dark[req] | first_frame[req]
    del first_frame, response_frame
    # alerts that never reach the hub are not the hub's to count
    gone = ~is_request & (unreachable | dark | corrupted) & ~unraised
    lost_alerts = int(np.count_nonzero(gone))
    gone |= unraised
    del unraised
    # one gather into (cell, time) order, for the Lindley pass, dropping the lost alerts
    kept = np.flatnonzero(~gone)
    del gone
    horizon = span * 4.0 + 1.0
    key = cell[kept] * horizon + t[kept]
    order = kept[np.argsort(key)]
    del kept, key
    t, klass, cell, site = t[order], klass[order], cell[order], site[order]
    is_request, unreachable, dark, corrupted, detected = (
        is_request[order], unreachable[order], dark[order], corrupted[order], detected[order],
    )  # fmt: skip
    n = t.size
    lut_bulk = np.array([fl.bulk for fl in all_flows])
    is_bulk = lut_bulk[klass]
    sizes = np.array([fl.wire_bytes for fl in all_flows], dtype=np.float64)[klass]
    channels = wan_settings.channels
    cap = links.cell_bytes_per_s / channels
    service = sizes / cap
    if varied:
        service *= np.concatenate(parts.pop("factor"))[order]
    on_link = ~unreachable
    sojourn = np.zeros(n)
    if lut_bulk.any() and is_bulk.any():
        high = on_link & ~is_bulk
        low = on_link & is_bulk
        rho_high = np.bincount(cell[high], weights=sizes[high], minlength=cells) / (cap * span)
        rho_bulk = np.bincount(cell[low], weights=sizes[low], minlength=cells) / (cap * span)
        sojourn[high] = _sojourn(t[high], cell[high], service[high], span, channels)
        # priority, approximated: the other classes see the link as if bulk traffic were
        # absent, plus the residual of one bulk block in service with the probability the
        # link is busy with bulk; bulk traffic gets the capacity the others leave its cell
        g = streams.generator("bulk residual", region)
        hb = np.minimum(rho_bulk[cell[high]], 1.0)
        m = int(high.sum())
        sojourn[high] += np.where(g.random(m) < hb, g.random(m) * BLOCK_BYTES / cap, 0.0)
        spare = np.maximum(1.0 - rho_high[cell[low]], 1e-3)
        sojourn[low] = _sojourn(t[low], cell[low], service[low] / spare, span, channels)
        del high, low
    elif on_link.all():
        sojourn = _sojourn(t, cell, service, span, channels)
    else:
        sojourn[on_link] = _sojourn(t[on_link], cell[on_link], service[on_link], span, channels)
    del service
    trip = sojourn
    trip += np.concatenate(parts.pop("wan"))[order]
    # the comms hub's line: a command (not an image block, paced by its rollout) holds one of
    # its line's channels for its cell sojourn and WAN trip (every attempt lost: all of its
    # retry timeouts; unreachable: one retry timeout), and waits while every channel is busy
    on_line = np.flatnonzero(is_request & ~is_bulk)
    if on_line.size:
        wan = links.wan
        held = trip[on_line]
        held = np.where(np.isfinite(held), held, (wan.retries + 1) * wan.retry_timeout_s)
        held = np.where(unreachable[on_line], wan.retry_timeout_s, held)
        waits = _line_waits(t[on_line], site[on_line], held, wan_settings.line_channels, span)
        trip[on_line] += waits
        del held, waits
    del on_line
    # a corrupted response fails its head-end's check when it reaches the hub
    detected &= np.isfinite(trip)
    failures_t.append(t[detected] + trip[detected])
    failures_site.append(site[detected])
    del detected, site
    # a command unanswered within the response timeout gets E21; image transfers (bulk
    # priority) are paced by the firmware flow, block by block, not timed out as one command
    timed_out = is_request & ~is_bulk & (trip > hub.response_timeout_s)
    no_answer = is_request & (dark | corrupted)
    del dark, corrupted, is_bulk
    failed = unreachable | timed_out | no_answer
    late = timed_out | no_answer
    answered_at = trip
    answered_at[late] = hub.response_timeout_s
    answered_at[unreachable] = 0.0
    answered_at += t
    del late, timed_out, no_answer
    elapsed = answered_at - np.concatenate(parts.pop("clock"))[order]
    np.maximum(elapsed, 0.0, out=elapsed)
    # ---- results per flow: one stable sort by flow, then slices
    by_flow = np.argsort(klass, kind="stable")
    bounds = np.searchsorted(klass[by_flow], np.arange(len(all_flows) + 1))
    results = []
    for f, flow in enumerate(all_flows):
        mine = by_flow[bounds[f] : bounds[f + 1]]
        count = mine.size + never[f]
        if count == 0:
            continue
        ok = elapsed[mine[~failed[mine]]]
        within = float(np.count_nonzero(ok <= flow.target_s)) / count
        mean, p50, p95, p99 = _percentiles(ok)
        results.append(
            FlowResult(
                links.name, flow.name, flow.service, count, count - ok.size, busy_counts[f],
                mean, p50, p95, p99, within, flow.target_s,
            )
        )  # fmt: skip
    # ---- deliveries to the recipients' outboxes
    if ready.counts.shape[0]:
        u = np.concatenate(parts.pop("u"))[order]
        ready_step = (answered_at // step).astype(np.int64)
        for f, flow in enumerate(all_flows):
            shares = recipient_shares(scenario, flow, links.region)
            mine = by_flow[bounds[f] : bounds[f + 1]]
            mine = mine[ready_step[mine] < n_steps]
            edge = 0.0
            for recipient, share in shares:
                r = scenario.recipients.index(recipient)
                pick = mine[(u[mine] >= edge) & (u[mine] < edge + share)]
                ready.counts[r] += np.bincount(ready_step[pick], minlength=n_steps)[:n_steps]
                edge += share
    del parts, order
    # ---- utilisation per report interval
    bins = max(1, math.ceil(span / interval_s))
    slot = np.minimum((t // interval_s).astype(np.int64), bins - 1)
    capacity = links.cell_bytes_per_s * interval_s
    index = cell[on_link].astype(np.int64) * bins + slot[on_link]
    per_cell = (
        np.bincount(index, weights=sizes[on_link], minlength=cells * bins) / capacity
    ).reshape(cells, bins)
    wan_result = RegionWan(
        links.name,
        int(np.count_nonzero(on_link)),
        per_cell.mean(axis=0),
        per_cell,
        float(per_cell.max()) if per_cell.size else 0.0,
    )
    failures = IntegrityFailures(
        links.name, np.concatenate(failures_t), np.concatenate(failures_site)
    )
    return results, wan_result, requests, busy_total, failures, lost_alerts


# ---------------------------------------------------------------------------- the outbox


def outbox(
    arrivals: FloatArray,
    offline: Sequence[tuple[float, float]],
    *,
    step: float,
    drain_per_s: float,
    ack_delay_s: float,
    hold_s: float,
    push_retry_s: float,
) -> tuple[FloatArray, int, int, tuple[float | None, ...]]:
    """One recipient's outbox, step by step, from the deliveries ready in each step.

    Returns the deliveries held at the end of every step (queued, or pushed and not yet
    acknowledged), the number expired, the number redelivered and, after each offline
    period, how long the backlog took to drain (until it held no more than as it went away).
    While offline nothing is pushed; online, at
    most ``drain_per_s * step`` a step, oldest first (FIFO); the backlog follows Lindley's
    recursion ``b[k] = max(0, b[k-1] + a[k] - c[k])``, computed as ``X[k] - min(0, min X[:k])``
    with ``X`` the cumulative sum of ``a - c``. Deliveries in flight when the recipient goes
    away are pushed again once it is back. A delivery that waits longer than the hold time
    expires: of the ones ready in step ``j``, those not pushed by step ``j + hold``.
    """
    n = arrivals.size
    a = arrivals.astype(np.float64).copy()
    online = np.ones(n, dtype=bool)
    for lo, hi in offline:
        online[int(lo // step) : math.ceil(hi / step)] = False
    ceiling = float(a.sum()) + 1.0
    per_step = min(ceiling, drain_per_s * step)
    lag = max(0, round(ack_delay_s / step))

    def run(a: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        c = np.where(online, per_step, 0.0)
        x = np.cumsum(a - c)
        backlog = x - np.minimum(0.0, np.minimum.accumulate(x))
        previous = np.r_[0.0, backlog[:-1]]
        pushed = previous + a - backlog
        cum = np.cumsum(pushed)
        unacked = cum - np.r_[np.zeros(min(lag, n)), cum[: n - lag]] if lag else np.zeros(n)
        return backlog, pushed, unacked

    backlog, pushed, unacked = run(a)
    redelivered = 0.0
    starts = [int(lo // step) for lo, _ in offline if int(lo // step) < n]
    if lag and starts:  # pushes unacknowledged when it goes away come back
        back = np.zeros(n)
        for k in starts:
            back[k] += unacked[k - 1] if k > 0 else 0.0
        redelivered += float(back.sum())
        backlog, pushed, unacked = run(a + back)
    if ack_delay_s > push_retry_s:
        redelivered += float(pushed.sum()) * math.floor(ack_delay_s / push_retry_s)
    held = backlog + unacked
    cum_a = np.cumsum(a)
    cum_p = np.cumsum(pushed)
    horizon = round(hold_s / step)
    expired = 0.0
    if horizon < n:
        j = np.arange(n - horizon)
        prior = np.r_[0.0, cum_a[:-1]][j]
        expired = float(np.maximum(0.0, cum_a[j] - np.maximum(prior, cum_p[j + horizon])).sum())
    drains: list[float | None] = []
    for lo, hi in offline:
        k = math.ceil(hi / step)
        if k >= n:
            drains.append(None)
            continue
        # drained: back to no more than it held as it went away (its deliveries in flight)
        away = int(lo // step)
        level = float(held[away - 1]) if away > 0 else 0.0
        empty = np.flatnonzero(held[k:] <= level + 0.5)
        drains.append(float(empty[0]) * step if empty.size else None)
    return held, round(expired), round(redelivered), tuple(drains)


# ---------------------------------------------------------------------------- the run


def _never_near_a_bound(
    scenario: Scenario,
    regions: Sequence[RegionLinks],
    all_flows: Sequence[Flow],
    round_trip_s: float,
) -> bool:
    """True when even the busiest step's requests, six standard deviations above their
    expected number (from the flows' rates, no draws), stay within the hub's start rate and
    pending bound: then every request is admitted and started in its step and the per-step
    pass over the hub can be skipped (a burst at one instant never qualifies)."""
    hub, step = scenario.hub, scenario.run.step_s
    n = max(1, math.ceil(scenario.run.duration_s / step))
    density = np.zeros(n + 1)  # expected requests a step, as a difference array
    for flow in all_flows:
        if not flow.is_request:
            continue
        units = sum(r.sites if flow.per_site else r.meters for r in regions)
        for seg in flow.segments:
            spread = max(seg.end_s - seg.start_s, flow.jitter_s)
            if seg.per_unit <= 0:
                continue
            if spread <= 0:
                return False
            rate = seg.per_unit * units / spread * step
            a = min(n, max(0, int(seg.start_s // step)))
            b = min(n, max(0, math.ceil((seg.end_s + flow.jitter_s) / step)))
            density[a] += rate
            density[b] -= rate
    mean = np.cumsum(density)[:n]
    high = mean + 6.0 * np.sqrt(np.maximum(mean, 0.0)) + 6.0
    window = max(1, math.ceil(round_trip_s / step)) + 1
    rolling = np.convolve(high, np.ones(window))[:n]
    return bool(high.max() <= hub.capacity_per_s * step and rolling.max() <= hub.max_pending)


def _offered(
    scenario: Scenario, regions: Sequence[RegionLinks], all_flows: Sequence[Flow], streams: Streams
) -> FloatArray:
    """First attempts per priority class and step over the whole fleet (the arrivals are
    drawn again, from the same streams, when each region is simulated)."""
    step = scenario.run.step_s
    n = max(1, math.ceil(scenario.run.duration_s / step))
    offered = np.zeros((len(PRIORITIES), n))
    for links in regions:
        for flow, (t, _) in zip(
            all_flows, _region_flows(scenario, links, streams, all_flows), strict=True
        ):
            if flow.is_request:
                k = np.minimum((t // step).astype(np.int64), n - 1)
                offered[PRIORITIES.index(flow.priority)] += np.bincount(k, minlength=n)[:n]
    return offered


def run_bulk(scenario: Scenario, on_region: Callable[[str], None] | None = None) -> BulkRun:
    """The bulk model's run of a whole scenario, region by region (``on_region`` is told of
    each region done). Ctrl-C (``KeyboardInterrupt``) during a region stops the run: the
    regions done so far are returned, marked ``partial``."""
    run = scenario.run
    streams = Streams(run.seed)
    all_flows = [*flows(scenario), *storm_flows(scenario)]
    regions = region_links(scenario)
    interval = run.report_interval_s
    round_trip = float(np.median([r.wan.median_s for r in regions]))
    if _never_near_a_bound(scenario, regions, all_flows, round_trip):
        admission = _Admission.instant(
            scenario.run.step_s, max(1, math.ceil(run.duration_s / run.step_s))
        )
    else:
        offered = _offered(scenario, regions, all_flows, streams)
        admission = _admission(scenario, offered, round_trip)
    n_steps = admission.offered.shape[1]
    ready = _Ready(np.zeros((len(scenario.recipients), n_steps)))
    results: list[FlowResult] = []
    wans = []
    requests = busy = lost = 0
    failures: list[IntegrityFailures] = []
    stopped = False
    for links in regions:
        try:
            rows, wan, q, b, fails, lo = _simulate_region(
                scenario, links, all_flows, admission, streams, ready, interval
            )
        except KeyboardInterrupt:
            stopped = True
            break
        if on_region is not None:
            on_region(links.region)
        results += rows
        wans.append(wan)
        requests, busy, lost = requests + q, busy + b, lost + lo
        failures.append(fails)
    integrity = sum(f.times.size for f in failures)
    security = security_alerts(failures)
    bins = max(1, math.ceil(run.duration_s / interval))
    ends = np.minimum(
        (np.arange(1, bins + 1) * interval / run.step_s).astype(np.int64) - 1, n_steps - 1
    )
    boxes = []
    total_held = np.zeros(bins)
    for r, recipient in enumerate(scenario.recipients):
        held, expired, redelivered, drains = outbox(
            ready.counts[r],
            recipient.offline_intervals(run),
            step=run.step_s,
            drain_per_s=recipient.drain_rate_per_s(),
            ack_delay_s=recipient.ack_delay_s,
            hold_s=scenario.hub.hold_s,
            push_retry_s=scenario.hub.push_retry_s,
        )
        peak_k = int(np.argmax(held)) if held.size else 0
        boxes.append(
            OutboxResult(
                recipient_label(recipient), int(ready.counts[r].sum()),
                round(float(held[peak_k])) if held.size else 0, peak_k * run.step_s,
                expired, redelivered, drains, held[ends],
            )
        )  # fmt: skip
        total_held += held[ends]
    partial = BulkRun(
        tuple(results), tuple(wans), tuple(boxes), interval, requests, busy, integrity,
        security, lost, (), total_held,
    )  # fmt: skip
    # the SLA is judged on service responses, as the hub's own SLA records are: alerts (which
    # have no response to time) are not among them
    answered = {f.name for f in all_flows if f.is_request}
    summaries = [
        SlaSummary(
            (f.service, f.region, f.flow), f.count, f.p50_s, f.p95_s, f.p99_s, f.within_target
        )
        for f in results
        if f.flow in answered
    ]
    breaches = scenario.sla.breaches(
        summaries,
        max_outbox_depth=partial.max_outbox_depth,
        expiries=partial.expiries,
        busy_share=partial.busy_share,
    )
    return BulkRun(
        partial.flows, partial.regions, partial.outboxes, interval, requests, busy, integrity,
        security, lost, tuple(breaches), total_held, partial=stopped,
    )  # fmt: skip

"""Bulk-flow model of a fleet's WAN traffic over a simulated day, vectorised with numpy.

Decides: for each region, how many messages of each class arise (Poisson counts from per-meter
daily rates), when (an hour-of-day profile, uniform within the hour), on which cell (uniform over
the region's cells), how long each waits on its cell's FIFO link (Lindley recursion over every
cell at once: cells are laid end to end in time so one vectorised pass never mixes them), the
WAN round trip drawn from the region's latency model, and from those: response-time
percentiles and the share within target per class, and each region's WAN utilisation per
interval.
Must never: loop over messages in Python, or hold more than one region's messages at a time
(a national day is processed region by region within a few GB).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from meters_sim.queueing import fifo_departures
from simfield.wan import LatencyKind, WanProfile

DAY_S = 86_400.0
BLOCK_BYTES = 48 * 1024
"""Bulk messages cross the WAN in blocks of this size (as firmware images do)."""


@dataclass(frozen=True, slots=True)
class FlowClass:
    """One kind of message flow (a service, or device alerts)."""

    name: str
    """Service code, or a label such as ``alerts``."""
    per_meter_per_day: float
    """Mean messages per meter per day."""
    hour_shares: tuple[float, ...]
    """24 weights: the share of the day's messages in each UK hour (normalised here)."""
    wire_bytes: int
    """Bytes carried over the WAN per message (command and response together)."""
    target_s: float
    """Target response time (SLA)."""
    bulk: bool = False
    """Bulk priority (firmware, diarised work): traffic management sends it only with the
    capacity the other classes leave, in blocks of ``BLOCK_BYTES``."""

    def __post_init__(self) -> None:
        if len(self.hour_shares) != 24 or min(self.hour_shares) < 0 or sum(self.hour_shares) <= 0:
            raise ValueError(f"{self.name}: hour_shares must be 24 non-negative weights")
        if self.per_meter_per_day < 0 or self.wire_bytes <= 0 or self.target_s <= 0:
            raise ValueError(f"{self.name}: rates must be non-negative, sizes and targets positive")


@dataclass(frozen=True, slots=True)
class RegionLinks:
    """The WAN of one region as the bulk model sees it."""

    region: str
    meters: int
    cells: int
    cell_bytes_per_s: float
    wan: WanProfile
    coverage: float = 1.0
    """Share of the region the WAN reaches (drawn per cell here); the rest is never answered."""


@dataclass(frozen=True, slots=True)
class ClassResult:
    """Response times of one flow class in one region."""

    region: str
    name: str
    count: int
    p50_s: float
    p95_s: float
    p99_s: float
    within_target: float


class RegionRun(NamedTuple):
    """One region's simulated run."""

    results: list[ClassResult]
    """Per flow class."""
    utilisation: npt.NDArray[np.float64]
    """Mean cell utilisation per interval."""
    peak: float
    """The busiest cell's utilisation in its busiest interval."""
    messages: int
    """Messages simulated."""
    cell_utilisation: npt.NDArray[np.float64]
    """Utilisation per cell (rows) and interval (columns)."""


def _latency(wan: WanProfile, n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    if wan.latency is LatencyKind.ZERO or n == 0:
        return np.zeros(n)
    if wan.latency is LatencyKind.FIXED:
        return np.full(n, wan.median_s)
    if wan.latency is LatencyKind.UNIFORM:
        return np.maximum(0.0, rng.uniform(wan.median_s - wan.spread, wan.median_s + wan.spread, n))
    return wan.median_s * np.exp(rng.normal(0.0, wan.spread, n))


def _retries(wan: WanProfile, n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """Extra delay from lost attempts (each costs a retry timeout); inf when every attempt is lost."""
    if wan.loss <= 0 or n == 0:
        return np.zeros(n)
    lost = rng.geometric(1.0 - wan.loss, n) - 1 if wan.loss < 1 else np.full(n, wan.retries + 1)
    extra = lost * wan.retry_timeout_s
    return np.where(lost > wan.retries, np.inf, extra).astype(np.float64)


def _arrivals(
    cls: FlowClass, meters: int, days: float, rng: np.random.Generator, start_hour: int = 0
) -> npt.NDArray[np.float64]:
    """Poisson arrivals per hour over ``days`` from a run starting at UK hour ``start_hour``,
    in seconds from the start (the last hour is cut at the run's end)."""
    span = days * DAY_S
    hours = int(np.ceil(span / 3600.0))
    shares = np.asarray(cls.hour_shares, dtype=float)
    shares = shares / shares.sum()
    local = (start_hour + np.arange(hours)) % 24
    per_hour = rng.poisson(cls.per_meter_per_day * meters * shares[local])
    when = np.repeat(np.arange(hours, dtype=np.float64), per_hour)
    times = (when + rng.random(when.size)) * 3600.0
    return times[times < span]


def _fifo_by_cell(
    times: npt.NDArray[np.float64],
    cell: npt.NDArray[np.int64],
    service: npt.NDArray[np.float64],
    span: float,
) -> npt.NDArray[np.float64]:
    """Time in system on each cell's FIFO link, for messages sorted by (cell, time): cells are
    laid end to end in time so one Lindley pass never carries a backlog across cells."""
    if times.size == 0:
        return np.zeros(0)
    shifted = times + cell * (span * 4.0)
    return fifo_departures(shifted, service).departures - shifted


def simulate_region(
    links: RegionLinks,
    classes: Sequence[FlowClass],
    seed: int,
    days: float = 1.0,
    interval_s: float = 900.0,
    start_hour: int = 0,
    cell_outages: Sequence[tuple[float, float, float]] = (),
) -> RegionRun:
    """One region's run of ``days`` (fractions allowed) from UK hour ``start_hour``: per-class
    results, mean utilisation per interval, the busiest cell interval's utilisation, the number
    of messages and utilisation per cell. ``cell_outages`` are (start, end, share of cells) in
    seconds from the start: messages to a failed cell meanwhile are never answered."""
    rng = np.random.default_rng(seed)
    times_parts, class_parts = [], []
    for k, cls in enumerate(classes):
        t = _arrivals(cls, links.meters, days, rng, start_hour)
        times_parts.append(t)
        class_parts.append(np.full(t.size, k, dtype=np.uint8))
    times = np.concatenate(times_parts) if times_parts else np.zeros(0)
    klass = np.concatenate(class_parts) if class_parts else np.zeros(0, dtype=np.uint8)
    n = times.size
    sizes = np.asarray([c.wire_bytes for c in classes], dtype=np.float64)[klass]
    cell = rng.integers(0, max(1, links.cells), n, dtype=np.int64)
    order = np.lexsort((times, cell))
    times, klass, sizes, cell = times[order], klass[order], sizes[order], cell[order]
    span = days * DAY_S
    cells = max(1, links.cells)
    is_bulk = (
        np.asarray([c.bulk for c in classes], dtype=bool)[klass] if n else np.zeros(0, dtype=bool)
    )
    high = ~is_bulk
    # Priority, approximated: the other classes see the link as if bulk traffic were absent,
    # plus the residual of one bulk block in service with the probability the link is busy
    # with bulk; bulk traffic gets the capacity the other classes leave on its cell.
    cap = links.cell_bytes_per_s
    rho_high = np.bincount(cell[high], weights=sizes[high], minlength=cells) / (cap * span)
    rho_bulk = np.bincount(cell[is_bulk], weights=sizes[is_bulk], minlength=cells) / (cap * span)
    sojourn = np.empty(n)
    sojourn[high] = _fifo_by_cell(times[high], cell[high], sizes[high] / cap, span)
    hb = np.minimum(rho_bulk[cell[high]], 1.0)
    sojourn[high] += np.where(
        rng.random(int(high.sum())) < hb, rng.random(int(high.sum())) * BLOCK_BYTES / cap, 0.0
    )
    spare = np.maximum(1.0 - rho_high[cell[is_bulk]], 1e-3)
    sojourn[is_bulk] = _fifo_by_cell(
        times[is_bulk], cell[is_bulk], sizes[is_bulk] / (cap * spare), span
    )
    response = sojourn + _latency(links.wan, n, rng) + _retries(links.wan, n, rng)
    if links.coverage < 1.0:  # sites the WAN does not reach: never answered (E20)
        uncovered_cells = rng.random(cells) >= links.coverage
        response[uncovered_cells[cell]] = np.inf
    for down_from, down_to, share in cell_outages:  # (start s, end s, share of cells)
        down = rng.random(cells) < share
        response[down[cell] & (times >= down_from) & (times < down_to)] = np.inf
    results = []
    for k, cls in enumerate(classes):
        r = response[klass == k]
        if r.size == 0:
            results.append(ClassResult(links.region, cls.name, 0, 0.0, 0.0, 0.0, 1.0))
            continue
        finite = r[np.isfinite(r)]
        p50, p95, p99 = (
            np.percentile(finite, [50, 95, 99]) if finite.size else (np.inf, np.inf, np.inf)
        )
        within = float(np.count_nonzero(r <= cls.target_s)) / r.size
        results.append(
            ClassResult(
                links.region, cls.name, int(r.size), float(p50), float(p95), float(p99), within
            )
        )
    bins = int(np.ceil(span / interval_s))
    slot = np.minimum((times // interval_s).astype(np.int64), bins - 1)
    per_interval = np.bincount(slot, weights=sizes, minlength=bins)
    capacity = links.cell_bytes_per_s * interval_s
    mean_util = per_interval / (capacity * max(1, links.cells))
    per_cell = np.bincount(cell * bins + slot, weights=sizes, minlength=cells * bins) / capacity
    peak = float(per_cell.max()) if per_cell.size else 0.0
    return RegionRun(results, mean_util, peak, n, per_cell.reshape(cells, bins))

"""The bulk-flow model: counts, determinism, utilisation and priority for bulk traffic."""

from __future__ import annotations

import numpy as np
import pytest

from meters_sim.bulk import FlowClass, RegionLinks, simulate_region
from simfield.wan import LatencyKind, WanProfile

FLAT = (1.0,) * 24
WAN = WanProfile(LatencyKind.FIXED, 2.0)


def _links(meters: int = 20_000, cells: int = 10, capacity: float = 20_000.0) -> RegionLinks:
    return RegionLinks("North", meters, cells, capacity, WAN)


def test_message_counts_follow_the_per_meter_rates() -> None:
    reads = FlowClass("reads", 2.0, FLAT, 400, 30.0)
    results, _, _, n, _ = simulate_region(_links(), [reads], seed=1)
    assert n == results[0].count
    assert abs(n - 40_000) < 5 * np.sqrt(40_000)  # Poisson, within 5 standard deviations


def test_the_same_seed_gives_the_same_day() -> None:
    classes = [FlowClass("reads", 1.0, FLAT, 400, 30.0), FlowClass("alerts", 1.5, FLAT, 200, 30.0)]
    a = simulate_region(_links(), classes, seed=3)
    b = simulate_region(_links(), classes, seed=3)
    assert a.results == b.results
    assert np.array_equal(a.cell_utilisation, b.cell_utilisation)
    assert simulate_region(_links(), classes, seed=4).results != a.results


def test_mean_utilisation_is_the_bytes_carried_over_the_capacity() -> None:
    cls = FlowClass("reads", 1.0, FLAT, 1_000, 30.0)
    links = _links(meters=50_000, cells=5, capacity=10_000.0)
    results, util, _, _, _ = simulate_region(links, [cls], seed=2)
    carried = results[0].count * 1_000
    assert util.sum() * 900 * 10_000.0 * 5 == pytest.approx(carried)


def test_bulk_firmware_does_not_starve_on_demand_reads_but_fifo_would() -> None:
    reads = FlowClass("reads", 1.0, FLAT, 400, 30.0)
    links = _links(meters=6_000, cells=2, capacity=12_500.0)
    firmware = FlowClass("firmware", 0.03, FLAT, 1_000_000, 86_400.0, bulk=True)
    as_fifo = FlowClass("firmware", 0.03, FLAT, 1_000_000, 86_400.0, bulk=False)
    prioritised, _, _, _, _ = simulate_region(links, [reads, firmware], seed=5)
    starved, _, _, _, _ = simulate_region(links, [reads, as_fifo], seed=5)
    assert prioritised[0].within_target > 0.99
    assert starved[0].within_target < prioritised[0].within_target
    assert prioritised[1].within_target == 1.0  # the images still arrive within their day


def test_per_cell_utilisation_averages_to_the_regions_mean() -> None:
    run = simulate_region(
        _links(meters=30_000, cells=6), [FlowClass("reads", 1.0, FLAT, 800, 30.0)], seed=4
    )
    assert run.cell_utilisation.shape == (6, 96)
    assert np.allclose(run.cell_utilisation.mean(axis=0), run.utilisation)
    assert run.peak == pytest.approx(run.cell_utilisation.max())

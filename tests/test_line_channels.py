"""Comms-hub lines with several channels, through the public scenario format
(``[wan.<region>] line_channels``): with a fixed WAN round trip and Poisson commands to each
comms hub, a one-channel line is an M/D/1 queue in both models, and more channels shorten the
wait alike in both."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from meters_sim.bulk import run_bulk
from meters_sim.queueing import md1_wait
from meters_sim.scenario import Scenario, load_scenario
from tests.sim_support import run_event

pytestmark = pytest.mark.timeout(300)

ROUND_TRIP_S = 1.0
"""The fixed WAN round trip: each command holds a channel of its line this long (the cell,
at 1 MB/s, adds 0.4 ms)."""
PER_METER_PER_DAY = 30_000.0
"""Reads a meter a day: one meter per comms hub, so 0.35 commands a second per line
(utilisation 0.35 of a one-channel line)."""
TOLERANCE = 0.04
"""Relative error allowed on the mean response time: about 5,700 commands over nine comms
hubs (the runs show 1.5% or less against theory and between the models)."""


def _scenario(line_channels: int) -> Scenario:
    wan = "".join(
        f"""
[wan.{region}]
coverage = 1.0
loss = 0.0
latency = {{ kind = "fixed", median_s = {ROUND_TRIP_S} }}
cell_capacity_bytes_per_s = 1_000_000
line_channels = {line_channels}
"""
        for region in ("north", "central", "south")
    )
    text = f"""
[scenario]
name = "line-channels"
seed = 9
start = 2025-03-04T00:00:00Z
duration = "30m"
[fleet]
sites = 9
dual_fuel = 0.0
electricity_only = 1.0
export = 0.0
prepayment = 0.0
{wan}
[load.on_demand]
per_meter_per_day = {PER_METER_PER_DAY}
hour_profile = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
services = {{ "4.1.1" = 1.0 }}
[load.daily_reads]
share = 0.0
[load.top_ups]
per_prepayment_meter_per_day = 0.0
[load.change_of_supplier]
churn_per_day = 0.0
[load.alerts]
per_meter_per_day = 0.0
hub_per_meter_per_day = 0.0
"""
    return load_scenario(text, "line-channels.toml")


def _event_mean(scenario: Scenario, tmp_path: Path) -> float:
    sim = run_event(scenario, tmp_path).sim
    times = [a.sla.elapsed_s for a in sim.answered]
    assert {a.sla.code for a in sim.answered} == {"I0"}
    assert len(times) > 4_000
    return statistics.fmean(times)


def _bulk_means(scenario: Scenario) -> list[float]:
    run = run_bulk(scenario)
    assert all(f.failed == 0 for f in run.flows)
    return [f.mean_s for f in run.flows]


def test_a_one_channel_line_is_an_m_d_1_queue_in_both_models(tmp_path: Path) -> None:
    scenario = _scenario(1)
    theory = ROUND_TRIP_S + md1_wait(PER_METER_PER_DAY / 86_400.0, 1.0 / ROUND_TRIP_S)
    assert _event_mean(scenario, tmp_path) == pytest.approx(theory, rel=TOLERANCE)
    for mean in _bulk_means(scenario):
        assert mean == pytest.approx(theory, rel=TOLERANCE)


def test_a_line_with_two_channels_waits_less_and_alike_in_both_models(tmp_path: Path) -> None:
    scenario = _scenario(2)
    event = _event_mean(scenario, tmp_path)
    one = ROUND_TRIP_S + md1_wait(PER_METER_PER_DAY / 86_400.0, 1.0 / ROUND_TRIP_S)
    # two channels at utilisation 0.17 each: a command rarely waits (M/D/2 waits about 2%)
    assert ROUND_TRIP_S <= event < 0.5 * (ROUND_TRIP_S + one)
    for mean in _bulk_means(scenario):
        assert mean == pytest.approx(event, rel=TOLERANCE)

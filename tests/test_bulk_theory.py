"""The bulk model against queueing theory, through the public scenario format: the bundled
``scenarios/theory-*.toml`` make each region one cell fed by a Poisson stream, and the mean
response time (and for M/M/1 its percentiles) must match M/M/1, M/D/1, M/G/1
(Pollaczek-Khinchine) and M/M/c (Erlang C)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from meters_sim.bulk import FlowResult, run_bulk
from meters_sim.flows import REQUEST_BYTES, region_links
from meters_sim.queueing import md1_wait, mm1_wait, mmc_wait
from meters_sim.scenario import Scenario, ServiceLaw
from meters_sim.scenario_files import read_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
TOLERANCE = 0.05
"""Relative error allowed on a mean: two simulated days (four for M/G/1) at utilisation 0.7
hold 120,000 messages or more per region, whose mean sojourn is within a few per cent of
its limit (the runs show 2% or less)."""


def _cases(s: Scenario) -> list[tuple[FlowResult, float, float, float]]:
    """Per region: its result, arrival rate, one channel's service rate and the theory's
    mean response time (wait plus service)."""
    run = run_bulk(s)
    rate = s.load.on_demand.per_meter_per_day / 86_400.0
    out = []
    for links in region_links(s):
        wan = s.wan[links.region]
        (result,) = [f for f in run.flows if f.region == links.name]
        lam = rate * links.meters
        mu = links.cell_bytes_per_s / wan.channels / REQUEST_BYTES
        law = wan.service_time.law
        if wan.channels > 1:
            assert law is ServiceLaw.EXPONENTIAL
            wait = mmc_wait(lam, mu, wan.channels)
        elif law is ServiceLaw.EXPONENTIAL:
            wait = mm1_wait(lam, mu)
        elif law is ServiceLaw.DETERMINISTIC:
            wait = md1_wait(lam, mu)
        else:  # Pollaczek-Khinchine
            rho = lam / mu
            wait = rho * (1.0 + wan.service_time.scv) / (2.0 * mu * (1.0 - rho))
        out.append((result, lam, mu, wait + 1.0 / mu))
    return out


@pytest.mark.parametrize("name", ["theory-mm1", "theory-md1", "theory-mg1", "theory-mmc"])
def test_the_mean_response_time_of_each_region_matches_queueing_theory(name: str) -> None:
    s = read_scenario(SCENARIOS / f"{name}.toml")
    for result, _, _, theory in _cases(s):
        assert result.failed == 0
        assert result.count > 50_000
        assert result.mean_s == pytest.approx(theory, rel=TOLERANCE), (result.region, theory)


def test_m_m_1_response_time_percentiles_are_those_of_an_exponential_sojourn() -> None:
    s = read_scenario(SCENARIOS / "theory-mm1.toml")
    for result, lam, mu, _ in _cases(s):
        # the sojourn of M/M/1 (FIFO) is exponential with rate mu - lam
        for q, got in ((0.5, result.p50_s), (0.95, result.p95_s), (0.99, result.p99_s)):
            assert got == pytest.approx(-math.log(1.0 - q) / (mu - lam), rel=TOLERANCE)


def test_a_service_law_with_more_variance_waits_longer_at_the_same_load() -> None:
    means = {
        name: _cases(read_scenario(SCENARIOS / f"{name}.toml"))[0][0].mean_s
        for name in ("theory-md1", "theory-mm1", "theory-mg1")
    }
    # squared coefficients of variation 0 (deterministic), 0.43 (lognormal), 1 (exponential)
    assert means["theory-md1"] < means["theory-mg1"] < means["theory-mm1"]

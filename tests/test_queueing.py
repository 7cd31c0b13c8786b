"""The bulk-flow queueing core: the vectorised Lindley model against a plain loop and SimPy,
the c-server model against SimPy, all of them against M/M/1, M/D/1 and Erlang C theory, and
the link model against its capacity."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from meters_sim.queueing import (
    FloatArray,
    QueueTimes,
    erlang_c,
    fifo_departures,
    link_departures,
    md1_wait,
    mm1_wait,
    mmc_wait,
    multi_server_departures,
    summarise,
    utilisation,
)
from meters_sim.simpy_fifo import simpy_departures

ATOL_S = 1e-9
"""Agreement asked of two computations of the same departures: flows here span up to about
10**5 s, where float64 rounding is about 1e-11 s per operation, and the shortest service time
that matters is far above 1e-9 s."""

THEORY_ARRIVALS = 500_000
WARM_UP = THEORY_ARRIVALS // 100
"""Messages dropped from the start of each theory run: the queue starts empty, not in steady
state. Relaxation at utilisation 0.8 takes about a hundred service times; this is 5,000."""


def python_fifo(arrivals: FloatArray, service_times: FloatArray) -> QueueTimes:
    """The single-server recursion, one message at a time, as a textbook writes it."""
    departures = np.empty(arrivals.size)
    waits = np.empty(arrivals.size)
    previous = -math.inf
    for n, (arrival, service) in enumerate(
        zip(arrivals.tolist(), service_times.tolist(), strict=True)
    ):
        start = max(arrival, previous)
        waits[n] = start - arrival
        previous = start + service
        departures[n] = previous
    return QueueTimes(departures, waits)


def bursty_flow(
    rng: np.random.Generator, n: int, mean_service_s: float
) -> tuple[FloatArray, FloatArray]:
    """Arrivals with long idle gaps and bursts of simultaneous messages, and service times
    with some zeros: (arrivals, service times)."""
    gaps = rng.exponential(1.0, n)
    gaps[rng.random(n) < 0.25] = 0.0  # bursts: several messages at the same instant
    gaps[rng.random(n) < 0.02] += 60.0  # idle gaps: the queue empties
    service = rng.exponential(mean_service_s, n)
    service[rng.random(n) < 0.05] = 0.0
    return np.cumsum(gaps), service


def poisson_arrivals(rng: np.random.Generator, lam: float, n: int) -> FloatArray:
    return np.cumsum(rng.exponential(1.0 / lam, n))


# ---------------------------------------------------------------------------- single server


def test_a_hand_worked_flow_departs_as_worked_by_hand() -> None:
    q = fifo_departures([0.0, 1.0, 1.0, 5.0, 9.0], [2.0, 2.0, 1.0, 1.0, 0.5])
    # starts 0, 2, 4, 5, 9: the third waits behind the second, the last finds the server idle
    assert q.departures.tolist() == [2.0, 4.0, 5.0, 6.0, 9.5]
    assert q.waits.tolist() == [0.0, 1.0, 3.0, 0.0, 0.0]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("mean_service_s", [0.3, 0.9, 1.5])
def test_vectorised_departures_equal_a_plain_python_loop_on_bursty_flows(
    seed: int, mean_service_s: float
) -> None:
    arrivals, service = bursty_flow(np.random.default_rng(seed), 20_000, mean_service_s)
    expected = python_fifo(arrivals, service)
    got = fifo_departures(arrivals, service)
    np.testing.assert_allclose(got.departures, expected.departures, rtol=0.0, atol=ATOL_S)
    np.testing.assert_allclose(got.waits, expected.waits, rtol=0.0, atol=ATOL_S)
    # the flows do exercise both regimes: some messages find the server idle, many wait
    assert 0.01 < float(np.mean(got.waits == 0.0)) < 0.95


def test_waits_obey_lindleys_recursion_message_by_message() -> None:
    arrivals, service = bursty_flow(np.random.default_rng(4), 10_000, 1.2)
    w = fifo_departures(arrivals, service).waits
    lindley = np.maximum(0.0, w[:-1] + service[:-1] - np.diff(arrivals))
    np.testing.assert_allclose(w[1:], lindley, rtol=0.0, atol=ATOL_S)


def test_departures_stay_in_order_and_waits_never_go_negative_under_overload() -> None:
    rng = np.random.default_rng(5)
    arrivals = np.sort(rng.uniform(0.0, 100.0, 50_000))
    q = fifo_departures(arrivals, rng.exponential(0.01, arrivals.size))  # utilisation 5
    assert bool(np.all(np.diff(q.departures) >= 0.0))
    assert bool(np.all(q.waits >= 0.0))
    assert float(q.waits[-1]) > 300.0  # the backlog really built up


def test_a_flow_split_into_chunks_continues_from_the_last_departure_of_the_previous_chunk() -> None:
    arrivals, service = bursty_flow(np.random.default_rng(6), 30_000, 1.1)
    whole = fifo_departures(arrivals, service)
    parts, free_at = [], -math.inf
    for chunk in np.array_split(np.arange(arrivals.size), 7):
        part = fifo_departures(arrivals[chunk], service[chunk], free_at)
        parts.append(part)
        free_at = float(part.departures[-1])
    np.testing.assert_allclose(
        np.concatenate([p.departures for p in parts]), whole.departures, rtol=0.0, atol=ATOL_S
    )
    np.testing.assert_allclose(
        np.concatenate([p.waits for p in parts]), whole.waits, rtol=0.0, atol=ATOL_S
    )


def test_a_server_busy_at_the_start_holds_the_first_messages_until_it_is_free() -> None:
    q = fifo_departures([1.0, 2.0, 20.0], [1.0, 1.0, 1.0], free_at=10.0)
    assert q.departures.tolist() == [11.0, 12.0, 21.0]
    assert q.waits.tolist() == [9.0, 9.0, 0.0]


def test_an_empty_flow_has_no_departures() -> None:
    q = fifo_departures([], [])
    assert q.departures.size == 0
    assert q.waits.size == 0


# ---------------------------------------------------------------------------- against SimPy


def test_vectorised_departures_equal_the_simpy_fifo_on_2000_messages() -> None:
    arrivals, service = bursty_flow(np.random.default_rng(7), 2_000, 1.0)
    reference = simpy_departures(arrivals, service)
    got = fifo_departures(arrivals, service)
    np.testing.assert_allclose(got.departures, reference.departures, rtol=0.0, atol=ATOL_S)
    np.testing.assert_allclose(got.waits, reference.waits, rtol=0.0, atol=ATOL_S)


@pytest.mark.parametrize("servers", [1, 2, 3, 8])
def test_the_multi_server_model_equals_the_simpy_c_server_queue(servers: int) -> None:
    arrivals, service = bursty_flow(np.random.default_rng(8 + servers), 2_000, 0.9 * servers)
    reference = simpy_departures(arrivals, service, servers)
    got = multi_server_departures(arrivals, service, servers)
    # same arithmetic on the same floats (arrival, then start + service): equal to the last bit
    assert np.array_equal(got.departures, reference.departures)
    assert np.array_equal(got.waits, reference.waits)
    assert float(np.mean(got.waits > 0.0)) > 0.1  # the servers were often all busy


def test_one_server_of_the_multi_server_model_is_the_vectorised_fifo() -> None:
    arrivals, service = bursty_flow(np.random.default_rng(9), 5_000, 1.0)
    single = multi_server_departures(arrivals, service, 1)
    vectorised = fifo_departures(arrivals, service)
    np.testing.assert_allclose(single.departures, vectorised.departures, rtol=0.0, atol=ATOL_S)


def test_a_short_message_can_overtake_a_long_one_on_another_server() -> None:
    q = multi_server_departures([0.0, 1.0, 1.5], [10.0, 1.0, 1.0], servers=2)
    assert q.departures.tolist() == [10.0, 2.0, 3.0]
    assert q.waits.tolist() == [0.0, 0.0, 0.5]


def test_nobody_waits_when_there_are_as_many_servers_as_messages() -> None:
    arrivals, service = bursty_flow(np.random.default_rng(10), 200, 5.0)
    q = multi_server_departures(arrivals, service, 200)
    assert bool(np.all(q.waits == 0.0))
    assert np.array_equal(q.departures, arrivals + service)


# ---------------------------------------------------------------------------- against theory
#
# Tolerances are relative to the theoretical value and about four standard deviations of the
# estimator: each case was run offline with 200 seeds (500,000 arrivals, first 1% dropped) and
# the spread of (simulated / theory - 1) measured. Standard deviations found, at utilisation
# 0.5 and 0.8: mean wait M/M/1 0.84% and 1.64%, M/D/1 0.55% and 1.09%, M/M/3 1.39% and 1.96%;
# fraction who wait, M/M/1 vs rho 0.23% and 0.22%, M/M/3 vs Erlang C 0.60% and 0.45%. At four
# of them a failure by chance is about 1 in 16,000 for any seed, while a wrong formula (M/M/1
# in place of M/D/1: twice the wait; M/M/1 at c*mu in place of M/M/c) is off by tens of percent.

MU = 1.0
"""Service rate of one server (per second) in the theory runs."""


def simulated_waits(
    seed: int, lam: float, draw_service: Callable[[np.random.Generator, int], FloatArray], c: int
) -> FloatArray:
    rng = np.random.default_rng(seed)
    arrivals = poisson_arrivals(rng, lam, THEORY_ARRIVALS)
    service = draw_service(rng, THEORY_ARRIVALS)
    if c == 1:
        return fifo_departures(arrivals, service).waits[WARM_UP:]
    return multi_server_departures(arrivals, service, c).waits[WARM_UP:]


def exponential_service(rng: np.random.Generator, n: int) -> FloatArray:
    return rng.exponential(1.0 / MU, n)


def fixed_service(rng: np.random.Generator, n: int) -> FloatArray:
    return np.full(n, 1.0 / MU)


@pytest.mark.parametrize(("rho", "tolerance"), [(0.5, 0.04), (0.8, 0.07)])
def test_mm1_mean_wait_matches_theory(rho: float, tolerance: float) -> None:
    waits = simulated_waits(101, rho * MU, exponential_service, 1)
    assert float(waits.mean()) == pytest.approx(mm1_wait(rho * MU, MU), rel=tolerance)
    # and the probability of waiting at all is rho
    assert float(np.mean(waits > 0.0)) == pytest.approx(rho, rel=0.01)


@pytest.mark.parametrize(("rho", "tolerance"), [(0.5, 0.03), (0.8, 0.05)])
def test_md1_mean_wait_matches_pollaczek_khinchine(rho: float, tolerance: float) -> None:
    waits = simulated_waits(102, rho * MU, fixed_service, 1)
    assert float(waits.mean()) == pytest.approx(md1_wait(rho * MU, MU), rel=tolerance)


@pytest.mark.parametrize(("rho", "tolerance"), [(0.5, 0.06), (0.8, 0.08)])
def test_mmc_mean_wait_and_chance_of_waiting_match_erlang_c(rho: float, tolerance: float) -> None:
    c = 3
    lam = rho * c * MU
    waits = simulated_waits(103, lam, exponential_service, c)
    assert float(waits.mean()) == pytest.approx(mmc_wait(lam, MU, c), rel=tolerance)
    assert float(np.mean(waits > 0.0)) == pytest.approx(erlang_c(c, lam / MU), rel=0.03)


def erlang_c_by_factorials(c: int, a: float) -> float:
    """Erlang C as the textbook states it, for checking the recursion."""
    queued = a**c / math.factorial(c) * c / (c - a)
    return queued / (sum(a**k / math.factorial(k) for k in range(c)) + queued)


@pytest.mark.parametrize(("c", "a"), [(1, 0.3), (2, 1.0), (3, 2.4), (10, 8.0), (50, 45.0)])
def test_erlang_c_recursion_agrees_with_the_factorial_formula(c: int, a: float) -> None:
    assert erlang_c(c, a) == pytest.approx(erlang_c_by_factorials(c, a), rel=1e-12)


def test_textbook_values_and_identities_of_the_theory() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0, rel=1e-15)
    assert erlang_c(1, 0.7) == pytest.approx(0.7, rel=1e-15)  # one server: P(wait) = rho
    assert mm1_wait(0.8, 1.0) == pytest.approx(4.0, rel=1e-15)
    assert md1_wait(0.8, 1.0) == pytest.approx(2.0, rel=1e-15)  # half of M/M/1
    assert mmc_wait(0.8, 1.0, 1) == pytest.approx(mm1_wait(0.8, 1.0), rel=1e-15)
    assert mm1_wait(0.0, 1.0) == 0.0
    assert erlang_c(4, 0.0) == 0.0
    assert utilisation(3.0, 2.0, servers=2) == 0.75
    # thousands of servers: no overflow, and a big pool at 90% load rarely queues
    assert 0.0 < erlang_c(5_000, 4_500.0) < 1e-6


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "unstable",
    [
        lambda: mm1_wait(1.0, 1.0),
        lambda: mm1_wait(2.0, 1.0),
        lambda: md1_wait(1.5, 1.0),
        lambda: mmc_wait(3.0, 1.0, 3),
        lambda: erlang_c(4, 4.0),
        lambda: utilisation(10.0, 2.0, servers=4),
    ],
)
def test_an_unstable_queue_is_refused_with_a_clear_message(unstable: Callable[[], float]) -> None:
    with pytest.raises(ValueError, match=r"unstable queue: utilisation rho = .* >= 1"):
        unstable()


@pytest.mark.parametrize(
    ("arrivals", "service", "message"),
    [
        ([0.0, 2.0, 1.0], [1.0, 1.0, 1.0], "must be sorted: arrival 2"),
        ([0.0, 1.0], [1.0, -0.5], "must not be negative"),
        ([0.0, 1.0], [1.0], "2 arrivals but 1 service times"),
        ([0.0, math.nan], [1.0, 1.0], "must be finite"),
        ([[0.0, 1.0]], [[1.0, 1.0]], "must be 1-D"),
    ],
)
def test_a_malformed_flow_is_refused(
    arrivals: npt.ArrayLike, service: npt.ArrayLike, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        fifo_departures(arrivals, service)
    with pytest.raises(ValueError, match=message):
        multi_server_departures(arrivals, service, 2)


def test_nonsense_rates_servers_and_capacities_are_refused() -> None:
    with pytest.raises(ValueError, match="service rate mu must be positive"):
        mm1_wait(0.5, 0.0)
    with pytest.raises(ValueError, match="arrival rate lam must be non-negative"):
        md1_wait(-1.0, 1.0)
    with pytest.raises(ValueError, match="servers must be a positive whole number"):
        multi_server_departures([0.0], [1.0], 0)
    with pytest.raises(ValueError, match="servers c must be a positive whole number"):
        erlang_c(0, 0.5)
    with pytest.raises(ValueError, match="link capacity must be positive"):
        link_departures([0.0], [100.0], 0.0)
    with pytest.raises(ValueError, match="message sizes must not be negative"):
        link_departures([0.0], [-1.0], 10.0)
    with pytest.raises(ValueError, match="free_at"):
        fifo_departures([0.0], [1.0], free_at=math.nan)


# ---------------------------------------------------------------------------- link


LINK_BYTES_PER_S = 12_500.0
"""100 kbit/s."""


def link_flow(seed: int) -> tuple[FloatArray, FloatArray]:
    """Bursty message arrivals (overloading the link at times) with sizes of 20 to 2,000 B."""
    rng = np.random.default_rng(seed)
    arrivals, _ = bursty_flow(rng, 20_000, 1.0)
    sizes = rng.integers(20, 2_001, arrivals.size).astype(np.float64)
    return arrivals / 25.0, sizes  # about 25 messages a second on average: 0.5 to 2x capacity


def test_a_link_never_carries_more_than_its_capacity_between_any_two_departures() -> None:
    arrivals, sizes = link_flow(11)
    d = link_departures(arrivals, sizes, LINK_BYTES_PER_S).departures
    # bytes departed in (D[i], D[j]] <= capacity * (D[j] - D[i]) for all i < j is the same as
    # D[n] - (bytes departed up to n) / capacity never decreasing
    slack = d - np.cumsum(sizes) / LINK_BYTES_PER_S
    assert float(np.diff(slack).min()) >= -ATOL_S


@pytest.mark.parametrize("window_s", [5.0, 60.0])
def test_a_link_never_carries_more_than_capacity_times_any_long_window(window_s: float) -> None:
    arrivals, sizes = link_flow(12)
    d = link_departures(arrivals, sizes, LINK_BYTES_PER_S).departures
    carried = np.concatenate([[0.0], np.cumsum(sizes)])
    starts = np.arange(float(d[0]) - window_s, float(d[-1]), 0.173)  # windows at many offsets
    inside = (
        carried[np.searchsorted(d, starts + window_s, "right")]
        - carried[np.searchsorted(d, starts, "left")]
    )
    # a message departing early in a window may have begun sending before it: one message more
    assert float(inside.max()) <= LINK_BYTES_PER_S * window_s + float(sizes.max())
    # and the bound is reached: the bursts do fill the link in some windows
    assert float(inside.max()) >= 0.9 * LINK_BYTES_PER_S * window_s


def test_a_saturated_link_sends_at_exactly_its_capacity() -> None:
    sizes = np.random.default_rng(13).integers(20, 2_001, 5_000).astype(np.float64)
    q = link_departures(np.zeros(sizes.size), sizes, LINK_BYTES_PER_S)  # all at once
    assert float(q.departures[-1]) == pytest.approx(sizes.sum() / LINK_BYTES_PER_S, rel=1e-12)
    np.testing.assert_allclose(
        np.diff(q.departures), sizes[1:] / LINK_BYTES_PER_S, rtol=0.0, atol=ATOL_S
    )


# ---------------------------------------------------------------------------- summary


def test_a_summary_gives_mean_median_and_tail_percentiles() -> None:
    s = summarise(np.arange(101, dtype=np.float64))
    assert (s.mean, s.p50, s.p95, s.p99) == (50.0, 50.0, 95.0, 99.0)
    one = summarise([2.5])
    assert one == (2.5, 2.5, 2.5, 2.5)


def test_a_summary_of_no_waits_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        summarise([])

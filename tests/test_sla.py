"""SLA accounting: clocks, targets and summaries."""

from __future__ import annotations

import pytest

from hub.policies.sla import SlaRecord, summarise


def _r(
    service: str, elapsed: float, code: str = "I0", user: str = "u-a", target: float = 30.0
) -> SlaRecord:
    return SlaRecord(service, user, 1000.0, 1000.0 + elapsed, target, code)


def test_a_response_inside_its_target_counts_as_within() -> None:
    assert _r("4.1.1", 29.9).within_target
    assert not _r("4.1.1", 30.1).within_target


def test_no_response_from_the_device_counts_against_the_target_but_a_device_rejection_does_not() -> (
    None
):
    assert not _r("4.1.1", 1.0, "E21").within_target
    assert _r("2.2", 1.0, "H11").within_target


def test_summary_gives_percentiles_and_the_share_within_target_per_service() -> None:
    records = [_r("4.1.1", float(n)) for n in range(1, 101)] + [_r("2.2", 50.0)]
    by_service = {s.key: s for s in summarise(records)}
    read = by_service[("4.1.1",)]
    assert read.count == 100
    assert read.p50_s == pytest.approx(50.5)
    assert read.within_target == pytest.approx(0.30)
    assert read.breached
    assert by_service[("2.2",)].within_target == 0.0


def test_summary_by_user_splits_each_service() -> None:
    records = [_r("4.1.1", 1.0, user="u-a"), _r("4.1.1", 100.0, user="u-b")]
    rows = {s.key: s for s in summarise(records, by_user=True)}
    assert rows[("4.1.1", "u-a")].meets_target
    assert rows[("4.1.1", "u-b")].breached


def test_future_dated_responses_are_timed_from_the_execution_time() -> None:
    # started_at is the execution time: a response 10 s after it is within a 30 s target
    r = SlaRecord("1.1.1", "u-a", started_at=5000.0, responded_at=5010.0, target_s=30.0, code="I0")
    assert r.elapsed_s == 10.0
    assert r.within_target

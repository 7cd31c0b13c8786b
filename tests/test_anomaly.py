"""Anomaly detection and quarantine, driven with a fake clock (plain floats): no sleeps."""

from __future__ import annotations

import pytest

from hub.policies.anomaly import (
    DEFAULT_CRITICAL_THRESHOLDS,
    DEFAULT_THRESHOLDS,
    AnomalyConfig,
    AnomalyDetector,
    Assessment,
    HoldOutcome,
    NoticeKind,
    Quarantine,
    QuarantineConfig,
    QuarantineEntry,
    RollingCounter,
    Thresholds,
    ThresholdSource,
    Verdict,
)
from hub.reference.catalogue import CATALOGUE

T0 = 1_700_000_400.0  # an epoch instant on a bucket boundary (a multiple of 600 s)


def _detector(**user: Thresholds) -> AnomalyDetector:
    detector = AnomalyDetector()
    for user_id, thresholds in user.items():
        detector.set_user_thresholds(user_id, "4.1.1", thresholds)
    return detector


def _send(
    detector: AnomalyDetector, user_id: str, n: int, now: float, service: str = "4.1.1"
) -> list[Assessment]:
    return [detector.observe(user_id, service, now) for _ in range(n)]


# ---- thresholds --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("warning", "quarantine", "period_s"),
    [(5, 4, 60.0), (0, 4, 60.0), (1, 0, 60.0), (1, 2, 0.0), (1, 2, -1.0), (1, 2, float("inf"))],
)
def test_thresholds_that_make_no_sense_are_refused(
    warning: int, quarantine: int, period_s: float
) -> None:
    with pytest.raises(ValueError):
        Thresholds(warning, quarantine, period_s)


def test_equal_warning_and_quarantine_thresholds_are_allowed() -> None:
    assert Thresholds(3, 3, 60.0).quarantine == 3


def test_a_user_that_set_no_thresholds_gets_the_documented_defaults() -> None:
    detector = AnomalyDetector()
    assert detector.user_thresholds("SUP1", "4.1.1") == (
        DEFAULT_THRESHOLDS,
        ThresholdSource.DEFAULT,
    )


def test_defaults_built_from_the_catalogue_are_tighter_for_critical_services() -> None:
    detector = AnomalyDetector(AnomalyConfig.for_services(CATALOGUE.services()))
    assert CATALOGUE["1.1.1"].critical
    assert not CATALOGUE["4.1.1"].critical
    assert detector.user_thresholds("SUP1", "1.1.1")[0] == DEFAULT_CRITICAL_THRESHOLDS
    assert detector.user_thresholds("SUP1", "4.1.1")[0] == DEFAULT_THRESHOLDS


# ---- rolling counter ---------------------------------------------------------------------------


def test_a_rolling_count_expires_exactly_when_the_period_rolls_past_its_bucket() -> None:
    counter = RollingCounter(60.0, buckets=60)
    counter.add(T0)
    assert counter.total(T0 + 59.999) == 1
    assert counter.total(T0 + 60.0) == 0


def test_an_event_inside_a_bucket_expires_at_most_one_bucket_early() -> None:
    counter = RollingCounter(60.0, buckets=60)
    assert counter.granularity_s == 1.0
    counter.add(T0 + 0.5)
    assert counter.total(T0 + 59.0) == 1
    assert counter.total(T0 + 59.999) == 1
    assert counter.total(T0 + 60.0) == 0


def test_a_rolling_count_sums_only_the_events_of_the_last_period() -> None:
    counter = RollingCounter(60.0, buckets=60)
    for second in range(120):
        counter.add(T0 + second)
    assert counter.total(T0 + 119.5) == 60
    assert counter.total(T0 + 150.0) == 29  # the seconds 91 to 150: events 91 to 119
    assert counter.total(T0 + 10_000.0) == 0


def test_a_clock_that_steps_back_counts_in_the_newest_bucket() -> None:
    counter = RollingCounter(60.0, buckets=60)
    counter.add(T0 + 30.0)
    assert counter.add(T0 + 10.0) == 2
    assert counter.total(T0 + 89.999) == 2
    assert counter.total(T0 + 90.0) == 0


# ---- detector ----------------------------------------------------------------------------------


def test_requests_under_the_warning_threshold_are_ok() -> None:
    detector = _detector(SUP1=Thresholds(3, 5, 60.0))
    results = _send(detector, "SUP1", 3, T0)
    assert [r.verdict for r in results] == [Verdict.OK] * 3
    assert results[-1].user_count == 3
    assert results[-1].reason == ""
    assert not results[-1].hold


def test_a_warning_is_reported_once_per_period_not_for_every_request() -> None:
    detector = _detector(SUP1=Thresholds(3, 100, 60.0))
    results = _send(detector, "SUP1", 10, T0)
    assert [r.verdict for r in results] == [Verdict.OK] * 3 + [Verdict.WARNING] * 7
    notices = [n for r in results for n in r.notices]
    assert len(notices) == 1
    assert notices[0].kind is NoticeKind.WARNING
    assert notices[0].user_id == "SUP1"
    assert notices[0].count == 4
    assert "warning threshold of 3" in notices[0].text

    still = _send(detector, "SUP1", 5, T0 + 30.0)
    assert all(r.verdict is Verdict.WARNING and not r.notices for r in still)

    # a period after the first warning, the 5 requests of T0 + 30 still count: reported again
    next_period = _send(detector, "SUP1", 4, T0 + 60.0)
    assert [len(r.notices) for r in next_period] == [1, 0, 0, 0]
    assert next_period[0].user_count == 6


def test_requests_over_the_users_quarantine_threshold_are_to_be_held() -> None:
    detector = _detector(SUP1=Thresholds(3, 5, 60.0))
    results = _send(detector, "SUP1", 7, T0)
    assert [r.verdict for r in results] == [Verdict.OK] * 3 + [Verdict.WARNING] * 2 + [
        Verdict.QUARANTINE
    ] * 2
    held = results[5]
    assert held.hold
    assert held.crossed == (ThresholdSource.USER,)
    assert held.user_count == 6
    assert held.reason == (
        "6 requests by user SUP1 for service 4.1.1 in 60 s exceed its quarantine threshold "
        "of 5 (set by the user)"
    )


def test_one_users_thresholds_do_not_affect_another_user_or_service() -> None:
    detector = _detector(SUP1=Thresholds(1, 1, 60.0))
    _send(detector, "SUP1", 2, T0)
    assert detector.observe("SUP1", "4.1.1", T0).hold
    assert detector.observe("SUP2", "4.1.1", T0).verdict is Verdict.OK
    assert detector.observe("SUP1", "4.8.1", T0).verdict is Verdict.OK


def test_the_default_thresholds_quarantine_a_user_that_set_none() -> None:
    small = Thresholds(2, 4, 60.0)
    detector = AnomalyDetector(AnomalyConfig(default=small))
    results = _send(detector, "SUP1", 5, T0)
    assert results[-1].hold
    assert results[-1].crossed == (ThresholdSource.DEFAULT,)
    assert "(default (the user set none))" in results[-1].reason


def test_quarantine_lifts_when_the_period_has_rolled() -> None:
    detector = _detector(SUP1=Thresholds(2, 2, 60.0))
    assert _send(detector, "SUP1", 3, T0)[-1].hold
    assert detector.observe("SUP1", "4.1.1", T0 + 59.0).hold
    after = detector.observe("SUP1", "4.1.1", T0 + 60.0)
    assert (after.verdict, after.user_count) == (Verdict.OK, 2)


def test_a_hub_wide_threshold_catches_traffic_spread_across_users() -> None:
    detector = AnomalyDetector()
    detector.set_hub_thresholds("4.1.1", Thresholds(3, 5, 60.0))
    results = [detector.observe(f"SUP{i}", "4.1.1", T0 + i) for i in range(7)]
    assert [r.user_count for r in results] == [1] * 7
    assert [r.verdict for r in results] == [Verdict.OK] * 3 + [Verdict.WARNING] * 2 + [
        Verdict.QUARANTINE
    ] * 2
    assert results[5].crossed == (ThresholdSource.HUB_WIDE,)
    assert results[5].hub_count == 6
    assert "hub-wide quarantine threshold of 5" in results[5].reason
    hub_notices = [n for r in results for n in r.notices]
    assert len(hub_notices) == 1
    assert hub_notices[0].user_id is None  # for the operator, not for one user


def test_a_verdict_names_both_thresholds_when_both_are_crossed() -> None:
    detector = _detector(SUP1=Thresholds(1, 1, 60.0))
    detector.set_hub_thresholds("4.1.1", Thresholds(1, 1, 60.0))
    result = _send(detector, "SUP1", 2, T0)[-1]
    assert result.crossed == (ThresholdSource.USER, ThresholdSource.HUB_WIDE)
    assert "its quarantine threshold" in result.reason
    assert "hub-wide quarantine threshold" in result.reason


def test_removing_hub_wide_thresholds_stops_hub_wide_counting() -> None:
    detector = AnomalyDetector()
    detector.set_hub_thresholds("4.1.1", Thresholds(1, 1, 60.0))
    assert detector.observe("SUP1", "4.1.1", T0).hub_count == 1
    detector.set_hub_thresholds("4.1.1", None)
    assert detector.observe("SUP1", "4.1.1", T0).hub_count is None


def test_idle_counters_are_forgotten_and_memory_stays_bounded_over_100000_users() -> None:
    detector = AnomalyDetector(AnomalyConfig(default=Thresholds(5, 10, 60.0)))
    most = 0
    for i in range(100_000):
        detector.observe(f"USER{i}", "4.1.1", T0 + i * 0.01)  # 100 users a second for 1000 s
        most = max(most, detector.tracked)
    assert most <= 6_001  # one period's worth of users, plus the one being added
    assert detector.evicted == 0
    assert detector.forget_idle(T0 + 1000.0 + 60.0) > 0
    assert detector.tracked == 0


def test_the_tracked_counter_cap_forgets_the_least_recently_active() -> None:
    detector = AnomalyDetector(AnomalyConfig(max_tracked=100))
    for i in range(1_000):
        detector.observe(f"USER{i}", "4.1.1", T0)
    assert detector.tracked == 100
    assert detector.evicted == 900


# ---- quarantine --------------------------------------------------------------------------------


def test_a_held_request_is_listed_for_its_owner_only() -> None:
    q: Quarantine[str] = Quarantine()
    decision = q.hold("SUP1", "r1", "item-1", T0, service="4.1.1", reason="over")
    assert decision.outcome is HoldOutcome.HELD
    assert decision.held
    assert decision.entry is not None
    assert decision.entry.item == "item-1"
    assert [e.request_id for e in q.held("SUP1")] == ["r1"]
    assert q.held("SUP2") == []


def test_holding_the_same_request_twice_changes_nothing() -> None:
    q: Quarantine[str] = Quarantine()
    q.hold("SUP1", "r1", "first", T0, service="4.1.1")
    again = q.hold("SUP1", "r1", "second", T0 + 1, service="4.1.1")
    assert again.outcome is HoldOutcome.ALREADY_HELD
    assert again.entry is not None
    assert again.entry.item == "first"
    assert len(q) == 1


def test_release_returns_items_to_their_owner_only() -> None:
    q: Quarantine[str] = Quarantine()
    q.hold("SUP1", "r1", "one", T0, service="4.1.1")
    q.hold("SUP1", "r2", "two", T0, service="4.1.1")

    stolen = q.release("SUP2", ["r1"])
    assert stolen.removed == []
    assert stolen.unknown == ["r1"]
    assert q.count("SUP1") == 2

    released = q.release("SUP1", ["r2", "nope", "r2"])
    assert [e.item for e in released.removed] == ["two"]
    assert released.unknown == ["nope"]
    assert [e.request_id for e in q.held("SUP1")] == ["r1"]


def test_delete_discards_held_requests_and_reports_the_unknown() -> None:
    q: Quarantine[str] = Quarantine()
    q.hold("SUP1", "r1", "one", T0, service="4.1.1")
    deleted = q.delete("SUP1", ["r1"])
    assert [e.request_id for e in deleted.removed] == ["r1"]
    assert q.held("SUP1") == []
    assert len(q) == 0
    assert q.delete("SUP1", ["r1"]).unknown == ["r1"]


def test_requests_held_too_long_expire_in_hold_order() -> None:
    q: Quarantine[str] = Quarantine()
    q.hold("SUP1", "r1", "one", T0, service="4.1.1")
    q.hold("SUP2", "r2", "two", T0 + 10, service="4.1.1")
    assert q.expire(T0 + 99.0, hold_s=100.0) == []
    expired = q.expire(T0 + 100.0, hold_s=100.0)
    assert [e.request_id for e in expired] == ["r1"]
    assert q.held("SUP1") == []
    assert [e.request_id for e in q.expire(T0 + 110.0, hold_s=100.0)] == ["r2"]
    assert len(q) == 0


def test_a_full_user_quarantine_refuses_instead_of_growing() -> None:
    q: Quarantine[int] = Quarantine(QuarantineConfig(max_per_user=2, max_total=10))
    outcomes = [q.hold("SUP1", f"r{i}", i, T0, service="4.1.1").outcome for i in range(4)]
    assert outcomes == [HoldOutcome.HELD] * 2 + [HoldOutcome.REFUSED_USER_FULL] * 2
    assert q.count("SUP1") == 2
    assert q.hold("SUP2", "r0", 0, T0, service="4.1.1").held


def test_a_full_hub_quarantine_refuses_instead_of_growing() -> None:
    q: Quarantine[int] = Quarantine(QuarantineConfig(max_per_user=10, max_total=3))
    for i in range(3):
        assert q.hold(f"SUP{i}", "r", i, T0, service="4.1.1").held
    refused = q.hold("SUP9", "r", 9, T0, service="4.1.1")
    assert refused.outcome is HoldOutcome.REFUSED_HUB_FULL
    assert refused.entry is None
    assert "full" in refused.reason
    assert len(q) == 3


def test_the_quarantine_stays_at_its_cap_under_100000_holds() -> None:
    q: Quarantine[int] = Quarantine(QuarantineConfig(max_per_user=5, max_total=1_000))
    refused = 0
    for i in range(100_000):
        refused += not q.hold(f"USER{i % 5_000}", f"r{i}", i, T0 + i, service="4.1.1").held
    assert len(q) == 1_000
    assert refused == 99_000


def test_a_user_is_notified_once_per_batch_of_quarantined_requests() -> None:
    q: Quarantine[int] = Quarantine(QuarantineConfig(notify_after_s=60.0))
    for i in range(3):
        q.hold("SUP1", f"r{i}", i, T0 + i, service="4.1.1")
    q.hold("SUP1", "x", 9, T0 + 5, service="4.8.1")
    assert q.due_notifications(T0 + 59.0) == []

    due = q.due_notifications(T0 + 65.0)
    assert [(n.kind, n.user_id, n.service, n.count) for n in due] == [
        (NoticeKind.QUARANTINED, "SUP1", "4.1.1", 3),
        (NoticeKind.QUARANTINED, "SUP1", "4.8.1", 1),
    ]
    assert due[0].text == "3 requests quarantined for service 4.1.1: release or delete them"
    assert q.due_notifications(T0 + 1000.0) == []

    q.hold("SUP1", "r9", 9, T0 + 2000.0, service="4.1.1")
    again = q.due_notifications(T0 + 2060.0)
    assert [(n.user_id, n.count) for n in again] == [("SUP1", 1)]


def test_with_no_gathering_time_each_step_gets_its_own_notification() -> None:
    q: Quarantine[int] = Quarantine(QuarantineConfig(notify_after_s=0.0))
    q.hold("SUP1", "r1", 1, T0, service="4.1.1")
    q.hold("SUP1", "r2", 2, T0, service="4.1.1")
    assert [n.count for n in q.due_notifications(T0)] == [2]
    assert q.due_notifications(T0) == []


def test_a_notification_delay_beyond_the_30_minute_target_is_refused() -> None:
    with pytest.raises(ValueError):
        QuarantineConfig(notify_after_s=1801.0)


def test_quarantine_metadata_round_trips_through_plain_values() -> None:
    entry = QuarantineEntry("SUP1", "r1", "4.1.1", T0, "over threshold", b"item")
    record = entry.to_record()
    assert all(isinstance(v, str | float) for v in record.values())
    assert QuarantineEntry.from_record(record, b"item") == entry


@pytest.mark.parametrize(
    "change",
    [{"held_at": "soon"}, {"user_id": 7}, {"extra": 1}, {"held_at": float("nan")}],
)
def test_a_malformed_quarantine_record_is_refused(change: dict[str, object]) -> None:
    record: dict[str, object] = {
        **QuarantineEntry("SUP1", "r1", "4.1.1", T0, "", 0).to_record(),
        **change,
    }
    with pytest.raises(ValueError):
        QuarantineEntry.from_record(record, 0)


def test_a_restored_quarantine_keeps_hold_order_and_tells_users_again() -> None:
    before: Quarantine[str] = Quarantine()
    before.hold("SUP1", "late", "b", T0 + 50, service="4.1.1")
    before.hold("SUP1", "early", "a", T0 + 60, service="4.1.1")
    before.hold("SUP2", "r", "c", T0 + 10, service="4.1.1")
    stored = [(e.to_record(), e.item) for u in ("SUP2", "SUP1") for e in before.held(u)]

    after: Quarantine[str] = Quarantine()
    after.restore((QuarantineEntry.from_record(r, item) for r, item in stored), T0 + 100)
    assert [e.request_id for e in after.held("SUP1")] == ["late", "early"]
    assert [e.request_id for e in after.expire(T0 + 150.0, hold_s=100.0)] == ["r", "late"]
    due = after.due_notifications(T0 + 100 + 60)
    assert sorted((n.user_id, n.count) for n in due) == [("SUP1", 2), ("SUP2", 1)]
    assert all("after a hub restart" in n.text for n in due)


def test_detector_and_quarantine_together_hold_what_is_over_threshold() -> None:
    detector = _detector(SUP1=Thresholds(2, 3, 60.0))
    q: Quarantine[int] = Quarantine(QuarantineConfig(notify_after_s=0.0))
    executed = []
    for i in range(6):
        result = detector.observe("SUP1", "4.1.1", T0)
        if result.hold:
            q.hold("SUP1", f"r{i}", i, T0, service="4.1.1", reason=result.reason)
        else:
            executed.append(i)
    assert executed == [0, 1, 2]
    assert [e.item for e in q.held("SUP1")] == [3, 4, 5]
    assert [n.count for n in q.due_notifications(T0)] == [3]
    assert [e.item for e in q.release("SUP1", ["r3"]).removed] == [3]

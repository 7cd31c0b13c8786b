"""Security monitoring, driven with a fake clock (plain floats): no sleeps."""

from __future__ import annotations

import pytest

from hub.policies.security import (
    ALL_SUBJECTS,
    DEFAULT_RULES,
    AlertKind,
    Rule,
    SecurityAlert,
    SecurityConfig,
    SecurityMonitor,
)
from hub.reference.codes import ResponseCode

T0 = 1_700_000_400.0  # an epoch instant on a bucket boundary (a multiple of 600 s)


def _monitor(**rules: Rule) -> SecurityMonitor:
    return SecurityMonitor(
        SecurityConfig(rules={AlertKind(kind): rule for kind, rule in rules.items()})
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0, "window_s": 60.0},
        {"threshold": 1, "window_s": 0.0},
        {"threshold": 1, "window_s": float("nan")},
        {"threshold": 1, "window_s": 60.0, "total_threshold": 0},
        {"threshold": 1, "window_s": 60.0, "buckets": 0},
    ],
)
def test_a_rule_that_makes_no_sense_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Rule(**kwargs)  # type: ignore[arg-type]


def test_every_kind_has_a_documented_default_rule() -> None:
    assert set(DEFAULT_RULES) == set(AlertKind)
    assert (
        SecurityConfig(rules={}).rule(AlertKind.REPEATED_REFUSALS)
        == (DEFAULT_RULES[AlertKind.REPEATED_REFUSALS])
    )


def test_repeated_refusals_of_a_user_raise_an_alert_at_the_threshold() -> None:
    monitor = SecurityMonitor()  # default: 20 in 300 s
    for i in range(19):
        assert monitor.on_refusal("SUP1", ResponseCode.E4, T0 + i) == []
    alerts = monitor.on_refusal("SUP1", ResponseCode.E1, T0 + 19)
    assert alerts == [
        SecurityAlert(
            AlertKind.REPEATED_REFUSALS,
            "SUP1",
            20,
            300.0,
            "user SUP1: 20 requests refused (E1-E5) within 300 s, threshold 20 (last: E1)",
            T0 + 19,
        )
    ]


def test_refusals_other_than_e1_to_e5_do_not_count() -> None:
    monitor = _monitor(repeated_refusals=Rule(2, 60.0))
    for code in (ResponseCode.H8, ResponseCode.H1, ResponseCode.E19, ResponseCode.I99):
        assert monitor.on_refusal("SUP1", code, T0) == []
    assert monitor.tracked(AlertKind.REPEATED_REFUSALS) == 0
    assert monitor.on_refusal("SUP1", ResponseCode.E2, T0) == []
    assert len(monitor.on_refusal("SUP1", ResponseCode.E3, T0)) == 1


def test_an_alert_for_a_subject_is_raised_once_per_window_under_a_sustained_attack() -> None:
    monitor = _monitor(repeated_refusals=Rule(20, 300.0))
    raised = [
        alert.raised_at - T0
        for second in range(700)
        for alert in monitor.on_refusal("SUP1", ResponseCode.E4, T0 + second)
    ]
    assert raised == [19.0, 319.0, 619.0]


def test_counts_that_fall_out_of_the_window_do_not_raise_an_alert() -> None:
    monitor = _monitor(integrity_failures=Rule(3, 600.0))
    monitor.on_integrity_failure("CH1", T0)
    monitor.on_integrity_failure("CH1", T0 + 1)
    assert monitor.on_integrity_failure("CH1", T0 + 600.0) == []  # the first two expired
    assert monitor.on_integrity_failure("CH1", T0 + 601.0) == []
    assert len(monitor.on_integrity_failure("CH1", T0 + 602.0)) == 1


def test_handshakes_refused_for_one_key_raise_an_alert_at_the_threshold() -> None:
    monitor = SecurityMonitor()  # default: 5 in 60 s per key
    results = [monitor.on_handshake_refused("ab12", T0 + i, "suspended key") for i in range(6)]
    assert [len(r) for r in results] == [0, 0, 0, 0, 1, 0]
    alert = results[4][0]
    assert (alert.kind, alert.subject, alert.count, alert.window_s) == (
        AlertKind.REFUSED_HANDSHAKES,
        "ab12",
        5,
        60.0,
    )
    assert "last: suspended key" in alert.reason


def test_handshakes_refused_across_many_keys_raise_one_alert_for_all_keys() -> None:
    monitor = _monitor(refused_handshakes=Rule(5, 60.0, total_threshold=100))
    alerts = [a for i in range(300) for a in monitor.on_handshake_refused(f"key{i}", T0 + i / 10)]
    assert [(a.subject, a.count) for a in alerts] == [(ALL_SUBJECTS, 100)]
    assert alerts[0].reason.startswith("all keys together: 100 handshakes refused")


def test_integrity_failures_of_a_comms_hub_raise_an_alert_at_the_threshold() -> None:
    monitor = SecurityMonitor()  # default: 3 in 600 s per comms hub
    assert monitor.on_integrity_failure("CH1", T0, "bad CRC") == []
    assert monitor.on_integrity_failure("CH2", T0, "bad CRC") == []
    assert monitor.on_integrity_failure("CH1", T0 + 100, "bad HMAC") == []
    alerts = monitor.on_integrity_failure("CH1", T0 + 200, "bad HMAC")
    assert [(a.kind, a.subject, a.count) for a in alerts] == [
        (AlertKind.INTEGRITY_FAILURES, "CH1", 3)
    ]
    assert alerts[0].reason == (
        "comms hub CH1: 3 frames failing the head-end's integrity check within 600 s, "
        "threshold 3 (last: bad HMAC)"
    )


def test_unsolicited_responses_raise_an_alert_at_the_threshold() -> None:
    monitor = SecurityMonitor()  # default: 3 in 600 s per source
    assert monitor.on_unsolicited_response("ESME1", T0, "no command 7 pending") == []
    assert monitor.on_unsolicited_response("ESME1", T0 + 1) == []
    alerts = monitor.on_unsolicited_response("ESME1", T0 + 2)
    assert [(a.kind, a.subject, a.count) for a in alerts] == [
        (AlertKind.UNSOLICITED_RESPONSES, "ESME1", 3)
    ]
    assert "last: no command 7 pending" in alerts[0].reason


def test_kinds_are_counted_apart() -> None:
    monitor = _monitor(integrity_failures=Rule(2, 60.0), unsolicited_responses=Rule(2, 60.0))
    assert monitor.on_integrity_failure("CH1", T0) == []
    assert monitor.on_unsolicited_response("CH1", T0) == []
    assert len(monitor.on_integrity_failure("CH1", T0)) == 1


def test_idle_subjects_are_forgotten_over_100000_distinct_keys() -> None:
    monitor = _monitor(refused_handshakes=Rule(5, 60.0))
    most = 0
    for i in range(100_000):
        monitor.on_handshake_refused(f"key{i}", T0 + i * 0.01)  # 100 keys a second, 1000 s
        most = max(most, monitor.tracked(AlertKind.REFUSED_HANDSHAKES))
    assert most <= 6_001  # one window's worth of keys, plus the one being added
    assert monitor.evicted[AlertKind.REFUSED_HANDSHAKES] == 0
    assert monitor.forget_idle(T0 + 1000.0 + 60.0) > 0
    assert monitor.tracked(AlertKind.REFUSED_HANDSHAKES) == 0


def test_a_burst_of_100000_distinct_users_stays_within_the_subject_cap() -> None:
    monitor = SecurityMonitor(
        SecurityConfig(rules={AlertKind.REPEATED_REFUSALS: Rule(5, 300.0)}, max_subjects=1_000)
    )
    for i in range(100_000):
        monitor.on_refusal(f"USER{i}", ResponseCode.E1, T0 + i / 100_000)
    assert monitor.tracked(AlertKind.REPEATED_REFUSALS) == 1_000
    assert monitor.evicted[AlertKind.REPEATED_REFUSALS] == 99_000

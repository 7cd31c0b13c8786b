"""Anomaly detection and quarantine: how many requests a user may send per service.

Re-exports only. The thresholds, verdicts and notifications live in ``thresholds``, the
rolling counts in ``counters``, the per-request judgement in ``detector`` and the held
requests in ``quarantine``. None of them executes, refuses or answers a request (the engine
does, with the decisions returned), reads a clock or grows without bound.

Counting model: every observed request counts, including those that end up held, so a user who
keeps flooding stays over its threshold. Counts are kept in ``RollingCounter``s of
``DEFAULT_BUCKETS`` fixed time buckets per period, so an event is counted for between
``period_s - period_s / buckets`` and ``period_s`` seconds (see ``RollingCounter``).
"""

from hub.policies.anomaly.counters import (
    DEFAULT_BUCKETS,
    RollingCounter,
)
from hub.policies.anomaly.detector import (
    DEFAULT_MAX_TRACKED,
    AnomalyConfig,
    AnomalyDetector,
)
from hub.policies.anomaly.quarantine import (
    DEFAULT_MAX_PER_USER,
    DEFAULT_MAX_TOTAL,
    DEFAULT_NOTIFY_AFTER_S,
    DEFAULT_QUARANTINE_HOLD_S,
    NOTIFY_TARGET_S,
    HoldDecision,
    HoldOutcome,
    Quarantine,
    QuarantineConfig,
    QuarantineEntry,
    Removal,
)
from hub.policies.anomaly.thresholds import (
    DEFAULT_CRITICAL_THRESHOLDS,
    DEFAULT_PERIOD_S,
    DEFAULT_THRESHOLDS,
    Assessment,
    NoticeKind,
    Notification,
    Thresholds,
    ThresholdSource,
    Verdict,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_CRITICAL_THRESHOLDS",
    "DEFAULT_MAX_PER_USER",
    "DEFAULT_MAX_TOTAL",
    "DEFAULT_MAX_TRACKED",
    "DEFAULT_NOTIFY_AFTER_S",
    "DEFAULT_PERIOD_S",
    "DEFAULT_QUARANTINE_HOLD_S",
    "DEFAULT_THRESHOLDS",
    "NOTIFY_TARGET_S",
    "AnomalyConfig",
    "AnomalyDetector",
    "Assessment",
    "HoldDecision",
    "HoldOutcome",
    "NoticeKind",
    "Notification",
    "Quarantine",
    "QuarantineConfig",
    "QuarantineEntry",
    "Removal",
    "RollingCounter",
    "ThresholdSource",
    "Thresholds",
    "Verdict",
]

"""Security monitoring: alerts on patterns that suggest misuse or a compromised party.

Decides: when to raise a ``SecurityAlert`` for a subject: a user refused again and again (E1-E5),
a CURVE key whose handshakes are refused (unknown or suspended), a comms hub whose frames fail
its head-end's integrity check, a source of responses to commands that are not pending
(unsolicited); and, for each kind, the same across all subjects (a spread-out attack). Each kind
has a threshold (events within a rolling window); an alert is raised when the count reaches it,
at most once per window per subject.
Must never: act on an alert (the drivers audit, log or page someone); read a clock (``now`` is
given); open files or sockets; grow without bound (idle subjects are forgotten, and each kind
keeps at most ``max_subjects``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from hub.policies.anomaly import RollingCounter
from hub.reference.codes import ResponseCode

ALL_SUBJECTS = "*"
"""The subject of an alert about one kind of event across all subjects."""

REFUSAL_CODES = frozenset(
    {ResponseCode.E1, ResponseCode.E2, ResponseCode.E3, ResponseCode.E4, ResponseCode.E5}
)
"""Refusals that count towards REPEATED_REFUSALS: identity, role, status and device access."""

DEFAULT_MAX_SUBJECTS = 10_000
"""Subjects tracked per kind; beyond it the least recently active one is forgotten."""


class AlertKind(StrEnum):
    """What a security alert is about; the subject's nature follows from it."""

    REPEATED_REFUSALS = "repeated_refusals"
    """A user's requests refused with E1-E5 (subject: user id)."""
    REFUSED_HANDSHAKES = "refused_handshakes"
    """Handshakes refused for an unknown or suspended key (subject: key fingerprint)."""
    INTEGRITY_FAILURES = "integrity_failures"
    """Frames failing the head-end's integrity check (subject: comms hub id)."""
    UNSOLICITED_RESPONSES = "unsolicited_responses"
    """Responses for no pending command (subject: the device or comms hub that sent them)."""


_WHAT = {
    AlertKind.REPEATED_REFUSALS: "requests refused (E1-E5)",
    AlertKind.REFUSED_HANDSHAKES: "handshakes refused (unknown or suspended key)",
    AlertKind.INTEGRITY_FAILURES: "frames failing the head-end's integrity check",
    AlertKind.UNSOLICITED_RESPONSES: "responses to no pending command",
}

_NOUN = {
    AlertKind.REPEATED_REFUSALS: "user",
    AlertKind.REFUSED_HANDSHAKES: "key",
    AlertKind.INTEGRITY_FAILURES: "comms hub",
    AlertKind.UNSOLICITED_RESPONSES: "source",
}


@dataclass(frozen=True, slots=True)
class Rule:
    """When one kind of event becomes an alert."""

    threshold: int
    """Events for one subject within the window that raise an alert (reaching it raises)."""
    window_s: float
    """The rolling window, seconds; also the quiet time after an alert for the same subject."""
    total_threshold: int | None = None
    """Events across all subjects within the window that raise an ``ALL_SUBJECTS`` alert;
    None: no such alert."""
    buckets: int = 10
    """Buckets per window (an event stops counting between window - window / buckets and
    window seconds after it)."""

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or self.threshold < 1:
            raise ValueError(f"threshold must be a positive integer, got {self.threshold!r}")
        if self.total_threshold is not None and self.total_threshold < 1:
            raise ValueError(f"total threshold must be positive, got {self.total_threshold!r}")
        if not math.isfinite(self.window_s) or self.window_s <= 0:
            raise ValueError(f"window must be a positive number of seconds, got {self.window_s!r}")
        if self.buckets < 1:
            raise ValueError(f"need at least one bucket, got {self.buckets}")


DEFAULT_RULES: Mapping[AlertKind, Rule] = MappingProxyType(
    {
        AlertKind.REPEATED_REFUSALS: Rule(threshold=20, window_s=300.0),
        AlertKind.REFUSED_HANDSHAKES: Rule(threshold=5, window_s=60.0, total_threshold=100),
        AlertKind.INTEGRITY_FAILURES: Rule(threshold=3, window_s=600.0, total_threshold=100),
        AlertKind.UNSOLICITED_RESPONSES: Rule(threshold=3, window_s=600.0, total_threshold=100),
    }
)
"""Defaults: 20 refusals of a user in 5 minutes; 5 refused handshakes of a key in a minute
(100 across all keys); 3 integrity failures of a comms hub in 10 minutes (100 across all);
3 unsolicited responses from one source in 10 minutes (100 across all)."""


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """Tunables of security monitoring (all configurable at start-up)."""

    rules: Mapping[AlertKind, Rule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    """One rule per kind; kinds missing here take their default."""
    max_subjects: int = DEFAULT_MAX_SUBJECTS
    """Subjects tracked per kind at most."""

    def __post_init__(self) -> None:
        if self.max_subjects < 1:
            raise ValueError(f"max_subjects must be positive, got {self.max_subjects}")

    def rule(self, kind: AlertKind) -> Rule:
        """The rule for a kind (its default when not configured)."""
        return self.rules.get(kind, DEFAULT_RULES[kind])


@dataclass(frozen=True, slots=True)
class SecurityAlert:
    """Event: a security threshold was reached."""

    kind: AlertKind
    """What happened."""
    subject: str
    """Who it happened to: user id, key fingerprint, comms hub or device id; ``ALL_SUBJECTS``
    for the count across all subjects of the kind."""
    count: int
    """Events counted in the window, the last one included."""
    window_s: float
    """The window the count covers, seconds."""
    reason: str
    """One line naming the subject, the count, the window and the threshold."""
    raised_at: float
    """When it was raised (the time of the event that reached the threshold)."""


@dataclass(slots=True)
class _Subject:
    counter: RollingCounter
    last_seen: float
    quiet_until: float = -math.inf
    last_detail: str = ""


class SecurityMonitor:
    """Counts security-relevant events per subject and raises alerts at the thresholds."""

    def __init__(self, config: SecurityConfig | None = None) -> None:
        self.config = config or SecurityConfig()
        self._subjects: dict[AlertKind, OrderedDict[str, _Subject]] = {
            kind: OrderedDict() for kind in AlertKind
        }
        self._totals: dict[AlertKind, _Subject] = {}
        self.evicted: dict[AlertKind, int] = dict.fromkeys(AlertKind, 0)
        """Active subjects forgotten because ``max_subjects`` was reached, per kind."""

    def tracked(self, kind: AlertKind) -> int:
        """Subjects currently tracked for a kind."""
        return len(self._subjects[kind])

    # ---- the four feeds ------------------------------------------------------------------

    def on_refusal(self, user_id: str, code: ResponseCode, now: float) -> list[SecurityAlert]:
        """A user's request was refused; only E1-E5 count."""
        if code not in REFUSAL_CODES:
            return []
        return self.record(AlertKind.REPEATED_REFUSALS, user_id, now, code.value)

    def on_handshake_refused(
        self, key_fingerprint: str, now: float, detail: str = ""
    ) -> list[SecurityAlert]:
        """The front door refused a handshake for an unknown or suspended key."""
        return self.record(AlertKind.REFUSED_HANDSHAKES, key_fingerprint, now, detail)

    def on_integrity_failure(
        self, comms_hub: str, now: float, detail: str = ""
    ) -> list[SecurityAlert]:
        """A frame from a comms hub failed its head-end's integrity check."""
        return self.record(AlertKind.INTEGRITY_FAILURES, comms_hub, now, detail)

    def on_unsolicited_response(
        self, source: str, now: float, detail: str = ""
    ) -> list[SecurityAlert]:
        """A response arrived for a command that is not pending."""
        return self.record(AlertKind.UNSOLICITED_RESPONSES, source, now, detail)

    # ---- the one rule --------------------------------------------------------------------

    def record(
        self, kind: AlertKind, subject: str, now: float, detail: str = ""
    ) -> list[SecurityAlert]:
        """Count one event of a kind for a subject; returns the alerts it raises (for the
        subject, and across all subjects), each at most once per window."""
        rule = self.config.rule(kind)
        table = self._subjects[kind]
        self._forget_idle_front(table, rule.window_s, now)
        state = table.get(subject)
        if state is None:
            if len(table) >= self.config.max_subjects:
                table.popitem(last=False)
                self.evicted[kind] += 1
            state = _Subject(RollingCounter(rule.window_s, rule.buckets), now)
            table[subject] = state
        else:
            table.move_to_end(subject)
        alerts: list[SecurityAlert] = []
        alert = self._count(
            kind, subject, f"{_NOUN[kind]} {subject}", state, rule, rule.threshold, now, detail
        )
        if alert is not None:
            alerts.append(alert)
        if rule.total_threshold is not None:
            total = self._totals.get(kind)
            if total is None or total.counter.period_s != rule.window_s:
                total = _Subject(RollingCounter(rule.window_s, rule.buckets), now)
                self._totals[kind] = total
            alert = self._count(
                kind,
                ALL_SUBJECTS,
                f"all {_NOUN[kind]}s together",
                total,
                rule,
                rule.total_threshold,
                now,
                detail,
            )
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _count(
        self,
        kind: AlertKind,
        subject: str,
        who: str,
        state: _Subject,
        rule: Rule,
        threshold: int,
        now: float,
        detail: str,
    ) -> SecurityAlert | None:
        if state.counter.period_s != rule.window_s:
            state.counter = RollingCounter(rule.window_s, rule.buckets)
        count = state.counter.add(now)
        state.last_seen = max(state.last_seen, now)
        if detail:
            state.last_detail = detail
        if count < threshold or now < state.quiet_until:
            return None
        state.quiet_until = now + rule.window_s
        last = f" (last: {state.last_detail})" if state.last_detail else ""
        reason = (
            f"{who}: {count} {_WHAT[kind]} within {rule.window_s:g} s, threshold {threshold}{last}"
        )
        return SecurityAlert(kind, subject, count, rule.window_s, reason, now)

    # ---- bounded state -------------------------------------------------------------------

    @staticmethod
    def _forget_idle_front(table: OrderedDict[str, _Subject], window_s: float, now: float) -> None:
        while table:
            state = next(iter(table.values()))
            if state.last_seen + window_s > now:
                return
            table.popitem(last=False)

    def forget_idle(self, now: float) -> int:
        """Forget every subject with nothing left in its window (its quiet time is over too);
        returns how many. (Subjects are also forgotten in passing, oldest first.)"""
        forgotten = 0
        for kind, table in self._subjects.items():
            window_s = self.config.rule(kind).window_s
            idle = [s for s, state in table.items() if state.last_seen + window_s <= now]
            for s in idle:
                del table[s]
            forgotten += len(idle)
        return forgotten

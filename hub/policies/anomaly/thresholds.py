"""Anomaly thresholds and verdicts: the tiers a count is judged against, and what is decided.

Decides: what valid thresholds are (a warning tier at most the quarantine tier, over a positive
period), the documented defaults for users that set none, and the shapes of the verdict, the
assessment of one request and the notifications to send.
Must never: count requests or hold them (the detector and the quarantine do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


DEFAULT_PERIOD_S = 3600.0
"""The default counting period: one hour."""


@dataclass(frozen=True, slots=True)
class Thresholds:
    """A warning tier and a quarantine tier over a counting period.

    A request is over a tier when the count in the period, this request included, exceeds the
    tier's number: with ``quarantine=100`` the 100th request in the period is executed and the
    101st is held.
    """

    warning: int
    """More requests than this in the period: WARNING (the request still proceeds)."""
    quarantine: int
    """More requests than this in the period: QUARANTINE (the request is held)."""
    period_s: float
    """Length of the rolling counting period, seconds."""

    def __post_init__(self) -> None:
        for name in ("warning", "quarantine"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} threshold must be a positive integer, got {value!r}")
        if self.warning > self.quarantine:
            raise ValueError(
                f"warning threshold {self.warning} is above quarantine threshold {self.quarantine}"
            )
        if (
            isinstance(self.period_s, bool)
            or not isinstance(self.period_s, int | float)
            or not math.isfinite(self.period_s)
            or self.period_s <= 0
        ):
            raise ValueError(f"period must be a positive number of seconds, got {self.period_s!r}")


DEFAULT_THRESHOLDS = Thresholds(warning=80_000, quarantine=100_000, period_s=DEFAULT_PERIOD_S)
"""For a user that set none, per service: generous, so ordinary bulk traffic is never held."""

DEFAULT_CRITICAL_THRESHOLDS = Thresholds(
    warning=40_000, quarantine=50_000, period_s=DEFAULT_PERIOD_S
)
"""For a user that set none, per critical service (tariffs, supply, credit): half the above."""


class ThresholdSource(StrEnum):
    """Whose threshold a count was compared with."""

    USER = "set by the user"
    DEFAULT = "default (the user set none)"
    HUB_WIDE = "hub-wide, across all users"


class Verdict(StrEnum):
    """What anomaly detection says about one request."""

    OK = "ok"
    WARNING = "warning"
    QUARANTINE = "quarantine"

    @property
    def severity(self) -> int:
        """0 for OK, 1 for WARNING, 2 for QUARANTINE."""
        return _SEVERITY[self]


_SEVERITY = {Verdict.OK: 0, Verdict.WARNING: 1, Verdict.QUARANTINE: 2}


class NoticeKind(StrEnum):
    """What a notification tells."""

    WARNING = "warning"
    """A warning threshold was crossed (reported once per period)."""
    QUARANTINED = "quarantined"
    """Requests were quarantined (reported once per batch)."""


@dataclass(frozen=True, slots=True)
class Notification:
    """Decision: tell a user (or, for hub-wide thresholds, the hub's operator) about anomalies.

    The engine delivers a user's notification as a hub alert through the outbox."""

    kind: NoticeKind
    """Warning or quarantined."""
    user_id: str | None
    """The user to tell; None for a hub-wide warning, which is for the operator (audit)."""
    service: str
    """The service reference variant concerned."""
    count: int
    """Requests counted (WARNING) or quarantined in the batch (QUARANTINED)."""
    text: str
    """One human-readable line, ready for the alert or the audit."""
    since: float
    """When the batch opened (QUARANTINED) or the threshold was crossed (WARNING)."""


@dataclass(frozen=True, slots=True)
class Assessment:
    """The detector's answer for one request."""

    verdict: Verdict
    """OK, WARNING (proceed) or QUARANTINE (hold)."""
    reason: str
    """Names the threshold crossed (whose, which tier) and the counts; empty when OK."""
    crossed: tuple[ThresholdSource, ...]
    """The thresholds at the verdict's tier: the user's (or default) first, then hub-wide."""
    user_count: int
    """This user's requests for the service in its period, this one included."""
    hub_count: int | None
    """All users' requests for the service in the hub-wide period; None without hub thresholds."""
    notices: tuple[Notification, ...] = ()
    """Warnings to report now (each at most once per period per user and service, or per
    service hub-wide)."""

    @property
    def hold(self) -> bool:
        """True when the request must be quarantined."""
        return self.verdict is Verdict.QUARANTINE

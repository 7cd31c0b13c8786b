"""SLA accounting: each response timed against its service's target response time.

Decides: when a response's clock starts (on demand: when the request was received;
future-dated and scheduled: the execution time), whether it met its target, and the summary
per service and per user (count, p50 / p95 / p99, share within target, against the service
level target and minimum).
Must never: read the clock or store anything; the drivers persist the records.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

SERVICE_LEVEL_TARGET = 0.99
"""Share of responses within target that the hub aims for (configurable)."""
SERVICE_LEVEL_MINIMUM = 0.96
"""Share below which the service level is breached (configurable)."""
FAILURES = frozenset({"E20", "E21", "E30"})
"""Codes meaning the hub did not get an answer from the device in time."""


@dataclass(frozen=True, slots=True)
class SlaRecord:
    """One response's timing."""

    service: str
    """Service reference variant."""
    user_id: str
    """The user the response went to."""
    started_at: float
    """When the SLA clock started: receipt (on demand) or execution time (future dated,
    scheduled)."""
    responded_at: float
    """When the hub had the response ready for delivery."""
    target_s: float
    """The service's target response time."""
    code: str
    """The response code: a hub failure to get an answer (E20, E21, E30) counts against the
    target like a late response; a device's own rejection (H11) is a timely answer."""

    @property
    def elapsed_s(self) -> float:
        """Seconds from the clock's start to the response."""
        return max(0.0, self.responded_at - self.started_at)

    @property
    def within_target(self) -> bool:
        """True when answered within the target by the device or the hub."""
        return self.code not in FAILURES and self.elapsed_s <= self.target_s


@dataclass(frozen=True, slots=True)
class SlaSummary:
    """The SLA figures for one group of responses (a service, a user, or both)."""

    key: tuple[str, ...]
    count: int
    p50_s: float
    p95_s: float
    p99_s: float
    within_target: float
    """Share of responses answered within target."""

    @property
    def meets_target(self) -> bool:
        """At or above the service level target."""
        return self.within_target >= SERVICE_LEVEL_TARGET

    @property
    def breached(self) -> bool:
        """Below the service level minimum."""
        return self.within_target < SERVICE_LEVEL_MINIMUM


def summarise(records: Iterable[SlaRecord], by_user: bool = False) -> list[SlaSummary]:
    """Group by service (and user) and compute percentiles and the share within target."""
    groups: dict[tuple[str, ...], list[SlaRecord]] = {}
    for r in records:
        key: tuple[str, ...] = (r.service, r.user_id) if by_user else (r.service,)
        groups.setdefault(key, []).append(r)
    out = []
    for key in sorted(groups, key=lambda k: (tuple(int(p) for p in k[0].split(".")), k[1:])):
        rs = groups[key]
        elapsed = np.fromiter((r.elapsed_s for r in rs), dtype=float, count=len(rs))
        p50, p95, p99 = np.percentile(elapsed, [50, 95, 99])
        within = sum(1 for r in rs if r.within_target) / len(rs)
        out.append(SlaSummary(key, len(rs), float(p50), float(p95), float(p99), within))
    return out

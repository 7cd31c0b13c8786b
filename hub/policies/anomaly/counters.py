"""Anomaly counters: the rolling count of requests over a period, in fixed time buckets.

Decides: how many events fall in the period ending at ``now``, with memory fixed by the
number of buckets (an event counts for between ``period_s - period_s / buckets`` and
``period_s`` seconds).
Must never: read a clock (``now`` is given) or grow with the number of events.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


DEFAULT_BUCKETS = 60
"""Buckets per period of a rolling counter (granularity: one sixtieth of the period)."""


class RollingCounter:
    """Events counted over a rolling period in a fixed number of time buckets.

    The time line is cut into buckets of ``period_s / buckets`` seconds aligned on multiples of
    that width (from time 0). The count at ``now`` is the sum of the bucket holding ``now`` and
    the ``buckets - 1`` before it. So an event at ``t`` stops counting exactly when the period
    rolls past its bucket, at ``(floor(t / width) + buckets) * width``: between
    ``period_s - width`` and ``period_s`` seconds after it (granularity one bucket width).
    Memory is ``buckets`` integers whatever the rate. Time that steps back is counted in the
    newest bucket.
    """

    __slots__ = ("_counts", "_n", "_newest", "_period", "_total")

    def __init__(self, period_s: float, buckets: int = DEFAULT_BUCKETS) -> None:
        if not math.isfinite(period_s) or period_s <= 0:
            raise ValueError(f"period must be a positive number of seconds, got {period_s!r}")
        if buckets < 1:
            raise ValueError(f"need at least one bucket, got {buckets}")
        self._period = float(period_s)
        self._n = buckets
        self._counts = [0] * buckets
        self._newest: int | None = None
        self._total = 0

    @property
    def period_s(self) -> float:
        """Length of the rolling period, seconds."""
        return self._period

    @property
    def granularity_s(self) -> float:
        """Width of one bucket: how early, at most, an event may stop counting."""
        return self._period / self._n

    def _advance(self, now: float) -> int:
        index = math.floor(now * self._n / self._period)
        newest = self._newest
        if newest is None:
            self._newest = index
            return index
        if index <= newest:
            return newest
        if index - newest >= self._n:
            self._counts = [0] * self._n
            self._total = 0
        else:
            counts = self._counts
            for i in range(newest + 1, index + 1):
                j = i % self._n
                self._total -= counts[j]
                counts[j] = 0
        self._newest = index
        return index

    def add(self, now: float, n: int = 1) -> int:
        """Count ``n`` events at ``now``; returns the count in the period, these included."""
        index = self._advance(now)
        self._counts[index % self._n] += n
        self._total += n
        return self._total

    def total(self, now: float) -> int:
        """The count in the period ending at ``now``."""
        self._advance(now)
        return self._total

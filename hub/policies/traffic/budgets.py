"""Traffic budgets: the token bucket and the sliding-window counter traffic management meters
rates with.

Decides: whether an amount fits a rate budget at ``now``, how long until it would (or until a
whole token is there), and what was used over a rolling window; both with bounded memory.
Must never: read a clock (``now`` is given) or know what is being metered.
"""

from __future__ import annotations

import math

EPS = 1e-9
"""Relative tolerance on token counts, so that waiting exactly ``retry_after`` always works."""


class TokenBucket:
    """A token bucket driven by the caller's clock.

    It starts full (``burst`` tokens) at the first instant it is used and refills at
    ``rate_per_s`` up to ``burst``. A request for more than ``burst`` tokens is let through
    when the bucket is full and leaves it in debt, so an oversize request waits for a full
    bucket instead of starving. An instant earlier than one already seen counts as that one.
    A ``reserve`` keeps that many tokens back from a taker (for more urgent ones): it needs
    ``n + reserve`` tokens (at most a full bucket) and takes ``n``.
    """

    __slots__ = ("_at", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            raise ValueError(f"token bucket rate must be positive and finite, got {rate_per_s}")
        if not (burst > 0 and math.isfinite(burst)):
            raise ValueError(f"token bucket burst must be positive and finite, got {burst}")
        self.rate_per_s = float(rate_per_s)
        """Tokens added per second."""
        self.burst = float(burst)
        """Most tokens the bucket holds."""
        self._tokens = self.burst
        self._at: float | None = None

    def _refill(self, now: float) -> None:
        at = self._at
        if at is None:
            self._at = now
        elif now > at:
            tokens = self._tokens + (now - at) * self.rate_per_s
            self._tokens = tokens if tokens < self.burst else self.burst
            self._at = now

    def tokens(self, now: float) -> float:
        """Tokens available at ``now`` (negative while in debt)."""
        self._refill(now)
        return self._tokens

    def is_full(self, now: float) -> bool:
        """True when the bucket is indistinguishable from a fresh one."""
        self._refill(now)
        return self._tokens >= self.burst

    def take(self, now: float, n: float = 1.0, reserve: float = 0.0) -> bool:
        """Take ``n`` tokens if ``n + reserve`` (at most a full bucket) are available at
        ``now``; False (and nothing taken) otherwise."""
        if n <= 0:
            raise ValueError(f"take needs a positive number of tokens, got {n}")
        self._refill(now)
        need = n + reserve if n + reserve < self.burst else self.burst
        if self._tokens < need - EPS * max(1.0, need):
            return False
        self._tokens -= n
        return True

    def _peek(self, now: float) -> float:
        """Tokens at ``now`` as ``_refill`` would make them, without refilling."""
        at = self._at
        if at is None or now <= at:
            return self._tokens
        tokens = self._tokens + (now - at) * self.rate_per_s
        return tokens if tokens < self.burst else self.burst

    def whole_token_at(self, now: float) -> float:
        """The first instant from ``now`` at which the bucket holds a whole token (``int(tokens
        + EPS) >= 1``, as a caller counting whole tokens sees it), without changing the bucket.
        Needs ``burst >= 1``."""
        if self.burst < 1.0:
            raise ValueError(f"a whole token never fits a burst of {self.burst}")
        if int(self._peek(now) + EPS) >= 1:
            return now
        at = self._at if self._at is not None and self._at > now else now
        ready_at = at + (1.0 - self._peek(at)) / self.rate_per_s
        while int(self._peek(ready_at) + EPS) < 1:  # a few representable instants at most
            ready_at = math.nextafter(ready_at, math.inf)
        return ready_at

    def retry_after(self, now: float, n: float = 1.0, reserve: float = 0.0) -> float:
        """Seconds from ``now`` until ``take(n, reserve)`` would succeed (0.0 if it would now)."""
        if n <= 0:
            raise ValueError(f"retry_after needs a positive number of tokens, got {n}")
        self._refill(now)
        need = n + reserve if n + reserve < self.burst else self.burst
        floor = need - EPS * max(1.0, need)
        tokens = self._tokens
        if tokens >= floor:
            return 0.0
        at = self._at if self._at is not None and self._at > now else now
        rate = self.rate_per_s
        ready_at = at + (need - tokens) / rate
        # Instants are floats (a Unix time has a resolution near 1e-7 s): step to the first
        # representable instant at which ``take`` really finds the tokens.
        while tokens + (ready_at - at) * rate < floor:
            ready_at = math.nextafter(ready_at, math.inf)
        wait = ready_at - now
        while now + wait < ready_at:
            wait = math.nextafter(wait, math.inf)
        return wait


class SlidingCounter:
    """Sum of amounts added over the last ``window_s``, in ``slots`` steps (bounded memory)."""

    __slots__ = ("_counts", "_current", "_slot_s", "_total")

    def __init__(self, window_s: float, slots: int) -> None:
        self._slot_s = window_s / slots
        self._counts = [0] * slots
        self._current: int | None = None
        self._total = 0

    def _advance(self, now: float) -> int:
        slot = math.floor(now / self._slot_s)
        current = self._current
        if current is None:
            self._current = slot
            return slot
        if slot <= current:
            return current
        counts = self._counts
        n = len(counts)
        if slot - current >= n:
            for i in range(n):
                counts[i] = 0
            self._total = 0
        else:
            for s in range(current + 1, slot + 1):
                i = s % n
                self._total -= counts[i]
                counts[i] = 0
        self._current = slot
        return slot

    def add(self, now: float, amount: int) -> None:
        """Count ``amount`` at ``now``."""
        slot = self._advance(now)
        self._counts[slot % len(self._counts)] += amount
        self._total += amount

    def total(self, now: float) -> int:
        """Sum over the window ending at ``now``."""
        self._advance(now)
        return self._total

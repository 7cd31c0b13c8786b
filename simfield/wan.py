"""WAN link model: how long a command's round trip to a comms hub takes, and whether it
gets through.

Decides: for one command, the round-trip delay (a latency distribution), the attempts lost
(each lost attempt waits a retry timeout, then tries again) and the final outcome: answered,
no response after the last retry (E21), or comms hub unreachable (E20).
Must never: sleep, read a clock or hold per-message state; randomness comes from the caller's
generator so runs are reproducible.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum


class LatencyKind(StrEnum):
    """Shape of the one-way-plus-processing round-trip latency."""

    ZERO = "zero"
    FIXED = "fixed"
    UNIFORM = "uniform"
    LOGNORMAL = "lognormal"


class Outcome(StrEnum):
    """What became of a command on the WAN."""

    ANSWERED = "answered"
    NO_RESPONSE = "no_response"  # E21
    UNREACHABLE = "unreachable"  # E20


@dataclass(frozen=True, slots=True)
class WanProfile:
    """Parameters of a WAN link (per region in the simulator; one profile in the live hub)."""

    latency: LatencyKind = LatencyKind.ZERO
    """Latency distribution."""
    median_s: float = 0.0
    """Median round trip (FIXED: the value; UNIFORM: the midpoint)."""
    spread: float = 0.0
    """LOGNORMAL: sigma of the log; UNIFORM: half-width in seconds."""
    loss: float = 0.0
    """Probability that one attempt is lost."""
    retries: int = 2
    """Attempts after the first before giving up with E21."""
    retry_timeout_s: float = 10.0
    """How long the hub waits for an attempt before retrying."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss {self.loss} is not a probability")
        if self.median_s < 0 or self.spread < 0 or self.retry_timeout_s < 0 or self.retries < 0:
            raise ValueError("WAN delays, spread and retries must not be negative")


@dataclass(frozen=True, slots=True)
class Transit:
    """The fate of one command."""

    outcome: Outcome
    delay_s: float
    """Time from sending until the outcome is known."""
    attempts: int


def round_trip(profile: WanProfile, rng: random.Random) -> float:
    """One round-trip latency drawn from the profile."""
    if profile.latency is LatencyKind.ZERO:
        return 0.0
    if profile.latency is LatencyKind.FIXED:
        return profile.median_s
    if profile.latency is LatencyKind.UNIFORM:
        return max(
            0.0, rng.uniform(profile.median_s - profile.spread, profile.median_s + profile.spread)
        )
    return (
        profile.median_s * math.exp(rng.gauss(0.0, profile.spread)) if profile.median_s > 0 else 0.0
    )


def transit(profile: WanProfile, rng: random.Random, reachable: bool = True) -> Transit:
    """Plan one command's trip: lost attempts each cost a retry timeout."""
    if not reachable:
        return Transit(Outcome.UNREACHABLE, profile.retry_timeout_s, 1)
    waited = 0.0
    for attempt in range(1, profile.retries + 2):
        if profile.loss == 0.0 or rng.random() >= profile.loss:
            return Transit(Outcome.ANSWERED, waited + round_trip(profile, rng), attempt)
        waited += profile.retry_timeout_s
    return Transit(Outcome.NO_RESPONSE, waited, profile.retries + 1)

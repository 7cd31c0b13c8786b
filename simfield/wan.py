"""WAN link model: how long a command's round trip to a comms hub takes, and whether it
gets through.

Decides: for one command, the round-trip delay (a latency distribution), the attempts lost
(each lost attempt waits a retry timeout, then tries again) and the final outcome: answered,
no response after the last retry (E21), or comms hub unreachable (E20); which frames a WAN
with corruption (an integrity event, or a standing ``corrupt_share``) damages, and how
(``corrupt``: one byte flipped, which a head-end's CRC or MAC check detects); and, where the
cell is modelled (``CellLink``), when a message leaves its cell: FIFO over ``channels``
channels, each service time drawn from the cell's ``ServiceKind`` law.
Must never: sleep, read a clock or hold per-message state (a ``CellLink`` keeps only when
each channel is next free); randomness comes from the caller's generator so runs are
reproducible.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass
from enum import StrEnum

MESSAGE_BYTES = 400
"""Bytes one command and its response take on a cell, together (the bulk model's
``meters_sim.flows.REQUEST_BYTES``): a message's mean service time is this over the channel's
capacity, whatever the head-end's frame sizes, so both models load a cell alike; a larger
command frame (a firmware image block) takes its own size."""


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


class ServiceKind(StrEnum):
    """Law of a message's service time on a cell channel (mean: its bytes over the channel's
    capacity); the scenario format's ``service_time.law``."""

    DETERMINISTIC = "deterministic"  # exactly the mean (M/D/c)
    EXPONENTIAL = "exponential"  # memoryless (M/M/c)
    LOGNORMAL = "lognormal"  # skewed, given the sigma of its log (M/G/c)
    EMPIRICAL = "empirical"  # drawn from given multiples of the mean (M/G/c)


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
    line_channels: int = 1
    """Commands one comms hub's line carries at once (1: one at a time)."""
    corrupt_share: float = 0.0
    """Share of the frames (each direction) the WAN corrupts, standing (0: none); integrity
    events change it per comms hub for a period."""
    cell_bytes_per_s: float = 0.0
    """What one cell carries, bytes a second, over all its channels (0: the cell is not
    modelled as a queue; only the event model's ``CellLink`` uses it)."""
    cell_channels: int = 1
    """Messages a cell carries at once, each on ``cell_bytes_per_s / cell_channels``."""
    service: ServiceKind = ServiceKind.DETERMINISTIC
    """Law of a message's service time on a cell channel."""
    sigma: float = 0.5
    """LOGNORMAL service: standard deviation of the log of the service time."""
    samples: tuple[float, ...] = ()
    """EMPIRICAL service: service times as multiples of the mean, drawn with equal
    probability (scaled so that their mean is 1)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss {self.loss} is not a probability")
        if not 0.0 <= self.corrupt_share <= 1.0:
            raise ValueError(f"corrupt share {self.corrupt_share} is not a probability")
        if self.median_s < 0 or self.spread < 0 or self.retry_timeout_s < 0 or self.retries < 0:
            raise ValueError("WAN delays, spread and retries must not be negative")
        if self.line_channels < 1 or self.cell_channels < 1 or self.cell_bytes_per_s < 0:
            raise ValueError("channels must be at least 1 and cell capacity not negative")
        if self.service is ServiceKind.EMPIRICAL and not any(x > 0 for x in self.samples):
            raise ValueError("an empirical service law needs samples, not all 0")


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


def corrupt(frame: bytes, rng: random.Random) -> bytes:
    """The frame with one byte damaged (every bit of it flipped), as noise on the WAN does; a
    head-end's CRC or MAC check finds it."""
    if not frame:
        return frame
    at = rng.randrange(len(frame))
    return frame[:at] + bytes([frame[at] ^ 0xFF]) + frame[at + 1 :]


def service_factor(profile: WanProfile, rng: random.Random) -> float:
    """One multiple of the mean service time (mean 1), drawn from the profile's law."""
    if profile.service is ServiceKind.DETERMINISTIC:
        return 1.0
    if profile.service is ServiceKind.EXPONENTIAL:
        return rng.expovariate(1.0)
    if profile.service is ServiceKind.LOGNORMAL:
        return math.exp(rng.gauss(-0.5 * profile.sigma**2, profile.sigma))
    samples = profile.samples
    return samples[rng.randrange(len(samples))] * len(samples) / sum(samples)


class CellLink:
    """One WAN cell as a FIFO queue of ``cell_channels`` channels: each message takes the
    channel free first (the exact M/G/c recursion when messages are offered in time order)."""

    __slots__ = ("_free", "_per_byte_s", "_profile", "_rng")

    def __init__(self, profile: WanProfile, rng: random.Random) -> None:
        if profile.cell_bytes_per_s <= 0:
            raise ValueError("a cell link needs a capacity")
        self._profile = profile
        self._rng = rng
        self._per_byte_s = profile.cell_channels / profile.cell_bytes_per_s
        self._free = [-math.inf] * profile.cell_channels  # a heap of when each channel frees

    def carry(self, now: float, frame_bytes: int = 0) -> float:
        """A message offered now (its command frame ``frame_bytes`` long): how long until it
        has crossed the cell (wait and service)."""
        mean_s = max(MESSAGE_BYTES, frame_bytes) * self._per_byte_s
        free = heapq.heappop(self._free)
        done = max(now, free) + mean_s * service_factor(self._profile, self._rng)
        heapq.heappush(self._free, done)
        return done - now

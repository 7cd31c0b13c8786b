"""Deterministic consumption: what a meter measures in any half hour, as a pure function.

Decides: the energy an electricity meter imports and exports (Wh) and the gas volume a gas meter
passes (litres) in each half-hour slot, from a few per-device numbers drawn once from the seed;
the UK local half hour and day of a slot.
Must never: keep history or hold a stateful random generator. A slot's value depends only on
the device's load parameters and the slot index, so profile data and past register values are
recomputed on demand instead of stored (a simulator holds 100,000 premises in one process).

Slots are numbered from the Unix epoch: slot ``k`` covers ``[k * 1800, (k + 1) * 1800)`` UTC.
Per-slot variation comes from a 64-bit mixing hash of (device key, slot): the key is drawn from
the device's ``random.Random(seed)`` at construction, so it is as deterministic as the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from hub.reference.uktime import bst_bounds

SLOT_S = 1800
"""Seconds in a half-hour slot."""
SLOTS_PER_DAY = 48
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_STEP = 0xD1B54A32D192ED03
_TO_UNIT = 1.0 / float(1 << 53)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_YEAR_DAYS = 365.25
_WINTER_PEAK_SHIFT = 11  # days from the winter solstice (21 Dec) to 1 Jan


def mix64(x: int) -> int:
    """A 64-bit mixing function (the splitmix64 finaliser): equal inputs, equal outputs."""
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def unit(key: int, index: int, stream: int = 0) -> float:
    """A number in [0, 1) fixed by (key, index, stream)."""
    return (mix64((key + index * _STEP + stream * _GOLDEN) & _MASK64) >> 11) * _TO_UNIT


def slot_of(t: float) -> int:
    """The slot containing instant ``t``."""
    return math.floor(t / SLOT_S)


@lru_cache(maxsize=64)
def _bst_slots(year: int) -> tuple[int, int]:
    start, end = bst_bounds(year)
    return int(start.timestamp()) // SLOT_S, int(end.timestamp()) // SLOT_S


@lru_cache(maxsize=8192)
def _bst_slots_of_day(day: int) -> tuple[int, int]:
    return _bst_slots(date.fromordinal(_EPOCH_ORDINAL + day).year)


def uk_offset_slots(k: int) -> int:
    """UK local time minus UTC at slot ``k``, in slots: 2 in British Summer Time, else 0."""
    start, end = _bst_slots_of_day(k // SLOTS_PER_DAY)
    return 2 if start <= k < end else 0


def local_half_hour(k: int) -> int:
    """The UK local half hour of the day (0 = 00:00-00:30) slot ``k`` starts in."""
    return (k + uk_offset_slots(k)) % SLOTS_PER_DAY


def local_day(k: int) -> int:
    """The UK local day (days since 1970-01-01) slot ``k`` starts in."""
    return (k + uk_offset_slots(k)) // SLOTS_PER_DAY


def local_slot(day: int, half_hour: int) -> int:
    """The slot starting at UK local half hour ``half_hour`` of local ``day``.

    Near the clock changes (01:00 UTC on a Sunday) the local half hours 01:00-02:00 are
    ambiguous or missing; the answer is then the nearest slot, which is all the meters need.
    """
    k = day * SLOTS_PER_DAY + half_hour
    return k - uk_offset_slots(k - 2)


def _season(day: int) -> float:
    """cos of the year's phase: 1 at the winter solstice, -1 at midsummer."""
    return math.cos(2.0 * math.pi * (day + _WINTER_PEAK_SHIFT) / _YEAR_DAYS)


def _shape(segments: tuple[tuple[float, float], ...]) -> tuple[float, ...]:
    values: list[float] = []
    for hours, level in segments:
        values.extend([level] * round(hours * 2))
    if len(values) != SLOTS_PER_DAY:
        raise ValueError("a daily shape must cover 24 hours")
    mean = sum(values) / SLOTS_PER_DAY
    return tuple(v / mean for v in values)


ELECTRICITY_SHAPE = _shape(
    ((6, 0.45), (1, 0.7), (2, 1.2), (3, 0.9), (2, 1.0), (2.5, 0.85), (3.5, 1.9), (2, 1.5), (2, 0.9))
)
"""Relative household electricity demand in each UK local half hour (mean 1)."""
GAS_SHAPE = _shape(((5, 0.2), (1, 0.8), (3, 2.4), (7, 0.6), (6, 1.9), (2, 0.6)))
"""Relative household gas demand (heating and hot water) in each local half hour (mean 1)."""


@dataclass(frozen=True, slots=True)
class ElectricityLoad:
    """One household's electricity: demand, optional solar generation, reactive share."""

    key: int
    """64-bit key of the per-slot variation."""
    mean_wh: float
    """Mean demand per half hour over a year, Wh."""
    pv_peak_wh: float = 0.0
    """Solar generation per half hour at a clear midsummer noon, Wh; 0 without panels."""
    reactive_ratio: float = 0.25
    """Reactive energy (varh) per Wh of active import."""

    def demand_wh(self, k: int) -> float:
        """Household demand in slot ``k`` before any solar generation, Wh."""
        day = k // SLOTS_PER_DAY
        season = 1.0 + 0.2 * _season(day)
        noise = 0.55 + 0.9 * unit(self.key, k)
        return self.mean_wh * ELECTRICITY_SHAPE[local_half_hour(k)] * season * noise

    def generation_wh(self, k: int) -> float:
        """Solar generation in slot ``k``, Wh (solar noon taken as 12:00 UTC)."""
        if self.pv_peak_wh <= 0.0:
            return 0.0
        day = k // SLOTS_PER_DAY
        summer = -_season(day)  # 1 at midsummer
        half_day_h = 6.0 + 2.2 * summer
        hour = (k % SLOTS_PER_DAY) * 0.5 + 0.25
        if abs(hour - 12.0) >= half_day_h:
            return 0.0
        height = math.cos(0.5 * math.pi * (hour - 12.0) / half_day_h)
        strength = 0.35 + 0.65 * (1.0 + summer) / 2.0
        cloud = 0.25 + 0.75 * unit(self.key, k, 1)
        return self.pv_peak_wh * height * strength * cloud

    def slot(self, k: int) -> tuple[int, int, int]:
        """(import Wh, export Wh, reactive import varh) over the whole of slot ``k``."""
        net = self.demand_wh(k) - self.generation_wh(k)
        imp = round(net) if net > 0 else 0
        exp = round(-net) if net < 0 else 0
        return imp, exp, round(imp * self.reactive_ratio)


@dataclass(frozen=True, slots=True)
class GasLoad:
    """One household's gas use."""

    key: int
    """64-bit key of the per-slot variation."""
    mean_litres: float
    """Mean volume per half hour over a year, litres."""

    def slot(self, k: int) -> int:
        """Litres through the meter over the whole of slot ``k``."""
        day = k // SLOTS_PER_DAY
        season = 1.0 + 0.75 * _season(day)
        noise = 0.6 + 0.8 * unit(self.key, k)
        return round(self.mean_litres * GAS_SHAPE[local_half_hour(k)] * season * noise)

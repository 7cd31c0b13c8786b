"""Tariffs, prepayment configuration and the billing calendar: the meters' settings as data.

Decides: which time-of-use rate applies in each UK local half hour and what a kWh costs in a
rate and block; the prepayment settings' defaults; when the next billing date falls.
Must never: hold meter state; these are frozen values shared between meters (identical
tariffs are the same object, which matters at 100,000 premises).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import lru_cache

from hub.reference.standard import Instant, Value

from .load import SLOT_S, SLOTS_PER_DAY, local_day, local_slot, slot_of

Body = dict[str, Value]
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class BillingPeriod(StrEnum):
    """Billing calendar periodicity."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


def half_hour_text(half_hour: int) -> str:
    """``"HH:MM"`` for a half hour of the day."""
    return f"{half_hour // 2:02d}:{30 * (half_hour % 2):02d}"


def parse_half_hour(text: str) -> int:
    """The half hour of the day of ``"HH:MM"`` (minutes 00 or 30)."""
    hours, minutes = text.split(":")
    return int(hours) * 2 + int(minutes) // 30


@dataclass(frozen=True, slots=True)
class Tariff:
    """A tariff element: standing charge, time-of-use rates and optional blocks."""

    standing_pence_per_day: float
    """Standing charge, pence per day."""
    rates: tuple[float, ...]
    """Price of each time-of-use rate, pence per kWh."""
    starts: tuple[int, ...]
    """Local half hour each rate starts (same order as ``rates``)."""
    thresholds_wh: tuple[int, ...] = ()
    """Block thresholds, Wh per block period, ascending; empty for no blocks."""
    block_prices: tuple[float, ...] = ()
    """Price in each block, pence per kWh; replaces the rate price when present."""
    by_half_hour: tuple[int, ...] = field(default=(), compare=False, repr=False)
    """The rate in force in each local half hour (derived)."""

    @property
    def standing_millipence_per_slot(self) -> int:
        """Standing charge per half hour, millipence."""
        return round(self.standing_pence_per_day * 1000.0 / SLOTS_PER_DAY)

    def block_of(self, usage_wh: int) -> int:
        """The block an energy use in the block period falls in."""
        return sum(1 for threshold in self.thresholds_wh if usage_wh >= threshold)

    def price(self, rate: int, block: int) -> float:
        """Pence per kWh in a rate and block."""
        return self.block_prices[block] if self.block_prices else self.rates[rate]

    def to_body(self) -> Body:
        """The tariff as 1.1.1 parameters (so a read can be sent back as an update)."""
        body: Body = {
            "standing_charge_pence_per_day": self.standing_pence_per_day,
            "tou_rates_pence_per_kwh": list(self.rates),
            "tou_starts": [half_hour_text(s) for s in self.starts],
        }
        if self.thresholds_wh:
            body["block_thresholds_kwh"] = [t / 1000.0 for t in self.thresholds_wh]
            body["block_prices_pence_per_kwh"] = list(self.block_prices)
        return body


@lru_cache(maxsize=4096)
def make_tariff(
    standing_pence_per_day: float,
    rates: tuple[float, ...],
    starts: tuple[int, ...] = (0,),
    thresholds_wh: tuple[int, ...] = (),
    block_prices: tuple[float, ...] = (),
) -> Tariff:
    """A tariff with its half-hour rate table filled in. Each half hour takes the rate whose
    start is the latest at or before it, wrapping round midnight."""
    if len(starts) != len(rates):
        raise ValueError("one start per rate")
    ordered = sorted(zip(starts, range(len(rates)), strict=True))
    table = []
    for hh in range(SLOTS_PER_DAY):
        earlier = [rate for start, rate in ordered if start <= hh]
        table.append(earlier[-1] if earlier else ordered[-1][1])
    return Tariff(standing_pence_per_day, rates, starts, thresholds_wh, block_prices, tuple(table))


@dataclass(frozen=True, slots=True)
class PrepayConfig:
    """Prepayment configuration (2.1, 2.3), pence."""

    debt_recovery_rate_pence_per_day: int = 0
    """Time-based debt recovered per day."""
    debt_recovery_percent: int = 0
    """Share of each top-up that repays payment-based debt."""
    emergency_credit_limit_pence: int = 500
    """Emergency credit granted on activation."""
    emergency_credit_threshold_pence: int = 100
    """Credit at or below which emergency credit becomes available."""
    low_credit_threshold_pence: int = 300
    """Credit below which the low-credit alert is raised."""
    disablement_threshold_pence: int = 0
    """Credit (with emergency credit) below which the supply is disabled."""
    max_credit_pence: int = 25_000
    """Largest single top-up accepted."""
    max_meter_balance_pence: int = 100_000
    """Largest balance a top-up may reach."""

    def to_body(self) -> Body:
        """The configuration as 2.1 parameters."""
        return {
            "debt_recovery_rate_pence_per_day": self.debt_recovery_rate_pence_per_day,
            "debt_recovery_percent": self.debt_recovery_percent,
            "emergency_credit_limit_pence": self.emergency_credit_limit_pence,
            "emergency_credit_threshold_pence": self.emergency_credit_threshold_pence,
            "low_credit_threshold_pence": self.low_credit_threshold_pence,
            "disablement_threshold_pence": self.disablement_threshold_pence,
            "max_credit_pence": self.max_credit_pence,
            "max_meter_balance_pence": self.max_meter_balance_pence,
        }


PREPAY_PARAMS = {
    "debt_recovery_rate_pence_per_day": "debt_recovery_rate_pence_per_day",
    "emergency_credit_limit_pence": "emergency_credit_limit_pence",
    "emergency_credit_threshold_pence": "emergency_credit_threshold_pence",
    "low_credit_threshold_pence": "low_credit_threshold_pence",
    "disablement_threshold_pence": "disablement_threshold_pence",
    "max_credit_pence": "max_credit_pence",
    "max_meter_balance_pence": "max_meter_balance_pence",
}
"""2.1 parameter name -> PrepayConfig field."""

DEFAULT_PREPAY = PrepayConfig()


def _months_later(day: date, months: int, day_of_month: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day_of_month, calendar.monthrange(year, month)[1]))


def next_billing(period: BillingPeriod, start: Instant, after: Instant) -> Instant:
    """The first billing instant (UK local midnight) strictly after ``after`` for a calendar
    whose first billing day is ``start``'s local day."""
    first_day = local_day(slot_of(start))
    after_day = local_day(slot_of(after))
    if period is BillingPeriod.MONTHLY:
        first = date.fromordinal(_EPOCH_ORDINAL + first_day)
        after_date = date.fromordinal(_EPOCH_ORDINAL + after_day)
        months = max(0, (after_date.year - first.year) * 12 + after_date.month - first.month - 1)
        while True:
            candidate = _months_later(first, months, first.day)
            at = local_slot(candidate.toordinal() - _EPOCH_ORDINAL, 0) * SLOT_S
            if at > after:
                return float(at)
            months += 1
    step = 1 if period is BillingPeriod.DAILY else 7
    day = first_day + max(0, (after_day - first_day) // step) * step
    while local_slot(day, 0) * SLOT_S <= after:
        day += step
    return float(local_slot(day, 0) * SLOT_S)


def first_of_next_month(at: Instant) -> Instant:
    """UK local midnight starting the first day of the month after ``at``'s (the default
    billing calendar start)."""
    day = date.fromordinal(_EPOCH_ORDINAL + local_day(slot_of(at)))
    first = _months_later(day, 1, 1)
    return float(local_slot(first.toordinal() - _EPOCH_ORDINAL, 0) * SLOT_S)

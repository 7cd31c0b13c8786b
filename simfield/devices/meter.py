"""What electricity and gas meters share: registers that advance half hour by half hour,
tariff and prices, prepayment credit and debt, supply state, billing, daily logs and clock.

Decides: how each half hour's consumption moves the registers (total, time-of-use, blocks),
what it costs and how prepayment credit drains (low credit 810D, emergency credit 8119 /
81AB / 81AA, disablement 8F0F), how a top-up is judged (credit mode, UTRN authenticity 8F63,
wrong device 8F64, duplicate 8F51, over maximum credit 8F5B or balance 8F47), and what the
meter's reads answer. Registers are committed slot by slot in time order, so the same seed and
the same commands give the same readings however often the meter is advanced.
Must never: store long histories; profile data and past register values are recomputed from
the deterministic load function (``load``) and the short list of supply-off intervals.

Money is held in integer millipence (a Wh at p pence per kWh costs exactly p millipence), so
credit arithmetic is exact and order-independent.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from typing import ClassVar

from hub.reference.standard import DeviceAlert, Instant, Value
from hub.reference.utrn import UtrnVerdict, check_utrn
from hub.registers.records import PaymentMode

from .base import (
    DEVICE_HANDLERS,
    NO_ANCHORS,
    Body,
    Ctx,
    Device,
    Handler,
    RefusedError,
    TrustAnchors,
    p_bool,
    p_float,
    p_floats,
    p_int,
    p_str,
    p_strs,
    pence,
)
from .load import SLOT_S, SLOTS_PER_DAY, local_day, local_half_hour, local_slot, slot_of
from .logbook import RecordLog, from_ms, to_ms
from .tariff import (
    DEFAULT_PREPAY,
    PREPAY_PARAMS,
    BillingPeriod,
    Tariff,
    first_of_next_month,
    make_tariff,
    next_billing,
    parse_half_hour,
)

MAX_OFF_INTERVALS = 48
"""Supply-off intervals a meter remembers (for recomputing profile data); oldest dropped."""
UTRN_MEMORY = 5
"""Accepted UTRN counters a meter remembers; older or repeated counters are duplicates."""
MAX_CALENDAR_ENTRIES = 6
"""Billing-calendar snapshots kept (4.4.3)."""
MAX_MODE_TARIFF_ENTRIES = 5
"""Change of mode / tariff snapshots kept (4.4.2)."""
MAX_DAILY_ENTRIES = 31
"""Prepayment daily reads kept (4.14)."""
MAX_PAYMENT_ENTRIES = 10
"""Top-ups (4.4.5) and debt payments (4.4.4) kept."""
SNAPSHOT_TOU = 8
SNAPSHOT_BLOCKS = 4
TRIGGERS = (
    "billing calendar",
    "tariff change",
    "price change",
    "payment mode credit",
    "payment mode prepayment",
)
"""What triggered a billing snapshot (stored by index)."""

IMPORT, EXPORT, REACTIVE = 0, 1, 2
"""Register indexes: active import, active export, reactive import."""


class SupplyState(StrEnum):
    """The load switch (ESME) or valve (GSME)."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    ARMED = "armed"  # off until the consumer presses the button


class SupplyCause(StrEnum):
    """Why the supply is not enabled."""

    NONE = "none"
    REMOTE = "remote"  # 7.2 / 7.3
    CREDIT = "credit"  # credit below the disablement threshold
    TAMPER = "tamper"  # supply tamper state applied
    LOAD_LIMIT = "load_limit"  # load limit exceeded (ESME)
    GAS_FLOW = "gas_flow"  # uncontrolled gas flow (GSME)


class EmergencyCredit(StrEnum):
    """Emergency credit (prepayment)."""

    UNAVAILABLE = "unavailable"
    AVAILABLE = "available"  # credit at or below the threshold: it may be activated
    ACTIVE = "active"  # activated; charges draw on it once credit is used up


class SupplyTamperState(StrEnum):
    """What the supply does when the meter detects tampering (6.25, 6.7)."""

    UNCHANGED = "unchanged"
    DISABLED = "disabled"
    ARMED = "armed"


_SNAPSHOT_WIDTH = 4 + SNAPSHOT_TOU + SNAPSHOT_BLOCKS
_LOG_SHAPES: Mapping[str, tuple[int, int]] = {
    "mode_tariff": (_SNAPSHOT_WIDTH, MAX_MODE_TARIFF_ENTRIES),
    "calendar": (_SNAPSHOT_WIDTH, MAX_CALENDAR_ENTRIES),
    "debt_payments": (3, MAX_PAYMENT_ENTRIES),
    "credits": (3, MAX_PAYMENT_ENTRIES),
    "daily": (5, MAX_DAILY_ENTRIES),
}
"""Log name -> (fields per record, records kept)."""


class _Logs:
    """A meter's bounded billing and prepayment logs, each created on its first record."""

    __slots__ = ("calendar", "credits", "daily", "debt_payments", "mode_tariff")

    def __init__(self) -> None:
        self.mode_tariff: RecordLog | None = None
        """4.4.2 change of mode / tariff snapshots: at, trigger, import, balance, TOU, blocks."""
        self.calendar: RecordLog | None = None
        """4.4.3 billing calendar snapshots (same fields)."""
        self.debt_payments: RecordLog | None = None
        """4.4.4 payment-based debt payments: at, amount, debt remaining (millipence)."""
        self.credits: RecordLog | None = None
        """4.4.5 prepayment credits: at, amount (pence), UTRN counter."""
        self.daily: RecordLog | None = None
        """4.14 prepayment daily reads: at, credit, emergency credit, time debt, payment debt."""

    def find(self, name: str) -> RecordLog | None:
        """The log called ``name``, if it has any record."""
        found: RecordLog | None = getattr(self, name)
        return found

    def take(self, name: str) -> RecordLog:
        """The log called ``name``, created if need be."""
        found = self.find(name)
        if found is None:
            found = RecordLog(*_LOG_SHAPES[name])
            setattr(self, name, found)
        return found

    def by_name(self) -> dict[str, RecordLog]:
        """The logs that have a record, by name (for the field's snapshot)."""
        return {name: log for name in _LOG_SHAPES if (log := self.find(name)) is not None}

    @classmethod
    def from_names(cls, logs: Mapping[str, RecordLog]) -> _Logs:
        """The logs of ``by_name`` put back (an unknown name is a ``ValueError``)."""
        unknown = set(logs) - set(_LOG_SHAPES)
        if unknown:
            raise ValueError(f"unknown meter logs {sorted(unknown)}")
        out = cls()
        for name, log in logs.items():
            setattr(out, name, log)
        return out


def _padded(values: list[int] | None, width: int) -> list[int]:
    out = list(values or ())[:width]
    return out + [0] * (width - len(out))


class Meter(Device):
    """An ESME or GSME: registers, tariff, prepayment, supply, billing, clock."""

    __slots__ = (
        "_balance",
        "_bill_next",
        "_bill_period",
        "_bill_start",
        "_block_daily_reset",
        "_block_usage",
        "_blocks",
        "_cause",
        "_cin",
        "_clock_offset",
        "_cot_at",
        "_drift_ppm",
        "_ec",
        "_ec_granted",
        "_ec_remaining",
        "_exp",
        "_first_slot",
        "_flowing",
        "_imp",
        "_imp0",
        "_logs",
        "_low_raised",
        "_message",
        "_next_slot",
        "_off",
        "_off_since",
        "_payment_debt",
        "_powered",
        "_privacy_pin",
        "_react",
        "_supplier_name",
        "_synced_at",
        "_telephone",
        "_time_debt",
        "_tou",
        "_utrn_seen",
        "installed_at",
        "mode",
        "mpxn",
        "prepay",
        "supply",
        "supply_tamper_state",
        "tariff",
    )

    MAX_TOU_RATES: ClassVar[int] = 8
    """Time-of-use rates the meter supports."""
    PARTIAL_READS: ClassVar[bool] = True
    """Register reads include the half hour in progress (False: as of the last half hour)."""
    IMPORT_UNIT: ClassVar[str] = "Wh"
    """Unit of the import register as reported."""
    IMPORT_SCALE: ClassVar[float] = 1.0
    """Reported value per stored register unit."""

    def __init__(
        self,
        device_id: str,
        key: int,
        *,
        supplier_key_id: str,
        network_key_id: str,
        installed_at: Instant,
        tariff: Tariff,
        mode: PaymentMode,
        credit_pence: int,
        initial_register: int,
        mpxn: str,
        clock_drift_ppm: float,
        anchors: TrustAnchors = NO_ANCHORS,
        firmware_version: str = "1.0.0",
    ) -> None:
        super().__init__(
            device_id,
            key,
            supplier_key_id=supplier_key_id,
            network_key_id=network_key_id,
            firmware_version=firmware_version,
            anchors=anchors,
        )
        self.installed_at = installed_at
        """When the meter started measuring."""
        self._first_slot = math.ceil(installed_at / SLOT_S)
        self._next_slot = self._first_slot
        self._imp0 = initial_register
        self._imp = initial_register
        self._exp = 0
        self._react = 0
        self._powered = True
        self.supply = SupplyState.ENABLED
        """The load switch or valve."""
        self._cause = SupplyCause.NONE
        self._flowing = True
        self._off: list[tuple[float, float]] | None = None
        self._off_since: float | None = None
        self.supply_tamper_state = SupplyTamperState.UNCHANGED
        """Supply state applied on tamper."""
        self.tariff = tariff
        """The primary tariff element."""
        self._tou = [0] * len(tariff.rates)
        self._blocks: list[int] | None = (
            [0] * (len(tariff.thresholds_wh) + 1) if (tariff.thresholds_wh) else None
        )
        self._block_usage = 0
        self._block_daily_reset = False
        self.mode = mode
        """Credit or prepayment."""
        self.prepay = DEFAULT_PREPAY
        """Prepayment configuration."""
        self._balance = credit_pence * 1000 if mode is PaymentMode.PREPAYMENT else 0
        self._ec = EmergencyCredit.UNAVAILABLE
        self._ec_granted = 0
        self._ec_remaining = 0
        self._time_debt = 0
        self._payment_debt = 0
        self._low_raised = False
        self._utrn_seen: tuple[int, ...] = ()
        self._logs: _Logs | None = None
        self._bill_period = BillingPeriod.MONTHLY
        self._bill_start = first_of_next_month(installed_at)
        self._bill_next = next_billing(self._bill_period, self._bill_start, installed_at)
        self.mpxn = mpxn
        """The import meter point (MPAN core or MPRN)."""
        self._clock_offset = 0.0
        self._drift_ppm = clock_drift_ppm
        self._synced_at = installed_at
        self._message: str | None = None
        self._supplier_name: str | None = None
        self._telephone: str | None = None
        self._cot_at: float | None = None
        self._privacy_pin = True
        self._cin: str | None = None

    # ------------------------------------------------------------------ subclass hooks

    def slot_values(self, k: int, on_s: float) -> tuple[int, int, int, int]:
        """(import, export, reactive, energy Wh) in slot ``k`` given ``on_s`` seconds of flow."""
        raise NotImplementedError

    def after_slot(
        self, k: int, values: tuple[int, int, int, int], alerts: list[DeviceAlert]
    ) -> None:
        """Per-slot checks of a meter type (maximum demand, load limit, gas flow)."""

    def show_import(self, value: int) -> Value:
        """A stored import value as reported."""
        return value if self.IMPORT_SCALE == 1.0 else round(value * self.IMPORT_SCALE, 3)

    # ------------------------------------------------------------------ time

    @property
    def committed_until(self) -> Instant:
        """Registers and credit include every half hour that ended at or before this instant."""
        return float(self._next_slot * SLOT_S)

    def catch_up(self, now: Instant, alerts: list[DeviceAlert]) -> None:
        """Commit every half hour that has ended by ``now``, in order."""
        end = math.floor(now / SLOT_S)
        while self._next_slot < end:
            self._commit(self._next_slot, alerts)

    def device_time(self, now: Instant) -> Instant:
        """The meter's own clock at true time ``now`` (it drifts between synchronisations)."""
        return now + self._clock_offset + (now - self._synced_at) * self._drift_ppm * 1e-6

    def on_seconds(self, t0: Instant, t1: Instant) -> float:
        """Seconds within ``[t0, t1)`` the supply was flowing."""
        off = 0.0
        if self._off_since is not None and self._off_since < t1:
            off += t1 - max(self._off_since, t0)
        for a, b in reversed(self._off or ()):
            if b <= t0:
                break
            if a < t1:
                off += min(b, t1) - max(a, t0)
        return max(0.0, (t1 - t0) - off)

    def _set_flow(self, at: Instant) -> None:
        flowing = self.supply is SupplyState.ENABLED and self._powered
        if flowing == self._flowing:
            return
        self._flowing = flowing
        if not flowing:
            self._off_since = at
            return
        since = self._off_since if self._off_since is not None else at
        self._off_since = None
        if at > since:
            off = self._off if self._off is not None else []
            off.append((since, at))
            if len(off) > MAX_OFF_INTERVALS:
                del off[0]
            self._off = off

    def set_powered(self, powered: bool, at: Instant) -> None:
        """Mains power to the meter (a gas meter runs on its battery and ignores this)."""
        self._powered = powered
        self._set_flow(at)

    def set_supply(self, state: SupplyState, cause: SupplyCause, at: Instant) -> None:
        """Move the load switch or valve."""
        self.supply = state
        self._cause = cause if state is not SupplyState.ENABLED else SupplyCause.NONE
        self._set_flow(at)

    @property
    def supply_cause(self) -> SupplyCause:
        """Why the supply is not enabled (NONE when enabled)."""
        return self._cause

    # ------------------------------------------------------------------ committing a half hour

    def _commit(self, k: int, alerts: list[DeviceAlert]) -> None:
        t0 = k * SLOT_S
        t1 = t0 + SLOT_S
        values = self.slot_values(k, self.on_seconds(t0, t1))
        imp, exp, react, energy = values
        self._imp += imp
        self._exp += exp
        self._react += react
        tariff = self.tariff
        rate = tariff.by_half_hour[local_half_hour(k)]
        block = tariff.block_of(self._block_usage)
        self._tou[rate] += energy
        if self._blocks is not None:
            self._blocks[min(block, len(self._blocks) - 1)] += energy
            self.add_to_matrix(rate, block, energy)
        self._block_usage += energy
        self._next_slot = k + 1
        self.after_slot(k, values, alerts)
        cost = round(energy * tariff.price(rate, block)) + tariff.standing_millipence_per_slot
        if self.mode is PaymentMode.PREPAYMENT and self._time_debt > 0:
            rate_mp = self.prepay.debt_recovery_rate_pence_per_day * 1000 // SLOTS_PER_DAY
            recovered = min(self._time_debt, rate_mp)
            self._time_debt -= recovered
            cost += recovered
            if recovered and self._time_debt == 0:
                self.alert(alerts, "81A7", float(t1))
        self._charge(cost, float(t1), alerts)
        if local_half_hour(k + 1) == 0:
            self._midnight(float(t1))
        if t1 >= self._bill_next:
            self._billing_snapshot(float(t1), alerts)

    def add_to_matrix(self, rate: int, block: int, energy: int) -> None:
        """Record energy in the TOU-with-blocks matrix (ESME only)."""

    def _charge(self, cost: int, at: Instant, alerts: list[DeviceAlert]) -> None:
        if cost <= 0:
            return
        if self.mode is not PaymentMode.PREPAYMENT:
            self._balance -= cost  # credit mode: the balance accumulates what is owed
            return
        from_credit = min(max(self._balance, 0), cost)
        self._balance -= from_credit
        rest = cost - from_credit
        if rest and self._ec is EmergencyCredit.ACTIVE and self._ec_remaining > 0:
            from_ec = min(self._ec_remaining, rest)
            self._ec_remaining -= from_ec
            rest -= from_ec
            if self._ec_remaining == 0:
                self.alert(alerts, "81AA", at)
        self._balance -= rest
        self._check_credit(at, alerts)

    def available_millipence(self) -> int:
        """Credit plus unused activated emergency credit."""
        extra = self._ec_remaining if self._ec is EmergencyCredit.ACTIVE else 0
        return self._balance + extra

    def _check_credit(self, at: Instant, alerts: list[DeviceAlert]) -> None:
        if self.mode is not PaymentMode.PREPAYMENT:
            return
        cfg = self.prepay
        available = self.available_millipence()
        if available < cfg.low_credit_threshold_pence * 1000:
            if not self._low_raised:
                self._low_raised = True
                self.alert(alerts, "810D", at, {"credit_pence": pence(available)})
        else:
            self._low_raised = False
        threshold = cfg.emergency_credit_threshold_pence * 1000
        if (
            self._ec is EmergencyCredit.UNAVAILABLE
            and cfg.emergency_credit_limit_pence > 0
            and self._balance <= threshold
        ):
            self._ec = EmergencyCredit.AVAILABLE
            self.alert(alerts, "8119", at, {"credit_pence": pence(self._balance)})
        elif self._ec is EmergencyCredit.AVAILABLE and self._balance > threshold:
            self._ec = EmergencyCredit.UNAVAILABLE
        disable_below = cfg.disablement_threshold_pence * 1000
        if available < disable_below:
            if self.supply is not SupplyState.DISABLED:
                self.set_supply(SupplyState.DISABLED, SupplyCause.CREDIT, at)
                self.alert(alerts, "8F0F", at, {"credit_pence": pence(available)})
        elif self.supply is SupplyState.DISABLED and self._cause is SupplyCause.CREDIT:
            self.set_supply(SupplyState.ARMED, SupplyCause.CREDIT, at)
            self.alert(alerts, "8F32", at, {"credit_pence": pence(available)})

    def _midnight(self, at: Instant) -> None:
        if self.mode is PaymentMode.PREPAYMENT:
            self._logbook("daily").append(
                to_ms(at), self._balance, self._ec_remaining, self._time_debt, self._payment_debt
            )
        if self._block_daily_reset:
            self._reset_blocks()

    def _billing_snapshot(self, at: Instant, alerts: list[DeviceAlert]) -> None:
        self._snapshot(self._logbook("calendar"), at, "billing calendar")
        self._reset_blocks()
        self.alert(alerts, "8F0A", at, {"trigger": "billing calendar"})
        self._bill_next = next_billing(self._bill_period, self._bill_start, at)

    def _reset_blocks(self) -> None:
        self._block_usage = 0
        if self._blocks is not None:
            self._blocks = [0] * len(self._blocks)

    def _logbook(self, name: str) -> RecordLog:
        if self._logs is None:
            self._logs = _Logs()
        return self._logs.take(name)

    def _records(self, name: str) -> RecordLog | None:
        return self._logs.find(name) if self._logs is not None else None

    def _snapshot(self, log: RecordLog, at: Instant, trigger: str) -> None:
        log.append(
            to_ms(at),
            TRIGGERS.index(trigger),
            self._imp,
            self._balance,
            *_padded(self._tou, SNAPSHOT_TOU),
            *_padded(self._blocks, SNAPSHOT_BLOCKS),
        )

    def _snapshot_rows(self, log: RecordLog | None) -> list[Value]:
        rows: list[Value] = []
        for record in log or ():
            at, trigger, imp, balance = record[:4]
            tou: list[Value] = [*record[4 : 4 + max(1, min(len(self._tou), SNAPSHOT_TOU))]]
            blocks: list[Value] = [*record[4 + SNAPSHOT_TOU :][: len(self._blocks or ())]]
            entry: Body = {
                "at": from_ms(at),
                "trigger": TRIGGERS[trigger],
                "import": self.show_import(imp),
                "unit": self.IMPORT_UNIT,
                "tou_wh": tou,
                "block_wh": blocks,
                "meter_balance_pence": pence(balance),
            }
            rows.append(entry)
        return rows

    def _prepay_values(self) -> Body:
        return {
            "credit_pence": pence(self._balance),
            "emergency_credit_pence": pence(self._ec_remaining),
            "time_debt_pence": pence(self._time_debt),
            "payment_debt_pence": pence(self._payment_debt),
        }

    # ------------------------------------------------------------------ registers at any time

    def _slot_register(self, k: int, which: int) -> int:
        t0 = k * SLOT_S
        return self.slot_values(k, self.on_seconds(t0, t0 + SLOT_S))[which]

    def _committed(self, which: int) -> int:
        return (self._imp, self._exp, self._react)[which]

    def register(self, which: int, at: Instant) -> int:
        """Register ``which`` (IMPORT, EXPORT, REACTIVE) at ``at`` (no later than now)."""
        k = slot_of(at)
        if k < self._first_slot:
            return self._imp0 if which == IMPORT else 0
        if k < self._next_slot:
            base = self.registers_at_slots([k], which)[0]
        else:
            base = self._committed(which)
            if k > self._next_slot:
                return base
        if not self.PARTIAL_READS:
            return base
        t0 = k * SLOT_S
        return base + self.slot_values(k, self.on_seconds(t0, at))[which]

    def registers_at_slots(self, slots: list[int], which: int) -> list[int]:
        """Register ``which`` at the start of each slot (none later than the committed one)."""
        committed = self._committed(which)
        floor_value = self._imp0 if which == IMPORT else 0
        found: dict[int, int] = {}
        acc = 0
        j = self._next_slot - 1
        for s in sorted(set(slots), reverse=True):
            if s >= self._next_slot:
                found[s] = committed
                continue
            if s < self._first_slot:
                found[s] = floor_value
                continue
            while j >= s:
                acc += self._slot_register(j, which)
                j -= 1
            found[s] = committed - acc
        return [found[s] for s in slots]

    def slot_range(self, start: Instant, end: Instant) -> range:
        """Committed slots wholly inside ``[start, end)``."""
        first = max(math.ceil(start / SLOT_S), self._first_slot)
        last = min(math.floor(end / SLOT_S), self._next_slot)
        return range(first, max(first, last))

    def local_midnights(self, start: Instant, end: Instant, half_hour: int = 0) -> list[int]:
        """Slots starting at local ``half_hour`` on each day, inside ``[start, end)``, that are
        committed and not before installation."""
        out = []
        for day in range(local_day(slot_of(start)) - 1, local_day(slot_of(end)) + 1):
            s = local_slot(day, half_hour)
            if start <= s * SLOT_S < end and self._first_slot <= s <= self._next_slot:
                out.append(s)
        return out

    # ------------------------------------------------------------------ injected events

    def tamper(self, at: Instant, alerts: list[DeviceAlert]) -> None:
        """Someone opens or interferes with the meter: 8F3F, then the supply tamper state."""
        self.alert(alerts, "8F3F", at)
        if self.supply_tamper_state is SupplyTamperState.DISABLED:
            self.set_supply(SupplyState.DISABLED, SupplyCause.TAMPER, at)
            self.alert(alerts, "81BE", at)
        elif self.supply_tamper_state is SupplyTamperState.ARMED:
            self.set_supply(SupplyState.ARMED, SupplyCause.TAMPER, at)

    def press_button(self, at: Instant, alerts: list[DeviceAlert]) -> bool:
        """The consumer presses the button on an armed meter; True if the supply came on."""
        if self.supply is not SupplyState.ARMED:
            return False
        if (
            self.mode is PaymentMode.PREPAYMENT
            and self.available_millipence() < self.prepay.disablement_threshold_pence * 1000
        ):
            return False
        self.set_supply(SupplyState.ENABLED, SupplyCause.NONE, at)
        return True

    # ------------------------------------------------------------------ handlers: tariff

    def _tariff_from(self, ctx: Ctx, *, blocks: bool) -> Tariff:
        params = ctx.params
        rates = p_floats(params, "tou_rates_pence_per_kwh")
        if len(rates) > self.MAX_TOU_RATES:
            raise RefusedError(f"this meter supports {self.MAX_TOU_RATES} time-of-use rates")
        starts = tuple(parse_half_hour(s) for s in p_strs(params, "tou_starts")) or (0,)
        thresholds = tuple(round(t * 1000) for t in p_floats(params, "block_thresholds_kwh"))
        prices = p_floats(params, "block_prices_pence_per_kwh")
        if (thresholds or prices) and not blocks:
            raise RefusedError("this tariff element has no blocks")
        standing = p_float(params, "standing_charge_pence_per_day")
        return make_tariff(standing, rates, starts, thresholds, prices)

    def _install_tariff(self, tariff: Tariff, at: Instant, trigger: str) -> None:
        self._snapshot(self._logbook("mode_tariff"), at, trigger)
        self.tariff = tariff
        if len(self._tou) < len(tariff.rates):
            self._tou.extend([0] * (len(tariff.rates) - len(self._tou)))
        if tariff.thresholds_wh:
            size = len(tariff.thresholds_wh) + 1
            if self._blocks is None or len(self._blocks) < size:
                self._blocks = (self._blocks or []) + [0] * (size - len(self._blocks or []))

    def h_update_tariff(self, ctx: Ctx) -> Body:
        """1.1.1 Update Import Tariff (Primary Element)."""
        tariff = self._tariff_from(ctx, blocks=True)
        self._install_tariff(tariff, ctx.now, "tariff change")
        return {"tariff": tariff.to_body(), "effective_at": ctx.now}

    def h_update_price(self, ctx: Ctx) -> Body:
        """1.2.1 Update Price (Primary Element): new prices for the tariff's existing shape."""
        params = ctx.params
        old = self.tariff
        rates = p_floats(params, "tou_rates_pence_per_kwh") or old.rates
        if len(rates) != len(old.rates):
            raise RefusedError(f"the tariff has {len(old.rates)} rates, {len(rates)} prices given")
        prices = p_floats(params, "block_prices_pence_per_kwh") or old.block_prices
        if len(prices) != len(old.block_prices):
            raise RefusedError(
                f"the tariff has {len(old.block_prices)} blocks, {len(prices)} prices given"
            )
        standing = p_float(params, "standing_charge_pence_per_day", old.standing_pence_per_day)
        tariff = replace(old, standing_pence_per_day=standing, rates=rates, block_prices=prices)
        self._install_tariff(tariff, ctx.now, "price change")
        return {"tariff": tariff.to_body(), "effective_at": ctx.now}

    def h_read_tariff(self, ctx: Ctx) -> Body:
        """4.11.1 Read Tariff (Primary Element)."""
        return {"tariff": self.tariff.to_body(), "payment_mode": self.mode.value}

    def h_reset_blocks(self, ctx: Ctx) -> Body:
        """1.7 Reset Tariff Block Counter Matrix."""
        self._reset_blocks()
        return {"reset_at": ctx.now, "block_wh": list(self._blocks or ())}

    # ------------------------------------------------------------------ handlers: payment

    def h_adjust_balance(self, ctx: Ctx) -> Body:
        """1.5 Update Meter Balance: add (or take) an amount."""
        self._balance += p_int(ctx.params, "adjustment_pence") * 1000
        self._check_credit(ctx.now, ctx.alerts)
        return {"meter_balance_pence": pence(self._balance), "supply_state": self.supply.value}

    def h_payment_mode(self, ctx: Ctx) -> Body:
        """1.6 Update Payment Mode."""
        mode = PaymentMode(p_str(ctx.params, "payment_mode"))
        previous = self.mode
        self._snapshot(self._logbook("mode_tariff"), ctx.now, f"payment mode {mode.value}")
        self.mode = mode
        if mode is PaymentMode.CREDIT:
            self._ec, self._ec_remaining, self._low_raised = EmergencyCredit.UNAVAILABLE, 0, False
            if self.supply is not SupplyState.ENABLED and self._cause is SupplyCause.CREDIT:
                self.set_supply(SupplyState.ARMED, SupplyCause.REMOTE, ctx.now)
        else:
            self._check_credit(ctx.now, ctx.alerts)
        return {"payment_mode": mode.value, "previous_payment_mode": previous.value}

    def h_prepay_config(self, ctx: Ctx) -> Body:
        """2.1 Update Prepay Configuration."""
        changes = {PREPAY_PARAMS[name]: p_int(ctx.params, name) for name in ctx.params}
        self.prepay = replace(self.prepay, **changes)
        self._check_credit(ctx.now, ctx.alerts)
        return {"prepayment_configuration": self.prepay.to_body()}

    def h_read_prepay_config(self, ctx: Ctx) -> Body:
        """4.13 Read Prepayment Configuration."""
        return {"prepayment_configuration": self.prepay.to_body(), "payment_mode": self.mode.value}

    def h_top_up(self, ctx: Ctx) -> Body:
        """2.2 Top Up Device: apply a UTRN."""
        if self.mode is not PaymentMode.PREPAYMENT:
            raise RefusedError("the meter is in credit mode; top-ups apply in prepayment mode only")
        code = p_str(ctx.params, "utrn")
        verdict, fields = check_utrn(code, self.device_id, key=self.supplier_key_id)
        if verdict is UtrnVerdict.OTHER_DEVICE:
            self.alert(ctx.alerts, "8F64", ctx.now, {"utrn": code})
            raise RefusedError("the UTRN is for another device")
        if verdict is not UtrnVerdict.VALID or fields is None:
            self.alert(ctx.alerts, "8F63", ctx.now, {"utrn": code})
            raise RefusedError("the UTRN is not authentic")
        seen = self._utrn_seen
        if fields.counter in seen or (len(seen) >= UTRN_MEMORY and fields.counter < min(seen)):
            self.alert(ctx.alerts, "8F51", ctx.now, {"utrn": code})
            raise RefusedError("the UTRN has already been used")
        amount = fields.amount_pence
        if amount > self.prepay.max_credit_pence:
            self.alert(ctx.alerts, "8F5B", ctx.now, {"utrn": code, "amount_pence": amount})
            raise RefusedError(
                f"{amount}p exceeds the maximum credit {self.prepay.max_credit_pence}p"
            )
        if self._balance + amount * 1000 > self.prepay.max_meter_balance_pence * 1000:
            self.alert(ctx.alerts, "8F47", ctx.now, {"utrn": code, "amount_pence": amount})
            raise RefusedError("the top-up would exceed the maximum meter balance")
        self._utrn_seen = (*seen, fields.counter)[-UTRN_MEMORY:]
        to_debt = min(self._payment_debt, amount * 1000 * self.prepay.debt_recovery_percent // 100)
        if to_debt:
            self._payment_debt -= to_debt
            self._logbook("debt_payments").append(to_ms(ctx.now), to_debt, self._payment_debt)
            if self._payment_debt == 0:
                self.alert(ctx.alerts, "81A9", ctx.now)
        credit = amount * 1000 - to_debt
        if self._ec is EmergencyCredit.ACTIVE:
            credit -= self._ec_granted - self._ec_remaining  # repay the emergency credit used
            self._ec, self._ec_granted, self._ec_remaining = EmergencyCredit.UNAVAILABLE, 0, 0
        self._balance += credit
        self._logbook("credits").append(to_ms(ctx.now), amount, fields.counter)
        self._check_credit(ctx.now, ctx.alerts)
        return {
            "amount_pence": amount,
            "debt_recovered_pence": pence(to_debt),
            "credit_pence": pence(self._balance),
            "supply_state": self.supply.value,
        }

    def h_update_debt(self, ctx: Ctx) -> Body:
        """2.3 Update Debt: adjust time-based or payment-based debt and its recovery."""
        params = ctx.params
        adjustment = p_int(params, "adjustment_pence") * 1000
        if p_str(params, "debt_register") == "time_based":
            if self._time_debt + adjustment < 0:
                raise RefusedError("time-based debt cannot go below zero")
            self._time_debt += adjustment
            if "recovery_rate_pence_per_day" in params:
                rate = p_int(params, "recovery_rate_pence_per_day")
                self.prepay = replace(self.prepay, debt_recovery_rate_pence_per_day=rate)
        else:
            if self._payment_debt + adjustment < 0:
                raise RefusedError("payment-based debt cannot go below zero")
            self._payment_debt += adjustment
            if "recovery_percent" in params:
                percent = p_int(params, "recovery_percent")
                self.prepay = replace(self.prepay, debt_recovery_percent=percent)
        return {
            "time_debt_pence": pence(self._time_debt),
            "payment_debt_pence": pence(self._payment_debt),
            "debt_recovery_rate_pence_per_day": self.prepay.debt_recovery_rate_pence_per_day,
            "debt_recovery_percent": self.prepay.debt_recovery_percent,
        }

    def h_emergency_credit(self, ctx: Ctx) -> Body:
        """2.5 Activate Emergency Credit."""
        if self.mode is not PaymentMode.PREPAYMENT:
            raise RefusedError("emergency credit applies in prepayment mode only")
        if self._ec is EmergencyCredit.ACTIVE:
            raise RefusedError("emergency credit is already active")
        if self._ec is not EmergencyCredit.AVAILABLE:
            raise RefusedError("emergency credit is not available (credit above its threshold)")
        granted = self.prepay.emergency_credit_limit_pence * 1000
        self._ec, self._ec_granted, self._ec_remaining = EmergencyCredit.ACTIVE, granted, granted
        self.alert(ctx.alerts, "81AB", ctx.now, {"emergency_credit_pence": pence(granted)})
        self._check_credit(ctx.now, ctx.alerts)
        return {"emergency_credit_pence": pence(granted), "supply_state": self.supply.value}

    def h_read_prepay(self, ctx: Ctx) -> Body:
        """4.3 Read Instantaneous Prepay Values."""
        return {
            "at": self.committed_until,
            "payment_mode": self.mode.value,
            **self._prepay_values(),
            "emergency_credit_state": self._ec.value,
            "available_credit_pence": pence(self.available_millipence()),
        }

    def h_read_balance(self, ctx: Ctx) -> Body:
        """4.18 Read Meter Balance."""
        return {
            "at": self.committed_until,
            "payment_mode": self.mode.value,
            "meter_balance_pence": pence(self._balance),
            "emergency_credit_pence": pence(self._ec_remaining),
        }

    def h_read_payment_mode(self, ctx: Ctx) -> Body:
        """6.2.9 Read Device Configuration (Payment Mode)."""
        return {"payment_mode": self.mode.value}

    # ------------------------------------------------------------------ handlers: logs

    def h_billing_mode_tariff(self, ctx: Ctx) -> Body:
        """4.4.2 Retrieve Change Of Mode / Tariff Triggered Billing Data Log."""
        return {"entries": self._snapshot_rows(self._records("mode_tariff"))}

    def h_billing_calendar_log(self, ctx: Ctx) -> Body:
        """4.4.3 Retrieve Billing Calendar Triggered Billing Data Log."""
        return {"entries": self._snapshot_rows(self._records("calendar"))}

    def h_debt_payments(self, ctx: Ctx) -> Body:
        """4.4.4 Retrieve Billing Data Log (Payment Based Debt Payments)."""
        rows: list[Value] = [
            {"at": from_ms(at), "amount_pence": pence(amount), "remaining_pence": pence(left)}
            for at, amount, left in (self._records("debt_payments") or ())
        ]
        return {"entries": rows, "payment_debt_pence": pence(self._payment_debt)}

    def h_credits(self, ctx: Ctx) -> Body:
        """4.4.5 Retrieve Billing Data Log (Prepayment Credits)."""
        rows: list[Value] = [
            {"at": from_ms(at), "amount_pence": amount, "utrn_counter": counter}
            for at, amount, counter in (self._records("credits") or ())
        ]
        return {"entries": rows}

    def h_prepay_daily(self, ctx: Ctx) -> Body:
        """4.14 Read Prepayment Daily Read Log."""
        start = to_ms(p_float(ctx.params, "start"))
        end = to_ms(p_float(ctx.params, "end"))
        rows: list[Value] = [
            {
                "at": from_ms(at),
                "credit_pence": pence(credit),
                "emergency_credit_pence": pence(ec),
                "time_debt_pence": pence(time_debt),
                "payment_debt_pence": pence(payment_debt),
            }
            for at, credit, ec, time_debt, payment_debt in (self._records("daily") or ())
            if start <= at < end
        ]
        return {"entries": rows}

    def h_clear_event_log(self, ctx: Ctx) -> Body:
        """3.3 Clear Event Log (the security log is never cleared)."""
        cleared = len(self._log or ())
        self._log = None
        self.log(ctx.now, "8F52")
        return {"cleared_entries": cleared}

    # ------------------------------------------------------------------ handlers: readings

    def h_read_tou(self, ctx: Ctx) -> Body:
        """4.1.2 Read Instantaneous Import TOU Matrices (energy per rate, Wh)."""
        return {"at": self.committed_until, "tou_wh": list(self._tou), "unit": "Wh"}

    def h_daily_import(self, ctx: Ctx) -> Body:
        """4.6.1 Retrieve Import Daily Read Log: the import register at each local midnight."""
        return self._daily_reads(ctx, IMPORT, "import")

    def _daily_reads(self, ctx: Ctx, which: int, name: str) -> Body:
        slots = self.local_midnights(p_float(ctx.params, "start"), p_float(ctx.params, "end"))
        values = self.registers_at_slots(slots, which)
        rows: list[Value] = [
            {"at": float(s * SLOT_S), name: self._show(which, v)}
            for s, v in zip(slots, values, strict=True)
        ]
        return {"entries": rows, "unit": self._unit(which)}

    def _show(self, which: int, value: int) -> Value:
        return self.show_import(value) if which == IMPORT else value

    def _unit(self, which: int) -> str:
        return {IMPORT: self.IMPORT_UNIT, EXPORT: "Wh", REACTIVE: "varh"}[which]

    def profile(self, start: Instant, end: Instant, which: int) -> Body:
        """Half-hourly profile of register ``which`` over the committed slots in the range."""
        slots = self.slot_range(start, end)
        values: list[Value] = [self._show(which, self._slot_register(k, which)) for k in slots]
        return {
            "start": float(slots.start * SLOT_S),
            "interval_s": SLOT_S,
            "unit": self._unit(which),
            "values": values,
        }

    def h_profile_import(self, ctx: Ctx) -> Body:
        """4.8.1 Read Active Import Profile Data."""
        return self.profile(p_float(ctx.params, "start"), p_float(ctx.params, "end"), IMPORT)

    def h_daily_consumption(self, ctx: Ctx) -> Body:
        """4.17 Retrieve Daily Consumption Log: consumption of each whole local day in range."""
        start, end = p_float(ctx.params, "start"), p_float(ctx.params, "end")
        slots = self.local_midnights(start, end + 1.0)
        values = self.registers_at_slots(slots, IMPORT)
        rows: list[Value] = [
            {"day_start": float(a * SLOT_S), "consumption": self.show_import(vb - va)}
            for (a, va), (b, vb) in itertools.pairwise(zip(slots, values, strict=True))
            if b * SLOT_S <= end
        ]
        return {"entries": rows, "unit": self.IMPORT_UNIT}

    # ------------------------------------------------------------------ handlers: supply

    def h_disable_supply(self, ctx: Ctx) -> Body:
        """7.2 Disable Supply."""
        self.set_supply(SupplyState.DISABLED, SupplyCause.REMOTE, ctx.now)
        return {"supply_state": self.supply.value}

    def h_arm_supply(self, ctx: Ctx) -> Body:
        """7.3 Arm Supply: the consumer's button press will enable it."""
        if self.supply is SupplyState.ENABLED:
            raise RefusedError("the supply is enabled; only a disabled supply can be armed")
        self.set_supply(SupplyState.ARMED, self._cause, ctx.now)
        return {"supply_state": self.supply.value}

    def h_read_supply(self, ctx: Ctx) -> Body:
        """7.4 Read Supply Status."""
        return {"supply_state": self.supply.value, "cause": self._cause.value}

    # ------------------------------------------------------------------ handlers: configuration

    def h_billing_calendar(self, ctx: Ctx) -> Body:
        """6.8 Update Device Configuration (Billing Calendar)."""
        self._bill_period = BillingPeriod(p_str(ctx.params, "periodicity"))
        self._bill_start = p_float(ctx.params, "start")
        self._bill_next = next_billing(
            self._bill_period, self._bill_start, max(ctx.now, self._bill_start - 1.0)
        )
        return self.h_read_billing_calendar(ctx)

    def h_read_billing_calendar(self, ctx: Ctx) -> Body:
        """6.2.3 Read Device Configuration (Billing Calendar)."""
        return {
            "periodicity": self._bill_period.value,
            "start": self._bill_start,
            "next_billing_at": self._bill_next,
        }

    def h_sync_clock(self, ctx: Ctx) -> Body:
        """6.11 Synchronise Clock."""
        target = p_float(ctx.params, "time")
        before = self.device_time(ctx.now)
        self._clock_offset = target - ctx.now
        self._synced_at = ctx.now
        self.log(ctx.now, "8145")
        return {
            "previous_device_time": before,
            "device_time": target,
            "adjustment_s": round(target - before, 3),
        }

    def h_read_mpxn(self, ctx: Ctx) -> Body:
        """6.2.7 Read Device Configuration (MPxN)."""
        return {"mpxn": self.mpxn}

    def h_set_mpxn(self, ctx: Ctx) -> Body:
        """6.20.1 Set Device Configuration (Import MPxN)."""
        mpxn = p_str(ctx.params, "mpxn")
        self.check_mpxn(mpxn)
        previous, self.mpxn = self.mpxn, mpxn
        return {"mpxn": mpxn, "previous_mpxn": previous}

    def check_mpxn(self, mpxn: str) -> None:
        """Refuse a meter point number of the wrong kind for this meter."""

    def h_display_message(self, ctx: Ctx) -> Body:
        """3.1 Display Message."""
        self._message = p_str(ctx.params, "text")
        return {"displayed": self._message, "at": ctx.now}

    def h_change_of_tenancy(self, ctx: Ctx) -> Body:
        """3.2 Restrict Access For Change Of Tenancy."""
        self._cot_at = p_float(ctx.params, "change_of_tenancy_at")
        self._privacy_pin = True
        return {"change_of_tenancy_at": self._cot_at}

    def h_supplier_name(self, ctx: Ctx) -> Body:
        """3.4 Update Supplier Name."""
        self._supplier_name = p_str(ctx.params, "supplier_name")
        self._telephone = p_str(ctx.params, "telephone", self._telephone or "")
        return {"supplier_name": self._supplier_name, "telephone": self._telephone}

    def h_disable_pin(self, ctx: Ctx) -> Body:
        """3.5 Disable Privacy PIN."""
        was = self._privacy_pin
        self._privacy_pin = False
        return {"privacy_pin_enabled": False, "was_enabled": was}

    def h_cin(self, ctx: Ctx) -> Body:
        """9.1 Request Customer Identification Number: shown on the meter for the consumer."""
        self._cin = f"{int(self.draw(2) * 10_000):04d}"
        return {"cin_displayed": True, "cin": self._cin}

    def h_daily_block_reset(self, ctx: Ctx) -> Body:
        """6.26 Update Device Configuration (daily resetting of Tariff Block Counter Matrix)."""
        self._block_daily_reset = p_bool(ctx.params, "daily_reset")
        return {"daily_reset": self._block_daily_reset}

    def identity(self) -> Body:
        """Identity with the meter's clock and supply tamper state."""
        return {
            **super().identity(),
            "supply_tamper_state": self.supply_tamper_state.value,
            "installed_at": self.installed_at,
        }


METER_HANDLERS: Mapping[str, Handler] = {
    **DEVICE_HANDLERS,
    "1.1.1": Meter.h_update_tariff,
    "1.2.1": Meter.h_update_price,
    "1.5": Meter.h_adjust_balance,
    "1.6": Meter.h_payment_mode,
    "1.7": Meter.h_reset_blocks,
    "2.1": Meter.h_prepay_config,
    "2.2": Meter.h_top_up,
    "2.3": Meter.h_update_debt,
    "2.5": Meter.h_emergency_credit,
    "3.1": Meter.h_display_message,
    "3.2": Meter.h_change_of_tenancy,
    "3.3": Meter.h_clear_event_log,
    "3.4": Meter.h_supplier_name,
    "3.5": Meter.h_disable_pin,
    "4.1.2": Meter.h_read_tou,
    "4.3": Meter.h_read_prepay,
    "4.4.2": Meter.h_billing_mode_tariff,
    "4.4.3": Meter.h_billing_calendar_log,
    "4.4.4": Meter.h_debt_payments,
    "4.4.5": Meter.h_credits,
    "4.6.1": Meter.h_daily_import,
    "4.8.1": Meter.h_profile_import,
    "4.11.1": Meter.h_read_tariff,
    "4.13": Meter.h_read_prepay_config,
    "4.14": Meter.h_prepay_daily,
    "4.17": Meter.h_daily_consumption,
    "4.18": Meter.h_read_balance,
    "6.2.3": Meter.h_read_billing_calendar,
    "6.2.7": Meter.h_read_mpxn,
    "6.2.9": Meter.h_read_payment_mode,
    "6.8": Meter.h_billing_calendar,
    "6.11": Meter.h_sync_clock,
    "6.20.1": Meter.h_set_mpxn,
    "6.26": Meter.h_daily_block_reset,
    "7.2": Meter.h_disable_supply,
    "7.3": Meter.h_arm_supply,
    "7.4": Meter.h_read_supply,
    "9.1": Meter.h_cin,
}
"""Handlers ESME and GSME share."""

"""The simulated electricity meter (ESME).

Decides: what an electricity meter adds to the shared meter behaviour: export and reactive
registers, the secondary tariff element, the TOU-with-blocks matrix, maximum demand (overall
and in a configurable period), load limiting (8F01, 8F33, 8F34), RMS voltage monitoring
against its thresholds (sag 8099, extreme under 8095, swell 8091, extreme over 808D),
instantaneous power and its display thresholds, and supply enablement (7.1).
Must never: read the clock or store consumption history (see ``meter`` and ``load``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import ClassVar

from hub.reference.mpxn import mpan_problem
from hub.reference.roles import DeviceType
from hub.reference.standard import DeviceAlert, Instant, Value
from hub.registers.records import PaymentMode

from .base import (
    NO_ANCHORS,
    Body,
    Ctx,
    Handler,
    RefusedError,
    TrustAnchors,
    p_bool,
    p_float,
    p_floats,
    p_int,
    p_str,
)
from .load import SLOT_S, ElectricityLoad, local_half_hour
from .meter import (
    EXPORT,
    IMPORT,
    METER_HANDLERS,
    REACTIVE,
    Meter,
    SupplyCause,
    SupplyState,
    SupplyTamperState,
)
from .tariff import Tariff, half_hour_text, make_tariff, parse_half_hour

MAX_BLOCKS = 4


@dataclass(frozen=True, slots=True)
class VoltageConfig:
    """RMS voltage thresholds (6.5), V."""

    extreme_under_v: float = 195.5
    """Below this: alert 8095."""
    sag_v: float = 207.0
    """Below this: alert 8099."""
    swell_v: float = 253.0
    """Above this: alert 8091."""
    extreme_over_v: float = 264.5
    """Above this: alert 808D."""

    def problem(self) -> str | None:
        """Why the thresholds are not in order, or None."""
        order = (self.extreme_under_v, self.sag_v, self.swell_v, self.extreme_over_v)
        if all(a < b for a, b in itertools.pairwise(order)):
            return None
        return "voltage thresholds must rise: extreme under < sag < swell < extreme over"

    def to_body(self) -> Body:
        """The thresholds as 6.5 parameters."""
        return {
            "extreme_under_v": self.extreme_under_v,
            "sag_v": self.sag_v,
            "swell_v": self.swell_v,
            "extreme_over_v": self.extreme_over_v,
        }


@dataclass(frozen=True, slots=True)
class LoadLimit:
    """Load limiting settings (6.4.1)."""

    limit_w: int = 0
    """Half-hour average import power limit, W; 0 is off."""
    restoration_period_s: int = 600
    """How long the supply stays armed after the limit trips."""
    disable_supply: bool = False
    """Arm (open) the supply when the limit is exceeded."""


_VOLTAGE_CHECKS = (
    # (flag bit, code, counter name, config field, below?)
    (1, "8099", "sag", "sag_v", True),
    (2, "8095", "extreme_under", "extreme_under_v", True),
    (4, "8091", "swell", "swell_v", False),
    (8, "808D", "extreme_over", "extreme_over_v", False),
)
DEFAULT_VOLTAGE = VoltageConfig()
NO_LOAD_LIMIT = LoadLimit()


class ESME(Meter):
    """An electricity smart meter."""

    __slots__ = (
        "_ll",
        "_ll_count",
        "_ll_last",
        "_ll_restore_at",
        "_load",
        "_matrix",
        "_md_at",
        "_md_period",
        "_md_w",
        "_mdp_at",
        "_mdp_w",
        "_mdx_at",
        "_mdx_w",
        "_opted_out",
        "_power_thresholds",
        "_rand_offset",
        "_v_counts",
        "_v_flags",
        "_v_max",
        "_v_min",
        "_volts",
        "export_mpan",
        "tariff2",
        "voltage_config",
    )

    DEVICE_TYPE: ClassVar[DeviceType] = DeviceType.ESME
    HANDLERS: ClassVar[dict[str, Handler]]
    MAX_TOU_RATES: ClassVar[int] = 8

    def __init__(
        self,
        device_id: str,
        key: int,
        *,
        load: ElectricityLoad,
        supplier_key_id: str,
        network_key_id: str,
        installed_at: Instant,
        tariff: Tariff,
        mode: PaymentMode,
        credit_pence: int,
        initial_register: int,
        mpan: str,
        clock_drift_ppm: float,
        nominal_voltage: float,
        randomised_offset_s: int,
        anchors: TrustAnchors = NO_ANCHORS,
    ) -> None:
        super().__init__(
            device_id,
            key,
            supplier_key_id=supplier_key_id,
            network_key_id=network_key_id,
            installed_at=installed_at,
            tariff=tariff,
            mode=mode,
            credit_pence=credit_pence,
            initial_register=initial_register,
            mpxn=mpan,
            clock_drift_ppm=clock_drift_ppm,
            anchors=anchors,
        )
        self._load = load
        self.tariff2 = make_tariff(0.0, (tariff.rates[0],))
        """The secondary tariff element (a twin-element meter's second register)."""
        self.export_mpan: str | None = None
        """The export meter point, if set (6.20.2)."""
        self._matrix: list[int] | None = None
        self.voltage_config = DEFAULT_VOLTAGE
        """RMS voltage thresholds."""
        self._volts = nominal_voltage
        self._v_min = nominal_voltage
        self._v_max = nominal_voltage
        self._v_flags = 0
        self._v_counts: dict[str, int] | None = None
        self._ll = NO_LOAD_LIMIT
        self._ll_count = 0
        self._ll_last: float | None = None
        self._ll_restore_at: float | None = None
        self._md_w = 0
        self._md_at: float | None = None
        self._mdx_w = 0
        self._mdx_at: float | None = None
        self._md_period: tuple[int, int] | None = None
        self._mdp_w = 0
        self._mdp_at: float | None = None
        self._power_thresholds = (1_000, 3_000)
        self._rand_offset = randomised_offset_s
        self._opted_out = False

    @property
    def load(self) -> ElectricityLoad:
        """The household's deterministic demand and generation."""
        return self._load

    @property
    def voltage(self) -> float:
        """The RMS voltage last measured, V."""
        return self._volts

    # ------------------------------------------------------------------ meter hooks

    def slot_values(self, k: int, on_s: float) -> tuple[int, int, int, int]:
        """Import Wh, export Wh, reactive varh and priced energy (import) Wh in slot ``k``."""
        imp, exp, react = self._load.slot(k)
        if on_s < SLOT_S:
            share = on_s / SLOT_S
            imp, exp, react = int(imp * share), int(exp * share), int(react * share)
        return imp, exp, react, imp

    def add_to_matrix(self, rate: int, block: int, energy: int) -> None:
        """Energy into the TOU-with-blocks matrix (8 rates x 4 blocks)."""
        if self._matrix is None:
            self._matrix = [0] * (self.MAX_TOU_RATES * MAX_BLOCKS)
        self._matrix[rate * MAX_BLOCKS + min(block, MAX_BLOCKS - 1)] += energy

    def after_slot(
        self, k: int, values: tuple[int, int, int, int], alerts: list[DeviceAlert]
    ) -> None:
        """Maximum demand, then load limit restoration and checking."""
        t0 = float(k * SLOT_S)
        t1 = t0 + SLOT_S
        power = values[IMPORT] * 2  # Wh in half an hour -> average W
        export_power = values[EXPORT] * 2
        if power > self._md_w:
            self._md_w, self._md_at = power, t0
        if export_power > self._mdx_w:
            self._mdx_w, self._mdx_at = export_power, t0
        if self._md_period is not None and power > self._mdp_w and self._in_md_period(k):
            self._mdp_w, self._mdp_at = power, t0
        restore_at = self._ll_restore_at
        if restore_at is not None and t1 >= restore_at:
            self._ll_restore_at = None
            if self.supply is SupplyState.ARMED and self.supply_cause is SupplyCause.LOAD_LIMIT:
                self.set_supply(SupplyState.ENABLED, SupplyCause.NONE, t1)
                self.alert(alerts, "8F34", t1)
        limit = self._ll.limit_w
        if limit and power > limit:
            self._ll_count += 1
            self._ll_last = t0
            self.alert(alerts, "8F01", t1, {"power_w": power, "limit_w": limit})
            if self._ll.disable_supply and self.supply is SupplyState.ENABLED:
                self.set_supply(SupplyState.ARMED, SupplyCause.LOAD_LIMIT, t1)
                self._ll_restore_at = t1 + self._ll.restoration_period_s
                self.alert(alerts, "8F33", t1)

    def _in_md_period(self, k: int) -> bool:
        if self._md_period is None:
            return False
        start, end = self._md_period
        hh = local_half_hour(k)
        return start <= hh < end if start < end else hh >= start or hh < end

    def check_mpxn(self, mpxn: str) -> None:
        """An ESME's import meter point is an MPAN core."""
        problem = mpan_problem(mpxn)
        if problem is not None:
            raise RefusedError(f"an electricity meter needs an MPAN: {problem}")

    # ------------------------------------------------------------------ injected events

    def measure_voltage(self, volts: float, at: Instant, alerts: list[DeviceAlert]) -> None:
        """A new RMS voltage: alerts when it crosses a threshold (once per crossing)."""
        self._volts = volts
        self._v_min = min(self._v_min, volts)
        self._v_max = max(self._v_max, volts)
        cfg = self.voltage_config
        for bit, code, counter, name, below in _VOLTAGE_CHECKS:
            threshold: float = getattr(cfg, name)
            beyond = volts < threshold if below else volts > threshold
            if beyond and not self._v_flags & bit:
                self._v_flags |= bit
                counts = dict(self._v_counts or {})
                counts[counter] = counts.get(counter, 0) + 1
                self._v_counts = counts
                self.alert(alerts, code, at, {"voltage_v": volts, "threshold_v": threshold})
            elif not beyond:
                self._v_flags &= ~bit

    def active_power_w(self, now: Instant) -> int:
        """Import power at ``now``, W (0 when the supply is off)."""
        if not self._flowing:
            return 0
        k = math.floor(now / SLOT_S)
        return self._load.slot(k)[IMPORT] * 2

    # ------------------------------------------------------------------ handlers

    def h_read_import(self, ctx: Ctx) -> Body:
        """4.1.1 Read Instantaneous Import Registers."""
        return {
            "at": ctx.now,
            "import_wh": self.register(IMPORT, ctx.now),
            "reactive_import_varh": self.register(REACTIVE, ctx.now),
            "secondary_import_wh": 0,
        }

    def h_read_export(self, ctx: Ctx) -> Body:
        """4.2 Read Instantaneous Export Registers."""
        return {"at": ctx.now, "export_wh": self.register(EXPORT, ctx.now)}

    def h_read_matrix(self, ctx: Ctx) -> Body:
        """4.1.3 Read Instantaneous Import TOU With Blocks Matrices (rows: rates; Wh)."""
        blocks = len(self.tariff.thresholds_wh) + 1
        matrix = self._matrix
        rows: list[Value] = []
        for rate, tou in enumerate(self._tou):
            if matrix is None or not self.tariff.thresholds_wh:
                row: list[Value] = [tou, *([0] * (blocks - 1))]
            else:
                row = [*matrix[rate * MAX_BLOCKS : rate * MAX_BLOCKS + blocks]]
            rows.append(row)
        return {"at": self.committed_until, "matrix_wh": rows, "unit": "Wh"}

    def h_daily_export(self, ctx: Ctx) -> Body:
        """4.6.2 Retrieve Export Daily Read Log."""
        return self._daily_reads(ctx, EXPORT, "export")

    def h_profile_reactive(self, ctx: Ctx) -> Body:
        """4.8.2 Read Reactive Import Profile Data."""
        return self.profile(p_float(ctx.params, "start"), p_float(ctx.params, "end"), REACTIVE)

    def h_profile_export(self, ctx: Ctx) -> Body:
        """4.8.3 Read Export Profile Data."""
        return self.profile(p_float(ctx.params, "start"), p_float(ctx.params, "end"), EXPORT)

    def h_network_data(self, ctx: Ctx) -> Body:
        """4.10 Read Network Data: RMS voltage, its extremes and threshold counters."""
        ratio = self._load.reactive_ratio
        counts: Body = dict(self._v_counts or {})
        return {
            "at": ctx.now,
            "rms_voltage_v": self._volts,
            "min_rms_voltage_v": self._v_min,
            "max_rms_voltage_v": self._v_max,
            "threshold_counts": counts,
            "power_factor": round(1.0 / math.sqrt(1.0 + ratio * ratio), 3),
            "active_power_w": self.active_power_w(ctx.now),
        }

    def h_max_demand_import(self, ctx: Ctx) -> Body:
        """4.12.1 Read Maximum Demand Import Registers."""
        period: Value = None
        if self._md_period is not None:
            start, end = self._md_period
            period = {"start_time": half_hour_text(start), "end_time": half_hour_text(end)}
        return {
            "max_demand_w": self._md_w,
            "max_demand_at": self._md_at,
            "period_max_demand_w": self._mdp_w,
            "period_max_demand_at": self._mdp_at,
            "period": period,
        }

    def h_max_demand_export(self, ctx: Ctx) -> Body:
        """4.12.2 Read Maximum Demand Export Registers."""
        return {"max_demand_w": self._mdx_w, "max_demand_at": self._mdx_at}

    def h_read_load_limit(self, ctx: Ctx) -> Body:
        """4.15 Read Load Limit Data."""
        return {
            "load_limit_w": self._ll.limit_w,
            "restoration_period_s": self._ll.restoration_period_s,
            "disable_supply": self._ll.disable_supply,
            "exceeded_count": self._ll_count,
            "last_exceeded_at": self._ll_last,
        }

    def h_active_power(self, ctx: Ctx) -> Body:
        """4.16 Read Active Power Import, with the display band (6.12 thresholds)."""
        power = self.active_power_w(ctx.now)
        low, high = self._power_thresholds
        band = "low" if power < low else "medium" if power < high else "high"
        return {"at": ctx.now, "active_power_w": power, "band": band}

    def h_update_secondary_tariff(self, ctx: Ctx) -> Body:
        """1.1.2 Update Import Tariff (Secondary Element)."""
        self.tariff2 = self._tariff_from(ctx, blocks=False)
        return {"tariff": self.tariff2.to_body(), "effective_at": ctx.now}

    def h_update_secondary_price(self, ctx: Ctx) -> Body:
        """1.2.2 Update Price (Secondary Element)."""
        old = self.tariff2
        rates = p_floats(ctx.params, "tou_rates_pence_per_kwh") or old.rates
        if len(rates) != len(old.rates):
            raise RefusedError(
                f"the secondary tariff has {len(old.rates)} rates, {len(rates)} given"
            )
        standing = p_float(ctx.params, "standing_charge_pence_per_day", old.standing_pence_per_day)
        self.tariff2 = make_tariff(standing, rates, old.starts)
        return {"tariff": self.tariff2.to_body(), "effective_at": ctx.now}

    def h_read_secondary_tariff(self, ctx: Ctx) -> Body:
        """4.11.2 Read Tariff (Secondary Element)."""
        return {"tariff": self.tariff2.to_body()}

    def h_read_voltage_config(self, ctx: Ctx) -> Body:
        """6.2.1 Read Device Configuration (Voltage)."""
        return {"voltage_thresholds": self.voltage_config.to_body()}

    def h_voltage_config(self, ctx: Ctx) -> Body:
        """6.5 Update Device Configuration (Voltage)."""
        changes = {name: p_float(ctx.params, name) for name in ctx.params}
        config = replace(self.voltage_config, **changes)
        problem = config.problem()
        if problem is not None:
            raise RefusedError(problem)
        self.voltage_config = config
        self._v_flags = 0
        return {"voltage_thresholds": config.to_body()}

    def h_read_randomisation(self, ctx: Ctx) -> Body:
        """6.2.2 Read Device Configuration (Randomisation)."""
        return {"randomised_offset_s": self._rand_offset, "randomisation_offset_limit_s": 1800}

    def h_read_power_thresholds(self, ctx: Ctx) -> Body:
        """6.2.5 Read Device Configuration (Instantaneous Power Thresholds)."""
        low, high = self._power_thresholds
        return {"low_medium_w": low, "medium_high_w": high}

    def h_power_thresholds(self, ctx: Ctx) -> Body:
        """6.12 Update Device Configuration (Instantaneous Power Threshold)."""
        self._power_thresholds = (
            p_int(ctx.params, "low_medium_w"),
            p_int(ctx.params, "medium_high_w"),
        )
        return self.h_read_power_thresholds(ctx)

    def h_load_limit(self, ctx: Ctx) -> Body:
        """6.4.1 Update Device Configuration (Load Limiting General Settings)."""
        self._ll = LoadLimit(
            limit_w=p_int(ctx.params, "load_limit_w"),
            restoration_period_s=p_int(
                ctx.params, "restoration_period_s", self._ll.restoration_period_s
            ),
            disable_supply=p_bool(ctx.params, "disable_supply", self._ll.disable_supply),
        )
        return self.h_read_load_limit(ctx)

    def h_reset_load_limit_counter(self, ctx: Ctx) -> Body:
        """6.4.2 Update Device Configuration (Load Limiting Counter Reset)."""
        previous, self._ll_count = self._ll_count, 0
        return {"exceeded_count": 0, "previous_count": previous}

    def h_md_period(self, ctx: Ctx) -> Body:
        """6.18.1 Set Maximum Demand Configurable Time Period."""
        start = parse_half_hour(p_str(ctx.params, "start_time"))
        end = parse_half_hour(p_str(ctx.params, "end_time"))
        self._md_period = (start, end)
        self._mdp_w, self._mdp_at = 0, None
        return {"start_time": half_hour_text(start), "end_time": half_hour_text(end)}

    def h_reset_md(self, ctx: Ctx) -> Body:
        """6.18.2 Reset Maximum Demand Registers."""
        self._md_w, self._md_at, self._mdx_w, self._mdx_at = 0, None, 0, None
        self._mdp_w, self._mdp_at = 0, None
        return {"max_demand_w": 0, "reset_at": ctx.now}

    def h_export_mpan(self, ctx: Ctx) -> Body:
        """6.20.2 Set Device Configuration (Export MPAN)."""
        previous, self.export_mpan = self.export_mpan, p_str(ctx.params, "mpan")
        return {"export_mpan": self.export_mpan, "previous_export_mpan": previous}

    def h_read_mpxn(self, ctx: Ctx) -> Body:
        """6.2.7 Read Device Configuration (MPxN): import and export MPANs."""
        return {"mpxn": self.mpxn, "export_mpan": self.export_mpan}

    def h_supply_tamper_state(self, ctx: Ctx) -> Body:
        """6.25 Set Electricity Supply Tamper State."""
        self.supply_tamper_state = SupplyTamperState(p_str(ctx.params, "supply_tamper_state"))
        return {"supply_tamper_state": self.supply_tamper_state.value}

    def h_reset_voltage_counters(self, ctx: Ctx) -> Body:
        """6.27 Update Device Configuration (RMS Voltage Counter Reset)."""
        previous: Body = dict(self._v_counts or {})
        self._v_counts = None
        self._v_min = self._v_max = self._volts
        return {"reset_at": ctx.now, "threshold_counts": {}, "previous_counts": previous}

    def h_enable_supply(self, ctx: Ctx) -> Body:
        """7.1 Enable Supply (refused on a prepayment meter without enough credit)."""
        if (
            self.mode is PaymentMode.PREPAYMENT
            and self.available_millipence() < self.prepay.disablement_threshold_pence * 1000
        ):
            raise RefusedError("not enough credit to enable the supply")
        previous = self.supply
        self.set_supply(SupplyState.ENABLED, SupplyCause.NONE, ctx.now)
        return {"supply_state": self.supply.value, "previous_supply_state": previous.value}

    def h_opt_out(self, ctx: Ctx) -> Body:
        """8.5 Service Opt Out: the non-domestic meter leaves the hub's service."""
        self._opted_out = True
        return {"opted_out": True, "at": ctx.now}


ESME.HANDLERS = {
    **METER_HANDLERS,
    "1.1.2": ESME.h_update_secondary_tariff,
    "1.2.2": ESME.h_update_secondary_price,
    "4.1.1": ESME.h_read_import,
    "4.1.3": ESME.h_read_matrix,
    "4.2": ESME.h_read_export,
    "4.6.2": ESME.h_daily_export,
    "4.8.2": ESME.h_profile_reactive,
    "4.8.3": ESME.h_profile_export,
    "4.10": ESME.h_network_data,
    "4.11.2": ESME.h_read_secondary_tariff,
    "4.12.1": ESME.h_max_demand_import,
    "4.12.2": ESME.h_max_demand_export,
    "4.15": ESME.h_read_load_limit,
    "4.16": ESME.h_active_power,
    "6.2.1": ESME.h_read_voltage_config,
    "6.2.2": ESME.h_read_randomisation,
    "6.2.5": ESME.h_read_power_thresholds,
    "6.2.7": ESME.h_read_mpxn,
    "6.4.1": ESME.h_load_limit,
    "6.4.2": ESME.h_reset_load_limit_counter,
    "6.5": ESME.h_voltage_config,
    "6.12": ESME.h_power_thresholds,
    "6.18.1": ESME.h_md_period,
    "6.18.2": ESME.h_reset_md,
    "6.20.2": ESME.h_export_mpan,
    "6.25": ESME.h_supply_tamper_state,
    "6.27": ESME.h_reset_voltage_counters,
    "7.1": ESME.h_enable_supply,
    "8.5": ESME.h_opt_out,
}

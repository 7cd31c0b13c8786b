"""The simulated gas meter (GSME) and the gas proxy function (GPF) that answers for it.

Decides: what a gas meter adds to the shared meter behaviour: a volume register (litres,
reported in m3) converted to energy with its calorific value and conversion factor, a valve
instead of a load switch, uncontrolled gas flow (81BF), gas network data and its recording
(14.1); and the GPF's device log (8.9, 8.11, 8.12.2).
The battery gas meter sleeps and wakes each half hour to exchange data with the GPF, so its
reads report values as of its last wake-up (the last whole half hour), marked ``as_of``.
Must never: read the clock or store consumption history.
"""

from __future__ import annotations

from typing import ClassVar

from hub.reference.mpxn import mprn_problem
from hub.reference.roles import DeviceType
from hub.reference.standard import DeviceAlert, Instant, Value
from hub.registers.records import PaymentMode

from .base import NO_ANCHORS, Body, Ctx, Handler, RefusedError, TrustAnchors, p_float, p_str
from .han import LOG_KEEPER_HANDLERS, LogKeeper
from .load import SLOT_S, GasLoad
from .meter import (
    IMPORT,
    METER_HANDLERS,
    Meter,
    SupplyCause,
    SupplyState,
    SupplyTamperState,
)
from .tariff import Tariff

DEFAULT_CALORIFIC_VALUE = 39.2
"""MJ per m3."""
DEFAULT_CONVERSION_FACTOR = 1.02264
DEFAULT_UNCONTROLLED_FLOW_M3_PER_H = 6.0
GAS_DAY_START_HALF_HOUR = 10
"""The gas day starts at 05:00 UK local time."""
NETWORK_DATA_DAYS = 7


class GSME(Meter):
    """A battery-powered gas smart meter, reached through its GPF."""

    __slots__ = ("_cf", "_cv", "_flow_limit", "_load", "_recorded")

    DEVICE_TYPE: ClassVar[DeviceType] = DeviceType.GSME
    HANDLERS: ClassVar[dict[str, Handler]]
    MAX_TOU_RATES: ClassVar[int] = 4
    PARTIAL_READS: ClassVar[bool] = False
    IMPORT_UNIT: ClassVar[str] = "m3"
    IMPORT_SCALE: ClassVar[float] = 0.001

    def __init__(
        self,
        device_id: str,
        key: int,
        *,
        load: GasLoad,
        supplier_key_id: str,
        network_key_id: str,
        installed_at: Instant,
        tariff: Tariff,
        mode: PaymentMode,
        credit_pence: int,
        initial_register: int,
        mprn: str,
        clock_drift_ppm: float,
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
            mpxn=mprn,
            clock_drift_ppm=clock_drift_ppm,
            anchors=anchors,
        )
        self._load = load
        self._cv = DEFAULT_CALORIFIC_VALUE
        self._cf = DEFAULT_CONVERSION_FACTOR
        self._flow_limit = DEFAULT_UNCONTROLLED_FLOW_M3_PER_H
        self._recorded: tuple[float, int] | None = None

    @property
    def load(self) -> GasLoad:
        """The household's deterministic gas use."""
        return self._load

    def slot_values(self, k: int, on_s: float) -> tuple[int, int, int, int]:
        """Litres, 0, 0 and the energy those litres carry (Wh) in slot ``k``."""
        litres = self._load.slot(k)
        if on_s < SLOT_S:
            litres = int(litres * on_s / SLOT_S)
        return litres, 0, 0, round(litres * self._cv * self._cf / 3.6)

    def after_slot(
        self, k: int, values: tuple[int, int, int, int], alerts: list[DeviceAlert]
    ) -> None:
        """Close (arm) the valve on uncontrolled flow."""
        rate_m3_per_h = values[IMPORT] / 1000.0 * 2.0
        if rate_m3_per_h > self._flow_limit and self.supply is SupplyState.ENABLED:
            at = float((k + 1) * SLOT_S)
            self.set_supply(SupplyState.ARMED, SupplyCause.GAS_FLOW, at)
            self.alert(alerts, "81BF", at, {"flow_m3_per_h": round(rate_m3_per_h, 3)})

    def set_powered(self, powered: bool, at: Instant) -> None:
        """A gas meter runs on its battery: mains outages do not stop the gas."""

    def check_mpxn(self, mpxn: str) -> None:
        """A GSME's meter point is an MPRN."""
        problem = mprn_problem(mpxn) if len(mpxn) != 13 else "13 digits is an MPAN"
        if problem is not None:
            raise RefusedError(f"a gas meter needs an MPRN: {problem}")

    # ------------------------------------------------------------------ handlers

    def h_read_import(self, ctx: Ctx) -> Body:
        """4.1.1 Read Instantaneous Import Registers (as of the last wake-up)."""
        return {
            "as_of": self.committed_until,
            "volume_m3": self.show_import(self.register(IMPORT, ctx.now)),
            "energy_wh": sum(self._tou),
        }

    def h_block_counters(self, ctx: Ctx) -> Body:
        """4.1.4 Read Instantaneous Import Block Counters (energy per block, Wh)."""
        blocks: list[Value] = [*(self._blocks or [sum(self._tou)])]
        return {"as_of": self.committed_until, "block_wh": blocks, "unit": "Wh"}

    def h_network_data(self, ctx: Ctx) -> Body:
        """4.10 Read Network Data: the volume register at the start of each recent gas day."""
        start = ctx.now - NETWORK_DATA_DAYS * 86_400.0
        slots = self.local_midnights(start, ctx.now, GAS_DAY_START_HALF_HOUR)
        values = self.registers_at_slots(slots, IMPORT)
        rows: list[Value] = [
            {"gas_day_start": float(s * SLOT_S), "volume_m3": self.show_import(v)}
            for s, v in zip(slots, values, strict=True)
        ]
        recorded: Value = None
        if self._recorded is not None:
            at, litres = self._recorded
            recorded = {"at": at, "volume_m3": self.show_import(litres)}
        return {"gas_days": rows, "last_recorded": recorded}

    def h_record_network_data(self, ctx: Ctx) -> Body:
        """14.1 Record Network Data (GAS): capture the volume register for the transporter."""
        at = self.committed_until
        litres = self.register(IMPORT, ctx.now)
        self._recorded = (at, litres)
        return {"at": at, "volume_m3": self.show_import(litres)}

    def h_read_gas_config(self, ctx: Ctx) -> Body:
        """6.2.8 Read Device Configuration (Gas)."""
        return {
            "calorific_value_mj_per_m3": self._cv,
            "conversion_factor": self._cf,
            "uncontrolled_flow_rate_m3_per_h": self._flow_limit,
            "supply_tamper_state": self.supply_tamper_state.value,
        }

    def h_gas_conversion(self, ctx: Ctx) -> Body:
        """6.6 Update Device Configuration (Gas Conversion)."""
        self._cv = p_float(ctx.params, "calorific_value_mj_per_m3", self._cv)
        self._cf = p_float(ctx.params, "conversion_factor", self._cf)
        return self.h_read_gas_config(ctx)

    def h_gas_flow(self, ctx: Ctx) -> Body:
        """6.7 Update Device Configuration (Gas Flow)."""
        self._flow_limit = p_float(ctx.params, "uncontrolled_flow_rate_m3_per_h")
        state = p_str(ctx.params, "supply_tamper_state", self.supply_tamper_state.value)
        self.supply_tamper_state = SupplyTamperState(state)
        return self.h_read_gas_config(ctx)

    def h_read_supply(self, ctx: Ctx) -> Body:
        """7.4 Read Supply Status (the valve)."""
        return {"supply_state": self.supply.value, "cause": self.supply_cause.value, "valve": True}


GSME.HANDLERS = {
    **METER_HANDLERS,
    "4.1.1": GSME.h_read_import,
    "4.1.4": GSME.h_block_counters,
    "4.10": GSME.h_network_data,
    "6.2.8": GSME.h_read_gas_config,
    "6.6": GSME.h_gas_conversion,
    "6.7": GSME.h_gas_flow,
    "7.4": GSME.h_read_supply,
    "14.1": GSME.h_record_network_data,
}


class GPF(LogKeeper):
    """The gas proxy function on the comms hub: answers for the sleeping gas meter and keeps
    the gas side's device log."""

    __slots__ = ("gsme",)

    DEVICE_TYPE: ClassVar[DeviceType] = DeviceType.GPF
    HANDLERS: ClassVar[dict[str, Handler]] = {
        **LOG_KEEPER_HANDLERS,
        "8.12.2": LogKeeper.h_restore_device_log,
    }
    LOG_CHANGED_ALERT: ClassVar[str] = "8071"
    LOG_LIMIT: ClassVar[int] = 8

    def __init__(
        self,
        device_id: str,
        key: int,
        *,
        supplier_key_id: str,
        network_key_id: str,
        gsme: GSME | None,
        device_log: tuple[str, ...] = (),
        anchors: TrustAnchors = NO_ANCHORS,
    ) -> None:
        super().__init__(
            device_id,
            key,
            supplier_key_id=supplier_key_id,
            network_key_id=network_key_id,
            device_log=device_log,
            anchors=anchors,
        )
        self.gsme = gsme
        """The gas meter this proxy answers for."""

    def h_read_device_log(self, ctx: Ctx) -> Body:
        """8.9 Read Device Log, with when the gas meter last woke and synchronised."""
        body = super().h_read_device_log(ctx)
        gsme = self.gsme
        body["gsme_last_sync"] = gsme.committed_until if gsme is not None else None
        return body


GPF.HANDLERS = {**GPF.HANDLERS, "8.9": GPF.h_read_device_log}

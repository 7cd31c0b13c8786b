"""One site's devices behind its comms hub, and the events the simulator injects there.

Decides: which device a command reaches (``execute``), how a site moves through time
(``advance``: consumption, credit, due future-dated commands, the outage alert), and what
power outages, voltage excursions, tampering, firmware transfers and the consumer's button do.
While the comms hub has no power nothing at the site can be reached and alerts wait (except
the comms hub's AD1 last gasp); they are released when power returns.
Must never: read the clock, open sockets or start threads; randomness only from the seed.
A premises is built from ``random.Random(seed)`` once; no generator is kept (one would cost
2.5 kB per device at 100,000 premises).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from enum import StrEnum

from hub.reference.mpxn import DISTRIBUTOR_IDS, make_mpan
from hub.reference.roles import DeviceType
from hub.reference.standard import DeviceAlert, DeviceCommand, DeviceResponse, Instant
from hub.registers.records import PaymentMode

from .base import Device, PublicKey, TrustAnchors
from .chf import CHF, OUTAGE_ALERT_AFTER_S, SUB_GHZ_CHANNELS
from .esme import ESME
from .gas import GPF, GSME
from .han import IHD, PPMID
from .load import ElectricityLoad, GasLoad, mix64
from .meter import Meter
from .tariff import Tariff, make_tariff

DEFAULT_ELECTRICITY_TARIFF = make_tariff(60.99, (24.5,))
"""Single rate: 24.5p/kWh, 60.99p a day."""
DEFAULT_GAS_TARIFF = make_tariff(31.43, (6.24,))
"""Single rate: 6.24p/kWh, 31.43p a day."""
MAX_HELD_ALERTS = 256
"""Alerts a powerless site holds for delivery when power returns; older ones are dropped."""
PV_SHARE = 0.15
"""Share of homes with solar panels."""

_TYPE_INDEX = {t: i for i, t in enumerate(DeviceType)}


class Layout(StrEnum):
    """Which devices a site has."""

    DUAL_FUEL = "dual_fuel"  # CHF, ESME, GPF, GSME (+ PPMID, IHD)
    ELECTRICITY_ONLY = "electricity_only"  # CHF, ESME (+ PPMID, IHD)


class UnknownDeviceError(LookupError):
    """The command names a device that is not at this site."""


class DeviceUnreachableError(RuntimeError):
    """The site cannot be reached (its comms hub has no power); the hub sees no response."""


def device_id_for(seed: int, device_type: DeviceType) -> str:
    """The default EUI-64 of a site's device of ``device_type``."""
    return f"{mix64(seed * 8 + _TYPE_INDEX[device_type]):016X}"


class Premises:
    """A site: its comms hub and the devices joined to it."""

    __slots__ = ("_devices", "_held", "chf", "esme", "gpf", "gsme", "ihd", "ppmid", "site_id")

    def __init__(
        self,
        site_id: str,
        seed: int,
        installed_at: Instant,
        *,
        layout: Layout = Layout.DUAL_FUEL,
        payment_mode: PaymentMode = PaymentMode.PREPAYMENT,
        credit_pence: int = 2_000,
        supplier_key_id: str = "SUPPLIER",
        gas_supplier_key_id: str | None = None,
        network_key_id: str = "NETWORK",
        gas_network_key_id: str | None = None,
        mpan: str | None = None,
        mprn: str | None = None,
        device_ids: Mapping[DeviceType, str] | None = None,
        in_home_devices: bool = True,
        electricity_tariff: Tariff = DEFAULT_ELECTRICITY_TARIFF,
        gas_tariff: Tariff = DEFAULT_GAS_TARIFF,
        keys: Mapping[str, PublicKey] | None = None,
    ) -> None:
        """Install a site at ``installed_at``: everything about it follows from ``seed``.

        ``device_ids`` overrides the generated EUI-64s (e.g. with the inventory's);
        ``supplier_key_id`` is the electricity supplier's key (critical commands and UTRNs are
        checked against it), ``gas_supplier_key_id`` the gas supplier's (default: the same);
        ``network_key_id`` and ``gas_network_key_id`` are the distributor's and the gas
        transporter's. ``keys`` maps party ids to their public signing keys: each device holds
        its supplier's and network operator's as trust anchors (none when absent).
        """
        rng = random.Random(seed)
        ids = dict(device_ids or {})

        def eui(device_type: DeviceType) -> str:
            return ids.get(device_type) or device_id_for(seed, device_type)

        gas_key = gas_supplier_key_id or supplier_key_id
        gas_network = gas_network_key_id or network_key_id
        known = keys or {}
        anchors = TrustAnchors(known.get(supplier_key_id), known.get(network_key_id))
        gas_anchors = TrustAnchors(known.get(gas_key), known.get(gas_network))
        self.site_id = site_id
        """The inventory's site id."""
        distributor = rng.choice(DISTRIBUTOR_IDS)
        electricity = ElectricityLoad(
            key=rng.getrandbits(64),
            mean_wh=rng.uniform(90.0, 260.0),
            pv_peak_wh=rng.uniform(450.0, 1_000.0) if rng.random() < PV_SHARE else 0.0,
            reactive_ratio=rng.uniform(0.15, 0.35),
        )
        self.esme: ESME | None = ESME(
            eui(DeviceType.ESME),
            rng.getrandbits(64),
            load=electricity,
            supplier_key_id=supplier_key_id,
            installed_at=installed_at,
            tariff=electricity_tariff,
            mode=payment_mode,
            credit_pence=credit_pence,
            initial_register=rng.randrange(0, 20_000_000),
            mpan=mpan or make_mpan(distributor, rng.randrange(10**10)),
            clock_drift_ppm=rng.uniform(-20.0, 20.0),
            nominal_voltage=round(rng.uniform(236.0, 244.0), 1),
            randomised_offset_s=rng.randrange(0, 1_800),
            network_key_id=network_key_id,
            anchors=anchors,
        )
        self.gsme: GSME | None = None
        self.gpf: GPF | None = None
        if layout is Layout.DUAL_FUEL:
            self.gsme = GSME(
                eui(DeviceType.GSME),
                rng.getrandbits(64),
                load=GasLoad(key=rng.getrandbits(64), mean_litres=rng.uniform(35.0, 100.0)),
                supplier_key_id=gas_key,
                installed_at=installed_at,
                tariff=gas_tariff,
                mode=payment_mode,
                credit_pence=credit_pence,
                initial_register=rng.randrange(0, 5_000_000),
                mprn=mprn or str(rng.randrange(10**6, 10**10)),
                clock_drift_ppm=rng.uniform(-20.0, 20.0),
                network_key_id=gas_network,
                anchors=gas_anchors,
            )
            self.gpf = GPF(
                eui(DeviceType.GPF),
                rng.getrandbits(64),
                supplier_key_id=gas_key,
                gsme=self.gsme,
                network_key_id=gas_network,
                anchors=gas_anchors,
            )
        self.ppmid: PPMID | None = None
        self.ihd: IHD | None = None
        if in_home_devices:
            self.ppmid = PPMID(
                eui(DeviceType.PPMID),
                rng.getrandbits(64),
                supplier_key_id=supplier_key_id,
                network_key_id=network_key_id,
                anchors=anchors,
            )
            self.ihd = IHD(
                eui(DeviceType.IHD),
                rng.getrandbits(64),
                supplier_key_id=supplier_key_id,
                network_key_id=network_key_id,
                anchors=anchors,
            )
        self.chf = CHF(
            eui(DeviceType.CHF),
            rng.getrandbits(64),
            supplier_key_id=supplier_key_id,
            channel=rng.randrange(SUB_GHZ_CHANNELS),
            network_key_id=network_key_id,
            anchors=anchors,
        )
        self._held: list[DeviceAlert] | None = None
        self._devices: tuple[Device, ...] = tuple(
            d
            for d in (self.chf, self.esme, self.gpf, self.gsme, self.ppmid, self.ihd)
            if d is not None
        )
        self._install_han()

    def _install_han(self) -> None:
        meters = tuple(m.device_id for m in (self.esme, self.gsme) if m is not None)
        displays = tuple(d.device_id for d in (self.ppmid, self.ihd) if d is not None)
        self.chf.set_device_log(
            tuple(d.device_id for d in self._devices if d not in (self.chf, self.gpf))
        )
        if self.gpf is not None and self.gsme is not None:
            self.gpf.set_device_log((self.gsme.device_id, *displays))
        for meter in (self.esme, self.gsme):
            if meter is not None:
                meter.set_joined(displays)
        for display in (self.ppmid, self.ihd):
            if display is not None:
                display.set_joined(meters)

    # ------------------------------------------------------------------ lookup

    @property
    def devices(self) -> tuple[Device, ...]:
        """Every device at the site."""
        return self._devices

    @property
    def device_ids(self) -> dict[DeviceType, str]:
        """Device type -> EUI-64 of each device at the site."""
        return {d.DEVICE_TYPE: d.device_id for d in self._devices}

    def device(self, device_id: str) -> Device:
        """The device with ``device_id``; ``UnknownDeviceError`` if it is not here."""
        for d in self._devices:
            if d.device_id == device_id:
                return d
        raise UnknownDeviceError(f"no device {device_id} at site {self.site_id}")

    def meter(self, device_type: DeviceType) -> Meter:
        """The site's ESME or GSME."""
        meter = self.esme if device_type is DeviceType.ESME else self.gsme
        if device_type not in (DeviceType.ESME, DeviceType.GSME) or meter is None:
            raise UnknownDeviceError(f"no {device_type.value} at site {self.site_id}")
        return meter

    @property
    def powered(self) -> bool:
        """The comms hub has mains power (the site can be reached)."""
        return self.chf.powered

    @property
    def held_alerts(self) -> tuple[DeviceAlert, ...]:
        """Alerts held while the comms hub has no power, oldest first."""
        return tuple(self._held or ())

    def hold_alerts(self, alerts: tuple[DeviceAlert, ...]) -> None:
        """Replace the held alerts (a site put back from its snapshot)."""
        self._held = list(alerts[-MAX_HELD_ALERTS:]) or None

    # ------------------------------------------------------------------ driving

    def execute(
        self, command: DeviceCommand, now: Instant
    ) -> tuple[DeviceResponse, list[DeviceAlert]]:
        """Deliver ``command`` to its device at ``now``: the response and the alerts raised
        (by the command, and by the device catching up to ``now``).

        Raises ``UnknownDeviceError`` for a device not at the site and
        ``DeviceUnreachableError`` while the comms hub has no power.
        """
        device = self.device(command.device_id)
        if not self.chf.powered:
            raise DeviceUnreachableError(f"site {self.site_id}: the comms hub has no power")
        alerts: list[DeviceAlert] = []
        response = device.execute(command, now, alerts)
        return response, self._deliver(alerts)

    def advance(self, now: Instant) -> list[DeviceAlert]:
        """Move every device to ``now``; the alerts that reach the hub, oldest first."""
        alerts: list[DeviceAlert] = []
        for d in self._devices:
            d.advance(now, alerts)
        self.chf.check_outage(now, alerts)
        return self._deliver(alerts)

    def _deliver(self, alerts: list[DeviceAlert]) -> list[DeviceAlert]:
        if not self.chf.powered:
            held = self._held if self._held is not None else []
            held.extend(a for a in alerts if a.alert_code != "AD1")
            del held[:-MAX_HELD_ALERTS]
            self._held = held
            return [a for a in alerts if a.alert_code == "AD1"]
        out = [*(self._held or ()), *alerts]
        self._held = None
        out.sort(key=lambda a: a.raised_at)
        return out

    # ------------------------------------------------------------------ injected events

    def power_outage(self, now: Instant) -> list[DeviceAlert]:
        """Mains power fails at ``now`` (the electricity supply stops; gas carries on)."""
        alerts = self.advance(now)
        self.chf.power_lost(now)
        if self.esme is not None:
            self.esme.set_powered(False, now)
        return alerts

    def power_restored(self, now: Instant) -> list[DeviceAlert]:
        """Mains power returns at ``now``: AD1 if it was due, then 8F35 (short outage) or 8F36
        (longer than 3 minutes) from the electricity meter, and every alert held meanwhile."""
        if self.chf.powered:
            return self.advance(now)
        alerts: list[DeviceAlert] = []
        for d in self._devices:
            d.advance(now, alerts)
        outage_s = self.chf.power_back(now, alerts)
        if self.esme is not None:
            self.esme.set_powered(True, now)
            code = "8F36" if outage_s > OUTAGE_ALERT_AFTER_S else "8F35"
            self.esme.alert(alerts, code, now, {"outage_s": outage_s})
        return self._deliver(alerts)

    def set_voltage(self, volts: float, now: Instant) -> list[DeviceAlert]:
        """The electricity meter measures ``volts`` RMS from ``now`` (threshold alerts)."""
        alerts: list[DeviceAlert] = []
        if self.esme is not None and self.chf.powered:
            self.esme.advance(now, alerts)
            self.esme.measure_voltage(volts, now, alerts)
        return self._deliver(alerts)

    def raise_alert(self, device_id: str, code: str, now: Instant) -> list[DeviceAlert]:
        """A device of the site raises a routine alert ``code`` (one of ``ALERTS``) at ``now``:
        the background alerts of normal running that no injected event explains."""
        device = self.device(device_id)
        alerts: list[DeviceAlert] = []
        device.advance(now, alerts)
        device.alert(alerts, code, now)
        return self._deliver(alerts)

    def tamper(self, now: Instant, device_type: DeviceType = DeviceType.ESME) -> list[DeviceAlert]:
        """Someone tampers with the meter: 8F3F and its supply tamper state applies."""
        meter = self.meter(device_type)
        alerts: list[DeviceAlert] = []
        meter.advance(now, alerts)
        meter.tamper(now, alerts)
        return self._deliver(alerts)

    def consumer_enable(
        self, now: Instant, device_type: DeviceType = DeviceType.ESME
    ) -> tuple[bool, list[DeviceAlert]]:
        """The consumer presses the button on an armed meter: whether the supply came on."""
        meter = self.meter(device_type)
        alerts: list[DeviceAlert] = []
        meter.advance(now, alerts)
        enabled = meter.press_button(now, alerts)
        return enabled, self._deliver(alerts)

    def deliver_firmware(
        self, device_id: str, version: str, now: Instant, *, ok: bool = True
    ) -> list[DeviceAlert]:
        """A firmware image (11.1, distributed by the hub) reaches a device: 8F8A, or 8F89."""
        device = self.device(device_id)
        alerts: list[DeviceAlert] = []
        device.advance(now, alerts)
        device.receive_image(version, now, alerts, ok=ok)
        return self._deliver(alerts)

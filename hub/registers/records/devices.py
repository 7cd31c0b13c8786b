"""Fleet file records of the estate: approved products, sites and devices, both ways.

Decides: whether a line of ``approved_products.csv``, ``sites.csv`` or ``devices.csv`` is well
formed: one comms hub per site and every site's comms hub present, meters with a meter point of
their fuel and a payment mode, live devices of an approved model; and the line each is written
as.
Must never: change a device's status (the inventory's lifecycle does) or open a file.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from hub.reference.roles import DeviceType, Fuel
from hub.registers.inventory import Device, DeviceStatus, Product, Site
from hub.registers.records._common import (
    csv_line,
    flag,
    flag_text,
    require,
    table,
)
from hub.registers.records.formats import (
    DEVICES_FILE,
    DEVICES_HEADER,
    PRODUCTS_FILE,
    PRODUCTS_HEADER,
    SITES_FILE,
    SITES_HEADER,
    WAN_REGIONS,
    PaymentMode,
    RecordError,
)
from hub.registers.records.meter_points import known_meter_point
from hub.registers.registration import (
    MeterPoint,
)

_DEVICE_TYPES = {t.value: t for t in DeviceType}
_DEVICE_STATUSES = {s.value: s for s in DeviceStatus}
_PAYMENT_MODES = {m.value: m for m in PaymentMode}
_REGIONS = frozenset(WAN_REGIONS)
_HEX = frozenset("0123456789ABCDEF")
_LIVE = frozenset({DeviceStatus.COMMISSIONED, DeviceStatus.INSTALLED_NOT_COMMISSIONED})


@dataclass(frozen=True, slots=True)
class DeviceTable:
    """Parsed ``devices.csv`` (or ``early_smart_candidates.csv``)."""

    devices: list[Device]
    """Devices in file order."""
    payment_modes: dict[str, PaymentMode] = field(default_factory=dict)
    """Payment mode per meter device id (ESME and GSME only)."""


def parse_products(lines: Iterable[str], file: str = PRODUCTS_FILE) -> list[Product]:
    """Parse ``approved_products.csv``; a (manufacturer, model) pair may appear once."""
    seen: set[tuple[str, str]] = set()
    out: list[Product] = []
    with table(lines, file, PRODUCTS_HEADER) as (rows, _):
        for manufacturer, model, type_text, head_end, early in rows:
            require(manufacturer=manufacturer, model=model, head_end=head_end)
            if (manufacturer, model) in seen:
                raise ValueError(f"product {manufacturer}/{model} appears twice")
            device_type = _DEVICE_TYPES.get(type_text)
            if device_type is None:
                raise ValueError(f"unknown device type {type_text!r}")
            seen.add((manufacturer, model))
            out.append(
                Product(manufacturer, model, device_type, head_end, flag(early, "early_smart"))
            )
    return out


def parse_sites(
    lines: Iterable[str], file: str = SITES_FILE, *, taken: Container[str] = ()
) -> dict[str, Site]:
    """Parse ``sites.csv`` (or ``early_smart_sites.csv``) into sites keyed by site id.

    ``taken`` holds site ids another file already uses; a site reusing one is refused.
    """
    sites: dict[str, Site] = {}
    hubs: set[str] = set()
    shared: dict[str, str] = {}
    one = shared.setdefault
    with table(lines, file, SITES_HEADER) as (rows, _):
        for site_id, comms_hub, lead, region, cell in rows:
            if not (site_id and lead and cell):
                require(site_id=site_id, lead_supplier=lead, cell=cell)
            if site_id in sites:
                raise ValueError(f"site {site_id} appears twice")
            if site_id in taken:
                raise ValueError(f"site {site_id} is already used by another file")
            if len(comms_hub) != 16 or not _HEX.issuperset(comms_hub):
                raise ValueError(
                    f"comms_hub {comms_hub!r} is not 16 upper-case hex digits (EUI-64)"
                )
            if comms_hub in hubs:
                raise ValueError(f"comms hub {comms_hub} serves another site")
            if region not in _REGIONS:
                raise ValueError(f"region {region!r} is not one of {', '.join(WAN_REGIONS)}")
            hubs.add(comms_hub)
            sites[site_id] = Site(
                site_id, comms_hub, one(lead, lead), one(region, region), one(cell, cell)
            )
    return sites


def _check_product(device: Device, products: Mapping[tuple[str, str], Product]) -> None:
    product = products.get((device.manufacturer, device.model))
    if product is None:
        raise ValueError(
            f"{device.status.value} device of model {device.manufacturer}/{device.model}, "
            "which is not on the approved products list"
        )
    if product.device_type is not device.device_type:
        raise ValueError(
            f"model {device.model} is a {product.device_type.value}, not a {device.device_type.value}"
        )
    if product.head_end != device.head_end:
        raise ValueError(
            f"model {device.model} uses head end {product.head_end}, not {device.head_end}"
        )
    if device.early_smart and not product.early_smart:
        raise ValueError(f"model {device.model} is not approved as an early-smart model")


_FUEL_OF = {DeviceType.ESME: Fuel.ELECTRICITY, DeviceType.GSME: Fuel.GAS}


def parse_devices(
    lines: Iterable[str],
    file: str = DEVICES_FILE,
    *,
    sites: Mapping[str, Site],
    meter_points: Mapping[str, MeterPoint] | None = None,
    products: Mapping[tuple[str, str], Product] | None = None,
    taken: Container[str] = (),
) -> DeviceTable:
    """Parse ``devices.csv`` (or ``early_smart_candidates.csv``).

    Every device must name a site in ``sites``; each CHF must be its site's comms hub, and every
    site's comms hub must appear. ESME and GSME carry a meter point (of their fuel, and known,
    when ``meter_points`` is given) and a payment mode; other types carry neither. With
    ``products``, Commissioned and Installed Not Commissioned devices must be of an approved
    model of their type, head end and early-smart standing. ``taken`` holds device ids
    another file already uses; a device reusing one is refused.
    """
    devices: dict[str, Device] = {}
    modes: dict[str, PaymentMode] = {}
    hubs_seen = 0
    chf = DeviceType.CHF
    shared: dict[str, str] = {}  # one copy of each repeated text (memory for big fleets)
    one = shared.setdefault
    last = 1
    with table(lines, file, DEVICES_HEADER) as (rows, reader):
        for row in rows:
            device_id, type_text, site_id, manufacturer, model, firmware, head_end = row[:7]
            status_text, mpxn, early, mode_text = row[7:]
            if device_id in devices:
                raise ValueError(f"device {device_id} appears twice")
            if device_id in taken:
                raise ValueError(f"device {device_id} is already used by another file")
            device_type = _DEVICE_TYPES.get(type_text)
            if device_type is None:
                raise ValueError(f"unknown device type {type_text!r}")
            status = _DEVICE_STATUSES.get(status_text)
            if status is None:
                raise ValueError(f"unknown device status {status_text!r}")
            site = sites.get(site_id)
            if site is None:
                raise ValueError(f"device {device_id} names unknown site {site_id!r}")
            if not (manufacturer and model and firmware and head_end):
                require(
                    manufacturer=manufacturer, model=model, firmware=firmware, head_end=head_end
                )
            fuel = _FUEL_OF.get(device_type)
            if fuel is not None:
                mode = _PAYMENT_MODES.get(mode_text)
                if mode is None:
                    raise ValueError(
                        f"payment_mode of {type_text} must be credit or prepayment, not {mode_text!r}"
                    )
                modes[device_id] = mode
                if meter_points is not None:
                    mp = known_meter_point(mpxn, meter_points)
                    if mp is not None:
                        if mp.fuel is not fuel:
                            raise ValueError(
                                f"{type_text} {device_id} names {mp.fuel.value} meter point {mpxn}"
                            )
                        mpxn = mp.mpxn
            else:
                if mpxn:
                    raise ValueError(
                        f"{type_text} {device_id} carries meter point {mpxn}; only meters do"
                    )
                if mode_text:
                    raise ValueError(
                        f"{type_text} {device_id} carries a payment mode; only meters do"
                    )
                if device_type is chf:
                    if site.comms_hub != device_id:
                        raise ValueError(
                            f"site {site_id} has comms hub {site.comms_hub}, not {device_id}"
                        )
                    hubs_seen += 1
            device = Device(
                device_id,
                device_type,
                site.site_id,
                one(manufacturer, manufacturer),
                one(model, model),
                one(firmware, firmware),
                one(head_end, head_end),
                status,
                mpxn,
                flag(early, "early_smart"),
            )
            if products is not None and status in _LIVE:
                _check_product(device, products)
            devices[device_id] = device
        last = reader.line_num
    if hubs_seen != len(sites):
        hubs = {d.site_id for d in devices.values() if d.device_type is chf}
        missing = next(s for s in sites.values() if s.site_id not in hubs)
        raise RecordError(
            file, last, f"site {missing.site_id}'s comms hub {missing.comms_hub} is not in the file"
        )
    return DeviceTable(list(devices.values()), modes)


def format_products(products: Iterable[Product]) -> Iterator[str]:
    """Lines of ``approved_products.csv``."""
    yield csv_line(PRODUCTS_HEADER)
    for p in products:
        yield csv_line(
            (p.manufacturer, p.model, p.device_type.value, p.head_end, flag_text(p.early_smart))
        )


def format_sites(sites: Iterable[Site]) -> Iterator[str]:
    """Lines of ``sites.csv`` (or ``early_smart_sites.csv``)."""
    yield csv_line(SITES_HEADER)
    for s in sites:
        yield csv_line((s.site_id, s.comms_hub, s.lead_supplier, s.region, s.cell))


def format_devices(
    devices: Iterable[Device], payment_modes: Mapping[str, PaymentMode]
) -> Iterator[str]:
    """Lines of ``devices.csv`` (or ``early_smart_candidates.csv``)."""
    yield csv_line(DEVICES_HEADER)
    for d in devices:
        mode = payment_modes.get(d.device_id)
        yield csv_line(
            (
                d.device_id,
                d.device_type.value,
                d.site_id,
                d.manufacturer,
                d.model,
                d.firmware,
                d.head_end,
                d.status.value,
                d.mpxn,
                flag_text(d.early_smart),
                "" if mode is None else mode.value,
            )
        )

"""Synthetic GB smart-metering fleets, generated columnar with numpy.

Decides: what a realistic fleet looks like (suppliers and their shares, distribution areas and
gas zones with their network operators, WAN regions and cells, fuel and payment mix, early-smart
adoption, changes of supplier and tenancy, agents and consents, device models and statuses) and
generates one as numpy arrays, deterministic for (sites, seed, as_of, mix).
Must never: touch files (``simfield.fleet_files`` writes them), read the clock or use
unseeded randomness; every figure of the mix is a setting (``FleetMix``), not buried in code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from hub.reference.parties import User, UserStatus
from hub.reference.roles import DeviceType, Role
from hub.registers.inventory import DeviceStatus, Product

IntArray = npt.NDArray[np.int64]
"""Index and day-offset arrays."""
BoolArray = npt.NDArray[np.bool_]
"""Flag arrays."""
U64Array = npt.NDArray[np.uint64]
"""EUI-64 device id arrays."""

NO_DATE = -(2**31)
"""Day offset standing for 'no date' (an open end, no expiry, no tenancy change)."""
HUB_COLLECTOR = "DCC"
"""Data collector code of meter points the hub reads."""


# ---------------------------------------------------------------------------- reference data


@dataclass(frozen=True, slots=True)
class SupplierSpec:
    """A supplier of the synthetic market."""

    party_id: str
    """Market participant id, e.g. ``SUPA``."""
    name: str
    """Organisation name."""
    roles: frozenset[Role]
    """Supplier roles it holds (IS, GS, ES)."""
    electricity_weight: float
    """Relative share of import MPANs it is registered to (0 without IS)."""
    gas_weight: float
    """Relative share of MPRNs it is registered to (0 without GS)."""
    agent: str = ""
    """Party id of the agent (RSA) it appoints to a share of its meter points, or empty."""


_BOTH = frozenset({Role.IS, Role.GS})
SUPPLIERS: tuple[SupplierSpec, ...] = (
    SupplierSpec("SUPA", "Ashdown Energy", _BOTH, 0.24, 0.26, "AGTA"),
    SupplierSpec("SUPB", "Bramble Power", _BOTH, 0.18, 0.20, "AGTA"),
    SupplierSpec("SUPC", "Cobalt Supply", _BOTH, 0.15, 0.17, "AGTB"),
    SupplierSpec("SUPD", "Dunlin Energy", _BOTH, 0.13, 0.15),
    SupplierSpec("SUPE", "Eskdale Gas and Power", _BOTH, 0.11, 0.12, "AGTB"),
    SupplierSpec("SUPF", "Fernhill Energy", _BOTH, 0.10, 0.10),
    SupplierSpec("SUPG", "Greystone Electric", frozenset({Role.IS}), 0.09, 0.0, "AGTB"),
    SupplierSpec("SUPH", "Harbour Export", frozenset({Role.ES}), 0.0, 0.0),
)
"""The suppliers: six dual-fuel, one electricity-only, one export supplier."""
EXPORT_SUPPLIER = 7
"""Index in ``SUPPLIERS`` of the export supplier every export MPAN is registered to."""


@dataclass(frozen=True, slots=True)
class AreaSpec:
    """A GB electricity distribution area (and the gas zone its premises sit in)."""

    distributor_id: str
    """Distributor id 10-23: the first two digits of its MPANs."""
    name: str
    """Common name of the area."""
    operator: str
    """Party id of the distribution group that runs it."""
    region: int
    """Index into ``REGIONS`` of its WAN region."""
    ldzs: tuple[str, ...]
    """Gas local distribution zones of its premises (picked evenly)."""
    weight: float
    """Relative number of premises (millions, roughly)."""


REGIONS = ("North", "Central", "South")
"""WAN regions, in the order of their index."""
_REGION_LETTER = ("N", "C", "S")
_N, _C, _S = 0, 1, 2
AREAS: tuple[AreaSpec, ...] = (
    AreaSpec("10", "Eastern", "UKPN", _S, ("EA",), 3.7),
    AreaSpec("11", "East Midlands", "NGED", _C, ("EM",), 2.6),
    AreaSpec("12", "London", "UKPN", _S, ("NT",), 2.4),
    AreaSpec("13", "Merseyside and North Wales", "SPEN", _C, ("NW", "WN"), 1.5),
    AreaSpec("14", "West Midlands", "NGED", _C, ("WM",), 2.5),
    AreaSpec("15", "North East", "NPG", _N, ("NO",), 1.6),
    AreaSpec("16", "North West", "ENWL", _N, ("NW",), 2.4),
    AreaSpec("17", "North Scotland", "SSEN", _N, ("SC",), 0.8),
    AreaSpec("18", "South Scotland", "SPEN", _N, ("SC",), 2.0),
    AreaSpec("19", "South East", "UKPN", _S, ("SE",), 2.3),
    AreaSpec("20", "Southern", "SSEN", _S, ("SO",), 3.0),
    AreaSpec("21", "South Wales", "NGED", _C, ("WS",), 1.1),
    AreaSpec("22", "South West", "NGED", _S, ("SW",), 1.6),
    AreaSpec("23", "Yorkshire", "NPG", _N, ("NE",), 2.3),
)
"""The 14 electricity distribution areas."""
LDZS = ("SC", "NO", "NW", "NE", "EM", "WM", "WN", "WS", "EA", "NT", "SE", "SO", "SW")
"""The 13 gas local distribution zones, in the order of their index."""
LDZ_TRANSPORTER: dict[str, str] = {
    **dict.fromkeys(("NW", "WM", "EM", "EA", "NT"), "CADENT"),
    **dict.fromkeys(("NO", "NE"), "NGN"),
    **dict.fromkeys(("SC", "SE", "SO"), "SGN"),
    **dict.fromkeys(("WN", "WS", "SW"), "WWU"),
}
"""Party id of the gas transporter of each zone."""
NETWORK_OPERATORS: tuple[tuple[str, str, Role], ...] = (
    ("UKPN", "UK Power Networks", Role.ED),
    ("NGED", "National Grid Electricity Distribution", Role.ED),
    ("SPEN", "SP Energy Networks", Role.ED),
    ("NPG", "Northern Powergrid", Role.ED),
    ("ENWL", "Electricity North West", Role.ED),
    ("SSEN", "Scottish and Southern Electricity Networks", Role.ED),
    ("CADENT", "Cadent Gas", Role.GT),
    ("NGN", "Northern Gas Networks", Role.GT),
    ("SGN", "SGN", Role.GT),
    ("WWU", "Wales & West Utilities", Role.GT),
)
"""Network operators: (party id, name, role)."""
AGENTS: tuple[tuple[str, str], ...] = (
    ("AGTA", "Meterline Agency Services"),
    ("AGTB", "Northgate Metering Agents"),
)
"""Registered supplier agents: (party id, name)."""
ESCOS: tuple[tuple[str, str, UserStatus], ...] = (
    ("ESCA", "Brightside Energy Insights", UserStatus.ACTIVE),
    ("ESCB", "Homewise Energy Services", UserStatus.ACTIVE),
    ("ESCC", "Quickswitch Data", UserStatus.SUSPENDED),
)
"""ESCOs (other users): (party id, name, status); one is suspended."""
_ESCO_WEIGHTS = (0.45, 0.45, 0.10)
COLLECTORS = (HUB_COLLECTOR, "NDCA", "NDCB")
"""Data collector codes: the hub first, then the agents of non-domestic points not opted in."""


@dataclass(frozen=True, slots=True)
class ManufacturerSpec:
    """A device manufacturer."""

    name: str
    """Manufacturer name as the inventory spells it."""
    head_end: str
    """The head-end type that translates for its devices."""
    oui: int
    """24-bit prefix of its EUI-64s (locally administered, so never a real vendor's)."""


MANUFACTURERS: tuple[ManufacturerSpec, ...] = (
    ManufacturerSpec("Aldermet", "tlv", 0x0A1D3E),
    ManufacturerSpec("Brightwave", "cosem", 0x06B81F),
    ManufacturerSpec("Corrie Instruments", "text", 0x0EC0A5),
    ManufacturerSpec("Dunmore Systems", "cosem", 0x02D4F1),
)
"""The manufacturers, sharing the three head-end types."""

SMETS2 = "smets2"
EARLY = "early"
NON_COMPLIANT = "non-compliant"
NORTH = "north"
SOUTH = "south"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A device model."""

    manufacturer: int
    """Index into ``MANUFACTURERS``."""
    model: str
    """Model name."""
    device_type: DeviceType
    """What kind of device it is."""
    weight: float
    """Relative share within its pool (same type and generation)."""
    firmware: tuple[str, ...]
    """Firmware versions in the field, oldest first (the newest is the most common)."""
    generation: str = SMETS2
    """``smets2``, ``early`` (compliant early-smart) or ``non-compliant`` (early-smart that
    does not comply with the approved specification)."""
    approved: bool = True
    """On the approved products list (False: never approved, or removed from it)."""
    wan: str = ""
    """For SMETS2 comms hubs: ``north`` (long-range radio) or ``south`` (cellular)."""


_E, _G, _H, _P = DeviceType.ESME, DeviceType.GSME, DeviceType.CHF, DeviceType.GPF
_D, _PP = DeviceType.IHD, DeviceType.PPMID
MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(0, "AM-E210", _E, 0.30, ("2.1.0", "2.2.1", "2.3.0")),
    ModelSpec(0, "AM-E310", _E, 0.15, ("1.0.4", "1.1.0")),
    ModelSpec(1, "BW-E1", _E, 0.25, ("4.0.2", "4.1.0")),
    ModelSpec(2, "CI-E5", _E, 0.20, ("7.2", "7.3", "7.4")),
    ModelSpec(3, "DS-E7", _E, 0.09, ("3.0.0", "3.0.1")),
    ModelSpec(3, "DS-E6", _E, 0.01, ("2.9.8",), approved=False),  # removed: devices Suspended
    ModelSpec(0, "AM-G110", _G, 0.35, ("1.4.0", "1.5.2")),
    ModelSpec(1, "BW-G1", _G, 0.35, ("3.3.0", "3.4.1")),
    ModelSpec(2, "CI-G3", _G, 0.30, ("5.0", "5.1")),
    ModelSpec(2, "CI-CH1N", _H, 1.0, ("1.8.0", "1.9.2"), wan=NORTH),
    ModelSpec(1, "BW-CH2C", _H, 0.6, ("2.0.3", "2.1.0"), wan=SOUTH),
    ModelSpec(3, "DS-CH3", _H, 0.4, ("6.1", "6.2"), wan=SOUTH),
    ModelSpec(2, "CI-CH1N-GPF", _P, 1.0, ("1.8.0", "1.9.2")),
    ModelSpec(1, "BW-CH2C-GPF", _P, 1.0, ("2.0.3", "2.1.0")),
    ModelSpec(3, "DS-CH3-GPF", _P, 1.0, ("6.1", "6.2")),
    ModelSpec(0, "AM-D20", _D, 0.5, ("1.2", "1.3")),
    ModelSpec(2, "CI-D4", _D, 0.5, ("4.4.0",)),
    ModelSpec(1, "BW-P1", _PP, 0.6, ("1.0.1", "1.1.0")),
    ModelSpec(3, "DS-P2", _PP, 0.4, ("2.2",)),
    ModelSpec(0, "AM-S1E", _E, 0.6, ("S1.4", "S1.5"), EARLY),
    ModelSpec(3, "DS-S1E", _E, 0.4, ("0.9.7",), EARLY),
    ModelSpec(2, "CI-S1E", _E, 1.0, ("0.3",), NON_COMPLIANT, approved=False),
    ModelSpec(0, "AM-S1G", _G, 1.0, ("S1.2",), EARLY),
    ModelSpec(2, "CI-S1G", _G, 1.0, ("0.3",), NON_COMPLIANT, approved=False),
    ModelSpec(0, "AM-S1CH", _H, 1.0, ("S1.9",), EARLY),
    ModelSpec(0, "AM-S1CH-GPF", _P, 1.0, ("S1.9",), EARLY),
    ModelSpec(0, "AM-S1D", _D, 1.0, ("S1.1",), EARLY),
    ModelSpec(3, "DS-S1P", _PP, 1.0, ("0.8",), EARLY),
)
"""Every device model in the field, approved or not."""
GPF_SUFFIX = "-GPF"
"""A comms hub model's gas proxy function is named after it with this suffix."""

DEVICE_TYPES = tuple(DeviceType)
"""Device types in the order of the ``device_type`` index of ``FleetArrays``."""
STATUSES = tuple(DeviceStatus)
"""Device statuses in the order of the ``device_status`` index of ``FleetArrays``."""
PAYMENT_MODES = ("", "credit", "prepayment")
"""Payment modes in the order of the ``device_payment`` index (0: not a meter)."""

DUAL_FUEL, ELECTRICITY_ONLY, GAS_ONLY = 0, 1, 2
IMPORT, EXPORT, GAS = 0, 1, 2
"""Meter point kinds (``mp_kind``): electricity import MPAN, export MPAN, MPRN."""


@dataclass(frozen=True, slots=True)
class FleetMix:
    """The shares and sizes a generated fleet aims at (all settings, with GB-like defaults)."""

    dual_fuel: float = 0.70
    """Share of sites with electricity and gas."""
    electricity_only: float = 0.22
    """Share of electricity-only sites (the rest, about 8%, are gas-only)."""
    prepayment: float = 0.15
    """Share of sites (all domestic) whose meters are in prepayment mode."""
    non_domestic: float = 0.05
    """Share of sites (and so of meter points) with a non-domestic customer."""
    opted_in: float = 0.60
    """Share of non-domestic sites whose supplier opted in (data collector DCC)."""
    export: float = 0.03
    """Share of electricity sites with an export MPAN (metered by a second ESME)."""
    early_smart: float = 0.35
    """Share of sites that are adopted early-smart (SMETS1)."""
    candidates: float = 0.02
    """Early-smart candidate sites, as a share of the fleet's sites."""
    non_compliant: float = 1 / 3
    """Share of candidates whose meters do not comply with the approved specification."""
    ihd: float = 0.90
    """Share of sites with an in-home display."""
    new_install: float = 0.01
    """Share of SMETS2 sites just installed: every device Installed Not Commissioned."""
    display_decommissioned: float = 0.01
    """Share of IHDs and PPMIDs decommissioned (replaced or broken)."""
    past_change_of_supplier: float = 0.05
    """Share of meter points that changed supplier before ``as_of``."""
    future_change_of_supplier: float = 0.01
    """Share of meter points with a change of supplier booked after ``as_of``."""
    future_window_days: int = 60
    """A booked change of supplier falls within this many days after ``as_of``."""
    tenancy_change: float = 0.10
    """Share of sites with a past change of tenancy."""
    same_gas_supplier: float = 0.80
    """Share of dual-fuel sites whose gas supplier is their electricity supplier."""
    half_hourly_domestic: float = 0.85
    """Share of domestic import MPANs settled half-hourly (non-domestic and export all are)."""
    appointed: float = 0.15
    """Share of an appointing supplier's meter points its agent is appointed to."""
    consent: float = 0.02
    """Share of domestic hub-served meter points with an ESCO consent."""
    sites_per_cell: int = 2500
    """Target number of sites per WAN cell."""
    history_days: int = 4380
    """The oldest registration starts this many days before ``as_of``."""


@dataclass(frozen=True, slots=True, eq=False)
class FleetArrays:
    """A generated fleet, columnar. Day columns are offsets from ``as_of`` (``NO_DATE``: none);
    index columns point into this module's reference tables or into other columns."""

    seed: int
    """The seed it was generated from."""
    as_of: date
    """The day the fleet describes; day offsets count from it."""
    sites: int
    """Number of hub sites; the candidate sites follow them in the site columns."""
    candidates: int
    """Number of early-smart candidate sites."""
    site_area: IntArray
    """Per site: index into ``AREAS``."""
    site_ldz: IntArray
    """Per site: index into ``LDZS`` (the gas zone of its premises)."""
    site_region: IntArray
    """Per site: index into ``REGIONS``."""
    site_cell: IntArray
    """Per site: cell number (1-based) within its region."""
    site_fuel: IntArray
    """Per site: ``DUAL_FUEL``, ``ELECTRICITY_ONLY`` or ``GAS_ONLY``."""
    site_domestic: BoolArray
    """Per site: domestic customer."""
    site_collector: IntArray
    """Per site: index into ``COLLECTORS`` (0: the hub)."""
    site_prepayment: BoolArray
    """Per site: meters in prepayment mode."""
    site_early: BoolArray
    """Per site: early-smart (adopted, or a candidate)."""
    site_non_compliant: BoolArray
    """Per site: a candidate whose meters do not comply."""
    site_new: BoolArray
    """Per site: just installed (devices Installed Not Commissioned)."""
    site_tenancy: IntArray
    """Per site, shape (n, 2): day offsets of up to two tenancy changes, earliest first."""
    site_lead: IntArray
    """Per site: index into ``SUPPLIERS`` of the lead supplier."""
    site_comms_hub: U64Array
    """Per site: device id of its comms hub (CHF)."""
    mp_site: IntArray
    """Per meter point: its site (meter points are ordered by site, then kind)."""
    mp_kind: IntArray
    """Per meter point: ``IMPORT``, ``EXPORT`` or ``GAS``."""
    mp_number: IntArray
    """Per meter point: the MPAN core or MPRN as an integer."""
    mp_half_hourly: BoolArray
    """Per meter point: settled half-hourly."""
    reg_mp: IntArray
    """Per registration: its meter point (ordered by meter point, then start)."""
    reg_supplier: IntArray
    """Per registration: index into ``SUPPLIERS``."""
    reg_from: IntArray
    """Per registration: first day."""
    reg_to: IntArray
    """Per registration: first day after it (``NO_DATE``: open)."""
    ap_agent: IntArray
    """Per appointment: index into ``AGENTS``."""
    ap_supplier: IntArray
    """Per appointment: index into ``SUPPLIERS`` of the appointing supplier."""
    ap_mp: IntArray
    """Per appointment: its meter point."""
    ap_from: IntArray
    """Per appointment: first day."""
    ap_to: IntArray
    """Per appointment: first day after it (``NO_DATE``: open)."""
    co_esco: IntArray
    """Per consent: index into ``ESCOS``."""
    co_mp: IntArray
    """Per consent: its meter point."""
    co_granted: IntArray
    """Per consent: first day."""
    co_expires: IntArray
    """Per consent: first day it no longer applies (``NO_DATE``: until a tenancy change)."""
    device_id: U64Array
    """Per device: EUI-64 (devices are ordered by site, then CHF, GPF, ESME, GSME, IHD, PPMID)."""
    device_type: IntArray
    """Per device: index into ``DEVICE_TYPES``."""
    device_site: IntArray
    """Per device: its site."""
    device_model: IntArray
    """Per device: index into ``MODELS``."""
    device_firmware: IntArray
    """Per device: index into its model's ``firmware``."""
    device_status: IntArray
    """Per device: index into ``STATUSES``."""
    device_mp: IntArray
    """Per device: its meter point (ESME, GSME), else -1."""
    device_payment: IntArray
    """Per device: index into ``PAYMENT_MODES`` (0 for non-meters)."""


# ---------------------------------------------------------------------------- reference views


def fleet_users() -> tuple[User, ...]:
    """The fleet's service users: suppliers, network operators, agents and ESCOs."""
    users = [User(f"u-{s.party_id.lower()}", s.party_id, s.name, s.roles) for s in SUPPLIERS]
    users += [User(f"u-{p.lower()}", p, n, frozenset({r})) for p, n, r in NETWORK_OPERATORS]
    users += [User(f"u-{p.lower()}", p, n, frozenset({Role.RSA})) for p, n in AGENTS]
    users += [User(f"u-{p.lower()}", p, n, frozenset({Role.OU}), st) for p, n, st in ESCOS]
    return tuple(users)


def approved_products() -> tuple[Product, ...]:
    """The approved products list: every approved model, early-smart ones flagged."""
    return tuple(
        Product(
            MANUFACTURERS[m.manufacturer].name,
            m.model,
            m.device_type,
            MANUFACTURERS[m.manufacturer].head_end,
            m.generation == EARLY,
        )
        for m in MODELS
        if m.approved
    )


# ---------------------------------------------------------------------------- generation


def _pool(device_type: DeviceType, generation: str, wan: str = "") -> tuple[IntArray, np.ndarray]:
    idx = [
        i
        for i, m in enumerate(MODELS)
        if m.device_type is device_type and m.generation == generation and (not wan or m.wan == wan)
    ]
    if not idx and generation == NON_COMPLIANT:
        return _pool(device_type, EARLY)
    weights = np.array([MODELS[i].weight for i in idx])
    return np.array(idx, dtype=np.int64), weights / weights.sum()


def _pick_models(
    rng: np.random.Generator,
    device_type: DeviceType,
    early: BoolArray,
    non_compliant: BoolArray,
    north: BoolArray | None = None,
) -> IntArray:
    """Model per device: SMETS2, compliant early-smart or non-compliant pools."""
    out = np.empty(len(early), dtype=np.int64)
    groups: list[tuple[BoolArray, str, str]] = [
        (early & ~non_compliant, EARLY, ""),
        (early & non_compliant, NON_COMPLIANT, ""),
    ]
    if north is None:
        groups.append((~early, SMETS2, ""))
    else:
        groups += [(~early & north, SMETS2, NORTH), (~early & ~north, SMETS2, SOUTH)]
    for mask, generation, wan in groups:
        idx, p = _pool(device_type, generation, wan)
        out[mask] = idx[rng.choice(len(idx), size=int(mask.sum()), p=p)]
    return out


def _other(rng: np.random.Generator, pool: IntArray, p: np.ndarray, old: IntArray) -> IntArray:
    """A supplier from ``pool`` (weights ``p``) different from ``old``."""
    new = pool[rng.choice(len(pool), size=len(old), p=p)]
    same = new == old
    if same.any():
        position = np.searchsorted(pool, old[same])
        step = rng.integers(1, len(pool), size=int(same.sum()))
        new[same] = pool[(position + step) % len(pool)]
    return new


def _supplier_pool(attr: str) -> tuple[IntArray, np.ndarray]:
    weights = np.array([getattr(s, attr) for s in SUPPLIERS])
    idx = np.nonzero(weights > 0)[0].astype(np.int64)
    return idx, weights[idx] / weights[idx].sum()


def _cells(rng: np.random.Generator, region: IntArray, area: IntArray, per_cell: int) -> IntArray:
    """Cell number per site within its region; a cell holds neighbouring sites (same area)."""
    cell = np.zeros(len(region), dtype=np.int64)
    key = rng.random(len(region))
    for r in range(len(REGIONS)):
        members = np.nonzero(region == r)[0]
        count = len(members)
        if not count:
            continue
        cells = max(1, round(count / per_cell))
        order = members[np.lexsort((key[members], area[members]))]
        cell[order] = np.arange(count) * cells // count + 1
    return cell


def _eui64(rng: np.random.Generator, models: IntArray) -> U64Array:
    """Unique EUI-64s: manufacturer prefix and a 40-bit bijective scramble of the row number."""
    mask = np.uint64((1 << 40) - 1)
    k = np.arange(len(models), dtype=np.uint64)
    offset = np.uint64(int(rng.integers(0, 1 << 40)))
    x = (k * np.uint64(0x9E3779B97F) + offset) & mask
    x ^= x >> np.uint64(19)
    x = (x * np.uint64(0xC2B2AE3D27) + np.uint64(0x165667B1)) & mask
    oui = np.array([MANUFACTURERS[m.manufacturer].oui for m in MODELS], dtype=np.uint64)
    return (oui[models] << np.uint64(40)) | x


def _mpan_numbers(rng: np.random.Generator, area: IntArray) -> IntArray:
    """Unique valid MPAN cores: distributor id, a scrambled 10-digit serial, check digit."""
    serial = (
        np.arange(len(area), dtype=np.int64) * 7_919_004_317 + int(rng.integers(0, 10**10))
    ) % (10**10)
    first12 = (area.astype(np.int64) + 10) * 10**10 + serial
    weights = (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)
    total = np.zeros(len(area), dtype=np.int64)
    rest = first12.copy()
    for w in reversed(weights):
        total += (rest % 10) * w
        rest //= 10
    return first12 * 10 + total % 11 % 10


def _mprn_numbers(rng: np.random.Generator, count: int) -> IntArray:
    """Unique 10-digit MPRNs that do not start with 0."""
    span = 9 * 10**9
    k = np.arange(count, dtype=np.int64)
    return 10**9 + (k * 7_777_777_777 + int(rng.integers(0, span))) % span


def _offsets_between(rng: np.random.Generator, low: IntArray, high: IntArray) -> IntArray:
    """Uniform day offsets in [low, high] (inclusive), element-wise."""
    return low + (rng.random(len(low)) * (high - low + 1)).astype(np.int64)


def generate_fleet(sites: int, seed: int, as_of: date, mix: FleetMix | None = None) -> FleetArrays:
    """Generate a fleet of ``sites`` hub sites plus early-smart candidate sites.

    Deterministic: the same (sites, seed, as_of, mix) give identical arrays.
    """
    if sites < 1:
        raise ValueError("a fleet needs at least one site")
    mix = mix or FleetMix()
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    r_site, r_cell, r_num, r_reg, r_dev, r_ap, r_co, r_id = streams
    n_cand = round(sites * mix.candidates)
    total = sites + n_cand

    # ---- sites
    area_w = np.array([a.weight for a in AREAS])
    area = r_site.choice(len(AREAS), size=total, p=area_w / area_w.sum()).astype(np.int64)
    gas_only = 1 - mix.dual_fuel - mix.electricity_only
    fuel = r_site.choice(3, size=total, p=[mix.dual_fuel, mix.electricity_only, gas_only])
    fuel = fuel.astype(np.int64)
    u = r_site.random((9, total))
    domestic = u[0] >= mix.non_domestic
    opted_in = domestic | (u[1] < mix.opted_in)
    collector = np.where(opted_in, 0, 1 + (u[2] * (len(COLLECTORS) - 1)).astype(np.int64))
    prepayment = domestic & (u[3] < mix.prepayment / (1 - mix.non_domestic))
    early = u[4] < mix.early_smart
    early[sites:] = True
    non_compliant = np.zeros(total, dtype=bool)
    n_bad = round(n_cand * mix.non_compliant)
    non_compliant[sites + r_site.permutation(n_cand)[:n_bad]] = True
    new = ~early & (u[5] < mix.new_install)
    ihd = u[6] < mix.ihd
    has_e = fuel != GAS_ONLY
    has_g = fuel != ELECTRICITY_ONLY
    export = has_e & (u[7] < mix.export)
    region = np.array([a.region for a in AREAS], dtype=np.int64)[area]
    ldz_of = np.array(
        [[LDZS.index(a.ldzs[0]), LDZS.index(a.ldzs[-1])] for a in AREAS], dtype=np.int64
    )
    ldz = ldz_of[area, (u[8] < 0.5).astype(np.int64)]
    cell = _cells(r_cell, region, area, mix.sites_per_cell)

    tenancy = np.full((total, 2), NO_DATE, dtype=np.int64)
    moved = np.nonzero(r_site.random(total) < mix.tenancy_change)[0]
    a = -r_site.integers(1, 1801, size=len(moved))
    b = -r_site.integers(1, 1801, size=len(moved))
    twice = (r_site.random(len(moved)) < 0.2) & (a != b)
    tenancy[moved, 0] = np.where(twice, np.minimum(a, b), a)
    tenancy[moved[twice], 1] = np.maximum(a, b)[twice]

    # ---- meter points, ordered by site then kind
    e_sites, x_sites, g_sites = np.nonzero(has_e)[0], np.nonzero(export)[0], np.nonzero(has_g)[0]
    mp_site = np.concatenate([e_sites, x_sites, g_sites])
    mp_kind = np.concatenate(
        [np.full(len(e_sites), IMPORT), np.full(len(x_sites), EXPORT), np.full(len(g_sites), GAS)]
    ).astype(np.int64)
    order = np.lexsort((mp_kind, mp_site))
    mp_site, mp_kind = mp_site[order].astype(np.int64), mp_kind[order]
    is_gas = mp_kind == GAS
    number = np.empty(len(mp_site), dtype=np.int64)
    number[~is_gas] = _mpan_numbers(r_num, area[mp_site[~is_gas]])
    number[is_gas] = _mprn_numbers(r_num, int(is_gas.sum()))
    half_hourly = (mp_kind == EXPORT) | (
        (mp_kind == IMPORT)
        & (~domestic[mp_site] | (r_num.random(len(mp_site)) < mix.half_hourly_domestic))
    )
    site_mp = np.full((total, 3), -1, dtype=np.int64)
    site_mp[mp_site, mp_kind] = np.arange(len(mp_site))

    # ---- registrations
    n_mp = len(mp_site)
    e_pool, e_p = _supplier_pool("electricity_weight")
    g_pool, g_p = _supplier_pool("gas_weight")
    first = np.empty(n_mp, dtype=np.int64)
    imp = mp_kind == IMPORT
    first[imp] = e_pool[r_reg.choice(len(e_pool), size=int(imp.sum()), p=e_p)]
    first[mp_kind == EXPORT] = EXPORT_SUPPLIER
    first[is_gas] = g_pool[r_reg.choice(len(g_pool), size=int(is_gas.sum()), p=g_p)]
    # dual-fuel deals: the gas supplier is usually the electricity supplier
    elec_of_site = np.full(total, -1, dtype=np.int64)
    elec_of_site[mp_site[imp]] = first[imp]
    gas_idx = np.nonzero(is_gas)[0]
    partner = elec_of_site[mp_site[gas_idx]]
    holds_gas = np.isin(partner, g_pool)
    same = holds_gas & (r_reg.random(len(gas_idx)) < mix.same_gas_supplier)
    first[gas_idx[same]] = partner[same]

    start = -r_reg.integers(30, mix.history_days + 1, size=n_mp)
    switchable = mp_kind != EXPORT
    past = switchable & (r_reg.random(n_mp) < mix.past_change_of_supplier)
    future = switchable & (r_reg.random(n_mp) < mix.future_change_of_supplier)
    past_day = np.where(past, _offsets_between(r_reg, start + 1, np.full(n_mp, -1)), NO_DATE)
    future_day = np.where(future, r_reg.integers(1, mix.future_window_days + 1, size=n_mp), NO_DATE)
    second = first.copy()
    third = first.copy()
    for kind_mask, pool, p in ((imp, e_pool, e_p), (is_gas, g_pool, g_p)):
        m = kind_mask & past
        second[m] = _other(r_reg, pool, p, first[m])
        current = np.where(past, second, first)
        m = kind_mask & future
        third[m] = _other(r_reg, pool, p, current[m])
    current = np.where(past, second, first)
    current_from = np.where(past, past_day, start)
    current_to = future_day  # NO_DATE when no change is booked

    all_mp = np.arange(n_mp, dtype=np.int64)
    reg_mp = np.concatenate([all_mp, all_mp[past], all_mp[future]])
    reg_supplier = np.concatenate([first, second[past], third[future]])
    reg_from = np.concatenate([start, past_day[past], future_day[future]])
    reg_to = np.concatenate(
        [
            np.where(past, past_day, future_day),
            future_day[past],
            np.full(int(future.sum()), NO_DATE),
        ]
    )
    order = np.lexsort((reg_from, reg_mp))
    reg_mp, reg_supplier, reg_from, reg_to = (
        reg_mp[order],
        reg_supplier[order],
        reg_from[order],
        reg_to[order],
    )

    lead = np.empty(total, dtype=np.int64)
    gas_of_site = site_mp[:, GAS]
    import_of_site = site_mp[:, IMPORT]
    lead[has_g] = current[gas_of_site[has_g]]
    lead[has_e] = current[import_of_site[has_e]]

    # ---- agent appointments: each appointing supplier's agent on a share of its meter points
    agent_of = np.array(
        [[p for p, _ in AGENTS].index(s.agent) if s.agent else -1 for s in SUPPLIERS],
        dtype=np.int64,
    )
    agent = agent_of[current]
    chosen = np.nonzero(switchable & (agent >= 0) & (r_ap.random(n_mp) < mix.appointed))[0]
    ap_agent, ap_supplier, ap_mp = agent[chosen], current[chosen], chosen
    ap_from, ap_to = current_from[chosen], current_to[chosen]

    # ---- consents: some live, some expired, some ended by a later change of tenancy
    eligible = switchable & domestic[mp_site] & (collector[mp_site] == 0)
    eligible &= mp_site < sites
    last_move = tenancy.max(axis=1)
    moved_mp = eligible & (last_move[mp_site] != NO_DATE)
    n_consent = round(mix.consent * int(eligible.sum()))
    n_moved = min(int(moved_mp.sum()), round(n_consent * 0.3))
    pick_moved = r_co.choice(np.nonzero(moved_mp)[0], size=n_moved, replace=False)
    settled = np.nonzero(eligible & ~moved_mp)[0]
    pick_settled = r_co.choice(settled, size=min(len(settled), n_consent - n_moved), replace=False)
    co_mp = np.sort(np.concatenate([pick_moved, pick_settled])).astype(np.int64)
    n_co = len(co_mp)
    moved_at = last_move[mp_site[co_mp]]
    granted = -r_co.integers(2, 1001, size=n_co)
    before_move = (moved_at != NO_DATE) & (r_co.random(n_co) < 0.6)
    granted = np.where(before_move, moved_at - r_co.integers(1, 366, size=n_co), granted)
    after_move = (moved_at != NO_DATE) & ~before_move
    granted = np.where(after_move & (granted <= moved_at), moved_at + 1, granted)
    granted = np.minimum(granted, -2)
    kind = r_co.random(n_co)
    expired = kind < 0.25
    co_expires = np.where(
        expired,
        _offsets_between(r_co, granted + 1, np.full(n_co, -1)),
        np.where(kind < 0.70, r_co.integers(1, 731, size=n_co), NO_DATE),
    )
    co_esco = r_co.choice(len(ESCOS), size=n_co, p=_ESCO_WEIGHTS).astype(np.int64)

    # ---- devices
    north = region == _N
    chf = _pick_models(r_dev, _H, early, non_compliant, north)
    gpf_of = np.full(len(MODELS), -1, dtype=np.int64)
    by_name = {m.model: i for i, m in enumerate(MODELS)}
    for i, m in enumerate(MODELS):
        if m.device_type is _H:
            gpf_of[i] = by_name[m.model + GPF_SUFFIX]
    ihd_sites = np.nonzero(ihd)[0]
    ppmid_sites = np.nonzero(prepayment)[0]
    blocks = (
        # (sites, block order, type, models, meter point, payment)
        (np.arange(total), 0, _H, chf, None, 0),
        (g_sites, 1, _P, gpf_of[chf[g_sites]], None, 0),
        (e_sites, 2, _E, None, site_mp[e_sites, IMPORT], None),
        (x_sites, 3, _E, None, site_mp[x_sites, EXPORT], 1),
        (g_sites, 4, _G, None, site_mp[g_sites, GAS], None),
        (ihd_sites, 5, _D, None, None, 0),
        (ppmid_sites, 6, _PP, None, None, 0),
    )
    type_index = {t: i for i, t in enumerate(DEVICE_TYPES)}
    parts: list[tuple[IntArray, ...]] = []
    for where, rank, dtype, models, mps, payment in blocks:
        count = len(where)
        if models is None:
            models = _pick_models(r_dev, dtype, early[where], non_compliant[where])
        mp_col = np.full(count, -1, dtype=np.int64) if mps is None else mps
        if payment is None:
            pay = np.where(prepayment[where], 2, 1)
        else:
            pay = np.full(count, payment, dtype=np.int64)
        parts.append(
            (
                where.astype(np.int64),
                np.full(count, rank, dtype=np.int64),
                np.full(count, type_index[dtype], dtype=np.int64),
                models.astype(np.int64),
                mp_col.astype(np.int64),
                pay.astype(np.int64),
            )
        )
    d_site, d_rank, d_type, d_model, d_mp, d_pay = (
        np.concatenate([p[i] for p in parts]) for i in range(6)
    )
    order = np.lexsort((d_rank, d_site))
    d_site, d_rank, d_type, d_model, d_mp, d_pay = (
        x[order] for x in (d_site, d_rank, d_type, d_model, d_mp, d_pay)
    )
    n_dev = len(d_site)
    fw_count = np.array([len(m.firmware) for m in MODELS], dtype=np.int64)[d_model]
    firmware = np.minimum((fw_count * np.sqrt(r_dev.random(n_dev))).astype(np.int64), fw_count - 1)
    status_index = {s: i for i, s in enumerate(STATUSES)}
    status = np.full(n_dev, status_index[DeviceStatus.COMMISSIONED], dtype=np.int64)
    status[new[d_site]] = status_index[DeviceStatus.INSTALLED_NOT_COMMISSIONED]
    display = (d_rank >= 5) & (r_dev.random(n_dev) < mix.display_decommissioned)
    status[display & ~new[d_site]] = status_index[DeviceStatus.DECOMMISSIONED]
    approved = np.array([m.approved for m in MODELS])
    status[~approved[d_model]] = status_index[DeviceStatus.SUSPENDED]
    status[d_site >= sites] = status_index[DeviceStatus.PENDING]
    device_id = _eui64(r_id, d_model)
    comms_hub = device_id[d_rank == 0]  # one CHF per site, in site order

    return FleetArrays(
        seed=seed,
        as_of=as_of,
        sites=sites,
        candidates=n_cand,
        site_area=area,
        site_ldz=ldz,
        site_region=region,
        site_cell=cell,
        site_fuel=fuel,
        site_domestic=domestic,
        site_collector=collector,
        site_prepayment=prepayment,
        site_early=early,
        site_non_compliant=non_compliant,
        site_new=new,
        site_tenancy=tenancy,
        site_lead=lead,
        site_comms_hub=comms_hub,
        mp_site=mp_site,
        mp_kind=mp_kind,
        mp_number=number,
        mp_half_hourly=half_hourly,
        reg_mp=reg_mp,
        reg_supplier=reg_supplier,
        reg_from=reg_from,
        reg_to=reg_to,
        ap_agent=ap_agent,
        ap_supplier=ap_supplier,
        ap_mp=ap_mp,
        ap_from=ap_from,
        ap_to=ap_to,
        co_esco=co_esco,
        co_mp=co_mp,
        co_granted=granted,
        co_expires=co_expires,
        device_id=device_id,
        device_type=d_type,
        device_site=d_site,
        device_model=d_model,
        device_firmware=firmware,
        device_status=status,
        device_mp=d_mp,
        device_payment=d_pay,
    )


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def fleet_summary(fleet: FleetArrays) -> dict[str, float]:
    """Shares of the generated fleet (hub sites unless stated), rounded to 4 places."""
    n = fleet.sites
    hub = slice(0, n)
    fuel = fleet.site_fuel[hub]
    in_hub = fleet.mp_site < n
    kind = fleet.mp_kind[in_hub]
    mp_sites = fleet.mp_site[in_hub]
    switchable = kind != EXPORT
    n_sw = int(switchable.sum())
    mp_index = np.nonzero(in_hub)[0]
    reg_count = np.bincount(fleet.reg_mp, minlength=len(fleet.mp_site))[mp_index]
    has_future = np.zeros(len(fleet.mp_site), dtype=bool)
    has_future[fleet.reg_mp[fleet.reg_from > 0]] = True
    past_changes = reg_count - has_future[mp_index] - 1
    meters = (fleet.device_payment > 0) & (fleet.device_site < n)
    domestic = fleet.site_domestic[mp_sites]
    non_dom = ~domestic
    cand = slice(n, n + fleet.candidates)
    return {
        "dual_fuel_sites": _share(int((fuel == DUAL_FUEL).sum()), n),
        "electricity_only_sites": _share(int((fuel == ELECTRICITY_ONLY).sum()), n),
        "gas_only_sites": _share(int((fuel == GAS_ONLY).sum()), n),
        "prepayment_meters": _share(
            int((fleet.device_payment[meters] == 2).sum()), int(meters.sum())
        ),
        "non_domestic_meter_points": _share(int(non_dom.sum()), len(kind)),
        "non_domestic_opted_in": _share(
            int((non_dom & (fleet.site_collector[mp_sites] == 0)).sum()), int(non_dom.sum())
        ),
        "export_electricity_sites": _share(
            int((kind == EXPORT).sum()), int((fuel != GAS_ONLY).sum())
        ),
        "early_smart_sites": _share(int(fleet.site_early[hub].sum()), n),
        "candidate_sites": _share(fleet.candidates, n),
        "candidates_non_compliant": _share(
            int(fleet.site_non_compliant[cand].sum()), fleet.candidates
        ),
        "past_change_of_supplier": _share(int((past_changes[switchable] > 0).sum()), n_sw),
        "future_change_of_supplier": _share(int(has_future[mp_index][switchable].sum()), n_sw),
        "tenancy_change_sites": _share(int((fleet.site_tenancy[hub, 0] != NO_DATE).sum()), n),
        "sites_with_ihd": _share(  # at most one IHD per site
            int(((fleet.device_type == DEVICE_TYPES.index(_D)) & (fleet.device_site < n)).sum()), n
        ),
        "appointed_meter_points": _share(len(fleet.ap_mp), n_sw),
        "consented_meter_points": _share(len(fleet.co_mp), n_sw),
    }

"""Service parameters: the typed schema of every device service's parameters.

Decides: which parameters each in-scope device service takes (names, types, whether required,
ranges, lengths, choices, formats and rules that tie parameters together), whether a given
parameter map is valid (``validate_params`` lists every problem, in words a person can act
on), and a valid example for each service (``example_params``).
Must never: judge a parameter against a device's state (a price list that does not match the
meter's tariff is the device's to refuse), read the clock or hold any state. Non-device and
out-of-scope services have no schema here.

Units are in the names: money in pence (``_pence``, ``_pence_per_kwh``, ``_pence_per_day``),
energy in kWh, power in W, voltage in V, durations in seconds (``_s``), instants as float
seconds since the Unix epoch, UTC. Time ranges are ``start`` (inclusive) to ``end``
(exclusive). Times of day are UK local ``"HH:MM"`` on a half-hour boundary.

This module is mostly schema data: the ``SCHEMAS`` table is about 440 of its lines, and the
parameter builders and shared parameters above it exist to write that table. It stays one
module so that a service's schema, and the checks it names, read in one place.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from hub.reference.catalogue import CATALOGUE
from hub.reference.mpxn import mpan_problem, mprn_problem
from hub.reference.standard import Instant, Value
from hub.reference.text import show
from hub.reference.utrn import make_utrn, utrn_problem

DAY_S = 86_400.0
MIN_INSTANT: Instant = 946_684_800.0
"""2000-01-01T00:00Z: the earliest instant a parameter may name."""
MAX_INSTANT: Instant = 4_102_444_800.0
"""2100-01-01T00:00Z: the latest instant a parameter may name."""
EXAMPLE_NOW: Instant = 1_735_689_600.0
"""2025-01-01T00:00Z: the default ``now`` examples are built around."""
PROFILE_MAX_SPAN_S = 30 * DAY_S
"""The longest range one profile data read may ask for."""
DAILY_LOG_MAX_SPAN_S = 31 * DAY_S
"""The longest range one daily log read may ask for (the device keeps 31 days)."""
MAX_PRICE_PENCE = 1_000.0
MAX_TOU_RATES = 8
MAX_BLOCKS = 4
MAX_MESSAGE_CHARS = 160
EXAMPLE_DEVICE_ID = "00DB1200000000A1"
EXAMPLE_OTHER_DEVICE_ID = "00DB1200000000B2"
EXAMPLE_KEY_ID = "EXAMPLE-SUPPLIER"


class Kind(StrEnum):
    """The type a parameter value must have."""

    INT = "int"  # a Python int (not a bool)
    NUMBER = "number"  # an int or a finite float (not a bool)
    TEXT = "text"
    BOOL = "bool"
    BYTES = "bytes"
    INSTANT = "instant"  # seconds since the epoch, UTC, between MIN_INSTANT and MAX_INSTANT
    CHOICE = "choice"  # one of a fixed set of strings
    LIST = "list"  # a list whose items follow ``Param.item``


class Format(StrEnum):
    """A shape a text value must have."""

    NONE = "none"
    EUI64 = "eui64"  # 16 upper-case hex digits
    UTRN = "utrn"  # 20 digits with a Verhoeff check digit
    MPAN = "mpan"  # 13-digit MPAN core with a valid check digit
    MPXN = "mpxn"  # an MPAN core or an MPRN
    HALF_HOUR = "half_hour"  # "HH:MM" with MM 00 or 30
    ALERT_CODE = "alert_code"  # four upper-case hex digits, or AD1
    VERSION = "version"  # firmware version: letters, digits, '.', '_', '-'


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a service."""

    name: str
    """The key in the parameter map."""
    kind: Kind
    """The type its value must have."""
    doc: str
    """What it means, with its unit."""
    example: Value
    """A valid value; for ``INSTANT`` parameters, an offset in seconds from the example's now."""
    required: bool = True
    """Must be present."""
    minimum: float | None = None
    """Smallest allowed value (numbers, instants)."""
    maximum: float | None = None
    """Largest allowed value (numbers, instants)."""
    min_len: int = 0
    """Shortest allowed length (text, bytes, lists)."""
    max_len: int | None = None
    """Longest allowed length (text, bytes, lists)."""
    choices: tuple[str, ...] = ()
    """Allowed values of a ``CHOICE``."""
    fmt: Format = Format.NONE
    """The shape a ``TEXT`` value must have."""
    item: Param | None = None
    """How each item of a ``LIST`` is checked (its name is used in messages only)."""


Rule = Callable[[Mapping[str, Value]], str | None]
"""A check across parameters, run once every parameter is individually valid."""


@dataclass(frozen=True, slots=True)
class ServiceSchema:
    """The parameters of one device service."""

    params: tuple[Param, ...] = ()
    """Every parameter the service accepts; others are refused."""
    rules: tuple[Rule, ...] = ()
    """Checks that tie parameters together."""

    def names(self) -> frozenset[str]:
        """The accepted parameter names."""
        return frozenset(p.name for p in self.params)

    def required(self) -> frozenset[str]:
        """The parameter names that must be present."""
        return frozenset(p.name for p in self.params if p.required)


# ---------------------------------------------------------------------------- value checks

_EUI64 = re.compile(r"[0-9A-F]{16}")
_HALF_HOUR = re.compile(r"([01][0-9]|2[0-3]):(00|30)")
_ALERT = re.compile(r"[0-9A-F]{4}|AD1")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,31}")


def _mpxn_problem(text: str) -> str | None:
    if len(text) == 13:
        return mpan_problem(text)
    return mprn_problem(text)


_FORMAT_CHECKS: dict[Format, Callable[[str], str | None]] = {
    Format.NONE: lambda _s: None,
    Format.EUI64: lambda s: None if _EUI64.fullmatch(s) else "is not 16 upper-case hex digits",
    Format.UTRN: utrn_problem,
    Format.MPAN: mpan_problem,
    Format.MPXN: _mpxn_problem,
    Format.HALF_HOUR: lambda s: None if _HALF_HOUR.fullmatch(s) else "is not HH:MM on a half hour",
    Format.ALERT_CODE: lambda s: None if _ALERT.fullmatch(s) else "is not an alert code (4 hex)",
    Format.VERSION: lambda s: None if _VERSION.fullmatch(s) else "is not a firmware version",
}


def _number(value: Value) -> float | None:
    """The value as a float if it is an int or a finite float (never a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _type_problem(param: Param, value: Value) -> str | None:
    kind = param.kind
    ok = {
        Kind.INT: isinstance(value, int) and not isinstance(value, bool),
        Kind.NUMBER: _number(value) is not None,
        Kind.TEXT: isinstance(value, str),
        Kind.BOOL: isinstance(value, bool),
        Kind.BYTES: isinstance(value, bytes),
        Kind.INSTANT: _number(value) is not None,
        Kind.CHOICE: isinstance(value, str),
        Kind.LIST: isinstance(value, list),
    }[kind]
    if ok:
        return None
    return f"must be {_KIND_WORDS[kind]}, got {type(value).__name__}"


_KIND_WORDS = {
    Kind.INT: "an integer",
    Kind.NUMBER: "a number",
    Kind.TEXT: "a string",
    Kind.BOOL: "a boolean",
    Kind.BYTES: "bytes",
    Kind.INSTANT: "an instant (seconds since the epoch, UTC)",
    Kind.CHOICE: "a string",
    Kind.LIST: "a list",
}


def _value_problems(param: Param, value: Value, label: str) -> list[str]:
    problem = _type_problem(param, value)
    if problem is not None:
        return [f"{label} {problem}"]
    problems: list[str] = []
    number = _number(value)
    if number is not None and param.kind in (Kind.INT, Kind.NUMBER, Kind.INSTANT):
        low = MIN_INSTANT if param.kind is Kind.INSTANT else param.minimum
        high = MAX_INSTANT if param.kind is Kind.INSTANT else param.maximum
        if low is not None and number < low:
            problems.append(f"{label} is {show(value)}, below the minimum {low:g}")
        if high is not None and number > high:
            problems.append(f"{label} is {show(value)}, above the maximum {high:g}")
    if isinstance(value, str | bytes | list):
        if len(value) < param.min_len:
            problems.append(f"{label} has length {len(value)}, shorter than {param.min_len}")
        if param.max_len is not None and len(value) > param.max_len:
            problems.append(f"{label} has length {len(value)}, longer than {param.max_len}")
    if param.kind is Kind.CHOICE and value not in param.choices:
        problems.append(f"{label} is {show(value)}, not one of {', '.join(param.choices)}")
    if param.kind is Kind.TEXT and isinstance(value, str) and param.fmt is not Format.NONE:
        fmt_problem = _FORMAT_CHECKS[param.fmt](value)
        if fmt_problem is not None:
            problems.append(f"{label} {fmt_problem}")
    if param.kind is Kind.LIST and isinstance(value, list) and param.item is not None:
        for index, item in enumerate(value):
            problems.extend(_value_problems(param.item, item, f"{label}[{index}]"))
    return problems


# ---------------------------------------------------------------------------- param builders


def _int(name: str, low: int, high: int, doc: str, example: int, *, required: bool = True) -> Param:
    return Param(name, Kind.INT, doc, example, required, minimum=low, maximum=high)


def _num(
    name: str, low: float, high: float, doc: str, example: float, *, required: bool = True
) -> Param:
    return Param(name, Kind.NUMBER, doc, example, required, minimum=low, maximum=high)


def _text(
    name: str,
    doc: str,
    example: str,
    *,
    fmt: Format = Format.NONE,
    min_len: int = 1,
    max_len: int | None = None,
    required: bool = True,
) -> Param:
    return Param(name, Kind.TEXT, doc, example, required, min_len=min_len, max_len=max_len, fmt=fmt)


def _choice(
    name: str, choices: tuple[str, ...], doc: str, example: str, *, required: bool = True
) -> Param:
    return Param(name, Kind.CHOICE, doc, example, required, choices=choices)


def _bool(name: str, doc: str, example: bool, *, required: bool = True) -> Param:
    return Param(name, Kind.BOOL, doc, example, required)


def _bytes(name: str, doc: str, example: bytes, *, min_len: int = 1, max_len: int = 2048) -> Param:
    return Param(name, Kind.BYTES, doc, example, True, min_len=min_len, max_len=max_len)


def _instant(name: str, doc: str, offset_s: float, *, required: bool = True) -> Param:
    return Param(name, Kind.INSTANT, doc, offset_s, required)


def _list(
    name: str,
    item: Param,
    doc: str,
    example: list[Value],
    *,
    min_len: int = 0,
    max_len: int,
    required: bool = True,
) -> Param:
    return Param(
        name, Kind.LIST, doc, example, required, min_len=min_len, max_len=max_len, item=item
    )


def _price_item(name: str) -> Param:
    return _num(name, 0.0, MAX_PRICE_PENCE, "price, pence per kWh", 20.0)


# ---------------------------------------------------------------------------- rules


def _numbers(params: Mapping[str, Value], name: str) -> list[float]:
    value = params.get(name)
    if not isinstance(value, list):
        return []
    return [n for n in map(_number, value) if n is not None]


def _span_at_most(max_span_s: float) -> Rule:
    def rule(params: Mapping[str, Value]) -> str | None:
        start, end = _number(params.get("start")), _number(params.get("end"))
        if start is None or end is None:
            return None
        span = end - start
        if span <= 0:
            return "end must be after start"
        if span > max_span_s:
            return f"start to end spans {span / DAY_S:g} days, more than {max_span_s / DAY_S:g}"
        return None

    return rule


def _at_least_one(params: Mapping[str, Value]) -> str | None:
    return None if params else "at least one parameter must be given"


def _tou_starts_match(params: Mapping[str, Value]) -> str | None:
    rates = params.get("tou_rates_pence_per_kwh")
    starts = params.get("tou_starts")
    if not isinstance(rates, list):
        return None
    if starts is None:
        return (
            None if len(rates) == 1 else "tou_starts is required when there is more than one rate"
        )
    if not isinstance(starts, list):
        return None
    if len(starts) != len(rates):
        return f"tou_starts has {len(starts)} times for {len(rates)} rates"
    if len(set(map(str, starts))) != len(starts):
        return "tou_starts must not repeat a time"
    return None


def _blocks_match(params: Mapping[str, Value]) -> str | None:
    has_thresholds = "block_thresholds_kwh" in params
    has_prices = "block_prices_pence_per_kwh" in params
    if has_thresholds != has_prices:
        return "block_thresholds_kwh and block_prices_pence_per_kwh go together"
    thresholds = _numbers(params, "block_thresholds_kwh")
    prices = _numbers(params, "block_prices_pence_per_kwh")
    if has_prices and len(prices) != len(thresholds) + 1:
        return f"{len(thresholds)} block thresholds need {len(thresholds) + 1} block prices"
    if any(b <= a for a, b in itertools.pairwise(thresholds)):
        return "block_thresholds_kwh must be strictly ascending"
    if thresholds and thresholds[0] <= 0:
        return "block_thresholds_kwh must be above zero"
    return None


def _voltage_order(params: Mapping[str, Value]) -> str | None:
    order = ("extreme_under_v", "sag_v", "swell_v", "extreme_over_v")
    values = [(name, _number(params.get(name))) for name in order]
    given = [(name, v) for name, v in values if v is not None]
    for (name_a, a), (name_b, b) in itertools.pairwise(given):
        if not a < b:
            return f"{name_a} ({a:g} V) must be below {name_b} ({b:g} V)"
    return None


def _power_thresholds_order(params: Mapping[str, Value]) -> str | None:
    low, high = _number(params.get("low_medium_w")), _number(params.get("medium_high_w"))
    if low is not None and high is not None and not low < high:
        return "low_medium_w must be below medium_high_w"
    return None


def _md_period_order(params: Mapping[str, Value]) -> str | None:
    if params.get("start_time") == params.get("end_time"):
        return "start_time and end_time must differ"
    return None


def _debt_register_options(params: Mapping[str, Value]) -> str | None:
    register = params.get("debt_register")
    if register == "payment_based" and "recovery_rate_pence_per_day" in params:
        return "recovery_rate_pence_per_day applies to the time_based register only"
    if register == "time_based" and "recovery_percent" in params:
        return "recovery_percent applies to the payment_based register only"
    return None


def _nonzero_adjustment(params: Mapping[str, Value]) -> str | None:
    return "adjustment_pence must not be zero" if params.get("adjustment_pence") == 0 else None


def _distinct_items(name: str) -> Rule:
    def rule(params: Mapping[str, Value]) -> str | None:
        value = params.get(name)
        if isinstance(value, list) and len(set(map(str, value))) != len(value):
            return f"{name} must not repeat an item"
        return None

    return rule


# ---------------------------------------------------------------------------- shared params

_RANGE_PROFILE = (
    _instant("start", "first instant of the range (inclusive)", -2 * DAY_S),
    _instant("end", "end of the range (exclusive); at most 30 days after start", 0.0),
)
_RANGE_DAILY = (
    _instant("start", "first instant of the range (inclusive)", -7 * DAY_S),
    _instant("end", "end of the range (exclusive); at most 31 days after start", 0.0),
)
_TOU_RATES = _list(
    "tou_rates_pence_per_kwh",
    _price_item("rate"),
    "price of each time-of-use rate, pence per kWh (index 0 is rate 1)",
    [28.5, 14.0],
    min_len=1,
    max_len=MAX_TOU_RATES,
)
_TOU_STARTS = _list(
    "tou_starts",
    _text("start", "UK local time a rate starts", "00:00", fmt=Format.HALF_HOUR),
    "UK local time each rate starts (same order as the rates); required with two or more rates",
    ["07:30", "00:30"],
    min_len=1,
    max_len=MAX_TOU_RATES,
    required=False,
)
_STANDING = _num(
    "standing_charge_pence_per_day", 0.0, MAX_PRICE_PENCE, "standing charge, pence per day", 53.0
)
_BLOCK_THRESHOLDS = _list(
    "block_thresholds_kwh",
    _num("threshold", 0.0, 100_000.0, "kWh in a block period where the next block starts", 100.0),
    "block thresholds, kWh per block period, ascending (a block tariff when given)",
    [150.0],
    max_len=MAX_BLOCKS - 1,
    required=False,
)
_BLOCK_PRICES = _list(
    "block_prices_pence_per_kwh",
    _price_item("price"),
    "price in each block, pence per kWh (one more than the thresholds); replaces the TOU price",
    [30.0, 25.0],
    min_len=1,
    max_len=MAX_BLOCKS,
    required=False,
)
_CERTIFICATE = _bytes(
    "certificate",
    "the new credential: for a supplier or network operator its ECDSA P-256 public key as DER "
    "SubjectPublicKeyInfo; otherwise opaque DER bytes",
    bytes.fromhex(
        "3059301306072a8648ce3d020106082a8648ce3d03010703420004f3dc30b64c8c4338cc2970218a1d56"
        "22f2d8fd3306efe6ba0980c7ff9e2f45eba523b0cbcad0e602e2a10be4f55c660de25313b8ce516d5164"
        "c7221d60d8039d"
    ),
    min_len=16,
)
_KEY_ID = _text("key_id", "id of the key the certificate carries", EXAMPLE_KEY_ID, max_len=64)
_OTHER_DEVICE = _text(
    "other_device_id", "EUI-64 of the other HAN device", EXAMPLE_OTHER_DEVICE_ID, fmt=Format.EUI64
)
_SUPPLY_TAMPER = ("unchanged", "disabled", "armed")
_PARTY_ROLES = (
    "supplier",
    "network_operator",
    "access_control_broker",
    "wan_provider",
    "transitional_cos",
    "root",
    "recovery",
)
_CERT_USAGES = ("digital_signing", "key_agreement")

_NONE = ServiceSchema()
_PROFILE = ServiceSchema(_RANGE_PROFILE, (_span_at_most(PROFILE_MAX_SPAN_S),))
_DAILY = ServiceSchema(_RANGE_DAILY, (_span_at_most(DAILY_LOG_MAX_SPAN_S),))
_JOIN = ServiceSchema((_OTHER_DEVICE,))


def _optional(param: Param) -> Param:
    return replace(param, required=False)


# ---------------------------------------------------------------------------- the table

SCHEMAS: Mapping[str, ServiceSchema] = {
    # --- tariffs and prices (Device future-dated: the meter switches at execute_at)
    "1.1.1": ServiceSchema(
        (_STANDING, _TOU_RATES, _TOU_STARTS, _BLOCK_THRESHOLDS, _BLOCK_PRICES),
        (_tou_starts_match, _blocks_match),
    ),
    "1.1.2": ServiceSchema((_STANDING, _TOU_RATES, _TOU_STARTS), (_tou_starts_match,)),
    "1.2.1": ServiceSchema(
        (_optional(_STANDING), _optional(_TOU_RATES), _BLOCK_PRICES), (_at_least_one,)
    ),
    "1.2.2": ServiceSchema((_optional(_STANDING), _optional(_TOU_RATES)), (_at_least_one,)),
    # --- payment
    "1.5": ServiceSchema(
        (_int("adjustment_pence", -100_000, 100_000, "added to the meter balance, pence", 500),),
        (_nonzero_adjustment,),
    ),
    "1.6": ServiceSchema(
        (_choice("payment_mode", ("credit", "prepayment"), "the new payment mode", "prepayment"),)
    ),
    "1.7": _NONE,
    "2.1": ServiceSchema(
        (
            _int(
                "debt_recovery_rate_pence_per_day",
                0,
                10_000,
                "time-debt recovery",
                50,
                required=False,
            ),
            _int(
                "emergency_credit_limit_pence",
                0,
                10_000,
                "emergency credit granted",
                500,
                required=False,
            ),
            _int(
                "emergency_credit_threshold_pence",
                0,
                10_000,
                "credit at or below which emergency credit becomes available",
                300,
                required=False,
            ),
            _int(
                "low_credit_threshold_pence",
                0,
                10_000,
                "low-credit warning level",
                500,
                required=False,
            ),
            _int(
                "disablement_threshold_pence",
                0,
                10_000,
                "the supply is disabled when credit falls below this",
                0,
                required=False,
            ),
            _int(
                "max_credit_pence",
                1,
                99_999,
                "largest single top-up accepted",
                10_000,
                required=False,
            ),
            _int(
                "max_meter_balance_pence",
                1,
                1_000_000,
                "largest meter balance a top-up may reach",
                50_000,
                required=False,
            ),
        ),
        (_at_least_one,),
    ),
    "2.2": ServiceSchema(
        (
            _text(
                "utrn",
                "20-digit top-up code",
                make_utrn(EXAMPLE_DEVICE_ID, 1_000, 1, key=EXAMPLE_KEY_ID),
                fmt=Format.UTRN,
            ),
        )
    ),
    "2.3": ServiceSchema(
        (
            _choice("debt_register", ("time_based", "payment_based"), "which debt", "time_based"),
            _int("adjustment_pence", -1_000_000, 1_000_000, "added to the debt, pence", 2_000),
            _int(
                "recovery_rate_pence_per_day",
                0,
                10_000,
                "time-based recovery, pence per day",
                30,
                required=False,
            ),
            Param(
                "recovery_percent",
                Kind.INT,
                "payment-based recovery, percent of each top-up",
                None,
                required=False,
                minimum=0,
                maximum=100,
            ),
        ),
        (_nonzero_adjustment, _debt_register_options),
    ),
    "2.5": _NONE,
    # --- display and customer
    "3.1": ServiceSchema(
        (
            _text(
                "text",
                "message shown on the meter and in-home display",
                "Your tariff changes on 1 March. Call 0800 000 000 with questions.",
                max_len=MAX_MESSAGE_CHARS,
            ),
        )
    ),
    "3.2": ServiceSchema(
        (
            _instant(
                "change_of_tenancy_at",
                "data before this instant is hidden from the new tenant",
                0.0,
            ),
        )
    ),
    "3.3": _NONE,
    "3.4": ServiceSchema(
        (
            _text(
                "supplier_name", "supplier name shown on the meter", "Example Energy", max_len=20
            ),
            _text(
                "telephone",
                "supplier telephone shown on the meter",
                "0800 000 000",
                max_len=20,
                required=False,
            ),
        )
    ),
    "3.5": _NONE,
    # --- reads
    "4.1.1": _NONE,
    "4.1.2": _NONE,
    "4.1.3": _NONE,
    "4.1.4": _NONE,
    "4.2": _NONE,
    "4.3": _NONE,
    "4.4.2": _NONE,
    "4.4.3": _NONE,
    "4.4.4": _NONE,
    "4.4.5": _NONE,
    "4.6.1": _DAILY,
    "4.6.2": _DAILY,
    "4.8.1": _PROFILE,
    "4.8.2": _PROFILE,
    "4.8.3": _PROFILE,
    "4.10": _NONE,
    "4.11.1": _NONE,
    "4.11.2": _NONE,
    "4.12.1": _NONE,
    "4.12.2": _NONE,
    "4.13": _NONE,
    "4.14": _DAILY,
    "4.15": _NONE,
    "4.16": _NONE,
    "4.17": _DAILY,
    "4.18": _NONE,
    # --- device configuration reads
    "6.2.1": _NONE,
    "6.2.2": _NONE,
    "6.2.3": _NONE,
    "6.2.4": _NONE,
    "6.2.5": _NONE,
    "6.2.7": _NONE,
    "6.2.8": _NONE,
    "6.2.9": _NONE,
    "6.2.10": _NONE,
    # --- device configuration updates
    "6.4.1": ServiceSchema(
        (
            _int("load_limit_w", 100, 100_000, "half-hour average import power limit, W", 7_000),
            _int(
                "restoration_period_s",
                0,
                86_400,
                "how long the supply stays armed after the limit trips",
                600,
                required=False,
            ),
            _bool(
                "disable_supply",
                "arm (open) the supply when the limit is exceeded",
                False,
                required=False,
            ),
        )
    ),
    "6.4.2": _NONE,
    "6.5": ServiceSchema(
        (
            _num(
                "extreme_under_v",
                100.0,
                300.0,
                "extreme under-voltage threshold, V",
                195.5,
                required=False,
            ),
            _num("sag_v", 100.0, 300.0, "voltage sag threshold, V", 207.0, required=False),
            _num("swell_v", 100.0, 300.0, "voltage swell threshold, V", 253.0, required=False),
            _num(
                "extreme_over_v",
                100.0,
                300.0,
                "extreme over-voltage threshold, V",
                264.5,
                required=False,
            ),
        ),
        (_at_least_one, _voltage_order),
    ),
    "6.6": ServiceSchema(
        (
            _num(
                "calorific_value_mj_per_m3",
                30.0,
                50.0,
                "calorific value, MJ per m3",
                39.2,
                required=False,
            ),
            _num(
                "conversion_factor", 0.9, 1.1, "volume conversion factor", 1.02264, required=False
            ),
        ),
        (_at_least_one,),
    ),
    "6.7": ServiceSchema(
        (
            _num(
                "uncontrolled_flow_rate_m3_per_h",
                0.1,
                100.0,
                "flow above this arms (closes) the valve, m3 per hour",
                6.0,
            ),
            _choice(
                "supply_tamper_state",
                _SUPPLY_TAMPER,
                "valve state on tamper",
                "unchanged",
                required=False,
            ),
        )
    ),
    "6.8": ServiceSchema(
        (
            _choice("periodicity", ("daily", "weekly", "monthly"), "billing period", "monthly"),
            _instant("start", "first billing date (at UK local midnight of that day)", DAY_S),
        )
    ),
    "6.11": ServiceSchema((_instant("time", "the UTC time to set the device clock to", 0.0),)),
    "6.12": ServiceSchema(
        (
            _int(
                "low_medium_w", 0, 100_000, "power above which the display shows medium, W", 1_000
            ),
            _int("medium_high_w", 0, 100_000, "power above which the display shows high, W", 3_000),
        ),
        (_power_thresholds_order,),
    ),
    "6.13": ServiceSchema((_choice("log", ("event", "security"), "which log to read", "event"),)),
    "6.15.1": ServiceSchema(
        (
            _choice(
                "party_role",
                _PARTY_ROLES,
                "the remote party whose credential is replaced",
                "supplier",
            ),
            _KEY_ID,
            _CERTIFICATE,
        )
    ),
    "6.15.2": ServiceSchema(
        (
            _choice(
                "usage", _CERT_USAGES, "which of the device's own certificates", "digital_signing"
            ),
            _CERTIFICATE,
        )
    ),
    "6.17": ServiceSchema(
        (_choice("usage", _CERT_USAGES, "which key pair to generate", "digital_signing"),)
    ),
    "6.18.1": ServiceSchema(
        (
            _text(
                "start_time",
                "UK local start of the maximum demand period",
                "16:00",
                fmt=Format.HALF_HOUR,
            ),
            _text(
                "end_time",
                "UK local end of the maximum demand period",
                "19:00",
                fmt=Format.HALF_HOUR,
            ),
        ),
        (_md_period_order,),
    ),
    "6.18.2": _NONE,
    "6.20.1": ServiceSchema(
        (_text("mpxn", "import MPAN core (ESME) or MPRN (GSME)", "1000123456788", fmt=Format.MPXN),)
    ),
    "6.20.2": ServiceSchema((_text("mpan", "export MPAN core", "2300876543219", fmt=Format.MPAN),)),
    "6.21": ServiceSchema((_KEY_ID, _CERTIFICATE)),
    "6.22": ServiceSchema(
        (
            _text("alert_code", "the alert to configure", "8F35", fmt=Format.ALERT_CODE),
            _bool("enabled", "send the alert (False: log it only)", True),
        )
    ),
    "6.23": ServiceSchema(
        (
            _text("supplier_key_id", "key id of the gaining supplier", EXAMPLE_KEY_ID, max_len=64),
            _CERTIFICATE,
        )
    ),
    "6.24.1": _NONE,
    "6.24.2": _NONE,
    "6.25": ServiceSchema(
        (_choice("supply_tamper_state", _SUPPLY_TAMPER, "supply state on tamper", "disabled"),)
    ),
    "6.26": ServiceSchema(
        (_bool("daily_reset", "reset the tariff block counters every UK local midnight", True),)
    ),
    "6.27": _NONE,
    "6.28": ServiceSchema(
        (
            _int("preferred_channel", 0, 26, "preferred sub-GHz channel", 11, required=False),
            _bool(
                "frequency_agility",
                "move channel when the current one is noisy",
                True,
                required=False,
            ),
        ),
        (_at_least_one,),
    ),
    "6.29": _NONE,
    "6.30": _NONE,
    "6.31": _NONE,
    "6.32": _NONE,
    # --- supply
    "7.1": _NONE,
    "7.2": _NONE,
    "7.3": _NONE,
    "7.4": _NONE,
    # --- commissioning, HAN
    "8.1.1": ServiceSchema(
        (
            _text(
                "device_id",
                "EUI-64 of the device commissioned (the target)",
                EXAMPLE_DEVICE_ID,
                fmt=Format.EUI64,
            ),
        )
    ),
    "8.5": _NONE,
    "8.7.1": _JOIN,
    "8.7.2": _JOIN,
    "8.8.1": _JOIN,
    "8.8.2": _JOIN,
    "8.9": _NONE,
    "8.11": ServiceSchema(
        (
            _choice("action", ("add", "remove"), "add the device to the log or remove it", "add"),
            _OTHER_DEVICE,
        )
    ),
    "8.12.1": ServiceSchema(
        (
            _list(
                "device_ids",
                _OTHER_DEVICE,
                "the HAN device log to restore",
                [EXAMPLE_OTHER_DEVICE_ID],
                max_len=16,
            ),
        ),
        (_distinct_items("device_ids"),),
    ),
    "8.12.2": ServiceSchema(
        (
            _list(
                "device_ids",
                _OTHER_DEVICE,
                "the gas proxy device log to restore",
                [EXAMPLE_OTHER_DEVICE_ID],
                max_len=8,
            ),
        ),
        (_distinct_items("device_ids"),),
    ),
    "9.1": _NONE,
    "11.2": _NONE,
    "11.3": ServiceSchema(
        (
            _text(
                "version",
                "the firmware version to activate (already transferred)",
                "2.1.0",
                fmt=Format.VERSION,
            ),
            Param(
                "activate_at",
                Kind.INSTANT,
                "when to activate; the same as future dating the command",
                None,
                required=False,
            ),
        )
    ),
    "14.1": _NONE,
}
"""Every in-scope device service's parameter schema, by service code."""

EXAMPLE_MPXN = "1000123456788"
"""A well-formed MPAN core (its check digit holds) for examples."""

HUB_SCHEMAS: Mapping[str, ServiceSchema] = {
    "8.2": ServiceSchema(
        (
            _text(
                "mpxn",
                "a meter point (MPAN core or MPRN): read the site of the meter there, with "
                "device_id nil (device discovery); leave it out when device_id names the target",
                EXAMPLE_MPXN,
                fmt=Format.MPXN,
                required=False,
            ),
        )
    ),
}
"""The parameter schemas of the non-device services the hub answers from its registers and
that take parameters, by service code (``hub.flows.inventory_service`` checks them)."""


def schema_for(service_code: str) -> ServiceSchema | None:
    """The parameter schema of a device service, or None (unknown, non-device, out of scope)."""
    return SCHEMAS.get(service_code)


_INVENTORY_TEXT = 32
INVENTORY_SCHEMAS: dict[str, ServiceSchema] = {
    "12.2": ServiceSchema(
        (
            _text(
                "device_id",
                "EUI-64 of the device pre-notified",
                EXAMPLE_OTHER_DEVICE_ID,
                fmt=Format.EUI64,
            ),
            _choice(
                "device_type",
                ("ESME", "GSME", "CHF", "GPF", "PPMID", "IHD"),
                "the device's type",
                "ESME",
            ),
            _text(
                "manufacturer",
                "its manufacturer (approved products list)",
                "Acme",
                max_len=_INVENTORY_TEXT,
            ),
            _text("model", "its model (approved products list)", "E2", max_len=_INVENTORY_TEXT),
            _text("firmware", "its firmware version", "1.0.0", fmt=Format.VERSION),
            _text(
                "mpxn",
                "the meter point the installation is for (the sender supplies it today); a "
                "meter (ESME, GSME) meters it",
                "1200000000011",
                fmt=Format.MPXN,
            ),
            _text("site_id", "the premises", "S000001", max_len=_INVENTORY_TEXT),
            _choice(
                "region",
                ("North", "Central", "South"),
                "WAN region of a new premises (with its comms hub)",
                "North",
                required=False,
            ),
            _text(
                "cell",
                "WAN cell of a new premises (with its comms hub)",
                "N-001",
                max_len=_INVENTORY_TEXT,
                required=False,
            ),
        )
    ),
    "8.3": _NONE,
    "8.4": ServiceSchema(
        (
            _text(
                "firmware",
                "corrected firmware version",
                "1.0.1",
                fmt=Format.VERSION,
                required=False,
            ),
            _text(
                "manufacturer",
                "corrected manufacturer",
                "Acme",
                max_len=_INVENTORY_TEXT,
                required=False,
            ),
            _text(
                "model",
                "corrected model (approved products list)",
                "E2",
                max_len=_INVENTORY_TEXT,
                required=False,
            ),
        ),
        (_at_least_one,),
    ),
    "8.6": _NONE,
    "8.14.1": _NONE,
    "8.14.2": _NONE,
    "8.14.3": _NONE,
    "8.14.4": _NONE,
}
"""The parameters of the non-device inventory services the hub carries out itself
(``hub.flows.inventory_changes``), checked the same way as device services' ones."""


def validate_inventory_params(service_code: str, params: Mapping[str, Value]) -> list[str]:
    """Every problem with ``params`` for a non-device inventory service (see
    ``validate_params``)."""
    return _validate(INVENTORY_SCHEMAS[service_code], service_code, params)


def validate_params(service_code: str, params: Mapping[str, Value]) -> list[str]:
    """Every problem with ``params`` for ``service_code`` (a device service, or one of
    ``HUB_SCHEMAS``); an empty list means valid.

    Unknown names, missing required names, wrong types, out-of-range values, bad lengths and
    formats are each reported; rules across parameters run once each value is valid.
    """
    schema = SCHEMAS.get(service_code) or HUB_SCHEMAS.get(service_code)
    if schema is None:
        service = CATALOGUE.get(service_code)
        if service is None:
            return [f"unknown service {show(service_code)}"]
        return [f"service {service_code} has no device parameters (non-device or out of scope)"]
    return _validate(schema, service_code, params)


def _validate(schema: ServiceSchema, service_code: str, params: Mapping[str, Value]) -> list[str]:
    if not isinstance(params, Mapping):
        return [f"parameters must be a map, got {type(params).__name__}"]
    problems: list[str] = []
    by_name = {p.name: p for p in schema.params}
    for name in params:
        if not isinstance(name, str) or name not in by_name:
            accepted = ", ".join(sorted(by_name)) or "none"
            problems.append(
                f"unknown parameter {show(name)} for {service_code} (accepted: {accepted})"
            )
    for param in schema.params:
        if param.name not in params:
            if param.required:
                problems.append(f"missing required parameter {param.name!r}")
            continue
        problems.extend(_value_problems(param, params[param.name], param.name))
    if problems:
        return problems
    return [p for p in (rule(params) for rule in schema.rules) if p is not None]


def example_params(service_code: str, now: Instant = EXAMPLE_NOW) -> dict[str, Value]:
    """A valid parameter map for ``service_code`` (a device service, or one of
    ``HUB_SCHEMAS``); instants are placed around ``now``.

    Optional parameters without an example are left out. ``KeyError`` for a service without
    a schema.
    """
    schema = SCHEMAS.get(service_code) or HUB_SCHEMAS[service_code]
    example: dict[str, Value] = {}
    for param in schema.params:
        if param.example is None:
            continue
        if param.kind is Kind.INSTANT:
            example[param.name] = now + (_number(param.example) or 0.0)
        else:
            example[param.name] = param.example
    return example

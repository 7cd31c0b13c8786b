"""Simulated smart metering devices: every service runs, and the meters behave like meters."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hub.reference.catalogue import CATALOGUE, FutureDated
from hub.reference.roles import DeviceType
from hub.reference.service_params import example_params
from hub.reference.standard import CommandStatus, DeviceAlert, DeviceCommand, DeviceResponse, Value
from hub.reference.utrn import make_utrn
from hub.registers.records import PaymentMode
from sdk.signing import SigningKey
from simfield.devices import (
    SLOT_S,
    DeviceUnreachableError,
    Layout,
    Premises,
    SupplyState,
    UnknownDeviceError,
)

INSTALL = datetime(2025, 1, 20, tzinfo=UTC).timestamp()
NOW = INSTALL + 14 * 86_400.0  # 3 Feb 2025: past the first billing date (1 Feb)
HOUR = 3_600.0
DAY = 86_400.0
SUPPLIER = "SUPPLIER"
NETWORK = "NETWORK"
KEYS = {
    party: SigningKey(ec.derive_private_key(secret, ec.SECP256R1()))
    for party, secret in [
        (SUPPLIER, 0x5151),
        (NETWORK, 0x4E4E),
        ("GAINER", 0x6A6A),
        ("INTRUDER", 0x1D1D),
    ]
}
"""Fixed signing keys; the sites' devices hold the supplier's and the network operator's."""
E, G = DeviceType.ESME, DeviceType.GSME
_ids = itertools.count()


def make_site(seed: int = 7, **options: object) -> Premises:
    """A dual-fuel prepayment site installed at INSTALL with £200 credit on each meter."""
    held = {p: KEYS[p].public_key for p in (SUPPLIER, NETWORK)}
    settings: dict[str, object] = {"credit_pence": 20_000, "keys": held, **options}
    return Premises("SITE-1", seed, INSTALL, **settings)  # type: ignore[arg-type]


def command(
    site: Premises,
    device_type: DeviceType,
    service: str,
    params: Mapping[str, Value] | None = None,
    *,
    now: float = NOW,
    execute_at: float | None = None,
    key: str | None = None,
    signature: bytes | None = None,
) -> DeviceCommand:
    """A command to the site's device, signed if critical with ``key``'s party key (default:
    the party the device knows as its supplier)."""
    device_id = site.device_ids[device_type]
    values = dict(example_params(service, now) if params is None else params)
    if signature is None:
        signer = KEYS[key or site.device(device_id).supplier_key_id]
        known = CATALOGUE.get(service)
        critical = known is not None and known.critical
        signature = signer.sign(service, device_id, values) if critical else b""
    return DeviceCommand(
        command_id=f"cmd-{next(_ids)}",
        service=service,
        device_id=device_id,
        params=values,
        execute_at=execute_at,
        signature=signature,
    )


def send(
    site: Premises,
    device_type: DeviceType,
    service: str,
    params: Mapping[str, Value] | None = None,
    *,
    now: float = NOW,
    **options: object,
) -> tuple[DeviceResponse, list[DeviceAlert]]:
    """Execute a command at ``now``."""
    cmd = command(site, device_type, service, params, now=now, **options)  # type: ignore[arg-type]
    return site.execute(cmd, now)


def ok(
    site: Premises,
    device_type: DeviceType,
    service: str,
    params: Mapping[str, Value] | None = None,
    *,
    now: float = NOW,
) -> Mapping[str, Value]:
    """Execute a command that must succeed; its body."""
    response, _ = send(site, device_type, service, params, now=now)
    assert response.status is CommandStatus.SUCCESS, response.reason
    return response.body


def codes(alerts: list[DeviceAlert]) -> list[str]:
    return [a.alert_code for a in alerts]


def utrn(
    site: Premises, device_type: DeviceType, pence: int, counter: int, key: str = SUPPLIER
) -> str:
    return make_utrn(site.device_ids[device_type], pence, counter, key=key)


def num(value: Value) -> float:
    assert isinstance(value, int | float)
    return float(value)


@pytest.fixture(scope="module")
def settled() -> Premises:
    site = make_site()
    site.advance(NOW)
    return site


@pytest.fixture
def site(settled: Premises) -> Premises:
    return copy.deepcopy(settled)


# ---------------------------------------------------------------------------- every service

SITE_TYPES = frozenset(make_site().device_ids)
CASES = [
    (s.code, t)
    for s in CATALOGUE.values()
    if s.in_scope and not s.non_device
    for t in sorted(s.device_types & SITE_TYPES)
]

Prepare = Callable[[Premises, DeviceType], None]


def _run(*steps: tuple[str, Mapping[str, Value] | None]) -> Prepare:
    def prepare(site: Premises, device_type: DeviceType) -> None:
        for service, params in steps:
            ok(site, device_type, service, params or _params(site, device_type, service))

    return prepare


def _deliver_image(site: Premises, device_type: DeviceType) -> None:
    site.deliver_firmware(site.device_ids[device_type], "2.1.0", NOW)


def _change_channel(site: Premises, device_type: DeviceType) -> None:
    ok(site, device_type, "6.28", {"preferred_channel": (site.chf.channel + 1) % 27})


def _nothing(site: Premises, device_type: DeviceType) -> None:
    """No preparation needed."""


def _log_something(site: Premises, device_type: DeviceType) -> None:
    if device_type in (DeviceType.CHF, DeviceType.GPF):  # meters have logged billing already
        ok(site, device_type, "8.11", {"action": "add", "other_device_id": "00DB12000000FFFF"})


PREPARE: dict[str, Prepare] = {
    "1.2.1": _run(("1.1.1", None)),  # the example prices fit the example tariff's shape
    "1.2.2": _run(("1.1.2", None)),
    "2.5": _run(
        ("2.1", {"emergency_credit_threshold_pence": 10_000}),
        ("1.5", {"adjustment_pence": -12_000}),
    ),
    "4.4.2": _run(("1.1.1", None)),
    "4.4.4": _run(
        (
            "2.3",
            {"debt_register": "payment_based", "adjustment_pence": 1_000, "recovery_percent": 20},
        ),
        ("2.2", None),
    ),
    "4.4.5": _run(("2.2", None)),
    "6.13": _log_something,
    "6.15.2": _run(("6.17", {"usage": "digital_signing"})),
    "6.32": _change_channel,
    "7.3": _run(("7.2", None)),
    "11.3": _deliver_image,
}
"""What must happen before a service can succeed (state a real user would have set up)."""


def _params(site: Premises, device_type: DeviceType, service: str) -> dict[str, Value]:
    params = example_params(service, NOW)
    device_id = site.device_ids[device_type]
    if service == "2.2":
        params["utrn"] = make_utrn(device_id, 1_000, 1, key=SUPPLIER)
    elif service == "8.1.1":
        params["device_id"] = device_id
    elif service == "6.20.1" and device_type is G:
        params["mpxn"] = "1234567"
    return params


def _meaningful(body: Mapping[str, Value]) -> bool:
    if not body or all(v in (None, [], {}, "") for v in body.values()):
        return False
    listed = ("entries", "values", "devices", "gas_days", "noise_dbm")
    return all(body[k] != [] for k in listed if k in body)


@pytest.mark.parametrize(
    ("service", "device_type"), CASES, ids=lambda v: str(getattr(v, "value", v))
)
def test_every_in_scope_device_service_succeeds_at_a_dual_fuel_prepayment_site(
    site: Premises, service: str, device_type: DeviceType
) -> None:
    PREPARE.get(service, _nothing)(site, device_type)
    response, _ = send(site, device_type, service, _params(site, device_type, service))
    assert response.status is CommandStatus.SUCCESS, response.reason
    assert _meaningful(response.body), response.body
    if CATALOGUE[service].read_only:
        assert response.device_id == site.device_ids[device_type]


DEVICE_PATTERN = [
    (code, t)
    for code, t in CASES
    if CATALOGUE[code].future_dated in (FutureDated.DEVICE, FutureDated.DSP_AND_DEVICE)
]


@pytest.mark.parametrize(
    ("service", "device_type"), DEVICE_PATTERN, ids=lambda v: str(getattr(v, "value", v))
)
def test_device_future_dated_services_answer_scheduled_then_raise_8f66(
    site: Premises, service: str, device_type: DeviceType
) -> None:
    PREPARE.get(service, _nothing)(site, device_type)
    at = NOW + HOUR
    cmd = command(site, device_type, service, _params(site, device_type, service), execute_at=at)
    response, _ = site.execute(cmd, NOW)
    assert response.status is CommandStatus.SCHEDULED
    assert response.body["execute_at"] == at
    assert not [a for a in site.advance(at - 1) if a.alert_code in ("8F66", "8F67")]
    done = [a for a in site.advance(at + HOUR) if a.alert_code in ("8F66", "8F67")]
    assert [(a.alert_code, a.raised_at, a.data["command_id"]) for a in done] == [
        ("8F66", at, cmd.command_id)
    ]


# ---------------------------------------------------------------------------- registers


def test_registers_advance_with_time(site: Premises) -> None:
    first_e, first_g = ok(site, E, "4.1.1"), ok(site, G, "4.1.1")
    later = NOW + DAY
    second_e, second_g = ok(site, E, "4.1.1", now=later), ok(site, G, "4.1.1", now=later)
    assert num(second_e["import_wh"]) > num(first_e["import_wh"])
    assert num(second_e["reactive_import_varh"]) >= num(first_e["reactive_import_varh"])
    assert num(second_g["volume_m3"]) > num(first_g["volume_m3"])
    assert num(ok(site, E, "4.2", now=later)["export_wh"]) >= 0


def test_a_read_later_never_shows_smaller_registers(site: Premises) -> None:
    previous = 0.0
    for step in range(40):
        now = NOW + step * 731.0  # not on half-hour boundaries
        value = num(ok(site, E, "4.1.1", now=now)["import_wh"])
        assert value >= previous
        previous = value


def test_profile_data_sums_to_the_register_movement(site: Premises) -> None:
    start, end = NOW, NOW + 2 * DAY
    before = num(ok(site, E, "4.1.1", now=start)["import_wh"])
    gas_before = num(ok(site, G, "4.1.1", now=start)["volume_m3"])
    after = num(ok(site, E, "4.1.1", now=end)["import_wh"])
    gas_after = num(ok(site, G, "4.1.1", now=end)["volume_m3"])
    profile = ok(site, E, "4.8.1", {"start": start, "end": end}, now=end)
    values = profile["values"]
    assert isinstance(values, list)
    assert len(values) == 96
    assert profile["interval_s"] == SLOT_S
    assert sum(map(num, values)) == after - before
    gas = ok(site, G, "4.8.1", {"start": start, "end": end}, now=end)["values"]
    assert isinstance(gas, list)
    assert math.isclose(sum(map(num, gas)), gas_after - gas_before, abs_tol=0.001 * len(gas))


def test_daily_reads_and_daily_consumption_agree(site: Premises) -> None:
    reads = ok(site, E, "4.6.1", {"start": NOW - 7 * DAY, "end": NOW + 1})["entries"]
    used = ok(site, E, "4.17", {"start": NOW - 7 * DAY, "end": NOW})["entries"]
    assert isinstance(reads, list)
    assert isinstance(used, list)
    values = [num(r["import"]) for r in reads if isinstance(r, dict)]
    assert len(values) == 8
    assert [num(u["consumption"]) for u in used if isinstance(u, dict)] == [
        b - a for a, b in itertools.pairwise(values)
    ]


def test_the_gas_meter_reports_as_of_its_last_half_hourly_wake_up(site: Premises) -> None:
    now = NOW + 1_000.0
    body = ok(site, G, "4.1.1", now=now)
    assert body["as_of"] == NOW
    assert ok(site, G, "4.1.1", now=NOW + SLOT_S)["as_of"] == NOW + SLOT_S


def test_the_same_seed_gives_the_same_readings_however_often_it_is_advanced() -> None:
    once, often, other = make_site(seed=11), make_site(seed=11), make_site(seed=12)
    once.advance(NOW)
    for step in range(1, 14 * 24 + 1):
        often.advance(INSTALL + step * HOUR)
    other.advance(NOW)
    reads = ("4.1.1", "4.3", "4.12.1", "4.1.2")
    for service in reads:
        assert ok(once, E, service) == ok(often, E, service)
        assert ok(once, G, service if service != "4.12.1" else "4.18") == ok(
            often, G, service if service != "4.12.1" else "4.18"
        )
    assert ok(once, E, "4.1.1") != ok(other, E, "4.1.1")
    assert once.device_ids == often.device_ids != other.device_ids


# ---------------------------------------------------------------------------- prepayment


def test_a_top_up_to_a_meter_in_credit_mode_is_rejected() -> None:
    site = make_site(payment_mode=PaymentMode.CREDIT)
    response, alerts = send(site, E, "2.2", {"utrn": utrn(site, E, 1_000, 1)})
    assert response.status is CommandStatus.REJECTED
    assert "credit mode" in response.reason
    assert "8F51" not in codes(alerts)


def test_a_top_up_adds_credit_once_and_a_duplicate_utrn_raises_8f51(site: Premises) -> None:
    before = num(ok(site, E, "4.18")["meter_balance_pence"])
    code = utrn(site, E, 1_000, 1)
    first = ok(site, E, "2.2", {"utrn": code})
    assert num(first["credit_pence"]) == before + 1_000
    response, alerts = send(site, E, "2.2", {"utrn": code})
    assert response.status is CommandStatus.REJECTED
    assert codes(alerts) == ["8F51"]
    assert num(ok(site, E, "4.18")["meter_balance_pence"]) == before + 1_000
    credits = ok(site, E, "4.4.5")["entries"]
    assert isinstance(credits, list)
    assert len(credits) == 1


@pytest.mark.parametrize(
    ("make_code", "alert"),
    [
        (lambda s: utrn(s, G, 1_000, 1), "8F64"),  # minted for the gas meter
        (lambda s: utrn(s, E, 1_000, 1, key="SOMEONE-ELSE"), "8F63"),
        (lambda s: utrn(s, E, 30_000, 1), "8F5B"),  # over the 250.00 maximum credit
    ],
)
def test_a_bad_utrn_is_rejected_with_its_alert(
    site: Premises, make_code: Callable[[Premises], str], alert: str
) -> None:
    response, alerts = send(site, E, "2.2", {"utrn": make_code(site)})
    assert response.status is CommandStatus.REJECTED
    assert codes(alerts) == [alert]


def test_an_old_utrn_counter_is_a_duplicate_once_five_newer_codes_were_used(site: Premises) -> None:
    for counter in range(10, 15):
        ok(site, E, "2.2", {"utrn": utrn(site, E, 100, counter)})
    response, alerts = send(site, E, "2.2", {"utrn": utrn(site, E, 100, 3)})
    assert response.status is CommandStatus.REJECTED
    assert codes(alerts) == ["8F51"]


def test_credit_drains_to_low_credit_then_disablement_and_the_supply_is_disabled() -> None:
    site = make_site(credit_pence=1_000)
    alerts = site.advance(INSTALL + 30 * DAY)
    esme_codes = [a.alert_code for a in alerts if a.device_id == site.device_ids[E]]
    assert {"810D", "8119", "8F0F"} <= set(esme_codes)
    assert esme_codes.index("810D") < esme_codes.index("8F0F")
    assert esme_codes.count("8F0F") == 1
    status = ok(site, E, "7.4", now=INSTALL + 30 * DAY)
    assert status == {"supply_state": "disabled", "cause": "credit"}
    disabled_at = next(
        a.raised_at for a in alerts if a.alert_code == "8F0F" and a.device_id == site.device_ids[E]
    )
    register = ok(site, E, "4.1.1", now=disabled_at + SLOT_S)["import_wh"]
    assert ok(site, E, "4.1.1", now=INSTALL + 30 * DAY)["import_wh"] == register


def test_a_top_up_after_disablement_arms_the_supply_for_the_consumer_to_enable() -> None:
    site = make_site(credit_pence=1_000)
    now = INSTALL + 30 * DAY
    site.advance(now)
    body = ok(site, E, "2.2", {"utrn": utrn(site, E, 5_000, 1)}, now=now)
    assert body["supply_state"] == "armed"
    enabled, _ = site.consumer_enable(now + 60)
    assert enabled
    assert site.meter(E).supply is SupplyState.ENABLED


def test_emergency_credit_keeps_the_supply_on_until_it_is_exhausted() -> None:
    site = make_site(credit_pence=1_000)
    alerts = site.advance(INSTALL + 30 * DAY)
    available_at = next(
        a.raised_at for a in alerts if a.alert_code == "8119" and a.device_id == site.device_ids[E]
    )
    fresh = make_site(credit_pence=1_000)
    fresh.advance(available_at)
    body = ok(fresh, E, "2.5", now=available_at)
    assert body["emergency_credit_pence"] == 500.0
    later = fresh.advance(INSTALL + 30 * DAY)
    esme = [a.alert_code for a in later if a.device_id == fresh.device_ids[E]]
    assert esme.index("81AA") < esme.index("8F0F")


def test_payment_based_debt_is_recovered_from_top_ups(site: Premises) -> None:
    ok(
        site,
        E,
        "2.3",
        {"debt_register": "payment_based", "adjustment_pence": 300, "recovery_percent": 50},
    )
    ok(site, E, "2.2", {"utrn": utrn(site, E, 400, 1)})
    ok(site, E, "2.2", {"utrn": utrn(site, E, 400, 2)})
    body = ok(site, E, "4.4.4")
    assert body["payment_debt_pence"] == 0
    payments = body["entries"]
    assert isinstance(payments, list)
    assert [num(p["amount_pence"]) for p in payments if isinstance(p, dict)] == [200, 100]


# ---------------------------------------------------------------------------- future dating


def test_a_future_dated_tariff_update_is_scheduled_then_applied_at_its_time(site: Premises) -> None:
    at = NOW + 2 * DAY
    new_tariff: dict[str, Value] = {
        "standing_charge_pence_per_day": 45.0,
        "tou_rates_pence_per_kwh": [30.0, 12.0],
        "tou_starts": ["07:00", "00:00"],
    }
    response, _ = site.execute(command(site, E, "1.1.1", new_tariff, execute_at=at), NOW)
    assert response.status is CommandStatus.SCHEDULED
    assert ok(site, E, "4.11.1", now=at - HOUR)["tariff"] != {**new_tariff}
    alerts = site.advance(at + HOUR)
    actioned = [a for a in alerts if a.alert_code == "8F66"]
    assert [(a.device_id, a.raised_at) for a in actioned] == [(site.device_ids[E], at)]
    tariff = ok(site, E, "4.11.1", now=at + HOUR)["tariff"]
    assert isinstance(tariff, dict)
    assert tariff["tou_rates_pence_per_kwh"] == [30.0, 12.0]


def test_a_future_dated_command_that_cannot_be_carried_out_raises_8f67(site: Premises) -> None:
    at = NOW + HOUR
    response, _ = site.execute(command(site, E, "11.3", {"version": "9.9.9"}, execute_at=at), NOW)
    assert response.status is CommandStatus.SCHEDULED
    failed = [a for a in site.advance(at) if a.alert_code == "8F67"]
    assert len(failed) == 1
    assert "no image of version 9.9.9" in str(failed[0].data["reason"])


def test_a_service_without_the_device_pattern_cannot_be_future_dated_on_the_device(
    site: Premises,
) -> None:
    response, _ = site.execute(command(site, E, "4.1.1", {}, execute_at=NOW + HOUR), NOW)
    assert response.status is CommandStatus.REJECTED
    assert "cannot be future dated" in response.reason


# ---------------------------------------------------------------------------- injected events


def test_a_power_outage_over_three_minutes_raises_ad1_and_restoration_8f36(site: Premises) -> None:
    assert site.power_outage(NOW) == []
    alerts = site.advance(NOW + 200)
    assert [(a.alert_code, a.device_id, a.raised_at) for a in alerts] == [
        ("AD1", site.device_ids[DeviceType.CHF], NOW + 180)
    ]
    with pytest.raises(DeviceUnreachableError):
        site.execute(command(site, E, "4.1.1", {}), NOW + 300)
    restored = site.power_restored(NOW + HOUR)
    assert ("8F36", site.device_ids[E]) in [(a.alert_code, a.device_id) for a in restored]
    assert "AD1" not in codes(restored)


def test_a_short_outage_raises_only_8f35(site: Premises) -> None:
    site.power_outage(NOW)
    assert site.advance(NOW + 100) == []
    assert codes(site.power_restored(NOW + 120)) == ["8F35"]


def test_ad1_is_raised_at_restoration_if_nobody_advanced_the_site_during_the_outage(
    site: Premises,
) -> None:
    site.power_outage(NOW)
    restored = site.power_restored(NOW + 600)
    assert codes(restored)[:2] == ["AD1", "8F36"]


def test_electricity_stops_during_an_outage_and_alerts_wait_for_power(site: Premises) -> None:
    before = ok(site, E, "4.1.1")["import_wh"]
    site.power_outage(NOW)
    site.advance(NOW + 2 * HOUR)
    held = site.set_voltage(200.0, NOW + 2 * HOUR)  # no measurement without power
    assert held == []
    restored = site.power_restored(NOW + 3 * HOUR)
    assert ok(site, E, "4.1.1", now=NOW + 3 * HOUR)["import_wh"] == before
    assert "8F36" in codes(restored)


def test_voltage_excursions_raise_their_threshold_alerts_once_per_crossing(site: Premises) -> None:
    assert codes(site.set_voltage(205.0, NOW)) == ["8099"]
    assert site.set_voltage(204.0, NOW + 60) == []
    assert codes(site.set_voltage(190.0, NOW + 120)) == ["8095"]
    assert site.set_voltage(240.0, NOW + 180) == []
    assert codes(site.set_voltage(255.0, NOW + 240)) == ["8091"]
    assert codes(site.set_voltage(270.0, NOW + 300)) == ["808D"]
    assert codes(site.set_voltage(200.0, NOW + 360)) == ["8099"]
    network = ok(site, E, "4.10", now=NOW + 400)
    assert network["threshold_counts"] == {
        "sag": 2,
        "extreme_under": 1,
        "swell": 1,
        "extreme_over": 1,
    }
    assert network["min_rms_voltage_v"] == 190.0


def test_voltage_thresholds_follow_the_device_configuration(site: Premises) -> None:
    ok(site, E, "6.5", {"sag_v": 220.0})
    assert codes(site.set_voltage(215.0, NOW + 60)) == ["8099"]
    response, _ = send(site, E, "6.5", {"sag_v": 260.0})
    assert response.status is CommandStatus.REJECTED


def test_an_alert_turned_off_is_logged_but_not_sent(site: Premises) -> None:
    ok(site, E, "6.22", {"alert_code": "8099", "enabled": False})
    assert site.set_voltage(200.0, NOW + 60) == []
    log = ok(site, E, "6.13", {"log": "event"}, now=NOW + 120)["entries"]
    assert isinstance(log, list)
    assert any(isinstance(e, dict) and e["code"] == "8099" for e in log)


def test_tamper_raises_8f3f_and_applies_the_supply_tamper_state(site: Premises) -> None:
    assert codes(site.tamper(NOW)) == ["8F3F"]
    assert site.meter(E).supply is SupplyState.ENABLED
    ok(site, E, "6.25", {"supply_tamper_state": "disabled"})
    assert codes(site.tamper(NOW + 60)) == ["8F3F", "81BE"]
    assert ok(site, E, "7.4", now=NOW + 120) == {"supply_state": "disabled", "cause": "tamper"}


def test_the_load_limit_arms_the_supply_and_restores_it(site: Premises) -> None:
    ok(
        site,
        E,
        "6.4.1",
        {"load_limit_w": 100, "restoration_period_s": 1_800, "disable_supply": True},
    )
    alerts = site.advance(NOW + 2 * HOUR)
    assert codes(alerts)[:2] == ["8F01", "8F33"]
    assert "8F34" in codes(alerts)
    assert num(ok(site, E, "4.15", now=NOW + 2 * HOUR)["exceeded_count"]) >= 1


def test_firmware_is_transferred_then_activated(site: Premises) -> None:
    esme_id = site.device_ids[E]
    assert codes(site.deliver_firmware(esme_id, "3.0.1", NOW)) == ["8F8A"]
    assert ok(site, E, "11.2")["pending_image"] == "3.0.1"
    assert ok(site, E, "11.3", {"version": "3.0.1"})["previous_version"] == "1.0.0"
    assert ok(site, E, "11.2") == {"firmware_version": "3.0.1", "pending_image": None}


def test_the_comms_hub_device_log_changes_raise_8f12(site: Premises) -> None:
    other = "00DB12000000FFFF"
    response, alerts = send(
        site, DeviceType.CHF, "8.11", {"action": "add", "other_device_id": other}
    )
    assert response.status is CommandStatus.SUCCESS
    assert codes(alerts) == ["8F12"]
    devices = ok(site, DeviceType.CHF, "8.9")["devices"]
    assert isinstance(devices, list)
    assert other in devices
    missing = {"action": "remove", "other_device_id": "00DB12000000EEEE"}
    assert send(site, DeviceType.CHF, "8.11", missing)[0].status is CommandStatus.REJECTED


# ---------------------------------------------------------------------------- refusals


def test_an_unsigned_critical_command_is_rejected_and_raises_8f3e(site: Premises) -> None:
    response, alerts = send(site, E, "7.2", {}, signature=b"")
    assert response.status is CommandStatus.REJECTED
    assert "not signed" in response.reason
    assert codes(alerts) == ["8F3E"]
    assert site.meter(E).supply is SupplyState.ENABLED


def test_a_non_critical_command_needs_no_signature(site: Premises) -> None:
    response, _ = send(site, E, "4.1.1", {}, signature=b"")
    assert response.status is CommandStatus.SUCCESS


def test_another_partys_signature_is_rejected_with_8f3e(site: Premises) -> None:
    response, alerts = send(site, E, "7.2", {}, key="INTRUDER")
    assert response.status is CommandStatus.REJECTED
    assert "does not verify" in response.reason
    assert codes(alerts) == ["8F3E"]
    assert site.meter(E).supply is SupplyState.ENABLED


def test_a_signature_over_other_parameters_is_rejected(site: Premises) -> None:
    device_id = site.device_ids[E]
    other = KEYS[SUPPLIER].sign("1.6", device_id, {"payment_mode": "credit"})
    response, alerts = send(site, E, "1.6", {"payment_mode": "prepayment"}, signature=other)
    assert response.status is CommandStatus.REJECTED
    assert codes(alerts) == ["8F3E"]


def test_a_malformed_signature_is_rejected_with_8f3e(site: Premises) -> None:
    for bad in (b"opaque", b"\x00" * 64, b"\x01" * 63):
        response, alerts = send(site, E, "7.2", {}, signature=bad)
        assert response.status is CommandStatus.REJECTED
        assert codes(alerts) == ["8F3E"]


def test_the_supplier_signature_is_accepted_and_the_command_runs(site: Premises) -> None:
    response, alerts = send(site, E, "7.2", {}, key=SUPPLIER)
    assert response.status is CommandStatus.SUCCESS, response.reason
    assert "8F3E" not in codes(alerts)
    assert site.meter(E).supply is not SupplyState.ENABLED


def test_the_network_operator_signs_its_own_credential_update(site: Premises) -> None:
    new_key = KEYS["GAINER"].public_der()
    params: dict[str, Value] = {
        "party_role": "network_operator",
        "key_id": "GAINER",
        "certificate": new_key,
    }
    response, _ = send(site, E, "6.15.1", params, key=NETWORK)
    assert response.status is CommandStatus.SUCCESS, response.reason


def test_a_device_holding_no_key_verifies_no_critical_command() -> None:
    bare = make_site(keys={})
    response, alerts = send(bare, E, "7.2", {})
    assert response.status is CommandStatus.REJECTED
    assert "no trust anchor" in response.reason
    assert "8F3E" in codes(alerts)


def test_change_of_supplier_credentials_replace_the_key_the_device_trusts(site: Premises) -> None:
    ok(site, E, "6.23", {"supplier_key_id": "GAINER", "certificate": KEYS["GAINER"].public_der()})
    refused, alerts = send(site, E, "7.2", {}, key=SUPPLIER)
    assert refused.status is CommandStatus.REJECTED
    assert codes(alerts) == ["8F3E"]
    assert send(site, E, "7.2", {}, key="GAINER")[0].status is CommandStatus.SUCCESS
    old_code = send(site, E, "2.2", {"utrn": utrn(site, E, 500, 1)})
    assert codes(old_code[1]) == ["8F63"]
    assert ok(site, E, "2.2", {"utrn": utrn(site, E, 500, 1, key="GAINER")})["amount_pence"] == 500


def test_a_supplier_credential_update_replaces_the_supplier_key(site: Premises) -> None:
    params: dict[str, Value] = {
        "party_role": "supplier",
        "key_id": "GAINER",
        "certificate": KEYS["GAINER"].public_der(),
    }
    ok(site, E, "6.15.1", params)
    assert send(site, E, "7.2", {}, key=SUPPLIER)[0].status is CommandStatus.REJECTED
    assert send(site, E, "7.2", {}, key="GAINER")[0].status is CommandStatus.SUCCESS


def test_a_credential_that_is_not_a_public_key_is_refused(site: Premises) -> None:
    response, _ = send(site, E, "6.23", {"supplier_key_id": "GAINER", "certificate": b"\x30" * 32})
    assert response.status is CommandStatus.REJECTED
    assert "P-256 public key" in response.reason
    assert send(site, E, "7.2", {}, key=SUPPLIER)[0].status is CommandStatus.SUCCESS


@pytest.mark.parametrize(
    ("device_type", "service", "params", "reason"),
    [
        (E, "6.28", {"preferred_channel": 3}, "does not apply to a ESME"),
        (G, "7.1", {}, "does not apply to a GSME"),
        (E, "1.6", {"payment_mode": "barter"}, "invalid parameters"),
        (E, "4.8.1", {"start": NOW - 40 * DAY, "end": NOW}, "more than 30"),
        (E, "7.5", {}, "not in scope"),
        (E, "11.1", {}, "answered by the hub"),
        (E, "99.1", {}, "unknown service"),
        (G, "6.20.1", {"mpxn": "1000123456788"}, "needs an MPRN"),
        (E, "7.3", {}, "only a disabled supply can be armed"),
        (E, "8.1.1", {"device_id": "00DB12000000AAAA"}, "does not name the device"),
    ],
)
def test_commands_a_device_must_not_act_on_are_rejected_with_a_reason(
    site: Premises, device_type: DeviceType, service: str, params: dict[str, Value], reason: str
) -> None:
    response, _ = send(site, device_type, service, params)
    assert response.status is CommandStatus.REJECTED
    assert reason in response.reason


def test_a_command_for_a_device_elsewhere_is_an_unknown_device(site: Premises) -> None:
    stray = DeviceCommand("c", "4.1.1", "00DB12000000ABCD")
    with pytest.raises(UnknownDeviceError):
        site.execute(stray, NOW)


def test_an_electricity_only_site_has_no_gas_devices() -> None:
    site = make_site(layout=Layout.ELECTRICITY_ONLY)
    assert set(site.device_ids) == {E, DeviceType.CHF, DeviceType.PPMID, DeviceType.IHD}
    with pytest.raises(UnknownDeviceError):
        site.meter(G)

"""Decisions that must be the same whichever driver runs the hub: every test that takes the
``driver`` fixture runs once against the live hub (real sockets, actors and SQLite) and once
against the simulator (SimPy time), and asserts the same outcome under both.

E3 (a suspended user) is not among the refusal codes: live, the key of a user that is not
active is refused in the CURVE handshake (ZAP) before any frame reaches the engine, so it is
not a frame refusal both drivers can meet. The routing policy both drivers share is tested on
its own first.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub import wire
from hub.policies.connections import DeliveryRoutes
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from hub.reference.service_params import example_params
from hub.reference.standard import Value
from hub.reference.uktime import from_uk_local, to_uk_local
from sdk.keys import signing_key, signing_keys
from simfield.fleet_dir import Fleet, load_fleet
from tests.drivers import Conn, Driver, DriverSettings, LiveDriver, SimDriver, not_opted_in_meter
from tests.live_support import make_fleet, network_user, other_supplier, supplier_meter

pytestmark = pytest.mark.timeout(120)
UNKNOWN_DEVICE = "FFFFFFFFFFFFFFF0"


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory)
    return directory


@pytest.fixture(scope="module")
def fleet(fleet_dir: Path) -> Fleet:
    return load_fleet(fleet_dir)


@pytest.fixture
def settings() -> DriverSettings:
    """The engine settings of a test; a test parametrised on ``settings`` overrides them."""
    return DriverSettings()


@pytest.fixture(params=["live", "sim"])
def driver(
    request: pytest.FixtureRequest,
    fleet_dir: Path,
    fleet: Fleet,
    tmp_path: Path,
    settings: DriverSettings,
) -> Iterator[Driver]:
    """A running hub of each kind in turn, stopped (with its connections) afterwards."""
    d: Driver
    if request.param == "live":
        d = LiveDriver(fleet_dir, fleet, tmp_path / "data", settings)
    else:
        d = SimDriver(fleet, settings, fleet_dir)
    try:
        yield d
    finally:
        d.close()


def _req(
    request_id: str,
    role: Role,
    service: str,
    device_id: str | None,
    params: dict[str, Value] | None = None,
    execute_at: float | None = None,
    signature: bytes = b"",
) -> wire.ServiceRequest:
    return wire.ServiceRequest(
        request_id=request_id,
        role=role,
        service=service,
        device_id=device_id,
        params=params or {},
        execute_at=execute_at,
        signature=signature,
    )


# ---- the routing policy ----------------------------------------------------------------------


def test_a_push_goes_to_the_latest_connection_that_said_hello() -> None:
    routes = DeliveryRoutes[str]()
    routes.hello("u", "a")
    routes.hello("u", "b")
    took: list[str] = []

    def send(conn: str) -> bool:
        took.append(conn)
        return True

    assert routes.push("u", send)
    assert took == ["b"]


def test_a_push_falls_back_to_earlier_connections_and_forgets_the_gone_ones() -> None:
    routes = DeliveryRoutes[str]()
    for conn in ("a", "b", "c"):
        routes.hello("u", conn)
    tried: list[str] = []

    def send(conn: str) -> bool:
        tried.append(conn)
        return conn == "a"

    assert routes.push("u", send)
    assert tried == ["c", "b", "a"]
    assert routes.targets("u") == ["a"]


def test_a_push_with_no_connection_left_is_not_taken() -> None:
    routes = DeliveryRoutes[str]()
    routes.hello("u", "a")
    assert not routes.push("u", lambda c: False)
    assert not routes.push("v", lambda c: True)
    assert len(routes) == 0


def test_saying_hello_again_makes_a_connection_the_latest_and_the_oldest_are_forgotten() -> None:
    routes = DeliveryRoutes[str](max_per_user=3)
    for conn in ("a", "b", "c", "a", "d"):
        routes.hello("u", conn)
    assert routes.targets("u") == ["d", "a", "c"]
    routes.gone("u", "a")
    assert routes.targets("u") == ["d", "c"]


def test_a_user_keeps_at_least_one_delivery_connection() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DeliveryRoutes[str](max_per_user=0)


# ---- refusals --------------------------------------------------------------------------------

REFUSALS = {
    "E2 network operator tops up": ResponseCode.E2,
    "E4 other supplier reads": ResponseCode.E4,
    "E5 commissioning a commissioned meter": ResponseCode.E5,
    "E11 comms hub service to a meter": ResponseCode.E11,
    "E12 unknown parameter": ResponseCode.E12,
    "E12 unknown service": ResponseCode.E12,
    "E19 unknown device": ResponseCode.E19,
    "H5 evolved smart grid service": ResponseCode.H5,
    "H6 non-domestic meter point not opted in": ResponseCode.H6,
}


def _refused_request(fleet: Fleet, kind: str) -> tuple[str, wire.ServiceRequest]:
    owner, meter = supplier_meter(fleet)
    device = meter.device_id
    rid = "x-" + kind.split()[0]
    match kind.split()[0], kind:
        case "E2", _:
            return network_user(fleet), _req(rid, Role.ED, "2.2", device)
        case "E4", _:
            return other_supplier(fleet, owner), _req(rid, Role.IS, "4.1.1", device)
        case "E5", _:
            return owner, _req(rid, Role.IS, "8.1.1", device)
        case "E11", _:
            return owner, _req(rid, Role.IS, "6.28", device)
        case "E12", "E12 unknown parameter":
            return owner, _req(rid, Role.IS, "4.1.1", device, {"nonsense": 1})
        case "E12", _:
            return owner, _req(rid, Role.IS, "99.9", device)
        case "E19", _:
            return owner, _req(rid, Role.IS, "4.1.1", UNKNOWN_DEVICE)
        case "H5", _:
            return owner, _req(rid, Role.IS, "7.5", device)
        case _:
            user, outside = not_opted_in_meter(fleet)
            return user, _req(rid, Role.IS, "4.1.1", outside.device_id)


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_every_refusal_code_is_the_same_under_both_drivers_and_so_is_its_resubmission(
    driver: Driver, kind: str
) -> None:
    user, req = _refused_request(driver.fleet, kind)
    conn = driver.connect(user, auto_ack=True)
    answer = conn.request(req)
    assert isinstance(answer, wire.Refusal), answer
    assert answer.code is REFUSALS[kind], answer
    assert answer.reason
    again = conn.request(req)  # an idempotent resubmission: the same answer
    assert again == answer


def test_a_request_id_reused_for_other_content_is_refused_with_h4_and_the_first_kept(
    driver: Driver,
) -> None:
    user, meter = supplier_meter(driver.fleet)
    conn = driver.connect(user, auto_ack=True)
    first = _req("reuse-1", Role.IS, "4.1.1", meter.device_id)
    ack = conn.request(first)
    assert isinstance(ack, wire.Acknowledgement), ack
    assert ack.code is ResponseCode.I99
    reused = conn.request(_req("reuse-1", Role.IS, "4.1.2", meter.device_id))
    assert isinstance(reused, wire.Refusal), reused
    assert reused.code is ResponseCode.H4
    assert conn.request(first) == ack  # the original still resubmits to its own answer


# ---- delivery --------------------------------------------------------------------------------


def _held_for(driver: Driver, user_id: str) -> int:
    """What the hub still holds for the user, as a new connection's Welcome tells it."""
    conn = driver.connect(user_id)
    try:
        assert conn.welcome is not None
        return conn.welcome.pending
    finally:
        conn.close()


def test_a_response_held_while_its_user_is_away_is_delivered_after_hello_exactly_once(
    driver: Driver,
) -> None:
    user, meter = supplier_meter(driver.fleet)
    away = driver.connect(user)
    ack = away.request(_req("held-1", Role.IS, "4.1.1", meter.device_id))
    assert isinstance(ack, wire.Acknowledgement), ack
    away.close()  # gone before its response arrives
    back = driver.connect(user)
    resp = back.next_delivery(30)
    assert isinstance(resp, wire.ServiceResponse), resp
    assert resp.request_id == "held-1"
    assert resp.code is ResponseCode.I0
    back.ack([resp.delivery_id])
    assert back.next_delivery(2.5) is None  # nothing else for it, redeliveries included
    assert back.duplicates == 0
    assert driver.wait_until(lambda: _held_for(driver, user) == 0), "the ack was not taken"


def test_an_unacknowledged_delivery_is_pushed_again_after_retry_s_and_seen_once(
    driver: Driver,
) -> None:
    user, meter = supplier_meter(driver.fleet)
    conn = driver.connect(user)
    ack = conn.request(_req("retry-1", Role.IS, "4.1.1", meter.device_id))
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = conn.next_delivery(30)
    assert isinstance(resp, wire.ServiceResponse), resp
    assert resp.request_id == "retry-1"
    # not acknowledged: pushed again after retry_s; the connection drops the copy and
    # acknowledges it, so the user sees the response once
    for _ in range(100):
        if conn.duplicates:
            break
        assert conn.next_delivery(0.2) is None
    assert conn.duplicates >= 1
    assert conn.next_delivery(2.5) is None  # the user saw the response once
    assert driver.wait_until(lambda: _held_for(driver, user) == 0), "the re-ack was not taken"


def test_pushes_go_to_the_newest_connection_and_fall_back_when_it_closes(
    driver: Driver,
) -> None:
    user, meter = supplier_meter(driver.fleet)
    older = driver.connect(user)
    newer = driver.connect(user)
    first = older.request(_req("route-1", Role.IS, "4.1.1", meter.device_id))
    assert isinstance(first, wire.Acknowledgement), first  # the answer came back to older
    resp = newer.next_delivery(30)
    assert isinstance(resp, wire.ServiceResponse), resp
    assert resp.request_id == "route-1"  # the push went to the newer one
    newer.ack([resp.delivery_id])
    newer.close()
    second = older.request(_req("route-2", Role.IS, "4.1.1", meter.device_id))
    assert isinstance(second, wire.Acknowledgement), second
    fallback = older.next_delivery(30)
    assert isinstance(fallback, wire.ServiceResponse), fallback
    assert fallback.request_id == "route-2"
    older.ack([fallback.delivery_id])


# ---- future-dated requests and schedules ---------------------------------------------------


def test_a_dsp_pattern_future_dated_read_is_held_until_its_time_then_answered(
    driver: Driver,
) -> None:
    user, meter = supplier_meter(driver.fleet)
    conn = driver.connect(user, auto_ack=True)
    at = driver.now() + 3.0
    ack = conn.request(_req("fd-dsp", Role.IS, "4.1.1", meter.device_id, execute_at=at))
    assert isinstance(ack, wire.Acknowledgement), ack
    assert conn.next_delivery(1.0) is None  # held
    resp = conn.next_delivery(30)
    assert isinstance(resp, wire.ServiceResponse), resp
    assert resp.request_id == "fd-dsp"
    assert resp.code is ResponseCode.I0
    assert driver.now() >= at  # not read before its execution time


def test_a_device_pattern_future_dated_tariff_change_is_answered_then_its_outcome_delivered(
    driver: Driver, fleet_dir: Path
) -> None:
    user, meter = supplier_meter(driver.fleet)
    party = driver.fleet.users[user].party_id
    conn = driver.connect(user, auto_ack=True)
    at = driver.now() + 2.0
    tariff = example_params("1.1.1", at)
    req = _req(
        "fd-device",
        Role.IS,
        "1.1.1",
        meter.device_id,
        tariff,
        execute_at=at,
        signature=signing_key(fleet_dir, party).sign("1.1.1", meter.device_id, tariff),
    )
    ack = conn.request(req)
    assert isinstance(ack, wire.Acknowledgement), ack
    outcome: wire.DeviceAlertNotice | None = None
    answered = False
    for _ in range(20):
        msg = conn.next_delivery(30)
        assert msg is not None, "no response or no 8F66 / 8F67 outcome"
        if isinstance(msg, wire.ServiceResponse) and msg.request_id == "fd-device":
            assert msg.code is ResponseCode.I0, msg
            answered = True
        elif isinstance(msg, wire.DeviceAlertNotice) and msg.alert_code in ("8F66", "8F67"):
            outcome = msg
            break
    assert answered
    assert outcome is not None
    assert outcome.alert_code == "8F66"
    assert outcome.device_id == meter.device_id


def test_a_schedule_created_with_a_short_window_fires_and_its_firing_is_answered(
    driver: Driver,
) -> None:
    user, meter = supplier_meter(driver.fleet)
    conn = driver.connect(user, auto_ack=True)
    local = to_uk_local(datetime.fromtimestamp(driver.now() + 5, UTC))
    nominal = (local + timedelta(minutes=1)).replace(second=0, microsecond=0)
    params: dict[str, Value] = {
        "service": "4.8.1",
        "device_id": meter.device_id,
        "recurrence": "daily",
        "start_date": nominal.date().isoformat(),
        "time_of_day": nominal.strftime("%H:%M"),
        "params": {"window_s": 86400},
    }
    ack = conn.request(_req("sched-1", Role.IS, "5.1", None, params))
    assert isinstance(ack, wire.Acknowledgement), ack
    created = conn.next_delivery(30)
    assert isinstance(created, wire.ServiceResponse), created
    assert created.request_id == "sched-1"
    assert created.code is ResponseCode.I0, created
    schedule_id = created.body["schedule_id"]
    assert isinstance(schedule_id, str)
    first = created.body["first_firing_at"]
    assert isinstance(first, float)
    nominal_at = from_uk_local(nominal).timestamp()
    assert nominal_at <= first < nominal_at + 1.0  # inside the short window
    driver.advance(first - driver.now() + 0.2)  # the hub's clock reaches the firing
    fired = None
    for _ in range(20):
        msg = conn.next_delivery(30)
        assert msg is not None, "the firing's response never arrived"
        if isinstance(msg, wire.ServiceResponse) and msg.request_id.startswith(f"{schedule_id}:"):
            fired = msg
            break
    assert fired is not None
    assert fired.code is ResponseCode.I0, fired
    assert fired.service == "4.8.1"
    assert fired.device_id == meter.device_id


# ---- signed critical commands ------------------------------------------------------------------


def test_a_critical_command_signed_with_the_suppliers_key_is_executed(
    driver: Driver, fleet_dir: Path
) -> None:
    user, meter = supplier_meter(driver.fleet)
    party = driver.fleet.users[user].party_id
    conn = driver.connect(user, auto_ack=True)
    signature = signing_key(fleet_dir, party).sign("7.2", meter.device_id, {})
    ack = conn.request(_req("sig-ok", Role.IS, "7.2", meter.device_id, signature=signature))
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = _response(conn, "sig-ok")
    assert resp.code is ResponseCode.I0, resp


def test_an_unsigned_or_malformed_critical_command_is_refused_by_the_hub_with_e12(
    driver: Driver,
) -> None:
    user, meter = supplier_meter(driver.fleet)
    conn = driver.connect(user, auto_ack=True)
    for rid, signature in (("sig-none", b""), ("sig-short", b"\x01" * 32)):
        answer = conn.request(_req(rid, Role.IS, "7.2", meter.device_id, signature=signature))
        assert isinstance(answer, wire.Refusal), answer
        assert answer.code is ResponseCode.E12


def test_a_critical_command_signed_with_another_partys_key_is_rejected_by_the_device_with_8f3e(
    driver: Driver, fleet_dir: Path
) -> None:
    user, meter = supplier_meter(driver.fleet)
    party = driver.fleet.users[user].party_id
    intruder = next(p for p in signing_keys(fleet_dir) if p != party)
    conn = driver.connect(user, auto_ack=True)
    signature = signing_key(fleet_dir, intruder).sign("7.2", meter.device_id, {})
    ack = conn.request(_req("sig-bad", Role.IS, "7.2", meter.device_id, signature=signature))
    assert isinstance(ack, wire.Acknowledgement), ack
    resp: wire.ServiceResponse | None = None
    alert: wire.DeviceAlertNotice | None = None
    for _ in range(20):
        msg = conn.next_delivery(30)
        assert msg is not None, "no device rejection or no 8F3E alert"
        if isinstance(msg, wire.ServiceResponse) and msg.request_id == "sig-bad":
            resp = msg
        elif isinstance(msg, wire.DeviceAlertNotice) and msg.alert_code == "8F3E":
            alert = msg
        if resp is not None and alert is not None:
            break
    assert resp is not None
    assert resp.code is ResponseCode.H11, resp
    assert "does not verify" in str(resp.body.get("reason"))
    assert alert is not None
    assert alert.device_id == meter.device_id


def _response(conn: Conn, request_id: str) -> wire.ServiceResponse:
    for _ in range(20):
        msg = conn.next_delivery(30)
        assert msg is not None, f"no response to {request_id}"
        if isinstance(msg, wire.ServiceResponse) and msg.request_id == request_id:
            return msg
    raise AssertionError(f"no response to {request_id} among the deliveries")


# ---- device discovery: 8.2 Read Inventory by meter point ---------------------------------------


def _read_inventory(rid: str, role: Role, mpxn: str) -> wire.ServiceRequest:
    return _req(rid, role, "8.2", None, {"mpxn": mpxn})


def _stranger(fleet: Fleet, mpxn: str) -> str:
    """An active import supplier user never registered to the meter point, past or future."""
    mp = fleet.registration.meter_point(mpxn)
    assert mp is not None
    registered = {r.supplier for r in mp.registrations}
    for u in fleet.users.values():
        if Role.IS in u.roles and u.status.value == "active" and u.party_id not in registered:
            return u.user_id
    raise LookupError("no supplier without a registration at the meter point")


def test_a_supplier_finds_the_devices_at_its_meter_points_site_through_8_2_by_mpxn(
    driver: Driver,
) -> None:
    user, meter = supplier_meter(driver.fleet)
    conn = driver.connect(user, auto_ack=True)
    ack = conn.request(_read_inventory("find-1", Role.IS, meter.mpxn))
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = _response(conn, "find-1")
    assert resp.code is ResponseCode.I0, resp
    assert resp.device_id is None
    device = resp.body["device"]
    assert isinstance(device, dict)
    assert device["device_id"] == meter.device_id
    assert device["mpxn"] == meter.mpxn
    listed = resp.body["site_devices"]
    assert isinstance(listed, list)
    at_site = driver.fleet.inventory.site_devices(meter.site_id)
    assert {d["device_id"] for d in listed if isinstance(d, dict)} == {d.device_id for d in at_site}
    site = resp.body["site"]
    assert isinstance(site, dict)
    assert site["comms_hub"] == driver.fleet.inventory.sites[meter.site_id].comms_hub
    # the device found is one the supplier can then read
    read = conn.request(_req("find-read", Role.IS, "4.1.1", str(device["device_id"])))
    assert isinstance(read, wire.Acknowledgement), read
    assert _response(conn, "find-read").code is ResponseCode.I0


def test_a_network_operator_finds_the_devices_at_a_meter_point_of_its_area_through_8_2(
    driver: Driver,
) -> None:
    _, meter = supplier_meter(driver.fleet)
    mp = driver.fleet.registration.meter_point(meter.mpxn)
    assert mp is not None
    operator = next(
        u.user_id
        for u in driver.fleet.users.values()
        if u.party_id == mp.network_operator and Role.ED in u.roles and u.status.value == "active"
    )
    conn = driver.connect(operator, auto_ack=True)
    ack = conn.request(_read_inventory("find-ed", Role.ED, meter.mpxn))
    assert isinstance(ack, wire.Acknowledgement), ack
    resp = _response(conn, "find-ed")
    assert resp.code is ResponseCode.I0, resp
    device = resp.body["device"]
    assert isinstance(device, dict)
    assert device["device_id"] == meter.device_id


def test_8_2_by_mpxn_from_a_user_without_a_relation_is_refused_e4_and_names_no_device(
    driver: Driver,
) -> None:
    _, meter = supplier_meter(driver.fleet)
    stranger = _stranger(driver.fleet, meter.mpxn)
    conn = driver.connect(stranger, auto_ack=True)
    answer = conn.request(_read_inventory("find-no", Role.IS, meter.mpxn))
    assert isinstance(answer, wire.Refusal), answer
    assert answer.code is ResponseCode.E4
    assert meter.mpxn in answer.reason
    assert meter.device_id not in answer.reason
    assert conn.next_delivery(1.0) is None  # nothing about the site follows


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"mpxn": "1000123456788"}, ResponseCode.E19),  # well formed, not in the registers
        ({"mpxn": "12345"}, ResponseCode.E12),  # neither an MPAN core nor an MPRN
        ({"mpxn": "METER"}, ResponseCode.E12),
        ({}, ResponseCode.E12),  # no target at all
    ],
)
def test_8_2_without_a_usable_target_is_refused_at_once(
    driver: Driver, params: dict[str, Value], code: ResponseCode
) -> None:
    user, _ = supplier_meter(driver.fleet)
    conn = driver.connect(user, auto_ack=True)
    answer = conn.request(_req("find-bad", Role.IS, "8.2", None, params))
    assert isinstance(answer, wire.Refusal), answer
    assert answer.code is code, answer


def test_8_2_with_both_a_device_and_a_meter_point_is_refused_with_e12(driver: Driver) -> None:
    user, meter = supplier_meter(driver.fleet)
    conn = driver.connect(user, auto_ack=True)
    answer = conn.request(_req("find-both", Role.IS, "8.2", meter.device_id, {"mpxn": meter.mpxn}))
    assert isinstance(answer, wire.Refusal), answer
    assert answer.code is ResponseCode.E12
    assert "not both" in answer.reason

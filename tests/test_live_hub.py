"""The live hub end to end: real CURVE sockets on loopback, real pykka actors, a real SQLite
file. Every wait polls with a generous timeout; nothing sleeps to synchronise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import zmq

from actors.live import HubSettings, LiveHub
from actors.store import open_store
from hub import wire
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from sdk.client import HubClient
from sdk.keys import KeyPair, hub_keypair, user_keypair
from simfield.fleet_dir import Fleet
from simfield.wan import LatencyKind, WanProfile
from tests.live_support import (
    make_fleet,
    network_user,
    other_supplier,
    supplier_meter,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("fleet")
    make_fleet(directory)
    return directory


@pytest.fixture(scope="module")
def fleet(fleet_dir: Path) -> Fleet:
    from simfield.fleet_dir import load_fleet

    return load_fleet(fleet_dir)


def _hub(fleet_dir: Path, fleet: Fleet, data: Path, **settings: object) -> LiveHub:
    s = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=data,
        endpoint="tcp://127.0.0.1:0",
        pools=2,
        tick_s=0.1,
        **settings,
    )  # type: ignore[arg-type]
    return LiveHub(s, fleet).start()


@pytest.fixture
def hub(fleet_dir: Path, fleet: Fleet, tmp_path: Path) -> Iterator[LiveHub]:
    h = _hub(fleet_dir, fleet, tmp_path / "data")
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def connect(hub: LiveHub, fleet_dir: Path) -> Iterator[object]:
    clients: list[HubClient] = []

    def _connect(user_id: str) -> HubClient:
        c = HubClient(hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user_id))
        clients.append(c)
        c.connect()
        return c

    yield _connect
    for c in clients:
        c.close()


def _audited(hub: LiveHub, user_id: str, code: ResponseCode) -> bool:
    with closing(open_store(hub.settings.data_dir, read_only=True)) as store:
        records = store.audit_records(user_id=user_id, limit=10_000)
    return any(r.code == code.value and r.kind == "refusal" for r in records)


def test_an_authorised_read_gets_i99_then_i0_with_the_meters_registers(
    connect, fleet: Fleet
) -> None:  # type: ignore[no-untyped-def]
    user, meter = supplier_meter(fleet)
    client = connect(user)
    ack = client.request(Role.IS, "4.1.1", meter.device_id)
    assert isinstance(ack, wire.Acknowledgement), ack
    assert ack.code is ResponseCode.I99
    resp = client.wait_for(wire.ServiceResponse, 20, request_id=ack.request_id)
    assert resp is not None
    assert resp.code is ResponseCode.I0, resp
    assert resp.device_id == meter.device_id
    assert resp.body, "a read must carry the registers"
    client.ack([resp.delivery_id])
    # a second read later shows registers at least as large
    ack2 = client.request(Role.IS, "4.1.1", meter.device_id)
    resp2 = client.wait_for(wire.ServiceResponse, 20, request_id=ack2.request_id)
    assert resp2 is not None
    assert resp2.code is ResponseCode.I0


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("network operator tops up", ResponseCode.E2),
        ("other supplier reads", ResponseCode.E4),
        ("commissioning a commissioned meter", ResponseCode.E5),
        ("unknown device", ResponseCode.E19),
        ("evolved smart grid", ResponseCode.H5),
    ],
)
def test_refusals_carry_their_code_and_are_audited(
    connect, hub: LiveHub, fleet: Fleet, case: str, code: ResponseCode
) -> None:  # type: ignore[no-untyped-def]
    owner, meter = supplier_meter(fleet)
    user, role, service, device = owner, Role.IS, "4.1.1", meter.device_id
    if case == "network operator tops up":
        user, role, service = network_user(fleet), Role.ED, "2.2"
    elif case == "other supplier reads":
        user = other_supplier(fleet, owner)
    elif case == "commissioning a commissioned meter":
        service = "8.1.1"  # needs Installed Not Commissioned
    elif case == "unknown device":
        device = "FFFFFFFFFFFFFFF0"
    else:
        service = "7.5"
    client = connect(user)
    answer = client.request(role, service, device, {})
    assert isinstance(answer, wire.Refusal), answer
    assert answer.code is code, answer
    assert answer.reason
    wait_until(lambda: _audited(hub, user, code), what=f"audit of {code.value}")


def test_an_unknown_curve_key_gets_nothing_and_is_counted(hub: LiveHub, fleet_dir: Path) -> None:
    public, secret = zmq.curve_keypair()
    stranger = HubClient(hub.endpoint, hub_keypair(fleet_dir).public, KeyPair(public, secret))
    try:
        stranger.submit("x-1", Role.IS, "4.1.1", "FFFFFFFFFFFFFFF0")
        assert stranger.receive(1.0) is None
        wait_until(lambda: hub.handshakes_refused > 0, what="a refused handshake")
    finally:
        stranger.close()


def test_malformed_frames_get_an_error_and_the_hub_keeps_serving_others(
    connect, fleet: Fleet
) -> None:  # type: ignore[no-untyped-def]
    user, meter = supplier_meter(fleet)
    bad = connect(network_user(fleet))
    for frame in (
        b"",
        b"\xff\xfe",
        os.urandom(64),
        wire.encode(wire.Hello())[:-1],
        b"\x81\xa1v\x02",
    ):
        bad.send_raw(frame)
        answer = bad.wait_for(wire.Refusal, 10)
        assert answer is not None
        assert answer.code in (ResponseCode.H1, ResponseCode.H2)
    bad.send_raw(b"\x00" * (wire.MAX_FRAME_BYTES + 1))
    too_big = bad.wait_for(wire.Refusal, 10)
    assert too_big is not None
    assert too_big.code is ResponseCode.H3
    good = connect(user)
    ack = good.request(Role.IS, "4.1.1", meter.device_id)
    assert isinstance(ack, wire.Acknowledgement)


def test_a_user_offline_while_its_responses_arrive_gets_them_all_after_reconnecting(
    hub: LiveHub, fleet_dir: Path, fleet: Fleet
) -> None:
    user, meter = supplier_meter(fleet)
    server = hub_keypair(fleet_dir).public
    keys = user_keypair(fleet_dir, user)
    first = HubClient(hub.endpoint, server, keys)
    first.connect()
    ids = []
    for _ in range(5):
        ack = first.request(Role.IS, "4.1.1", meter.device_id)
        assert isinstance(ack, wire.Acknowledgement)
        ids.append(ack.request_id)
    first.close()  # gone before reading any response
    assert hub.engine is not None
    wait_until(
        lambda: hub.engine is not None and hub.engine.pending == 0,
        what="all five answered",
    )
    second = HubClient(hub.endpoint, server, keys)
    try:
        second.connect()
        got = {}
        while len(got) < 5:
            msg = second.wait_for(wire.ServiceResponse, 20)
            assert msg is not None, f"only {sorted(got)} of {ids} arrived"
            got[msg.request_id] = msg
            second.ack([msg.delivery_id])
        assert sorted(got) == sorted(ids)
        held = [m.delivery_id for m in got.values()]
        wait_until(
            lambda: not any(hub.engine.outbox.holds(d) for d in held),
            what="acks to remove the responses",
        )  # type: ignore[union-attr]
    finally:
        second.close()


def test_a_comms_hub_off_the_wan_gives_e20(hub: LiveHub, connect, fleet: Fleet) -> None:  # type: ignore[no-untyped-def]
    user, meter = supplier_meter(fleet)
    comms_hub = fleet.inventory.sites[meter.site_id].comms_hub
    hub.set_comms_hub_online(comms_hub, False)
    client = connect(user)
    ack = client.request(Role.IS, "4.1.1", meter.device_id)
    resp = client.wait_for(wire.ServiceResponse, 30, request_id=ack.request_id)
    assert resp is not None
    assert resp.code is ResponseCode.E20


def test_responses_survive_a_clean_restart_of_the_hub(
    fleet_dir: Path, fleet: Fleet, tmp_path: Path
) -> None:
    user, meter = supplier_meter(fleet)
    data = tmp_path / "data"
    slow = WanProfile(latency=LatencyKind.FIXED, median_s=0.5)
    h = _hub(fleet_dir, fleet, data, wan=slow)
    server = hub_keypair(fleet_dir).public
    keys = user_keypair(fleet_dir, user)
    client = HubClient(h.endpoint, server, keys)
    try:
        client.connect()
        ack = client.request(Role.IS, "4.1.1", meter.device_id)
        assert isinstance(ack, wire.Acknowledgement)
        h.stop()  # stopped before the WAN answered
        endpoint = h.endpoint
        h2 = LiveHub(
            HubSettings(fleet_dir=fleet_dir, data_dir=data, endpoint=endpoint, pools=2, tick_s=0.1),
            fleet,
        ).start()
        try:
            resp = client.wait_for(wire.ServiceResponse, 30, request_id=ack.request_id)
            assert resp is not None
            assert resp.code is ResponseCode.I0
        finally:
            h2.stop()
    finally:
        client.close()


def test_a_second_connection_of_the_same_user_does_not_steal_its_listeners_deliveries(
    hub: LiveHub, fleet_dir: Path, fleet: Fleet
) -> None:
    user, meter = supplier_meter(fleet)
    server = hub_keypair(fleet_dir).public
    keys = user_keypair(fleet_dir, user)
    listener = HubClient(hub.endpoint, server, keys)
    sender = HubClient(hub.endpoint, server, keys, auto_hello=False)
    try:
        listener.connect()
        # the sender only sends requests (it never says Hello)
        ack = sender.request(Role.IS, "4.1.1", meter.device_id, request_id="two-conn-1")
        assert isinstance(ack, wire.Acknowledgement), "the answer goes back to the sender"
        resp = listener.wait_for(wire.ServiceResponse, 20, request_id="two-conn-1")
        assert resp is not None, "the response is pushed to the connection that said Hello"
        listener.ack([resp.delivery_id])
    finally:
        sender.close()
        listener.close()


def test_when_a_later_connection_closes_deliveries_fall_back_to_the_earlier_listener(
    hub: LiveHub, fleet_dir: Path, fleet: Fleet
) -> None:
    user, meter = supplier_meter(fleet)
    server = hub_keypair(fleet_dir).public
    keys = user_keypair(fleet_dir, user)
    listener = HubClient(hub.endpoint, server, keys)
    try:
        listener.connect()
        brief = HubClient(hub.endpoint, server, keys)  # says Hello too, then goes away
        brief.connect()
        brief.close()
        ack = listener.request(Role.IS, "4.1.1", meter.device_id)
        assert isinstance(ack, wire.Acknowledgement)
        resp = listener.wait_for(wire.ServiceResponse, 20, request_id=ack.request_id)
        assert resp is not None, "the response must reach the listener still connected"
        listener.ack([resp.delivery_id])
    finally:
        listener.close()
        hub.stop()

"""A live hub on a random loopback port keeps serving after a few thousand mutated frames from
one user: another user's valid request is still answered, and the front door thread lives."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from actors.live import HubSettings, LiveHub
from hub import wire
from hub.reference.codes import ResponseCode
from hub.reference.roles import DeviceType, Role
from hub.reference.service_params import SCHEMAS, example_params
from hub.registers.inventory import DeviceStatus
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.fleet_dir import Fleet, load_fleet
from tests.live_support import make_fleet, supplier_meter, today

pytestmark = pytest.mark.timeout(120)

FRAMES = 3000


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[LiveHub]:
    make_fleet(tmp_path / "fleet")
    settings = HubSettings(
        fleet_dir=tmp_path / "fleet",
        data_dir=tmp_path / "data",
        endpoint="tcp://127.0.0.1:0",
        pools=2,
        tick_s=0.1,
    )
    h = LiveHub(settings, load_fleet(tmp_path / "fleet")).start()
    try:
        yield h
    finally:
        h.stop()


def _meter_of_another_supplier(fleet: Fleet, user_id: str) -> tuple[str, str]:
    """(user id, device id): a commissioned meter served by the hub whose supplier today is an
    active user other than ``user_id``."""
    by_party = {
        u.party_id: u.user_id
        for u in fleet.users.values()
        if Role.IS in u.roles and u.status.value == "active" and u.user_id != user_id
    }
    for device in fleet.inventory.devices.values():
        if (
            device.device_type is not DeviceType.ESME
            or device.status is not DeviceStatus.COMMISSIONED
        ):
            continue
        mp = fleet.registration.meter_point(device.mpxn)
        if mp is None or not mp.served_by_hub or mp.export:
            continue
        supplier = mp.supplier_on(today())
        if supplier in by_party and not mp.is_future_supplier(supplier, today()):
            return by_party[supplier], device.device_id
    raise LookupError("no meter of another supplier in the fleet")


def _mutated(rng: random.Random, device_id: str, n: int) -> bytes:
    """One hostile frame: a request of a random service with hostile parameters, then perhaps
    truncated, flipped, extended or replaced by random bytes."""
    service = rng.choice(sorted(SCHEMAS))
    params: dict[str, object] = dict(example_params(service))
    shape = rng.randrange(6)
    if shape == 0:
        params.update({f"unknown_{i}": i for i in range(rng.randrange(1, 60))})
    elif shape == 1:
        params["n" * rng.randrange(500, 5000)] = 1
    elif shape == 2:
        for name in list(params):
            params[name] = "9" * rng.randrange(100, 4000)
    elif shape == 3:
        nested: object = 1
        for _ in range(rng.randrange(5, 120)):
            nested = [nested]
        params["deep"] = nested
    elif shape == 4:
        params = {str(i): rng.choice([None, True, 1.5, -(2**63), b"\x00" * 40]) for i in range(9)}
    body: dict[str, object] = {
        "v": wire.PROTOCOL_VERSION,
        "kind": "service_request",
        "request_id": f"f{n}",
        "role": rng.choice(["IS", "GS", "ED", "XX"]),
        "service": service,
        "device_id": device_id,
        "params": params,
        "execute_at": None,
        "signature": b"",
    }
    if rng.random() < 0.2:
        body[rng.choice(["extra", "x" * 300, "params2"])] = rng.choice([1, "two", [3]])
    frame = bytes(msgpack.packb(body, use_bin_type=True))
    mutation = rng.randrange(5)
    if mutation == 1:
        frame = frame[: rng.randrange(len(frame))]
    elif mutation == 2:
        data = bytearray(frame)
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        frame = bytes(data)
    elif mutation == 3:
        frame = rng.randbytes(rng.randrange(1, 400))
    return frame


def test_a_hub_fed_thousands_of_mutated_frames_still_answers_another_users_request(
    hub: LiveHub, tmp_path: Path
) -> None:
    fleet = load_fleet(tmp_path / "fleet")
    fuzzer_id, meter = supplier_meter(fleet)
    public = hub_keypair(tmp_path / "fleet").public
    rng = random.Random(20240901)
    with HubClient(hub.endpoint, public, user_keypair(tmp_path / "fleet", fuzzer_id)) as fuzzer:
        fuzzer.connect()
        answered = 0
        for n in range(FRAMES):
            fuzzer.send_raw(_mutated(rng, meter.device_id, n))
            if n % 200 == 199:  # read what came back (every answer must decode)
                while fuzzer.receive(0.0) is not None:
                    answered += 1
        while fuzzer.receive(2.0) is not None:  # until the hub has gone quiet
            answered += 1
    assert answered >= FRAMES // 2, answered  # most frames get a direct answer
    assert hub.front_door is not None
    assert hub.front_door.is_alive()
    other, other_meter = _meter_of_another_supplier(fleet, fuzzer_id)
    with HubClient(hub.endpoint, public, user_keypair(tmp_path / "fleet", other)) as client:
        client.connect()
        ack = client.request(Role.IS, "4.1.1", other_meter)
        assert isinstance(ack, wire.Acknowledgement), ack
        assert ack.code is ResponseCode.I99
        response = client.wait_for(wire.ServiceResponse, 30, request_id=ack.request_id)
        assert response is not None
        assert response.code is ResponseCode.I0
    assert hub.front_door.is_alive()
    assert hub.front_door.error is None

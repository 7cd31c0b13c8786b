"""Both drivers carry commands through the same comms-hub line: a head-end that cannot encode,
a device that cannot read its frame and a faulty device get the same answers from the
simulator as from the live hub, and integrity failures name the comms hub in both."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from actors.live import HubSettings, LiveHub
from hub import wire
from hub.headends.base import EncodeError, FrameError, HeadEnd, IntegrityError
from hub.reference.roles import DeviceType, Role
from hub.reference.standard import DeviceAlert, DeviceCommand, DeviceResponse, Uplink
from hub.registers.inventory import Device, DeviceStatus
from meters_sim.simulator import SimConfig, Simulation
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.fleet_dir import Fleet
from simfield.headend_plugins import load_head_ends
from simfield.site import SiteHost
from tests.live_support import make_fleet, today, wait_until

pytestmark = pytest.mark.timeout(120)


class FaultyHeadEnd:
    """A real head-end format that fails for chosen devices, on either side of the WAN."""

    def __init__(
        self,
        inner: HeadEnd,
        cannot_encode: set[str],
        device_cannot_read: set[str],
        tampered: set[str],
    ) -> None:
        self.inner = inner
        self.cannot_encode = cannot_encode
        self.device_cannot_read = device_cannot_read
        self.tampered = tampered

    @property
    def name(self) -> str:
        return self.inner.name

    def encode_command(self, cmd: DeviceCommand) -> bytes:
        if cmd.device_id in self.cannot_encode:
            raise EncodeError(self.name, "this plugin cannot express the command")
        return self.inner.encode_command(cmd)

    def decode_command(self, frame: bytes) -> DeviceCommand:
        cmd = self.inner.decode_command(frame)
        if cmd.device_id in self.device_cannot_read:
            raise FrameError(self.name, "unknown tag in the command frame")
        return cmd

    def encode_uplink(self, msg: Uplink) -> bytes:
        return self.inner.encode_uplink(msg)

    def decode_uplink(self, frame: bytes) -> Uplink:
        msg = self.inner.decode_uplink(frame)
        if isinstance(msg, DeviceResponse) and msg.device_id in self.tampered:
            raise IntegrityError(self.name, "MAC mismatch")
        return msg


def _reads(fleet: Fleet, count: int) -> list[tuple[str, Device]]:
    """(supplier user, meter) pairs: commissioned domestic import meters on distinct comms
    hubs, each read by its registered supplier."""
    day = today()
    by_party = {
        u.party_id: u.user_id
        for u in fleet.users.values()
        if Role.IS in u.roles and u.status.value == "active"
    }
    out: list[tuple[str, Device]] = []
    hubs: set[str] = set()
    for device in fleet.inventory.devices.values():
        if (
            device.device_type is not DeviceType.ESME
            or device.status is not DeviceStatus.COMMISSIONED
        ):
            continue
        mp = fleet.registration.meter_point(device.mpxn)
        if mp is None or not mp.served_by_hub or mp.export:
            continue
        supplier = mp.supplier_on(day)
        hub = fleet.inventory.sites[device.site_id].comms_hub
        if supplier in by_party and not mp.is_future_supplier(supplier, day) and hub not in hubs:
            hubs.add(hub)
            out.append((by_party[supplier], device))
            if len(out) == count:
                return out
    raise LookupError("not enough suitable meters in the fleet")


@pytest.fixture
def faults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Fleet, dict[str, tuple[str, Device]], Callable[..., dict[str, Any]]]:
    """A fleet and four reads: ``encode`` (the head-end cannot encode it), ``unreadable`` (the
    device cannot read the frame), ``fault`` (the device raises) and ``ok``; the head-end
    formats and the simulated sites are patched for both drivers."""
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=60, seed=9)
    reads = dict(zip(("encode", "unreadable", "fault", "ok"), _reads(fleet, 4), strict=True))

    def codecs(tampered: frozenset[str] = frozenset()) -> dict[str, Any]:
        return {
            name: FaultyHeadEnd(
                codec,
                {reads["encode"][1].device_id},
                {reads["unreadable"][1].device_id},
                set(tampered),
            )
            for name, codec in load_head_ends().items()
        }

    original = SiteHost.execute
    faulty = reads["fault"][1].device_id

    def execute(
        self: SiteHost, cmd: DeviceCommand, now: float
    ) -> tuple[DeviceResponse, list[DeviceAlert]]:
        if cmd.device_id == faulty:
            raise RuntimeError("register map corrupt")
        return original(self, cmd, now)

    monkeypatch.setattr(SiteHost, "execute", execute)
    monkeypatch.setattr("actors.live.load_head_ends", codecs)
    return fleet_dir, fleet, reads, codecs


def _request(name: str, device: Device) -> wire.ServiceRequest:
    return wire.ServiceRequest(
        request_id=name, role=Role.IS, service="4.1.1", device_id=device.device_id
    )


def _simulation(fleet: Fleet, codecs: dict[str, Any], start: float) -> Simulation:
    return Simulation(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        codecs,
        SimConfig(start=start),
    )


def _simulated(
    fleet: Fleet, reads: dict[str, tuple[str, Device]], codecs: dict[str, Any]
) -> dict[str, str]:
    start = time.time()
    sim = _simulation(fleet, codecs, start)
    for user, _ in reads.values():
        sim.hello(user)
    for n, (name, (user, device)) in enumerate(reads.items()):
        sim.at(
            start + 0.1 * n, lambda user=user, req=_request(name, device): sim.request(user, req)
        )
    sim.run(until=start + 30)
    return {d.request_id or "": d.code for d in sim.log if d.kind == "response"}


def _live(
    fleet_dir: Path, fleet: Fleet, data: Path, reads: dict[str, tuple[str, Device]]
) -> dict[str, str]:
    hub = LiveHub(
        HubSettings(
            fleet_dir=fleet_dir, data_dir=data, endpoint="tcp://127.0.0.1:0", pools=2, tick_s=0.1
        ),
        fleet,
    ).start()
    clients: dict[str, HubClient] = {}
    codes: dict[str, str] = {}
    try:
        for user in {u for u, _ in reads.values()}:
            clients[user] = HubClient(
                hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user)
            )
            clients[user].connect()
        for name, (user, device) in reads.items():
            req = _request(name, device)
            answer = clients[user].request(
                req.role, req.service, req.device_id, {}, request_id=req.request_id
            )
            assert answer.code.value == "I99", answer

        def answered() -> bool:
            for client in clients.values():
                msg = client.receive(0.05)
                while msg is not None:
                    if isinstance(msg, wire.ServiceResponse):
                        codes[msg.request_id] = msg.code.value
                    client.ack([msg.delivery_id])
                    msg = client.receive(0)
            return len(codes) == len(reads)

        wait_until(answered, 60, "a response to every read")
    finally:
        for client in clients.values():
            client.close()
        hub.stop()
    return codes


def test_the_simulator_answers_head_end_and_device_faults_as_the_live_hub_does(
    tmp_path: Path,
    faults: tuple[Path, Fleet, dict[str, tuple[str, Device]], Callable[..., dict[str, Any]]],
) -> None:
    fleet_dir, fleet, reads, codecs = faults
    simulated = _simulated(fleet, reads, codecs())
    assert simulated == {"encode": "E20", "unreadable": "E21", "fault": "E21", "ok": "I0"}
    assert _live(fleet_dir, fleet, tmp_path / "data", reads) == simulated


def test_the_simulator_reports_integrity_failures_with_the_comms_hub_id(
    faults: tuple[Path, Fleet, dict[str, tuple[str, Device]], Callable[..., dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, fleet, reads, codecs = faults
    user, device = reads["ok"]
    start = time.time()
    sim = _simulation(fleet, codecs(frozenset({device.device_id})), start)
    reported: list[tuple[str, str]] = []
    original = sim.engine.on_integrity_failure

    def record(comms_hub: str, head_end: str, reason: str, now: float) -> Any:
        reported.append((comms_hub, reason))
        return original(comms_hub, head_end, reason, now)

    monkeypatch.setattr(sim.engine, "on_integrity_failure", record)
    sim.hello(user)
    sim.request(user, _request("tampered", device))
    sim.run(until=start + 30)
    comms_hub = fleet.inventory.sites[device.site_id].comms_hub
    assert comms_hub != device.site_id
    assert reported == [
        (comms_hub, f"integrity check failed: {device.head_end} head-end: MAC mismatch")
    ]
    assert not [d for d in sim.log if d.kind == "response" and d.request_id == "tampered"]

"""One small scenario through the live hub and through the simulator: the same decisions
(who was accepted, refused with which code, answered with which code, which outage alerts went
to whom), because both drive the same engine."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from actors.live import HubSettings, LiveHub
from hub import wire
from hub.reference.roles import Role
from hub.reference.standard import DeviceAlert
from meters_sim.simulator import SimConfig, Simulation
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.fleet_dir import Fleet
from simfield.headend_plugins import load_head_ends
from simfield.site import SiteHost
from tests.live_support import make_fleet, network_user, other_supplier, supplier_meter, wait_until

pytestmark = pytest.mark.timeout(120)
OUTAGE_CODES = {"AD1", "8F35", "8F36"}


def _outage(host: SiteHost, now: float) -> list[DeviceAlert]:
    alerts = host.premises.power_outage(now - 600)
    return alerts + host.premises.power_restored(now)


def _scenario(fleet: Fleet) -> tuple[list[tuple[str, wire.ServiceRequest]], str, set[str]]:
    owner, meter = supplier_meter(fleet)
    other = other_supplier(fleet, owner)
    mp = fleet.registration.meter_point(meter.mpxn)
    assert mp is not None
    network = next(
        u.user_id
        for u in fleet.users.values()
        if u.party_id == mp.network_operator and Role.ED in u.roles
    )
    gas_or_other = network_user(fleet, Role.GT)
    requests = [
        (
            owner,
            wire.ServiceRequest(
                request_id="a1", role=Role.IS, service="4.1.1", device_id=meter.device_id
            ),
        ),
        (
            owner,
            wire.ServiceRequest(
                request_id="a2", role=Role.IS, service="7.4", device_id=meter.device_id
            ),
        ),
        (
            owner,
            wire.ServiceRequest(
                request_id="a3", role=Role.IS, service="8.2", device_id=meter.device_id
            ),
        ),
        (
            other,
            wire.ServiceRequest(
                request_id="b1", role=Role.IS, service="4.1.1", device_id=meter.device_id
            ),
        ),
        (
            network,
            wire.ServiceRequest(
                request_id="c1", role=Role.ED, service="4.1.1", device_id=meter.device_id
            ),
        ),
        (
            network,
            wire.ServiceRequest(
                request_id="c2", role=Role.ED, service="2.2", device_id=meter.device_id, params={}
            ),
        ),
        (
            owner,
            wire.ServiceRequest(
                request_id="a4", role=Role.IS, service="7.5", device_id=meter.device_id
            ),
        ),
        (
            owner,
            wire.ServiceRequest(
                request_id="a5", role=Role.IS, service="4.1.1", device_id="FFFFFFFFFFFFFFF0"
            ),
        ),
        (
            gas_or_other,
            wire.ServiceRequest(
                request_id="d1", role=Role.GT, service="4.1.1", device_id=meter.device_id
            ),
        ),
    ]
    users = {u for u, _ in requests}
    return requests, fleet.inventory.sites[meter.site_id].comms_hub, users


def _simulated(
    fleet: Fleet, requests: list[tuple[str, wire.ServiceRequest]], comms_hub: str, users: set[str]
) -> set[tuple[str, ...]]:
    start = time.time()
    sim = Simulation(
        fleet.users,
        fleet.registration,
        fleet.inventory,
        fleet.payment_modes,
        load_head_ends(),
        SimConfig(start=start),
    )
    for u in sorted(users):
        sim.hello(u)
    for n, (user, req) in enumerate(requests):
        sim.at(start + 0.1 * n, lambda user=user, req=req: sim.request(user, req))
    sim.at(start + 2, lambda: sim.inject(comms_hub, _outage))
    sim.run(until=start + 30)
    return {
        (d.kind, d.user_id, d.request_id or "", d.code)
        for d in sim.log
        if d.kind in ("answer", "response") or d.code in OUTAGE_CODES
    }


def _live(
    fleet_dir: Path,
    fleet: Fleet,
    data: Path,
    requests: list[tuple[str, wire.ServiceRequest]],
    comms_hub: str,
    users: set[str],
    expected: set[tuple[str, ...]],
) -> set[tuple[str, ...]]:
    """Run the scenario live; wait until everything the simulation saw has arrived (or time
    runs out), then keep listening briefly so that anything extra shows too."""
    hub = LiveHub(
        HubSettings(
            fleet_dir=fleet_dir, data_dir=data, endpoint="tcp://127.0.0.1:0", pools=2, tick_s=0.1
        ),
        fleet,
    ).start()
    clients: dict[str, HubClient] = {}
    seen: set[tuple[str, ...]] = set()
    try:
        for u in sorted(users):
            clients[u] = HubClient(
                hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, u)
            )
            clients[u].connect()
        for user, req in requests:
            answer = clients[user].request(
                req.role, req.service, req.device_id, dict(req.params), request_id=req.request_id
            )
            seen.add(("answer", user, req.request_id, answer.code.value))
        hub.inject(comms_hub, _outage)

        def drained() -> bool:
            for user, client in clients.items():
                msg = client.receive(0.05)
                while msg is not None:
                    if isinstance(msg, wire.ServiceResponse):
                        seen.add(("response", user, msg.request_id, msg.code.value))
                        client.ack([msg.delivery_id])
                    elif isinstance(msg, wire.DeviceAlertNotice):
                        if msg.alert_code in OUTAGE_CODES:
                            seen.add(("device_alert", user, "", msg.alert_code))
                        client.ack([msg.delivery_id])
                    msg = client.receive(0)
            return expected <= seen

        with contextlib.suppress(AssertionError):  # the comparison shows what is missing
            wait_until(drained, 60, "every response and the outage alerts")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            drained()
    finally:
        for client in clients.values():
            client.close()
        hub.stop()
    return seen


def test_the_live_hub_and_the_simulator_reach_the_same_decisions(tmp_path: Path) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=60, seed=9)
    requests, comms_hub, users = _scenario(fleet)
    simulated = _simulated(fleet, requests, comms_hub, users)
    live = _live(fleet_dir, fleet, tmp_path / "data", requests, comms_hub, users, simulated)
    assert simulated == live
    codes = {r: c for (k, _, r, c) in simulated if k == "answer"}
    assert codes["a1"] == "I99"
    assert codes["b1"] == "E4"
    assert codes["c2"] in ("E2", "E12")
    assert codes["a4"] == "H5"
    assert codes["a5"] == "E19"
    assert any(k == "device_alert" and c == "AD1" for (k, _, _, c) in simulated)

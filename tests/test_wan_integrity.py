"""WAN integrity as an event: a ``[[load.integrity]]`` scenario corrupts frames on a region's
cells for a period, in the event model (the real engine, head-ends and security monitoring)
and, compared with it, in the bulk model; and a live hub whose WAN corrupts frames
(``WanProfile.corrupt_share``, ``dcc serve --wan-corrupt``) detects them the same way."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from actors.live import HubSettings, LiveHub
from hub import wire
from hub.engine import EngineConfig
from hub.policies.security import ALL_SUBJECTS, AlertKind
from hub.reference.codes import ResponseCode
from hub.reference.roles import Role
from meters_sim.bulk import run_bulk
from meters_sim.scenario import Scenario, load_scenario
from meters_sim.simulator import Simulation
from sdk.client import HubClient
from sdk.keys import hub_keypair, user_keypair
from simfield.fleet_dir import load_fleet
from simfield.wan import WanProfile
from tests.live_support import make_fleet, supplier_meter, wait_until
from tests.sim_support import run_event

pytestmark = pytest.mark.timeout(300)

SHARE = 0.5
"""Share of the frames the event corrupts, each direction."""
COMMAND_SHARE = 1.0 - (1.0 - SHARE) ** 2
"""Commands losing their command or their response frame: answered E21 (0.75)."""
DETECTED_SHARE = (1.0 - SHARE) * SHARE
"""Commands whose command frame got through and whose response frame was corrupted: what the
head-ends can detect (0.25); a corrupted command frame is refused by the device, unseen."""
TOLERANCE = 0.06
"""Absolute tolerance on shares: about 600 commands in the North give a binomial standard
error under 0.02 on each share; the two models' fleets differ (one drawn fleet against the
bulk model's expected counts), which changes counts, not shares."""
ALERT_TOLERANCE = 0.08
"""Absolute tolerance on security alerts per integrity failure (about 0.16 in both: 15-25
alerts from 100-160 failures over the North's 16-21 comms hubs, 6-8 failures each in the 50
minutes). Alert counts are small, so each ratio has a standard error near 0.035, and the two
fleets put different numbers of comms hubs in the North (one drawn fleet against expected
counts), which moves the counts; per failure, the hub's rule (3 in 10 minutes per comms hub,
quiet for 10 minutes after) is what is compared."""

SCENARIO = f"""
[scenario]
name = "integrity"
seed = 5
start = 2025-03-03T10:00:00Z
duration = "1h"
[fleet]
sites = 60
[wan.north]
latency = {{ kind = "zero" }}
loss = 0.0
coverage = 1.0  # every site reached: only the event makes answers fail
[wan.central]
latency = {{ kind = "zero" }}
loss = 0.0
coverage = 1.0  # every site reached: only the event makes answers fail
[wan.south]
latency = {{ kind = "zero" }}
loss = 0.0
coverage = 1.0  # every site reached: only the event makes answers fail
[hub]
response_timeout = "30s"
[load.on_demand]
per_meter_per_day = 500.0
hour_profile = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
services = {{ "4.1.1" = 1.0 }}
[load.daily_reads]
share = 0.0
[load.top_ups]
per_prepayment_meter_per_day = 0.0
[load.change_of_supplier]
churn_per_day = 0.0
[load.alerts]
per_meter_per_day = 0.0
hub_per_meter_per_day = 0.0
[[load.integrity]]
start = 2025-03-03T10:00:00Z
region = "north"
share = {SHARE}
duration = "50m"
"""
"""Heavy on-demand reads (about 20 an hour per meter) over one hour, the North's frames half
corrupted for the first 50 minutes, no WAN latency or loss so every failure is the event's."""


@dataclass
class _EventRun:
    sim: Simulation
    region_of: dict[str, str]  # device id -> region
    hub_region: dict[str, str]  # comms hub id -> region


def _event(scenario: Scenario, tmp_path: Path) -> _EventRun:
    run = run_event(scenario, tmp_path)
    sim, sites = run.sim, run.fleet.inventory.sites
    region_of = {d.device_id: sites[d.site_id].region for d in run.fleet.inventory.devices.values()}
    hub_region = {s.comms_hub: s.region for s in sites.values()}
    return _EventRun(sim, region_of, hub_region)


@pytest.fixture(scope="module")
def event_run(tmp_path_factory: pytest.TempPathFactory) -> _EventRun:
    return _event(load_scenario(SCENARIO, "integrity.toml"), tmp_path_factory.mktemp("fleet"))


def _answers(run: _EventRun, region: str) -> Counter[str]:
    return Counter(
        d.code
        for d in run.sim.log
        if d.kind == "response" and run.region_of.get(d.device_id or "") == region
    )


def test_commands_that_lose_a_frame_in_an_integrity_event_are_answered_e21(
    event_run: _EventRun,
) -> None:
    north = _answers(event_run, "North")
    total = sum(north.values())
    assert total > 400
    assert set(north) == {"I0", "E21"}
    # 50 minutes of the hour corrupted: three quarters of those commands lose a frame
    assert north["E21"] / total == pytest.approx(COMMAND_SHARE * 50 / 60, abs=TOLERANCE)
    for region in ("Central", "South"):  # the event does not reach them
        assert set(_answers(event_run, region)) == {"I0"}


def test_the_head_ends_detect_the_corrupted_uplinks_and_the_hub_counts_them(
    event_run: _EventRun,
) -> None:
    sim = event_run.sim
    north = sum(_answers(event_run, "North").values())
    failures = sim.counters["integrity_failures"]
    assert failures == sim.engine.counters["integrity_failure"]
    assert failures / north == pytest.approx(DETECTED_SHARE * 50 / 60, abs=TOLERANCE)


def test_the_security_monitoring_alerts_on_the_comms_hubs_whose_frames_fail(
    event_run: _EventRun,
) -> None:
    sim = event_run.sim
    alerts = sim.engine.security_alerts
    assert alerts
    assert {a.kind for a in alerts} == {AlertKind.INTEGRITY_FAILURES}
    hubs = {a.subject for a in alerts} - {ALL_SUBJECTS}
    north_hubs = {h for h, r in event_run.hub_region.items() if r == "North"}
    assert hubs <= north_hubs
    # about 3 failing frames in every 10 minutes per comms hub: most North hubs are alerted
    assert len(hubs) >= 0.5 * len(north_hubs)
    # about 30 failures across the hub in 10 minutes: under the spread-out alert's 100
    assert ALL_SUBJECTS not in {a.subject for a in alerts}


def test_the_bulk_model_reports_the_same_failures_and_security_alerts_for_the_same_scenario(
    event_run: _EventRun,
) -> None:
    scenario = load_scenario(SCENARIO, "integrity.toml")
    bulk = run_bulk(scenario)
    (flow,) = [f for f in bulk.flows if f.region == "North"]
    # the same vocabulary: failed commands (E21) over carried commands in the North
    north = _answers(event_run, "North")
    event_e21 = north["E21"] / sum(north.values())
    assert flow.failed / flow.count == pytest.approx(event_e21, abs=TOLERANCE)
    # integrity failures per command, unscaled: both count the corrupted responses only
    bulk_failures = bulk.integrity_failures / flow.count
    event_failures = event_run.sim.counters["integrity_failures"] / sum(north.values())
    assert bulk_failures == pytest.approx(DETECTED_SHARE * 50 / 60, abs=TOLERANCE)
    assert bulk_failures == pytest.approx(event_failures, abs=TOLERANCE)
    # security alerts: the hub's own monitor in both, per comms hub and window
    event_alerts = len(event_run.sim.engine.security_alerts)
    assert event_alerts > 0
    assert bulk.security_alerts / bulk.integrity_failures == pytest.approx(
        event_alerts / event_run.sim.counters["integrity_failures"], abs=ALERT_TOLERANCE
    )
    for other in bulk.flows:
        if other.region != "North":
            assert other.failed == 0


def test_an_integrity_event_leaves_the_draws_of_the_rest_of_the_run_alone(
    event_run: _EventRun, tmp_path: Path
) -> None:
    plain = SCENARIO.split("[[load.integrity]]")[0]
    clean = _event(load_scenario(plain, "clean.toml"), tmp_path)
    # the regions the event cannot reach are told exactly the same
    for region in ("Central", "South"):
        assert _answers(clean, region) == _answers(event_run, region)
    assert clean.sim.counters.get("integrity_failures", 0) == 0
    assert not clean.sim.engine.security_alerts


# ---- the live hub ------------------------------------------------------------------------------

REQUESTS = 48
"""Reads sent to one meter of the live hub: about 12 corrupted responses are expected (a
quarter), so the 3 the alert needs are there with a wide margin."""


@pytest.fixture
def corrupting_hub(tmp_path: Path) -> Iterator[tuple[LiveHub, Path]]:
    fleet_dir = tmp_path / "fleet"
    make_fleet(fleet_dir)
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path / "data",
        endpoint="tcp://127.0.0.1:0",
        pools=1,
        tick_s=0.1,
        wan=WanProfile(corrupt_share=SHARE),
        engine=EngineConfig(response_timeout_s=1.0),
    )
    hub = LiveHub(settings).start()
    try:
        yield hub, fleet_dir
    finally:
        hub.stop()


def test_a_live_hub_whose_wan_corrupts_frames_answers_e21_and_raises_security_alerts(
    corrupting_hub: tuple[LiveHub, Path],
) -> None:
    hub, fleet_dir = corrupting_hub
    fleet = load_fleet(fleet_dir)
    user, meter = supplier_meter(fleet)
    client = HubClient(hub.endpoint, hub_keypair(fleet_dir).public, user_keypair(fleet_dir, user))
    try:
        client.connect()
        acks = [client.request(Role.IS, "4.1.1", meter.device_id) for _ in range(REQUESTS)]
        codes: Counter[ResponseCode] = Counter()
        for ack in acks:
            assert isinstance(ack, wire.Acknowledgement)
            resp = client.wait_for(wire.ServiceResponse, 30, request_id=ack.request_id)
            assert resp is not None
            codes[resp.code] += 1
    finally:
        client.close()
    # every command answered: through, or E21 after the response timeout when a frame is lost
    assert set(codes) == {ResponseCode.I0, ResponseCode.E21}
    assert sum(codes.values()) == REQUESTS
    engine = hub.engine
    assert engine is not None
    comms_hub = fleet.inventory.sites[meter.site_id].comms_hub
    # the head-end refused the corrupted responses; 3 within 10 minutes raise the alert
    wait_until(lambda: engine.counters.get("integrity_failure", 0) >= 3, 10, "3 failures")
    wait_until(
        lambda: any(
            a.kind is AlertKind.INTEGRITY_FAILURES and a.subject == comms_hub
            for a in engine.security_alerts
        ),
        10,
        "the comms hub's security alert",
    )
